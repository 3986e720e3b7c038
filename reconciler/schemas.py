"""Generate schemas/tenant.schema.json and reconciler.schema.json (from the loaders' models),
plan.schema.json and drift.schema.json (from the TypedDicts of reconciler.views, which render
builds the JSON with).

Run `make schemas` (python -m reconciler.schemas); a test fails when the checked-in files differ.
"""

from __future__ import annotations

import enum
import json
import sys
import types
import typing
from pathlib import Path
from typing import Any

from reconciler import editorschema, views, windows

# Filled into views.Doc texts: what views (stdlib only) cannot import.
DOC_FIELDS = {"lookahead_days": windows.LOOKAHEAD.days}
_SIMPLE: dict[object, dict[str, Any]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    bool: {"type": "boolean"},
    float: {"type": "number"},
    type(None): {"type": "null"},
    Any: {},
}


def schema_of(tp: Any) -> dict[str, Any]:
    """The JSON Schema of a view type: TypedDicts (closed objects), lists, enums, Literal,
    unions (an enum or null stays one enum) and the Annotated metadata of reconciler.views."""
    if typing.get_origin(tp) is typing.Annotated:
        base, *meta = typing.get_args(tp)
        schema = schema_of(base)
        for m in meta:
            if isinstance(m, views.Minimum):
                schema["minimum"] = m.value
            elif isinstance(m, views.Const):
                schema = {"const": m.value}
            elif isinstance(m, views.OneOf):
                schema = {"enum": list(m.values)}
            elif isinstance(m, views.Doc):
                schema = {**schema, "description": m.text.format(**DOC_FIELDS)}
        return schema
    if tp in _SIMPLE:
        return dict(_SIMPLE[tp])
    if typing.is_typeddict(tp):
        hints = typing.get_type_hints(tp, include_extras=True)
        return {
            "type": "object",
            "additionalProperties": False,
            "required": [k for k, v in hints.items() if _required(v) is v],
            "properties": {k: schema_of(_required(v)) for k, v in hints.items()},
        }
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return {"enum": [m.value for m in tp]}
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is list:
        return {"type": "array", "items": schema_of(args[0])}
    if origin is typing.Literal:
        return {"const": args[0]} if len(args) == 1 else {"enum": list(args)}
    if origin in (types.UnionType, typing.Union):
        options = [schema_of(a) for a in args]
        if all(set(o) == {"enum"} or o == {"type": "null"} for o in options):
            return {"enum": [v for o in options for v in o.get("enum", [None])]}
        return {"oneOf": options}
    raise TypeError(f"no JSON Schema for {tp!r}")


def _required(tp: Any) -> Any:
    """NotRequired[X] -> X (the object's "required" list says what may be left out). Read from
    the hints: with postponed annotations, __required_keys__ cannot see NotRequired (3.11)."""
    return typing.get_args(tp)[0] if typing.get_origin(tp) is typing.NotRequired else tp


def _document(view: Any, name: str, title: str) -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://osr-reconciler.invalid/schemas/{name}",
        "title": title,
        **schema_of(view),
    }


def plan_schema() -> dict[str, Any]:
    return _document(
        views.PlanJSON, "plan.schema.json", "osr-reconciler plan (reconciler plan --format json)"
    )


def drift_schema() -> dict[str, Any]:
    return _document(
        views.DriftJSON, "drift.schema.json", "osr-reconciler drift report (reconciler drift --format json)"
    )


def files() -> dict[str, str]:
    def dump(obj: dict[str, Any]) -> str:
        return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"

    return {
        "tenant.schema.json": dump(editorschema.tenant_schema()),
        "plan.schema.json": dump(plan_schema()),
        "drift.schema.json": dump(drift_schema()),
        "reconciler.schema.json": dump(windows.json_schema()),
    }


def main(argv: list[str]) -> int:
    target = Path(argv[0]) if argv else Path("schemas")
    target.mkdir(exist_ok=True)
    for name, text in files().items():
        (target / name).write_text(text, encoding="utf-8")
        print(f"wrote {target / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
