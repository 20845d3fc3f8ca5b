"""Fuzzing what authenticates a request: the Mdm-Signature CMS, SCEP PKIOperation messages and
the proxy's client-certificate header.

Property: the typed value (the signer, the request) or the project's own refusal
(SignatureError, ScepError, CertificateFormatError), never another exception. Inputs are
mutations of valid messages built with real keys, so the parsers are reached past their first
check, plus arbitrary bytes and text.
"""

from __future__ import annotations

import base64
import urllib.parse
from dataclasses import dataclass

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given
from hypothesis import strategies as st

from mdmserver.crypto.ca import create_ca, dump_cert_pem, generate_key
from mdmserver.crypto.certheader import parse_client_cert_header
from mdmserver.crypto.cms_sign import sign_detached
from mdmserver.crypto.cms_verify import verify_detached, verify_mdm_signature
from mdmserver.crypto.errors import CertificateFormatError, SignatureError
from mdmserver.scep.errors import ScepError
from mdmserver.scep.message import PkiRequest, parse_pki_message
from mdmserver.testing.pki import Pki
from mdmserver.testing.scep_client import build_pkcs_req, make_csr, self_signed_for_scep
from tests.fuzz.strategies import FUZZ, FUZZ_SLOW, mutated

BODY = b'<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict/></plist>'


@dataclass(frozen=True)
class Seeds:
    signer: x509.Certificate
    signatures: tuple[bytes, ...]  # DER: RSA with signed attributes, EC without
    ca_cert: x509.Certificate
    ca_key: rsa.RSAPrivateKey
    pki_message: bytes
    der: bytes  # a device certificate


@pytest.fixture(scope="module")
def seeds(pki: Pki) -> Seeds:
    cert, key = pki.identity("fuzz device")
    ec_cert, ec_key = pki.identity("fuzz device ec", "ec")
    ca_cert, ca_key = create_ca("fuzz SCEP CA")
    assert isinstance(ca_key, rsa.RSAPrivateKey)
    device_key = generate_key("rsa")
    assert isinstance(device_key, rsa.RSAPrivateKey)
    csr = make_csr(device_key, "fuzz", "challenge-123")
    message, _, _ = build_pkcs_req(
        csr, self_signed_for_scep(device_key, "fuzz"), device_key, ca_cert
    )
    return Seeds(
        signer=cert,
        signatures=(
            sign_detached(BODY, cert, key, signed_attributes=True),
            sign_detached(BODY, ec_cert, ec_key, signed_attributes=False),
        ),
        ca_cert=ca_cert,
        ca_key=ca_key,
        pki_message=message,
        der=cert.public_bytes(serialization.Encoding.DER),
    )


def test_seeds_are_valid(seeds: Seeds) -> None:
    """The mutations start from inputs the parsers accept, so they reach deep."""
    assert verify_detached(seeds.signatures[0], BODY) == seeds.signer
    header = base64.b64encode(seeds.signatures[1]).decode()
    assert isinstance(verify_mdm_signature(header, BODY), x509.Certificate)
    request = parse_pki_message(seeds.pki_message, seeds.ca_cert, seeds.ca_key)
    assert request.challenge == "challenge-123"
    assert parse_client_cert_header(":" + base64.b64encode(seeds.der).decode() + ":")


@FUZZ_SLOW
@given(data=st.data())
def test_mdm_signature(seeds: Seeds, data: st.DataObject) -> None:
    seed = data.draw(st.sampled_from(seeds.signatures))
    signature = data.draw(st.one_of(mutated(seed), st.binary(max_size=200)))
    body = data.draw(st.one_of(st.just(BODY), mutated(BODY)))
    as_header = data.draw(st.booleans())
    try:
        if as_header:
            found = verify_mdm_signature(base64.b64encode(signature).decode(), body)
        else:
            found = verify_detached(signature, body)
    except SignatureError:
        return
    assert isinstance(found, x509.Certificate)


@FUZZ
@given(st.text(max_size=300))
def test_mdm_signature_header_text(header: str) -> None:
    try:
        verify_mdm_signature(header, BODY)
    except SignatureError:
        return
    raise AssertionError("random text verified as a signature")


@FUZZ_SLOW
@given(data=st.data())
def test_scep_pki_message(seeds: Seeds, data: st.DataObject) -> None:
    message = data.draw(st.one_of(mutated(seeds.pki_message), st.binary(max_size=200)))
    try:
        request = parse_pki_message(message, seeds.ca_cert, seeds.ca_key)
    except ScepError:
        return
    assert isinstance(request, PkiRequest)


@FUZZ
@given(data=st.data())
def test_client_cert_header(seeds: Seeds, data: st.DataObject) -> None:
    der = data.draw(st.one_of(mutated(seeds.der), st.just(seeds.der)))
    pem = dump_cert_pem(x509.load_der_x509_certificate(seeds.der)).decode()
    value = data.draw(
        st.one_of(
            st.just(":" + base64.b64encode(der).decode() + ":"),
            mutated(urllib.parse.quote(pem, safe="/+=").encode()).map(
                lambda raw: raw.decode("latin-1")
            ),
            st.text(max_size=200),
            st.text(max_size=60).map(lambda text: f":{text}:"),
            st.text(max_size=60).map(lambda text: "-----BEGIN" + text),
        )
    )
    try:
        cert = parse_client_cert_header(value)
    except CertificateFormatError:
        return
    assert isinstance(cert, x509.Certificate)
