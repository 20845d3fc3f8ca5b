"""What a device gets next: one ordered list of small steps, every feature's in one place.

When a device asks (an Idle, or the answer to a command), the command loop first records the
answer and lets the readers its command declares update their state (mdmserver.commands,
service.hooks); then it runs these steps in order. A feature step decides, at that moment,
whether the device needs a command, and if so enqueues it into the durable queue: so it is
recorded, visible to the admin API, retried after NotNow and pushed like any other. The last
step, the queue, hands out the next queued command (highest priority first, then oldest).

The order (see :func:`build_steps`), and why:

1. ``renewal``: an identity about to expire comes first. If it lapses the device can take no
   command at all; it is queued with priority 10, so it also overtakes what is queued already.
2. ``profiles``: after a ProfileList answer, reconcile against the device's own account
   (installs and removals). Profiles before apps: an app may need the configuration (Wi-Fi,
   restrictions, app configuration) a profile brings, and enrollment queues them in the same
   order.
3. ``apps``: after a ManagedApplicationList answer, queue the missing required apps and the
   removals.
4. ``remediation``: what compliance decided while this request's answer was read (a
   DeviceLock past the grace period, a missing required profile re-queued). After the
   profile step: when the answer was the ProfileList, reconciliation has already queued the
   missing profile and remediation's re-queue finds nothing left to do.
5. ``queue``: the durable queue delivers. It is the only step that returns a command.

Inventory contributes no step: its queries are queued at enrollment (an admin lists them at
once) and by its schedule (``refresh_due_inventory``); an Idle-time "due" check would cost
every poll a query. Compliance evaluated outside the command loop (DDM status reports, the
scheduler) remediates at once, since no step follows there (see :func:`steps_follow`).

Performance: Idle is the hot path. Every feature step costs no database work when it has
nothing to do: the profile and apps steps look only at the answer in hand, the renewal step at
the expiry of the certificate the request was signed with (already verified and in memory).

Failure: a feature step that raises is logged and skipped, like a hook, and the next step
still runs: a bug in one feature never fails a device request. The queue step is not shielded:
if the queue cannot be read the request fails and the device retries, rather than being told
"nothing to do" and going quiet until its next push.

Enrollment-time and admin-triggered commands are still queued at once (hooks.on_enrolled,
the admin services), since an admin expects to see them queued before the device next asks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from mdmserver.commands.answers import ResultEvent
from mdmserver.logs import get_logger
from mdmserver.protocol.enrollment_id import EnrollmentIdentity
from mdmserver.storage.base import NextCommand
from mdmserver.storage.ports import QueuePort

log = get_logger("next_command")


@dataclass(frozen=True, slots=True)
class Session:
    """What a step knows of the device's request (all in memory: no query to build it)."""

    identity: EnrollmentIdentity
    new_session: bool  # an Idle starts a session; results continue it
    # The answer this request carried, when recorded for the first time (not NotNow).
    answered: ResultEvent | None = None
    # When the identity certificate that signed this request expires.
    not_after: datetime | None = None

    @property
    def enrollment_id(self) -> str:
        return self.identity.id


class NextStep(Protocol):
    """What a feature contributes: decide (and enqueue) for this session; usually None."""

    def step(self, session: Session) -> NextCommand | None: ...


StepFn = Callable[[Session], NextCommand | None]


@dataclass(frozen=True, slots=True)
class Step:
    """One named step; ``shielded`` steps are logged and skipped when they raise."""

    name: str
    run: StepFn
    shielded: bool = True


def queued_command(storage: QueuePort) -> Step:
    """The durable queue: the next command queued for this enrollment, if any."""

    def step(session: Session) -> NextCommand | None:
        return storage.next_command(session.enrollment_id, new_session=session.new_session)

    return Step("queue", step, shielded=False)


def build_steps(
    *,
    queue: QueuePort,
    renewal: NextStep | None = None,
    profiles: NextStep | None = None,
    apps: NextStep | None = None,
    remediation: NextStep | None = None,
) -> list[Step]:
    """THE order in which features decide what a device gets next (module docstring says
    why). A feature that is None is off; the queue always comes last."""
    features: list[tuple[str, NextStep | None]] = [
        ("renewal", renewal),
        ("profiles", profiles),
        ("apps", apps),
        ("remediation", remediation),
    ]
    steps = [Step(name, feature.step) for name, feature in features if feature is not None]
    return [*steps, queued_command(queue)]


def choose_next(steps: Sequence[Step], session: Session) -> NextCommand | None:
    """Run the steps in order; the first command one returns is the device's next."""
    for step in steps:
        if not step.shielded:
            command = step.run(session)
        else:
            try:
                command = step.run(session)
            except Exception:
                log.exception(
                    "next_step_failed",
                    extra={"fields": {"step": step.name, "enrollment_id": session.enrollment_id}},
                )
                continue
        if command is not None:
            return command
    return None


_following: ContextVar[frozenset[str]] = ContextVar("next_steps_following", default=frozenset())


@contextmanager
def answering(steps: Sequence[Step]) -> Iterator[None]:
    """Set by the command loop while readers handle an answer: these steps run right after."""
    token = _following.set(frozenset(step.name for step in steps))
    try:
        yield
    finally:
        _following.reset(token)


def steps_follow(name: str) -> bool:
    """Whether the step ``name`` runs after the answer being read (a feature may then leave
    its command to that step instead of queuing it from inside the reader)."""
    return name in _following.get()
