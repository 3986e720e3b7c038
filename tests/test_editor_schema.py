"""Editors agree with `validate` (DESIGN §9): the tenant schema, applied to what a YAML 1.2
editor reads, accepts what the tool accepts and flags what it refuses, where JSON Schema can say it.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from reconciler import catalog, desired, errors, secrets
from tests import roundtrip_support as rs

SCHEMA = json.loads((Path(__file__).parent.parent / "schemas" / "tenant.schema.json").read_text())
HEAD = "version: 1\ncustomer: acme\ntenant: acme-norway\nconnections:\n  - name: Oslo\n"
SQL = ("    integration: visma-business\n    server: sql01\n    database: vbsys\n"
       "    authentication: sql\n    login: osr\n    password: {env: OSR_X}\n")


def _tool_accepts(text: str, tmp_path: Path) -> bool:
    path = tmp_path / rs.TENANT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    try:
        desired.load_file(path, cat=catalog.load(), settings=secrets.Settings.from_env(tmp_path))
    except errors.InputError:
        return False
    return True


def _editor_accepts(text: str) -> bool:
    return jsonschema.Draft202012Validator(SCHEMA).is_valid(rs.yaml12(text))


@pytest.mark.parametrize(("body", "ok"), [
    (SQL, True),
    (SQL + "    companies: [0001, 1e3, 2026]\n", True),  # numbers to an editor, text to the tool
    (SQL.replace("visma-business", "visma-busines"), False),
    (SQL + "    voucher: {provider: visma-document-center, document_center_path: D:\\V}\n", True),
    (SQL + "    voucher: {provider: visma-document-centre, document_center_path: D:\\V}\n", False),
    (SQL.replace("visma-business", "dynamics-gp")
     + "    voucher: {provider: visma-document-center, document_center_path: D:\\V}\n", False),
    (SQL.replace("    password: {env: OSR_X}\n", ""), False),
    (SQL.replace("{env: OSR_X}", "{env: OSR_X, file: x.txt}"), False),
    (SQL.replace("{env: OSR_X}", "{file: x.txt}"), True),
    (SQL.replace("authentication: sql", "authentication: windows"), False),
    (SQL.replace("authentication: sql", "authentication: windows")
     .replace("    login: osr\n    password: {env: OSR_X}\n", ""), True),
])
def test_editor_and_validate_agree(body: str, ok: bool, tmp_path: Path) -> None:
    text = HEAD + body
    assert _tool_accepts(text, tmp_path) is ok
    assert _editor_accepts(text) is ok


def test_integration_keys_are_offered() -> None:
    integration = SCHEMA["$defs"]["ConnectionModel"]["properties"]["integration"]
    assert integration["enum"] == catalog.builtin().keys()
