"""The simulator enrolls over the air: profile service, attributes signed by a simulated Apple
device identity (iPhones with their chain, Macs without), then SCEP and check-in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mdmserver.cli import main
from mdmserver.simulator.fleet import Fleet, FleetOptions
from mdmserver.testing.apple_device_pki import BUNDLE_FILE, AppleDevicePki


@pytest.fixture(scope="module")
def apple_ca_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("apple-device-ca")
    AppleDevicePki.create().save(folder)
    return folder


@pytest.fixture
def sim_overrides(apple_ca_dir: Path) -> dict[str, Any]:
    return {"apple_device_ca_file": str(apple_ca_dir / BUNDLE_FILE)}


def test_fleet_enrolls_over_the_air(sim_server, apple_ca_dir):
    options = FleetOptions(devices=4, macos_share=0.5)
    fleet = Fleet(
        sim_server.url,
        options,
        verify=False,
        apns=sim_server.gateway,
        apple=AppleDevicePki.load(apple_ca_dir),
    )
    try:
        report = fleet.enroll_all(sim_server.instance.token)
        assert (report.enrolled, report.failed) == (4, 0), report.failures
        assert {d.spec.platform for d in fleet.devices} == {"iOS", "macOS"}
        assert {d["id"]: d["identity"] for d in sim_server.admin.devices()} == {
            d.udid: "attested" for d in fleet.devices
        }
    finally:
        fleet.close()


def test_simulate_ota_cli(sim_server, apple_ca_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("MDM_HOME", str(tmp_path / "elsewhere"))
    common = ["simulate", "--token", sim_server.instance.token, "--server-url", sim_server.url]
    fresh = tmp_path / "new-ca"
    result = CliRunner().invoke(main, [*common, "--ota", "--apple-device-ca-dir", str(fresh)])
    assert result.exit_code == 0, result.output
    assert f"MDM_APPLE_DEVICE_CA_FILE={(fresh / BUNDLE_FILE).resolve()}" in result.output
    args = ["--ota", "--apple-device-ca-dir", str(apple_ca_dir), "--devices", "2"]
    result = CliRunner().invoke(main, [*common, *args, "--duration", "0.2"])
    assert result.exit_code == 0, result.output
    assert "enrolled 2/2" in result.output and "failed 0" in result.output
