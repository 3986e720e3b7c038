"""Shared fixtures: the store matrix (SQLite, PostgreSQL, MariaDB), a CLI runner, the canary.

Store tests run on every database in RECONCILER_TEST_DATABASES (default: all three). A server
that cannot be reached is skipped with the reason on a laptop, and fails the run under CI=true.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest
import sqlalchemy as sa

from reconciler import store

# A password that must never appear in any output, file, log or exception text.
CANARY = "CANARY-pw-7f3e9"
CANARY_ENV = "OSR_CANARY"
TEST_KEY = "kGdQmJ0sJ3V0fTq1aO3iUzlzGkB4p7Vh2m3xq9l3W8E="
RECONCILER = str(Path(sys.executable).with_name("reconciler"))
IN_CI = os.environ.get("CI", "").lower() == "true"
SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"
PLAN_SCHEMA = json.loads((SCHEMAS / "plan.schema.json").read_text(encoding="utf-8"))
DRIFT_SCHEMA = json.loads((SCHEMAS / "drift.schema.json").read_text(encoding="utf-8"))

SERVER_URLS = {
    "postgresql": os.environ.get("RECONCILER_TEST_POSTGRESQL_URL",
                                 "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    "mariadb": os.environ.get("RECONCILER_TEST_MARIADB_URL",
                              "mysql+pymysql://root@127.0.0.1:3306/test?charset=utf8mb4"),
}
DATABASES = [d.strip() for d in os.environ.get(
    "RECONCILER_TEST_DATABASES", "sqlite,postgresql,mariadb").split(",") if d.strip()]
_reachable: dict[str, str | None] = {}


def _server_problem(name: str) -> str | None:
    """None when the server answers, else why not (cached per session)."""
    if name not in _reachable:
        engine = sa.create_engine(SERVER_URLS[name], poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            _reachable[name] = None
        except Exception as exc:  # any driver error means "not reachable"
            _reachable[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
        finally:
            engine.dispose()
    return _reachable[name]


def require_server(name: str) -> None:
    problem = _server_problem(name)
    if problem is None:
        return
    message = f"{name} at {SERVER_URLS[name]} is not reachable ({problem})"
    if IN_CI:
        pytest.fail(f"CI=true: {message}; the store matrix must run in CI", pytrace=False)
    pytest.skip(f"{message}; set RECONCILER_TEST_DATABASES=sqlite to run SQLite only")


_databases: dict[str, str] = {}


def private_database(name: str) -> str:
    """A database of this test process's own on the server, so that parallel runs never meet."""
    if name not in _databases:
        base = sa.make_url(SERVER_URLS[name])
        db = f"osr_test_{os.getpid()}"
        engine = sa.create_engine(base, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                quoted = f'"{db}"' if name == "postgresql" else f"`{db}`"
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS {quoted}"))
                conn.execute(sa.text(f"CREATE DATABASE {quoted}"))
        finally:
            engine.dispose()
        _databases[name] = base.set(database=db).render_as_string(hide_password=False)
    return _databases[name]


def drop_private_databases() -> None:
    for name, url in _databases.items():
        base = sa.make_url(SERVER_URLS[name])
        db = sa.make_url(url).database
        engine = sa.create_engine(base, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                if name == "postgresql":
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
                else:
                    conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{db}`"))
        except Exception:  # cleanup only: a leftover database is harmless
            pass
        finally:
            engine.dispose()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    drop_private_databases()


def reset_server(url: str) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        store.metadata.drop_all(engine)
    finally:
        engine.dispose()


@pytest.fixture(params=DATABASES)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty (uninitialised) store on each database of the matrix."""
    name = request.param
    if name == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    require_server(name)
    url = private_database(name)
    reset_server(url)
    yield url
    assert_no_canary_in_server(url)


def assert_no_canary_in_server(url: str) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            for table in store.metadata.sorted_tables:
                if not sa.inspect(conn).has_table(table.name):
                    continue
                for row in conn.execute(sa.select(table)):
                    assert CANARY not in repr(tuple(row)), f"canary stored in clear in {table.name}"
    finally:
        engine.dispose()


def assert_no_canary_in_tree(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink() and ".secrets" not in path.parts:
            assert CANARY.encode() not in path.read_bytes(), f"canary found in {path}"


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def both(self) -> str:
        return self.out + self.err


class Cli:
    """Runs the installed `reconciler` console script in a workspace, checking the canary."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root = root
        self.env = env

    def __call__(self, *args: str, input: str | None = None, env: dict[str, str] | None = None,
                 cwd: Path | None = None) -> Result:
        proc = subprocess.run([RECONCILER, *args], cwd=cwd or self.root,
                              env={**self.env, **(env or {})}, input=input, capture_output=True,
                              text=True, timeout=300)
        result = Result(proc.returncode, proc.stdout, proc.stderr)
        assert CANARY not in result.both, f"canary printed by reconciler {' '.join(args)}"
        assert "Traceback" not in result.err, result.err
        if (args and args[0] in ("plan", "apply", "drift") and "json" in args and result.out
                and args[list(args).index("json") - 1] == "--format"):
            # Every JSON plan or drift report a test sees is checked against the published schema.
            jsonschema.validate(json.loads(result.out),
                                DRIFT_SCHEMA if args[0] == "drift" else PLAN_SCHEMA)
        return result

    def write(self, relative: str, text: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path


def base_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("RECONCILER_", "OSR_", "GITHUB_", "CI_", "BUILD_"))}
    env.update({"HOME": str(home), "NO_COLOR": "1", "RECONCILER_ACTOR": "tester",
                CANARY_ENV: CANARY, "TMPDIR": str(home)})
    return env


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "repo"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    yield root
    assert_no_canary_in_tree(tmp_path)


@pytest.fixture
def cli(workspace: Path, store_url: str) -> Cli:
    """A CLI in a fresh repository whose store (initialised) is on each database of the matrix."""
    env = base_env(workspace.parent)
    env.update({"RECONCILER_STORE": store_url, "RECONCILER_STORE_KEY": TEST_KEY})
    runner = Cli(workspace, env)
    result = runner("store", "init")
    assert result.code == 0, result.err
    return runner


@pytest.fixture
def embedded_cli(workspace: Path) -> Cli:
    """A CLI on the embedded default store (.reconciler/store.db with its key file)."""
    return Cli(workspace, base_env(workspace.parent))


def git(root: Path, *args: str) -> str:
    out = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=root,
                         check=True, capture_output=True, text=True)
    return out.stdout


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


DEMO_FILE_SECRET = ("nordlys/tromso.txt", "demo-tromso-pw")  # as `make demo` writes it


def copy_demo(root: Path, repo: Path) -> None:
    shutil.copytree(repo / "tenants", root / "tenants")
    secret = root / ".secrets" / DEMO_FILE_SECRET[0]
    secret.parent.mkdir(parents=True, exist_ok=True)
    secret.write_text(DEMO_FILE_SECRET[1] + "\n", encoding="utf-8")
    secret.chmod(0o600)
    (root / "examples").mkdir(exist_ok=True)
    shutil.copy(repo / "examples" / "demo-store.yaml", root / "examples" / "demo-store.yaml")
