"""How the server is assembled: the one place that says what it is made of.

:func:`build_server` turns the configuration into a :class:`Server`, in this order (each part
takes only what was built before it, so the order below is the whole dependency story):

    1. settings     the home folder, the push certificate's topic, the database (migrated, or
                    checked when a release step migrates it)
    2. storage      the device store (SQLStorage), enrollment identities, the job backend and
                    its push dispatcher (jobs/runtime.py), ``storage`` wrapped so every command
                    a feature queues is pushed (service/wakes.py), rate limits, last seen
    3. enrollment   SCEP, enrollment profiles, over the air (enrollment/setup.py)
    4. profiles     configuration profiles: store, reconciliation hooks, admin, signing jobs
    5. inventory    inventory, compliance, remediation, device trust (inventory/setup.py)
    6. ddm          Declarative Device Management; its status reports feed compliance
    7. apps         the app catalog, Apps and Books licenses, desired state for apps, the
                    roll-out of a required assignment (a job in the background backend)
    8. device stack what a device gets next (the steps of service/next_command.py: renewal,
                    profiles, apps, remediation, the queue), then the service every device
                    request goes through, innermost first:
                    CoreService (check-in handlers, command loop) -> WebhookEvents -> PushQueued
                    -> SeenEvents -> CertAuth -> CertificateRecorder (profiles encrypt to the
                    identity certificates it keeps)
    9. admin        the admin service the API, the console and the CLI share
   10. metrics      what /metrics reads at scrape time (database, push, Apps and Books token)
   11. upkeep       renewals, inventory refresh, stale compliance, pending Apps and Books events,
                    the scheduled app reconcile: run with the periodic push scan, wherever that
                    runs (maintenance.py)

Features register what they do when devices answer or enroll on the one :class:`Hooks`.

Who uses it: ``create_app`` (web/app.py) serves one ``Server`` over HTTP and adds only web
things (device authentication, request ids, error pages, blueprints); ``mdmserver worker``
builds one with ``role="worker"`` (its dispatcher scans, and no Flask app is built); the admin
CLI builds one with ``role="cli"`` (its push requests stay in the outbox for the running server).
Nothing here imports Flask.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

from cryptography import x509
from sqlalchemy.engine import Engine

from mdmserver.admin import Admin, build_admin
from mdmserver.apps.declarative import AppDeclarations
from mdmserver.apps.reconcile import AppReconciler, chain_status
from mdmserver.apps.rollout import Rollouts
from mdmserver.apps.service import AppsService
from mdmserver.config import Config
from mdmserver.crypto.ca import load_pem_certificates
from mdmserver.crypto.trust import TrustStore
from mdmserver.ddm.feed import InventoryFeed
from mdmserver.ddm.service import DDMService
from mdmserver.enrollment.instance import CA_CERT, CA_KEY
from mdmserver.enrollment.renewal import RenewalStep
from mdmserver.enrollment.setup import EnrollmentRuntime, build_enrollment
from mdmserver.instance_files import SecretsKey, ensure_home
from mdmserver.inventory.setup import InventoryRuntime, ProfilesAdapter, build_inventory
from mdmserver.jobs.backend import JobBackend
from mdmserver.jobs.metrics import register_push_metrics
from mdmserver.jobs.runtime import Jobs, Role, build_jobs
from mdmserver.logs import get_logger
from mdmserver.maintenance import Task, maintenance_tasks, upkeep
from mdmserver.metrics.database import register_database_metrics
from mdmserver.metrics.registry import MetricsRegistry, Sample
from mdmserver.profiles.admin import ProfileAdmin
from mdmserver.profiles.certs import CertificateRecorder
from mdmserver.profiles.service import ProfileService
from mdmserver.profiles.signing import Signing, register_tasks, sign_jobs
from mdmserver.push.instance import with_push_topic
from mdmserver.push.scheduling import Pusher
from mdmserver.service.base import MDMService
from mdmserver.service.certauth import CertAuth
from mdmserver.service.checkin import CheckinHandlers
from mdmserver.service.connect import CommandLoop
from mdmserver.service.core import CoreService
from mdmserver.service.hooks import Hooks
from mdmserver.service.last_seen import SeenEvents, SeenRecorder
from mdmserver.service.next_command import Step, build_steps
from mdmserver.service.rate_limits import RateLimiter, build_rate_limiter
from mdmserver.service.reenroll import ReenrollRule
from mdmserver.service.wakes import PushQueued, WakingStorage
from mdmserver.service.webhooks import Emit, WebhookEvents
from mdmserver.storage.base import Storage
from mdmserver.storage.sql import migrate
from mdmserver.storage.sql.app_store import AppFiles, AppStore
from mdmserver.storage.sql.ddm_store import DDMStore
from mdmserver.storage.sql.device_store import SQLStorage
from mdmserver.storage.sql.engine import make_engine
from mdmserver.storage.sql.enrollment_store import EnrollmentStore
from mdmserver.storage.sql.profile_store import ProfileStore

log = get_logger("app")


@dataclass
class ProfilesRuntime:
    store: ProfileStore
    service: ProfileService
    admin: ProfileAdmin


@dataclass
class DDMRuntime:
    store: DDMStore
    service: DDMService


@dataclass
class Server:
    """Everything one server process runs with; ``close()`` stops its threads and connections."""

    config: Config
    engine: Engine
    # The device store, wrapped so that what features queue is pushed (service/wakes.py).
    storage: Storage
    # The device service stack every check-in and command result goes through.
    service: MDMService
    hooks: Hooks
    jobs: Jobs
    pusher: Pusher
    admin: Admin
    enrollment: EnrollmentRuntime
    profiles: ProfilesRuntime
    inventory: InventoryRuntime
    ddm: DDMRuntime
    apps: AppsService
    # The device CAs and our own issuing CA: the web layer authenticates devices with them.
    device_cas: TrustStore | None = None
    own_ca: x509.Certificate | None = None
    # The upkeep tasks by name, run with the periodic push scan (maintenance.py).
    maintenance: dict[str, Task] = field(default_factory=dict)
    metrics: MetricsRegistry = field(default_factory=MetricsRegistry)
    # 429s for enrollment, SCEP and admin key guesses, counted across processes (web only).
    rate_limiter: RateLimiter | None = None
    # Last seen of device requests, written in batches by a thread (web only).
    seen: SeenRecorder | None = None

    def close(self) -> None:
        """Stop the background threads and release the database connections.

        The push dispatcher claims work from the database's outbox: a server left running
        would take (and, configured differently, fail) pushes that belong to another.
        """
        if self.seen is not None:
            self.seen.close()
        self.jobs.close()
        self.storage.dispose()


def build_server(config: Config, *, role: Role = "web", engine: Engine | None = None) -> Server:
    """The whole server from the configuration (see the module docstring for the map).

    ``role`` says which process this is (jobs/runtime.py): ``web`` (the default), ``worker``
    or ``cli``. ``engine`` is an already opened (and checked) database, as the CLI has one.
    """
    # 1. settings
    ensure_home(config.home)
    config = with_push_topic(config)  # the installed push certificate's topic is accepted
    if role == "web" and config.reenroll == "open":
        log.warning(
            "reenroll_open",
            extra={
                "fields": {
                    "detail": "reenroll = open: any identity can take over an enrolled device"
                }
            },
        )
    # Read before anything starts a thread: a configured CA file that is missing stops here.
    device_cas = load_trust(config) if role == "web" else None
    engine = engine or open_database(config)

    # 2. storage, background work
    storage = SQLStorage(engine)
    identities = EnrollmentStore(engine)
    hooks = Hooks()
    jobs = build_jobs(config, engine, role=role)
    wake = jobs.pusher.request_push
    # Features queue commands through this one, so each is pushed right away (service.wakes);
    # the admin asks for its pushes itself.
    waking = WakingStorage(storage, wake)
    features = cast(Storage, waking)
    webhooks = jobs.emitter.emit if jobs.emitter is not None else None
    rate_limiter = build_rate_limiter(config, engine) if role == "web" else None
    seen = SeenRecorder(storage) if role == "web" else None

    # 3. to 7. the features
    enrollment = build_enrollment(config, identities, rate_limiter)
    profiles = build_profiles(config, engine, features, hooks, jobs, enrollment)
    inventory = build_inventory(
        config,
        engine,
        features,
        emit=webhooks,
        push=wake,
        profiles=ProfilesAdapter(profiles.store, profiles.service),
    )
    inventory.inventory.register(hooks)
    ddm = build_ddm(engine, features, hooks, wake, inventory)
    # A CLI without Redis runs the roll-out in the call: its in-process jobs end with it.
    background = jobs.backend if role != "cli" or jobs.backend.name == "rq" else None
    apps = build_apps(config, engine, features, hooks, ddm, inventory, background)

    # 8. what a device gets next (the order is service/next_command.py's), the service stack
    reconciler = hooks.readers.apps
    steps = build_steps(
        queue=storage,
        renewal=RenewalStep(
            identities,
            waking,
            enrollment.profiles,
            window=timedelta(days=config.identity_renewal_days),
        )
        if enrollment.profiles is not None
        else None,
        profiles=profiles.service,
        apps=reconciler if isinstance(reconciler, AppReconciler) else None,
        remediation=inventory.compliance.remediator,
    )
    service = CertificateRecorder(
        build_service(storage, config, identities, hooks, webhooks, waking, seen, steps=steps),
        profiles.store,
    )

    server = Server(
        config=config,
        engine=engine,
        storage=features,
        service=service,
        hooks=hooks,
        jobs=jobs,
        pusher=jobs.pusher,
        # 9. admin
        admin=build_admin(engine, storage, identities, wake=wake),
        enrollment=enrollment,
        profiles=profiles,
        inventory=inventory,
        ddm=ddm,
        apps=apps,
        device_cas=device_cas,
        own_ca=issuing_ca(config),
        rate_limiter=rate_limiter,
        seen=seen,
    )

    # 10. metrics
    register_database_metrics(server.metrics, engine)
    register_push_metrics(server.metrics, jobs.pusher, config.resolved_push_cert_file)
    server.metrics.register(
        "mdm_vpp_token_days_left",
        "gauge",
        "Days until the Apps and Books content token expires (licenses stop after).",
        lambda: _vpp_days_left(apps),
    )

    # 11. upkeep, run with the push scan where this process scans
    server.maintenance = maintenance_tasks(
        features,
        enrollment=enrollment,
        inventory=inventory,
        apps=apps,
        app_reconciler=reconciler if isinstance(reconciler, AppReconciler) else None,
        renewal_days=config.identity_renewal_days,
        apps_reconcile_interval=timedelta(hours=config.apps_reconcile_interval_hours),
    )
    jobs.dispatcher.maintenance = upkeep(server.maintenance, waking.batch)
    return server


def open_database(config: Config) -> Engine:
    """The database, migrated when it migrates itself (the embedded default), otherwise
    checked: a shared database is migrated by the release step (raises SchemaNotCurrent)."""
    engine = make_engine(config.resolved_database_url)
    try:
        if config.migrate_on_start:
            migrate.upgrade(engine)
        else:
            migrate.require_current(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine


def build_service(
    storage: Storage,
    config: Config,
    identities: EnrollmentStore | None = None,
    hooks: Hooks | None = None,
    webhooks: Emit | None = None,
    waking: WakingStorage | None = None,
    seen: SeenRecorder | None = None,
    *,
    steps: Sequence[Step] | None = None,
) -> MDMService:
    """The service stack, innermost first: core handlers, webhook events, pushes for what the
    request queued, last seen, certificate binding."""
    core = CoreService(
        CheckinHandlers(
            storage,
            config.push_topics,
            allow_user_auth=config.user_authenticate == "allow",
            hooks=hooks,
        ),
        CommandLoop(storage, steps if steps is not None else build_steps(queue=storage), hooks),
    )
    inner: MDMService = core if webhooks is None else WebhookEvents(core, webhooks)
    if waking is not None:
        inner = PushQueued(inner, waking)
    if seen is not None:
        inner = SeenEvents(inner, seen)
    reenroll = None
    if identities is not None:
        reenroll = ReenrollRule(identities, strict=config.reenroll == "strict")
    return CertAuth(inner, storage, identities, reenroll)


def build_profiles(
    config: Config,
    engine: Engine,
    storage: Storage,
    hooks: Hooks,
    jobs: Jobs,
    enrollment: EnrollmentRuntime,
) -> ProfilesRuntime:
    """Configuration profiles: reconciled on enrollment and answers (hooks), signed ahead of
    the first device asking in the job backend (otherwise on first use, and cached)."""
    store = ProfileStore(engine, SecretsKey(config.home))
    service = ProfileService(
        store, storage, Signing(config.home, store), access_challenge=enrollment.access_challenge
    )
    service.register(hooks)
    folder = config.extra.get("profile_templates")
    admin = ProfileAdmin(
        store,
        service,
        Path(folder) if folder else None,
        presign=_presigner(jobs),
        push=jobs.pusher.request_push,
    )
    return ProfilesRuntime(store, service, admin)


def build_ddm(
    engine: Engine,
    storage: Storage,
    hooks: Hooks,
    push: Callable[[Iterable[str]], int],
    inventory: InventoryRuntime,
) -> DDMRuntime:
    """DDM answers DeclarativeManagement check-ins (through the same stack as every check-in),
    is turned on for channels that enroll, and feeds status reports to compliance."""
    store = DDMStore(engine)
    service = DDMService(store, storage, push=push, on_status=InventoryFeed(inventory))
    service.ensure_builtin()
    hooks.serve_declarative(service.handle)
    hooks.on_enrolled(service.on_enrolled)
    return DDMRuntime(store, service)


def build_apps(
    config: Config,
    engine: Engine,
    storage: Storage,
    hooks: Hooks,
    ddm: DDMRuntime,
    inventory: InventoryRuntime,
    background: JobBackend | None = None,
) -> AppsService:
    """The app catalog and Apps and Books licenses. Enrollment and the app-list answers
    reconcile a device's apps with its desired state (hooks, the apps step); App Store apps
    go as ``app.managed`` declarations to devices that take them (DDM), whose
    ``app.managed.list`` status feeds the same per-device state; compliance remediation
    reinstalls required apps through the reconciler. A required assignment is rolled out to
    every device it targets at once, after the declarations are published: as a job in
    ``background`` (the job backend) when given, otherwise in the call (apps/rollout.py)."""
    store = AppStore(engine)
    declarations = AppDeclarations(store, ddm.service)
    rollouts = Rollouts(store, storage, config.server_url, declarations, background)
    service = AppsService(
        store,
        AppFiles(config.home / "apps"),
        server_url=config.server_url,
        token_file=config.home / "vpp.token",
        vpp_url=config.vpp_url,
        on_assignments=declarations.publish,
        roll_out=rollouts,
    )
    reconciler = AppReconciler(store, storage, config.server_url, declarations)
    reconciler.register(hooks)
    reconciler.register_app_state(hooks)
    inventory.compliance.remediator.apps = reconciler
    ddm.service.on_status = chain_status(ddm.service.on_status, reconciler.on_ddm_status)
    summary = service.token_summary()
    for warning in summary["warnings"] if summary["installed"] else ():
        log.warning("vpp_token_expiring", extra={"fields": {"detail": warning}})
    return service


def load_trust(config: Config) -> TrustStore | None:
    """The device CAs: the server's own CA plus any an organisation configured (whose
    identities may come without an extendedKeyUsage)."""
    own = config.resolved_ca_cert_file
    cas = load_pem_certificates(own.read_bytes()) if own.is_file() else []
    extra = []
    for path in (Path(value) for value in config.device_ca_files):
        if not path.is_file():
            raise FileNotFoundError(f"device CA file {path} does not exist")
        extra.extend(load_pem_certificates(path.read_bytes()))
    if not cas and not extra:
        log.warning(
            "no_device_ca",
            extra={"fields": {"detail": "no device CA configured: every device is refused"}},
        )
        return None
    return TrustStore([*cas, *extra], eku_optional=extra)


def issuing_ca(config: Config) -> x509.Certificate | None:
    """The CA our SCEP server issues with (MDM_HOME/ca.pem beside its key), if there is one."""
    cert, key = config.home / CA_CERT, config.home / CA_KEY
    if not (cert.is_file() and key.is_file()):
        return None
    return load_pem_certificates(cert.read_bytes())[0]


def _presigner(jobs: Jobs) -> Callable[[list[bytes]], None]:
    """Sign new profile content in the job backend, ahead of the first device asking."""
    from mdmserver.jobs.tasks import TASKS

    register_tasks(TASKS)
    backend = jobs.backend

    def presign(contents: list[bytes]) -> None:
        try:
            backend.submit(sign_jobs(contents))
        except Exception as exc:  # the queue being down must not refuse the admin change
            log.warning("presign_not_queued", extra={"fields": {"error": str(exc)}})

    return presign


def _vpp_days_left(service: AppsService) -> Iterable[Sample]:
    # Read at scrape time: a token replaced with `apps vpp-token` shows at once.
    token = service.token()
    if token is None:
        return []
    left = (token.expires_at - datetime.now(UTC)).total_seconds() / 86400
    return [({}, round(left, 2))]
