"""Applies under contention and faults: locks before plans, leases that stay true, the outcome
told truthfully after the commit, and locks one can list and free (DESIGN §6).

Every CLI call here runs the console script in a process of its own: a lock's holder is a
process (its pid, its start time), and these tests run two of them against each other.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from reconciler import applier, cli, errors, locks, secrets, spec, stages, store
from tests.conftest import CANARY, CANARY_ENV, RECONCILER, TEST_KEY, Cli, run_in_process
from tests.test_cli import LIVE, TENANT, dump, edit_by_hand, seeded
from tests.test_safety import _insert_lock, asleep, wait_until, wait_until_waiting_for_a_lock

CHANGED = TENANT.replace("database: vbsys", "database: vbsys2")
SLOW = TENANT.replace("database: vbsys", "database: vbsys2") + "".join(
    f"  - {{name: New {i}, integration: dynamics-ax, server: ax{i}, database: AX, "
    f"authentication: windows, companies: [DAT]}}\n"
    for i in range(6)
)

pytestmark = pytest.mark.subprocess


def _count(url: str, table: sa.Table) -> int:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
    finally:
        engine.dispose()


def _holders(url: str) -> list[str]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.select(store.locks.c.actor)).scalars())
    finally:
        engine.dispose()


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _start(cli: Cli, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [RECONCILER, *args],
        cwd=cli.root,
        env={**cli.env, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _after_commit(cli: Cli) -> subprocess.Popen[str]:
    """An apply paused between its commit and the release of its lock."""
    seeded(cli, CHANGED)
    url = cli.env["RECONCILER_STORE"]
    proc = _start(cli, "apply", "--auto-approve", "--allow-cascade", env={locks.RELEASE_DELAY_VAR: "3000"})
    _wait_for(lambda: _count(url, store.audit_log) == 1, "the apply's commit")
    # The row is visible once the database has committed, a moment before the apply has read
    # the reply (a busy machine widens that moment); the release waits 3 s after it.
    time.sleep(0.5)
    assert _count(url, store.locks) == 1  # committed, not yet released
    return proc


def test_an_actor_that_is_not_utf8_and_a_long_ci_job_url_are_kept_not_crashed_on(cli: Cli) -> None:
    """RECONCILER_ACTOR with bytes that are not UTF-8 was an internal error on every store; a
    CI job URL over 400 characters refused the apply on PostgreSQL and MariaDB only."""
    seeded(cli, CHANGED)
    env = {"RECONCILER_ACTOR": "bad\udcffname", "CI_JOB_URL": "https://ci.example/" + "j" * 450}
    done = cli("apply", "--auto-approve", env=env)
    assert done.code == 0, done.err
    (entry,) = json.loads(cli("history", "--format", "json").out)
    assert entry["actor"] == "bad\ufffdname"
    assert cli("unlock", "--holder", "bad\udcffname").code == 0


def test_unlock_on_a_busy_store_says_so(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer holding the store past unlock's wait was an internal error (Busy)."""

    def busy(*_: object, **__: object) -> None:
        raise store.Busy

    monkeypatch.setattr(store, "release_where", busy)
    result = run_in_process(("unlock", "--expired"), env=cli.env, cwd=cli.root)
    assert result.code == 1
    assert result.err == (
        "error: the store is busy with another writer (an apply in its transaction); nothing "
        "was released: run unlock again once it has finished\n"
    )


def _rotated_cleanly(cli: Cli, key: str, password: str) -> None:
    """Every password decrypts under key (a rotation to a third key reads them all) and the
    store holds password: a plan with it declared changes no password."""
    env = {"RECONCILER_STORE_KEY": key, CANARY_ENV: password}
    third = secrets.Keyring.generate().decode()
    planned = cli("plan", "--format", "json", env=env)
    assert planned.code == 0, planned.err
    fields = [
        c["field"] for t in json.loads(planned.out)["tenants"] for a in t["actions"] for c in a["changes"]
    ]
    assert "password" not in fields
    again = cli("store", "rotate-key", env={**env, "RECONCILER_NEW_STORE_KEY": third})
    assert again.code == 0, again.err


def test_an_apply_in_its_transaction_holds_off_a_rotation(cli: Cli) -> None:
    """PostgreSQL and MariaDB: rotate-key read the passwords before the apply committed its new
    one, then wrote the old one back under the new key (a lost update)."""
    seeded(cli, SLOW)
    url, new_key, changed = cli.env["RECONCILER_STORE"], secrets.Keyring.generate().decode(), CANARY + "-new"
    proc = _start(
        cli, "apply", "--auto-approve", env={"RECONCILER_DEBUG_ACTION_DELAY_MS": "1500", CANARY_ENV: changed}
    )
    wait_until(proc, lambda: _count(url, store.locks) == 1 and asleep(proc), "the apply's transaction")
    rotated = cli("store", "rotate-key", env={"RECONCILER_NEW_STORE_KEY": new_key})
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert rotated.code == 0, rotated.err
    _rotated_cleanly(cli, new_key, changed)


def test_a_wait_for_a_lease_run_out_while_its_apply_writes_ends_at_the_lock_timeout(cli: Cli) -> None:
    """MariaDB: taking over a lease whose time ran out while its apply was still in its
    transaction blocked on that apply's row lock for InnoDB's 50 s, past --lock-timeout and
    Ctrl-C (the waiter ended 27-51 s later, or with `Lock wait timeout exceeded`)."""
    seeded(cli, SLOW)
    url = cli.env["RECONCILER_STORE"]
    slow = {"RECONCILER_DEBUG_ACTION_DELAY_MS": "4000", locks.LEASE_VAR: "1000"}
    proc = _start(cli, "apply", "--auto-approve", env=slow)
    wait_until(proc, lambda: _count(url, store.locks) == 1 and asleep(proc), "the apply's transaction")
    time.sleep(1.5)  # its lease has run out; its transaction goes on
    started = time.monotonic()
    waited = cli("apply", "--auto-approve", "--lock-timeout", "1s")
    took = time.monotonic() - started
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    assert waited.code == 1 and "(--lock-timeout)" in waited.err, waited.err
    # It names the holder (DESIGN §6), whose lease ran out while its apply still writes.
    assert re.search(
        r"acme/acme-norway: lock \S+ on acme/acme-norway held by tester .*, lease run out at", waited.err
    )
    assert "but its apply is still writing" in waited.err
    assert took < 10, f"waited {took:.1f}s for --lock-timeout 1s"  # the apply writes for 28 s


def test_unlock_during_an_apply_s_transaction_says_it_had_applied(cli: Cli) -> None:
    """unlock waited for the apply's transaction, then said "an apply that loses its lock stops
    before it commits" of an apply that had committed (it exits 0, its actions applied)."""
    seeded(cli, SLOW)
    url = cli.env["RECONCILER_STORE"]
    proc = _start(cli, "apply", "--auto-approve", env={"RECONCILER_DEBUG_ACTION_DELAY_MS": "800"})
    wait_until(proc, lambda: _count(url, store.locks) == 1 and asleep(proc), "the apply's transaction")
    released = cli("unlock", "--holder", "tester")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and "Applied 7 action(s)" in err, err
    assert released.code == 0, released.err
    if "Released lock" in released.err:  # SQLite: unlock waits out the writer, then finds none
        assert (
            "had already applied 7 action(s) to acme/acme-norway when the lock was released" in released.err
        )
        assert "stops before it commits" not in released.err


def test_an_apply_that_read_the_key_before_a_rotation_is_refused(cli: Cli) -> None:
    """The apply waited for a lease while the key was rotated: it wrote its password under the
    old key, into a store that no longer had it (passwords under two keys)."""
    seeded(cli, CHANGED)
    url, new_key, changed = cli.env["RECONCILER_STORE"], secrets.Keyring.generate().decode(), CANARY + "-new"
    before = dump(cli)
    _insert_lock(url, pid=1, host="other-host", expires_in_ms=4000)
    proc = _start(cli, "apply", "--auto-approve", "--lock-timeout", "60s", env={CANARY_ENV: changed})
    wait_until_waiting_for_a_lock(proc)
    assert cli("store", "rotate-key", env={"RECONCILER_NEW_STORE_KEY": new_key}).code == 0
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert "the store's key was rotated (store rotate-key) since this run read it; nothing was changed" in err
    assert cli("store", "dump", env={"RECONCILER_STORE_KEY": new_key}).out == before
    _rotated_cleanly(cli, new_key, CANARY)


def test_ctrl_c_before_the_commit_says_interrupted_as_docs_locks_md_does(cli: Cli) -> None:
    seeded(cli, SLOW)
    before = dump(cli)
    proc = _start(cli, "apply", "--auto-approve", env={"RECONCILER_DEBUG_ACTION_DELAY_MS": "3000"})
    wait_until(proc, lambda: _count(cli.env["RECONCILER_STORE"], store.locks) == 1 and asleep(proc), "apply")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert err.splitlines()[-1] == "error: interrupted; nothing was changed", err  # it said `aborted`
    assert dump(cli) == before


def test_a_closed_output_pipe_says_so(cli: Cli) -> None:
    """`reconciler plan | head -1`: exit 1, and why (click's own answer to a closed pipe is a
    silent exit 1)."""
    seeded(cli, SLOW)
    reader, writer = os.pipe()
    os.close(reader)
    with os.fdopen(writer, "w") as closed:
        done = subprocess.run(
            [RECONCILER, "plan"], cwd=cli.root, env=cli.env, stdout=closed, stderr=subprocess.PIPE, text=True
        )
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == (
        "error: the output was closed before all of it was written (broken pipe)"
    ), done.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_after_commit_reports_what_was_applied(cli: Cli, sig: signal.Signals) -> None:
    proc = _after_commit(cli)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Applied 1 action(s); 0 dependent(s) deleted." in err
    assert f"{sig.name} arrived after the changes were committed; they stay applied." in err
    assert "nothing was changed" not in err
    assert _count(cli.env["RECONCILER_STORE"], store.locks) == 0
    assert cli("plan", "--detailed-exitcode").code == 0


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full to stand for a full disk")
def test_a_stderr_that_cannot_be_written_after_commit_still_exits_0(cli: Cli) -> None:
    """A closed pipe or a full disk on stderr as apply says what it applied: it applied."""
    seeded(cli, CHANGED)
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [RECONCILER, "apply", "--auto-approve", "--allow-cascade"],
            cwd=cli.root,
            env=cli.env,
            stdout=subprocess.DEVNULL,
            stderr=full,
            timeout=300,
        )
    assert _count(cli.env["RECONCILER_STORE"], store.audit_log) == 1
    assert done.returncode == 0
    assert cli("plan", "--detailed-exitcode").code == 0


def _lose_the_store(url: str) -> Callable[[], None]:
    """Cut the apply off from its store; returns how to give it back."""
    backend = sa.make_url(url).get_backend_name()
    if backend == "sqlite":  # an embedded store cannot be disconnected: it goes away instead
        db = Path(sa.make_url(url).database or "")
        files = [p for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists()]
        for p in files:
            p.rename(p.with_name(p.name + ".away"))

        def back() -> None:
            for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
                p.unlink(missing_ok=True)
            for p in files:
                p.with_name(p.name + ".away").rename(p)

        return back
    kill = (
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "
        "current_database() AND pid <> pg_backend_pid()"
        if backend == "postgresql"
        else None
    )
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            if kill:
                conn.execute(sa.text(kill))
            else:
                for (pid,) in conn.execute(
                    sa.text(
                        "SELECT id FROM information_schema.processlist WHERE db = DATABASE() "
                        "AND id <> CONNECTION_ID()"
                    )
                ).all():
                    conn.execute(sa.text(f"KILL {int(pid)}"))
    finally:
        engine.dispose()
    return lambda: None


def test_lost_connection_after_commit_names_the_lock(cli: Cli) -> None:
    """Cut off after its commit: a server store's connections killed (the store still answers a
    new one, which releases the lock), an embedded store's file gone (the lock is named)."""
    proc = _after_commit(cli)
    give_back = _lose_the_store(cli.env["RECONCILER_STORE"])
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        give_back()
    assert proc.returncode == 0, err
    assert "Applied 1 action(s); 0 dependent(s) deleted." in err
    if not cli.env["RECONCILER_STORE"].startswith("sqlite"):
        assert "could not release" not in err, err
        assert _count(cli.env["RECONCILER_STORE"], store.locks) == 0
        return
    found = re.search(
        r"warning: could not release lock (\S+) on acme/acme-norway \(.*\); it "
        r"expires at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC, or run `reconciler unlock "
        r"\1`",
        err,
    )
    assert found, err
    assert _count(cli.env["RECONCILER_STORE"], store.locks) == 1
    assert cli("unlock", found.group(1)).code == 0
    assert cli("plan", "--detailed-exitcode").code == 0


def _refuse_lease_deletes(url: str) -> None:
    """What a portal's own table may do: a row that names each lease (a foreign key onto it),
    so that deleting a lease is an integrity error; on SQLite a trigger that refuses it."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            name = conn.dialect.name
            if name == "sqlite":
                conn.exec_driver_sql(
                    "CREATE TRIGGER keep_leases BEFORE DELETE ON osr_locks "
                    "BEGIN SELECT RAISE(ABORT, 'kept'); END"
                )
                return
            charset = " DEFAULT CHARSET=utf8mb4" if name != "postgresql" else ""  # as osr_locks
            conn.exec_driver_sql(
                "CREATE TABLE lease_notes (lock_id VARCHAR(36) NOT NULL, "
                f"FOREIGN KEY (lock_id) REFERENCES osr_locks (id)){charset}"
            )
            if name == "postgresql":
                conn.exec_driver_sql(
                    "CREATE FUNCTION note_lease() RETURNS trigger AS $$ BEGIN "
                    "INSERT INTO lease_notes VALUES (NEW.id); RETURN NEW; END $$ LANGUAGE plpgsql"
                )
                conn.exec_driver_sql(
                    "CREATE TRIGGER note_lease AFTER INSERT ON osr_locks FOR EACH ROW "
                    "EXECUTE FUNCTION note_lease()"
                )
            else:
                conn.exec_driver_sql(
                    "CREATE TRIGGER note_lease AFTER INSERT ON osr_locks FOR EACH ROW "
                    "INSERT INTO lease_notes VALUES (NEW.id)"
                )
    finally:
        engine.dispose()


def test_an_integrity_error_releasing_the_locks_after_the_commit_names_them(cli: Cli) -> None:
    """A constraint on osr_locks made the release after the commit an internal error, exit 1,
    with everything applied (DESIGN §6: it prints what it applied, exits 0, names the lock)."""
    seeded(cli, TENANT.replace("database: vbsys", "database: vbsys2"))
    url = cli.env["RECONCILER_STORE"]
    _refuse_lease_deletes(url)
    try:
        _releases_refused(cli)
    finally:  # the server's database is the next test's: no table of ours left on osr_locks
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        with engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("DROP TRIGGER keep_leases")
            else:
                conn.exec_driver_sql("DROP TABLE lease_notes")
                conn.exec_driver_sql(
                    "DROP TRIGGER note_lease" + (" ON osr_locks" if conn.dialect.name == "postgresql" else "")
                )
                if conn.dialect.name == "postgresql":
                    conn.exec_driver_sql("DROP FUNCTION note_lease()")
        engine.dispose()


def _releases_refused(cli: Cli) -> None:
    done = cli.process("apply", "--auto-approve")
    assert done.code == 0, done.err
    assert "Applied 1 action(s); 0 dependent(s) deleted." in done.err
    assert re.search(
        r"warning: could not release lock \S+ on acme/acme-norway \(store .*\); it expires at", done.err
    )
    unlocked = cli("unlock", "--expired")  # the same error: one line, not an internal error
    assert unlocked.code in (0, 1) and "internal error" not in unlocked.err, unlocked.err
    held = [lock["id"] for lock in json.loads(cli("locks", "--format", "json").out)]
    by_id = cli("unlock", *held)
    assert by_id.code == 1 and by_id.err.startswith("error: store "), by_id.err


def test_waiting_apply_plans_against_what_the_first_left(cli: Cli) -> None:
    seeded(cli, SLOW)
    url = cli.env["RECONCILER_STORE"]
    first = _start(
        cli,
        "apply",
        "--auto-approve",
        "--lock-timeout",
        "60s",
        env={"RECONCILER_DEBUG_ACTION_DELAY_MS": "300"},
    )
    _wait_for(lambda: _count(url, store.locks) == 1, "the first apply's lock")
    second = _start(cli, "apply", "--auto-approve", "--lock-timeout", "60s")
    _, first_err = first.communicate(timeout=120)
    _, second_err = second.communicate(timeout=120)
    assert first.returncode == 0, first_err
    assert "Applied 7 action(s)" in first_err
    assert second.returncode == 0, second_err
    assert "No changes to apply." in second_err  # it planned after the first one had applied
    assert cli("plan", "--detailed-exitcode").code == 0
    assert _count(url, store.locks) == 0


def test_waiting_honours_the_timeout_and_names_the_holder(cli: Cli) -> None:
    """While another apply's transaction is open (SQLite: the one writer) the wait still ends on
    time with the holder named, and Ctrl-C ends it at once."""
    seeded(cli, SLOW)
    url = cli.env["RECONCILER_STORE"]
    first = _start(cli, "apply", "--auto-approve", env={"RECONCILER_DEBUG_ACTION_DELAY_MS": "2000"})
    _wait_for(lambda: _count(url, store.locks) == 1, "the first apply's lock")
    # inside its transaction now: holding the lock, and asleep in the first action's delay
    wait_until(first, lambda: asleep(first), "the first apply's transaction")
    started = time.monotonic()
    refused = cli("apply", "--auto-approve", "--lock-timeout", "1s")
    assert time.monotonic() - started < 8
    assert refused.code == 1
    assert re.search(
        r"lock \S+ on acme/acme-norway held by tester on "
        + re.escape(socket.gethostname())
        + r" \(pid \d+\) since",
        refused.err,
    )
    waiting = _start(cli, "apply", "--auto-approve", "--lock-timeout", "60s")
    wait_until_waiting_for_a_lock(waiting)
    waiting.send_signal(signal.SIGINT)
    started = time.monotonic()
    _, err = waiting.communicate(timeout=30)
    assert time.monotonic() - started < 5
    assert waiting.returncode == 1 and "aborted; nothing was changed" in err, err
    first.kill()
    first.wait()


def test_ctrl_c_while_waiting_names_the_holder_and_changes_nothing(cli: Cli) -> None:
    """SIGINT during `--lock-timeout 30s`: at once, one line naming the lock waited for, exit 1
    (nothing was changed, DESIGN §6), and the other apply's lock left alone."""
    seeded(cli, CHANGED)
    url = cli.env["RECONCILER_STORE"]
    _insert(url, "0f0e0d0c-0000-4000-8000-000000000001", "acme/acme-norway", "alice", expires_in_ms=600_000)
    before = dump(cli)
    waiting = _start(cli, "apply", "--auto-approve", "--lock-timeout", "30s")
    wait_until_waiting_for_a_lock(waiting)
    assert waiting.poll() is None
    waiting.send_signal(signal.SIGINT)
    started = time.monotonic()
    out, err = waiting.communicate(timeout=30)
    assert time.monotonic() - started < 5
    assert waiting.returncode == 1, err
    assert out == ""
    assert re.fullmatch(
        r"error: aborted; nothing was changed: interrupted while waiting for lock "
        r"0f0e0d0c-0000-4000-8000-000000000001 on acme/acme-norway held by alice "
        r"on other-host \(pid 1, CI job https://ci\.example/job/7\) since "
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\n",
        err,
    ), err
    assert dump(cli) == before
    assert _holders(url) == ["alice"]


# ---------------------------------------------------------------------------------------------
# In-process: listing and freeing locks, lease renewal, identity


def _insert(
    url: str,
    lock_id: str,
    scope: str,
    actor: str,
    *,
    expires_in_ms: int,
    pid: int = 1,
    host: str = "other-host",
    machine: str | None = None,
    started: int | None = None,
) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    now = store.now_ms()
    try:
        with engine.begin() as conn:
            conn.execute(
                store.locks.insert().values(
                    id=lock_id,
                    scope=scope,
                    actor=actor,
                    host=host,
                    pid=pid,
                    ci_job="https://ci.example/job/7" if actor == "alice" else None,
                    acquired_ms=now - 1000,
                    expires_ms=now + expires_in_ms,
                    machine=machine,
                    started=started,
                )
            )
    finally:
        engine.dispose()


@pytest.fixture
def run(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Callable[..., tuple[int, str, str]]]:
    """The CLI in this process, on an initialised store of the matrix."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RECONCILER_STORE", store_url)
    monkeypatch.setenv("RECONCILER_STORE_KEY", TEST_KEY)
    monkeypatch.setenv("NO_COLOR", "1")

    def invoke(*args: str) -> tuple[int, str, str]:
        code = cli.main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    assert invoke("store", "init")[0] == 0
    yield invoke


def test_locks_lists_and_unlock_frees_by_id_holder_and_expiry(
    run: Callable[..., tuple[int, str, str]], store_url: str
) -> None:
    assert run("locks") == (0, "", "No locks held.\n")
    _insert(store_url, "a1", "acme/one", "alice", expires_in_ms=600_000)
    _insert(store_url, "a2", "acme/two", "alice", expires_in_ms=600_000)
    _insert(store_url, "b1", "acme/three", "bob", expires_in_ms=-1)
    _insert(store_url, "c1", "acme/four", "carol", expires_in_ms=600_000)
    code, out, _ = run("locks", "--format", "json")
    listed = json.loads(out)
    assert code == 0 and [e["id"] for e in listed] == ["c1", "a1", "b1", "a2"]  # by tenant
    assert {k: listed[1][k] for k in ("tenant", "holder", "host", "pid", "ci_job", "expired")} == {
        "tenant": "acme/one",
        "holder": "alice",
        "host": "other-host",
        "pid": 1,
        "ci_job": "https://ci.example/job/7",
        "expired": False,
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", listed[1]["since"])
    code, out, _ = run("locks")
    assert "b1  acme/three  bob on other-host pid 1  since " in out and " expired " in out
    assert "a1  acme/one  alice on other-host pid 1  CI job https://ci.example/job/7  since" in out
    _insert(store_url, "d1\rNo locks held.\n", "acme/five", "dave", expires_in_ms=600_000)
    code, out, _ = run("locks")  # an id written into the store by hand cannot rewrite the line
    assert code == 0 and "d1\\rNo locks held.\\n  acme/five  dave" in out and "\r" not in out
    run("unlock", "--holder", "dave")

    code, _, err = run("unlock", "--expired")
    assert code == 0 and "Released lock b1 on acme/three held by bob" in err
    code, _, err = run("unlock", "--holder", "alice")
    assert code == 0 and err.count("Released lock a") == 2
    code, _, err = run("unlock", "--holder", "alice")  # no longer holds any: who does, for a typo
    assert code == 0 and err == (
        "No lock is held by 'alice'; nothing was released. Holders now: 'carol' (as `reconciler "
        "locks` shows them).\n"
    )
    code, _, err = run("unlock", "c1", "nope")
    assert code == 1 and "no lock 'nope'; current locks: c1" in err
    assert run("unlock", "c1")[0] == 0
    assert run("locks", "--format", "json")[1] == "[]\n"
    code, _, err = run("unlock")
    assert code == 1 and "give LOCK_ID..., --holder HOLDER or --expired (exactly one)" in err


def test_unlock_of_a_mistyped_lock_names_some_locks_and_counts_the_rest(
    run: Callable[..., tuple[int, str, str]], store_url: str
) -> None:
    """An apply of a whole fleet holds a lock per tenant: the refusal of a mistyped LOCK_ID named
    every one of them in one line."""
    from reconciler.commands import unlock

    for i in range(unlock.MOST_NAMED + 5):
        _insert(store_url, f"lock{i:03}", f"acme/t{i:03}", f"ci-{i:03}", expires_in_ms=600_000)
    code, _, err = run("unlock", "nope")
    shown = ", ".join(f"lock{i:03}" for i in range(unlock.MOST_NAMED))
    assert code == 1 and f"no lock 'nope'; current locks: {shown} and 5 more (see" in err, err
    code, _, err = run("unlock", "--holder", "ci-9999")
    holders = ", ".join(f"'ci-{i:03}'" for i in range(unlock.MOST_NAMED))
    assert code == 0 and f"Holders now: {holders} and 5 more (as" in err, err


@pytest.fixture
def opened(run: Callable[..., tuple[int, str, str]]) -> Iterator[store.Store]:
    ctx = stages.Context.make(None)
    st = ctx.open_store(readonly=False)
    yield st
    st.close()


def test_unlock_holder_is_the_actor_exactly_on_every_store(opened: store.Store) -> None:
    """MariaDB's collation matched `--holder CI-BOT` with ci-bot's leases (and `ci-bot ` too);
    an actor over 200 characters, stored cut, and one with a control character, which `locks`
    shows escaped, matched nothing as `locks` shows them."""
    from reconciler import render

    actors = {"x/a": "ci-bot", "x/b": "CI-BOT", "x/c": "ci-bot ", "x/d": "bot\x1b[2J", "x/e": "a" * 250}
    for scope, actor in actors.items():
        ids, current = store.try_locks(
            opened, [scope], store.Holder(actor, "h", 1, None), 60_000, locks.may_take
        )
        assert current is None and ids

    def released(holder: str) -> list[str]:
        return [r.scope for r in store.release_where(opened, holder=holder, shown=render.inert)]

    assert released("CI-BOT") == ["x/b"]
    assert released("bot\\x1b[2J") == ["x/d"]  # as `locks` shows it
    assert released("a" * 250) == ["x/e"]
    assert released("ci-bot") == ["x/a"]
    assert [r.scope for r in store.list_locks(opened)] == ["x/c"]


def test_a_busy_store_is_not_blamed_on_an_expired_lease(
    opened: store.Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite busy with another writer, and an expired lease on the tenant: the wait named that
    lease as the holder (`run reconciler unlock <id>`) instead of the writer it waited for."""
    gone = store.Holder("gone", "elsewhere", 1, None)
    ids, _ = store.try_locks(opened, ["acme/expired"], gone, 1, locks.may_take)
    assert ids
    time.sleep(0.01)

    @contextlib.contextmanager
    def busy(*_: object) -> Iterator[None]:
        raise store.Busy("database is locked")
        yield

    monkeypatch.setattr(store, "_writing", busy)
    me = store.Holder("me", "here", 2, None)
    assert store.try_locks(opened, ["acme/expired"], me, 60_000, locks.may_take) == ([], None)
    live = store.Holder("live", "elsewhere", 3, None)
    monkeypatch.undo()
    ids, _ = store.try_locks(opened, ["acme/live"], live, 60_000, locks.may_take)
    monkeypatch.setattr(store, "_writing", busy)
    taken, holder = store.try_locks(opened, ["acme/live"], me, 60_000, locks.may_take)
    assert taken == [] and holder is not None and holder.holder.actor == "live"  # a live one is named
    monkeypatch.undo()
    store.release_locks(opened, ids)


def test_lease_is_renewed_while_held(opened: store.Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(locks.LEASE_VAR, "600")
    with locks.leases(opened, ["acme/one"], timeout_s=0) as held:
        first = store.list_locks(opened)[0].expires_ms
        time.sleep(1.5)  # more than two leases
        row = store.list_locks(opened)[0]
        assert row.expires_ms > first and row.expires_ms > store.now_ms()
        other = store.Holder("bob", "elsewhere", 1, None)
        assert store.try_locks(opened, ["acme/one"], other, 600, locks.may_take)[0] == []
        held.check()  # still ours
    assert store.list_locks(opened) == []


def test_leases_of_more_tenants_than_one_statement_holds(
    opened: store.Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lease statements take a chunk of scopes at a time (one statement holds at most 32,766
    values on SQLite, 65,535 on PostgreSQL; and a fleet's rows are not all built at once):
    every lease is still taken, refused to another, renewed, checked and released."""
    monkeypatch.setattr(store, "CHUNK", 2)
    scopes = [f"acme/t{i}" for i in range(5)]
    widest = 0  # the most scopes or ids one statement on the locks carried

    def seen(_c: object, _cur: object, statement: str, params: Any, _ctx: object, many: bool) -> None:
        nonlocal widest
        if "osr_locks" not in statement:
            return
        if statement.startswith("INSERT"):
            widest = max(widest, len(params) if many else 1)
        elif " IN (" in statement:
            widest = max(widest, statement.split(" IN (", 1)[1].split(")", 1)[0].count(",") + 1)

    sa.event.listen(opened.engine, "before_cursor_execute", seen)
    ids, current = store.try_locks(
        opened, scopes, store.Holder("alice", "here", 1, None), 60_000, locks.may_take
    )
    assert current is None and len(set(ids)) == 5
    assert [(r.scope, r.holder.actor) for r in store.list_locks(opened)] == [(s, "alice") for s in scopes]
    other = store.Holder("bob", "elsewhere", 1, None)
    taken, holder = store.try_locks(opened, ["acme/new", "acme/t4"], other, 600, locks.may_take)
    assert taken == [] and holder is not None and holder.scope == "acme/t4"
    assert store.renew_locks(opened, ids, store.now_ms() + 120_000) == 5
    assert min(r.expires_ms for r in store.list_locks(opened)) > store.now_ms() + 100_000
    with opened.transaction() as conn:
        assert store.locks_still_held(conn, ids) == 5
    assert store.release_locks(opened, ids[:3]) == 3
    assert [r.scope for r in store.release_where(opened, holder="alice")] == scopes[3:]
    assert store.list_locks(opened) == []
    assert widest == 2


def test_lost_lease_stops_the_apply_before_it_writes(
    opened: store.Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(locks.LEASE_VAR, "300")
    with locks.leases(opened, ["acme/one"], timeout_s=0) as held:
        store.release_locks(opened, list(held.ids.values()))  # taken over meanwhile
        with (
            pytest.raises(errors.ConflictError, match="this apply's lock is no longer held"),
            opened.transaction() as conn,
        ):
            held.verify(conn)


def _next_commit_fails(monkeypatch: pytest.MonkeyPatch, *, after_committing: bool) -> Callable[[], None]:
    """The connection fails as the next commit after arm() ends, once: after the database
    committed (its reply lost) or before. Returns arm."""
    armed = False
    commit = sa.engine.Connection._commit_impl

    def arm() -> None:
        nonlocal armed
        armed = True

    def failing(self: sa.engine.Connection) -> None:
        nonlocal armed
        if not armed:
            return commit(self)
        armed = False
        if after_committing:
            commit(self)
        self.invalidate()  # as a lost connection is: its session on the server ends
        raise sa.exc.OperationalError("COMMIT", {}, ConnectionResetError("Lost connection to server"))

    monkeypatch.setattr(sa.engine.Connection, "_commit_impl", failing)
    return arm


def _commit_fails(monkeypatch: pytest.MonkeyPatch, *, after_committing: bool) -> None:
    """The connection fails as the apply's commit ends (the commit after Held.commit_begins)."""
    arm, begins = _next_commit_fails(monkeypatch, after_committing=after_committing), locks.Held.commit_begins

    def armed(self: locks.Held) -> None:
        begins(self)
        arm()

    monkeypatch.setattr(locks.Held, "commit_begins", armed)


def _changed_fleet(
    run: Callable[..., tuple[int, str, str]], monkeypatch: pytest.MonkeyPatch, tenant: str = CHANGED
) -> str:
    monkeypatch.setenv(CANARY_ENV, CANARY)
    Path("live.yaml").write_text(LIVE, encoding="utf-8")
    assert run("store", "seed", "live.yaml")[0] == 0
    Path("tenants/acme").mkdir(parents=True)
    Path("tenants/acme/acme-norway.yaml").write_text(tenant, encoding="utf-8")
    code, out, _ = run("store", "dump")
    assert code == 0
    return out


@pytest.mark.parametrize("interactive", [False, True], ids=["in-one-read", "read-before"])
def test_a_commit_whose_reply_is_lost_is_reported_applied(
    run: Callable[..., tuple[int, str, str]], monkeypatch: pytest.MonkeyPatch, interactive: bool
) -> None:
    """The database committed, the reply was lost: the store is read again and the run says
    applied, exit 0 (after a commit, no message may say otherwise)."""
    before = _changed_fleet(run, monkeypatch)
    _commit_fails(monkeypatch, after_committing=True)
    if interactive:  # the shape that reads the plan before its transaction
        monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
        monkeypatch.setattr("click.prompt", lambda *a, **k: "yes")
    code, out, err = run("apply", *(() if interactive else ("--auto-approve",)))
    assert code == 0, err
    assert CANARY not in out + err
    assert "Applied 1 action(s); 0 dependent(s) deleted." in err
    assert "the connection to the store failed as the commit ended" in err
    assert "the store shows the changes were committed" in err
    assert "nothing was" not in err
    assert run("store", "dump")[1] != before
    assert run("plan", "--detailed-exitcode")[0] == 0
    assert run("locks", "--format", "json")[1] == "[]\n"


def test_a_lost_commit_is_read_again_until_the_store_answers(
    run: Callable[..., tuple[int, str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store is back after two failed reads: the commit is found, the run says applied."""
    _changed_fleet(run, monkeypatch)
    _commit_fails(monkeypatch, after_committing=True)
    readable, attempts = store.audit_has, []

    def back_on_the_third(st: store.Store, entry: Any, session: int | None = None) -> bool:
        attempts.append(entry)
        if len(attempts) < 3:
            raise errors.StoreError("store: connection refused")
        return readable(st, entry, session)

    monkeypatch.setattr(store, "audit_has", back_on_the_third)
    code, _, err = run("apply", "--auto-approve")
    assert code == 0 and len(attempts) == 3, err
    assert "Applied 1 action(s)" in err and "the store shows the changes were committed" in err


def test_a_commit_that_did_not_happen_is_reported_as_an_error(
    run: Callable[..., tuple[int, str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _changed_fleet(run, monkeypatch)
    _commit_fails(monkeypatch, after_committing=False)
    code, out, err = run("apply", "--auto-approve")
    assert code == 1 and "Lost connection to server" in err, err
    assert err.rstrip().endswith("; nothing was applied, plan again"), err  # as other refusals say it
    assert CANARY not in out + err
    assert "Applied" not in err
    assert run("store", "dump")[1] == before
    assert run("locks", "--format", "json")[1] == "[]\n"


def _unreachable(*_: object) -> None:
    raise errors.StoreError("store: connection refused")


def test_leases_a_failed_apply_cannot_release_are_named_with_their_expiry(
    run: Callable[..., tuple[int, str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store went away before the commit: the run said "nothing was applied" and left its
    leases for 15 minutes unsaid (an apply from another host refused until then)."""
    _changed_fleet(run, monkeypatch)
    _commit_fails(monkeypatch, after_committing=False)
    monkeypatch.setattr(store, "release_locks", _unreachable)
    code, out, err = run("apply", "--auto-approve")
    assert code == 1 and "Lost connection to server" in err and "nothing was applied" in err, err
    assert CANARY not in out + err
    (left,) = [line for line in err.splitlines() if "could not release lock" in line]
    assert re.fullmatch(
        r"error: could not release lock \S+ on acme/acme-norway \(store: connection refused\); it "
        r"expires at .+ UTC, or run `reconciler unlock \S+`",
        left,
    ), left


@pytest.mark.parametrize("how", ["nothing to apply", "interrupted"])
def test_leases_a_run_without_a_commit_cannot_release_are_named(
    run: Callable[..., tuple[int, str, str]],
    opened: store.Store,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    how: str,
) -> None:
    """An apply with nothing to apply, or one interrupted (Ctrl-C, SIGTERM) before its commit,
    whose leases could not be released: they were left for 15 minutes unsaid (DESIGN §6: a lock
    it could not release is named, with its expiry), where a failed run named them."""

    if how == "nothing to apply":
        _changed_fleet(run, monkeypatch, TENANT)  # the file as the store has it
        monkeypatch.setattr(store, "release_locks", _unreachable)
        code, _, err = run("apply", "--auto-approve")
        assert code == 0 and "No changes to apply." in err, err
    else:
        monkeypatch.setattr(store, "release_locks", _unreachable)
        with pytest.raises(KeyboardInterrupt), locks.leases(opened, ["acme/acme-norway"], timeout_s=1):
            raise KeyboardInterrupt
        err = capsys.readouterr().err
    (left,) = [line for line in err.splitlines() if "could not release lock" in line]
    assert re.fullmatch(
        r"warning: could not release lock \S+ on acme/acme-norway \(store: connection refused\); "
        r"it expires at .+ UTC, or run `reconciler unlock \S+`",
        left,
    ), left


def test_a_commit_whose_outcome_cannot_be_read_says_so(
    run: Callable[..., tuple[int, str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reply was lost and the store cannot be read either: the run neither claims the
    changes nor denies them."""
    _changed_fleet(run, monkeypatch)
    _commit_fails(monkeypatch, after_committing=True)

    def unreadable(*_: object) -> bool:
        raise errors.StoreError("store: connection refused")

    readable = store.audit_has
    monkeypatch.setattr(store, "audit_has", unreadable)
    monkeypatch.setattr(store, "OUTCOME_WAIT_S", 0.5)
    code, out, err = run("apply", "--auto-approve")
    assert code == 1 and CANARY not in out + err
    assert "could not be read for 0.5s to tell whether they were (store: connection refused)" in err
    assert "They may have been applied: `reconciler history` lists them if so" in err
    assert "nothing was" not in err and "Applied" not in err
    monkeypatch.setattr(store, "audit_has", readable)
    code, out, _ = run("history", "--format", "json")
    assert code == 0 and "acme-norway" in out  # it had committed


def _commit_after_meta_fails(monkeypatch: pytest.MonkeyPatch, key: str, *, after_committing: bool) -> None:
    """The connection fails as the commit after the write of the store's meta value for key
    ends (rotate-key's key check, a seed's mark: their last writes): after the database
    committed (its reply lost) or before."""
    arm, set_meta = _next_commit_fails(monkeypatch, after_committing=after_committing), store.set_meta

    def armed(conn: Any, name: str, value: str) -> None:
        set_meta(conn, name, value)
        if name == key:
            arm()

    monkeypatch.setattr(store, "set_meta", armed)


def _rotation_commit_fails(monkeypatch: pytest.MonkeyPatch, *, after_committing: bool) -> None:
    _commit_after_meta_fails(monkeypatch, "key_check", after_committing=after_committing)


@pytest.mark.parametrize("committed", [True, False], ids=["committed", "not-committed"])
def test_a_seed_whose_commit_reply_is_lost_says_what_the_store_shows(
    run: Callable[..., tuple[int, str, str]], monkeypatch: pytest.MonkeyPatch, committed: bool
) -> None:
    """A server store committed `store seed` and its reply was lost: the run said the driver's
    error, exit 1, and the store held the fixture (after a commit, no exit code may say
    otherwise). It now reads its mark in the store: seeded (exit 0), or nothing was seeded."""
    before = _changed_fleet(run, monkeypatch)
    Path("other.yaml").write_text(LIVE.replace("vbsys", "vbsys_other"), encoding="utf-8")
    _commit_after_meta_fails(monkeypatch, "seed_run", after_committing=committed)
    code, out, err = run("store", "seed", "other.yaml")
    assert CANARY not in out + err
    after = run("store", "dump")[1]
    if committed:
        assert code == 0, err
        assert re.fullmatch(
            r"Seeded 1 connection\(s\) from other.yaml \(the connection failed as the commit ended: "
            r".*Lost connection to server.*; the store shows it committed\)\.\n",
            err,
        ), err
        assert "vbsys_other" in after and after != before
    else:
        assert code == 1 and "Lost connection to server" in err, err
        assert err.rstrip().endswith("; nothing was seeded"), err
        assert "Seeded" not in err and after == before


def test_a_seed_whose_outcome_cannot_be_read_says_so(
    run: Callable[..., tuple[int, str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reply was lost and the store cannot be read either: neither seeded nor unchanged."""
    _changed_fleet(run, monkeypatch)
    Path("other.yaml").write_text(LIVE.replace("vbsys", "vbsys_other"), encoding="utf-8")
    _commit_after_meta_fails(monkeypatch, "seed_run", after_committing=True)

    def unreadable(*_: object) -> bool:
        raise errors.StoreError("store: connection refused")

    monkeypatch.setattr(store, "meta_is", unreadable)
    monkeypatch.setattr(store, "OUTCOME_WAIT_S", 0.5)
    code, out, err = run("store", "seed", "other.yaml")
    assert code == 1 and CANARY not in out + err
    assert "could not be read for 0.5s to tell whether it was. It may have been loaded" in err
    assert "seeding again is safe" in err
    assert "nothing was" not in err and "Seeded" not in err


@pytest.mark.parametrize("command", ["seed", "rotate-key"])
def test_a_commit_is_read_only_once_its_session_has_left_the_server(
    run: Callable[..., tuple[int, str, str]], monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    """While the session that was committing is still on the server its COMMIT may not have
    ended: the outcome read then is not yet the truth (an apply read "nothing was applied" and
    its commit landed). rotate-key read its key check without waiting; it and seed now ask the
    store again until that session is gone, as apply does."""
    _changed_fleet(run, monkeypatch)
    Path("other.yaml").write_text(LIVE.replace("vbsys", "vbsys_other"), encoding="utf-8")
    monkeypatch.setenv("RECONCILER_NEW_STORE_KEY", secrets.Keyring.generate().decode())
    key = "seed_run" if command == "seed" else "key_check"
    _commit_after_meta_fails(monkeypatch, key, after_committing=True)
    sessions, reads = [], []
    session_of = store.session_of

    def noted(conn: Any) -> int | None:
        sessions.append(session_of(conn))
        return 4242  # a session id, as on a server: "still there" for the first two reads

    monkeypatch.setattr(store, "session_of", noted)
    committer_gone = store._committer_gone

    def still_there_twice(conn: Any, st: Any, session: int | None) -> None:
        reads.append(session)
        if len(reads) < 3:
            raise errors.StoreError("store: the session that was committing is still there")
        committer_gone(conn, st, None)

    monkeypatch.setattr(store, "_committer_gone", still_there_twice)
    code, _, err = run("store", command, *(["other.yaml"] if command == "seed" else []))
    assert code == 0 and reads == [4242] * 3, err
    assert "the store shows it committed" in err


@pytest.mark.parametrize("committed", [True, False], ids=["committed", "not-committed"])
def test_a_rotation_whose_commit_reply_is_lost_says_what_the_store_shows(
    run: Callable[..., tuple[int, str, str]], monkeypatch: pytest.MonkeyPatch, committed: bool
) -> None:
    """A server store committed rotate-key and its reply was lost: the run said `error`, exit 1,
    with every password under the new key (a script that kept the key only on success lost
    them all). It now reads the store's key check: rotated (exit 0) or nothing changed."""
    _changed_fleet(run, monkeypatch)
    new_key = secrets.Keyring.generate().decode()
    monkeypatch.setenv("RECONCILER_NEW_STORE_KEY", new_key)
    _rotation_commit_fails(monkeypatch, after_committing=committed)
    code, out, err = run("store", "rotate-key")
    assert CANARY not in out + err and new_key not in out + err
    now = new_key if committed else TEST_KEY
    monkeypatch.setenv("RECONCILER_STORE_KEY", now)
    assert run("store", "dump")[0] == 0  # the store reads with the key the run says it has
    if committed:
        assert code == 0, err
        assert "Re-encrypted 1 password(s) under the key in RECONCILER_NEW_STORE_KEY (the connection " in err
        assert "the store shows it committed); set RECONCILER_STORE_KEY to it now." in err
    else:
        assert code == 1 and "Lost connection to server" in err and "Re-encrypted" not in out + err


def test_a_rotation_whose_outcome_cannot_be_read_says_to_keep_both_keys(
    run: Callable[..., tuple[int, str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reply was lost and the store cannot be read either: neither rotated nor unchanged."""
    _changed_fleet(run, monkeypatch)
    monkeypatch.setenv("RECONCILER_NEW_STORE_KEY", secrets.Keyring.generate().decode())
    _rotation_commit_fails(monkeypatch, after_committing=True)

    def unreadable(*_: object) -> bool:
        raise errors.StoreError("store: connection refused")

    monkeypatch.setattr(store, "meta_is", unreadable)
    monkeypatch.setattr(store, "OUTCOME_WAIT_S", 0.5)
    code, out, err = run("store", "rotate-key")
    assert code == 1 and "Re-encrypted" not in out + err
    assert (
        "could not be read for 0.5s to tell whether it was. It may have been rotated: keep both keys" in err
    )
    assert "nothing was" not in err


def test_leases_whose_commit_reply_is_lost_are_released_not_left(
    run: Callable[..., tuple[int, str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The leases' transaction committed and its reply was lost: the run said the driver's error
    and left its leases for 15 minutes, unnamed (another machine's apply waited them out)."""
    before = _changed_fleet(run, monkeypatch)
    taking = store.try_locks

    def lost_reply(*args: Any, **kwargs: Any) -> Any:
        taking(*args, **kwargs)  # committed
        raise errors.StoreError("store: server closed the connection unexpectedly")

    monkeypatch.setattr(store, "try_locks", lost_reply)
    code, _, err = run("apply", "--auto-approve")
    assert code == 1
    assert err.splitlines()[-1] == (
        "error: store: server closed the connection unexpectedly; the leases it had taken were "
        "released, nothing else was changed"
    )
    assert run("locks", "--format", "json")[1] == "[]\n"
    assert run("store", "dump")[1] == before


def test_a_release_that_fails_once_is_tried_again_on_a_new_connection(
    run: Callable[..., tuple[int, str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pool's connection, idle through the apply's transaction, had been cut: the release
    failed and the leases stayed 15 minutes, with the store there to answer a new one."""
    _changed_fleet(run, monkeypatch)
    releasing, calls = store.release_locks, []

    def cut_once(*args: Any, **kwargs: Any) -> int:
        calls.append(args)
        if len(calls) == 1:
            raise errors.StoreError("store: server closed the connection unexpectedly")
        return releasing(*args, **kwargs)

    monkeypatch.setattr(store, "release_locks", cut_once)
    code, _, err = run("apply", "--auto-approve")
    assert code == 0 and "Applied 1 action(s)" in err and "could not release" not in err, err
    assert len(calls) == 2 and run("locks", "--format", "json")[1] == "[]\n"


def test_identity_decides_whether_a_holder_is_dead() -> None:
    me = locks.holder()
    assert me.machine and me.started
    assert not locks.holder_is_dead(me)  # alive
    here = socket.gethostname()
    dead = subprocess.Popen(["true"])
    began = locks.started(dead.pid)
    dead.wait()
    gone = store.Holder("x", here, dead.pid, None, me.machine, began)
    assert locks.holder_is_dead(gone)
    # The same hostname in another container (boot id or pid namespace): not provably dead.
    assert not locks.holder_is_dead(store.Holder("x", here, dead.pid, None, "other machine", began))
    assert not locks.holder_is_dead(store.Holder("x", here, dead.pid, None, None, None))
    # A pid reused by a process that started at another time: the holder is gone.
    assert locks.holder_is_dead(store.Holder("x", here, os.getpid(), None, me.machine, (me.started or 0) - 1))


def test_apply_on_an_empty_sqlite_file_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RECONCILER_STORE_KEY", TEST_KEY)
    assert cli.main(["apply", "--store", f"sqlite:///{empty}", "--auto-approve"]) == 1
    assert "is not initialised; run `reconciler store init`" in capsys.readouterr().err
    assert empty.read_bytes() == b"" and sorted(p.name for p in tmp_path.iterdir()) == ["empty.db"]


def test_unknown_mariadb_charset_is_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.conftest import SERVER_URLS, require_server

    require_server("mariadb")
    url = sa.make_url(SERVER_URLS["mariadb"]).update_query_dict({"charset": "bogus"})
    monkeypatch.setenv("RECONCILER_STORE_KEY", TEST_KEY)
    assert cli.main(["locks", "--store", url.render_as_string(hide_password=False)]) == 1
    assert "the charset 'bogus' cannot hold every name" in capsys.readouterr().err


def test_store_init_upgrades_a_version_2_store(cli: Cli) -> None:
    seeded(cli, CHANGED)
    engine = sa.create_engine(cli.env["RECONCILER_STORE"], poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:  # back to what a version 2 store held
            for column in ("machine", "started"):
                conn.execute(sa.text(f"ALTER TABLE osr_locks DROP COLUMN {column}"))
            conn.execute(
                store.store_meta.update().where(store.store_meta.c.key == "schema_version").values(value="2")
            )
    finally:
        engine.dispose()
    refused = cli("apply", "--auto-approve")
    assert refused.code == 1 and "has schema version 2; run `reconciler store init`" in refused.err
    assert cli("store", "init").code == 0
    assert cli("apply", "--auto-approve").code == 0
    assert cli("plan", "--detailed-exitcode").code == 0


def test_store_init_upgrades_a_version_3_store_keeping_its_history(cli: Cli) -> None:
    """v4 keeps a rename's previous name in the audit log: a v3 store's entries have none."""
    seeded(cli, CHANGED)
    assert cli("apply", "--auto-approve").code == 0
    before = json.loads(cli("history", "--format", "json").out)
    engine = sa.create_engine(cli.env["RECONCILER_STORE"], poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:  # back to what a version 3 store held
            conn.execute(sa.text("ALTER TABLE osr_audit_log DROP COLUMN previous_name"))
            conn.execute(
                store.store_meta.update().where(store.store_meta.c.key == "schema_version").values(value="3")
            )
    finally:
        engine.dispose()
    refused = cli("history")
    assert refused.code == 1 and "has schema version 3; run `reconciler store init`" in refused.err
    assert cli("store", "init").code == 0
    assert json.loads(cli("history", "--format", "json").out) == before
    cli.write(
        "tenants/acme/acme-norway.yaml",
        CHANGED.replace("name: Visma Oslo", "name: Visma Oslo 2\n    previous_names: [Visma Oslo]"),
    )
    assert cli("apply", "--auto-approve").code == 0
    newest = json.loads(cli("history", "--format", "json").out)[0]
    assert (newest["action"], newest["connection"], newest["previous_name"]) == (
        "rename",
        "Visma Oslo 2",
        "Visma Oslo",
    )


def test_a_portal_change_during_an_apply_s_writes_is_not_overwritten(cli: Cli) -> None:
    """PostgreSQL and MariaDB: a connection made protected (and handed back, unmanaged) in the
    portal after the apply read and compared it in its transaction, and before it wrote, was
    written over: protected false, managed true, its company removed (DESIGN §8). The apply's
    read now locks what it read: the portal's change waits for the commit and then stands."""
    import threading

    seeded(cli, CHANGED)
    url = cli.env["RECONCILER_STORE"]
    proc = _start(cli, "apply", "--auto-approve", env={"RECONCILER_DEBUG_ACTION_DELAY_MS": "1500"})
    wait_until(
        proc,
        lambda: _count(url, store.connections) > 0 and _count(url, store.locks) == 1 and asleep(proc),
        "the apply's transaction",
    )
    portal = threading.Thread(
        target=edit_by_hand, args=(cli, "Visma Oslo"), kwargs={"protected": True, "managed": False}
    )
    portal.start()
    _, err = proc.communicate(timeout=120)
    portal.join(timeout=120)
    assert proc.returncode == 0, err
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                sa.select(
                    store.connections.c.protected,
                    store.connections.c.managed,
                    store.connections.c.database_name,
                ).where(store.connections.c.name == "Visma Oslo")
            ).one()
    finally:
        engine.dispose()
    assert (bool(row.protected), bool(row.managed), row.database_name) == (True, False, "vbsys2")


# Two connections, one renamed in the file (an executemany UPDATE of two rows).
TWO_LIVE = LIVE.replace(
    "        connections:\n          - name: Visma Oslo",
    "        connections:\n          - name: AX Bergen\n            managed: true\n"
    "            integration: dynamics-ax\n            server: ax1\n            database: AX\n"
    "            authentication: windows\n            companies: [{id: DAT}]\n"
    "          - name: Visma Oslo",
    1,
)
RENAMED = CHANGED.replace("  - name: Visma Oslo\n", "  - name: New 3\n    previous_names: [Visma Oslo]\n") + (
    "  - {name: AX Bergen, integration: dynamics-ax, server: ax1, database: AX2, "
    "authentication: windows, companies: [DAT]}\n"
)


@pytest.mark.parametrize("live, tenant", [(LIVE, SLOW), (TWO_LIVE, RENAMED)], ids=["create", "rename"])
def test_a_portal_connection_that_takes_a_planned_name_fails_the_apply_in_the_tool_s_words(
    cli: Cli, live: str, tenant: str
) -> None:
    """A connection the portal adds while an apply writes, under a name the apply creates or
    renames to. PostgreSQL and MariaDB: the apply's batched write fails on the store's unique
    name: exit 1, nothing of the apply written, and one line in the tool's words (it was the
    driver's error text, and on PostgreSQL psycopg's own log line "error ignored terminating
    <psycopg.Pipeline [INERROR] ...>" beside it). SQLite: the portal's write waits for the
    apply, which wins."""
    import threading

    seeded(cli, tenant, live)
    url = cli.env["RECONCILER_STORE"]
    c = store.connections
    engine = sa.create_engine(
        url, poolclass=sa.pool.NullPool, connect_args={"timeout": 120} if "sqlite" in url else {}
    )
    with engine.connect() as conn:  # the portal copies Visma Oslo as "New 3"
        row = dict(conn.execute(sa.select(c).where(c.c.name == "Visma Oslo")).one()._mapping)
    row.update(name="New 3", name_key=spec.identity_key("New 3"))
    del row["id"]
    portal: list[BaseException] = []

    def add() -> None:
        try:
            with engine.begin() as conn:
                conn.execute(c.insert().values(row))
        except sa.exc.IntegrityError as e:
            portal.append(e)

    proc = _start(cli, "apply", "--auto-approve", env={"RECONCILER_DEBUG_ACTION_DELAY_MS": "1500"})
    try:
        wait_until(proc, lambda: _count(url, store.locks) == 1 and asleep(proc), "the apply's transaction")
        thread = threading.Thread(target=add)
        thread.start()
        _, err = proc.communicate(timeout=120)
        thread.join(timeout=120)
    finally:
        engine.dispose()
    if "sqlite" in url:
        assert proc.returncode == 0 and len(portal) == 1, err
        assert "New 3" in dump(cli)
        return
    assert proc.returncode == 1 and not portal, err
    assert err.splitlines() == [
        "error: the live store changed while applying: a connection name this apply writes was "
        "taken meanwhile (by the portal or another writer); nothing was applied, plan again"
    ], err
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(c.c.name, c.c.database_name).order_by(c.c.name)).all()
    finally:
        engine.dispose()
    expected = [("New 3", "vbsys"), ("Visma Oslo", "vbsys")]  # as before, and the portal's New 3
    assert [tuple(r) for r in rows] == ([("AX Bergen", "AX")] if live is TWO_LIVE else []) + expected


@pytest.mark.parametrize(
    "sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=["SIGINT", "SIGTERM", "SIGHUP"]
)
def test_a_signal_as_the_leases_commit_leaves_no_lease_behind(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, sig: signal.Signals
) -> None:
    """A Ctrl-C or a cancelled CI job landing after the leases' transaction committed and
    before the run held them (store.try_locks returned): the leases stayed, held by a process
    that was gone, for their 15 minutes, and the run said "nothing was changed". The signal now
    waits until they are held, and they are released."""
    seeded(cli, CHANGED)
    before = dump(cli)
    real = store.try_locks

    def signalled(*args: Any, **kwargs: Any) -> Any:
        taken = real(*args, **kwargs)
        os.kill(os.getpid(), sig)  # delivered at once: the handler runs before this returns
        return taken

    monkeypatch.setattr(store, "try_locks", signalled)
    result = run_in_process(("apply", "--auto-approve"), env=cli.env, cwd=cli.root)
    assert result.code == 1
    # SIGHUP: a terminal closed at the prompt killed the run, its leases left for 15 minutes
    what = "interrupted" if sig == signal.SIGINT else f"terminated ({signal.Signals(sig).name})"
    assert result.err.splitlines()[-1] == f"error: {what}; nothing was changed", result.err
    assert _count(cli.env["RECONCILER_STORE"], store.locks) == 0
    assert dump(cli) == before


@pytest.mark.parametrize("busy", [True, False], ids=["running-its-commit", "commit-on-its-way"])
def test_a_commit_the_server_is_still_making_is_read_once_its_session_has_left(
    opened: store.Store, store_url: str, busy: bool
) -> None:
    """The connection failed while PostgreSQL still ran the COMMIT (a slow disk, a synchronous
    standby), or while a proxy still held it: the audit row was looked for at once, not found,
    and the run said "nothing was applied, plan again"; the commit landed a moment later. It
    is read once the session that was committing has left the server."""
    from reconciler import audit

    marker = audit.AuditEntry(1, "t", None, "acme", "no", "update", "Visma Oslo", None, "r")
    committing = sa.create_engine(store_url, poolclass=sa.pool.NullPool)
    conn = committing.connect()
    try:
        transaction = conn.begin()
        session = store.session_of(conn)
        if conn.dialect.name == "sqlite":  # in this process: its commit has ended when it returns
            assert session is None
            return
        store.write_audit(conn, [marker])
        sleep = "SELECT pg_sleep(1.5)" if conn.dialect.name == "postgresql" else "SELECT SLEEP(1.5)"

        def commit_late() -> None:  # the server busy until the commit ends, as in a slow COMMIT
            if busy:
                conn.execute(sa.text(sleep))
            else:  # idle in its transaction, the COMMIT yet to arrive
                time.sleep(1.5)
            transaction.commit()
            conn.close()

        late = threading.Thread(target=commit_late)
        late.start()
        try:
            time.sleep(0.5)
            lost = errors.StoreError("store: server closed the connection unexpectedly")
            assert applier._committed(opened, marker, lost, session)
        finally:
            late.join()
    finally:
        conn.close()
        committing.dispose()


def test_a_session_the_server_closed_while_apply_waited_is_a_store_error(
    opened: store.Store, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """MariaDB closed the apply's idle connection (wait_timeout) while it asked for `yes`:
    setting the transaction's isolation level raised PyMySQL's own error, which SQLAlchemy
    passes on unwrapped, and the run said "internal error" with a traceback. The same error as
    the connection went back to the pool after a commit hid the commit."""
    with opened.reading() as conn:
        session = store.session_of(conn)
    if session is None:  # SQLite: no server to close it
        return
    killer = sa.create_engine(store_url, poolclass=sa.pool.NullPool)
    try:
        with killer.connect() as conn:
            kill = "SELECT pg_terminate_backend(:s)" if conn.dialect.name == "postgresql" else "KILL :s"
            conn.execute(sa.text(kill), {"s": session})
    finally:
        killer.dispose()
    time.sleep(0.2)
    with pytest.raises(errors.StoreError), opened.transaction() as conn:
        conn.execute(sa.select(store.store_meta.c.key)).all()
    assert "Traceback" not in capsys.readouterr().err  # the pool's log of it: the error says it


def test_giving_up_on_a_busy_sqlite_store_names_the_leases_held(embedded_cli: Cli) -> None:
    """On SQLite an apply waits for the whole store while another tenant's apply writes: giving
    up said only "another apply is taking the locks or writing", where DESIGN §6 has waiting
    name the holder when it gives up, on every backend (SQLite included)."""
    import sqlite3

    seeded(embedded_cli, CHANGED)
    path = embedded_cli.root / ".reconciler" / "store.db"
    now = store.now_ms()
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute(
            "INSERT INTO osr_locks (id, scope, actor, host, pid, ci_job, acquired_ms, expires_ms) "
            "VALUES ('l-1', 'acme/acme-sweden', 'bob', 'ci-runner-7', 4242, NULL, ?, ?)",
            (now, now + 600_000),
        )
        writer.execute("BEGIN IMMEDIATE")  # bob's apply, writing
        refused = embedded_cli("apply", "--auto-approve", "--lock-timeout", "1s")
    finally:
        writer.rollback()
        writer.close()
    assert refused.code == 1
    assert (
        "acme/acme-norway: another apply is taking the locks or writing (leases held now: lock "
        "l-1 on acme/acme-sweden held by bob on ci-runner-7 (pid 4242) since "
    ) in refused.err, refused.err
