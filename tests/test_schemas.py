"""The checked-in JSON Schemas are generated from the code and describe real files."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from reconciler import schemas

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", ["tenant.schema.json", "plan.schema.json", "drift.schema.json",
                                  "reconciler.schema.json"])
def test_checked_in_schema_is_up_to_date(name: str) -> None:
    assert (REPO / "schemas" / name).read_text(encoding="utf-8") == schemas.files()[name], (
        f"schemas/{name} is stale: run `make schemas`")


def test_schemas_are_valid_json_schema() -> None:
    for text in schemas.files().values():
        obj = json.loads(text)
        jsonschema.Draft202012Validator.check_schema(obj)


@pytest.mark.parametrize("path", sorted((REPO / "tenants").rglob("*.yaml")), ids=lambda p: p.name)
def test_demo_tenant_files_satisfy_the_editor_schema(path: Path) -> None:
    schema = json.loads((REPO / "schemas" / "tenant.schema.json").read_text())
    jsonschema.validate(yaml.safe_load(path.read_text(encoding="utf-8")), schema)


def test_editor_schema_rejects_what_the_loader_rejects() -> None:
    schema = json.loads((REPO / "schemas" / "tenant.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    bad = {"version": 1, "customer": "acme", "tenant": "acme-norway",
           "connections": [{"name": "x", "integration": "visma-business", "server": "s",
                            "database": "d", "authentication": "sql", "pasword": {"env": "OSR_X"}}]}
    assert list(validator.iter_errors(bad))
    literal = {"version": 1, "customer": "acme", "tenant": "t",
               "connections": [{"name": "x", "integration": "visma-business", "server": "s",
                                "database": "d", "authentication": "sql", "login": "l",
                                "password": "hunter2"}]}
    assert list(validator.iter_errors(literal))
