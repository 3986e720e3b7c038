"""Safe operations through the CLI: saved plans, leases, atomicity under kill -9, history."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from reconciler import errors, locks, planfile, secrets, spec, store
from reconciler.commands import apply as apply_command
from tests.conftest import ALWAYS_PROCESS, RECONCILER, TEST_KEY, Cli, run_in_process
from tests.test_cli import TENANT, dump, edit_by_hand, seeded

CHANGED = TENANT.replace("[F0001, F0002]", "[F0001, F0003]").replace("database: vbsys", "database: vbsys2")


def test_saved_plan_applies_when_nothing_changed(cli: Cli) -> None:
    seeded(cli, CHANGED)
    made = cli("plan", "--out", "plan.json")
    assert made.code == 0 and "Saved the plan to plan.json" in made.err
    saved = json.loads((cli.root / "plan.json").read_text())
    assert saved["plan"]["summary"]["update"] == 1
    done = cli("apply", "--plan", "plan.json", "--auto-approve", "--allow-cascade")
    assert done.code == 0, done.err
    assert cli("plan", "--detailed-exitcode").code == 0


def test_a_plan_that_could_not_be_shown_is_not_saved(cli: Cli) -> None:
    """plan --out whose output cannot be written (`> /dev/full`, a closed pipe) exits 1: no
    plan file is left for apply --plan, and one saved before stays as it was (DESIGN §6)."""
    seeded(cli, CHANGED)
    for before in (None, '{"kind": "osr-reconciler-saved-plan", "an earlier": "plan"}'):
        if before is not None:
            cli.write("plan.json", before)
        with open("/dev/full", "w") as full:
            done = subprocess.run(
                [RECONCILER, "plan", "--out", "plan.json"],
                cwd=cli.root,
                env=cli.env,
                stdout=full,
                stderr=subprocess.PIPE,
                text=True,
            )
        assert done.returncode == 1 and "cannot write to standard output" in done.stderr
        assert "Saved the plan" not in done.stderr
        path = cli.root / "plan.json"
        assert (path.read_text() if path.exists() else None) == before
        assert sorted(p.name for p in cli.root.glob("plan.json*")) == (
            [] if before is None else ["plan.json"]
        )
        assert not list(cli.root.glob(".osr-plan-*"))  # no temporary file left either


def test_saved_plan_refused_when_tenant_file_changed(cli: Cli) -> None:
    seeded(cli, CHANGED)
    assert cli("plan", "--out", "plan.json").code == 0
    cli.write("tenants/acme/acme-norway.yaml", CHANGED + "    private: true\n")
    before = dump(cli)
    refused = cli("apply", "--plan", "plan.json", "--auto-approve", "--allow-cascade")
    assert refused.code == 1
    assert "acme/acme-norway: tenants/acme/acme-norway.yaml changed since the plan was made" in refused.err
    assert dump(cli) == before


def test_saved_plan_refused_when_live_changed(cli: Cli) -> None:
    seeded(cli, CHANGED)
    assert cli("plan", "--out", "plan.json").code == 0
    edit_by_hand(cli, "Visma Oslo", login="someone_else")
    before = dump(cli)
    refused = cli("apply", "--plan", "plan.json", "--auto-approve", "--allow-cascade")
    assert refused.code == 1
    assert "acme/acme-norway: the live store changed since the plan was made" in refused.err
    assert dump(cli) == before


def test_saved_plan_refused_when_expired(cli: Cli) -> None:
    seeded(cli, CHANGED)
    assert cli("plan", "--out", "plan.json", "--plan-ttl", "1s").code == 0
    time.sleep(1.2)
    refused = cli("apply", "--plan", "plan.json", "--auto-approve", "--allow-cascade")
    assert refused.code == 1 and "the plan expired" in refused.err


@pytest.mark.parametrize("damage", ["truncate", "tamper"])
def test_saved_plan_refused_when_damaged(cli: Cli, damage: str) -> None:
    seeded(cli, CHANGED)
    assert cli("plan", "--out", "plan.json").code == 0
    path = cli.root / "plan.json"
    text = path.read_text()
    if damage == "truncate":
        path.write_text(text[: len(text) // 2])
        expected = "was it truncated?"
    else:
        path.write_text(text.replace('"update"', '"create"', 1))
        expected = "the plan file was altered, or made for another store"
    before = dump(cli)
    refused = cli("apply", "--plan", "plan.json", "--auto-approve", "--allow-cascade")
    assert refused.code == 1 and expected in refused.err
    assert dump(cli) == before


def test_saved_plan_from_another_store_refused(cli: Cli, tmp_path: Path) -> None:
    seeded(cli, CHANGED)
    other = {"RECONCILER_STORE": f"sqlite:///{tmp_path / 'other.db'}"}
    assert cli("store", "init", env=other).code == 0
    assert cli("store", "seed", "live.yaml", env=other).code == 0
    assert cli("plan", "--out", "plan.json", env=other).code == 0
    refused = cli("apply", "--plan", "plan.json", "--auto-approve", "--allow-cascade")
    assert refused.code == 1 and "the plan was made for another store" in refused.err


def _insert_lock(
    url: str,
    *,
    pid: int,
    host: str,
    expires_in_ms: int,
    machine: str | None = None,
    started: int | None = None,
) -> str:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    now = store.now_ms()
    try:
        with engine.begin() as conn:
            conn.execute(
                store.locks.insert().values(
                    id="11111111-2222-3333-4444-555555555555",
                    scope="acme/acme-norway",
                    actor="alice",
                    host=host,
                    pid=pid,
                    ci_job="https://ci.example/job/7",
                    acquired_ms=now,
                    expires_ms=now + expires_in_ms,
                    machine=machine,
                    started=started,
                )
            )
    finally:
        engine.dispose()
    return "11111111-2222-3333-4444-555555555555"


def test_held_lock_refuses_then_unlock_releases(cli: Cli) -> None:
    seeded(cli, CHANGED)
    lock_id = _insert_lock(cli.env["RECONCILER_STORE"], pid=1, host="other-host", expires_in_ms=600_000)
    started = time.monotonic()
    refused = cli("apply", "--auto-approve", "--allow-cascade", "--lock-timeout", "1s")
    assert time.monotonic() - started >= 1.0
    assert refused.code == 1
    assert (
        f"lock {lock_id} on acme/acme-norway held by alice on other-host (pid 1, CI job "
        "https://ci.example/job/7)"
    ) in refused.err
    assert f"reconciler unlock {lock_id}" in refused.err
    released = cli("unlock", lock_id)
    assert released.code == 0, released.err
    assert cli("unlock", lock_id).code == 1
    assert cli("apply", "--auto-approve", "--allow-cascade").code == 0


def test_unlock_of_a_lock_whose_holder_still_runs_here_says_so(cli: Cli) -> None:
    """unlock LOCK_ID released the lease of a process that still runs on this machine without
    a word (this test's own process stands for it); elsewhere, or gone, there is nothing to say."""
    seeded(cli)
    url = cli.env["RECONCILER_STORE"]
    me = os.getpid()
    lock_id = _insert_lock(
        url,
        pid=me,
        host=socket.gethostname(),
        expires_in_ms=600_000,
        machine=locks.machine(),
        started=locks.started(me),
    )
    released = cli("unlock", lock_id)
    assert released.code == 0, released.err
    assert released.err.splitlines()[1:] == [
        f"warning: its holder, pid {me} on this machine, is still running: an apply that loses its "
        "lock stops before it commits"
    ]
    _insert_lock(url, pid=1, host="other-host", expires_in_ms=600_000)
    quiet = cli("unlock", lock_id)
    assert quiet.code == 0 and "warning" not in quiet.err, quiet.err


def test_expired_lease_is_taken_over(cli: Cli) -> None:
    seeded(cli, CHANGED)
    _insert_lock(cli.env["RECONCILER_STORE"], pid=1, host="other-host", expires_in_ms=-1)
    assert cli("apply", "--auto-approve", "--allow-cascade").code == 0


def test_lease_of_dead_process_on_this_host_is_taken_over(cli: Cli) -> None:
    seeded(cli, CHANGED)
    dead = subprocess.Popen(["true"])
    began = locks.started(dead.pid)
    dead.wait()
    _insert_lock(
        cli.env["RECONCILER_STORE"],
        pid=dead.pid,
        host=socket.gethostname(),
        expires_in_ms=600_000,
        machine=locks.machine(),
        started=began,
    )
    assert cli("apply", "--auto-approve", "--allow-cascade").code == 0


def _lock_rows(url: str) -> int:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return len(conn.execute(sa.select(store.locks)).all())
    finally:
        engine.dispose()


def _proc_file(pid: int, name: str) -> str:
    try:
        return Path(f"/proc/{pid}/{name}").read_text(encoding="ascii", errors="replace")
    except OSError:
        return ""


def asleep(proc: subprocess.Popen[str]) -> bool:
    """Linux: the process's main thread sleeps in time.sleep (clock_nanosleep), not in a read,
    a write or a query: /proc/PID/wchan names the kernel function it waits in."""
    return "nanosleep" in _proc_file(proc.pid, "wchan")


def catches(proc: subprocess.Popen[str], sig: signal.Signals) -> bool:
    """Linux: the process has a handler installed for sig (the SigCgt mask of /proc/PID/status)."""
    for line in _proc_file(proc.pid, "status").splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (sig - 1) & 1)
    return False


def wait_until(
    proc: subprocess.Popen[str], ready: Callable[[], bool], what: str, timeout: float = 60
) -> None:
    """Poll ready() every 20 ms until it holds; fail if proc exits first or the deadline passes.

    The readiness handshake before a signal (instead of a fixed sleep, which a loaded machine
    outruns while the process is still importing). Without /proc (not Linux) it falls back to
    the fixed sleep these tests once used."""
    if not Path(f"/proc/{proc.pid}").exists():
        time.sleep(3)
        return
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            _, err = proc.communicate()
            pytest.fail(f"the process exited {proc.returncode} before {what}: {err}")
        assert time.monotonic() < deadline, f"timed out ({timeout:g} s) waiting for {what}"
        time.sleep(0.02)


def wait_until_waiting_for_a_lock(proc: subprocess.Popen[str], timeout: float = 60) -> None:
    """Until an apply waits in the lease loop for a lock another holds (locks._acquire): it has
    installed the lease's SIGTERM handler (locks.leases; Python installs none by default, and
    nothing before the lease does), and sleeps between two tries, so it has tried at least once
    and knows the holder. A signal now lands where a user's Ctrl-C would while waiting."""
    wait_until(
        proc,
        lambda: catches(proc, signal.SIGTERM) and asleep(proc),
        "the apply to wait for the lock",
        timeout,
    )


@pytest.mark.subprocess  # processes signalled and killed, and the applies that follow them
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_releases_the_lease(cli: Cli, sig: signal.Signals) -> None:
    seeded(cli, CHANGED)
    # Another apply holds the lock, so ours waits inside the lease loop; then we signal it.
    other = _insert_lock(cli.env["RECONCILER_STORE"], pid=1, host="other-host", expires_in_ms=600_000)
    proc = subprocess.Popen(
        [
            RECONCILER,
            "apply",
            "--auto-approve",
            "--allow-cascade",
            "--lock-timeout",
            "60s",
            "--tenant",
            "acme/acme-norway",
        ],
        cwd=cli.root,
        env=cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_until_waiting_for_a_lock(proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1 and "Traceback" not in err  # SIGTERM exited 143, saying nothing
    assert "nothing was changed" in err.splitlines()[-1], err
    assert _lock_rows(cli.env["RECONCILER_STORE"]) == 1  # only the other holder's row remains
    assert cli("unlock", other).code == 0


@pytest.mark.subprocess
def test_kill_9_at_any_moment_leaves_before_or_after(cli: Cli) -> None:
    """SIGKILL applies at random moments: the store is exactly as before or as after, never between.

    RECONCILER_DEBUG_ACTION_DELAY_MS stretches the transaction so that kills land inside it too.
    """
    new = "".join(
        f"  - {{name: New {i}, integration: dynamics-ax, server: ax{i}, database: AX, "
        f"authentication: windows, companies: [DAT, NOR]}}\n"
        for i in range(8)
    )
    forward = CHANGED + new
    reverse = TENANT.replace("connections:\n", "prune: true\nconnections:\n", 1)
    seeded(cli, forward)
    before = dump(cli)

    def reset() -> None:
        cli.write("tenants/acme/acme-norway.yaml", reverse)
        assert cli("apply", "--auto-approve", "--allow-cascade", "--allow-mass-delete").code == 0
        assert cli("store", "seed", "live.yaml").code == 0
        cli.write("tenants/acme/acme-norway.yaml", forward)
        assert dump(cli) == before

    assert cli("apply", "--auto-approve", "--allow-cascade").code == 0
    after = dump(cli)
    assert after != before
    reset()

    rng = random.Random(int(os.environ.get("KILL_SEED", "20261125")))
    runs = int(os.environ.get("KILL_RUNS", "10"))
    seen = {"before": 0, "after": 0}
    slow = {**cli.env, "RECONCILER_DEBUG_ACTION_DELAY_MS": "60"}
    for _ in range(runs):
        proc = subprocess.Popen(
            [RECONCILER, "apply", "--auto-approve", "--allow-cascade"],
            cwd=cli.root,
            env=slow,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.3, 2.0))
        proc.kill()
        proc.wait()
        now = dump(cli)
        assert now in (before, after), "a killed apply left the store half-applied"
        if now == after:
            seen["after"] += 1
            reset()
        else:
            seen["before"] += 1
    # The next apply converges, taking over the dead process's lease.
    final = cli("apply", "--auto-approve", "--allow-cascade")
    assert final.code == 0, final.err
    assert dump(cli) == after
    assert cli("plan", "--detailed-exitcode").code == 0
    assert seen["before"] + seen["after"] == runs


def test_saved_plan_refused_when_it_would_do_something_else(cli: Cli) -> None:
    """Saved where a secret was missing (a pull request), applied where it is set: a password
    change it could not compare is accepted (DESIGN §10), any other difference is not."""
    seeded(cli, CHANGED)
    assert cli("plan", "--out", "plan.json", env={"OSR_CANARY": ""}).code == 0
    saved = json.loads((cli.root / "plan.json").read_text())
    saved["saved"]["uncompared_passwords"] = []  # as if it had compared it: now it differs
    body = {k: v for k, v in saved.items() if k != "signature"}
    saved["signature"] = secrets.Keyring(TEST_KEY.encode()).sign(planfile._canonical(body))
    (cli.root / "plan.json").write_text(json.dumps(saved))
    before = dump(cli)
    refused = cli(
        "apply",
        "--plan",
        "plan.json",
        "--auto-approve",
        "--allow-cascade",
        env={"OSR_CANARY": "a-new-password"},
    )
    assert refused.code == 1
    assert (
        "the plan made now differs from the saved plan at ['acme/acme-norway'][0]['changes']" in refused.err
    )
    assert dump(cli) == before


def test_optimistic_version_aborts_the_whole_transaction(cli: Cli) -> None:
    seeded(cli)
    os.environ["RECONCILER_STORE_KEY"] = TEST_KEY
    try:
        st = store.Store.open(store.Location.resolve(cli.env["RECONCILER_STORE"], cli.root), readonly=False)
        live = st.snapshot(["acme/acme-norway"])
        conn = live.tenants["acme/acme-norway"].connections[0]
        before = dump(cli)
        with pytest.raises(errors.ConflictError, match="version mismatch"), st.transaction() as tx:
            store.set_companies(tx, conn.id, ["F0001"])  # a first write, then a stale version:
            store.update_connection(
                tx,
                conn.id,
                conn.version + 5,
                conn.spec,
                password=store.KEEP,
                managed=True,
                applied_fp=None,
                label="acme/acme-norway/Visma Oslo",
            )
        st.close()
        assert dump(cli) == before  # the first write was rolled back too
    finally:
        del os.environ["RECONCILER_STORE_KEY"]


def test_apply_never_deletes_a_dependent_the_plan_did_not_list(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dependent that appears between reading and deleting stops the whole transaction."""
    seeded(cli)
    monkeypatch.setenv("RECONCILER_STORE_KEY", TEST_KEY)
    st = store.Store.open(store.Location.resolve(cli.env["RECONCILER_STORE"], cli.root), readonly=False)
    try:
        conn = st.snapshot(["acme/acme-norway"], dependents=True).tenants["acme/acme-norway"].connections[0]
        listed = {d.row_id for c in conn.companies for d in c.dependents}
        assert len(listed) == 2
        before = dump(cli)
        with (
            pytest.raises(
                errors.ConflictError, match="1 dependent\\(s\\) appeared that the plan did not list"
            ),
            st.transaction() as tx,
        ):
            store.add_dependents(tx, conn.id, "F0001", [(spec.DependentKind.REPORT, "New report")])
            store.delete_connection(
                tx, conn.id, conn.version, label="acme/acme-norway/Visma Oslo", listed=listed
            )
        assert dump(cli) == before
        with st.transaction() as tx:  # what was listed is deleted
            store.delete_connection(tx, conn.id, conn.version, label="x", listed=listed)
        assert "Visma Oslo" not in dump(cli)
    finally:
        st.close()


def test_saved_plan_cannot_be_narrowed_by_paths(cli: Cli) -> None:
    seeded(cli, CHANGED)
    assert cli("plan", "--out", "plan.json").code == 0
    refused = cli("apply", "--plan", "plan.json", "--tenant", "acme/acme-norway", "--auto-approve")
    assert refused.code == 1
    assert "--plan applies the saved plan's own tenants, which --tenant cannot narrow" in refused.err


def test_a_saved_plan_of_files_outside_the_tenant_files_is_refused(cli: Cli) -> None:
    """A pull request's job signs the plan and runs code its author controls (DESIGN §10): a
    plan of `fixtures/acme/acme-norway.yaml` (committed beside tenants/, reviewed as a test
    file) or of any file the apply job can read was applied on merge, under a clean commit."""
    seeded(cli)  # tenants/ as the store is: nothing to apply
    cli.write("fixtures/acme/acme-norway.yaml", CHANGED)
    assert cli("plan", "fixtures/acme/acme-norway.yaml", "--out", "plan.json").code == 0
    before = dump(cli)
    for extra in ((), ("tenants",), ("tenants/acme/acme-norway.yaml",)):
        refused = cli("apply", "--plan", "plan.json", *extra, "--auto-approve", "--allow-cascade")
        assert refused.code == 1, refused.both
        where = extra[0] if extra else "tenants"
        assert (
            "fixtures/acme/acme-norway.yaml: the saved plan applies this file, which is not a tenant "
            f"file under {where} (the files an apply may change)"
        ) in refused.err, refused.err
        assert dump(cli) == before
    # Given as PATH, its folder holds the tenant files the plan may apply.
    done = cli("apply", "--plan", "plan.json", "fixtures", "--auto-approve", "--allow-cascade")
    assert done.code == 0, done.err
    assert dump(cli) != before


def test_plan_out_to_a_missing_folder_is_a_clear_error(cli: Cli) -> None:
    seeded(cli, CHANGED)
    result = cli("plan", "--out", "no/such/folder/plan.json")
    assert result.code == 1
    assert "--out no/such/folder/plan.json: cannot write the plan (No such file or directory)" in result.err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_as_plan_out_saves_does_not_say_nothing_was_changed(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, sig: signal.Signals
) -> None:
    """A Ctrl-C landing just after the saved plan was renamed into place: exit 1 with
    "interrupted; nothing was changed", and a signed plan that apply --plan applied. From the
    rename on the plan is saved, and the run ends as saved."""
    seeded(cli, CHANGED)
    rename = Path.replace

    def then_signalled(self: Path, target: Any) -> Path:
        done = rename(self, target)
        os.kill(os.getpid(), sig)
        return done

    monkeypatch.setattr(Path, "replace", then_signalled)
    result = run_in_process(("plan", "--out", "plan.json"), env=cli.env, cwd=cli.root)
    monkeypatch.undo()
    assert result.code == 0, result.err
    assert "nothing was changed" not in result.err
    assert (cli.root / "plan.json").exists()


@pytest.mark.skipif(ALWAYS_PROCESS, reason="the prompt is answered by this process")
def test_a_saved_plan_that_expires_while_the_prompt_waits_is_refused(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A person reads the plan for longer than --plan-ttl, then answers yes."""
    seeded(cli, CHANGED)
    assert cli("plan", "--out", "plan.json", "--plan-ttl", "2s").code == 0
    before = dump(cli)
    monkeypatch.setattr(apply_command, "_confirm", lambda *_: time.sleep(2.5))
    refused = cli("apply", "--plan", "plan.json", "--allow-cascade")
    assert refused.code == 1, refused.err
    assert "the plan expired" in refused.err
    assert dump(cli) == before


def test_a_saved_plan_that_expires_while_apply_waits_for_a_lock_is_refused(cli: Cli) -> None:
    """The expiry was checked when the plan file was read, before the wait: an apply that
    waited for another's locks applied a plan expired by then."""
    seeded(cli, CHANGED)
    assert cli("plan", "--out", "plan.json", "--plan-ttl", "4s").code == 0
    _insert_lock(cli.env["RECONCILER_STORE"], pid=1, host="other-host", expires_in_ms=8000)
    waited = cli("apply", "--plan", "plan.json", "--auto-approve", "--allow-cascade", "--lock-timeout", "60s")
    assert waited.code == 1, waited.err
    assert "the plan expired" in waited.err
    assert "No history yet." in cli("history").err
