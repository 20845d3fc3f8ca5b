"""The command loop on the server URL: store each result, let the features that read it
update their state, then hand out what the steps of service.next_command choose."""

from __future__ import annotations

from collections.abc import Sequence

from mdmserver.logs import get_logger
from mdmserver.protocol.results import CommandResult, Status
from mdmserver.service.base import EMPTY, Reply
from mdmserver.service.context import DeviceRequest
from mdmserver.service.errors import BadDeviceRequest, UnknownDevice
from mdmserver.service.hooks import Hooks, ResultEvent
from mdmserver.service.next_command import Session, Step, answering, choose_next
from mdmserver.storage.base import (
    EnrollmentStatus,
    NextCommand,
    QueueStatus,
    ResultOutcome,
)
from mdmserver.storage.ports import DevicePorts

log = get_logger("connect")

_QUEUE_STATUS = {
    Status.ACKNOWLEDGED: QueueStatus.ACKNOWLEDGED,
    Status.ERROR: QueueStatus.ERROR,
    Status.COMMAND_FORMAT_ERROR: QueueStatus.COMMAND_FORMAT_ERROR,
    Status.NOT_NOW: QueueStatus.NOTNOW,
}

COMMAND_CONTENT_TYPE = "application/xml"


class CommandLoop:
    def __init__(
        self,
        storage: DevicePorts,
        steps: Sequence[Step],
        hooks: Hooks | None = None,
    ) -> None:
        self.storage = storage
        # Kept as given: the app factory fills the list once every feature is built.
        self.steps = steps
        self.hooks = hooks or Hooks()

    def handle(self, request: DeviceRequest, result: CommandResult) -> Reply:
        identity = result.identity
        body = request.body
        self._check_enrolled(request, result)
        answered = None
        if result.status != Status.IDLE:
            answered = self._record(result, body)
        session = Session(
            identity,
            new_session=result.status == Status.IDLE,
            answered=answered,
            not_after=request.not_after,
        )
        return self._reply(choose_next(self.steps, session))

    def _record(self, result: CommandResult, body: bytes) -> ResultEvent | None:
        """Store the answer; the event the readers saw, when it is the first (not NotNow)."""
        assert result.command_uuid is not None  # the parser requires it for non-Idle
        identity = result.identity
        recorded = self.storage.record_result(
            identity.id, result.command_uuid, _QUEUE_STATUS[result.status], body
        )
        outcome = recorded.outcome
        if outcome == ResultOutcome.NOT_SENT:
            raise BadDeviceRequest(
                f"command {result.command_uuid} was never sent to enrollment {identity.id}"
            )
        log.info(
            "command_result",
            extra={
                "fields": {
                    "enrollment_id": identity.id,
                    "command_uuid": result.command_uuid,
                    "status": result.status.value,
                    "duplicate": outcome == ResultOutcome.DUPLICATE,
                    "error_codes": [item.code for item in result.error_chain],
                }
            },
        )
        if outcome != ResultOutcome.RECORDED or result.status == Status.NOT_NOW:
            return None
        event = ResultEvent(result=result, request_type=recorded.request_type or "", body=body)
        if self.hooks.wants_results:
            with answering(self.steps):
                self.hooks.result(event)
        return event

    def _check_enrolled(self, request: DeviceRequest, result: CommandResult) -> None:
        """Refuse enrollments that are not active (last seen is service.last_seen's job)."""
        identity = result.identity
        status = (
            request.enrollment_status
            if request.status_known
            else self.storage.enrollment_status(identity.id)
        )
        if status != EnrollmentStatus.ACTIVE:
            raise UnknownDevice(f"enrollment {identity.id} is not enrolled")

    @staticmethod
    def _reply(command: NextCommand | None) -> Reply:
        if command is None:
            return EMPTY
        return Reply(command.plist, COMMAND_CONTENT_TYPE)
