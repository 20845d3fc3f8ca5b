"""The committed schema index must be exactly what the generator makes from ../shared."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "mdmserver" / "catalog" / "schema_index.json"
REGENERATE = "python scripts/gen_schema_index.py  # needs PyYAML; reads ../shared"


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    pytest.importorskip("yaml", reason="the generator needs PyYAML (pip install pyyaml)")
    spec = importlib.util.spec_from_file_location(
        "gen_schema_index", REPO / "scripts/gen_schema_index.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
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


def test_committed_index_is_minified_and_small() -> None:
    data = COMMITTED.read_bytes()
    assert len(data) < 1_500_000
    assert b"\n" not in data.rstrip(b"\n"), "the index should be minified onto one line"
    assert b'"content"' not in data and b'"title"' not in data


def _write(folder: Path, name: str, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)


OS = "  supportedOS:\n    iOS: {introduced: '4.0'}\n    macOS: {introduced: n/a}\n"


def test_generator_handles_aliases_recursion_wildcards_and_split_payloads(
    gen: ModuleType, tmp_path: Path
) -> None:
    mdm = tmp_path / "mdm"
    _write(mdm / "checkin", "a.yaml", f"title: A\npayload:\n  requesttype: Authenticate\n{OS}")
    _write(
        mdm / "commands",
        "x.yaml",
        f"""title: X
payload:
  requesttype: Example
{OS}payloadkeys:
- key: Apps
  type: <array>
  subkeys: &apps
  - key: App
    type: <dictionary>
    subkeys:
    - {{key: Name, type: <string>, presence: required}}
    - {{key: Children, type: <array>, subkeys: *apps}}
- key: Headers
  type: <dictionary>
  subkeys:
  - {{key: ANY header name, type: <string>}}
""",
    )
    for stem, key in (("com.example", "Primary"), ("com.example(extra)", "Extra")):
        _write(
            mdm / "profiles",
            f"{stem}.yaml",
            f"title: P\npayload:\n  payloadtype: com.example\n{OS}"
            f"payloadkeys:\n- {{key: {key}, type: <integer>, presence: required}}\n",
        )
    index = gen.build_index(tmp_path)

    apps = index["commands"]["Example"]["keys"][0]
    (app,) = index["defs"][apps["sub"]]
    children = app["sub"][1]
    assert children["sub"] == apps["sub"], "the recursive alias must point at the same def"
    assert index["commands"]["Example"]["keys"][1]["sub"][0]["wild"] is True
    assert index["commands"]["Example"]["os"]["macOS"] == {"introduced": "n/a"}
    merged = index["profiles"]["com.example"]["keys"]
    assert [k["key"] for k in merged] == ["Primary", "Extra"]
    assert not any(k.get("required") for k in merged), "a key one variant lacks is optional"
    assert gen.render(index) == gen.render(gen.build_index(tmp_path))
