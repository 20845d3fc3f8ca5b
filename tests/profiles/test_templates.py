"""Every shipped template builds, validates against Apple's schema, signs, and openssl verifies."""

from __future__ import annotations

import base64
import plistlib

import pytest

from mdmserver.catalog.validate import validate_payload
from mdmserver.profiles import devicevars, validation
from mdmserver.profiles.builder import build
from mdmserver.profiles.signing import ProfileSigner, sign_contents_job
from mdmserver.profiles.template import TemplateError, default_directory, load_templates
from mdmserver.testing.pki import with_invalid_version
from tests.profiles.conftest import openssl_verify

TEMPLATES = sorted(load_templates())


def test_the_library_has_what_organisations_enforce_first():
    assert set(TEMPLATES) >= {
        "passcode", "restrictions", "filevault", "wifi-eap-tls", "root-cert", "webclip"
    }  # fmt: skip
    readme = (default_directory() / "README.md").read_text()
    for name, template in load_templates().items():
        assert f"`{name}`" in readme, f"{name} is not documented in profiles/README.md"
        for variable in template.variables:
            assert f"`{variable}`" in readme, f"{name}.{variable} is not documented"


@pytest.mark.parametrize("name", TEMPLATES)
def test_template_validates_signs_and_verifies(name, template_values, signer_home, pki):
    template = load_templates()[name]
    built = build(template.render(template_values.get(name, {})), f"com.example.{name}")
    assert validation.check(built.profile, built.content) == []
    for payload in built.profile["PayloadContent"]:
        assert validate_payload(payload["PayloadType"], payload) == []
    content = built.content
    if devicevars.uses_device_values(content):
        values = {"serial_number": "C02XYZ", "udid": "UDID-1", "access_challenge": "c" * 43}
        content = devicevars.fill(content, values)
    (signed,) = sign_contents_job(str(signer_home), [content])
    assert openssl_verify(signed, pki.ca_file) == content
    assert validation.unwrap(signed) == content  # and we can read our own signed files


def test_payload_references_are_resolved(template_values):
    template = load_templates()["filevault"]
    profile = build(template.render(template_values["filevault"]), "com.example.fv").profile
    by_type = {p["PayloadType"]: p for p in profile["PayloadContent"]}
    escrow = by_type["com.apple.security.FDERecoveryKeyEscrow"]
    assert escrow["EncryptCertPayloadUUID"] == by_type["com.apple.security.pkcs1"]["PayloadUUID"]


def test_device_values_are_filled_per_device():
    built = build(load_templates()["webclip"].render({}), "com.example.clip")
    assert devicevars.names_used(built.content) == {"serial_number"}
    filled = plistlib.loads(devicevars.fill(built.content, {"serial_number": "C02<&>"}))
    assert filled["PayloadContent"][0]["URL"] == "https://help.example.com/device/C02<&>"
    with pytest.raises(devicevars.MissingDeviceValue):
        devicevars.fill(built.content, {"serial_number": None})


def test_missing_required_and_unknown_variables_are_refused():
    template = load_templates()["root-cert"]
    with pytest.raises(TemplateError, match="certificate"):
        template.render({})
    with pytest.raises(TemplateError, match="colour"):
        template.render({"colour": "red"})
    with pytest.raises(TemplateError, match="min_length"):
        load_templates()["passcode"].render({"min_length": "eight"})


def test_signer_from_the_instance_folder(signer_home, pki):
    signer = ProfileSigner.from_home(signer_home)
    assert signer.chain[0] == pki.ca_cert
    assert openssl_verify(signer.sign(b"<plist/>"), pki.ca_file) == b"<plist/>"


def test_a_certificate_variable_of_an_unknown_version_is_refused(pki):
    """Found by tests/fuzz: cryptography's InvalidVersion escaped as a 500."""
    cert, _ = pki.identity("root", "ec")
    der = with_invalid_version(cert)
    template = load_templates()["root-cert"]
    with pytest.raises(TemplateError, match="certificate"):
        template.render({"certificate": base64.b64encode(der).decode()})
