// mdmserver console: small progressive enhancements. Every page works without them.
"use strict";

// An erase button stays disabled until the device's name is typed exactly (the server checks
// it again).
function guardErase() {
  document.querySelectorAll("input[data-confirm]").forEach((input) => {
    const button = input.form.querySelector("button[type=submit]");
    const check = () => { button.disabled = input.value !== input.dataset.confirm; };
    input.addEventListener("input", check);
    check();
  });
}

// A bulk command's progress page updates itself until every target has answered.
function followProgress() {
  const box = document.querySelector("[data-progress]");
  if (!box) return;
  const tick = async () => {
    let counts;
    try {
      const reply = await fetch(box.dataset.progress, { headers: { Accept: "application/json" } });
      if (!reply.ok) return setTimeout(tick, 3000);
      counts = await reply.json();
    } catch (err) {
      return setTimeout(tick, 3000);
    }
    for (const [key, value] of Object.entries(counts)) {
      const cell = box.querySelector(`[data-count="${key}"]`);
      if (cell) cell.textContent = value;
    }
    const meter = box.querySelector("[data-meter]");
    if (meter) { meter.max = counts.total; meter.value = counts.acknowledged; }
    const done = counts.acknowledged === counts.total;
    box.querySelector("[data-done]").hidden = !done;
    if (!done && counts.pending + counts.notnow > 0) setTimeout(tick, 1000);
  };
  setTimeout(tick, 1000);
}

document.addEventListener("DOMContentLoaded", () => { guardErase(); followProgress(); });
