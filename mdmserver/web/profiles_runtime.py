"""Wiring configuration profiles into one app: store, reconciliation hooks, admin service.

Called once by the app factory. It registers the hooks, wraps the device service so identity
certificates are kept (profiles are encrypted to them), and gives profile signing to the job
backend when the app has one (otherwise signatures are made on first use and cached).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask

from mdmserver.instance_files import SecretsKey
from mdmserver.logs import get_logger
from mdmserver.profiles.signing import Signing, register_tasks, sign_jobs
from mdmserver.service.profile_admin import ProfileAdmin
from mdmserver.service.profile_certs import CertificateRecorder
from mdmserver.service.profiles import ProfileService
from mdmserver.storage.profile_store import ProfileStore
from mdmserver.web.runtime import runtime

EXTENSION = "mdmserver.profiles"
log = get_logger("profiles")


@dataclass
class ProfilesRuntime:
    store: ProfileStore
    service: ProfileService
    admin: ProfileAdmin


def install_profiles(app: Flask) -> ProfilesRuntime:
    rt = runtime(app)
    store = ProfileStore(rt.engine, SecretsKey(rt.config.home))
    service = ProfileService(
        store,
        rt.storage,
        Signing(rt.config.home, store),
        access_challenge=lambda device_id: _access_challenge(app, device_id),
    )
    service.register(rt.hooks)
    rt.service = CertificateRecorder(rt.service, store)
    folder = rt.config.extra.get("profile_templates")
    jobs, pusher = getattr(rt, "jobs", None), getattr(rt, "pusher", None)
    admin = ProfileAdmin(
        store,
        service,
        Path(folder) if folder else None,
        presign=_presigner(getattr(jobs, "backend", None)),
        push=pusher.request_push if pusher is not None else None,
    )
    installed = ProfilesRuntime(store, service, admin)
    app.extensions[EXTENSION] = installed
    return installed


def _access_challenge(app: Flask, device_id: str) -> str | None:
    """A device-bound SCEP challenge, from the enrollment runtime (built after this one);
    None while enrollment is unavailable (no CA)."""
    from mdmserver.web.enrollment_runtime import enrollment_runtime

    profiles = enrollment_runtime(app).profiles
    return profiles.access_challenge(device_id) if profiles is not None else None


def profiles_runtime(app: Flask) -> ProfilesRuntime:
    return app.extensions[EXTENSION]


def _presigner(backend: Any) -> Callable[[list[bytes]], None] | None:
    """Sign new profile content in the job backend, ahead of the first device asking."""
    if backend is None or not hasattr(backend, "submit"):
        return None
    try:
        from mdmserver.jobs.tasks import TASKS

        register_tasks(TASKS)
    except ImportError:
        return None

    def presign(contents: list[bytes]) -> None:
        try:
            backend.submit(sign_jobs(contents))
        except Exception as exc:  # the queue being down must not refuse the admin change
            log.warning("presign_not_queued", extra={"fields": {"error": str(exc)}})

    return presign
