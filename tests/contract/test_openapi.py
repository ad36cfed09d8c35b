"""The committed openapi/openapi.json is exactly what the code exports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from wg_api.cli import main
from wg_api.settings import PROJECT_ROOT

COMMITTED = PROJECT_ROOT / "openapi" / "openapi.json"


def differences(committed: Any, exported: Any, where: str = "$") -> list[str]:
    """Where two JSON documents differ, as JSON paths."""
    if isinstance(committed, dict) and isinstance(exported, dict):
        only_in_code = sorted(exported.keys() - committed.keys())
        only_in_file = sorted(committed.keys() - exported.keys())
        found = [f"{where}.{key}: only in the code" for key in only_in_code]
        found += [f"{where}.{key}: only in the file" for key in only_in_file]
        for key in sorted(committed.keys() & exported.keys()):
            found += differences(committed[key], exported[key], f"{where}.{key}")
        return found
    if committed != exported:
        return [f"{where}: changed"]
    return []


def test_committed_openapi_matches_the_code(tmp_path: Path, capsys):
    exported_file = tmp_path / "openapi.json"
    assert main(["openapi", "export", "--output", str(exported_file)]) == 0
    capsys.readouterr()
    exported = json.loads(exported_file.read_text())
    committed = json.loads(COMMITTED.read_text())
    found = differences(committed, exported)
    assert not found, (
        "openapi/openapi.json is out of date with the code; run `make openapi` and commit it. "
        f"Differences ({len(found)}): " + "; ".join(found[:20])
    )


def test_the_differ_finds_a_changed_document():
    committed = {"paths": {"/v1/me": {"get": {"summary": "Who am I"}}}}
    assert differences(committed, committed) == []
    changed = {"paths": {"/v1/me": {"get": {"summary": "Me"}}, "/v1/new": {}}}
    assert differences(committed, changed) == [
        "$.paths./v1/new: only in the code",
        "$.paths./v1/me.get.summary: changed",
    ]
