"""Every setting in one place: ``MDM_*`` environment variables over an optional TOML file.

The TOML file is ``<MDM_HOME>/config.toml``; its keys are the setting names below in lower case
(``database_url = "..."``). Environment variables win, so a deployment can override one value
without editing the file.

Each setting is parsed by its declared type (``int``, ``bool``, ``tuple[str, ...]`` lists —
comma-separated in the environment — ``Path``, ``str``) and then checked, all when the process
starts: ``load_config`` reports every problem at once, one line each, naming the setting and
the form it accepts. The README's settings table is generated from the ``doc`` of each field
(``scripts/gen_settings_table.py``), so a new setting is documented where it is declared.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from functools import cache
from pathlib import Path
from typing import Any, get_type_hints
from urllib.parse import urlsplit

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024  # macOS InstalledApplicationList answers are large
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

Check = Callable[[Any], str | None]  # the value -> None, or what is wrong and what is accepted


class ConfigError(ValueError):
    """Settings have values the server cannot use; ``problems`` holds one line per setting."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


def doc(
    text: str,
    default: str | None = None,
    *,
    check: Check | None = None,
    minimum: int = 1,
    maximum: int | None = None,
    choices: tuple[str, ...] = (),
    form: str | None = None,
) -> dict[str, Any]:
    """A setting's description for the README (``default`` overrides the shown default),
    and its check beyond the type (``minimum``/``maximum`` bound integers)."""
    return {
        "doc": text,
        "default_text": default,
        "check": check,
        "minimum": minimum,
        "maximum": maximum,
        "choices": choices,
        "form": form,
    }


def _database_url(value: str) -> str | None:
    if not value:
        return None
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(value)
    except (ArgumentError, ValueError):
        url = None
    if url is None or url.get_backend_name() not in {"sqlite", "postgresql", "postgres"}:
        return "expected postgresql://user:password@host:5432/name or sqlite:////path/to/file.db"
    if url.get_backend_name() != "sqlite" and not url.host and "host" not in url.query:
        return "expected postgresql://user:password@host:5432/name (no host given)"
    return None


def _redis_url(value: str) -> str | None:
    if not value:
        return None
    form = "expected redis://host:6379/0 (or rediss:// for TLS, unix:///path/redis.sock)"
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return form
    if parts.scheme == "unix":
        return None if parts.path else form
    if parts.scheme not in {"redis", "rediss"} or not parts.hostname:
        return form
    database = parts.path.lstrip("/")
    if database and not database.isdigit():
        return form + f" (database {database!r} must be a number)"
    return None if port is None or port > 0 else form


def _https_url(value: str) -> str | None:
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment:
        return "expected https://<public host name>[:port] (devices only speak HTTPS)"
    return None


def _networks(values: tuple[str, ...]) -> str | None:
    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            return f"{value!r} is not an address or network; expected e.g. 10.0.0.0/8,::1"
    return None


def _http_urls(values: tuple[str, ...]) -> str | None:
    for value in values:
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            return f"{value!r} is not a URL; expected https://host/path, comma-separated"
    return None


def _existing_file(value: str) -> str | None:
    if value and not Path(value).is_file():
        return f"file {value} does not exist (expected a PEM file)"
    return None


def _existing_files(values: tuple[str, ...]) -> str | None:
    for value in values:
        if problem := _existing_file(value):
            return problem
    return None


@dataclass(frozen=True)
class Config:
    home: Path = field(
        default=Path("instance"),
        metadata=doc("instance folder: database, keys, config file", "`./instance`"),
    )
    database_url: str = field(
        default="",
        metadata=doc(
            "`postgresql://…` for production",
            "SQLite in `MDM_HOME`",
            check=_database_url,
            form="URL",
        ),
    )
    redis_url: str = field(
        default="",
        metadata=doc(
            "Redis for RQ jobs; without it jobs run in the web process",
            check=_redis_url,
            form="`redis://`, `rediss://` or `unix://` URL",
        ),
    )
    server_url: str = field(
        default="",
        metadata=doc(
            "public https URL, used in enrollment profiles", check=_https_url, form="`https://` URL"
        ),
    )
    push_topics: tuple[str, ...] = field(
        default=(), metadata=doc("accepted push topics (besides the push certificate's)")
    )
    # Device identity trust: the server's own CA, plus any CAs an organisation adds.
    ca_cert_file: str = field(
        default="",
        metadata=doc(
            "the CA that issues device identities",
            "`MDM_HOME/ca.pem`",
            check=_existing_file,
            form="existing PEM file",
        ),
    )
    device_ca_files: tuple[str, ...] = field(
        default=(),
        metadata=doc(
            "extra trusted device CAs",
            check=_existing_files,
            form="comma-separated existing PEM files",
        ),
    )
    # Set only behind a TLS-terminating proxy that forwards the client certificate.
    client_cert_header: str = field(
        default="",
        metadata=doc("header carrying the client certificate from a TLS proxy", "(off)"),
    )
    # The client-certificate header is believed only from these peers (addresses or CIDRs),
    # so nobody else can name a device by sending its public certificate.
    trusted_proxies: tuple[str, ...] = field(
        default=("127.0.0.1/32", "::1/128"),
        metadata=doc(
            "peers whose client-certificate header is believed (addresses or CIDRs)",
            "`127.0.0.1/32,::1/128`",
            check=_networks,
            form="comma-separated addresses or networks",
        ),
    )
    max_body_bytes: int = field(
        default=DEFAULT_MAX_BODY_BYTES, metadata=doc("largest request body accepted, in bytes")
    )
    # The HTTP server (issue #13): a client gets this long for its TLS handshake and request
    # headers, and for its body; an idle kept-alive connection is closed after keepalive
    # seconds. Request line + headers up to max_header_bytes (SCEP GETs and Mdm-Signature
    # headers run to 12 KB+); at most max_connections_per_address open connections per client
    # address (per /64 for IPv6), across the worker processes.
    http_header_timeout_seconds: int = field(
        default=10, metadata=doc("seconds a client has for its TLS handshake and request headers")
    )
    http_body_timeout_seconds: int = field(
        default=60, metadata=doc("seconds a client has to send its request body")
    )
    http_keepalive_seconds: int = field(
        default=30, metadata=doc("an idle kept-alive connection is closed after this many seconds")
    )
    http_max_header_bytes: int = field(
        default=65536, metadata=doc("largest request line and headers, in bytes")
    )
    http_max_connections_per_address: int = field(
        default=256, metadata=doc("open connections one client address may hold (per /64 for IPv6)")
    )
    # Rate limits (issue #13): hits per client address, token or challenge in each window of
    # rate_limit_window_seconds, shared by all worker processes (the database, or Redis when
    # redis_url is set). Over a limit: 429 with Retry-After. On by default, far above a real
    # fleet's enrollment day.
    rate_limits: bool = field(
        default=True, metadata=doc("rate limits on enrollment, SCEP and failed API authentications")
    )
    rate_limit_window_seconds: int = field(default=60, metadata=doc("the rate limits' window"))
    rate_limit_enroll_per_address: int = field(
        default=300, metadata=doc("profile downloads per client address per window")
    )
    rate_limit_enroll_per_token: int = field(
        default=600, metadata=doc("profile downloads per enrollment token per window")
    )
    rate_limit_scep_per_address: int = field(
        default=300, metadata=doc("SCEP PKIOperations per client address per window")
    )
    rate_limit_scep_per_challenge: int = field(
        default=10, metadata=doc("SCEP requests per challenge or renewing identity per window")
    )
    rate_limit_auth_failures_per_address: int = field(
        default=20, metadata=doc("failed admin-API authentications per address per window")
    )
    # "decline" answers UserAuthenticate with 410, Apple's documented way to say "no user auth".
    user_authenticate: str = field(
        default="decline",
        metadata=doc(
            "`allow` answers UserAuthenticate with an empty DigestChallenge",
            choices=("decline", "allow"),
        ),
    )
    # Enrollment: one-time SCEP challenges, device identity lifetime and its renewal window.
    challenge_lifetime_minutes: int = field(
        default=60, metadata=doc("how long a profile's one-time SCEP challenge stays valid")
    )
    identity_lifetime_days: int = field(
        default=365, metadata=doc("lifetime of device identities issued through SCEP")
    )
    identity_renewal_days: int = field(
        default=30, metadata=doc("renew identities expiring within this many days")
    )
    # Over-the-air enrollment: Apple's device CA certificates (PEM), published by Apple. Unset,
    # OTA enrollment answers 503; set, devices proving an Apple identity enroll bound to a UDID.
    apple_device_ca_file: str = field(
        default="",
        metadata=doc(
            "Apple's device CA certificates (PEM, published by Apple): turns on over-the-air "
            "enrollment",
            check=_existing_file,
            form="existing PEM file",
        ),
    )
    # "strict": a new identity cannot take over an active enrollment bound to another one
    # (unless it was checked out, erased, its identity expired or revoked, or an admin allowed
    # it); "open" lets any identity re-enroll any device (logged as a warning at start).
    reenroll: str = field(
        default="strict",
        metadata=doc(
            "`open` lets any new identity take over an enrolled device (unsafe)",
            choices=("strict", "open"),
        ),
    )
    auto_migrate: bool | None = field(
        default=None, metadata=doc("apply migrations at start", "on for SQLite")
    )
    # Networks that may read /metrics without an API key (comma-separated CIDRs; "" for none).
    metrics_allow: tuple[str, ...] = field(
        default=("127.0.0.1/32", "::1/128"),
        metadata=doc(
            "networks that may read `/metrics` without a key",
            check=_networks,
            form="comma-separated addresses or CIDR networks",
        ),
    )
    # Push (issue #4): the APNs certificate (default MDM_HOME/push.pem + push.key), Apple's
    # sandbox gateway, or a stand-in gateway (host, port and the CA that issued its TLS cert).
    push_cert_file: str = field(
        default="",
        metadata=doc("APNs push certificate (set by `push-cert import`)", "`MDM_HOME/push.pem`"),
    )
    push_key_file: str = field(default="", metadata=doc("its private key", "`MDM_HOME/push.key`"))
    apns_sandbox: bool = field(default=False, metadata=doc("use APNs' development gateway"))
    apns_host: str = field(
        default="", metadata=doc("a stand-in APNs gateway (tests, demo)", "Apple's")
    )
    apns_port: int = field(default=443, metadata=doc("its port", maximum=65535))
    apns_ca_file: str = field(
        default="",
        metadata=doc(
            "the CA of its TLS certificate", "system CAs", check=_existing_file, form="PEM file"
        ),
    )
    push_batch_size: int = field(
        default=1000, metadata=doc("push requests handed to APNs per batch")
    )
    # Re-push enrollments with pending commands that stay silent: after this many seconds,
    # doubling each time, at most this many times per push request.
    repush_interval_seconds: int = field(
        default=900, metadata=doc("first re-push of a silent device with pending commands")
    )
    repush_max_attempts: int = field(
        default=4, metadata=doc("re-pushes per push request (each waits twice as long)")
    )
    # First delay before a failed push (429/5xx) or webhook is retried; each retry waits 4x more.
    retry_base_seconds: int = field(
        default=5, metadata=doc("first delay before a failed push or webhook is retried (x4 each)")
    )
    # Background jobs: RQ queue names start with this prefix (queues <prefix>:push, :webhooks).
    queue_prefix: str = field(
        default="mdm", metadata=doc("RQ queue and Redis key prefix (`<prefix>:push`, …)")
    )
    # Webhooks: check-in and command-result events POSTed to these URLs, signed with the secret.
    webhook_urls: tuple[str, ...] = field(
        default=(),
        metadata=doc("event receivers", check=_http_urls, form="comma-separated `https://` URLs"),
    )
    webhook_secret: str = field(default="", metadata=doc("HMAC key of the webhook signatures"))
    # Inventory and compliance (issue #7): re-inventory interval, policy file (default
    # MDM_HOME/compliance.toml or .json), lifetime of signed device-trust assertions.
    inventory_interval_hours: int = field(
        default=24, metadata=doc("how often inventory is refreshed")
    )
    inventory_on_enroll: bool = field(
        default=True, metadata=doc("ask for inventory as soon as a device enrolls")
    )
    compliance_policy_file: str = field(
        default="", metadata=doc("compliance rules", "`MDM_HOME/compliance.toml`")
    )
    trust_assertion_ttl_seconds: int = field(
        default=300, metadata=doc("lifetime of signed device-trust JWTs")
    )
    # Apps (issue #17): Apple's Apps and Books service (a stand-in's URL in tests); the
    # content token is kept in MDM_HOME/vpp.token, uploaded files under MDM_HOME/apps.
    vpp_url: str = field(
        default="https://vpp.itunes.apple.com/mdm/v2",
        metadata=doc("Apple's Apps and Books service", form="https:// URL"),
    )
    # The scheduled app reconcile: a device with app assignments whose last
    # ManagedApplicationList is older than this is asked for it again (maintenance.py).
    apps_reconcile_interval_hours: int = field(
        default=24,
        metadata=doc("how often devices' assigned apps are checked against their app list"),
    )
    log_level: str = field(
        default="INFO",
        metadata=doc("logs are JSON lines on stderr, with a request id", choices=LOG_LEVELS),
    )
    log_json: bool = field(default=True, metadata=doc("JSON log lines (off: plain text)"))
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


@dataclass(frozen=True)
class Setting:
    """One setting as the configuration definition declares it."""

    name: str
    kind: str  # "list", "int", "bool", "path" or "str"
    default: Any
    doc: str
    default_text: str | None
    check: Check | None
    minimum: int
    maximum: int | None
    choices: tuple[str, ...]
    form: str | None

    @property
    def variable(self) -> str:
        return f"MDM_{self.name.upper()}"

    @property
    def accepted(self) -> str:
        """The accepted form, as the README and the error messages say it."""
        if self.form:
            return self.form
        if self.choices:
            return " or ".join(f"`{c}`" for c in self.choices)
        bounds = f"{self.minimum}…{self.maximum}" if self.maximum else f"≥ {self.minimum}"
        return {
            "list": "comma-separated list",
            "int": f"whole number {bounds}",
            "bool": "`true` or `false`",
            "path": "folder path",
        }.get(self.kind, "text")

    @property
    def shown_default(self) -> str:
        if self.default_text is not None:
            return self.default_text
        if self.kind == "bool":
            return "on" if self.default else "off"
        if self.kind == "list":
            return ", ".join(self.default) if self.default else "(none)"
        if self.default in ("", None):
            return "(none)"
        return f"`{self.default}`" if self.kind == "str" else str(self.default)


def _kind(hint: Any) -> str:
    text = str(hint)
    if text.startswith("tuple"):
        return "list"
    if hint is bool or text == "bool | None":
        return "bool"
    if hint is int:
        return "int"
    if hint is Path:
        return "path"
    return "str"


@cache
def settings() -> tuple[Setting, ...]:
    """Every setting, in declaration order, with its kind read from the type annotation."""
    hints = get_type_hints(Config)
    out = []
    for f in fields(Config):
        if f.name == "extra":
            continue
        meta = f.metadata or doc("")
        out.append(
            Setting(
                f.name,
                _kind(hints[f.name]),
                f.default,
                meta["doc"],
                meta["default_text"],
                meta["check"],
                meta["minimum"],
                meta["maximum"],
                meta["choices"],
                meta.get("form"),
            )
        )
    return tuple(out)


def _coerce(setting: Setting, value: Any) -> Any:
    """The value in its declared type; ValueError says what form is accepted."""
    if setting.kind == "list":
        if isinstance(value, str):
            return tuple(p.strip() for p in value.replace(";", ",").split(",") if p.strip())
        if isinstance(value, list | tuple):
            return tuple(str(v).strip() for v in value if str(v).strip())
        raise ValueError("expected a comma-separated list (or a TOML list)")
    if setting.kind == "int":
        if isinstance(value, bool):
            raise ValueError("expected a positive integer")
        try:
            number = int(str(value).strip()) if not isinstance(value, int) else value
        except ValueError:
            raise ValueError(f"expected a {_integer_form(setting)}") from None
        if number < setting.minimum or (setting.maximum and number > setting.maximum):
            raise ValueError(f"expected a {_integer_form(setting)}")
        return number
    if setting.kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off"}:
            return False
        raise ValueError("expected true or false")
    if setting.kind == "path":
        return Path(value)
    text = value.strip() if isinstance(value, str) else str(value)
    if setting.choices:
        matches = [c for c in setting.choices if c.lower() == text.lower()]
        if not matches:
            raise ValueError(f"expected one of {', '.join(setting.choices)}")
        return matches[0]
    return text


def _integer_form(setting: Setting) -> str:
    if setting.maximum:
        return f"whole number from {setting.minimum} to {setting.maximum}"
    return "positive integer" if setting.minimum == 1 else f"integer ≥ {setting.minimum}"


def load_config(
    environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> Config:
    """Build the configuration: defaults < ``config.toml`` < ``MDM_*`` variables < overrides.

    Raises ConfigError listing every unusable value, each with where it came from.
    """
    env = os.environ if environ is None else environ
    by_name = {s.name: s for s in settings()}
    home = Path((overrides or {}).get("home") or env.get("MDM_HOME") or "instance")
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    extra: dict[str, Any] = {}
    toml_path = home / "config.toml"
    if toml_path.is_file():
        try:
            data = tomllib.loads(toml_path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{toml_path}: {exc}") from None
        for key, value in data.items():
            if key in by_name:
                values[key], sources[key] = value, f"{key} in {toml_path}"
            else:
                extra[key] = value
    for name, setting in by_name.items():
        env_value = env.get(setting.variable)
        if env_value is not None:
            values[name], sources[name] = env_value, setting.variable
    for name, value in (overrides or {}).items():
        values[name], sources[name] = value, name
    values["home"] = home
    coerced: dict[str, Any] = {}
    problems: list[str] = []
    for name, value in values.items():
        if name not in by_name:
            continue
        setting = by_name[name]
        where = sources.get(name, setting.variable)
        try:
            coerced[name] = _coerce(setting, value)
        except ValueError as exc:
            problems.append(f"{where}={_shown(value)}: {exc}")
            continue
        problem = setting.check(coerced[name]) if setting.check else None
        if problem:
            problems.append(f"{where}={_shown(value)}: {problem}")
    if problems:
        raise ConfigError(problems)
    return Config(**coerced, extra=extra)


def _shown(value: Any) -> str:
    text = str(value) if not isinstance(value, str) else value
    if "://" in text and "@" in text:  # never echo a password from a URL
        scheme, rest = text.split("://", 1)
        text = f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return repr(text)


def settings_table() -> str:
    """The README's settings table, generated from the definitions above."""
    lines = ["| Setting | Default | Accepted | Meaning |", "|---|---|---|---|"]
    for s in settings():
        lines.append(f"| `{s.variable}` | {s.shown_default} | {s.accepted} | {s.doc} |")
    return "\n".join(lines)
