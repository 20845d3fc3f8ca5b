"""The composition root: ``build_server`` assembles every feature without Flask, and the
worker's path (its server, its upkeep, the ``worker`` command itself) never builds a Flask app.

Each check runs in a fresh interpreter, so "Flask was never imported" is about that process
alone, not whatever this test session imported before.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

from mdmserver.enrollment.instance import init_instance
from mdmserver.testing.pki import TEST_TOPIC

REDIS_URL = "redis://127.0.0.1:6379/0"


def _run(script: str, env: dict[str, str]) -> dict[str, object]:
    """Run ``script`` in a new interpreter; it prints one JSON line last."""
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        env={**os.environ, "PYTHONPATH": str(root), **env},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


WEB_MODULES = """
def web_modules():
    import sys
    return sorted(m for m in sys.modules if m in ("flask", "werkzeug") or m.startswith(
        ("flask.", "werkzeug.", "mdmserver.web")
    ))
"""


def _instance(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "instance"
    init_instance(home, "https://mdm.example.test", topic=TEST_TOPIC)
    return {
        "MDM_HOME": str(home),
        "MDM_DATABASE_URL": f"sqlite:///{tmp_path / 'mdm.db'}",
        "MDM_LOG_LEVEL": "WARNING",
    }


def test_build_server_assembles_every_feature_without_flask(tmp_path: Path) -> None:
    answer = _run(
        WEB_MODULES
        + """
import json
from mdmserver.assembly import build_server
from mdmserver.config import load_config

server = build_server(load_config())
try:
    features = {
        "enrollment": server.enrollment.profiles is not None and server.enrollment.scep is not None,
        "profiles": server.profiles.admin.list() == [],
        "inventory": server.inventory.trust is not None,
        "ddm": len(server.ddm.service.declarations()) > 0,  # its built-in status subscription
        "apps": server.apps.store.all() == [],
        "admin": server.admin.api_keys is not None,
    }
    print(json.dumps({
        "features": features,
        "maintenance": sorted(server.maintenance),
        "metrics": "mdm_vpp_token_days_left" in server.metrics.render(),
        "service": type(server.service).__name__,
        "web": web_modules(),
    }))
finally:
    server.close()
""",
        _instance(tmp_path),
    )
    assert answer["features"] == {
        "enrollment": True,
        "profiles": True,
        "inventory": True,
        "ddm": True,
        "apps": True,
        "admin": True,
    }
    assert answer["maintenance"] == [
        "apps_reconcile",
        "compliance_stale",
        "identity_renewal",
        "inventory_refresh",
        "vpp_events",
    ]
    assert answer["service"] == "CertificateRecorder"  # the outermost middleware
    assert answer["metrics"] is True
    assert answer["web"] == [], f"the assembly imported the web layer: {answer['web']}"


def test_the_worker_runs_its_upkeep_and_its_command_without_a_flask_app(tmp_path: Path) -> None:
    env = {
        **_instance(tmp_path),
        "MDM_REDIS_URL": REDIS_URL,
        "MDM_QUEUE_PREFIX": f"assembly-{uuid.uuid4().hex[:8]}",
    }
    answer = _run(
        WEB_MODULES
        + """
import json
from mdmserver.assembly import build_server
from mdmserver.config import load_config

server = build_server(load_config(), role="worker")
try:
    dispatcher = server.jobs.dispatcher
    upkeep = dispatcher.maintenance()  # what each scan runs first
    scanned = dispatcher.scan()
    scans = dispatcher.scan_every is not None and dispatcher.scan_guard is not None
finally:
    server.close()

from mdmserver.cli.worker import worker
worker.main(["--burst"], standalone_mode=False)
print(json.dumps({"upkeep": sorted(upkeep), "scanned": scanned, "scans": scans,
                  "web": web_modules()}))
""",
        env,
    )
    assert answer["upkeep"] == [
        "apps_reconcile",
        "compliance_stale",
        "identity_renewal",
        "inventory_refresh",
        "vpp_events",
    ]
    assert answer["scanned"] == 0 and answer["scans"] is True
    assert answer["web"] == [], f"the worker imported the web layer: {answer['web']}"
