"""From the JSON an administrator sent to a Command ready to queue, or a refusal naming why.

Order: the RequestType exists; <data>/<date> values are converted by schema type; the
command's own rules run for each distinct kind of target; the builder fills server-side keys;
then Apple's schema judges the result for each target platform and OS version. Errors refuse
the whole send (nothing is queued); warnings travel back with the 201.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from mdmserver.catalog.schema import CommandSpec, command_spec, supports
from mdmserver.catalog.validate import UNKNOWN_KEY, ValidationError, validate_command
from mdmserver.commands.base import CommandRefused, Problem, Secrets, TargetFacts
from mdmserver.commands.jsonvalues import from_json
from mdmserver.commands.registry import rule_for
from mdmserver.errors import Kind

ROOT = "command"
_NAMED_DEVICES = 3


class Target(NamedTuple):
    device_id: str
    enrollment_id: str
    facts: TargetFacts


@dataclass
class Prepared:
    request_type: str
    payload: dict[str, Any]
    warnings: list[Problem] = field(default_factory=list)


def prepare(
    command: Any,
    targets: Sequence[Target],
    secrets: Secrets,
    *,
    allow_unknown_keys: bool = False,
) -> Prepared:
    """``allow_unknown_keys``: send keys Apple's schema lacks (else refused: usually typos)."""
    if not isinstance(command, Mapping):
        raise CommandRefused([Problem(ROOT, "must be an object with a RequestType")], Kind.INVALID)
    request_type = command.get("RequestType")
    if not isinstance(request_type, str) or not request_type:
        raise CommandRefused(
            [Problem(f"{ROOT}.RequestType", "missing or not a string")], Kind.INVALID
        )
    spec = command_spec(request_type)
    if spec is None:
        raise CommandRefused(
            [Problem(f"{ROOT}.RequestType", f"unknown RequestType {request_type!r}")]
        )
    rule = rule_for(request_type)
    problems: list[Problem] = []
    for key in ("CommandUUID", *rule.server_keys):
        if key in command:
            problems.append(Problem(f"{ROOT}.{key}", "is set by the server; leave it out"))
    if rule.single_target and len(targets) != 1:
        problems.append(Problem(ROOT, rule.single_target))
    raw = {k: v for k, v in command.items() if k != "RequestType"}
    payload = from_json(spec.root, raw, ROOT, problems)
    _refuse_if_errors(problems)

    groups: dict[TargetFacts, list[str]] = defaultdict(list)
    for target in targets:
        groups[target.facts].append(target.device_id)
    for facts, device_ids in groups.items():
        problems += _named(rule.check(payload, facts), device_ids)
    _refuse_if_errors(problems)

    payload = rule.build(payload, [t.enrollment_id for t in targets], secrets)
    for facts, device_ids in groups.items():
        problems += _named(_judge(spec, payload, facts, allow_unknown_keys), device_ids)
    _refuse_if_errors(problems)
    return Prepared(request_type, payload, _dedupe(problems))


def _judge(
    spec: CommandSpec, payload: Mapping[str, Any], facts: TargetFacts, allow_unknown_keys: bool
) -> list[Problem]:
    """Apple's schema for this kind of device: keys, types, platform, OS version."""
    found = [
        _problem(e, allow_unknown_keys)
        for e in validate_command(spec.request_type, payload, platform=facts.platform)
    ]
    if facts.platform is None:
        found.append(
            Problem(ROOT, "platform unknown (no ProductName or Model): not checked", "warning")
        )
        return found
    reason = supports(
        spec,
        facts.platform,
        os_version=facts.os_version,
        supervised=facts.supervised,
        user_enrollment=facts.user_enrollment,
    )
    if reason and not any(p.path == f"{ROOT}.RequestType" for p in found):
        found.append(Problem(f"{ROOT}.RequestType", reason))
    support = spec.os.get(facts.platform)
    if support is not None and support.supervised and facts.supervised is None:
        found.append(
            Problem(
                f"{ROOT}.RequestType",
                f"{spec.request_type} needs a supervised device; supervision is not known yet"
                " (inventory has not reported it), so it was allowed",
                "warning",
            )
        )
    return found


def _problem(finding: ValidationError, allow_unknown_keys: bool) -> Problem:
    path = ROOT + finding.path[len("Command") :]
    if finding.code == UNKNOWN_KEY and not allow_unknown_keys:
        # A device ignores a key it does not know: a misspelled "Mesage" would be lost silently.
        message = f"{finding.message} (refused; allow_unknown_keys sends it anyway)"
        return Problem(path, message, "error")
    return Problem(path, finding.message, finding.severity)


def _named(problems: list[Problem], device_ids: Sequence[str]) -> list[Problem]:
    if not problems:
        return problems
    shown = ", ".join(device_ids[:_NAMED_DEVICES])
    if len(device_ids) > _NAMED_DEVICES:
        shown += f" and {len(device_ids) - _NAMED_DEVICES} more"
    which = f" (device {shown})" if len(device_ids) == 1 else f" (devices {shown})"
    return [Problem(p.path, p.message + which, p.severity) for p in problems]


def _refuse_if_errors(problems: list[Problem]) -> None:
    if any(p.severity == "error" for p in problems):
        raise CommandRefused(problems)


def _dedupe(problems: list[Problem]) -> list[Problem]:
    return list(dict.fromkeys(problems))
