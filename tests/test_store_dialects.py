"""The SQL Server store, checked as far as possible without a SQL Server: DDL and queries compile
for the mssql dialect, the URL resolves, and the engine is built without connecting."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mssql, mysql, postgresql, sqlite
from sqlalchemy.schema import CreateIndex, CreateTable

from reconciler import store

DIALECTS = {
    "mssql": mssql.dialect(),
    "postgresql": postgresql.dialect(),
    "mysql": mysql.dialect(),
    "sqlite": sqlite.dialect(),
}


@pytest.mark.parametrize("name", sorted(DIALECTS))
def test_schema_compiles_for_every_dialect(name: str) -> None:
    dialect = DIALECTS[name]
    for table in store.metadata.sorted_tables:
        ddl = str(CreateTable(table).compile(dialect=dialect))
        assert f"CREATE TABLE {table.name}" in ddl
        for index in table.indexes:
            assert table.name in str(CreateIndex(index).compile(dialect=dialect))


def test_indexed_columns_are_bounded() -> None:
    """SQL Server and MariaDB cannot index unbounded text: every key column has a length."""
    for table in store.metadata.sorted_tables:
        keys = (sa.UniqueConstraint, sa.PrimaryKeyConstraint)
        keyed = [c for con in table.constraints if isinstance(con, keys) for c in con.columns]
        keyed += [c for index in table.indexes for c in index.columns]
        for column in keyed:
            if isinstance(column.type, sa.String):
                assert column.type.length and not isinstance(column.type, sa.Text), (
                    f"{table.name}.{column.name}"
                )


def test_mssql_queries_compile_with_bound_parameters() -> None:
    dialect = DIALECTS["mssql"]
    query = (
        sa.select(store.connections)
        .where(store.connections.c.tenant_id.in_([1, 2]))
        .order_by(store.connections.c.id)
    )
    text = str(query.compile(dialect=dialect))
    assert "FROM osr_connections" in text and "ORDER BY osr_connections.id" in text
    lock = store.locks.delete().where(store.locks.c.id.in_(["a", "b"]))
    assert "DELETE FROM osr_locks" in str(lock.compile(dialect=dialect))


def test_mssql_store_url_resolves_and_engine_is_lazy(tmp_path: Path) -> None:
    url = (
        "mssql+pyodbc://osr:secret@sql01.corp.local:1433/portal"
        "?driver=ODBC+Driver+18+for+SQL+Server&Encrypt=yes"
    )
    location = store.Location.resolve(url, tmp_path)
    assert not location.embedded and location.db_path is None
    assert location.describe().startswith("mssql+pyodbc://osr:***@sql01.corp.local:1433/portal")
    engine = store._engine(location, readonly=True)  # builds, does not connect
    try:
        assert engine.dialect.name == "mssql" and engine.dialect.driver == "pyodbc"
    finally:
        engine.dispose()


@pytest.mark.parametrize("name", sorted(DIALECTS))
def test_uniqueness_is_on_the_identity_key_everywhere(name: str) -> None:
    """Names and company ids are unique by a hex digest of their identity, whatever the
    collation, and names are national (Unicode) text on SQL Server."""
    dialect = DIALECTS[name]
    connections = str(CreateTable(store.connections).compile(dialect=dialect))
    companies = str(CreateTable(store.companies).compile(dialect=dialect))
    assert "CONSTRAINT uq_osr_connections_name UNIQUE (tenant_id, name_key)" in connections
    assert "CONSTRAINT uq_osr_companies_key UNIQUE (connection_id, code_key)" in companies
    assert "name_key VARCHAR(64) NOT NULL" in connections
    if name == "mssql":
        assert "name NVARCHAR(200) NOT NULL" in connections
        assert "code NVARCHAR(200) NOT NULL" in companies
