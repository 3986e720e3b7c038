"""The integration catalog's SQL Server text, checked as far as possible without a SQL Server.

Each query is parsed as T-SQL (sqlglot), its output columns must be the ones the entry names,
and the facts DESIGN §3 records must be there. Running them needs a real SQL Server: not done here.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from reconciler import catalog, errors

BUILT_IN = catalog._load(None)
KEYS = sorted(BUILT_IN.integrations)


def _parse(sql: str) -> exp.Expression:
    parsed = sqlglot.parse_one(sql.replace("?", "'db'"), read="tsql")
    assert parsed is not None
    return parsed


@pytest.mark.parametrize("key", KEYS)
def test_company_query_is_tsql_selecting_the_named_columns(key: str) -> None:
    entry = BUILT_IN.integrations[key]
    query = _parse(entry.companies.query)
    assert isinstance(query, exp.Select)
    assert query.named_selects == [entry.companies.id_column, entry.companies.name_column]
    assert "?" not in entry.companies.query  # run as is on the system database


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("which", ["read_check", "write_check"])
def test_permission_checks_use_has_perms_by_name_on_the_database(key: str, which: str) -> None:
    sql = getattr(BUILT_IN.integrations[key], which)
    query = _parse(sql)
    calls = [f for f in query.find_all(exp.Anonymous) if f.name.upper() == "HAS_PERMS_BY_NAME"]
    assert len(calls) == sql.count("?") >= 1  # every `?` is bound to the database name
    for call in calls:
        securable, klass, permission = call.expressions
        assert securable.this == "db" and klass.this == "DATABASE"
        assert permission.this in ({"CONNECT", "SELECT"} if which == "read_check" else {"INSERT", "UPDATE"})


@pytest.mark.parametrize(
    ("key", "fragments"),
    [
        ("dynamics-gp", ["DYNAMICS..SY01500", "INTERID", "CMPNYNAM"]),
        ("dynamics-nav", ["dbo.Company", "Name"]),
        ("dynamics-ax", ["DATAAREA", "ID", "NAME", "ISVIRTUAL = 0"]),
        ("sap-business-one", ["[SBO-COMMON].dbo.SRGC", "dbName", "cmpName"]),
        ("visma-business", ["F[0-9][0-9][0-9][0-9]"]),
    ],
)
def test_design_facts_are_in_the_catalog(key: str, fragments: list[str]) -> None:
    query = BUILT_IN.integrations[key].companies.query
    for fragment in fragments:
        assert fragment in query


def test_only_visma_has_a_voucher_step() -> None:
    with_vouchers = {k: e.voucher_providers for k, e in BUILT_IN.integrations.items() if e.voucher_providers}
    assert with_vouchers == {"visma-business": ("visma-document-center",)}


@pytest.mark.parametrize(
    ("key", "company", "database"),
    [
        ("visma-business", "F0001", "F0001"),
        ("dynamics-gp", "TWO", "TWO"),
        ("dynamics-nav", "CRONUS", "NAV"),
        ("dynamics-ax", "DAT", "AX"),
        ("sap-business-one", "SBODEMO", "SBODEMO"),
    ],
)
def test_company_database(key: str, company: str, database: str) -> None:
    entry = BUILT_IN.integrations[key]
    assert entry.company_database_for(company, entry.default_database) == database


def test_the_built_in_catalog_passes_the_check_a_user_catalog_gets() -> None:
    """The built-in catalog is read without pydantic (reading tenant files must not need it); it
    is checked here as RECONCILER_CATALOG files are as they are read, and reads the same."""
    text = resources.files("reconciler").joinpath("catalog.yaml").read_text(encoding="utf-8")
    assert catalog._parse(text, "built-in", check=True) == catalog._parse(text, "built-in", check=False)
    assert catalog.builtin().integrations == catalog._parse(text, "built-in", check=True)


def test_a_user_catalog_is_checked(tmp_path: Path) -> None:
    extra = tmp_path / "extra.yaml"
    extra.write_text("version: 1\nintegrations:\n  x:\n    display_name: X\n", encoding="utf-8")
    with pytest.raises(errors.CatalogError, match=r"extra\.yaml: the integration catalog is invalid"):
        catalog._parse(extra.read_text(encoding="utf-8"), str(extra))


def test_a_user_catalog_is_read_as_strictly_as_tenant_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RECONCILER_CATALOG was read by YAML 1.1 (`default_database: NO` a boolean, a key written
    twice kept silently), its problems one line joined by ';' without a line or column, and a
    file of any size read whole. Now: strictyaml's rules, one problem per line at its place."""
    entry = (
        "version: 1\nintegrations:\n  x-a:\n    display_nam: A\n    default_database: NO\n"
        '    companies: {query: "SELECT 1", id_column: a}\n'
        '    permissions: {read: "SELECT 1", write: "SELECT 1"}\n'
    )
    extra = tmp_path / "extra.yaml"
    extra.write_text(entry, encoding="utf-8")
    monkeypatch.setenv(catalog.CATALOG_ENV, str(extra))
    catalog._load.cache_clear()
    with pytest.raises(errors.CatalogError) as raised:
        catalog.load()
    assert raised.value.lines() == [
        f"{extra}:4:5: integrations.x-a: unknown key 'display_nam'; did you mean 'display_name'?",
        f"{extra}:6:16: integrations.x-a.companies: missing key 'name_column'; add name_column: ...",
    ]
    extra.write_text(
        entry.replace("display_nam:", "display_name:").replace(
            "id_column: a}", "id_column: a, name_column: b}"
        )
    )
    catalog._load.cache_clear()
    assert catalog.load().integrations["x-a"].default_database == "NO"
    extra.write_text(entry.replace("    display_nam: A\n", "    display_name: A\n    display_name: B\n"))
    catalog._load.cache_clear()
    with pytest.raises(errors.CatalogError) as raised:
        catalog.load()
    assert (
        f"{extra}:5:5: duplicate key 'display_name' (first at line 4, column 5); keep one"
        in raised.value.lines()
    )
    extra.write_bytes(b"version: 1\n" + b"#" * (2 * 1024 * 1024))
    catalog._load.cache_clear()
    with pytest.raises(errors.CatalogError) as raised:
        catalog.load()
    assert "1 MiB" in " ".join(raised.value.lines()) or "too big" in " ".join(raised.value.lines())
    catalog._load.cache_clear()
