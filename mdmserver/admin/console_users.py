"""People who use the web console: accounts, roles, passwords and signing in.

Roles decide what a person may do, and the console asks :func:`allowed` before every action
(the page only hides what the role cannot do; the check is on the server):

- ``admin``: everything;
- ``helpdesk``: look, and the help-desk actions on one device (lock, lost mode, clear
  passcode, restart, refresh inventory, push) — never wipe, never policy or settings;
- ``auditor``: look and export, nothing else.

Passwords are argon2id hashes. A new or reset account gets a one-time password that must be
changed at the first sign-in. Failed sign-ins are counted in the database per address and per
account name, so the limit holds across web workers; past it the answer is 429 for a while.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from mdmserver.admin.audit import Audit
from mdmserver.admin.errors import AdminError, BadRequest, Conflict, NotFound
from mdmserver.errors import Kind
from mdmserver.logs import get_logger
from mdmserver.storage.ports import ConsoleUserPort
from mdmserver.storage.sql.console_store import ConsoleUser, DuplicateUserName

log = get_logger("console.users")

ROLES = ("admin", "helpdesk", "auditor")
HELPDESK_ACTIONS = frozenset(
    {
        "device.lock",
        "device.lost_mode",
        "device.clear_passcode",
        "device.restart",
        "device.refresh",
        "device.push",
    }
)
ADMIN_ONLY = frozenset(
    {
        "device.wipe",
        "command.send",
        "policy.edit",
        "tokens.manage",
        "profiles.manage",
        "settings.manage",
    }
)
PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset({"view", "export"}) | HELPDESK_ACTIONS | ADMIN_ONLY,
    "helpdesk": frozenset({"view"}) | HELPDESK_ACTIONS,
    "auditor": frozenset({"view", "export"}),
}
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
NAME_MAX = 64
# Sign-in limits: a person mistyping never meets them; a password-guessing script does.
FAILURE_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_NAME = 5
MAX_FAILURES_PER_ADDRESS = 20

_hasher = PasswordHasher()
# Verified against when the name is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def allowed(role: str, action: str) -> bool:
    return action in PERMISSIONS.get(role, frozenset())


class LoginRefused(AdminError):
    kind = Kind.UNAUTHENTICATED


class TooManyAttempts(AdminError):
    kind = Kind.RATE_LIMITED

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed sign-ins; try again in {retry_after // 60 + 1} minutes")
        self.retry_after = retry_after


@dataclass(frozen=True)
class NewPassword:
    user: ConsoleUser
    password: str  # shown once, never stored


def utcnow() -> datetime:
    return datetime.now(UTC)


class ConsoleUsers:
    def __init__(self, store: ConsoleUserPort, audit: Audit) -> None:
        self.store = store
        self.audit = audit

    # Accounts -------------------------------------------------------------------------------

    def create(
        self, name: str, role: str, *, actor: str, password: str | None = None
    ) -> NewPassword:
        with self.audit.record(actor, "console_user.create", [name]) as entry:
            _check_name(name)
            if role not in ROLES:
                raise BadRequest(f"role: must be one of {', '.join(ROLES)}, got {role!r}")
            entry.detail["role"] = role
            chosen = password if password is not None else _one_time_password()
            _check_password(chosen)
            try:
                user = self.store.create(name, role, _hasher.hash(chosen), utcnow())
            except DuplicateUserName:
                raise Conflict(f"a console user named {name!r} already exists") from None
        return NewPassword(user, chosen)

    def reset_password(self, name: str, *, actor: str) -> NewPassword:
        """A fresh one-time password; every session of the account ends."""
        with self.audit.record(actor, "console_user.reset_password", [name]):
            user = self._user(name)
            password = _one_time_password()
            self.store.set_password(user.id, _hasher.hash(password), must_change=True, now=utcnow())
        return NewPassword(user, password)

    def change_password(self, name: str, password: str, *, actor: str) -> None:
        with self.audit.record(actor, "console_user.change_password", [name]):
            user = self._user(name)
            _check_password(password)
            self.store.set_password(
                user.id, _hasher.hash(password), must_change=False, now=utcnow()
            )

    def set_disabled(self, name: str, disabled: bool, *, actor: str) -> None:
        action = "console_user.disable" if disabled else "console_user.enable"
        with self.audit.record(actor, action, [name]):
            self.store.set_disabled(self._user(name).id, disabled, utcnow())

    def list(self) -> list[ConsoleUser]:
        return self.store.all()

    def session_user(self, user_id: str, epoch: int) -> ConsoleUser | None:
        """The signed-in person, unless the account was disabled or its password changed."""
        user = self.store.by_id(user_id)
        if user is None or user.disabled or user.session_epoch != epoch:
            return None
        return user

    # Signing in -----------------------------------------------------------------------------

    def sign_in(self, name: str, password: str, address: str) -> ConsoleUser:
        now = utcnow()
        by_address, by_name = self.store.failures_since(
            address, name[:NAME_MAX], now - FAILURE_WINDOW
        )
        if by_address >= MAX_FAILURES_PER_ADDRESS or by_name >= MAX_FAILURES_PER_NAME:
            log.warning(
                "console_login_limited",
                extra={"fields": {"address": address, "user": name[:NAME_MAX]}},
            )
            raise TooManyAttempts(int(FAILURE_WINDOW.total_seconds()))
        user = self.store.by_name(name) if 0 < len(name) <= NAME_MAX else None
        ok = _verify(user.password_hash if user else _DUMMY_HASH, password)
        if user is None or not ok or user.disabled:
            self.store.add_failure(address, name[:NAME_MAX], now)
            reason = "unknown user" if user is None else "disabled" if ok else "wrong password"
            log.info(
                "console_login_failed",
                extra={"fields": {"address": address, "user": name[:NAME_MAX], "reason": reason}},
            )
            raise LoginRefused("wrong user name or password")
        self.store.logged_in(user.id, now)
        self.store.forget_failures(now - FAILURE_WINDOW)
        log.info("console_login", extra={"fields": {"user": user.name, "role": user.role}})
        return user

    def _user(self, name: str) -> ConsoleUser:
        user = self.store.by_name(name)
        if user is None:
            raise NotFound(f"no console user named {name!r}")
        return user


def _verify(password_hash: str, password: str) -> bool:
    if len(password) > MAX_PASSWORD_LENGTH:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _one_time_password() -> str:
    return secrets.token_urlsafe(15)


def _check_name(name: str) -> None:
    if not (0 < len(name) <= NAME_MAX) or not all(c.isalnum() or c in "._-@" for c in name):
        raise BadRequest(
            f"name: 1 to {NAME_MAX} letters, digits or . _ - @ (got {name[:NAME_MAX]!r})"
        )


def _check_password(password: str) -> None:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise BadRequest(
            f"password: must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters long"
        )
    if any(ord(c) < 32 for c in password):
        raise BadRequest("password: control characters are not allowed")
