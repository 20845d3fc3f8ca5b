"""Console users and login failures in SQL (tables ``console_users``, ``console_login_failures``).

Only argon2id hashes of passwords are stored (hashing lives in the service). A login failure is
a row, so the login rate limit is shared by every web worker on the same database.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Engine, Row
from sqlalchemy.exc import IntegrityError

from mdmserver.storage.sql.schema import console_login_failures, console_users


class DuplicateUserName(ValueError):
    """A console user already has this name."""


@dataclass(frozen=True, slots=True)
class ConsoleUser:
    id: str
    name: str
    role: str
    password_hash: str
    must_change_password: bool
    disabled: bool
    session_epoch: int
    created_at: datetime
    last_login_at: datetime | None


class ConsoleStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, name: str, role: str, password_hash: str, now: datetime) -> ConsoleUser:
        row = {
            "id": secrets.token_hex(8),
            "name": name,
            "role": role,
            "password_hash": password_hash,
            "must_change_password": True,
            "disabled": False,
            "session_epoch": 0,
            "created_at": now,
            "updated_at": now,
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(console_users).values(**row))
        except IntegrityError:
            raise DuplicateUserName(name) from None
        found = self.by_name(name)
        assert found is not None
        return found

    def by_name(self, name: str) -> ConsoleUser | None:
        with self.engine.begin() as conn:
            row = conn.execute(select(console_users).where(console_users.c.name == name)).first()
        return _user(row) if row is not None else None

    def by_id(self, user_id: str) -> ConsoleUser | None:
        with self.engine.begin() as conn:
            row = conn.execute(select(console_users).where(console_users.c.id == user_id)).first()
        return _user(row) if row is not None else None

    def all(self) -> list[ConsoleUser]:
        with self.engine.begin() as conn:
            rows = conn.execute(select(console_users).order_by(console_users.c.name)).all()
        return [_user(row) for row in rows]

    def set_password(
        self, user_id: str, password_hash: str, *, must_change: bool, now: datetime
    ) -> None:
        """A new password ends every session signed in with the old one."""
        with self.engine.begin() as conn:
            conn.execute(
                update(console_users)
                .where(console_users.c.id == user_id)
                .values(
                    password_hash=password_hash,
                    must_change_password=must_change,
                    session_epoch=console_users.c.session_epoch + 1,
                    updated_at=now,
                )
            )

    def set_disabled(self, user_id: str, disabled: bool, now: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(console_users)
                .where(console_users.c.id == user_id)
                .values(
                    disabled=disabled,
                    session_epoch=console_users.c.session_epoch + 1,
                    updated_at=now,
                )
            )

    def logged_in(self, user_id: str, now: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(console_users).where(console_users.c.id == user_id).values(last_login_at=now)
            )

    # Login failures (the rate limit) --------------------------------------------------------

    def add_failure(self, address: str, name: str, now: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(console_login_failures).values(address=address, name=name, at=now))

    def failures_since(self, address: str, name: str, since: datetime) -> tuple[int, int]:
        """Failures from this address, and for this user name, since ``since``."""
        with self.engine.begin() as conn:
            by_address = conn.execute(
                select(func.count())
                .select_from(console_login_failures)
                .where(
                    console_login_failures.c.address == address,
                    console_login_failures.c.at >= since,
                )
            ).scalar_one()
            by_name = conn.execute(
                select(func.count())
                .select_from(console_login_failures)
                .where(console_login_failures.c.name == name, console_login_failures.c.at >= since)
            ).scalar_one()
        return int(by_address), int(by_name)

    def forget_failures(self, before: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(console_login_failures).where(console_login_failures.c.at < before))


def _user(row: Row) -> ConsoleUser:
    created = row.created_at
    assert created is not None
    return ConsoleUser(
        id=row.id,
        name=row.name,
        role=row.role,
        password_hash=row.password_hash,
        must_change_password=bool(row.must_change_password),
        disabled=bool(row.disabled),
        session_epoch=int(row.session_epoch),
        created_at=created,
        last_login_at=row.last_login_at,
    )
