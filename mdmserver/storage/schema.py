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
    DateTime,
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

metadata = MetaData()

# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")
Timestamp = DateTime(timezone=True)

devices = Table(
    "devices",
    metadata,
    Column("id", String(128), primary_key=True, comment="UDID, or EnrollmentID (User Enrollment)"),
    Column("serial_number", String(64), index=True),
    Column("user_enrollment", Boolean, nullable=False, server_default=text("false")),
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
    Index(
        "ix_command_queue_pending",
        "enrollment_id",
        "priority",
        "id",
        postgresql_where=text("status IN ('queued', 'sent', 'notnow')"),
        sqlite_where=text("status IN ('queued', 'sent', 'notnow')"),
    ),
    Index("ix_command_queue_command", "command_uuid"),
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
    Column("purpose", String(16), nullable=False, comment="enroll or renew"),
    Column("token_id", String(32), ForeignKey("enroll_tokens.id")),
    Column("device_id", String(128), ForeignKey("devices.id"), index=True),
    Column("created_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False),
    Column("used_at", Timestamp),
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

device_tags = Table(
    "device_tags",
    metadata,
    Column("device_id", String(128), ForeignKey("devices.id"), primary_key=True),
    Column("tag", String(128), primary_key=True, index=True),
    Column("token_id", String(32), ForeignKey("enroll_tokens.id")),
    Column("created_at", Timestamp, nullable=False),
)
