"""The committed DDM index must be exactly what scripts/gen_ddm_index.py makes from ../shared."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "mdmserver" / "ddm" / "schema_index.json"
REGENERATE = "python scripts/gen_ddm_index.py  # needs PyYAML; reads ../shared"


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    pytest.importorskip("yaml", reason="the generator needs PyYAML (pip install pyyaml)")
    sys.path.insert(0, str(REPO / "scripts"))
    spec = importlib.util.spec_from_file_location(
        "gen_ddm_index", REPO / "scripts/gen_ddm_index.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.shared
def test_committed_index_is_byte_identical_to_a_fresh_build(
    gen: ModuleType, spec_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "schema_index.json"
    assert gen.main([str(spec_dir), "-o", str(out)]) == 0
    assert out.read_bytes() == COMMITTED.read_bytes(), (
        f"{COMMITTED.name} is stale or hand-edited; regenerate it with: {REGENERATE}"
    )


def test_the_index_has_what_the_server_needs() -> None:
    from mdmserver.ddm.schema import declaration_spec, protocol_spec, status_spec

    tokens = protocol_spec("TokensResponse").key("SyncTokens")
    assert tokens is not None and set(tokens.by_name) == {"DeclarationsToken", "Timestamp"}
    items = protocol_spec("DeclarationItemsResponse").key("Declarations")
    assert items is not None
    assert set(items.by_name) == {"Activations", "Assets", "Configurations", "Management"}
    spec = declaration_spec("com.apple.configuration.passcode.settings")
    assert spec is not None and spec.cls == "configuration"
    assert spec.root.by_name["MinimumLength"].type == "integer"
    compliant = status_spec("passcode.is-compliant")
    assert compliant is not None and compliant.type == "boolean"
    data = declaration_spec("com.apple.asset.data")
    assert data is not None and data.cls == "asset"
