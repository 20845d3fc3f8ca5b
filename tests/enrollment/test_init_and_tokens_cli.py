"""`mdmserver init` and `mdmserver enroll-token`, run through the real click commands."""

from __future__ import annotations

import ipaddress
import os
import stat
from datetime import timedelta

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.x509.oid import NameOID

from mdmserver.cli import main
from mdmserver.config import load_config
from mdmserver.crypto.ca import (
    create_ca,
    dump_cert_pem,
    dump_key_pem,
    generate_key,
    issue_certificate,
    load_pem_certificates,
)
from mdmserver.enrollment.onetime import parse_duration
from mdmserver.storage.sql.engine import make_engine
from mdmserver.testing.http import snapshot

KEYS = ("ca.key", "signing.key", "tls.key")


def _run(args: list[str], env: dict[str, str]):
    return CliRunner().invoke(main, args, env=env, catch_exceptions=False)


def _cert(path):
    return load_pem_certificates(path.read_bytes())[0]


def test_init_creates_the_instance_folder(tmp_path):
    home = tmp_path / "inst"
    result = _run(["init", "--server-url", "https://mdm.corp.test:8443"], {"MDM_HOME": str(home)})
    assert result.exit_code == 0, result.output
    assert "placeholder" in result.output
    for name in KEYS:
        assert stat.S_IMODE(os.stat(home / name).st_mode) == 0o600, name
    ca = _cert(home / "ca.pem")
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for name in ("signing.pem", "tls.pem"):
        _cert(home / name).verify_directly_issued_by(ca)
    san = _cert(home / "tls.pem").extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert set(san.value.get_values_for_type(x509.DNSName)) == {"localhost", "mdm.corp.test"}
    assert san.value.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    config = load_config(environ={"MDM_HOME": str(home)})
    assert config.server_url == "https://mdm.corp.test:8443"
    assert len(config.push_topics) == 1
    assert config.push_topics[0].startswith("com.apple.mgmt.External.")


def test_init_never_overwrites_without_force(tmp_path):
    env = {"MDM_HOME": str(tmp_path / "inst")}
    assert _run(["init", "--server-url", "https://a.test"], env).exit_code == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "inst").iterdir()}
    result = _run(["init", "--server-url", "https://b.test", "--topic", "t"], env)
    assert result.exit_code == 1 and "--force" in result.output
    assert {p.name: p.read_bytes() for p in (tmp_path / "inst").iterdir()} == before
    forced = _run(["init", "--server-url", "https://b.test", "--topic", "com.x", "--force"], env)
    assert forced.exit_code == 0, forced.output
    assert "placeholder" not in forced.output
    assert (tmp_path / "inst" / "ca.key").read_bytes() != before["ca.key"]
    assert stat.S_IMODE(os.stat(tmp_path / "inst" / "ca.key").st_mode) == 0o600
    assert load_config(environ=env).push_topics == ("com.x",)


@pytest.mark.parametrize("url", ["http://mdm.test", "mdm.test", "https://", "https://h/?q=1"])
def test_init_requires_an_https_server_url(tmp_path, url):
    result = _run(["init", "--server-url", url], {"MDM_HOME": str(tmp_path / "inst")})
    assert result.exit_code == 1 and "https" in result.output
    assert not (tmp_path / "inst").exists()


def test_init_imports_an_existing_ca(tmp_path):
    ca_cert, ca_key = create_ca("Org CA")
    (tmp_path / "org.pem").write_bytes(dump_cert_pem(ca_cert))
    (tmp_path / "org.key").write_bytes(dump_key_pem(ca_key))
    env = {"MDM_HOME": str(tmp_path / "inst")}
    args = ["init", "--server-url", "https://mdm.test", "--import-ca"]
    result = _run([*args, str(tmp_path / "org.pem"), str(tmp_path / "org.key")], env)
    assert result.exit_code == 0, result.output
    assert _cert(tmp_path / "inst" / "ca.pem") == ca_cert
    _cert(tmp_path / "inst" / "signing.pem").verify_directly_issued_by(ca_cert)


def test_init_refuses_a_bad_imported_ca(tmp_path):
    ca_cert, ca_key = create_ca("Org CA")
    other_key = generate_key("rsa")
    leaf = issue_certificate(
        ca_cert,
        ca_key,
        other_key.public_key(),
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "leaf")]),
        lifetime=timedelta(days=30),
    )
    ec_ca, ec_key = create_ca("EC CA", key_type="ec")
    files = {
        "ca.pem": dump_cert_pem(ca_cert),
        "wrong.key": dump_key_pem(other_key),
        "leaf.pem": dump_cert_pem(leaf),
        "leaf.key": dump_key_pem(other_key),
        "ec.pem": dump_cert_pem(ec_ca),
        "ec.key": dump_key_pem(ec_key),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    env = {"MDM_HOME": str(tmp_path / "inst")}
    for cert, key, message in (
        ("ca.pem", "wrong.key", "not the private key"),
        ("leaf.pem", "leaf.key", "not a CA"),
        ("ec.pem", "ec.key", "must be RSA"),
    ):
        args = ["init", "--server-url", "https://mdm.test", "--import-ca"]
        result = _run([*args, str(tmp_path / cert), str(tmp_path / key)], env)
        assert result.exit_code == 1 and message in result.output, result.output
        assert not (tmp_path / "inst").exists()


def test_enroll_token_commands(tmp_path, database_url):
    env = {"MDM_HOME": str(tmp_path / "inst"), "MDM_DATABASE_URL": database_url}
    created = _run(["enroll-token", "create", "--uses", "3", "--expires", "7d", "--tag", "a"], env)
    assert created.exit_code == 0, created.output
    token = created.output.strip().splitlines()[-1]
    assert len(token) >= 40
    listed = _run(["enroll-token", "list"], env)
    assert listed.exit_code == 0
    assert token not in listed.output and token[:6] in listed.output
    assert "0/3" in listed.output and "active" in listed.output
    token_id = listed.output.splitlines()[1].split()[0]
    engine = make_engine(database_url)
    assert token not in repr(snapshot(engine)), "the token itself must never be stored"
    engine.dispose()
    assert _run(["enroll-token", "revoke", token_id], env).exit_code == 0
    assert "revoked" in _run(["enroll-token", "list"], env).output
    assert _run(["enroll-token", "revoke", token_id], env).exit_code == 1
    for bad in (["--uses", "0"], ["--expires", "soon"], ["--tag", ""]):
        result = _run(["enroll-token", "create", *bad], env)
        assert result.exit_code != 0, bad


def test_durations():
    assert parse_duration("7d") == timedelta(days=7)
    assert parse_duration("12h") == timedelta(hours=12)
    assert parse_duration("1d30m") == timedelta(days=1, minutes=30)
    for bad in ("", "7", "d", "-1d", "0m", "7x"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_enroll_token_bounds_from_the_cli(tmp_path, database_url):
    """The CLI meets the same bounds as the API (mdmserver/bounds.py): a clear error, no row."""
    env = {"MDM_HOME": str(tmp_path / "inst"), "MDM_DATABASE_URL": database_url}
    assert _run(["enroll-token", "list"], env).exit_code == 0  # creates the database
    engine = make_engine(database_url)
    before = snapshot(engine)
    for bad, message in (
        (["--uses", str(2**40)], "uses must be between 1 and 2147483647"),
        (["--expires", "99999999999d"], "is too long"),
        (["--expires", "4000d"], "at most 3660d"),
        (["--tag", "a\x00b"], "printable characters"),
    ):
        result = CliRunner().invoke(main, ["enroll-token", "create", *bad], env=env)
        assert result.exit_code == 1, (bad, result.output, result.exception)
        assert message in result.output, (bad, result.output)
    assert snapshot(engine) == before
    engine.dispose()
