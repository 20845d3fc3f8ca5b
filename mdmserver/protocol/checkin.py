"""The eight check-in messages, typed from one declarative key table each.

Each class's KEYS lists every key Apple documents for that MessageType
(mdm/checkin/*.yaml), so tests can compare the table with the YAML. `required`
marks only what the server cannot work without: the YAML's "required" is often
per-OS or per-channel (DeviceName is n/a on iOS; UserLongName exists only on
macOS user channels), and real devices omit such keys. Keys a device adds in
newer OS versions are kept in `raw` rather than refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from mdmserver.bounds import CHECKIN_BYTES, CHECKIN_TEXT, BoundError
from mdmserver.protocol.enrollment_id import EnrollmentIdentity, identity_from
from mdmserver.protocol.errors import ProtocolError
from mdmserver.protocol.plist import DEFAULT_MAX_BYTES, loads, typed_value

__all__ = [
    "MESSAGE_TYPES",
    "Authenticate",
    "CheckOut",
    "CheckinMessage",
    "DeclarativeManagement",
    "GetBootstrapToken",
    "GetToken",
    "Key",
    "SetBootstrapToken",
    "TokenUpdate",
    "UserAuthenticate",
    "checkin_from",
    "parse_checkin",
]


@dataclass(frozen=True, slots=True)
class Key:
    """One documented plist key; `attr` is None for keys that only name the sender."""

    name: str
    kind: type
    attr: str | None
    required: bool = False


def _sender(*names: str, required: bool = False) -> tuple[Key, ...]:
    """Identity keys: type-checked here, interpreted by identity_from."""
    return tuple(Key(name, str, None, required) for name in names)


_DEVICE_IDS = _sender("UDID", "EnrollmentID")
_USER_IDS = (
    *_sender("EnrollmentUserID", "UserID"),
    Key("UserShortName", str, "user_short_name"),
    Key("UserLongName", str, "user_long_name"),
)
_TOPIC = Key("Topic", str, "topic", required=True)
_AWAITING = Key("AwaitingConfiguration", bool, "awaiting_configuration")


@dataclass(frozen=True, slots=True, kw_only=True)
class _Checkin:
    """Fields every check-in has: the sending channel and the whole dictionary."""

    MESSAGE_TYPE: ClassVar[str] = ""
    KEYS: ClassVar[tuple[Key, ...]] = ()

    identity: EnrollmentIdentity
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Authenticate(_Checkin):
    """First contact of an enrollment; device details are optional on many OSes."""

    MESSAGE_TYPE: ClassVar[str] = "Authenticate"
    KEYS: ClassVar[tuple[Key, ...]] = (
        _TOPIC,
        *_DEVICE_IDS,
        Key("DeviceName", str, "device_name"),
        Key("ModelName", str, "model_name"),
        Key("Model", str, "model"),
        Key("OSVersion", str, "os_version"),
        Key("BuildVersion", str, "build_version"),
        Key("ProductName", str, "product_name"),
        Key("SerialNumber", str, "serial_number"),
        Key("IMEI", str, "imei"),
        Key("MEID", str, "meid"),
    )

    topic: str
    device_name: str | None = None
    model_name: str | None = None
    model: str | None = None
    os_version: str | None = None
    build_version: str | None = None
    product_name: str | None = None
    serial_number: str | None = None
    imei: str | None = None
    meid: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenUpdate(_Checkin):
    """The push token and PushMagic a channel can be woken with.

    `awaiting_configuration` is None when the key is absent, which means
    "unchanged", not False: many devices omit it.
    """

    MESSAGE_TYPE: ClassVar[str] = "TokenUpdate"
    KEYS: ClassVar[tuple[Key, ...]] = (
        _TOPIC,
        *_DEVICE_IDS,
        *_USER_IDS,
        Key("NotOnConsole", bool, "not_on_console"),
        Key("Token", bytes, "token", required=True),
        Key("PushMagic", str, "push_magic", required=True),
        Key("UnlockToken", bytes, "unlock_token"),
        _AWAITING,
    )

    topic: str
    token: bytes
    push_magic: str
    unlock_token: bytes | None = field(default=None, repr=False)  # a secret: keep it out of logs
    awaiting_configuration: bool | None = None
    not_on_console: bool | None = None
    user_short_name: str | None = None
    user_long_name: str | None = None

    @property
    def token_hex(self) -> str:
        """The token as APNs wants it in the request path."""
        return self.token.hex()


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckOut(_Checkin):
    """The device is leaving management (sent only when the profile asks for it)."""

    MESSAGE_TYPE: ClassVar[str] = "CheckOut"
    KEYS: ClassVar[tuple[Key, ...]] = (_TOPIC, *_DEVICE_IDS)

    topic: str


@dataclass(frozen=True, slots=True, kw_only=True)
class UserAuthenticate(_Checkin):
    """A macOS user asks for a user channel; DigestResponse comes only on the second round."""

    MESSAGE_TYPE: ClassVar[str] = "UserAuthenticate"
    KEYS: ClassVar[tuple[Key, ...]] = (
        *_sender("UDID", "UserID", required=True),
        Key("DigestResponse", str, "digest_response"),
    )

    digest_response: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SetBootstrapToken(_Checkin):
    """A missing or empty `bootstrap_token` asks the server to forget the stored one."""

    MESSAGE_TYPE: ClassVar[str] = "SetBootstrapToken"
    KEYS: ClassVar[tuple[Key, ...]] = (
        Key("BootstrapToken", bytes, "bootstrap_token"),
        _AWAITING,
    )

    bootstrap_token: bytes | None = field(default=None, repr=False)  # a secret: keep it out of logs
    awaiting_configuration: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GetBootstrapToken(_Checkin):
    """The Mac wants its escrowed bootstrap token back."""

    MESSAGE_TYPE: ClassVar[str] = "GetBootstrapToken"
    KEYS: ClassVar[tuple[Key, ...]] = (_AWAITING,)

    awaiting_configuration: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeclarativeManagement(_Checkin):
    """A declarative-management request: `endpoint` says which document is wanted."""

    MESSAGE_TYPE: ClassVar[str] = "DeclarativeManagement"
    KEYS: ClassVar[tuple[Key, ...]] = (
        Key("Endpoint", str, "endpoint", required=True),
        Key("Data", bytes, "data"),
        *_DEVICE_IDS,
        *_USER_IDS,
    )

    endpoint: str
    data: bytes | None = None
    user_short_name: str | None = None
    user_long_name: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GetToken(_Checkin):
    """The device asks the server for a service token (e.g. watch pairing)."""

    MESSAGE_TYPE: ClassVar[str] = "GetToken"
    KEYS: ClassVar[tuple[Key, ...]] = (
        Key("TokenServiceType", str, "token_service_type", required=True),
        Key("TokenParameters", dict, "token_parameters"),
        *_DEVICE_IDS,
        *_USER_IDS,
    )

    token_service_type: str
    token_parameters: dict[str, Any] | None = None
    user_short_name: str | None = None
    user_long_name: str | None = None


CheckinMessage = (
    Authenticate
    | TokenUpdate
    | CheckOut
    | UserAuthenticate
    | SetBootstrapToken
    | GetBootstrapToken
    | DeclarativeManagement
    | GetToken
)

MESSAGE_TYPES: dict[str, type[_Checkin]] = {
    cls.MESSAGE_TYPE: cls
    for cls in (
        Authenticate,
        TokenUpdate,
        CheckOut,
        UserAuthenticate,
        SetBootstrapToken,
        GetBootstrapToken,
        DeclarativeManagement,
        GetToken,
    )
}


def parse_checkin(body: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> CheckinMessage:
    """Parse a check-in request body into its typed message."""
    return checkin_from(loads(body, max_bytes=max_bytes))


def checkin_from(message: Mapping[str, Any]) -> CheckinMessage:
    """Type an already-parsed check-in dictionary (for callers that parsed it themselves)."""
    message_type = typed_value(message, "MessageType", str, where="check-in", required=True)
    cls = MESSAGE_TYPES.get(message_type)
    if cls is None:
        raise ProtocolError(f"unknown check-in MessageType {message_type!r}")
    values: dict[str, Any] = {}
    for key in cls.KEYS:
        value = typed_value(
            message, key.name, key.kind, where=cls.MESSAGE_TYPE, required=key.required
        )
        if value is not None:
            _check_bound(key.name, value, cls.MESSAGE_TYPE)
        if key.attr is not None:
            values[key.attr] = value
    raw = message if isinstance(message, dict) else dict(message)
    identity = identity_from(message, where=cls.MESSAGE_TYPE)
    return cls(identity=identity, raw=raw, **values)  # type: ignore[return-value]


def _check_bound(name: str, value: Any, where: str) -> None:
    """The column rule of a stored key (mdmserver/bounds.py), checked before anything is stored."""
    rule = CHECKIN_TEXT.get(name) if isinstance(value, str) else CHECKIN_BYTES.get(name)
    if rule is None:
        return
    try:
        rule.check(value, f"{where}: key {name!r}")
    except BoundError as exc:
        raise ProtocolError(str(exc)) from None
