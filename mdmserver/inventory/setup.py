"""Builds inventory, compliance and trust from the configuration: part of the server
:func:`mdmserver.assembly.build_server` assembles (the ``compliance`` CLI commands build this
part alone).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import Engine

from mdmserver.compliance.remediation import ProfilesPort, Push, Remediator
from mdmserver.compliance.service import ComplianceService, Emit, PolicySource
from mdmserver.compliance.trust import TrustService
from mdmserver.compliance.trust_jwt import TrustSigner
from mdmserver.config import Config
from mdmserver.inventory.service import InventoryService
from mdmserver.storage.base import Storage
from mdmserver.storage.sql.compliance_store import ComplianceStore
from mdmserver.storage.sql.inventory_store import InventoryStore

POLICY_FILES = ("compliance.toml", "compliance.json")


@dataclass
class InventoryRuntime:
    inventory: InventoryService
    compliance: ComplianceService
    policies: PolicySource
    trust: TrustService
    signer: TrustSigner
    compliance_store: ComplianceStore


def policy_path(config: Config) -> Path:
    configured = config.compliance_policy_file
    if configured:
        return Path(configured)
    for name in POLICY_FILES:
        if (config.home / name).is_file():
            return config.home / name
    return config.home / POLICY_FILES[0]


def build_inventory(
    config: Config,
    engine: Engine,
    storage: Storage,
    *,
    emit: Emit | None = None,
    push: Push | None = None,
    profiles: ProfilesPort | None = None,
) -> InventoryRuntime:
    inventory_store = InventoryStore(engine)
    compliance_store = ComplianceStore(engine)
    policies = PolicySource(compliance_store, policy_path(config))
    # Remediation asks for an inventory refresh, which is the inventory service's, which
    # reports answers to compliance, which remediates: the remediator is given the inventory
    # service's refresh once that exists (until then it has nothing to refresh).
    remediator = Remediator(compliance_store, storage, _no_refresh, profiles, push)
    compliance = ComplianceService(inventory_store, compliance_store, policies, remediator, emit)
    inventory = InventoryService(
        inventory_store,
        storage,
        compliance,
        interval_hours=config.inventory_interval_hours,
        on_enroll=config.inventory_on_enroll,
        push=push,
    )
    remediator.refresh = inventory.refresh
    issuer = config.server_url or "mdmserver"
    signer = TrustSigner(config.home, issuer, config.trust_assertion_ttl_seconds)
    return InventoryRuntime(
        inventory=inventory,
        compliance=compliance,
        policies=policies,
        trust=TrustService(compliance_store, policies),
        signer=signer,
        compliance_store=compliance_store,
    )


def _no_refresh(device_id: str, now: datetime) -> bool:
    return False


def push_from(pusher: object | None) -> Callable[[list[str]], object] | None:
    """issue #4's Pusher.request_push, when the app has one."""
    request_push = getattr(pusher, "request_push", None)
    return request_push if callable(request_push) else None


class ProfilesAdapter:
    """issue #6's profile store and service, seen through remediation's ProfilesPort."""

    def __init__(self, store: object, service: object) -> None:
        self.store = store
        self.service = service

    def assigned(self, device_id: str) -> set[str]:
        return {p.identifier for p in self.store.desired_for(device_id)}  # type: ignore[attr-defined]

    def reconcile(self, device_id: str) -> None:
        self.service.reconcile(device_id)  # type: ignore[attr-defined]
