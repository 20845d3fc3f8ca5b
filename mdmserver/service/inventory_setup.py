"""Builds inventory, compliance and trust for one app or one CLI run, from the configuration.

Without Flask, so the CLI and a job worker build exactly what the web app builds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine

from mdmserver.config import Config
from mdmserver.service.compliance import ComplianceService, Emit, PolicySource
from mdmserver.service.inventory import InventoryService
from mdmserver.service.remediation import ProfilesPort, Push, Remediator
from mdmserver.service.trust import TrustService
from mdmserver.service.trust_jwt import TrustSigner
from mdmserver.storage.base import Storage
from mdmserver.storage.compliance_store import ComplianceStore
from mdmserver.storage.inventory_store import InventoryStore

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
    holder: list[InventoryService] = []

    def refresh(device_id: str, now: object) -> bool:
        return holder[0].refresh(device_id, now)  # type: ignore[arg-type]

    remediator = Remediator(compliance_store, storage, refresh, profiles, push)
    compliance = ComplianceService(inventory_store, compliance_store, policies, remediator, emit)
    inventory = InventoryService(
        inventory_store,
        storage,
        compliance,
        interval_hours=config.inventory_interval_hours,
        on_enroll=config.inventory_on_enroll,
        push=push,
    )
    holder.append(inventory)
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
