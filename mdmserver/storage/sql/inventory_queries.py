"""Read side of the device inventory for the admin API: filtered listing, detail, targets.

Filters that SQL can express run in SQL (platform by ProductName prefix, exact OS version,
enrolled, tags, last seen); a minimum OS version compares version numbers, which SQL text
cannot, so it is checked in Python while paging (keyset pagination on the device id).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    String,
    and_,
    cast,
    exists,
    func,
    or_,
    select,
    true,
)
from sqlalchemy.engine import Engine, Row

from mdmserver.catalog.platforms import PLATFORM_PREFIXES, platform_of
from mdmserver.catalog.schema import Platform, parse_version
from mdmserver.storage.base import AmbiguousSerial, pick_by_serial
from mdmserver.storage.sql import dialect
from mdmserver.storage.sql.schema import (
    cert_bindings,
    compliance_state,
    device_tags,
    devices,
    enrollments,
    inventory,
)

DEVICE_CHANNEL_TYPES = ("device", "user_enrollment_device")
_CHUNK = 1000


@dataclass(frozen=True, slots=True)
class DeviceFilter:
    platform: Platform | None = None
    os_version: str | None = None  # exact
    min_os_version: str | None = None
    enrolled: bool | None = None
    tags: tuple[str, ...] = ()  # a device must carry every one
    last_seen_before: datetime | None = None
    last_seen_after: datetime | None = None
    compliance: str | None = None  # compliant, noncompliant or unknown (no state yet)
    supervised: bool | None = None  # as the device's inventory reports it
    passcode_compliant: bool | None = None
    filevault: bool | None = None
    search: str | None = None  # part of the name, serial, UDID or user name

    def where(self) -> list[ColumnElement[bool]]:
        clauses: list[ColumnElement[bool]] = []
        if self.compliance is not None:
            known = exists().where(
                compliance_state.c.device_id == devices.c.id,
                compliance_state.c.state != "unknown",
            )
            if self.compliance == "unknown":
                clauses.append(~known)
            else:
                clauses.append(
                    exists().where(
                        compliance_state.c.device_id == devices.c.id,
                        compliance_state.c.state == self.compliance,
                    )
                )
        for fact in ("supervised", "passcode_compliant", "filevault"):
            wanted = getattr(self, fact)
            if wanted is not None:
                clauses.append(
                    exists().where(
                        inventory.c.device_id == devices.c.id, inventory.c[fact].is_(wanted)
                    )
                )
        if self.search:
            pattern = self.search.lower()
            clauses.append(
                or_(
                    devices.c.id == self.search,
                    devices.c.serial_number == self.search,
                    func.lower(devices.c.device_name).contains(pattern, autoescape=True),
                    func.lower(devices.c.serial_number).contains(pattern, autoescape=True),
                    func.lower(devices.c.id).contains(pattern, autoescape=True),
                    # A semi-join, not a correlated EXISTS: the user names are scanned once.
                    devices.c.id.in_(
                        select(enrollments.c.device_id).where(
                            or_(
                                func.lower(enrollments.c.user_short_name).contains(
                                    pattern, autoescape=True
                                ),
                                func.lower(enrollments.c.user_long_name).contains(
                                    pattern, autoescape=True
                                ),
                            )
                        )
                    ),
                )
            )
        if self.platform is not None:
            prefixes = PLATFORM_PREFIXES[self.platform]
            clauses.append(
                or_(
                    *(devices.c.product_name.startswith(p, autoescape=True) for p in prefixes),
                    and_(
                        devices.c.product_name.is_(None),
                        or_(*(devices.c.model.startswith(p, autoescape=True) for p in prefixes)),
                    ),
                )
            )
        if self.os_version is not None:
            clauses.append(devices.c.os_version == self.os_version)
        if self.enrolled is not None:
            clauses.append(devices.c.enrolled.is_(self.enrolled))
        for tag in self.tags:
            clauses.append(
                exists().where(device_tags.c.device_id == devices.c.id, device_tags.c.tag == tag)
            )
        if self.last_seen_before is not None:
            clauses.append(devices.c.last_seen_at < self.last_seen_before)
        if self.last_seen_after is not None:
            clauses.append(devices.c.last_seen_at > self.last_seen_after)
        if self.min_os_version is not None:
            clauses.append(devices.c.os_version.is_not(None))
        return clauses

    def accepts(self, os_version: str | None) -> bool:
        """The part of the filter SQL cannot do."""
        if self.min_os_version is None:
            return True
        try:
            return parse_version(os_version or "") >= parse_version(self.min_os_version)
        except ValueError:
            return False


@dataclass(frozen=True, slots=True)
class DeviceRow:
    id: str
    serial_number: str | None
    platform: Platform | None
    product_name: str | None
    model: str | None
    model_name: str | None
    os_version: str | None
    build_version: str | None
    device_name: str | None
    enrolled: bool
    user_enrollment: bool
    created_at: datetime | None
    last_seen_at: datetime | None
    tags: tuple[str, ...] = ()
    udid_attested: bool = False  # identity issued for a UDID Apple attested (OTA enrollment)


@dataclass(frozen=True, slots=True)
class EnrollmentRow:
    id: str
    type: str
    status: str
    user_id: str | None
    user_short_name: str | None
    push_token_present: bool
    token_stale: bool
    unlock_token_present: bool
    last_seen_at: datetime | None


@dataclass(frozen=True, slots=True)
class DeviceDetail:
    device: DeviceRow
    enrollments: list[EnrollmentRow]
    identity_expires_at: datetime | None


class TargetRow(NamedTuple):
    """A device's device channel, as the command catalog needs to judge a command for it.
    (A tuple: 100,000 of them are built per bulk send, and frozen dataclasses are slow.)"""

    device_id: str
    enrollment_id: str | None
    enrollment_status: str | None
    platform: Platform | None
    os_version: str | None
    user_enrollment: bool
    has_unlock_token: bool
    supervised: bool | None = None  # as inventory last reported it; None before that


@dataclass
class DevicePage:
    devices: list[DeviceRow]
    next_cursor: str | None = None


_DEVICE_COLUMNS = (
    devices.c.id,
    devices.c.serial_number,
    devices.c.product_name,
    devices.c.model,
    devices.c.model_name,
    devices.c.os_version,
    devices.c.build_version,
    devices.c.device_name,
    devices.c.enrolled,
    devices.c.user_enrollment,
    devices.c.created_at,
    devices.c.last_seen_at,
    devices.c.udid_attested,
)


SORTABLE = {
    "name": devices.c.device_name,
    "serial": devices.c.serial_number,
    "os": devices.c.os_version,
    "last_seen": devices.c.last_seen_at,
    "model": devices.c.product_name,
}


class InventoryQueries:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def list_devices(self, flt: DeviceFilter, limit: int, after: str | None) -> DevicePage:
        """Up to ``limit`` devices with ids greater than ``after``, ordered by id."""
        found: list[DeviceRow] = []
        cursor, more = after, True
        with self.engine.begin() as conn:
            while len(found) < limit and more:
                query = select(*_DEVICE_COLUMNS).where(*flt.where()).order_by(devices.c.id)
                if cursor is not None:
                    query = query.where(devices.c.id > cursor)
                batch = conn.execute(query.limit(max(limit, 200))).all()
                more = len(batch) == max(limit, 200)
                for row in batch:
                    cursor = row.id
                    if flt.accepts(row.os_version):
                        found.append(self._device(row))
                        if len(found) == limit:
                            break
            tags = self._tags(conn, [d.id for d in found])
        rows = [_with_tags(d, tags.get(d.id, ())) for d in found]
        # A full page may be followed by an empty one; that is the price of not counting.
        return DevicePage(rows, rows[-1].id if len(rows) == limit else None)

    def page(
        self,
        flt: DeviceFilter,
        *,
        sort: str = "name",
        descending: bool = False,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[DeviceRow], int]:
        """One page of devices in the order a person asked for, and how many match in all
        (the console's table: numbered pages, sortable columns). ``min_os_version`` is not
        applied here: it cannot be expressed in SQL."""
        column = SORTABLE[sort]
        order = [column.desc() if descending else column.asc(), devices.c.id]
        clauses = flt.where()
        with self.engine.begin() as conn:
            total = conn.execute(
                select(func.count()).select_from(devices).where(*clauses)
            ).scalar_one()
            rows = conn.execute(
                select(*_DEVICE_COLUMNS)
                .where(*clauses)
                .order_by(*order)
                .offset(offset)
                .limit(limit)
            ).all()
            found = [self._device(row) for row in rows]
            tags = self._tags(conn, [d.id for d in found])
        return [_with_tags(d, tags.get(d.id, ())) for d in found], int(total)

    def find_device(self, ident: str) -> DeviceRow | None:
        """By UDID (or EnrollmentID), else by serial number: the one enrolled device with it
        (AmbiguousSerial when several are), or the most recently updated one."""
        with self.engine.begin() as conn:
            row = conn.execute(select(*_DEVICE_COLUMNS).where(devices.c.id == ident)).first()
            if row is None:
                rows = conn.execute(
                    select(*_DEVICE_COLUMNS)
                    .where(devices.c.serial_number == ident)
                    .order_by(devices.c.updated_at.desc(), devices.c.id)
                ).all()
                row = pick_by_serial(ident, rows)
            if row is None:
                return None
            return _with_tags(self._device(row), self._tags(conn, [row.id]).get(row.id, ()))

    def device_detail(self, device_id: str) -> DeviceDetail | None:
        device = self.find_device(device_id)
        if device is None:
            return None
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(enrollments)
                .where(enrollments.c.device_id == device.id)
                .order_by(enrollments.c.created_at, enrollments.c.id)
            ).all()
            expiry = conn.execute(
                select(func.max(cert_bindings.c.not_after)).where(
                    cert_bindings.c.device_id == device.id
                )
            ).scalar()
        return DeviceDetail(device, [self._enrollment(r) for r in rows], expiry)

    def resolve(
        self, idents: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> tuple[dict[str, TargetRow], list[str]]:
        """Targets for UDIDs or serial numbers, and the idents no device answers to. A serial
        number that several enrolled devices report raises AmbiguousSerial, naming them all.

        On PostgreSQL each lookup is one statement with an array parameter (100,000 ids in
        one round trip); elsewhere the ids go in chunks of an IN list.
        """
        wanted = list(dict.fromkeys(idents))
        by_ident: dict[str, TargetRow] = {}
        ambiguous: dict[str, list[str]] = {}
        step = len(wanted) or 1 if dialect.is_postgresql(self.engine) else _CHUNK
        with self.engine.begin() as conn:
            for start in range(0, len(wanted), step):
                chunk = wanted[start : start + step]
                for row in conn.execute(_target_query(_matches(devices.c.id, chunk))).all():
                    by_ident.setdefault(row.id, _target(row))
                by_serial = [ident for ident in chunk if ident not in by_ident]
                if by_serial:
                    query = _target_query(_matches(devices.c.serial_number, by_serial))
                    same_serial: dict[str, list[Row[Any]]] = {}
                    order = (devices.c.updated_at.desc(), devices.c.id)
                    for row in conn.execute(query.order_by(*order)):
                        same_serial.setdefault(row.serial_number, []).append(row)
                    for serial, rows in same_serial.items():
                        try:
                            chosen = pick_by_serial(serial, rows)
                        except AmbiguousSerial as exc:
                            ambiguous.update(exc.candidates)
                            continue
                        if chosen is not None:
                            by_ident[serial] = _target(chosen)
                if progress is not None:
                    progress(len(chunk))
        if ambiguous:
            raise AmbiguousSerial(ambiguous)
        missing = [ident for ident in wanted if ident not in by_ident]
        return {ident: by_ident[ident] for ident in wanted if ident in by_ident}, missing

    def matching_targets(self, flt: DeviceFilter) -> Iterator[TargetRow]:
        """Every device the filter selects, with its device channel."""
        clauses = flt.where()
        with self.engine.begin() as conn:
            rows = conn.execute(_target_query(and_(*clauses) if clauses else None)).all()
        for row in rows:
            if flt.accepts(row.os_version):
                yield _target(row)

    def devices_of(self, enrollment_ids: Sequence[str]) -> dict[str, str]:
        """enrollment id -> device id."""
        wanted = list(dict.fromkeys(enrollment_ids))
        owners: dict[str, str] = {}
        with self.engine.begin() as conn:
            for start in range(0, len(wanted), _CHUNK):
                query = select(enrollments.c.id, enrollments.c.device_id).where(
                    enrollments.c.id.in_(wanted[start : start + _CHUNK])
                )
                owners.update({row.id: row.device_id for row in conn.execute(query)})
        return owners

    def channels(self, device_id: str) -> list[str]:
        """Every enrollment (device and user channels) of a device."""
        with self.engine.begin() as conn:
            query = select(enrollments.c.id).where(enrollments.c.device_id == device_id)
            return list(conn.execute(query.order_by(enrollments.c.id)).scalars())

    @staticmethod
    def _tags(conn: Any, device_ids: Sequence[str]) -> dict[str, tuple[str, ...]]:
        if not device_ids:
            return {}
        found: dict[str, list[str]] = {}
        query = (
            select(device_tags.c.device_id, device_tags.c.tag)
            .where(device_tags.c.device_id.in_(list(device_ids)))
            .order_by(device_tags.c.tag)
        )
        for device_id, tag in conn.execute(query):
            found.setdefault(device_id, []).append(tag)
        return {key: tuple(value) for key, value in found.items()}

    @staticmethod
    def _device(row: Any) -> DeviceRow:  # a Row of _DEVICE_COLUMNS
        return DeviceRow(
            id=row.id,
            serial_number=row.serial_number,
            platform=platform_of(row.product_name, row.model),
            product_name=row.product_name,
            model=row.model,
            model_name=row.model_name,
            os_version=row.os_version,
            build_version=row.build_version,
            device_name=row.device_name,
            enrolled=bool(row.enrolled),
            user_enrollment=bool(row.user_enrollment),
            created_at=row.created_at,
            last_seen_at=row.last_seen_at,
            udid_attested=bool(row.udid_attested),
        )

    @staticmethod
    def _enrollment(row: Row[Any]) -> EnrollmentRow:
        return EnrollmentRow(
            id=row.id,
            type=row.type,
            status=row.status,
            user_id=row.user_id,
            user_short_name=row.user_short_name,
            push_token_present=bool(row.push_token),
            token_stale=bool(row.token_stale),
            unlock_token_present=row.unlock_token is not None,
            last_seen_at=row.last_seen_at,
        )


def _with_tags(device: DeviceRow, tags: tuple[str, ...]) -> DeviceRow:
    return DeviceRow(**{**{f: getattr(device, f) for f in DeviceRow.__slots__}, "tags": tags})


def _target_query(where: Any) -> Any:
    channel = and_(
        enrollments.c.device_id == devices.c.id,
        enrollments.c.type.in_(DEVICE_CHANNEL_TYPES),
    )
    query = select(
        devices.c.id,
        devices.c.serial_number,
        devices.c.product_name,
        devices.c.model,
        devices.c.os_version,
        devices.c.user_enrollment,
        enrollments.c.id.label("enrollment_id"),
        enrollments.c.status.label("enrollment_status"),
        enrollments.c.unlock_token.is_not(None).label("has_unlock_token"),
        devices.c.enrolled,
        inventory.c.supervised,
    ).select_from(
        devices.outerjoin(enrollments, channel).outerjoin(
            inventory, inventory.c.device_id == devices.c.id
        )
    )
    return query.where(where if where is not None else true())


def _matches(column: Any, values: list[str]) -> ColumnElement[bool]:
    if len(values) > _CHUNK:
        # PostgreSQL: one array parameter, unnested so the planner can hash-join it
        # (``= ANY(param)`` would compare every row with every element).
        idents = func.unnest(cast(values, ARRAY(String))).table_valued("ident").render_derived()
        return column.in_(select(idents.c.ident))
    return column.in_(values)


_platform = lru_cache(maxsize=4096)(platform_of)


def _target(row: Row[Any]) -> TargetRow:
    return TargetRow(
        row.id,
        row.enrollment_id,
        row.enrollment_status,
        _platform(row.product_name, row.model),
        row.os_version,
        bool(row.user_enrollment),
        bool(row.has_unlock_token),
        None if row.supervised is None else bool(row.supervised),
    )
