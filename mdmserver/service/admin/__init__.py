"""The administration service: what the admin API and the CLI both call.

Built once per app (or per CLI invocation) by :func:`build_admin`; the web layer only turns
HTTP into these calls and their results (or refusals) back into JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from mdmserver.service.admin.api_keys import ApiKeys
from mdmserver.service.admin.audit import Audit
from mdmserver.service.admin.commands import Commands
from mdmserver.service.admin.console_users import ConsoleUsers
from mdmserver.service.admin.devices import Devices
from mdmserver.service.admin.identities import DeviceIdentities
from mdmserver.service.admin.queue import Queues
from mdmserver.service.admin.tokens import AuditedTokens
from mdmserver.service.enrollment import EnrollmentTokens
from mdmserver.storage.admin_store import AdminStore
from mdmserver.storage.console_store import ConsoleStore
from mdmserver.storage.enrollment_store import EnrollmentStore
from mdmserver.storage.inventory_queries import InventoryQueries
from mdmserver.storage.inventory_store import InventoryStore
from mdmserver.storage.ports import AdminPort, EnrollmentPort, Storage


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
