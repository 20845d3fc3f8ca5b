"""The import structure of mdmserver: no import cycles, Flask and Werkzeug only in the web and
CLI layers, no layer importing one above it (scripts/check_layers.py), and the checker itself
on small made-up packages."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parent.parent

# Violations allowed for now. Empty since issue #14 removed the last of them; the test also
# fails when a listed one is gone, so a list added here can only shrink.
KNOWN: set[str] = set()


@pytest.fixture(scope="module")
def check_layers() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_layers", REPO / "scripts/check_layers.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


def test_no_cycles_no_flask_outside_web_no_upward_imports(check_layers: ModuleType) -> None:
    """protocol < storage < service < features < assembly < web/cli: no module imports a
    layer above its own (scripts/check_layers.py LAYERS), none imports another in a cycle."""
    found = check_layers.analyse(REPO / "mdmserver").violations(layers=True)
    assert found - KNOWN == set(), "new import-structure violations"
    assert KNOWN - found == set(), "fixed: remove these from KNOWN in tests/test_layers.py"


def _package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "mdmserver" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "mdmserver"


def test_checker_finds_module_level_cycles_only(check_layers: ModuleType, tmp_path: Path) -> None:
    root = _package(
        tmp_path,
        {
            "__init__.py": "",
            "a.py": "from mdmserver import b\n",
            "b.py": "from . import c\n",
            "c.py": "import mdmserver.a\n",
            "d.py": "import typing\nif typing.TYPE_CHECKING:\n    from mdmserver import e\n",
            "e.py": "from mdmserver import d\n",
            "f.py": "def late():\n    from mdmserver import g\n",
            "g.py": "from mdmserver.f import late\n",
        },
    )
    report = check_layers.analyse(root)
    assert report.violations(layers=False) == {"cycle: mdmserver.a <-> mdmserver.b <-> mdmserver.c"}
    assert report.cycle_paths == [["mdmserver.a", "mdmserver.b", "mdmserver.c", "mdmserver.a"]]
    assert report.function_cycles == [["mdmserver.f", "mdmserver.g"]]


def test_checker_finds_flask_and_upward_imports(check_layers: ModuleType, tmp_path: Path) -> None:
    root = _package(
        tmp_path,
        {
            "__init__.py": "",
            "protocol/__init__.py": "",
            "protocol/plist.py": "import werkzeug.datastructures\n",
            "storage/__init__.py": "",
            "storage/sql.py": "def f():\n    from mdmserver.service import core\n",
            "service/__init__.py": "",
            "service/core.py": "from mdmserver.protocol import plist\n",
            "web/__init__.py": "",
            "web/mdm.py": "import flask\nfrom mdmserver.service import core\n",
        },
    )
    report = check_layers.analyse(root)
    assert report.violations(layers=True) == {
        "web: mdmserver.protocol.plist imports werkzeug",
        "layer: mdmserver.storage.sql (storage) imports mdmserver.service.core (service)",
    }
