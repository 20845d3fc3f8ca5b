-- wrk driver for scripts/bench_checkin.py: one wrk thread = one device = one keep-alive
-- connection, replaying that device's pre-signed requests in order. The Python side writes, per
-- device, "<length> <CommandUUID the reply must carry, or nothing>\n<raw HTTP request>" records.
-- Usage: wrk -t N -c N -d 10s -s bench_checkin.lua http://127.0.0.1:PORT -- DIR

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  local file = assert(io.open(args[1] .. "/" .. id .. ".seq", "rb"))
  local data = file:read("*a")
  file:close()
  requests, expects = {}, {}
  local pos = 1
  while pos <= #data do
    local eol = string.find(data, "\n", pos, true)
    local length, expect = string.match(string.sub(data, pos, eol - 1), "^(%d+) ?(.*)$")
    length = tonumber(length)
    table.insert(requests, string.sub(data, eol + 1, eol + length))
    table.insert(expects, expect)
    pos = eol + 1 + length
  end
  answered = 0
  errors, mismatches, exhausted = 0, 0, 0
end

-- wrk calls request() once more than it sends (on the first thread, to check the script), so
-- the position advances on each answer, not on each request() call.
function request()
  local position = answered + 1
  if position > #requests then
    -- This device has no command left: stop its thread rather than replay a stale result.
    exhausted = 1
    wrk.thread:stop()
    position = #requests
  end
  return requests[position]
end

function response(status, headers, body)
  answered = answered + 1
  if status ~= 200 then
    errors = errors + 1
    if errors <= 3 then io.stderr:write("HTTP " .. status .. ": " .. body .. "\n") end
  elseif expects[answered] ~= "" and not string.find(body, expects[answered], 1, true) then
    mismatches = mismatches + 1
  end
end

function done(summary, latency, requests)
  local errors, mismatches, exhausted = 0, 0, 0
  for _, thread in ipairs(threads) do
    errors = errors + thread:get("errors")
    mismatches = mismatches + thread:get("mismatches")
    exhausted = exhausted + thread:get("exhausted")
  end
  io.write(string.format(
    "WRK requests=%d duration_us=%d p50_us=%d p99_us=%d errors=%d mismatches=%d exhausted=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    errors, mismatches, exhausted))
end
