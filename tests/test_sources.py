"""reconciler.sources: connection strings as literal tables; real ODBC drivers for the rest.

PostgreSQL, MariaDB and SQLite stand in for SQL Server (tests/fixtures/sources). A backend whose
driver or server is missing is skipped with the reason, except under CI=true, where it fails.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NoReturn

import pytest

from reconciler import errors, sources
from reconciler.sources import Company, ServerAddress, SourceSpec
from reconciler.spec import Authentication

FIXTURES = Path(__file__).parent / "fixtures" / "sources"
CANARY = "CANARY-pw-7f3e9"
IN_CI = os.environ.get("CI", "").lower() == "true"
ALL_COMPANIES = [
    Company("F0001", "Oslo Regnskap AS"),
    Company("F0002", "Bergen Bygg AS"),
    Company("F0003", "Trondheim Transport AS"),
    Company("F0010", "Ålesund Fisk AS"),
]


@pytest.fixture(autouse=True)
def _test_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECONCILER_CATALOG", str(FIXTURES / "catalog-test.yaml"))


def spec(**changes: Any) -> SourceSpec:
    base = SourceSpec(
        label="acme/acme-norway/Visma Oslo",
        integration="visma-business",
        server="SQL01\\VISMA",
        database="vbsys",
        authentication=Authentication.SQL,
        login="osr_reader",
        password="s3cret",
    )
    return replace(base, **changes)


def assert_no_canary(*texts: str) -> None:
    for text in texts:
        assert CANARY not in text


# --- parse_server -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("SQL01", ServerAddress("SQL01")),
        ("SQL01\\VISMA", ServerAddress("SQL01", "VISMA")),
        ("sql01.corp.example,1433", ServerAddress("sql01.corp.example", None, 1433)),
        ("tcp:SQL01,14330", ServerAddress("SQL01", None, 14330)),
        ("10.0.0.5\\ERP,1500", ServerAddress("10.0.0.5", "ERP", 1500)),
        ("SQL01\\VISMA$2", ServerAddress("SQL01", "VISMA$2")),
        (".\\SQLEXPRESS", ServerAddress("localhost", "SQLEXPRESS")),
        ("(local),1433", ServerAddress("localhost", None, 1433)),
        (" 10.0.0.5 ", ServerAddress("10.0.0.5")),
        ("2001:db8::5", ServerAddress("2001:db8::5")),
        ("[2001:db8::5],1433", ServerAddress("2001:db8::5", None, 1433)),
        ("[::1]", ServerAddress("::1")),
        ("[::1]\\SQLEXPRESS", ServerAddress("::1", "SQLEXPRESS")),
    ],
)
def test_parse_server_forms(text: str, expected: ServerAddress) -> None:
    assert sources.parse_server(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("SQL01:1433", "port after a comma (host,1433), not a colon"),
        ("SQL01,port", "port after ',' must be a number"),
        ("SQL01,0", "port after ',' must be a number"),
        ("SQL01\\", "host\\INSTANCE"),
        ("SQL01\\INSTANCE_NAME_TOO_LONG", "host\\INSTANCE"),
        ("[2001:db8::5", "needs a closing ']'"),
        ("[sql01]", "is not an IPv6 address"),
        ("[::1]x", "only \\instance or ,port may follow"),
        ("sql 01", "expected host"),
        ("-sql01", "expected host"),
        ("", "expected host"),
    ],
)
def test_parse_server_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        sources.parse_server(text)


# --- connection strings -------------------------------------------------------------------

MS18 = "Driver={ODBC Driver 18 for SQL Server};"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {},
            MS18 + "Server=tcp:SQL01\\VISMA;Database=vbsys;Encrypt=yes;"
            "UID={osr_reader};PWD={s3cret};APP=osr-reconciler;",
        ),
        (
            {"server": "sql01.corp.example,1433", "database": "DYNAMICS"},
            MS18 + "Server=tcp:sql01.corp.example,1433;Database=DYNAMICS;Encrypt=yes;"
            "UID={osr_reader};PWD={s3cret};APP=osr-reconciler;",
        ),
        (
            {"server": "[2001:db8::5],1433"},
            MS18 + "Server=tcp:2001:db8::5,1433;Database=vbsys;Encrypt=yes;"
            "UID={osr_reader};PWD={s3cret};APP=osr-reconciler;",
        ),
        (
            {"server": "10.0.0.5", "trust_server_certificate": True},
            MS18 + "Server=tcp:10.0.0.5;Database=vbsys;Encrypt=yes;TrustServerCertificate=yes;"
            "UID={osr_reader};PWD={s3cret};APP=osr-reconciler;",
        ),
        (
            {"encrypt": False},
            MS18 + "Server=tcp:SQL01\\VISMA;Database=vbsys;Encrypt=no;"
            "UID={osr_reader};PWD={s3cret};APP=osr-reconciler;",
        ),
        (
            {"authentication": "windows", "login": None, "password": None},
            MS18 + "Server=tcp:SQL01\\VISMA;Database=vbsys;Encrypt=yes;"
            "Trusted_Connection=yes;APP=osr-reconciler;",
        ),
        (
            {"password": "a;b}c{d=e", "login": "odd}user"},
            MS18 + "Server=tcp:SQL01\\VISMA;Database=vbsys;Encrypt=yes;"
            "UID={odd}}user};PWD={a;b}}c{d=e};APP=osr-reconciler;",
        ),
        (
            {"password": "", "database": "SBO-COMMON"},
            MS18 + "Server=tcp:SQL01\\VISMA;Database=SBO-COMMON;Encrypt=yes;"
            "UID={osr_reader};PWD={};APP=osr-reconciler;",
        ),
        (
            {"database": "Company; Ltd"},
            MS18 + "Server=tcp:SQL01\\VISMA;Database={Company; Ltd};Encrypt=yes;"
            "UID={osr_reader};PWD={s3cret};APP=osr-reconciler;",
        ),
    ],
)
def test_connection_string_sql_server(changes: dict[str, Any], expected: str) -> None:
    assert sources.connection_string(spec(**changes), driver="ODBC Driver 18 for SQL Server") == (expected)


def test_connection_string_driver_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(sources.DRIVER_ENV, "ODBC Driver 17 for SQL Server")
    assert sources.connection_string(spec(server="SQL01")) == (
        "Driver={ODBC Driver 17 for SQL Server};Server=tcp:SQL01;Database=vbsys;Encrypt=yes;"
        "UID={osr_reader};PWD={s3cret};APP=osr-reconciler;"
    )
    monkeypatch.delenv(sources.DRIVER_ENV)
    assert sources.connection_string(spec()).startswith(MS18)


FREETDS_TAIL = "TDS_Version=7.4;ClientCharset=UTF-8;"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {},
            "Driver={FreeTDS};Server=SQL01\\VISMA;Database=vbsys;"
            + FREETDS_TAIL
            + "Encryption=require;UID={osr_reader};PWD={s3cret};APP=osr-reconciler;",
        ),
        (
            {"server": "sql01,1500", "encrypt": False},
            "Driver={FreeTDS};Server=sql01;Port=1500;Database=vbsys;"
            + FREETDS_TAIL
            + "Encryption=request;UID={osr_reader};PWD={s3cret};APP=osr-reconciler;",
        ),
        (
            {"server": "[2001:db8::5],1433"},
            "Driver={FreeTDS};Server=2001:db8::5;Port=1433;Database=vbsys;"
            + FREETDS_TAIL
            + "Encryption=require;UID={osr_reader};PWD={s3cret};APP=osr-reconciler;",
        ),
        (
            {"authentication": "windows", "login": None, "password": None},
            "Driver={FreeTDS};Server=SQL01\\VISMA;Database=vbsys;"
            + FREETDS_TAIL
            + "Encryption=require;Trusted_Connection=yes;APP=osr-reconciler;",
        ),
        (
            {"password": "p;w{d="},
            "Driver={FreeTDS};Server=SQL01\\VISMA;Database=vbsys;"
            + FREETDS_TAIL
            + "Encryption=require;UID={osr_reader};PWD={p;w{d=};APP=osr-reconciler;",
        ),
    ],
)
def test_connection_string_freetds(changes: dict[str, Any], expected: str) -> None:
    assert sources.connection_string(spec(**changes), driver="FreeTDS") == expected


@pytest.mark.parametrize(
    ("driver", "changes", "expected"),
    [
        (
            "PostgreSQL Unicode",
            {"server": "127.0.0.1,5432", "database": "test", "encrypt": False},
            "Driver={PostgreSQL Unicode};Server=127.0.0.1;Port=5432;Database=test;"
            "UID=osr_reader;PWD={s3cret};SSLmode=prefer;"
            "pqopt={options=-cstatement_timeout=15000};",
        ),
        (
            "PostgreSQL Unicode",
            {"server": "db", "database": "test"},
            "Driver={PostgreSQL Unicode};Server=db;Database=test;"
            "UID=osr_reader;PWD={s3cret};SSLmode=verify-full;"
            "pqopt={options=-cstatement_timeout=15000};",
        ),
        (
            "MariaDB Unicode",
            {"server": "127.0.0.1,3306", "database": "osr_src_sys", "encrypt": False},
            "Driver={MariaDB Unicode};Server=127.0.0.1;Port=3306;Database=osr_src_sys;"
            "UID={osr_reader};PWD={s3cret};CONN_TIMEOUT=15;READ_TIMEOUT=15;",
        ),
        (
            "MariaDB Unicode",
            {"server": "db", "database": "sys", "trust_server_certificate": True},
            "Driver={MariaDB Unicode};Server=db;Database=sys;"
            "UID={osr_reader};PWD={s3cret};CONN_TIMEOUT=15;READ_TIMEOUT=15;FORCETLS=1;",
        ),
        (
            "SQLite3",
            {"server": "localhost", "database": "/tmp/sys tem.db"},
            "Driver={SQLite3};Database=/tmp/sys tem.db;NoCreat=1;Timeout=1000;",
        ),
    ],
)
def test_connection_string_test_drivers(driver: str, changes: dict[str, Any], expected: str) -> None:
    assert sources.connection_string(spec(**changes), driver=driver) == expected


@pytest.mark.parametrize(
    ("driver", "changes", "message"),
    [
        ("Oracle 19", {}, "is not one this tool writes connection strings for"),
        ("PostgreSQL Unicode", {"authentication": "windows"}, "Windows authentication needs"),
        ("MariaDB Unicode", {}, "named instances (SQL01\\VISMA) are a SQL Server feature"),
        ("FreeTDS", {"server": "SQL01:1433"}, "not a colon"),
        ("FreeTDS", {"authentication": "kerberos"}, "neither 'sql' nor 'windows'"),
        ("FreeTDS", {"password": None}, "needs a login and a resolved password"),
        # FreeTDS ends a braced value at its first '};' and does not undo '}}' (Microsoft's
        # drivers do): refused, not sent as another password or with keywords added.
        ("FreeTDS", {"password": CANARY + "};Database={x"}, "the password holds a '}', which the FreeTDS"),
        ("FreeTDS", {"login": "osr}"}, "the login holds a '}', which the FreeTDS driver cannot"),
        ("FreeTDS", {"database": "a};UID={x"}, "the database holds a '}', which the FreeTDS driver"),
        (
            "FreeTDS",
            {"database": "a}b", "authentication": "windows", "login": None, "password": None},
            "the database holds a '}'",
        ),
        ("PostgreSQL Unicode", {"server": "db", "login": "a;b"}, "the login 'a;b' cannot be"),
        ("PostgreSQL Unicode", {"server": "db", "database": "{x}"}, "the database '{x}' cannot"),
        ("SQLite3", {"database": "a;b.db"}, "the database file 'a;b.db' cannot be passed"),
    ],
)
def test_connection_string_refuses(driver: str, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(errors.SourceError) as caught:
        sources.connection_string(spec(**{"password": CANARY, **changes}), driver=driver)
    assert str(caught.value).startswith("acme/acme-norway/Visma Oslo: ")
    assert message in str(caught.value)
    assert_no_canary(str(caught.value))


def test_spec_repr_hides_password() -> None:
    assert_no_canary(repr(spec(password=CANARY)), str(spec(password=CANARY)))


@pytest.mark.parametrize(
    ("driver", "family"),
    [
        ("ODBC Driver 18 for SQL Server", sources.Family.MSSQL),
        ("ODBC Driver 17 for SQL Server", sources.Family.MSSQL),
        ("/opt/microsoft/msodbcsql18/lib64/libmsodbcsql-18.3.so.2.1", sources.Family.MSSQL),
        ("FreeTDS", sources.Family.FREETDS),
        ("/usr/lib/x86_64-linux-gnu/odbc/libtdsodbc.so", sources.Family.FREETDS),
        ("PostgreSQL Unicode", sources.Family.POSTGRESQL),
        ("MariaDB Unicode", sources.Family.MARIADB),
        ("SQLite3", sources.Family.SQLITE),
        ("Oracle 19", None),
    ],
)
def test_driver_family(driver: str, family: sources.Family | None) -> None:
    assert sources.driver_family(driver) is family


# --- real ODBC drivers --------------------------------------------------------------------


def unavailable(reason: str) -> NoReturn:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the source tests must run, not skip)")
    pytest.skip(reason)


@dataclass(frozen=True)
class Backend:
    name: str
    driver: str
    integration: str
    server: str
    database: str
    admin: tuple[str, str] | None  # (login, password) of a login with every right
    reader: tuple[str, str] | None  # (login, password) of a read-only login

    def spec(self, *, as_reader: bool = False, **changes: Any) -> SourceSpec:
        login, password = (self.reader if as_reader else self.admin) or (None, None)
        base = SourceSpec(
            label=f"acme/{self.name}/Fixture",
            integration=self.integration,
            server=self.server,
            database=self.database,
            authentication=Authentication.SQL,
            login=login,
            password=password,
            encrypt=False,
        )
        return replace(base, **changes)


def _fixture_sql(name: str) -> list[str]:
    text = (FIXTURES / f"{name}.sql").read_text(encoding="utf-8")
    statements = []
    for chunk in re.split(r";\s*$", text, flags=re.MULTILINE):
        lines = [line for line in chunk.splitlines() if not line.strip().startswith("--")]
        if "\n".join(lines).strip():
            statements.append("\n".join(lines))
    return statements


def _driver_and_port(driver: str, port: int | None) -> Any:
    try:
        import pyodbc
    except ImportError as exc:
        unavailable(f"pyodbc cannot be loaded: {exc}")
    if driver not in pyodbc.drivers():
        unavailable(f"ODBC driver {driver!r} is not installed (installed: {pyodbc.drivers()})")
    if port is not None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        except OSError as exc:
            unavailable(f"no server at 127.0.0.1:{port}: {exc}")
    return pyodbc


def _run_fixture(backend: Backend, ignore: frozenset[str], lock: str, unlock: str) -> None:
    pyodbc = _driver_and_port(backend.driver, int(backend.server.rpartition(",")[2]))
    # Database test exists on both servers; the system database may not exist yet.
    text = sources.connection_string(backend.spec(database="test"), driver=backend.driver)
    try:
        conn = pyodbc.connect(text, timeout=5, autocommit=True)
    except pyodbc.Error as exc:
        unavailable(f"cannot log in to the {backend.name} fixture server: {exc}")
    with conn:
        cursor = conn.cursor()
        cursor.execute(lock)  # two test runs at once must not interleave the setup
        try:
            for statement in _fixture_sql(backend.name):
                try:
                    cursor.execute(statement)
                except pyodbc.Error as exc:
                    if exc.args[0] not in ignore:
                        raise
        finally:
            cursor.execute(unlock)


@pytest.fixture(scope="session")
def sqlite_backend(tmp_path_factory: pytest.TempPathFactory) -> Backend:
    pyodbc = _driver_and_port("SQLite3", None)
    path = tmp_path_factory.mktemp("sources") / "system.db"
    path.touch()
    backend = Backend("sqlite", "SQLite3", "osr-test-sqlite", "localhost", str(path), None, None)
    with pyodbc.connect(sources.connection_string(backend.spec(), driver="SQLite3")) as conn:
        for statement in _fixture_sql("sqlite"):
            conn.execute(statement)
        conn.commit()
    return backend


@pytest.fixture(scope="session")
def postgresql_backend() -> Backend:
    backend = Backend(
        "postgresql",
        "PostgreSQL Unicode",
        "osr-test-postgresql",
        "127.0.0.1,5432",
        "test",
        ("postgres", ""),
        ("osr_src_reader", "trust-auth-ignores-this"),
    )
    _run_fixture(
        backend,
        frozenset({"42P04", "42710"}),
        "SELECT pg_advisory_lock(7246031)",
        "SELECT pg_advisory_unlock(7246031)",
    )
    return backend


@pytest.fixture(scope="session")
def mariadb_backend() -> Backend:
    backend = Backend(
        "mariadb",
        "MariaDB Unicode",
        "osr-test-mariadb",
        "127.0.0.1,3306",
        "osr_src_sys",
        ("root", ""),
        ("osr_src_reader", "osr-src-reader-pw"),
    )
    _run_fixture(
        backend,
        frozenset(),
        "SELECT GET_LOCK('osr_src_fixture', 30)",
        "SELECT RELEASE_LOCK('osr_src_fixture')",
    )
    return backend


def _use(request: pytest.FixtureRequest, name: str) -> Iterator[Backend]:
    backend: Backend = request.getfixturevalue(f"{name}_backend")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(sources.DRIVER_ENV, backend.driver)
        yield backend


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    yield from _use(request, request.param)


@pytest.fixture(params=["postgresql", "mariadb"])
def server_backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """A backend with logins and grants (SQLite has neither)."""
    yield from _use(request, request.param)


@pytest.fixture
def sqlite(request: pytest.FixtureRequest) -> Iterator[Backend]:
    yield from _use(request, "sqlite")


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A TCP port that completes the handshake and then never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)  # never accepted: the kernel queues the connections
    yield int(listener.getsockname()[1])
    listener.close()


# list_companies


def test_list_companies_all(backend: Backend) -> None:
    assert sources.list_companies(backend.spec()) == ALL_COMPANIES


@pytest.mark.parametrize(
    ("search", "ids"),
    [
        ("bergen", ["F0002"]),
        ("BERGEN bygg", ["F0002"]),
        ("f001", ["F0010"]),
        ("ålesund", ["F0010"]),
        ("ÅLESUND", ["F0010"]),
        ("  as ", ["F0001", "F0002", "F0003", "F0010"]),
        ("", ["F0001", "F0002", "F0003", "F0010"]),
        ("nowhere", []),
    ],
)
def test_list_companies_search(backend: Backend, search: str, ids: list[str]) -> None:
    assert [c.id for c in sources.list_companies(backend.spec(), search=search)] == ids


def test_list_companies_login_failure_raises_without_password(server_backend: Backend) -> None:
    bad = server_backend.spec(login="osr_src_nobody", password=CANARY)
    with pytest.raises(errors.SourceError) as caught:
        sources.list_companies(bad)
    error = caught.value
    assert str(error).startswith(f"{bad.label}: login osr_src_nobody was refused by ")
    assert error.__cause__ is None and error.__context__ is None
    assert_no_canary(str(error), repr(error), "".join(traceback.format_exception(error)))


def test_list_companies_unknown_integration(backend: Backend) -> None:
    with pytest.raises(errors.SourceError, match="integration 'no-such-erp' is not in the catalog"):
        sources.list_companies(backend.spec(integration="no-such-erp"))


def test_list_companies_abandons_a_server_that_ignores_timeouts(sqlite: Backend) -> None:
    started = time.monotonic()
    with pytest.raises(errors.SourceError, match="within 1 s, so the check was abandoned"):
        sources.list_companies(sqlite.spec(integration="osr-test-sqlite-slow"), timeout=1)
    assert time.monotonic() - started < 1 + sources.GRACE_SECONDS + 1


# check


def test_check_passes(backend: Backend) -> None:
    result = sources.check(backend.spec(), companies=["F0001", "F0010"], write_back=True)
    assert result == sources.CheckResult("acme/" + backend.name + "/Fixture", ())
    assert result.ok


def test_check_missing_company(backend: Backend) -> None:
    result = sources.check(backend.spec(), companies=["F0001", "F0099"], write_back=False)
    assert not result.ok
    assert result.problems == (
        f"acme/{backend.name}/Fixture: company F0099 is not on {backend.server} (the server "
        "lists F0001, F0002, F0003, F0010): remove it from the tenant file, or check that "
        f"{backend.database} is the right system database",
    )


def test_check_company_spelled_in_other_case(backend: Backend) -> None:
    result = sources.check(backend.spec(), companies=["f0002"], write_back=False)
    assert result.problems == (
        f"acme/{backend.name}/Fixture: company f0002 is named F0002 on {backend.server}: "
        "write it as F0002 in the tenant file",
    )


def test_check_reader_reads_but_cannot_write(server_backend: Backend) -> None:
    reader = server_backend.spec(as_reader=True)
    assert sources.check(reader, companies=["F0001", "F0002"], write_back=False).ok
    result = sources.check(reader, companies=["F0001", "F0002"], write_back=True)
    assert result.problems == tuple(
        f"{reader.label}: login osr_src_reader has no write rights on database {db}, which "
        "write_back: true needs: grant it write access (on SQL Server: db_datawriter) or set "
        "write_back: false"
        for db in ("osr_src_F0001", "osr_src_F0002")
    )


def test_check_reader_lacks_read_on_one_company(server_backend: Backend) -> None:
    reader = server_backend.spec(as_reader=True)
    result = sources.check(reader, companies=["F0001", "F0003"], write_back=False)
    (problem,) = result.problems
    assert problem.startswith(f"{reader.label}: ")
    # PostgreSQL answers "no CONNECT"; MariaDB hides a schema the login has no grant on.
    assert problem in (
        f"{reader.label}: login osr_src_reader has no read rights on database osr_src_F0003: "
        "grant it read access (on SQL Server: a user in osr_src_F0003 with db_datareader)",
        f"{reader.label}: database osr_src_F0003 does not exist on {reader.server} or login "
        "osr_src_reader cannot see it: check the name and that the login is a user in it",
    )


def test_check_login_failure_names_connection_not_password(server_backend: Backend) -> None:
    for bad in (
        server_backend.spec(as_reader=True, password=CANARY),
        server_backend.spec(login="osr_src_nobody", password=CANARY),
        # A password pasted into the login field too: the driver echoes the login.
        server_backend.spec(login=CANARY, password=CANARY),
    ):
        result = sources.check(bad, companies=["F0001"], write_back=False)
        if server_backend.name == "postgresql" and bad.login == "osr_src_reader":
            assert result.ok  # the fixture server trusts every password
            continue
        (problem,) = result.problems
        assert problem.startswith(f"{bad.label}: login ")
        assert " was refused by 127.0.0.1," in problem
        assert "check the login name and that its password secret is current" in problem
        assert_no_canary(problem, repr(result))


def test_check_unknown_database(server_backend: Backend) -> None:
    result = sources.check(
        server_backend.spec(database="osr_src_nope"), companies=["F0001"], write_back=False
    )
    (problem,) = result.problems
    assert problem.startswith(
        f"{result.label}: database osr_src_nope cannot be opened on {server_backend.server} by "
        f"login {server_backend.admin[0] if server_backend.admin else ''}: check the system "
        "database name and that the login is a user in it (driver: "
    )


def test_check_unreachable_server(server_backend: Backend) -> None:
    started = time.monotonic()
    result = sources.check(server_backend.spec(server="127.0.0.1,1"), companies=["F0001"], write_back=False)
    assert time.monotonic() - started < 5
    (problem,) = result.problems
    assert problem.startswith(
        f"{result.label}: cannot connect to 127.0.0.1,1 (database {server_backend.database}): "
        "check the server name, instance or port"
    )


def test_check_many_silent_server_does_not_stall_the_others(
    server_backend: Backend, silent_port: int
) -> None:
    good = server_backend.spec()
    silent = server_backend.spec(label="acme/silent/Fixture", server=f"127.0.0.1,{silent_port}")
    refused = server_backend.spec(label="acme/refused/Fixture", server="127.0.0.1,1")
    requests = [
        (silent, ["F0001"], False),
        (good, ["F0001"], True),
        (refused, ["F0001"], False),
        (good, ["F0099"], False),
    ]
    started = time.monotonic()
    results = sources.check_many(requests, max_workers=4, timeout=2)
    assert time.monotonic() - started < 2 + sources.GRACE_SECONDS + 1.5
    assert [r.label for r in results] == [silent.label, good.label, refused.label, good.label]
    assert [r.ok for r in results] == [False, True, False, False]
    (silent_problem,) = results[0].problems
    assert silent_problem.startswith(f"{silent.label}: 127.0.0.1,{silent_port} did not answer ")
    assert "company F0099 is not on" in results[3].problems[0]


def test_check_many_abandons_a_check_that_ignores_timeouts(sqlite: Backend) -> None:
    slow = sqlite.spec(label="acme/slow/Fixture", integration="osr-test-sqlite-slow")
    requests = [(slow, [], False), (sqlite.spec(), ["F0001"], True)]
    started = time.monotonic()
    results = sources.check_many(requests, max_workers=1, timeout=1)
    # One worker: the good check starts only once the slow one is abandoned, and still passes.
    assert time.monotonic() - started < 1 + sources.GRACE_SECONDS + 1.5
    assert results == [
        sources.CheckResult(
            slow.label,
            (
                f"{slow.label}: no result from localhost within 1 s, so the check was abandoned: "
                "check the server name, instance or port and firewalls; raise the timeout for a "
                "slow server",
            ),
        ),
        sources.CheckResult(sqlite.spec().label, ()),
    ]


def test_check_many_empty_and_bad_worker_count() -> None:
    assert sources.check_many([], timeout=1) == []
    with pytest.raises(ValueError, match="max_workers"):
        sources.check_many([], max_workers=0)


def test_check_driver_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    _driver_and_port("SQLite3", None)  # pyodbc and unixODBC are there
    monkeypatch.setenv(sources.DRIVER_ENV, "ODBC Driver 99 for SQL Server")
    result = sources.check(spec(password=CANARY), companies=["F0001"], write_back=False)
    (problem,) = result.problems
    assert problem.startswith(
        "acme/acme-norway/Visma Oslo: ODBC driver 'ODBC Driver 99 for SQL Server' is not "
        "installed (installed: "
    )
    assert problem.endswith("): install it or set RECONCILER_ODBC_DRIVER")
    assert_no_canary(problem)


def test_check_unknown_integration() -> None:
    result = sources.check(spec(integration="no-such-erp"), companies=[], write_back=False)
    (problem,) = result.problems
    assert problem.startswith(
        "acme/acme-norway/Visma Oslo: integration 'no-such-erp' is not in the catalog (known: "
    )


def test_module_works_without_pyodbc() -> None:
    """A machine without unixODBC imports the module; a check says what to install."""
    code = (
        "import sys; sys.modules['pyodbc'] = None\n"
        "from reconciler import sources\n"
        "s = sources.SourceSpec('a/b/c', 'visma-business', 'SQL01', 'vbsys', 'sql', 'u', 'pw1')\n"
        "print(sources.connection_string(s, driver='FreeTDS'))\n"
        "print(sources.check(s, companies=['F0001'], write_back=False).problems[0])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.splitlines()
    assert first.startswith("Driver={FreeTDS};Server=SQL01;")
    assert second == (
        "a/b/c: pyodbc, the driver for accounting servers and SQL Server stores, is "
        "not installed; install it with pip install 'osr-reconciler[sources]'"
    )


def test_a_company_id_the_server_keeps_decomposed_is_found() -> None:
    """The tool reads ids composed (NFC); a server may keep `Å0010` decomposed (A and a
    combining ring): one id, found under the server's spelling, not "not on the server"."""
    spec_ = sources.SourceSpec(
        label="acme/t/Fisk",
        integration="osr-test-sqlite",
        server="localhost",
        database="db",
        authentication=Authentication.WINDOWS,
        login=None,
        password=None,
    )
    listed = [sources.Company("A\u030a0010", "Ålesund Fisk AS"), sources.Company("F0001", "Oslo")]
    problems, present = sources._company_problems(spec_, ["\u00c50010", "F0001"], listed)
    assert (problems, present) == ([], ["A\u030a0010", "F0001"])
    problems, present = sources._company_problems(spec_, ["\u00e50010"], listed)  # case differs
    assert present == [] and problems == [
        "company \u00e50010 is named A\u030a0010 on localhost: write it as A\u030a0010 in the tenant file"
    ]
