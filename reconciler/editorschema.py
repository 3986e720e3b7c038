"""The tenant schema for editors: the loader's models plus what `validate` checks beyond them.

yaml-language-server (and any JSON Schema client) then agrees with `validate` on what it can
express: the catalog's integration keys and each integration's voucher providers as enums
(completion offers them, typos are flagged), SQL vs Windows authentication and the env-or-file
password as conditions. A YAML 1.2 editor reads `0001` or `1e3` as a number where the tool keeps
the text, so the values the tool reads as text accept numbers here too.
"""

from __future__ import annotations

import copy
from typing import Any

from reconciler import catalog, checks, tenantfile

# Text the tool reads as written, that a YAML 1.2 editor may read as a number.
_TEXT_OR_NUMBER = ("name", "database", "login", "server")
# What validate says of a name's spaces (spec.name_problem) that a pattern can say: none at
# the start or end, never two in a row.
_NAME_SPACES = r"^(?!.* {2})\S(?:.*\S)?$"


def _text_or_number(schema: dict[str, Any]) -> None:
    if schema.get("type") == "string":
        schema["type"] = ["string", "number"]
    for option in schema.get("anyOf", ()):
        _text_or_number(option)


def tenant_schema(cat: catalog.Catalog | None = None) -> dict[str, Any]:
    """tenantfile.json_schema() with the catalog (the built-in one, by default) and the rules."""
    cat = cat or catalog.builtin()
    schema = copy.deepcopy(tenantfile.json_schema())
    defs = schema["$defs"]
    conn = defs["ConnectionModel"]
    props = conn["properties"]
    keys = cat.keys()
    props["integration"]["enum"] = keys
    for key in _TEXT_OR_NUMBER:
        _text_or_number(props[key])
    names = [
        props["name"],
        props["previous_names"]["items"],
        props["companies"]["items"],
        defs["TombstoneModel"]["properties"]["name"],
    ]
    for name in names:
        _text_or_number(name)
        name["pattern"] = _NAME_SPACES
    props["companies"]["uniqueItems"] = True  # the same id twice (by identity: validate only)
    _text_or_number(defs["SecretRefModel"]["properties"]["file"])
    # Lengths and forms validate checks after pydantic (checks.check_server, check_doc_path,
    # check_slug), which the models' schema does not carry.
    props["server"]["maxLength"] = checks.MAX_SERVER
    path = defs["VoucherModel"]["properties"]["document_center_path"]
    path["maxLength"], path["pattern"] = checks.MAX_DOC_PATH, checks.DOC_PATH.pattern
    for key in ("customer", "tenant"):
        schema["properties"][key]["maxLength"] = checks.MAX_SLUG
        _text_or_number(schema["properties"][key])
    providers = sorted({p for k in keys for p in cat.get(k).voucher_providers})  # type: ignore[union-attr]
    defs["VoucherModel"]["properties"]["provider"]["enum"] = providers
    rules: list[dict[str, Any]] = [
        {
            "if": {"properties": {"authentication": {"const": "sql"}}, "required": ["authentication"]},
            "then": {
                "required": ["login", "password"],
                "properties": {"login": {"type": ["string", "number"]}, "password": {"type": "object"}},
            },
        },
        {
            "if": {"properties": {"authentication": {"const": "windows"}}, "required": ["authentication"]},
            "then": {"properties": {"login": {"type": "null"}, "password": {"type": "null"}}},
        },
    ]
    for key in keys:
        entry = cat.get(key)
        assert entry is not None
        when = {"properties": {"integration": {"const": key}}, "required": ["integration"]}
        if entry.voucher_providers:
            rules.append(
                {
                    "if": when,
                    "then": {
                        "properties": {
                            "voucher": {
                                "anyOf": [
                                    {"type": "null"},
                                    {
                                        "type": "object",
                                        "properties": {"provider": {"enum": list(entry.voucher_providers)}},
                                    },
                                ]
                            }
                        }
                    },
                }
            )
        else:
            rules.append({"if": when, "then": {"properties": {"voucher": {"type": "null"}}}})
    conn["allOf"] = rules
    defs["SecretRefModel"]["oneOf"] = [
        {"properties": {"env": {"type": "string"}}, "required": ["env"]},
        {"properties": {"file": {"type": ["string", "number"]}}, "required": ["file"]},
    ]
    return schema
