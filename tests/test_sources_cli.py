"""`reconciler companies` and `plan/apply --check-sources` end to end, through the SQLite ODBC driver.

The SQLite3 ODBC driver (Debian libsqliteodbc) stands in for SQL Server; the test catalog entry
`osr-test-sqlite` has portable queries. Without the driver these skip, except under CI=true.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from reconciler import sources, stages
from reconciler.commands import companies as companies_cmd
from tests.conftest import IN_CI, Cli
from tests.inert import assert_text_inert
from tests.inprocess import InProcess, Run, run_fixture  # noqa: F401  (the `run` fixture)
from tests.test_cli import LIVE, TENANT, seeded

MS18 = "ODBC Driver 18 for SQL Server"

FIXTURES = Path(__file__).parent / "fixtures" / "sources"


def _odbc_sqlite_available() -> str | None:
    try:
        import pyodbc
    except ImportError as exc:
        return f"pyodbc cannot load unixODBC ({exc})"
    if "SQLite3" not in pyodbc.drivers():
        return "the SQLite3 ODBC driver (Debian libsqliteodbc) is not installed"
    return None


@pytest.fixture
def source_env(cli: Cli, tmp_path: Path) -> dict[str, str]:
    problem = _odbc_sqlite_available()
    if problem:
        if IN_CI:
            pytest.fail(f"CI=true: {problem}; .ci/run installs it", pytrace=False)
        pytest.skip(problem)
    system = tmp_path / "system.db"
    with sqlite3.connect(system) as conn:
        conn.executescript((FIXTURES / "sqlite.sql").read_text(encoding="utf-8"))
    env = {
        "RECONCILER_CATALOG": str(FIXTURES / "catalog-test.yaml"),
        "RECONCILER_ODBC_DRIVER": "SQLite3",
        "OSR_BOOKS": "books-pw",
    }
    cli.env.update(env)
    seeded(
        cli,
        TENANT
        + f"""\
  - name: Books
    integration: osr-test-sqlite
    server: localhost
    database: {system}
    authentication: sql
    login: reader
    password: {{env: OSR_BOOKS}}
    companies: [F0001, F0099]
""",
        LIVE,
    )
    return env


def test_companies_lists_and_searches(cli: Cli, source_env: dict[str, str]) -> None:
    listed = cli("companies", "--tenant", "acme/acme-norway", "--connection", "books")
    assert listed.code == 0, listed.err
    assert listed.out.splitlines()[0].split() == ["ID", "NAME"]
    assert "F0002  Bergen Bygg AS" in listed.out
    found = cli(
        "companies",
        "--tenant",
        "acme/acme-norway",
        "--connection",
        "Books",
        "--search",
        "ålesund",
        "--format",
        "json",
    )
    assert json.loads(found.out) == [{"id": "F0010", "name": "Ålesund Fisk AS"}]
    unknown = cli("companies", "--tenant", "acme/acme-norway", "--connection", "Nope")
    assert unknown.code == 1 and "no connection named 'Nope' (declared: Visma Oslo, Books)" in unknown.err


def test_companies_shows_the_server_s_text_inert(
    cli: Cli, source_env: dict[str, str], tmp_path: Path
) -> None:
    """A company's id or name from the server with a line break, a carriage return, an escape
    sequence or a bidirectional control forged rows and moved the cursor in the table."""
    hostile = [
        ("F0020", "Bergen\nF0666  Forged row"),
        ("F0021", "\x1b[2J\x1b]0;pwned\x07Clears the screen"),
        ("F0022", "Name\rF9999  overwritten"),
        ("F0023\nF0024", "an id with a line break"),
        ("F0025", "\u202eSA gninnur"),
    ]
    with sqlite3.connect(tmp_path / "system.db") as conn:
        conn.executemany("INSERT INTO osr_src_companies VALUES (?, ?)", hostile)
    listed = cli(
        "companies", "--tenant", "acme/acme-norway", "--connection", "Books", env={"FORCE_COLOR": "1"}
    )
    assert listed.code == 0, listed.err
    assert_text_inert(listed.out)
    rows = listed.out.splitlines()
    assert len(rows) == 1 + 4 + len(hostile)  # the header, the fixture's four, one a company
    assert any(r.startswith("F0020 ") and r.endswith(" Bergen\\nF0666  Forged row") for r in rows), rows
    assert "F0023\\nF0024  an id with a line break" in rows
    assert "9 companies on" in listed.err


def test_a_company_name_that_is_no_text_is_that_connection_s_problem(
    cli: Cli, source_env: dict[str, str], tmp_path: Path
) -> None:
    """A lone surrogate in a company's name (SQL Server's nvarchar holds one) made the driver's
    text fail to decode: plan --check-sources and companies ended as an internal error."""
    with sqlite3.connect(tmp_path / "system.db") as conn:
        conn.execute("INSERT INTO osr_src_companies VALUES ('F0030', CAST(X'41EDA08042' AS TEXT))")
    listed = cli("companies", "--tenant", "acme/acme-norway", "--connection", "Books")
    assert listed.code == 1 and "internal error" not in listed.err, listed.err
    assert "returned a value that is not valid text" in listed.err
    planned = cli("plan", "--check-sources", "--format", "json")
    assert planned.code == 0 and "internal error" not in planned.err, planned.err
    checks = {c["connection"]: c for c in json.loads(planned.out)["tenants"][0]["checks"]}
    assert not checks["Books"]["ok"] and "not valid text" in " ".join(checks["Books"]["problems"]), checks
    assert "Visma Oslo" in checks  # the other connection's check is there too


def test_check_sources_reports_per_connection_and_apply_refuses(cli: Cli, source_env: dict[str, str]) -> None:
    planned = cli("plan", "--check-sources", "--format", "json")
    assert planned.code == 0, planned.err
    checks = {c["connection"]: c for c in json.loads(planned.out)["tenants"][0]["checks"]}
    assert checks["Books"]["ok"] is False
    assert any("F0099" in line for line in checks["Books"]["problems"])
    # The SQL Server connection cannot be reached here (no Microsoft driver): a problem, not a hang.
    assert checks["Visma Oslo"]["ok"] is False
    assert checks["Visma Oslo"]["problems"][0].startswith("acme/acme-norway/Visma Oslo: ")
    text = cli("plan", "--check-sources")
    assert "✗ source acme/acme-norway/Books:" in text.out
    # The pull request's comment says the gate, as text and HTML do (it listed the problems only).
    comment = cli("plan", "--check-sources", "--format", "markdown").out
    assert (
        "### Source checks failed\n\n`apply` refuses this plan without `--skip-source-checks`.\n" in comment
    )
    refused = cli("apply", "--auto-approve", "--check-sources")
    assert refused.code == 1 and "source check failed" in refused.err
    assert "--skip-source-checks" in refused.err
    # A saved plan keeps its checks; apply refuses it the same way.
    assert cli("plan", "--check-sources", "--out", "plan.json").code == 0
    saved = cli("apply", "--plan", "plan.json", "--auto-approve")
    assert saved.code == 1 and "source check failed" in saved.err
    done = cli("apply", "--plan", "plan.json", "--auto-approve", "--skip-source-checks")
    assert done.code == 0, done.err


def test_companies_for_a_connection_not_declared_yet(
    cli: Cli, source_env: dict[str, str], tmp_path: Path
) -> None:
    system = str(tmp_path / "system.db")
    listed = cli(
        "companies",
        "--integration",
        "osr-test-sqlite",
        "--server",
        "localhost",
        "--database",
        system,
        "--authentication",
        "sql",
        "--login",
        "reader",
        "--password-env",
        "OSR_BOOKS",
        "--search",
        "bygg",
        "--format",
        "json",
    )
    assert listed.code == 0, listed.err
    assert json.loads(listed.out) == [{"id": "F0002", "name": "Bergen Bygg AS"}]
    missing = cli(
        "companies",
        "--integration",
        "osr-test-sqlite",
        "--server",
        "localhost",
        "--authentication",
        "sql",
        "--login",
        "reader",
        "--password-env",
        "OSR_NOPE",
    )
    assert missing.code == 1 and "--password-env OSR_NOPE: the variable is not set" in missing.err
    unknown = cli("companies", "--integration", "sap", "--server", "x")
    assert unknown.code == 1 and "--integration 'sap' is not in the catalog" in unknown.err


# The last two: a password typed where the variable's name goes, which the error must not repeat.
@pytest.mark.parametrize(
    "variable", ["HOME", "RECONCILER_STORE_KEY", "GITHUB_TOKEN", "CANARY-7f3a-ø-🔑", "OSR_pass word!"]
)
def test_companies_password_env_holds_to_the_tenant_file_prefix(run: InProcess, variable: str) -> None:
    """--password-env sends a value to the server on the command line: only tenant secrets."""
    secret = "not-for-that-server-31337"
    refused = run(
        "companies",
        "--integration",
        "visma-business",
        "--server",
        "evil.example",
        "--login",
        "sa",
        "--password-env",
        variable,
        env={variable: secret},
    )
    assert refused.code == 1
    assert refused.err == (
        "error: --password-env takes the name of an environment variable with the tenant files' "
        "prefix (e.g. OSR_NEW_SQL), never the password itself; what was given is not one (not "
        "shown: it may be the password)\n"
    )
    assert secret not in refused.out + refused.err
    assert variable not in refused.out + refused.err


def test_companies_flags_for_encryption_reach_the_connection_string(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OSR_NEW", "pw")
    ctx = stages.Context.make(None)
    common = {
        "tenant": None,
        "connection": None,
        "integration": "visma-business",
        "server": "sql01",
        "database": None,
        "authentication": None,
        "login": "osr",
        "password_env": "OSR_NEW",
    }
    default = sources.connection_string(companies_cmd.companies_spec(ctx, **common), driver=MS18)
    assert "Encrypt=yes" in default and "TrustServerCertificate" not in default
    relaxed = sources.connection_string(
        companies_cmd.companies_spec(ctx, **common, encrypt=False, trust_server_certificate=True), driver=MS18
    )
    assert "Encrypt=no;TrustServerCertificate=yes" in relaxed


def _companies(run: InProcess, *args: str, env: dict[str, str]) -> Run:
    """`companies` for a server not declared yet (visma-business on 127.0.0.1,1, where nothing
    answers), with args after --server."""
    return run("companies", "--integration", "visma-business", "--server", "127.0.0.1,1", *args, env=env)


def test_companies_password_env_that_is_not_utf8_is_an_error(run: InProcess) -> None:
    """Bytes that are not UTF-8 in the variable reached pyodbc, which raised UnicodeEncodeError:
    an internal error. Read as a tenant file's {env:} reference is, it is a clear one."""
    refused = _companies(
        run, "--login", "sa", "--password-env", "OSR_NEW_SQL", env={"OSR_NEW_SQL": "pw\udcff"}
    )
    assert refused.code == 1
    assert (
        refused.err
        == "error: environment variable OSR_NEW_SQL is not valid UTF-8; set it again as UTF-8 text\n"
    )


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--server", "a" * 40_000, "--server is 40,000 characters; at most 200, as in a tenant file"),
        ("--database", "d" * 40_000, "--database is 40,000 characters; at most 128, as in a tenant file"),
        ("--login", "l" * 40_000, "--login is 40,000 characters; at most 128, as in a tenant file"),
        ("--server", "sql01;Driver=x", "--server: write the server as host"),
        ("--database", "db\nx", "--database: only printable characters"),
    ],
)
def test_companies_flags_are_held_to_a_tenant_files_rules(
    run: InProcess, flag: str, value: str, message: str
) -> None:
    """A 40,000-character --server, --database or --login crashed the process in psqlODBC
    (exit 139, no word): the flags take what a tenant file takes, and say what is wrong."""
    args = {"--server": "127.0.0.1,1", "--database": "test", "--login": "sa", flag: value}
    refused = run(
        "companies",
        "--integration",
        "visma-business",
        *(part for pair in args.items() for part in pair),
        "--password-env",
        "OSR_NEW_SQL",
        env={"OSR_NEW_SQL": "pw"},
    )
    assert refused.code == 1
    assert refused.err.startswith(f"error: {message}"), refused.err
    assert value not in refused.err


def test_a_driver_the_tool_cannot_speak_to_is_named_so_installed_or_not(run: InProcess) -> None:
    """docs/sources.md: any other name is refused naming the supported ones; an uninstalled
    one was refused as "not installed", as if installing it would help."""
    pytest.importorskip("pyodbc", exc_type=ImportError)
    refused = _companies(run, env={"RECONCILER_ODBC_DRIVER": "Oracle 19"})
    assert refused.code == 1
    assert "ODBC driver 'Oracle 19' is not one this tool writes connection strings for" in refused.err
    assert "not installed" not in refused.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--tenant", "acme/acme-norway", "--connection", "Books", "--server", "127.0.0.1,1"],
            "error: --server with --tenant and --connection: the declared connection's own settings "
            "are used; leave out that flag",
        ),
        (
            ["--tenant", "acme/acme-norway", "--connection", "Books", "--integration", "x", "--login", "sa"],
            "error: --integration, --login with --tenant and --connection",
        ),
        (
            [
                *("--integration", "visma-business", "--server", "127.0.0.1,1"),
                *("--authentication", "windows", "--login", "sa", "--password-env", "OSR_NEW_SQL"),
            ],
            "error: --authentication windows takes no --login or --password-env",
        ),
    ],
)
def test_companies_flags_that_would_be_ignored_are_refused(
    run: InProcess, args: list[str], message: str
) -> None:
    """A --server beside --tenant and --connection was ignored (the declared connection's was
    asked), and a --login with --authentication windows too (a tenant file refuses it): the
    user believed another server or account was asked than was."""
    refused = run("companies", *args, env={"OSR_NEW_SQL": "pw"})
    assert refused.code == 1
    assert refused.err.startswith(message), refused.err
    assert refused.err.endswith("\n") and refused.err.count("\n") == 1
