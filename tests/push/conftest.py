"""A fake "Apple" PKI, the APNs stand-in serving it, and push clients aimed at it (real TLS)."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator

import pytest

from mdmserver.push.apns_target import use_apns_endpoint
from mdmserver.push.client import PushClient
from mdmserver.testing.apns_pki import (
    Identity,
    issue_push_cert,
    issue_server_cert,
    make_ca,
    new_mdm_topic,
)
from mdmserver.testing.fake_apns import FakeAPNs


@pytest.fixture(scope="session")
def apple_ca() -> Identity:
    return make_ca("Fake Apple Root CA")


@pytest.fixture(scope="session")
def other_ca() -> Identity:
    return make_ca("Somebody Else's CA")


@pytest.fixture(scope="session")
def server_identity(apple_ca: Identity) -> Identity:
    return issue_server_cert(apple_ca, ("127.0.0.1", "localhost"))


@pytest.fixture(scope="session")
def topic() -> str:
    return new_mdm_topic()


@pytest.fixture(scope="session")
def push_identity(apple_ca: Identity, topic: str) -> Identity:
    return issue_push_cert(apple_ca, topic)


@pytest.fixture(scope="session")
def foreign_push_identity(other_ca: Identity, topic: str) -> Identity:
    """Same topic, but issued by a CA the stand-in does not trust."""
    return issue_push_cert(other_ca, topic)


@pytest.fixture(scope="session")
def fake_apns(apple_ca: Identity, server_identity: Identity) -> Iterator[FakeAPNs]:
    with FakeAPNs(
        ca_pem=apple_ca.cert_pem,
        cert_pem=server_identity.cert_pem,
        key_pem=server_identity.key_pem,
    ) as server:
        yield server


@pytest.fixture(scope="session")
def make_client(fake_apns: FakeAPNs, apple_ca: Identity) -> Iterator[Callable[..., PushClient]]:
    """Builds PushClients aimed at the stand-in; closes them all at the end."""
    clients: list[PushClient] = []

    def make(identity: Identity, topic: str, **options: object) -> PushClient:
        with use_apns_endpoint("127.0.0.1", fake_apns.port, apple_ca.cert_pem):
            client = PushClient(identity.cert_pem, identity.key_pem, topic, **options)  # type: ignore[arg-type]
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture(scope="session")
def push_client(
    make_client: Callable[..., PushClient], push_identity: Identity, topic: str
) -> PushClient:
    return make_client(push_identity, topic, timeout=10.0)


@pytest.fixture
def new_token() -> Callable[[], str]:
    """Fresh 32-byte device tokens, so tests sharing the stand-in never see each other."""
    return lambda: secrets.token_hex(32)
