"""Check-ins captured from real devices parse into the right typed messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from mdmserver.protocol.checkin import Authenticate, CheckOut, TokenUpdate, parse_checkin
from mdmserver.protocol.enrollment_id import EnrollmentType
from mdmserver.protocol.errors import ProtocolError

pytestmark = pytest.mark.shared

MAC_UDID = "00000000-1111-2222-3333-444455556666"
MAC_TOPIC = "com.apple.mgmt.test.00000000-1111-2222-3333-444455556666"
IMAC_UDID = "E3568F17-92ED-450A-8904-C3BF4CB7E9A5"
IPAD_UDID = "1c111c111c111c111c111c111c111c111c111c11"
XSERVER_TOPIC = "com.apple.mgmt.XServer.1c111c11-1c11-1c11-1c11-1c111c111c11"


def load(fixtures_dir: Path, name: str) -> Authenticate | TokenUpdate | CheckOut:
    message = parse_checkin((fixtures_dir / name).read_bytes())
    assert isinstance(message, Authenticate | TokenUpdate | CheckOut)
    return message


AUTHENTICATE = {
    "Authenticate/10.11.x.xml": dict(
        udid=MAC_UDID,
        topic=MAC_TOPIC,
        serial_number="C00000000004",
        device_name="micromdm-test",
        model="iMac15,1",
        model_name="iMac",
        product_name="iMac15,1",
        os_version="10.11.6",
        build_version="15G1004",
        imei=None,
    ),
    "Authenticate/10.12.2.xml": dict(
        udid=IMAC_UDID,
        topic="com.apple.mgmt.commandment.dev",
        serial_number="000000000000",
        device_name="commandment",
        model="iMac17,1",
        model_name="iMac",
        product_name="iMac17,1",
        os_version="10.12.2",
        build_version="16C67",
        imei=None,
    ),
    "Authenticate/IOS-11.3.1.xml": dict(
        udid=IPAD_UDID,
        topic=XSERVER_TOPIC,
        serial_number="XXXXXXXXXXXX",
        device_name=None,
        model=None,
        model_name=None,
        product_name="iPad4,1",
        os_version="11.3.1",
        build_version="15E302",
        imei=None,
    ),
    "Authenticate/IOS-9.x.xml": dict(
        udid="1111111111111111111111111111111111111111",
        topic="io.micromdm.topic.00000000-1111-2222-3333-444455556666",
        serial_number="XXXXXXXXXXXX",
        device_name=None,
        model=None,
        model_name=None,
        product_name="iPad4,1",
        os_version="9.3.2",
        build_version="13F69",
        imei=None,
    ),
    "Authenticate/iOS-11.3.1-cell.xml": dict(
        udid="1111111111111111111111111111111111111111",
        topic=XSERVER_TOPIC,
        serial_number="XXXXXXXXXXXX",
        device_name=None,
        model=None,
        model_name=None,
        product_name="iPhone7,2",
        os_version="11.3.1",
        build_version="15E302",
        imei="11 111111 111111 1",
    ),
}


@pytest.mark.parametrize("name", sorted(AUTHENTICATE))
def test_authenticate_fixtures(fixtures_dir: Path, name: str) -> None:
    expected = dict(AUTHENTICATE[name])
    message = load(fixtures_dir, name)
    assert isinstance(message, Authenticate)
    assert message.identity.type is EnrollmentType.DEVICE
    assert message.identity.device_id == expected.pop("udid")
    for attr, value in expected.items():
        assert getattr(message, attr) == value, attr


def test_cellular_ipad_reports_meid(fixtures_dir: Path) -> None:
    message = load(fixtures_dir, "Authenticate/iOS-11.3.1-cell.xml")
    assert isinstance(message, Authenticate)
    assert message.meid == "1111111111111"


def test_undocumented_challenge_key_is_kept_in_raw(fixtures_dir: Path) -> None:
    message = load(fixtures_dir, "Authenticate/10.11.x.xml")
    assert message.raw["Challenge"] == b"apple"
    assert message.raw["MessageType"] == "Authenticate"


def test_mac_device_token_update(fixtures_dir: Path) -> None:
    message = load(fixtures_dir, "TokenUpdate/10.11.x.plist")
    assert isinstance(message, TokenUpdate)
    assert message.identity.type is EnrollmentType.DEVICE
    assert message.identity.id == MAC_UDID
    assert message.topic == MAC_TOPIC
    assert message.token == b"apple"
    assert message.token_hex == "6170706c65"
    assert message.push_magic == "00000000-1111-2222-3333-444455556666"
    assert message.awaiting_configuration is False
    assert message.unlock_token is None
    assert message.not_on_console is None


def test_mac_user_token_update_with_placeholder_token(fixtures_dir: Path) -> None:
    # "AAAA=" has one "=" too many; plistlib decodes base64 leniently and reads 3 zero bytes.
    message = load(fixtures_dir, "TokenUpdate/10.11.x-user.plist")
    assert isinstance(message, TokenUpdate)
    assert message.identity.type is EnrollmentType.USER
    assert message.identity.user_id == MAC_UDID
    assert message.identity.id == f"{MAC_UDID}:{MAC_UDID}"
    assert message.token == b"\x00\x00\x00"
    assert message.user_short_name == "admin"
    assert message.user_long_name == "Administrator"
    assert message.not_on_console is False
    assert message.awaiting_configuration is None


def test_imac_device_token_update(fixtures_dir: Path) -> None:
    message = load(fixtures_dir, "TokenUpdate/10.12.2.xml")
    assert isinstance(message, TokenUpdate)
    assert message.identity.id == IMAC_UDID
    assert message.topic == "com.apple.mgmt.commandment.dev"
    assert message.token == b"00201052-A2D0-403D-B857-72F913F5BCCE\n"
    assert message.push_magic == "B81B1FEC-09C6-4EC2-871C-E521EC971B38"
    assert message.awaiting_configuration is False


def test_imac_user_token_update(fixtures_dir: Path) -> None:
    message = load(fixtures_dir, "TokenUpdate/10.12.2-user.xml")
    assert isinstance(message, TokenUpdate)
    assert message.identity.type is EnrollmentType.USER
    assert message.identity.id == f"{IMAC_UDID}:A522C2FB-D0BA-487E-BBC6-BE0DB2DC7883"
    assert message.identity.parent_id == IMAC_UDID
    assert message.token == b"00201052-A2D0-403D-B857-72F913F5BCCD\n"
    assert message.user_short_name == "cjoe"
    assert message.user_long_name == "Commando Joe"
    assert message.not_on_console is False
    assert message.awaiting_configuration is None


@pytest.mark.parametrize("name", ["TokenUpdate/iOS-11.3.1.xml", "CertificateList/iOS-11.3.1.xml"])
def test_placeholder_base64_fixtures_are_refused(fixtures_dir: Path, name: str) -> None:
    with pytest.raises(ProtocolError, match=r"invalid base64 in <data>"):
        parse_checkin((fixtures_dir / name).read_bytes())


@pytest.mark.parametrize(
    ("name", "udid", "topic"),
    [
        ("CheckOut/10.11.x.xml", MAC_UDID, MAC_TOPIC),
        ("CheckOut/iOS-11.3.1.xml", IPAD_UDID, XSERVER_TOPIC),
    ],
)
def test_checkout_fixtures(fixtures_dir: Path, name: str, udid: str, topic: str) -> None:
    message = load(fixtures_dir, name)
    assert isinstance(message, CheckOut)
    assert message.identity.id == udid
    assert message.topic == topic


def test_every_checkin_fixture_is_covered(fixtures_dir: Path) -> None:
    # A fixture added later must get its own expectations here, not slip by untested.
    found = {
        str(path.relative_to(fixtures_dir))
        for folder in ("Authenticate", "TokenUpdate", "CheckOut")
        for path in (fixtures_dir / folder).iterdir()
    }
    covered = set(AUTHENTICATE) | {
        "TokenUpdate/10.11.x.plist",
        "TokenUpdate/10.11.x-user.plist",
        "TokenUpdate/10.12.2.xml",
        "TokenUpdate/10.12.2-user.xml",
        "TokenUpdate/iOS-11.3.1.xml",
        "CheckOut/10.11.x.xml",
        "CheckOut/iOS-11.3.1.xml",
    }
    assert found == covered
