"""Shared fixtures: the store matrix (SQLite, PostgreSQL, MariaDB), a CLI runner, the canary.

Store tests run on every database in RECONCILER_TEST_DATABASES (default: all three). A server
that cannot be reached is skipped with the reason on a laptop, and fails the run under CI=true.

The CLI runner (Cli) runs `reconciler` in this process by default, isolated as a new process
would be (run_in_process). Tests where the process boundary is the point use Cli.process(),
Cli(..., process=True) or @pytest.mark.subprocess; RECONCILER_TEST_SUBPROCESS=1 (make
test-subprocess) runs every call as a process.
"""

from __future__ import annotations

import gc
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
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
    "postgresql": os.environ.get(
        "RECONCILER_TEST_POSTGRESQL_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    ),
    "mariadb": os.environ.get(
        "RECONCILER_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test?charset=utf8mb4"
    ),
}
DATABASES = [
    d.strip()
    for d in os.environ.get("RECONCILER_TEST_DATABASES", "sqlite,postgresql,mariadb").split(",")
    if d.strip()
]
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
                # MariaDB: latin1, the default of many servers, so that every store test shows
                # the store's own tables hold every name (store.py: utf8mb4 whatever the default).
                charset = " CHARACTER SET latin1" if name == "mariadb" else ""
                conn.execute(sa.text(f"CREATE DATABASE {quoted}{charset}"))
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


# Variables that only act when an interpreter starts: a run that sets one needs its own process.
_START_ONLY = ("PYTHON",)
# Signals whose handlers a run may change (the lease loop installs its own for SIGINT, SIGTERM).
_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE)
# RECONCILER_TEST_SUBPROCESS=1 runs every CLI call as its own process (the old, slow suite).
ALWAYS_PROCESS = os.environ.get("RECONCILER_TEST_SUBPROCESS", "") == "1"


def _newlines(text: str) -> str:
    """What subprocess.run(text=True) does to a child's output: universal newlines."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: object = None,
    line: str | None = None,
) -> None:
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def _fresh_warning_filters() -> None:
    """A new interpreter's warning filters (no -W, no PYTHONWARNINGS), shown on its stderr."""
    warnings.resetwarnings()
    for category in (ResourceWarning, ImportWarning, PendingDeprecationWarning, DeprecationWarning):
        warnings.filterwarnings("ignore", category=category)
    warnings.filterwarnings("default", category=DeprecationWarning, module="__main__")
    warnings.showwarning = _show_warning


def _fresh_process_state() -> None:
    """Forget what an earlier run in this process remembered: a new process starts empty."""
    from reconciler import redaction

    redaction._known.clear()
    for name, module in list(sys.modules.items()):
        if name == "reconciler" or name.startswith("reconciler."):
            for value in list(vars(module).values()):
                if (
                    callable(value)
                    and hasattr(value, "cache_clear")
                    and getattr(value, "__module__", None) == name
                ):
                    value.cache_clear()


def run_in_process(
    args: Sequence[str], *, env: Mapping[str, str], cwd: Path, input: str | None = None
) -> Result:
    """reconciler.cli.main in this process, as the console script would run in a new one.

    The run sees exactly `env` as its environment (not pytest's), `cwd`, `input` on a stdin that
    is not a terminal, and stdout/stderr that are pipes (no terminal: no colour unless forced,
    help wrapped at COLUMNS or 80). Everything the run may change in the process is put back:
    the environment, cwd, the cycle collector (main() turns it off), signal handlers, the
    standard streams, tempfile's cached directory, warning filters (a new interpreter's, printed
    on stderr), and the tool's per-process memory (redaction's known secrets, functools caches).
    """
    from reconciler import cli as cli_module
    from reconciler import redaction

    start_only = sorted(k for k in env if k.startswith(_START_ONLY) and os.environ.get(k) != env[k])
    assert not start_only, f"{start_only} act at interpreter start only: use Cli.process()"
    saved_env = dict(os.environ)
    saved_cwd = os.getcwd()
    saved_gc = gc.isenabled()
    saved_signals = {sig: signal.getsignal(sig) for sig in _SIGNALS}
    saved_streams = (sys.stdin, sys.stdout, sys.stderr, sys.__stdout__)
    saved_tempdir = tempfile.tempdir
    saved_known = set(redaction._known)
    stdout, stderr = io.BytesIO(), io.BytesIO()
    out = io.TextIOWrapper(stdout, encoding="utf-8", line_buffering=False, write_through=True)
    err = io.TextIOWrapper(stderr, encoding="utf-8", errors="backslashreplace", write_through=True)
    try:
        os.environ.clear()
        os.environ.update(env)
        time.tzset()
        os.chdir(cwd)
        tempfile.tempdir = None  # gettempdir() reads TMPDIR of this run's environment again
        _fresh_process_state()
        sys.stdin = io.TextIOWrapper(io.BytesIO((input or "").encode("utf-8")), encoding="utf-8")
        sys.stdout, sys.stderr = out, err
        # shutil.get_terminal_size() asks sys.__stdout__ when COLUMNS is unset: a pipe, as in
        # the subprocess (pytest -s would otherwise hand it the developer's terminal).
        sys.__stdout__ = out  # type: ignore[misc]  # (Final in typeshed)
        try:
            with warnings.catch_warnings():
                _fresh_warning_filters()
                code = cli_module.main(list(args))
        except SystemExit as exc:  # shell completion exits; so does SIGTERM in the lease loop
            if exc.code is None or isinstance(exc.code, int):
                code = exc.code or 0
            else:
                print(exc.code, file=sys.stderr)
                code = 1
        out.flush()
        err.flush()
    finally:
        sys.stdin, sys.stdout, sys.stderr, sys.__stdout__ = saved_streams  # type: ignore[misc]
        os.environ.clear()
        os.environ.update(saved_env)
        time.tzset()
        os.chdir(saved_cwd)
        tempfile.tempdir = saved_tempdir
        redaction._known.clear()
        redaction._known.update(saved_known)
        for sig, handler in saved_signals.items():
            if handler is not None:
                signal.signal(sig, handler)
        if saved_gc:
            gc.enable()
    return Result(
        code,
        _newlines(stdout.getvalue().decode("utf-8")),
        _newlines(stderr.getvalue().decode("utf-8", errors="replace")),
    )


def run_process(
    args: Sequence[str], *, env: Mapping[str, str], cwd: Path, input: str | None = None
) -> Result:
    """The installed console script in a process of its own."""
    proc = subprocess.run(
        [RECONCILER, *args], cwd=cwd, env=dict(env), input=input, capture_output=True, text=True, timeout=300
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


class Cli:
    """Runs `reconciler` in a workspace, checking the canary, the traceback and JSON schemas.

    A call runs in this process (run_in_process) unless the process boundary is the point:
    Cli(..., process=True), cli.process(...), or RECONCILER_TEST_SUBPROCESS=1 run the installed
    console script as a subprocess instead.
    """

    def __init__(self, root: Path, env: dict[str, str], *, process: bool = False) -> None:
        self.root = root
        self.env = env
        self.always_process = process

    def __call__(
        self,
        *args: str,
        input: str | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        process: bool = False,
    ) -> Result:
        run = run_process if process or self.always_process or ALWAYS_PROCESS else run_in_process
        result = run(args, env={**self.env, **(env or {})}, cwd=cwd or self.root, input=input)
        assert CANARY not in result.both, f"canary printed by reconciler {' '.join(args)}"
        assert "Traceback" not in result.err, result.err
        if (
            args
            and args[0] in ("plan", "apply", "drift")
            and "json" in args
            and result.out
            and args[list(args).index("json") - 1] == "--format"
        ):
            # Every JSON plan or drift report a test sees is checked against the published schema.
            jsonschema.validate(json.loads(result.out), DRIFT_SCHEMA if args[0] == "drift" else PLAN_SCHEMA)
        return result

    def process(
        self, *args: str, input: str | None = None, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> Result:
        """The same call through the installed console script, in a process of its own."""
        return self(*args, input=input, env=env, cwd=cwd, process=True)

    def write(self, relative: str, text: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path


def base_env(home: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RECONCILER_", "OSR_", "GITHUB_", "CI_", "BUILD_"))
    }
    env.update(
        {
            "HOME": str(home),
            "NO_COLOR": "1",
            "RECONCILER_ACTOR": "tester",
            CANARY_ENV: CANARY,
            "TMPDIR": str(home),
        }
    )
    return env


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "repo"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    yield root
    assert_no_canary_in_tree(tmp_path)


def _process(request: pytest.FixtureRequest) -> bool:
    """@pytest.mark.subprocess: the test's CLI calls run the console script in processes."""
    return request.node.get_closest_marker("subprocess") is not None


@pytest.fixture
def cli(workspace: Path, store_url: str, request: pytest.FixtureRequest) -> Cli:
    """A CLI in a fresh repository whose store (initialised) is on each database of the matrix."""
    env = base_env(workspace.parent)
    env.update({"RECONCILER_STORE": store_url, "RECONCILER_STORE_KEY": TEST_KEY})
    runner = Cli(workspace, env, process=_process(request))
    result = runner("store", "init")
    assert result.code == 0, result.err
    return runner


@pytest.fixture
def embedded_cli(workspace: Path, request: pytest.FixtureRequest) -> Cli:
    """A CLI on the embedded default store (.reconciler/store.db with its key file)."""
    return Cli(workspace, base_env(workspace.parent), process=_process(request))


def git(root: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    )
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
