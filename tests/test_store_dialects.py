"""The SQL Server store, checked as far as possible without a SQL Server: DDL and queries compile
for the mssql dialect, the URL resolves, and the engine is built without connecting."""

from __future__ import annotations

import contextlib
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.dialects import mssql, mysql, postgresql, sqlite
from sqlalchemy.schema import CreateColumn, CreateIndex, CreateTable

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


# Columns of ASCII text only: digests, ids, slugs (customer and tenant names, checked by
# checks.SLUG_RE), the tool's own words (kinds, actions, reasons, field names), timestamps' ids.
ASCII_COLUMNS = {
    "osr_meta": {"key", "value"},
    "osr_customers": {"name"},
    "osr_tenants": {"name"},
    "osr_connections": {"name_key", "password_ct", "password_fp", "applied_fp"},
    "osr_companies": {"code_key"},
    "osr_dependents": {"kind"},
    "osr_audit_log": {"git_commit", "customer", "tenant", "action", "reason", "fields"},
    "osr_locks": {"id", "scope", "machine"},
}


def test_text_a_person_writes_is_national_text_on_sql_server() -> None:
    """SQL Server keeps VARCHAR in the database's code page (cp1252 by default): an actor
    `Дмитрий Иванов` was stored as `??????? ??????` in the audit log and in a lease, where
    `unlock --holder` could no longer find it, and an --override-freeze reason lost its
    letters the same way. Every text column but those of ASCII is NVARCHAR there."""
    dialect = DIALECTS["mssql"]
    for table in store.metadata.sorted_tables:
        for column in table.columns:
            if not isinstance(column.type, sa.String):
                continue
            ddl = str(CreateColumn(column).compile(dialect=dialect))
            if column.name in ASCII_COLUMNS.get(table.name, ()):
                continue
            assert " NVARCHAR(" in ddl or " NTEXT" in ddl, f"{table.name}: {ddl}"  # NVARCHAR(max) from 2012


class _SqlServerConnection:
    """What store._writing sends a SQL Server connection (there is none here), and a failure
    it raises as the driver would."""

    dialect = mssql.dialect()

    def __init__(self, failure: Exception | None = None) -> None:
        self.sent: list[str] = []
        self.failure = failure

    def __enter__(self) -> _SqlServerConnection:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    @contextlib.contextmanager
    def begin(self) -> Iterator[None]:
        self.sent.append("BEGIN")
        yield
        self.sent.append("COMMIT")

    def exec_driver_sql(self, sql: str) -> None:
        self.sent.append(sql)


def _sql_server(failure: Exception | None = None) -> tuple[Any, _SqlServerConnection]:
    conn = _SqlServerConnection(failure)
    location = store.Location.resolve("mssql+pyodbc://osr:pw@sql01/portal?driver=FreeTDS", Path("."))
    return types.SimpleNamespace(_open=lambda: conn, location=location), conn


def test_a_short_write_on_sql_server_waits_no_longer_than_asked() -> None:
    """SQL Server waits for a lock forever by default (LOCK_TIMEOUT -1): a lease taken while
    another apply held the lock table waited past --lock-timeout and Ctrl-C. Its lock timeout
    is set for the short write and put back (it belongs to the pooled session)."""
    st, conn = _sql_server()
    with store._writing(st, 200):
        conn.sent.append("work")
    assert conn.sent == ["BEGIN", "SET LOCK_TIMEOUT 200", "work", "COMMIT", "SET LOCK_TIMEOUT -1"]


def test_sql_server_s_lock_timeout_is_a_busy_store() -> None:
    """Error 1222 ("Lock request time out period exceeded") is the store being busy, as
    PostgreSQL's lock_timeout and SQLite's "database is locked" are: the caller waits and
    retries within --lock-timeout. It was an error that ended the run."""
    st, conn = _sql_server()
    orig = Exception(
        "('HYT00', '[HYT00] [Microsoft][ODBC Driver 18 for SQL Server][SQL Server]Lock request time "
        "out period exceeded. (1222) (SQLExecDirectW)')"
    )
    with pytest.raises(store.Busy), store._writing(st, 200):
        raise exc.DBAPIError("INSERT INTO osr_locks ...", None, orig)
    assert conn.sent[-1] == "SET LOCK_TIMEOUT -1"


@pytest.mark.parametrize(
    ("url", "readonly", "expected"),
    [
        ("postgresql+psycopg://osr@db/portal", False, {"connect_timeout": 10}),
        (
            "postgresql+psycopg://osr@db/portal",
            True,
            {"options": "-c default_transaction_read_only=on", "connect_timeout": 10},
        ),
        ("postgresql+psycopg://osr@db/portal?connect_timeout=3", False, {}),  # the URL's own
    ],
)
def test_a_postgresql_store_that_does_not_answer_is_given_up_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, readonly: bool, expected: dict[str, Any]
) -> None:
    """libpq waits on a silent server as long as TCP does: the check of a commit whose reply was
    lost ("up to 30 seconds") took 181 s. PyMySQL gives up after 10 s by default."""
    given: dict[str, Any] = {}
    real = sa.create_engine

    def create_engine(target: Any, **kwargs: Any) -> Any:
        given.update(kwargs.get("connect_args", {}))
        return real(target, **kwargs)

    monkeypatch.setattr(store.sa, "create_engine", create_engine)
    engine = store._engine(store.Location.resolve(url, tmp_path), readonly=readonly)
    engine.dispose()
    assert given == expected
