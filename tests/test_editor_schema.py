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
SQL = (
    "    integration: visma-business\n    server: sql01\n    database: vbsys\n"
    "    authentication: sql\n    login: osr\n    password: {env: OSR_X}\n"
)


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


@pytest.mark.parametrize(
    ("body", "ok"),
    [
        (SQL, True),
        (SQL + "    companies: [0001, 1e3, 2026]\n", True),  # numbers to an editor, text to the tool
        (SQL.replace("visma-business", "visma-busines"), False),
        (SQL + "    voucher: {provider: visma-document-center, document_center_path: D:\\V}\n", True),
        (SQL + "    voucher: {provider: visma-document-centre, document_center_path: D:\\V}\n", False),
        (
            SQL.replace("visma-business", "dynamics-gp")
            + "    voucher: {provider: visma-document-center, document_center_path: D:\\V}\n",
            False,
        ),
        (SQL.replace("    password: {env: OSR_X}\n", ""), False),
        (SQL.replace("login: osr", "login: '   '"), False),  # spaces only: no login
        (SQL.replace("database: vbsys", 'database: "  "'), False),
        (SQL.replace("login: osr", "login: ' osr '"), True),
        (SQL.replace("{env: OSR_X}", "{env: OSR_X, file: x.txt}"), False),
        (SQL.replace("{env: OSR_X}", "{file: x.txt}"), True),
        (SQL.replace("authentication: sql", "authentication: windows"), False),
        (
            SQL.replace("authentication: sql", "authentication: windows").replace(
                "    login: osr\n    password: {env: OSR_X}\n", ""
            ),
            True,
        ),
    ],
)
def test_editor_and_validate_agree(body: str, ok: bool, tmp_path: Path) -> None:
    text = HEAD + body
    assert _tool_accepts(text, tmp_path) is ok
    assert _editor_accepts(text) is ok


def test_integration_keys_are_offered() -> None:
    integration = SCHEMA["$defs"]["ConnectionModel"]["properties"]["integration"]
    assert integration["enum"] == catalog.builtin().keys()


# Every bad-input tenant file the tool refuses, where the editor schema (read by a YAML 1.2
# reader) still accepts it, and why JSON Schema does not say it. A new disagreement fails here.
BEYOND_SCHEMA = {
    # Rules about the path, the store, the secrets directory or the whole file.
    "customer-mismatch": "the folder name is not in the document",
    "tenant-mismatch": "the file name is not in the document",
    "path-file-not-slug": "the file name is not in the document",
    "path-folder-not-slug": "the folder name is not in the document",
    "path-yaml-and-yml": "two files declaring one tenant",
    "password-file-absolute": "where the secrets directory is, is known only at run time",
    "password-file-parent": "where the secrets directory is, is known only at run time",
    "password-file-symlink-out": "links are resolved on disk",
    "password-env-github-token": "the prefix is configurable (RECONCILER_SECRET_ENV_PREFIX)",
    "password-env-store-key": "the prefix is configurable (RECONCILER_SECRET_ENV_PREFIX)",
    "env-bare-prefix": "the prefix is configurable (RECONCILER_SECRET_ENV_PREFIX)",
    # Uniqueness by identity (casefold of NFC) across items: JSON Schema's uniqueItems compares
    # exact values only.
    "company-twice": "uniqueness ignoring case",
    "company-nfd-duplicate": "uniqueness by NFC",
    "name-duplicate-case": "uniqueness ignoring case",
    "name-nfd-duplicate": "uniqueness by NFC",
    "name-is-previous-name": "a relation between items",
    "previous-name-twice": "a relation between items",
    # Characters: ECMA-262 patterns without the u flag (what editors run) cannot name Unicode
    # categories, so invisible and control characters are left to validate.
    "name-bidi-override": "Unicode categories",
    "name-zero-width": "Unicode categories",
    "line-separator": "Unicode categories",
    # What the strict reader refuses before any schema applies (YAML 1.2 readers accept them).
    "boolean-True": "YAML 1.2 core schema reads True as a boolean; the tool takes only true",
    "syntax-duplicate-anchor": "a YAML-level rule",
    "tag-float": "tags are refused by the reader",
    # Server and path forms: the one parser SQL Server drivers share (spec.parse_server).
    "server-colon-port": "host:port is text to a schema",
    "server-port-range": "numbers inside text",
}


def test_the_schema_and_validate_agree_on_the_bad_input_corpus() -> None:
    from ruamel.yaml import YAML

    reader = YAML(typ="safe", pure=True)
    validator = jsonschema.Draft202012Validator(SCHEMA)
    corpus = Path(__file__).parent / "bad_input" / "tenants"
    accepted = set()
    for path in sorted(corpus.glob("*/tenants/*/*.y*ml")):
        try:
            data = reader.load(path.read_bytes().decode("utf-8-sig"))
        except Exception:
            continue
        if not list(validator.iter_errors(data)):
            accepted.add(path.parts[-4])
    assert accepted == set(BEYOND_SCHEMA), (
        f"new disagreements: {sorted(accepted - set(BEYOND_SCHEMA))}; "
        f"no longer disagreeing: {sorted(set(BEYOND_SCHEMA) - accepted)}"
    )


def test_the_schema_accepts_the_good_tenant_files() -> None:
    from ruamel.yaml import YAML

    reader = YAML(typ="safe", pure=True)
    validator = jsonschema.Draft202012Validator(SCHEMA)
    for path in sorted((Path(__file__).parent.parent / "tenants").glob("*/*.yaml")):
        assert not list(validator.iter_errors(reader.load(path.read_text(encoding="utf-8")))), path


def test_what_the_tool_reads_as_text_a_yaml_1_2_editor_may_read_as_a_number() -> None:
    """`name: 2024` of a tombstone, `previous_names: [2024]`, `server: 10`, `{file: 2024}`,
    `customer: 2024` are text to validate; the schema typed them as strings only, so an editor
    flagged files validate accepts. And the store's lengths validate checks are the schema's."""
    validator = jsonschema.Draft202012Validator(SCHEMA)
    entry = {
        "name": "Oslo",
        "integration": "visma-business",
        "server": "sql01",
        "database": "vb",
        "authentication": "sql",
        "login": "reader",
        "password": {"env": "OSR_X"},
        "companies": ["F1"],
    }

    def problems(**changes: object) -> list[str]:
        doc = {"version": 1, "customer": "acme", "tenant": "acme-norway", "connections": [entry]}
        connection = {k: v for k, v in changes.items() if k not in ("customer", "tombstone")}
        doc["connections"] = [{**entry, **connection}]
        if "customer" in changes:
            doc["customer"] = changes["customer"]
        if "tombstone" in changes:
            doc["connections"].append({"name": changes["tombstone"], "absent": True})
        return [e.message for e in validator.iter_errors(doc)]

    for accepted in (
        {"tombstone": 2024},
        {"previous_names": [2024]},
        {"server": 10},
        {"password": {"file": 2024}},
        {"customer": 2024},
    ):
        assert problems(**accepted) == [], accepted
    for refused in ({"server": "s" * 201}, {"name": "Visma  Oslo"}, {"companies": ["F1", "F1"]}):
        assert problems(**refused), refused
