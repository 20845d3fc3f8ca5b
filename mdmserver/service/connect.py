"""The command loop on the server URL: store each result, hand out the next command."""

from __future__ import annotations

from collections.abc import Sequence

from mdmserver.logs import get_logger
from mdmserver.protocol.results import CommandResult, Status
from mdmserver.service.base import EMPTY, Reply
from mdmserver.service.context import DeviceRequest
from mdmserver.service.errors import BadDeviceRequest, UnknownDevice
from mdmserver.service.hooks import Hooks, ResultEvent
from mdmserver.service.next_command import Session, Step, choose_next
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
        self.steps = list(steps)
        self.hooks = hooks or Hooks()

    def handle(self, request: DeviceRequest, result: CommandResult) -> Reply:
        identity = result.identity
        body = request.body
        self._check_enrolled(request, result)
        if result.status != Status.IDLE:
            self._record(result, body)
        command = choose_next(
            self.steps, Session(identity.id, new_session=result.status == Status.IDLE)
        )
        return self._reply(command)

    def _record(self, result: CommandResult, body: bytes) -> None:
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
        if (
            outcome == ResultOutcome.RECORDED
            and result.status != Status.NOT_NOW
            and self.hooks.wants_results
        ):
            request_type = recorded.request_type or ""
            self.hooks.result(ResultEvent(result=result, request_type=request_type, body=body))

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
