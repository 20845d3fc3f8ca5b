"""The relational schema (SQLAlchemy Core). Alembic migrations create it; a test keeps both in step.

One row per device (``devices``), one per enrollment channel (``enrollments``: the device
channel plus any user channels), the certificates bound to each device, and the command
queue: a command is stored once (``commands``) and queued to many enrollments
(``command_queue``), where each target keeps its own status and result.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from mdmserver.storage.sql.types import UTCDateTime

metadata = MetaData()

# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")
# Every time column: aware UTC datetimes in Python on both databases (see storage/sql/types.py).
Timestamp = UTCDateTime()

devices = Table(
    "devices",
    metadata,
    Column("id", String(128), primary_key=True, comment="UDID, or EnrollmentID (User Enrollment)"),
    Column("serial_number", String(64), index=True),
    Column("user_enrollment", Boolean, nullable=False, server_default=text("false")),
    Column(
        "udid_attested",
        Boolean,
        nullable=False,
        server_default=text("false"),
        comment="the identity was issued for this UDID, attested by Apple (migration 0009_ota)",
    ),
    Column("model", String(64)),
    Column("model_name", String(128)),
    Column("product_name", String(64)),
    Column("os_version", String(32)),
    Column("build_version", String(32)),
    Column("device_name", String(256)),
    Column("imei", String(32)),
    Column("meid", String(32)),
    Column("topic", String(256)),
    Column("enrolled", Boolean, nullable=False, server_default=text("false")),
    Column("bootstrap_token", LargeBinary),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    Column("authenticated_at", Timestamp),
    Column("checked_out_at", Timestamp),
    Column("last_seen_at", Timestamp),
    # An admin's one-time permission for a new identity to take over an active enrollment.
    Column("reenroll_allowed_until", Timestamp),
)

enrollments = Table(
    "enrollments",
    metadata,
    Column("id", String(300), primary_key=True, comment="device id, or device id:user id"),
    Column("device_id", String(128), ForeignKey("devices.id"), nullable=False, index=True),
    Column("type", String(32), nullable=False),
    Column("user_id", String(256)),
    Column("user_short_name", String(256)),
    Column("user_long_name", String(256)),
    Column("topic", String(256)),
    Column("push_token", String(512), comment="hex"),
    Column("push_magic", String(128)),
    Column("unlock_token", LargeBinary),
    Column("token_stale", Boolean, nullable=False, server_default=text("false")),
    Column("awaiting_configuration", Boolean, nullable=False, server_default=text("false")),
    Column("status", String(16), nullable=False, comment="pending, active or checked_out"),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    Column("token_updated_at", Timestamp),
    Column("last_seen_at", Timestamp),
)

cert_bindings = Table(
    "cert_bindings",
    metadata,
    Column("device_id", String(128), ForeignKey("devices.id"), primary_key=True),
    Column("fingerprint", String(64), primary_key=True, comment="SHA-256 of the DER, hex"),
    Column("not_after", Timestamp),
    Column("bound_at", Timestamp, nullable=False),
    # One certificate speaks for one device: device A's certificate never binds to device B.
    UniqueConstraint("fingerprint", name="uq_cert_bindings_fingerprint"),
)

commands = Table(
    "commands",
    metadata,
    Column("uuid", String(64), primary_key=True),
    Column("request_type", String(128), nullable=False),
    Column("plist", LargeBinary, nullable=False, comment="the command plist exactly as sent"),
    Column("created_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp),
    Column("created_by", String(256)),
)

command_queue = Table(
    "command_queue",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True, comment="also the age order"),
    Column("enrollment_id", String(300), ForeignKey("enrollments.id"), nullable=False),
    Column("command_uuid", String(64), ForeignKey("commands.uuid"), nullable=False),
    Column("status", String(24), nullable=False),
    Column("priority", Integer, nullable=False, server_default=text("0")),
    Column("created_at", Timestamp, nullable=False),
    Column("sent_at", Timestamp),
    Column("answered_at", Timestamp),
    Column("notnow_count", Integer, nullable=False, server_default=text("0")),
    Column("result", LargeBinary, comment="the device's result plist, as received"),
    UniqueConstraint("enrollment_id", "command_uuid", name="uq_command_queue_target"),
    Index("ix_command_queue_command", "command_uuid"),
)
# The statuses still waiting for delivery, as the partial index's WHERE term. The hot statements
# (storage/sql/statements.py) repeat it word for word: SQLite uses a partial index only then.
PENDING_WHERE = "status IN ('queued', 'sent', 'notnow')"
# In the order the next command is chosen (priority DESC, then age), so finding it reads one
# index entry; an ascending priority made the database sort the enrollment's whole queue.
Index(
    "ix_command_queue_next",
    command_queue.c.enrollment_id,
    command_queue.c.priority.desc(),
    command_queue.c.id,
    postgresql_where=text(PENDING_WHERE),
    sqlite_where=text(PENDING_WHERE),
)

events = Table(
    "events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", Timestamp, nullable=False),
    Column("device_id", String(128), index=True),
    Column("enrollment_id", String(300)),
    Column("kind", String(64), nullable=False),
    Column("detail", Text),
)

# Enrollment (migration 0002) ---------------------------------------------------------------
# Secrets (enrollment tokens, SCEP challenges) are stored only as SHA-256 hashes: a copy of the
# database must not let anyone enroll a device.

enroll_tokens = Table(
    "enroll_tokens",
    metadata,
    Column("id", String(32), primary_key=True, comment="public id, shown by enroll-token list"),
    Column("token_hash", String(64), nullable=False, comment="SHA-256 of the token, hex"),
    Column("prefix", String(16), nullable=False, comment="first characters, to recognise it"),
    Column("max_uses", Integer, comment="certificates it may issue; NULL: unlimited"),
    Column("uses", Integer, nullable=False, server_default=text("0")),
    Column("expires_at", Timestamp),
    Column("revoked", Boolean, nullable=False, server_default=text("false")),
    Column("created_at", Timestamp, nullable=False),
    Column("revoked_at", Timestamp),
    # Over-the-air enrollment (migration 0009_ota): the token answers Apple's profile service
    # by default (ota), or only ever (require_ota: the plain profile is refused).
    Column("ota", Boolean, nullable=False, server_default=text("false")),
    Column("require_ota", Boolean, nullable=False, server_default=text("false")),
    UniqueConstraint("token_hash", name="uq_enroll_tokens_hash"),
)

enroll_token_tags = Table(
    "enroll_token_tags",
    metadata,
    Column("token_id", String(32), ForeignKey("enroll_tokens.id"), primary_key=True),
    Column("tag", String(128), primary_key=True),
)

scep_challenges = Table(
    "scep_challenges",
    metadata,
    Column("id", String(64), primary_key=True, comment="SHA-256 of the challenge, hex"),
    # Also "ota" (a SCEP challenge bound to an attested UDID) and "profile_service" (the
    # challenge of Apple's profile service, never accepted by SCEP); migration 0009_ota.
    Column("purpose", String(16), nullable=False, comment="enroll or renew"),
    Column("token_id", String(32), ForeignKey("enroll_tokens.id")),
    Column("device_id", String(128), ForeignKey("devices.id"), index=True),
    Column("created_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False),
    Column("used_at", Timestamp),
)

# Rate limits (migration 0011_ratelimits): one counter per limit, key and time window, shared
# by every worker process. Keys are SHA-256 hashes (an address, a token, a challenge) so the
# table holds no secret; rows of past windows are deleted as new windows start.
rate_limits = Table(
    "rate_limits",
    metadata,
    Column("bucket", String(32), primary_key=True, comment="which limit: enroll_address, ..."),
    Column("key_hash", String(64), primary_key=True, comment="SHA-256 of what is counted, hex"),
    Column("window_start", BigInteger, primary_key=True, comment="Unix seconds"),
    Column("hits", Integer, nullable=False),
    Index("ix_rate_limits_window", "window_start"),
)

issued_certs = Table(
    "issued_certs",
    metadata,
    Column("serial", String(40), primary_key=True, comment="hex"),
    Column("fingerprint", String(64), nullable=False, comment="SHA-256 of the DER, hex"),
    Column("subject", Text, nullable=False),
    Column("not_after", Timestamp, nullable=False),
    Column("issued_at", Timestamp, nullable=False),
    Column("revoked", Boolean, nullable=False, server_default=text("false")),
    Column("revoked_at", Timestamp),
    Column("token_id", String(32), ForeignKey("enroll_tokens.id")),
    Column("device_id", String(128), ForeignKey("devices.id"), index=True),
    Column("method", String(16), nullable=False, comment="enroll, renew (challenge) or renewalreq"),
    UniqueConstraint("fingerprint", name="uq_issued_certs_fingerprint"),
)

# Identities from other CAs (an organisation's) that an admin revoked: we cannot list them in
# our CRL, but they are refused like the ones we issued.
revoked_identities = Table(
    "revoked_identities",
    metadata,
    Column("fingerprint", String(64), primary_key=True, comment="SHA-256 of the DER, hex"),
    Column("device_id", String(128), nullable=False, index=True),
    Column("revoked_at", Timestamp, nullable=False),
)

device_tags = Table(
    "device_tags",
    metadata,
    Column("device_id", String(128), ForeignKey("devices.id"), primary_key=True),
    Column("tag", String(128), primary_key=True, index=True),
    Column("token_id", String(32), ForeignKey("enroll_tokens.id")),
    Column("created_at", Timestamp, nullable=False),
)

# Administration (migration 0003_admin) ------------------------------------------------------
# API keys are stored as SHA-256 hashes of high-entropy random keys: a copy of the database
# must not let anyone call the API. The audit log keeps who did what, to what, and how it went.

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("scope", String(32), nullable=False, comment="admin (this API), trust, metrics"),
    Column("key_hash", String(64), nullable=False, comment="SHA-256 of the key, hex"),
    Column("prefix", String(16), nullable=False, comment="first characters, to recognise it"),
    Column("created_at", Timestamp, nullable=False),
    Column("revoked_at", Timestamp),
    UniqueConstraint("key_hash", name="uq_api_keys_hash"),
    Index(
        "uq_api_keys_active_name",
        "name",
        unique=True,
        postgresql_where=text("revoked_at IS NULL"),
        sqlite_where=text("revoked_at IS NULL"),
    ),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", Timestamp, nullable=False, index=True),
    Column("actor", String(128), nullable=False, comment="API key name, or cli:<user>"),
    Column("action", String(64), nullable=False),
    Column("targets", Text, comment="JSON list of device ids (truncated for large sends)"),
    Column("target_count", Integer, nullable=False, server_default=text("0")),
    Column("detail", Text, comment="JSON: command UUID, request type, ..."),
    Column("outcome", String(512), nullable=False, comment="ok, or the refusal with its status"),
)

# Console users (migration 0016_console) ---------------------------------------------------
# People who sign in to the web console. Passwords are stored as argon2id hashes only; a login
# failure is a row of its own so the rate limit holds across processes.

console_users = Table(
    "console_users",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(64), nullable=False),
    Column("role", String(16), nullable=False, comment="admin, helpdesk or auditor"),
    Column("password_hash", String(256), nullable=False, comment="argon2id"),
    Column("must_change_password", Boolean, nullable=False, server_default=text("true")),
    Column("disabled", Boolean, nullable=False, server_default=text("false")),
    Column(
        "session_epoch",
        Integer,
        nullable=False,
        server_default=text("0"),
        comment="bumped on password change or disable: older sessions end",
    ),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    Column("last_login_at", Timestamp),
    UniqueConstraint("name", name="uq_console_users_name"),
)

console_login_failures = Table(
    "console_login_failures",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("address", String(64), nullable=False),
    Column("name", String(64), nullable=False),
    Column("at", Timestamp, nullable=False),
    Index("ix_console_login_failures_address_at", "address", "at"),
    Index("ix_console_login_failures_name_at", "name", "at"),
)

# Push and background jobs (migration 0004_jobs) ---------------------------------------------
# The database, not Redis, is the source of truth for pushes: a push request is written here
# first (the outbox) and handed to the job queue afterwards, so a Redis outage delays pushes
# but never loses them. push_status keeps each enrollment's last push for re-push decisions
# and for the admin (certificate errors show up there).

push_outbox = Table(
    "push_outbox",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("enrollment_id", String(300), nullable=False),
    Column("repush", Boolean, nullable=False, server_default=text("false")),
    Column("created_at", Timestamp, nullable=False),
    Column("claimed_until", Timestamp, comment="a dispatcher is handing it to the job queue"),
)

push_status = Table(
    "push_status",
    metadata,
    Column("enrollment_id", String(300), primary_key=True),
    Column("last_push_at", Timestamp, nullable=False, comment="last attempt, whatever came back"),
    Column("last_outcome", String(32), nullable=False, comment="delivered, stale_token, ..."),
    Column("last_reason", String(64)),
    Column("attempts", Integer, nullable=False, server_default=text("0"), comment="re-pushes"),
    Index("ix_push_status_outcome", "last_outcome"),
)

# Configuration profiles (migration 0006_profiles) -------------------------------------------
# A managed profile is stored built (unsigned XML; secret template variables sealed, see
# profile_shown; an uploaded profile is as sensitive as its content). Assignments say who
# should have it; profile_states what each enrollment has, was sent, or refused. Deleted
# profiles stay as tombstones so devices that still carry them are told to remove them.

profiles = Table(
    "profiles",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(128), nullable=False, comment="the handle used by the API and CLI"),
    Column("identifier", String(255), nullable=False, comment="top-level PayloadIdentifier"),
    Column("payload_uuid", String(36), nullable=False, comment="changes with every revision"),
    Column("digest", String(64), nullable=False, comment="SHA-256 of content, hex"),
    Column("content", LargeBinary, nullable=False, comment="built XML, unsigned"),
    Column("source", String(64), nullable=False, comment="template name, or upload"),
    Column("payload_types", Text, nullable=False, comment="comma-separated PayloadTypes"),
    Column("encrypt", Boolean, nullable=False, server_default=text("false")),
    Column("per_device", Boolean, nullable=False, server_default=text("false")),
    Column("revision", Integer, nullable=False, server_default=text("1")),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    Column("deleted_at", Timestamp),
    Index(
        "uq_profiles_live_name",
        "name",
        unique=True,
        postgresql_where=text("deleted_at IS NULL"),
        sqlite_where=text("deleted_at IS NULL"),
    ),
    Index(
        "uq_profiles_live_identifier",
        "identifier",
        unique=True,
        postgresql_where=text("deleted_at IS NULL"),
        sqlite_where=text("deleted_at IS NULL"),
    ),
)

# Profiles with secret template variables (migration 0010_secrets): their content is sealed in
# profiles.content (AES-GCM, MDM_HOME/secrets.key); this is the copy admins read, secrets
# redacted. No foreign key, so the migration can run before or after 0006's on its own branch;
# profiles are never deleted (tombstones), so no row is orphaned.
profile_shown = Table(
    "profile_shown",
    metadata,
    Column("profile_id", String(32), primary_key=True, comment="profiles.id"),
    Column("content", LargeBinary, nullable=False, comment="content with secrets redacted"),
)

profile_assignments = Table(
    "profile_assignments",
    metadata,
    Column("profile_id", String(32), ForeignKey("profiles.id"), primary_key=True),
    Column("target", String(160), primary_key=True, comment="all, or tag:<device tag>"),
    Column("created_at", Timestamp, nullable=False),
)

profile_states = Table(
    "profile_states",
    metadata,
    Column("enrollment_id", String(300), primary_key=True),
    Column("identifier", String(255), primary_key=True),
    Column("profile_id", String(32)),
    Column("installed_uuid", String(64), comment="what the device has, as last known"),
    Column("action", String(16), comment="install or remove: the last command sent"),
    Column("sent_uuid", String(64), comment="PayloadUUID the last install carried"),
    Column("command_uuid", String(64), index=True),
    Column("status", String(16), nullable=False, comment="pending, installed, failed, removed"),
    Column("error", Text, comment="JSON: the device's ErrorChain"),
    Column("updated_at", Timestamp, nullable=False),
)

profile_signatures = Table(
    "profile_signatures",
    metadata,
    Column("digest", String(64), primary_key=True, comment="SHA-256 of what was signed"),
    Column("signed", LargeBinary, nullable=False, comment="DER CMS SignedData"),
    Column("created_at", Timestamp, nullable=False),
)

device_identity_certs = Table(
    "device_identity_certs",
    metadata,
    Column("fingerprint", String(64), primary_key=True, comment="SHA-256 of the DER, hex"),
    Column("device_id", String(128), nullable=False, index=True),
    Column("der", LargeBinary, nullable=False),
    Column("seen_at", Timestamp, nullable=False),
)

fde_escrow = Table(
    "fde_escrow",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("device_id", String(128), nullable=False, index=True),
    Column("device_key", String(128), comment="FDE_PersonalRecoveryKeyDeviceKey (serial)"),
    Column("envelope", LargeBinary, nullable=False, comment="CMS to the escrow certificate"),
    Column("received_at", Timestamp, nullable=False),
)

# Declarative Device Management (migration 0015_ddm) ------------------------------------------
# Declarations are admin objects like profiles: content (its ServerToken a digest of it) and
# assignments. ddm_channels keeps, per enrollment channel, whether DDM is on and the
# DeclarationsToken it was last told; the status channel's latest value of every item, a
# bounded history of changes and of whole reports, and each declaration's state on the device
# (from management.declarations). ddm_assets holds data assets served to their devices only.

ddm_declarations = Table(
    "ddm_declarations",
    metadata,
    Column("identifier", String(255), primary_key=True),
    Column("type", String(128), nullable=False),
    Column("class", String(16), nullable=False, comment="activation, asset, configuration, ..."),
    Column("payload", Text, nullable=False, comment="JSON, as validated"),
    Column("server_token", String(64), nullable=False, comment="SHA-256 of the content, hex"),
    Column("managed_by", String(16), nullable=False, comment="admin, or server (built in)"),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
)

ddm_assignments = Table(
    "ddm_assignments",
    metadata,
    Column("identifier", String(255), primary_key=True),
    Column("target", String(160), primary_key=True, comment="all, or tag:<device tag>"),
    Column("created_at", Timestamp, nullable=False),
)

ddm_revision = Table(
    "ddm_revision",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False, comment="always 1"),
    Column("revision", BigInteger, nullable=False, comment="bumped by every change above"),
)

ddm_channels = Table(
    "ddm_channels",
    metadata,
    Column("enrollment_id", String(300), primary_key=True),
    Column("device_id", String(128), nullable=False, index=True),
    Column("declarations_token", String(64), comment="the token last sent or fetched"),
    Column("enabled_at", Timestamp, comment="first DeclarativeManagement command queued"),
    Column("synced_at", Timestamp, comment="last declaration-items fetch"),
    Column("status_at", Timestamp, comment="last status report"),
)

ddm_status_items = Table(
    "ddm_status_items",
    metadata,
    Column("enrollment_id", String(300), primary_key=True),
    Column("item", String(128), primary_key=True, comment="e.g. passcode.is-compliant"),
    Column("value", Text, nullable=False, comment="JSON"),
    Column("updated_at", Timestamp, nullable=False),
)

ddm_status_history = Table(
    "ddm_status_history",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("enrollment_id", String(300), nullable=False),
    Column("item", String(128), nullable=False),
    Column("value", Text, comment="JSON; NULL when the item was removed"),
    Column("at", Timestamp, nullable=False),
    Index("ix_ddm_status_history_enrollment", "enrollment_id", "id"),
)

ddm_status_reports = Table(
    "ddm_status_reports",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("enrollment_id", String(300), nullable=False),
    Column("full_report", Boolean, nullable=False, server_default=text("false")),
    Column("body", Text, nullable=False, comment="the report's JSON, as received"),
    Column("received_at", Timestamp, nullable=False),
    Index("ix_ddm_status_reports_enrollment", "enrollment_id", "id"),
)

ddm_declaration_states = Table(
    "ddm_declaration_states",
    metadata,
    Column("enrollment_id", String(300), primary_key=True),
    Column("identifier", String(255), primary_key=True),
    Column("class", String(16), nullable=False),
    Column("active", Boolean),
    Column("valid", String(16)),
    Column("server_token", String(64)),
    Column("reasons", Text, comment="JSON list of the device's status reasons"),
    Column("updated_at", Timestamp, nullable=False),
)

ddm_assets = Table(
    "ddm_assets",
    metadata,
    Column("id", String(32), primary_key=True, comment="random; part of the asset's URL"),
    Column("identifier", String(255), nullable=False, index=True, comment="the asset declaration"),
    Column("content_type", String(128), nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("created_at", Timestamp, nullable=False),
)

# Apps (migration 0017_apps) ------------------------------------------------------------------
# The catalog: App Store apps (by Adam ID), in-house iOS apps and macOS packages (a stored file
# or an admin-given URL, with the manifest devices download by). Assignments say which devices
# may fetch and should have an app; app_device_states what each device has or was sent. The
# vpp_* tables mirror Apple's Apps and Books service: the organisation's assets with their
# counts, the licenses assigned by serial and the asynchronous events that assign or revoke
# them. The content token itself is a file in
# MDM_HOME (mode 0600, like the push key), never a column.

apps = Table(
    "apps",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(128), nullable=False, unique=True, comment="API and CLI handle"),
    Column("kind", String(16), nullable=False, comment="app_store, ios_inhouse, macos_pkg"),
    Column("bundle_id", String(255), nullable=False),
    Column("adam_id", String(32), comment="iTunes Store ID (App Store apps)"),
    Column("version", String(64)),
    Column("file_name", String(255), comment="stored file, under MDM_HOME/apps"),
    Column("file_size", BigInteger),
    Column("file_sha256", String(64)),
    Column("download_url", Text, comment="admin-given CDN URL of the file"),
    Column("manifest_url", Text, comment="admin-given manifest URL (nothing stored)"),
    Column("manifest", Text, comment="JSON: the manifest built from the stored file"),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
)

app_assignments = Table(
    "app_assignments",
    metadata,
    Column("app_id", String(32), ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True),
    Column("target", String(160), primary_key=True, comment="all, or tag:<device tag>"),
    Column("behaviour", String(16), nullable=False, comment="required or available"),
    Column("created_at", Timestamp, nullable=False),
    # Migration 0018_app_state: what the install command carries.
    Column(
        "management_flags",
        Integer,
        comment="InstallApplication ManagementFlags (0: none); null: the default, 1",
    ),
    Column(
        "configuration", Text, comment="JSON: the managed app configuration sent as Configuration"
    ),
)

app_device_states = Table(
    "app_device_states",
    metadata,
    Column("device_id", String(128), primary_key=True),
    Column("app_id", String(32), primary_key=True),
    Column(
        "status",
        String(16),
        nullable=False,
        comment="pending, installing, installed, failed, needs_license, removing",
    ),
    Column("command_uuid", String(64), index=True),
    Column("error", Text, comment="JSON: the device's ErrorChain"),
    Column("attempts", Integer, nullable=False, server_default=text("0"), comment="installs sent"),
    Column("updated_at", Timestamp, nullable=False),
    # Migration 0018_app_state: how the app reaches the device, and what it reported.
    Column(
        "channel",
        String(8),
        nullable=False,
        server_default=text("'command'"),
        comment="command (InstallApplication...) or ddm (app.managed declaration)",
    ),
    Column("installed_version", String(64), comment="as the device last reported it"),
    Column(
        "configuration_sha256",
        String(64),
        comment="the managed app configuration last sent to the device",
    ),
    # Migration 0019_app_upkeep: the Settings ApplicationConfiguration command and its answer.
    Column(
        "configuration_command_uuid",
        String(64),
        comment="the Settings ApplicationConfiguration command last sent",
    ),
    Column(
        "configuration_error", Text, comment="JSON: the ErrorChain of a refused Settings command"
    ),
    Column(
        "configuration_attempts",
        Integer,
        nullable=False,
        server_default=text("0"),
        comment="Settings commands sent since the configuration last applied",
    ),
    Column(
        "configuration_updated_at",
        Timestamp,
        comment="when the Settings command was last sent or answered",
    ),
)

# Migration 0019_app_upkeep: the scheduled reconcile asks a device for its list again once
# this is older than apps_reconcile_interval_hours.
app_device_lists = Table(
    "app_device_lists",
    metadata,
    Column("device_id", String(128), primary_key=True),
    Column(
        "listed_at",
        Timestamp,
        nullable=False,
        index=True,
        comment="the device's last acknowledged ManagedApplicationList",
    ),
)

vpp_assets = Table(
    "vpp_assets",
    metadata,
    Column("adam_id", String(32), primary_key=True),
    Column("pricing_param", String(16), primary_key=True, comment="STDQ or PLUS"),
    Column("product_type", String(16)),
    Column("total_count", Integer, nullable=False),
    Column("assigned_count", Integer, nullable=False),
    Column("available_count", Integer, nullable=False),
    Column("retired_count", Integer, nullable=False),
    Column("device_assignable", Boolean, nullable=False),
    Column("revocable", Boolean, nullable=False),
    Column("platforms", Text, nullable=False, comment="JSON list"),
    Column("synced_at", Timestamp, nullable=False),
)

vpp_licenses = Table(
    "vpp_licenses",
    metadata,
    Column("adam_id", String(32), primary_key=True),
    Column("serial_number", String(64), primary_key=True),
    Column("pricing_param", String(16), nullable=False),
    Column("status", String(16), nullable=False, comment="assigning, assigned, revoking, failed"),
    Column("event_id", String(64), index=True),
    Column("error", Text),
    Column("updated_at", Timestamp, nullable=False),
)

vpp_events = Table(
    "vpp_events",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("event_type", String(16), nullable=False, comment="ASSOCIATE or DISASSOCIATE"),
    Column("adam_id", String(32), nullable=False),
    Column("status", String(16), nullable=False, comment="PENDING, COMPLETE or FAILED"),
    Column("num_requested", Integer),
    Column("num_completed", Integer),
    Column("failures", Text, comment="JSON: Apple's failures"),
    Column("created_at", Timestamp, nullable=False),
    Column("completed_at", Timestamp),
)

# Inventory and compliance (migration 0005_inventory) -----------------------------------------
# Normalised facts per device (one column per fact, JSON text for lists), each command's last
# raw answer, and per-field history. Compliance keeps the current state, its history, open
# remediations and the policy set through the API (which overrides compliance.toml).

inventory = Table(
    "inventory",
    metadata,
    Column("device_id", String(128), ForeignKey("devices.id"), primary_key=True),
    Column("platform", String(16)),
    Column("os_version", String(32)),
    Column("build_version", String(32)),
    Column("model", String(64)),
    Column("model_name", String(128)),
    Column("product_name", String(64)),
    Column("serial_number", String(64)),
    Column("device_name", String(256)),
    Column("supervised", Boolean),
    Column("activation_lock", Boolean),
    Column("storage_capacity_gb", Float),
    Column("storage_available_gb", Float),
    Column("battery_level", Float, comment="0..1"),
    Column("passcode_present", Boolean),
    Column("passcode_compliant", Boolean),
    Column("hardware_encryption_caps", Integer),
    Column("data_protection", Boolean),
    Column("filevault", Boolean),
    Column("sip", Boolean),
    Column("firewall", Boolean),
    Column("installed_apps", Text, comment="JSON list"),
    Column("managed_apps", Text, comment="JSON list"),
    Column("ddm_apps", Text, comment="JSON list: app.managed.list status"),  # 0018_app_state
    Column("profiles", Text, comment="JSON list"),
    Column("certificates", Text, comment="JSON list"),
    Column("requested_at", Timestamp, comment="inventory commands last queued"),
    Column("updated_at", Timestamp, comment="last answer stored"),
    Index("ix_inventory_requested_at", "requested_at"),
)

inventory_answers = Table(
    "inventory_answers",
    metadata,
    Column("device_id", String(128), ForeignKey("devices.id"), primary_key=True),
    Column("request_type", String(64), primary_key=True),
    Column("command_uuid", String(64), nullable=False),
    Column("body", LargeBinary, nullable=False, comment="the result plist, as received"),
    Column("received_at", Timestamp, nullable=False),
)

inventory_history = Table(
    "inventory_history",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("device_id", String(128), nullable=False, index=True),
    Column("at", Timestamp, nullable=False),
    Column("field", String(64), nullable=False),
    Column("old_value", Text, comment="JSON; lists: the items removed"),
    Column("new_value", Text, comment="JSON; lists: the items added"),
)

compliance_state = Table(
    "compliance_state",
    metadata,
    Column("device_id", String(128), ForeignKey("devices.id"), primary_key=True),
    Column("state", String(16), nullable=False, comment="compliant, noncompliant or unknown"),
    Column("reasons", Text, nullable=False, comment="JSON list of what is not passing"),
    Column("results", Text, nullable=False, comment="JSON list of every rule's outcome"),
    Column("evaluated_at", Timestamp, nullable=False),
    Column("changed_at", Timestamp, nullable=False),
    Column("noncompliant_since", Timestamp),
)

compliance_history = Table(
    "compliance_history",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("device_id", String(128), nullable=False, index=True),
    Column("at", Timestamp, nullable=False),
    Column("previous_state", String(16)),
    Column("state", String(16), nullable=False),
    Column("reasons", Text, nullable=False),
)

remediations = Table(
    "remediations",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("device_id", String(128), nullable=False, index=True),
    Column("kind", String(32), nullable=False, comment="install_profile, refresh, device_lock"),
    Column("detail", String(256), nullable=False, comment="profile identifier, ..."),
    Column("status", String(16), nullable=False, comment="requested, queued or resolved"),
    Column("command_uuid", String(64)),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
)

compliance_policy = Table(
    "compliance_policy",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False, comment="always 1"),
    Column("body", Text, nullable=False, comment="JSON policy"),
    Column("updated_at", Timestamp, nullable=False),
    Column("updated_by", String(128), nullable=False),
)

# What the console's dashboard and device list sort and count by (migration 0016_console).
Index("ix_devices_last_seen_at", devices.c.last_seen_at)
Index("ix_compliance_state_state", compliance_state.c.state)
Index("ix_compliance_history_at", compliance_history.c.at)
