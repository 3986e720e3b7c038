"""Generate schemas/tenant.schema.json and reconciler.schema.json (from the loaders' models),
plan.schema.json and drift.schema.json.

Run `make schemas` (python -m reconciler.schemas); a test fails when the checked-in files differ.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from reconciler import editorschema, render, spec, windows
from reconciler import plan as p

_STR = {"type": "string"}
_NULLABLE_STR = {"type": ["string", "null"]}
# A connection renamed in the portal since the tool last applied it (same id, new name).
_PORTAL_RENAME = {"type": "object", "additionalProperties": False, "required": ["from", "to"],
                  "properties": {"from": _STR, "to": _STR}}


def _freeze() -> dict[str, Any]:
    """A tenant's change windows (reconciler.yaml, DESIGN §11), present only when one is open
    or opens within 7 days. Times are ISO 8601 in the window's zone, with its offset."""
    opening = {"type": "object", "additionalProperties": False,
               "required": ["window", "start", "end", "timezone"],
               "properties": {"window": _STR, "start": _STR, "end": _STR, "timezone": _STR}}
    nullable = {"oneOf": [opening, {"type": "null"}]}
    return {"type": "object", "additionalProperties": False, "required": ["active", "next"],
            "description": "active: the open window (apply refuses without --override-freeze); "
                           f"next: the next to open within {windows.UPCOMING_DAYS} days",
            "properties": {"active": nullable, "next": nullable}}


def plan_schema() -> dict[str, Any]:
    change = {
        "oneOf": [
            {"type": "object", "additionalProperties": False, "required": ["field", "before", "after"],
             "properties": {"field": _STR, "before": {}, "after": {}}},
            {"type": "object", "additionalProperties": False, "required": ["field", "sensitive"],
             "properties": {"field": {"enum": sorted(p.SENSITIVE_FIELDS)}, "sensitive": {"const": True},
                            "note": _STR}},
        ]
    }
    action = {
        "type": "object", "additionalProperties": False,
        "required": ["action", "connection", "reason", "changes", "cascade", "kept"],
        "properties": {
            "action": {"enum": [k.value for k in p.ActionKind]},
            "connection": _STR,
            "previous_name": _STR,
            "reason": {"enum": [r.value for r in p.Reason]},
            "status": {"enum": [s.value for s in p.Status]},
            "changes": {"type": "array", "items": change},
            "cascade": {"type": "array", "items": {
                "type": "object", "additionalProperties": False,
                "required": ["kind", "name", "company"],
                "properties": {"kind": {"enum": [k.value for k in spec.DependentKind]},
                               "name": _STR, "company": _STR}}},
            "kept": {"type": "array", "items": {
                "type": "object", "additionalProperties": False, "required": ["kind", "name"],
                "properties": {"kind": {"const": "report_template"}, "name": _STR}}},
            "blocked": _STR,
            "needs_secret": _STR,
            "renamed_in_portal": _PORTAL_RENAME,
        },
    }
    count = {"type": "integer", "minimum": 0}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://osr-reconciler.invalid/schemas/plan.schema.json",
        "title": "osr-reconciler plan (reconciler plan --format json)",
        "type": "object", "additionalProperties": False,
        "required": ["format_version", "tenants", "summary", "guards"],
        "properties": {
            "format_version": {"const": render.FORMAT_VERSION},
            "tenants": {"type": "array", "items": {
                "type": "object", "additionalProperties": False,
                "required": ["customer", "tenant", "actions", "unmanaged", "notes"],
                "properties": {"customer": _STR, "tenant": _STR,
                               "actions": {"type": "array", "items": action},
                               "unmanaged": {"type": "array", "items": _STR},
                               "notes": {"type": "array", "items": _STR},
                               "checks": {"type": "array", "items": {
                                   "type": "object", "required": ["connection", "ok", "problems"],
                                   "properties": {"connection": _STR, "ok": {"type": "boolean"},
                                                  "problems": {"type": "array", "items": _STR}}}},
                               "freeze": _freeze()}}},
            "summary": {"type": "object", "additionalProperties": False,
                        "required": ["create", "update", "rename", "adopt", "delete", "cascade",
                                     "blocked"],
                        "properties": {k: count for k in ("create", "update", "rename", "adopt",
                                                          "delete", "cascade", "blocked")}},
            "guards": {"type": "object", "additionalProperties": False,
                       "required": ["max_delete", "mass_delete", "needs_allow_cascade",
                                    "needs_allow_mass_delete", "source_checks_failed"],
                       "properties": {"max_delete": count,
                                      "mass_delete": {"type": "array", "items": _STR},
                                      "needs_allow_cascade": {"type": "boolean"},
                                      "needs_allow_mass_delete": {"type": "boolean"},
                                      "source_checks_failed": {"type": "boolean"}}},
        },
    }


def drift_schema() -> dict[str, Any]:
    count = {"type": "integer", "minimum": 0}
    statuses = ["drift", "pending", "drift_and_pending", "unmanaged"]
    item = {
        "type": "object", "additionalProperties": False,
        "required": ["connection", "status", "action", "fields"],
        "properties": {"connection": _STR, "status": {"enum": statuses},
                       "action": {"enum": [*(k.value for k in p.ActionKind), None]},
                       "fields": {"type": "array", "items": _STR}, "blocked": _STR,
                       "renamed_in_portal": _PORTAL_RENAME},
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://osr-reconciler.invalid/schemas/drift.schema.json",
        "title": "osr-reconciler drift report (reconciler drift --format json)",
        "type": "object", "additionalProperties": False,
        "required": ["format_version", "kind", "tenants", "summary"],
        "properties": {
            "format_version": {"const": render.FORMAT_VERSION},
            "kind": {"const": "drift"},
            "tenants": {"type": "array", "items": {
                "type": "object", "additionalProperties": False,
                "required": ["customer", "tenant", "connections"],
                "properties": {"customer": _STR, "tenant": _STR,
                               "connections": {"type": "array", "items": item},
                               "freeze": _freeze()}}},
            "summary": {"type": "object", "additionalProperties": False, "required": statuses,
                        "properties": {s: count for s in statuses}},
        },
    }


def files() -> dict[str, str]:
    def dump(obj: dict[str, Any]) -> str:
        return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"
    return {"tenant.schema.json": dump(editorschema.tenant_schema()), "plan.schema.json": dump(plan_schema()),
            "drift.schema.json": dump(drift_schema()),
            "reconciler.schema.json": dump(windows.json_schema())}


def main(argv: list[str]) -> int:
    target = Path(argv[0]) if argv else Path("schemas")
    target.mkdir(exist_ok=True)
    for name, text in files().items():
        (target / name).write_text(text, encoding="utf-8")
        print(f"wrote {target / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
