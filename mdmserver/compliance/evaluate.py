"""A device's overall state from its rule results: any fail makes it non-compliant; otherwise
any unknown leaves it unknown. Only "compliant" grants access: conditional access fails closed."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from mdmserver.compliance.policy import Policy
from mdmserver.compliance.rules import RULES, DeviceState, Outcome, RuleResult


class State(StrEnum):
    COMPLIANT = "compliant"
    NONCOMPLIANT = "noncompliant"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Evaluation:
    state: State
    results: tuple[RuleResult, ...]

    @property
    def compliant(self) -> bool:
        return self.state is State.COMPLIANT

    @property
    def reasons(self) -> list[str]:
        """What stands between the device and compliance (empty when compliant)."""
        return [r.reason for r in self.results if r.outcome is not Outcome.PASS]

    def failed(self, rule: str) -> bool:
        return any(r.rule == rule and r.outcome is Outcome.FAIL for r in self.results)


def evaluate(policy: Policy, device: DeviceState) -> Evaluation:
    results = tuple(r for rule in RULES if (r := rule(policy, device)) is not None)
    outcomes = {r.outcome for r in results}
    if Outcome.FAIL in outcomes:
        state = State.NONCOMPLIANT
    elif Outcome.UNKNOWN in outcomes:
        state = State.UNKNOWN
    else:
        state = State.COMPLIANT
    return Evaluation(state, results)
