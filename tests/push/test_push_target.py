"""Where aioapns connects, and how APNs answers map to what the server does next."""

from __future__ import annotations

import pytest
from aioapns.connection import APNsDevelopmentClientProtocol, APNsProductionClientProtocol

from mdmserver.push.apns_target import (
    ApnsEndpointError,
    build_apns,
    current_endpoint,
    use_apns_endpoint,
)
from mdmserver.push.outcome import OutcomeKind, classify
from mdmserver.testing.apns_pki import Identity


@pytest.fixture
def cert_file(tmp_path: object, push_identity: Identity) -> str:
    path = tmp_path / "push.pem"  # type: ignore[operator]
    path.write_bytes(push_identity.cert_pem + push_identity.key_pem)
    return str(path)


def test_without_override_clients_talk_to_apple(cert_file: str, topic: str) -> None:
    assert current_endpoint() is None
    production = build_apns(cert_file, topic, use_sandbox=False, endpoint=None)
    sandbox = build_apns(cert_file, topic, use_sandbox=True, endpoint=None)
    assert (
        production.pool.protocol_class.APNS_SERVER,
        production.pool.protocol_class.APNS_PORT,
    ) == (
        "api.push.apple.com",
        443,
    )
    assert issubclass(production.pool.protocol_class, APNsProductionClientProtocol)
    assert issubclass(sandbox.pool.protocol_class, APNsDevelopmentClientProtocol)
    assert sandbox.pool.protocol_class.APNS_SERVER == "api.development.push.apple.com"
    assert production.pool.ssl_context.verify_mode.name == "CERT_REQUIRED"
    assert production.pool.ssl_context.check_hostname


def test_override_is_scoped_nested_and_leaves_aioapns_untouched(
    cert_file: str, topic: str, apple_ca: Identity
) -> None:
    with use_apns_endpoint("127.0.0.1", 2197, apple_ca.cert_pem) as outer:
        with use_apns_endpoint("localhost", 2198) as inner:
            assert current_endpoint() == inner
        assert current_endpoint() == outer
        apns = build_apns(cert_file, topic, use_sandbox=False, endpoint=outer)
    assert current_endpoint() is None
    assert (apns.pool.protocol_class.APNS_SERVER, apns.pool.protocol_class.APNS_PORT) == (
        "127.0.0.1",
        2197,
    )
    # A reconnect after the block still goes to the stand-in; aioapns' own classes are as shipped.
    assert APNsProductionClientProtocol.APNS_SERVER == "api.push.apple.com"
    assert apns.pool.ssl_context.verify_mode.name == "CERT_REQUIRED"


@pytest.mark.parametrize(("host", "port"), [("", 443), ("a b", 443), ("h", 0), ("h", "443")])
def test_bad_endpoints_are_refused(host: str, port: int) -> None:
    with pytest.raises(ApnsEndpointError), use_apns_endpoint(host, port):
        pass


def test_bad_ca_is_refused(cert_file: str, topic: str) -> None:
    with (
        use_apns_endpoint("127.0.0.1", 2197, b"not a pem") as endpoint,
        pytest.raises(ApnsEndpointError, match="CA"),
    ):
        build_apns(cert_file, topic, use_sandbox=False, endpoint=endpoint)


@pytest.mark.parametrize(
    ("status", "reason", "kind"),
    [
        (200, None, OutcomeKind.DELIVERED),
        (None, "Timeout", OutcomeKind.RETRY),
        (410, "Unregistered", OutcomeKind.STALE_TOKEN),
        (410, "ExpiredToken", OutcomeKind.STALE_TOKEN),
        (400, "BadDeviceToken", OutcomeKind.STALE_TOKEN),
        (429, "TooManyRequests", OutcomeKind.RETRY),
        (500, "InternalServerError", OutcomeKind.RETRY),
        (503, "Shutdown", OutcomeKind.RETRY),
        (400, "IdleTimeout", OutcomeKind.RETRY),
        (403, "BadCertificate", OutcomeKind.CERTIFICATE_ERROR),
        (403, "SomethingNew", OutcomeKind.CERTIFICATE_ERROR),
        (400, "TopicDisallowed", OutcomeKind.CERTIFICATE_ERROR),
        (400, "DeviceTokenNotForTopic", OutcomeKind.CERTIFICATE_ERROR),
        (400, "MissingTopic", OutcomeKind.REJECTED),
        (405, "MethodNotAllowed", OutcomeKind.REJECTED),
        (413, "PayloadTooLarge", OutcomeKind.REJECTED),
    ],
)
def test_classify(status: int | None, reason: str | None, kind: OutcomeKind) -> None:
    assert classify(status, reason) is kind
