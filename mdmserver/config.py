"""Every setting in one place: ``MDM_*`` environment variables over an optional TOML file.

The TOML file is ``<MDM_HOME>/config.toml``; its keys are the setting names below in lower case
(``database_url = "..."``). Environment variables win, so a deployment can override one value
without editing the file.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024  # macOS InstalledApplicationList answers are large


class ConfigError(ValueError):
    """A setting has a value the server cannot use."""


@dataclass(frozen=True)
class Config:
    home: Path = Path("instance")
    database_url: str = ""
    redis_url: str = ""
    server_url: str = ""
    push_topics: tuple[str, ...] = ()
    # Device identity trust: the server's own CA, plus any CAs an organisation adds.
    ca_cert_file: str = ""
    device_ca_files: tuple[str, ...] = ()
    # Set only behind a TLS-terminating proxy that forwards the client certificate.
    client_cert_header: str = ""
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    # "decline" answers UserAuthenticate with 410, Apple's documented way to say "no user auth".
    user_authenticate: str = "decline"
    # Enrollment: one-time SCEP challenges, device identity lifetime and its renewal window.
    challenge_lifetime_minutes: int = 60
    identity_lifetime_days: int = 365
    identity_renewal_days: int = 30
    auto_migrate: bool | None = None
    # Networks that may read /metrics without an API key (comma-separated CIDRs; "" for none).
    metrics_allow: tuple[str, ...] = ("127.0.0.1/32", "::1/128")
    # Push (issue #4): the APNs certificate (default MDM_HOME/push.pem + push.key), Apple's
    # sandbox gateway, or a stand-in gateway (host, port and the CA that issued its TLS cert).
    push_cert_file: str = ""
    push_key_file: str = ""
    apns_sandbox: bool = False
    apns_host: str = ""
    apns_port: int = 443
    apns_ca_file: str = ""
    push_batch_size: int = 1000
    # Re-push enrollments with pending commands that stay silent: after this many seconds,
    # doubling each time, at most this many times per push request.
    repush_interval_seconds: int = 900
    repush_max_attempts: int = 4
    # First delay before a failed push (429/5xx) or webhook is retried; each retry waits 4x more.
    retry_base_seconds: int = 5
    # Background jobs: RQ queue names start with this prefix (queues <prefix>:push, :webhooks).
    queue_prefix: str = "mdm"
    # Webhooks: check-in and command-result events POSTed to these URLs, signed with the secret.
    webhook_urls: tuple[str, ...] = ()
    webhook_secret: str = ""
    # Inventory and compliance (issue #7): re-inventory interval, policy file (default
    # MDM_HOME/compliance.toml or .json), lifetime of signed device-trust assertions.
    inventory_interval_hours: int = 24
    inventory_on_enroll: bool = True
    compliance_policy_file: str = ""
    trust_assertion_ttl_seconds: int = 300
    # Apps (issue #17): Apple's Apps and Books service (a stand-in's URL in tests); the
    # content token is kept in MDM_HOME/vpp.token, uploaded files under MDM_HOME/apps.
    vpp_url: str = "https://vpp.itunes.apple.com/mdm/v2"
    log_level: str = "INFO"
    log_json: bool = True
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.home / 'mdmserver.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def migrate_on_start(self) -> bool:
        """The embedded default (SQLite) migrates itself; shared databases migrate explicitly."""
        return self.is_sqlite if self.auto_migrate is None else self.auto_migrate

    @property
    def resolved_ca_cert_file(self) -> Path:
        return Path(self.ca_cert_file) if self.ca_cert_file else self.home / "ca.pem"

    @property
    def resolved_push_cert_file(self) -> Path:
        return Path(self.push_cert_file) if self.push_cert_file else self.home / "push.pem"

    @property
    def resolved_push_key_file(self) -> Path:
        return Path(self.push_key_file) if self.push_key_file else self.home / "push.key"


_TUPLE_FIELDS = {"push_topics", "device_ca_files", "webhook_urls"}
_INT_FIELDS = {
    "max_body_bytes",
    "challenge_lifetime_minutes",
    "identity_lifetime_days",
    "identity_renewal_days",
    "apns_port",
    "push_batch_size",
    "repush_interval_seconds",
    "repush_max_attempts",
    "retry_base_seconds",
    "inventory_interval_hours",
    "trust_assertion_ttl_seconds",
}
_BOOL_FIELDS = {"auto_migrate", "log_json", "apns_sandbox", "inventory_on_enroll"}


def _coerce(name: str, value: Any) -> Any:
    if name in _TUPLE_FIELDS:
        if isinstance(value, str):
            return tuple(
                part.strip() for part in value.replace(";", ",").split(",") if part.strip()
            )
        if isinstance(value, list | tuple):
            return tuple(str(v) for v in value)
    elif name in _INT_FIELDS:
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must be an integer, got {value!r}") from None
        if number <= 0:
            raise ConfigError(f"{name} must be positive, got {number}")
        return number
    elif name in _BOOL_FIELDS:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{name} must be true or false, got {value!r}")
    elif name == "home":
        return Path(value)
    return value if not isinstance(value, str) else value.strip()


def load_config(
    environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> Config:
    """Build the configuration: defaults < ``config.toml`` < ``MDM_*`` variables < overrides."""
    env = os.environ if environ is None else environ
    names = {f.name for f in fields(Config)} - {"extra"}
    home = Path((overrides or {}).get("home") or env.get("MDM_HOME") or "instance")
    values: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    toml_path = home / "config.toml"
    if toml_path.is_file():
        try:
            data = tomllib.loads(toml_path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{toml_path}: {exc}") from None
        for key, value in data.items():
            (values if key in names else extra)[key] = value
    for name in names:
        env_value = env.get(f"MDM_{name.upper()}")
        if env_value is not None:
            values[name] = env_value
    values.update(overrides or {})
    values["home"] = home
    coerced = {name: _coerce(name, value) for name, value in values.items() if name in names}
    for network in coerced.get("metrics_allow", ()):
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise ConfigError(f"metrics_allow: {network!r} is not an address or network") from None
    if coerced.get("user_authenticate", "decline") not in {"decline", "allow"}:
        raise ConfigError("user_authenticate must be 'decline' or 'allow'")
    return Config(**coerced, extra=extra)
