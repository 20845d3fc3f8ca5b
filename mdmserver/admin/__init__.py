"""The administration service: what the admin API and the CLI both call.

Built once per app (or per CLI invocation) by :func:`build_admin`; the web layer only turns
HTTP into these calls and their results (or refusals) back into JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from mdmserver.admin.api_keys import ApiKeys
from mdmserver.admin.audit import Audit
from mdmserver.admin.commands import Commands
from mdmserver.admin.console_users import ConsoleUsers
from mdmserver.admin.devices import Devices
from mdmserver.admin.identities import DeviceIdentities
from mdmserver.admin.queue import Queues
from mdmserver.admin.tokens import AuditedTokens
from mdmserver.enrollment.service import EnrollmentTokens
from mdmserver.storage.ports import AdminPort, EnrollmentPort, Storage
from mdmserver.storage.sql.admin_store import AdminStore
from mdmserver.storage.sql.console_store import ConsoleStore
from mdmserver.storage.sql.enrollment_store import EnrollmentStore
from mdmserver.storage.sql.inventory_queries import InventoryQueries
from mdmserver.storage.sql.inventory_store import InventoryStore


@dataclass(frozen=True)
class Admin:
    store: AdminPort
    audit: Audit
    api_keys: ApiKeys
    devices: Devices
    identities: DeviceIdentities
    commands: Commands
    queues: Queues
    tokens: AuditedTokens
    console_users: ConsoleUsers


def build_admin(
    engine: Engine,
    storage: Storage,
    enrollment_store: EnrollmentPort | None = None,
    wake: Callable[[Sequence[str]], int] | None = None,
) -> Admin:
    store = AdminStore(engine)
    audit = Audit(store)
    inventory = InventoryQueries(engine)
    enrollment_store = enrollment_store or EnrollmentStore(engine)
    tokens = EnrollmentTokens(enrollment_store)
    return Admin(
        store=store,
        audit=audit,
        api_keys=ApiKeys(store, audit),
        devices=Devices(inventory, InventoryStore(engine)),
        identities=DeviceIdentities(inventory, enrollment_store, audit),
        commands=Commands(storage, inventory, audit, wake),
        queues=Queues(storage, inventory, audit),
        tokens=AuditedTokens(tokens, audit),
        console_users=ConsoleUsers(ConsoleStore(engine), audit),
    )
