"""Bad input: every case of tests/bad_input/cases.yaml gets one clear line, exit 1, no traceback,
and nothing written.

Each case is run through the command line (in this process, see tests/conftest.py Cli; the
error handler included, as users run it): tenant files with
`reconciler validate` on the embedded default store (offline; no .reconciler/ may appear), a
handful also with `reconciler plan` on every store of the matrix, store fixtures with
`reconciler store seed`, saved plans with `reconciler apply --plan`. After each run the
repository (and, where there is one, the store's dump) must be as it was before.

The fixture chain shares one seeded store, so it runs once, when the first fixture test asks.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from reconciler import desired, store, strictyaml
from tests.conftest import (
    CANARY,
    TEST_KEY,
    Cli,
    Result,
    assert_no_canary_in_tree,
    base_env,
)

CORPUS = Path(__file__).resolve().parent / "bad_input"

# A store and a tenant file that are valid, for the commands that need a store.
GOOD_FIXTURE = """\
version: 1
customers:
  - name: acme
    tenants:
      - name: acme-norway
        connections:
          - name: Visma Business Oslo
            managed: true
            integration: visma-business
            server: SQL01\\VISMA
            database: vbsys
            authentication: sql
            login: osr_reader
            password: {env: OSR_CANARY}
            companies:
              - id: F0001
                reports: [P&L March]
              - F0002
        report_templates:
          - name: P&L template
            connection: Visma Business Oslo
"""
GOOD_TENANT = """\
version: 1
customer: acme
tenant: acme-norway
connections:
  - name: Visma Business Oslo
    integration: visma-business
    server: SQL01\\VISMA
    database: vbsys
    authentication: sql
    login: osr_reader
    password: {env: OSR_CANARY}
    companies: [F0001]
  - name: Visma Business Bergen
    integration: visma-business
    server: sql03.acme.local
    database: vbsys
    authentication: sql
    login: osr_reader
    password: {env: OSR_CANARY}
"""
OTHER_KEY = "3q2GzGqD1t0n8y0bS6yH0zZ3v3c1n6u7Yp2mWc9lQeA="


@dataclass(frozen=True)
class Case:
    """One row of cases.yaml."""

    name: str
    message: str
    file: str | None = None
    at: str | None = None
    where: str | None = None
    args: tuple[str, ...] = ()
    absent: str | None = None
    setup: str | None = None
    generate: str | None = None
    plan: bool = False
    saved_plan: str | None = None

    @property
    def kind(self) -> str:
        if self.saved_plan:
            return "saved-plan"
        if self.file and self.file.startswith("fixtures/"):
            return "fixture"
        if self.file or self.generate:
            return "tenant"
        return "command"

    @property
    def path(self) -> str:
        """Where the input lands in the repository the case runs in."""
        if self.generate:
            return self.generate.split(" ", 1)[1]
        if self.kind == "saved-plan":
            assert self.where is not None
            return self.where
        assert self.file is not None
        if self.kind == "fixture":
            return self.file
        return self.file.split("/", 2)[2]  # tenants/<case>/<path>

    @property
    def located(self) -> str:
        """The start of the expected line: `error: where:line:col: ` or `error: where: `."""
        where = self.where or self.path
        return f"error: {where}:{self.at}: " if self.at else f"error: {where}: "

    def command(self) -> list[str]:
        if self.args:
            return [self.path if a == "{file}" else a for a in self.args]
        if self.kind == "fixture":
            return ["store", "seed", self.path]
        return ["validate", self.path]


def _load_cases() -> list[Case]:
    rows = yaml.safe_load((CORPUS / "cases.yaml").read_text(encoding="utf-8"))["cases"]
    cases = []
    for row in rows:
        row["args"] = tuple(row.get("args", ()))
        cases.append(Case(**row))
    return cases


CASES = _load_cases()
OFFLINE = [c for c in CASES if c.kind in ("tenant", "command")]
FIXTURES = [c for c in CASES if c.kind == "fixture"]
ON_STORES = [c for c in CASES if c.plan]
SAVED_PLANS = [c for c in CASES if c.kind == "saved-plan"]


def assert_refused(case: Case, result: Result) -> None:
    """Exit 1; one `error: ` line per problem; the case's line, located and with its fragment."""
    assert result.code == 1, (case.name, result.code, result.err, result.out)
    lines = result.err.splitlines()
    assert lines, case.name
    assert all(line.startswith("error: ") for line in lines), result.err
    hits = [line for line in lines if line.startswith(case.located) and case.message in line]
    assert hits, f"{case.name}: no line starting {case.located!r} with {case.message!r} in\n" + result.err
    if case.absent:
        assert case.absent not in result.both, f"{case.name}: {case.absent!r} was echoed"


def tables(url: str) -> list[tuple[str, list[str]]]:
    """Every row of every table of the store: equal before and after means nothing written."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            names = set(sa.inspect(conn).get_table_names())
            return [
                (t.name, sorted(repr(tuple(row)) for row in conn.execute(sa.select(t))))
                for t in store.metadata.sorted_tables
                if t.name in names
            ]
    finally:
        engine.dispose()


def snapshot(root: Path) -> dict[str, str]:
    """Every file of the repository and a digest of its bytes, but .git and the embedded store
    (its tables are compared instead: SQLite's side files change when it is only read)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not {".git", ".reconciler"} & set(p.relative_to(root).parts)
    }


# ---------------------------------------------------------------------------------------------
# Setting cases up


def _setup(case: Case, root: Path) -> None:
    """Copy a case's files into the repository; make what must not be committed."""
    if case.kind == "tenant" and case.file:
        shutil.copytree(CORPUS / "tenants" / case.name, root, dirs_exist_ok=True)
    elif case.kind == "fixture":
        assert case.file is not None
        target = root / case.file
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(CORPUS / case.file, target)
    if case.generate:
        what, rel = case.generate.split(" ", 1)
        assert what == "oversized", case.generate
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        head = "version: 1\ncustomer: acme\ntenant: acme-norway\n"
        padding = "# " + "x" * 98 + "\n"
        path.write_text(head + padding * ((strictyaml.MAX_BYTES // len(padding)) + 1))
    if case.setup == "symlink-out-of-secrets":
        # .secrets/ is git-ignored, so the link is made here: it leads out of the directory.
        (root / "outside.txt").write_text("not a tenant secret\n")
        (root / ".secrets" / "acme").mkdir(parents=True)
        (root / ".secrets" / "acme" / "no.txt").symlink_to(root / "outside.txt")
    elif case.setup:
        raise AssertionError(f"unknown setup {case.setup!r}")


def _repository(base: Path) -> tuple[Path, dict[str, str]]:
    """A fresh git repository under base and the environment the conftest CLI runs with."""
    root = base / "repo"
    root.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root, base_env(base)


@dataclass
class Outcome:
    result: Result
    before: dict[str, str]  # the repository's files
    after: dict[str, str]
    store_before: Any = None  # the store's tables, where there is a store
    store_after: Any = None
    reconciler_dir: bool = False  # whether a .reconciler/ directory appeared


def _offline(case: Case, base: Path) -> Outcome:
    root, env = _repository(base)
    _setup(case, root)
    before = snapshot(root)
    result = Cli(root, env)(*case.command())
    outcome = Outcome(result, before, snapshot(root), reconciler_dir=(root / ".reconciler").exists())
    assert_no_canary_in_tree(base)
    return outcome


def _fixtures(cases: list[Case], base: Path) -> dict[str, Outcome]:
    """Seed each bad fixture into one seeded embedded store; its tables before and after each.

    `store dump` runs once before and once after all of them.
    """
    root, env = _repository(base)
    cli = Cli(root, env)
    (root / "good.yaml").write_text(GOOD_FIXTURE)
    for args in (("store", "init"), ("store", "seed", "good.yaml")):
        result = cli(*args)
        assert result.code == 0, result.err
    dump = cli("store", "dump")
    assert dump.code == 0 and "Visma Business Oslo" in dump.out, dump.err
    url = f"sqlite:///{root / '.reconciler' / 'store.db'}"
    outcomes = {}
    for case in cases:
        _setup(case, root)
        before, store_before = snapshot(root), tables(url)
        result = cli(*case.command())
        outcomes[case.name] = Outcome(result, before, snapshot(root), store_before, tables(url))
    outcomes["(dump)"] = Outcome(cli("store", "dump"), {}, {}, dump.out)
    assert_no_canary_in_tree(base)
    return outcomes


class Pool:
    """Runs each offline case once, and the fixture chain once, when a test first asks."""

    def __init__(self, base: Path, wanted: set[str]) -> None:
        self.base = base
        self.chain = [c for c in FIXTURES if c.name in wanted]
        self.fixtures: dict[str, Outcome] | None = None

    def outcome(self, case: Case) -> Outcome:
        if case.kind == "fixture":
            assert self.chain
            if self.fixtures is None:
                self.fixtures = _fixtures(self.chain, self.base / "fixtures")
            return self.fixtures[case.name]
        return _offline(case, self.base / case.name)


@pytest.fixture(scope="module")
def pool(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Pool:
    wanted = {
        item.callspec.params["case"].name
        for item in request.session.items
        if getattr(item, "module", None) is request.module
        and hasattr(item, "callspec")
        and "case" in item.callspec.params
    }
    return Pool(tmp_path_factory.mktemp("bad_input"), wanted)


# ---------------------------------------------------------------------------------------------
# The corpus


def test_corpus_is_large_and_every_file_is_listed() -> None:
    assert len(CASES) >= 60
    assert len({c.name for c in CASES}) == len(CASES), "case names repeat"
    listed = {c.name for c in CASES}
    for case_dir in (CORPUS / "tenants").iterdir():
        assert case_dir.name in listed, f"{case_dir} is not in cases.yaml"
    for path in (CORPUS / "fixtures").iterdir():
        assert f"fixtures/{path.name}" in {c.file for c in CASES}, f"{path} is not in cases.yaml"
    for case in CASES:
        if case.file:
            assert (CORPUS / case.file).is_file(), case.file
        if case.file and case.kind == "tenant":
            assert case.file.startswith(f"tenants/{case.name}/"), case.name


@pytest.mark.parametrize("case", OFFLINE, ids=lambda c: c.name)
def test_offline_input_is_refused_with_its_location(case: Case, pool: Pool) -> None:
    outcome = pool.outcome(case)
    assert_refused(case, outcome.result)
    assert outcome.result.out == "", outcome.result.out
    assert outcome.after == outcome.before, "the repository changed"
    assert not outcome.reconciler_dir, "a .reconciler/ directory was created"


@pytest.mark.parametrize("case", FIXTURES, ids=lambda c: c.name)
def test_bad_fixture_is_refused_and_the_store_unchanged(case: Case, pool: Pool) -> None:
    outcome = pool.outcome(case)
    assert_refused(case, outcome.result)
    assert outcome.after == outcome.before, "the repository changed"
    assert outcome.store_after == outcome.store_before, "the store changed"
    assert pool.fixtures is not None
    dump = pool.fixtures["(dump)"]
    assert dump.result.out == dump.store_before, "`store dump` differs after the bad fixtures"


# ---------------------------------------------------------------------------------------------
# On every store of the matrix: plan with bad tenant files, apply with bad saved plans


@pytest.fixture(scope="module")
def foreign_plans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Saved plans made against other stores: one with the same key, one with another key."""
    base = tmp_path_factory.mktemp("foreign")
    root, env = _repository(base)
    (root / "good.yaml").write_text(GOOD_FIXTURE)
    tenant = root / "tenants" / "acme" / "acme-norway.yaml"
    tenant.parent.mkdir(parents=True)
    tenant.write_text(GOOD_TENANT)
    plans = {}
    for name, key in (("other-store", TEST_KEY), ("other-key", OTHER_KEY)):
        cli = Cli(
            root, {**env, "RECONCILER_STORE": f"sqlite:///{base / name}.db", "RECONCILER_STORE_KEY": key}
        )
        for args in (
            ("store", "init"),
            ("store", "seed", "good.yaml"),
            ("plan", "--out", f"{name}.json", "tenants/acme/acme-norway.yaml"),
        ):
            result = cli(*args)
            assert result.code == 0, result.err
        plans[name] = (root / f"{name}.json").read_text(encoding="utf-8")
    assert_no_canary_in_tree(base)
    return plans


def _saved_plan(kind: str, good: str, foreign: dict[str, str]) -> bytes:
    if kind == "truncated":
        return good.encode()[: len(good) // 2]
    if kind == "tampered":
        # One byte of the plan changed, keeping the JSON valid: a connection name.
        at = good.index("Visma Business Bergen")
        return (good[:at] + "W" + good[at + 1 :]).encode()
    return foreign[kind].encode()


def test_plan_and_apply_refuse_bad_input_on_every_store(
    cli: Cli, store_url: str, foreign_plans: dict[str, str]
) -> None:
    cli.write("good.yaml", GOOD_FIXTURE)
    cli.write("tenants/acme/acme-norway.yaml", GOOD_TENANT)
    assert cli("store", "seed", "good.yaml").code == 0
    saved = cli("plan", "--out", "plan.json", "tenants/acme/acme-norway.yaml")
    assert saved.code == 0, saved.err
    good = (cli.root / "plan.json").read_text(encoding="utf-8")
    dump = cli("store", "dump")
    assert dump.code == 0, dump.err
    store_before = tables(store_url)

    # The bad tenant files in one `plan` run (each under cases/<name>/, so that each keeps its
    # tenants/<customer>/<tenant>.yaml path): every one must be reported.
    files = []
    for case in ON_STORES:
        shutil.copytree(CORPUS / "tenants" / case.name, cli.root / "cases" / case.name)
        files.append(f"cases/{case.name}/{case.path}")
    for case in SAVED_PLANS:
        assert case.saved_plan is not None
        (cli.root / case.path).write_bytes(_saved_plan(case.saved_plan, good, foreign_plans))
    before = snapshot(cli.root)

    result = cli("plan", *files)
    for case, path in zip(ON_STORES, files, strict=True):
        assert_refused(dataclasses.replace(case, where=path), result)
    assert tables(store_url) == store_before, "plan changed the store"
    for case in SAVED_PLANS:
        assert_refused(case, cli(*case.command()))
        assert tables(store_url) == store_before, f"{case.name}: the store changed"
    assert snapshot(cli.root) == before, "the repository changed"
    assert cli("store", "dump").out == dump.out


# ---------------------------------------------------------------------------------------------
# Several problems: all reported, sorted by file then line, up to desired.MAX_PROBLEMS


MANY = """\
version: 2
customer: acme
tenant: {tenant}
prune: NO
connections:
  - name: Visma Business Oslo
    integration: visma-busines
    server: SQL01\\VISMA
    database: vbsys
    authentication: sql
    login: osr_reader
    password: {{env: GITHUB_TOKEN}}
    private: yes
"""


def test_every_problem_of_every_file_is_reported_in_order(embedded_cli: Cli) -> None:
    for tenant in ("acme-sweden", "acme-norway"):
        embedded_cli.write(f"tenants/acme/{tenant}.yaml", MANY.format(tenant=tenant))
    embedded_cli.write(
        "tenants/nordlys/nordlys-main.yaml",
        MANY.format(tenant="nordlys-main").replace("customer: acme", "customer: nordlys"),
    )
    result = embedded_cli("validate")
    assert result.code == 1
    expected = []
    for path in (
        "tenants/acme/acme-norway.yaml",
        "tenants/acme/acme-sweden.yaml",
        "tenants/nordlys/nordlys-main.yaml",
    ):
        expected += [
            f"error: {path}:1:10: version: version 2 is not a format this reconciler reads; "
            "write `version: 1`",
            f"error: {path}:4:8: prune: 'NO' is not a boolean here (yes/no/on/off are read as "
            "text); write true or false",
            f"error: {path}:7:18: connections[0].integration: unknown integration "
            "'visma-busines'; did you mean 'visma-business'?",
            f"error: {path}:12:15: connections[0]: the password reference is refused: "
            "environment variable 'GITHUB_TOKEN' is not a tenant secret; name it OSR_... "
            "(e.g. OSR_GITHUB_TOKEN)",
            f"error: {path}:13:14: connections[0].private: 'yes' is not a boolean here "
            "(yes/no/on/off are read as text); write true or false",
        ]
    assert result.err.splitlines() == expected
    assert not (embedded_cli.root / ".reconciler").exists()


def test_problems_beyond_the_limit_are_counted_not_listed(embedded_cli: Cli) -> None:
    count = desired.MAX_PROBLEMS + 50
    body = "".join(
        f"  - name: Connection {i}\n    integration: dynamics-gp\n    server: bad:host\n"
        f"    database: db\n    authentication: windows\n"
        for i in range(count)
    )
    embedded_cli.write(
        "tenants/acme/acme-norway.yaml",
        "version: 1\ncustomer: acme\ntenant: acme-norway\nconnections:\n" + body,
    )
    result = embedded_cli("validate")
    assert result.code == 1
    lines = result.err.splitlines()
    assert len(lines) == desired.MAX_PROBLEMS + 1
    assert lines[0].startswith("error: tenants/acme/acme-norway.yaml:7:13: connections[0].server:")
    located = [int(line.split(":")[2]) for line in lines[:-1]]
    assert located == sorted(located)
    assert lines[-1] == "error: ... and 50 more problems, not shown; fix these and run again"
    assert not (embedded_cli.root / ".reconciler").exists()


# ---------------------------------------------------------------------------------------------
# An unexpected internal error (a bug): one line, a debug log, secrets redacted


# Injected at interpreter start (sitecustomize on PYTHONPATH): the renderer raises an exception
# whose text holds the password the plan resolved, as a careless bug might.
INJECT = """\
import os
from reconciler import render

def _broken(*args, **kwargs):
    value = os.environ["OSR_CANARY"]
    try:
        raise KeyError(value)
    except KeyError as exc:
        raise RuntimeError(f"rendering failed for {value!r} (PWD={value};)") from exc

render.text = _broken
"""


def test_internal_error_is_one_line_with_a_redacted_debug_log(embedded_cli: Cli) -> None:
    cli = embedded_cli
    cli.write("good.yaml", GOOD_FIXTURE)
    cli.write("tenants/acme/acme-norway.yaml", GOOD_TENANT)
    for args in (("store", "init"), ("store", "seed", "good.yaml")):
        assert cli(*args).code == 0
    dump = cli("store", "dump").out
    inject = cli.root.parent / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(INJECT)

    result = cli.process("plan", env={"PYTHONPATH": str(inject)})  # sitecustomize: a new process

    assert result.code == 1
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    prefix = "error: internal error (RuntimeError); this is a bug in osr-reconciler. "
    assert lines[0].startswith(prefix + "The traceback (secrets redacted) is in "), lines[0]
    log = Path(lines[0].rsplit(" ", 1)[1])
    assert log.is_file() and log.parent == cli.root.parent  # TMPDIR of the conftest CLI
    text = log.read_text(encoding="utf-8")
    assert "Traceback" in text and "RuntimeError: rendering failed for" in text
    assert "KeyError" in text  # the chained cause is kept
    assert CANARY not in text and "***" in text
    assert cli("store", "dump").out == dump
    log.unlink()  # the workspace fixture checks the whole tree for the canary as well


# ---------------------------------------------------------------------------------------------
# Values past what a date, a duration or a file path holds (they overflowed into internal errors,
# one after writing its plan file)

_WINDOW = "version: 1\nfreeze:\n  - name: w\n"
_BEYOND = {
    "plan-ttl": (
        (),
        ("plan", "--plan-ttl", "99999999999999999999d", "--out", "p.json"),
        "write at most 3650d",
    ),
    "plan-ttl-0": ((), ("plan", "--plan-ttl", "0s", "--out", "p.json"), "write a duration longer than 0"),
    "at": ((), ("windows", "--at", "9999-12-31T23:59Z"), "between the years 1971 and 9000"),
    "now": ((("RECONCILER_NOW", "0001-01-01T00:00Z"),), ("plan",), "between the years 1971 and 9000"),
    "out-empty": ((), ("plan", "--out", ""), "is not a regular file"),
    "out-tenant-file": (
        (),
        ("plan", "--out", "tenants/acme/acme-norway.yaml"),
        "is where tenant files are read from",
    ),
    "out-fifo": ((), ("plan", "--out", "out.fifo"), "is not a regular file"),
    "window-duration": (
        (
            (
                "reconciler.yaml",
                _WINDOW + '    schedule: "0 0 28 * *"\n    duration: 99999999999999d\n    timezone: UTC\n',
            ),
        ),
        ("validate",),
        "reconciler.yaml:5:15: freeze[0].duration: must be longer than 0 and at most 366d",
    ),
    "window-end": (
        (
            (
                "reconciler.yaml",
                _WINDOW
                + "    start: 2026-12-28T00:00\n    end: 9999-12-31T23:59\n    timezone: Pacific/Honolulu\n",
            ),
        ),
        ("plan",),
        "freeze[0].end: '9999-12-31T23:59' is not a local date and time",
    ),
}


@pytest.mark.parametrize("beyond", sorted(_BEYOND))
def test_values_beyond_range_are_refused_and_nothing_written(embedded_cli: Cli, beyond: str) -> None:
    """(Not `case`: the pool fixture takes every `case` parameter of this module for a corpus case.)"""
    setup, args, message = _BEYOND[beyond]
    embedded_cli.write("live.yaml", yaml.safe_dump({"version": 1, "customers": []}))
    assert embedded_cli("store", "seed", "live.yaml").code == 0
    embedded_cli.write("tenants/.keep", "")
    env = {}
    for name, value in setup:
        if name.endswith(".yaml"):
            embedded_cli.write(name, value)
        else:
            env[name] = value
    if beyond == "out-fifo":
        os.mkfifo(embedded_cli.root / "out.fifo")
    result = embedded_cli(*args, env=env)
    assert result.code == 1, result.both
    assert message in result.err, result.err
    assert len(result.err.splitlines()) == 1 and "internal error" not in result.err
    assert not (embedded_cli.root / "p.json").exists()
    if beyond == "out-fifo":
        assert stat.S_ISFIFO((embedded_cli.root / "out.fifo").stat().st_mode)


def test_a_fixture_of_many_problems_is_told_within_the_bound(tmp_path: Path) -> None:
    """A fixture with a bad key on each of 300 connections printed every problem (6,000 lines
    and 1 MB of stderr for 3,000); tenant files stop at desired.MAX_PROBLEMS, and so do fixtures."""
    from reconciler import errors, fixture

    conns = [
        {
            "name": f"C{i}",
            "managed": True,
            "integration": "x",
            "server": "s",
            "database": "d",
            "authentication": "windows",
            "bogus": 1,
        }
        for i in range(desired.MAX_PROBLEMS + 100)
    ]
    doc = {"version": 1, "customers": [{"name": "acme", "tenants": [{"name": "t", "connections": conns}]}]}
    path = tmp_path / "big.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    with pytest.raises(errors.InputError) as caught:
        fixture.load(path)
    problems = caught.value.problems
    assert len(problems) == desired.MAX_PROBLEMS + 1
    assert problems[-1].message == "... and 100 more problems, not shown; fix these and run again"
