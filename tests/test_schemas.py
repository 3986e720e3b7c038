"""The checked-in JSON Schemas are generated from the code and describe real files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal, NotRequired, TypedDict

import jsonschema
import pytest
import yaml

from reconciler import plan as p
from reconciler import schemas, views

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "name", ["tenant.schema.json", "plan.schema.json", "drift.schema.json", "reconciler.schema.json"]
)
def test_checked_in_schema_is_up_to_date(name: str) -> None:
    assert (REPO / "schemas" / name).read_text(encoding="utf-8") == schemas.files()[name], (
        f"schemas/{name} is stale: run `make schemas`"
    )


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
    bad = {
        "version": 1,
        "customer": "acme",
        "tenant": "acme-norway",
        "connections": [
            {
                "name": "x",
                "integration": "visma-business",
                "server": "s",
                "database": "d",
                "authentication": "sql",
                "pasword": {"env": "OSR_X"},
            }
        ],
    }
    assert list(validator.iter_errors(bad))
    literal = {
        "version": 1,
        "customer": "acme",
        "tenant": "t",
        "connections": [
            {
                "name": "x",
                "integration": "visma-business",
                "server": "s",
                "database": "d",
                "authentication": "sql",
                "login": "l",
                "password": "hunter2",
            }
        ],
    }
    assert list(validator.iter_errors(literal))


def test_plan_schema_is_closed_where_the_views_are() -> None:
    """Generated from reconciler.views: a key no view declares (an action-level `checks`, say)
    is refused, and what a view may leave out is not required."""
    schema = schemas.plan_schema()
    tenant = schema["properties"]["tenants"]["items"]
    action = tenant["properties"]["actions"]["items"]
    assert "checks" not in action["properties"] and action["additionalProperties"] is False
    assert "checks" in tenant["properties"] and "checks" not in tenant["required"]
    assert tenant["properties"]["checks"]["items"]["additionalProperties"] is False
    assert "previous_name" not in action["required"] and "reason" in action["required"]
    validator = jsonschema.Draft202012Validator(schema)
    plan = {
        "format_version": 1,
        "tenants": [
            {
                "customer": "c",
                "tenant": "t",
                "unmanaged": [],
                "notes": [],
                "actions": [
                    {
                        "action": "create",
                        "connection": "x",
                        "reason": "create_because_declared",
                        "changes": [],
                        "cascade": [],
                        "kept": [],
                    }
                ],
            }
        ],
        "summary": dict.fromkeys(["create", "update", "rename", "adopt", "delete", "cascade", "blocked"], 0),
        "guards": {
            "max_delete": 0,
            "mass_delete": [],
            "needs_allow_cascade": False,
            "needs_allow_mass_delete": False,
            "source_checks_failed": False,
        },
    }
    assert validator.is_valid(plan)
    plan["tenants"][0]["actions"][0]["checks"] = []  # type: ignore[index]
    assert not validator.is_valid(plan)


class Small(TypedDict):
    kind: p.ActionKind | None
    count: views.Count
    word: Literal["a"]
    maybe: NotRequired[Annotated[list[str], views.Doc("{lookahead_days} days")]]


def test_schema_of_the_view_types() -> None:
    assert schemas.schema_of(Small) == {
        "type": "object",
        "additionalProperties": False,
        "required": ["kind", "count", "word"],
        "properties": {
            "kind": {"enum": [*(k.value for k in p.ActionKind), None]},
            "count": {"type": "integer", "minimum": 0},
            "word": {"const": "a"},
            "maybe": {"type": "array", "items": {"type": "string"}, "description": "3000 days"},
        },
    }
    with pytest.raises(TypeError):
        schemas.schema_of(set[str])
