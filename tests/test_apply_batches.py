"""Apply reads and diffs the fleet in batches (issue 15): over several batches it shows the same
plan and applies exactly what the whole-fleet plan says, on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import collections
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from reconciler import desired, errors, stages, store
from tests import test_statements
from tests.test_statements import Run, _assert_store_is_the_plan, _live, _tenant_file

run = test_statements.run  # the fixture: the CLI in this process, on an initialised matrix store

TENANTS = 13  # batches of 4: three full ones and one of a single tenant
SHAPES = ["update", "create", "rename", "delete", "password"]
# Two deletes (t003, t008), in different batches: over --max-delete only across batches.
FLAGS = ("--allow-cascade", "--allow-mass-delete", "--max-delete", "1")


def _fleet(run: Run, root: Path, customer: str) -> Path:
    root.mkdir()
    (root / "live.yaml").write_text(_live(customer, TENANTS), encoding="utf-8")
    assert run("store", "seed", str(root / "live.yaml"))[0] == 0
    for i in range(TENANTS):
        path = root / "tenants" / customer / f"t{i:03d}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_tenant_file(customer, i, SHAPES[i % len(SHAPES)]), encoding="utf-8")
    return root / "tenants"


def _whole_fleet_actions(url: str, root: Path, tenants: Path) -> list[tuple[str, str, str, int]]:
    """(tenant, action, connection, dependents) of the plan made of the whole fleet at once."""
    ctx = stages.Context.make(url)
    with store.Store.open(store.Location.resolve(url, root), readonly=True) as st:
        plan = stages.make_plan(ctx, st, stages.load_desired(ctx, [str(tenants)]), max_delete=1)
    return sorted(
        (t.key, a.action.value, a.connection, len(a.cascade)) for t, a in plan.all_actions() if not a.blocked
    )


def _counted_reads(monkeypatch: pytest.MonkeyPatch) -> collections.Counter[str]:
    """From now on, how many times each tenant file (by name) is read and validated."""
    reads: collections.Counter[str] = collections.Counter()
    load_file = desired.load_file

    def counted(path: Path | str, **kwargs: Any) -> Any:
        reads[Path(path).name] += 1
        return load_file(path, **kwargs)

    monkeypatch.setattr(desired, "load_file", counted)
    return reads


def _saved_plan(run: Run, tmp_path: Path, tenants: Path) -> Path:
    """The fleet's plan saved as the pull request saves it (plan --out), in batches."""
    saved = tmp_path / "plan.json"
    code, _, err = run("plan", str(tenants), "--out", str(saved), "--max-delete", "1")
    assert code == 0, err
    return saved


def test_apply_over_batches_applies_the_whole_fleet_plan(
    run: Run, tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    customer = "b"
    tenants = _fleet(run, tmp_path / "fleet", customer)
    expected = _whole_fleet_actions(store_url, tmp_path, tenants)
    assert len(expected) == TENANTS and sum(n for *_, n in expected) > 0  # cascades included
    # The plan shown with one batch (not on a terminal: shown, then refused; nothing written).
    code, whole, err = run("apply", str(tenants), *FLAGS)
    assert code != 0 and "not on a terminal" in err, err
    code, whole_json, err = run("apply", str(tenants), "--format", "json", *FLAGS)
    assert code != 0 and '"mass_delete"' in whole_json, err
    monkeypatch.setattr(stages, "BATCH_TENANTS", 4)
    code, batched, err = run("apply", str(tenants), *FLAGS)
    assert code != 0 and "not on a terminal" in err, err
    assert batched == whole
    assert run("apply", str(tenants), "--format", "json", *FLAGS)[1] == whole_json
    code, _, err = run("apply", str(tenants), "--auto-approve", *FLAGS[:1], *FLAGS[2:])
    assert code != 0 and "--allow-mass-delete" in err, err  # the guard spans the batches
    assert _whole_fleet_actions(store_url, tmp_path, tenants) == expected  # still nothing written

    code, applied, err = run("apply", str(tenants), "--auto-approve", *FLAGS)
    assert code == 0, err
    assert applied == whole  # the same plan shown, read in the apply's transaction
    assert f"Applied {TENANTS} action(s); {sum(n for *_, n in expected)} dependent(s) deleted" in err
    keys = [f"{customer}/t{i:03d}" for i in range(TENANTS)]
    with store.Store.open(store.Location.resolve(store_url, tmp_path), readonly=True) as st:
        history = st.history(keys, 10 * TENANTS)
    assert sorted((e.key, e.action, e.connection, e.cascade_count) for e in history) == expected
    _assert_store_is_the_plan(store_url, tmp_path / "fleet", customer, TENANTS, SHAPES)
    assert _whole_fleet_actions(store_url, tmp_path, tenants) == []  # converged
    code, _, err = run("apply", str(tenants), "--auto-approve", *FLAGS)
    assert code == 0 and "No changes to apply." in err, err


@pytest.mark.parametrize("auto_approve", [True, False], ids=["auto-approve", "prompt"])
def test_apply_reads_the_files_of_its_first_batch_once(
    run: Run, tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch, auto_approve: bool
) -> None:
    """apply validates every file before the leases, then plans the files in batches under
    them: the tenants of the first batch are kept from the check, not read and validated again
    (a fleet of a batch or fewer is read once), the files past it are read again. What it
    applies is the whole-fleet plan all the same."""
    tenants = _fleet(run, tmp_path / "fleet", "o")
    expected = _whole_fleet_actions(store_url, tmp_path, tenants)
    monkeypatch.setattr(stages, "BATCH_TENANTS", 4)
    monkeypatch.setattr("reconciler.commands.apply._confirm", lambda *_: None)  # "yes"
    reads = _counted_reads(monkeypatch)
    code, _, err = run("apply", str(tenants), *(("--auto-approve",) if auto_approve else ()), *FLAGS)
    assert code == 0, err
    assert reads == {f"t{i:03d}.yaml": 1 if i < 4 else 2 for i in range(TENANTS)}
    keys = [f"o/t{i:03d}" for i in range(TENANTS)]
    with store.Store.open(store.Location.resolve(store_url, tmp_path), readonly=True) as st:
        history = st.history(keys, 10 * TENANTS)
    assert sorted((e.key, e.action, e.connection, e.cascade_count) for e in history) == expected
    _assert_store_is_the_plan(store_url, tmp_path / "fleet", "o", TENANTS, SHAPES)


def test_plan_check_sources_reads_the_files_of_its_first_batch_once(
    run: Run, tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """plan --check-sources validates every file before any server is contacted, then plans
    in batches: as in apply, the first batch's tenants are planned as checked, not read again,
    and the plan is the one plan without source checks shows."""
    from reconciler import sources

    tenants = _fleet(run, tmp_path / "fleet", "q")
    monkeypatch.setattr(stages, "BATCH_TENANTS", 4)
    monkeypatch.setattr(
        sources,
        "check_many",
        lambda requests, **_: [sources.CheckResult(spec.label, ()) for spec, *_ in requests],
    )
    code, plain, err = run("plan", str(tenants), "--max-delete", "1", "--format", "json")
    assert code == 0, err
    reads = _counted_reads(monkeypatch)
    code, checked, err = run("plan", str(tenants), "--check-sources", "--max-delete", "1", "--format", "json")
    assert code == 0, err
    assert reads == {f"t{i:03d}.yaml": 1 if i < 4 else 2 for i in range(TENANTS)}

    def actions(text: str) -> list[tuple[str, Any]]:
        return [(t["customer"] + "/" + t["tenant"], t["actions"]) for t in json.loads(text)["tenants"]]

    assert actions(checked) == actions(plain) and len(actions(plain)) == TENANTS


def test_interactive_shape_over_batches_rereads_what_changes(
    run: Run, tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --auto-approve the plan is read in batches before the transaction, which reads
    the tenants that change again and refuses if one moved (applier.apply)."""
    tenants = _fleet(run, tmp_path / "fleet", "i")
    expected = _whole_fleet_actions(store_url, tmp_path, tenants)
    monkeypatch.setattr(stages, "BATCH_TENANTS", 4)
    monkeypatch.setattr("reconciler.commands.apply._confirm", lambda *_: None)  # "yes"
    code, _, err = run("apply", str(tenants), *FLAGS)
    assert code == 0, err
    keys = [f"i/t{i:03d}" for i in range(TENANTS)]
    with store.Store.open(store.Location.resolve(store_url, tmp_path), readonly=True) as st:
        history = st.history(keys, 10 * TENANTS)
    assert sorted((e.key, e.action, e.connection, e.cascade_count) for e in history) == expected
    _assert_store_is_the_plan(store_url, tmp_path / "fleet", "i", TENANTS, SHAPES)


@pytest.mark.parametrize("auto_approve", [True, False], ids=["auto-approve", "prompt"])
def test_apply_writes_in_batches_of_whole_tenants_all_or_nothing(
    run: Run, tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch, auto_approve: bool
) -> None:
    """A plan that changes a whole fleet (an adoption) is written a few tenants at a time, so
    memory does not hold every action's statements at once, in the one transaction: the store
    ends as the whole plan says, creates audited with the connections they made; a write that
    fails in a later batch leaves nothing of the earlier ones."""
    from reconciler import applier

    monkeypatch.setattr(applier, "WRITE_ACTIONS", 2)  # one action a tenant: two tenants a batch
    monkeypatch.setattr("reconciler.commands.apply._confirm", lambda *_: None)  # "yes"
    flags = ("--auto-approve", *FLAGS) if auto_approve else FLAGS
    write = store.write
    calls: list[int] = []

    def failing_third(*args: Any, **kwargs: Any) -> list[int]:
        calls.append(len(kwargs["updates"]) + len(kwargs["creates"]) + len(kwargs["deletes"]))
        if len(calls) == 3:
            raise errors.StoreError("the third batch's write failed")
        return write(*args, **kwargs)

    tenants = _fleet(run, tmp_path / "fleet", "w")
    expected = _whole_fleet_actions(store_url, tmp_path, tenants)
    monkeypatch.setattr(store, "write", failing_third)
    code, _, err = run("apply", str(tenants), *flags)
    assert code != 0 and "the third batch's write failed" in err, err
    assert calls == [2, 2, 2]
    assert _whole_fleet_actions(store_url, tmp_path, tenants) == expected  # the first two undone
    keys = [f"w/t{i:03d}" for i in range(TENANTS)]
    with store.Store.open(store.Location.resolve(store_url, tmp_path), readonly=True) as st:
        assert st.history(keys, 10 * TENANTS) == []

    monkeypatch.setattr(store, "write", lambda *a, **k: calls.append(-1) or write(*a, **k))
    code, _, err = run("apply", str(tenants), *flags)
    assert code == 0 and f"Applied {TENANTS} action(s)" in err, err
    assert calls.count(-1) == (TENANTS + 1) // 2  # 13 tenants, two a batch: 7 writes
    with store.Store.open(store.Location.resolve(store_url, tmp_path), readonly=True) as st:
        history = st.history(keys, 10 * TENANTS)
        live = st.snapshot(keys)
    assert sorted((e.key, e.action, e.connection, e.cascade_count) for e in history) == expected
    made = {(e.key, e.connection): e.connection_id for e in history if e.action == "create"}
    assert made and made == {
        (key, c.spec.name): c.id
        for key, lt in live.tenants.items()
        for c in lt.connections
        if (key, c.spec.name) in made
    }
    _assert_store_is_the_plan(store_url, tmp_path / "fleet", "w", TENANTS, SHAPES)


def test_a_tenant_not_leased_is_refused_before_anything_is_written(
    run: Run, tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The files are read twice (checked and leased, then planned in batches, from the paths
    checked; all but the first batch's): a file whose tenant was not leased on the first read
    stops the apply. (The key comes from the path, so this guards against a bug, not an edit:
    here the lease is skipped.)"""
    tenants = _fleet(run, tmp_path / "fleet", "m")
    expected = _whole_fleet_actions(store_url, tmp_path, tenants)
    from reconciler.commands import apply as apply_command

    checked = apply_command._checked

    def unleased(*args: Any) -> tuple[list[apply_command.Checked], Any]:
        found, first = checked(*args)
        return [c._replace(key="m/other") if c.key == "m/t009" else c for c in found], first

    monkeypatch.setattr(apply_command, "_checked", unleased)
    monkeypatch.setattr(stages, "BATCH_TENANTS", 4)
    code, _, err = run("apply", str(tenants), "--auto-approve", *FLAGS)
    assert code != 0 and "m/t009 is not locked); nothing was applied" in err, err
    assert _whole_fleet_actions(store_url, tmp_path, tenants) == expected


def test_a_file_edited_after_it_was_checked_is_refused_before_anything_is_written(
    run: Run, tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What apply checked (and, with --plan, compared with the saved plan) is what it plans: a
    file whose bytes differ on the second read (edited in between) stops the apply."""
    tenants = _fleet(run, tmp_path / "fleet", "e")
    expected = _whole_fleet_actions(store_url, tmp_path, tenants)
    from reconciler.commands import apply as apply_command

    checked = apply_command._checked

    def edited_after(*args: Any) -> tuple[list[apply_command.Checked], Any]:
        found, first = checked(*args)
        return [c._replace(digest="0" * 64) if c.key == "e/t010" else c for c in found], first

    monkeypatch.setattr(apply_command, "_checked", edited_after)
    monkeypatch.setattr(stages, "BATCH_TENANTS", 4)
    code, _, err = run("apply", str(tenants), "--auto-approve", *FLAGS)
    assert code != 0 and "t010.yaml: the file changed while apply read it; nothing was applied" in err, err
    assert _whole_fleet_actions(store_url, tmp_path, tenants) == expected


def _by_hand(store_url: str, root: Path, customer: str, tenant: str) -> None:
    """The portal changes a connection's login behind the tool's back."""
    engine = sa.create_engine(store.Location.resolve(store_url, root).url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            tenant_id = (
                sa.select(store.tenants.c.id)
                .join(store.customers, store.tenants.c.customer_id == store.customers.c.id)
                .where(store.customers.c.name == customer, store.tenants.c.name == tenant)
                .scalar_subquery()
            )
            conn.execute(
                store.connections.update()
                .where(store.connections.c.tenant_id == tenant_id, store.connections.c.name == "Beta")
                .values(login="by-hand")
            )
    finally:
        engine.dispose()


@pytest.mark.parametrize("write_tenants", [250, 2], ids=["one-write-batch", "write-batches-of-two"])
def test_interactive_shape_over_batches_refuses_a_tenant_changed_before_the_write(
    run: Run, tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch, write_tenants: int
) -> None:
    """The plan read in batches fingerprints the tenants it changes; one changed by hand while the
    person reads the plan is refused when the transaction reads it again, and nothing is written
    (with write batches of two tenants: not the two batches written before its own either)."""
    from reconciler import applier

    tenants = _fleet(run, tmp_path / "fleet", "h")
    expected = _whole_fleet_actions(store_url, tmp_path, tenants)
    monkeypatch.setattr(stages, "BATCH_TENANTS", 4)
    monkeypatch.setattr(applier, "WRITE_TENANTS", write_tenants)

    def by_hand(*_: object) -> None:  # "yes", after the portal changed h/t005 (an update, batch 2)
        _by_hand(store_url, tmp_path, "h", "t005")

    monkeypatch.setattr("reconciler.commands.apply._confirm", by_hand)
    code, _, err = run("apply", str(tenants), *FLAGS)
    assert code == 1 and "h/t005: the live store changed since the plan was made" in err, err
    keys = [f"h/t{i:03d}" for i in range(TENANTS)]
    with store.Store.open(store.Location.resolve(store_url, tmp_path), readonly=True) as st:
        assert st.history(keys, 10 * TENANTS) == []  # nothing applied, in any tenant
    # Every planned action is still to do, and the hand edit is one more (Beta back to its login).
    assert _whole_fleet_actions(store_url, tmp_path, tenants) == sorted(
        [*expected, ("h/t005", "update", "Beta", 0)]
    )


def test_a_saved_plan_is_applied_over_batches(
    run: Run, tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """apply --plan FILE reads the fleet in batches too (never every tenant at once): the saved
    plan, made over batches, is checked against each batch and applied exactly as saved."""
    customer = "s"
    tenants = _fleet(run, tmp_path / "fleet", customer)
    expected = _whole_fleet_actions(store_url, tmp_path, tenants)
    monkeypatch.setattr(stages, "BATCH_TENANTS", 4)
    saved = tmp_path / "plan.json"
    code, shown, err = run("plan", str(tenants), "--out", str(saved), "--max-delete", "1")
    assert code == 0, err
    with monkeypatch.context() as m:
        m.setattr(stages, "load_desired", lambda *a, **k: pytest.fail("the fleet held at once"))
        code, applied, err = run("apply", "--plan", str(saved), str(tenants), "--auto-approve", *FLAGS)
    assert code == 0, err
    assert f"Applied {TENANTS} action(s); {sum(n for *_, n in expected)} dependent(s) deleted" in err
    summary = shown.split("\nPlan: ")[1].splitlines()[0]
    assert applied.split("\nPlan: ")[1].splitlines()[0] == summary  # the plan saved, shown again
    _assert_store_is_the_plan(store_url, tmp_path / "fleet", customer, TENANTS, SHAPES)
    assert _whole_fleet_actions(store_url, tmp_path, tenants) == []  # converged


@pytest.mark.parametrize("auto_approve", [True, False], ids=["auto-approve", "prompt"])
def test_a_saved_plan_stale_in_a_later_batch_writes_nothing(
    run: Run, tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch, auto_approve: bool
) -> None:
    """A tenant of the third batch changed in the portal since the plan was saved: apply --plan
    refuses the whole plan, names the tenant, and writes nothing in any tenant (the batches
    before it included)."""
    customer = "v" if auto_approve else "w"
    tenants = _fleet(run, tmp_path / "fleet", customer)
    expected = _whole_fleet_actions(store_url, tmp_path, tenants)
    monkeypatch.setattr(stages, "BATCH_TENANTS", 4)
    saved = _saved_plan(run, tmp_path, tenants)
    _by_hand(store_url, tmp_path, customer, "t010")
    monkeypatch.setattr("reconciler.commands.apply._confirm", lambda *a: None)  # "yes"
    flags = ("--auto-approve",) if auto_approve else ()
    code, _, err = run("apply", "--plan", str(saved), str(tenants), *flags, *FLAGS)
    assert code == 1 and f"{customer}/t010: the live store changed since the plan was made" in err, err
    keys = [f"{customer}/t{i:03d}" for i in range(TENANTS)]
    with store.Store.open(store.Location.resolve(store_url, tmp_path), readonly=True) as st:
        assert st.history(keys, 10 * TENANTS) == []
    assert _whole_fleet_actions(store_url, tmp_path, tenants) == sorted(
        [*expected, (f"{customer}/t010", "update", "Beta", 0)]
    )


def test_a_saved_plan_whose_file_changed_is_refused_before_the_leases(
    run: Run, tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tenant file edited after the plan was saved: refused, naming the file, nothing written."""
    customer = "x"
    tenants = _fleet(run, tmp_path / "fleet", customer)
    expected = _whole_fleet_actions(store_url, tmp_path, tenants)
    monkeypatch.setattr(stages, "BATCH_TENANTS", 4)
    saved = _saved_plan(run, tmp_path, tenants)
    edited = tenants / customer / "t011.yaml"
    edited.write_text(edited.read_text(encoding="utf-8") + "# reviewed\n", encoding="utf-8")
    code, _, err = run("apply", "--plan", str(saved), str(tenants), "--auto-approve", *FLAGS)
    # named as messages name files: from the current folder where it is inside it
    shown = stages.shown_path(edited)
    assert code == 1 and f"{customer}/t011: {shown} changed since the plan was made" in err, err
    assert _whole_fleet_actions(store_url, tmp_path, tenants) == expected


def test_source_checks_run_a_batch_at_a_time(
    run: Run, tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """plan and apply --check-sources read the fleet in batches too, and check each batch's
    servers as it is planned: a check that fails in a later batch refuses the apply, fresh or
    saved, with nothing written; --skip-source-checks applies the whole-fleet plan."""
    from reconciler import sources

    customer = "c"
    tenants = _fleet(run, tmp_path / "fleet", customer)
    expected = _whole_fleet_actions(store_url, tmp_path, tenants)
    monkeypatch.setattr(stages, "BATCH_TENANTS", 4)
    saved = _saved_plan(run, tmp_path, tenants)  # no checks
    calls: list[list[str]] = []

    def check_many(requests: list[tuple[sources.SourceSpec, list[str], bool]], **_: object) -> list[object]:
        calls.append([spec.label for spec, *_ in requests])
        return [
            sources.CheckResult(
                spec.label, (f"{spec.label}: login failed",) if spec.label == "c/t010/Beta" else ()
            )
            for spec, *_ in requests
        ]

    monkeypatch.setattr(sources, "check_many", check_many)

    def batched(*args: str) -> tuple[int, str, str]:
        with monkeypatch.context() as m:
            m.setattr(stages, "load_desired", lambda *a, **k: pytest.fail("the fleet held at once"))
            return run(*args)

    code, out, err = batched("plan", str(tenants), "--check-sources", "--format", "json", "--max-delete", "1")
    assert code == 0, err
    planned = {f"{t['customer']}/{t['tenant']}": t["checks"] for t in json.loads(out)["tenants"]}
    assert len(planned) == TENANTS
    for key, checks in planned.items():  # every declared connection of every tenant, checked once
        declared = (tenants / f"{key}.yaml").read_text(encoding="utf-8").count("  - {name: ")
        assert len(checks) == declared, key
        assert all(c["ok"] == (f"{key}/{c['connection']}" != "c/t010/Beta") for c in checks), checks
    tenants_per_call = [{label.rsplit("/", 1)[0] for label in call} for call in calls]
    assert [len(t) for t in tenants_per_call] == [4, 4, 4, 1]  # one call per batch, as it is read

    for args in (["apply", str(tenants)], ["apply", "--plan", str(saved), str(tenants)]):
        code, _, err = batched(*args, "--check-sources", "--auto-approve", *FLAGS)
        assert code == 1 and "source check failed" in err and "c/t010/Beta" in err, err
        assert _whole_fleet_actions(store_url, tmp_path, tenants) == expected  # nothing written
    code, _, err = batched(
        "apply",
        "--plan",
        str(saved),
        str(tenants),
        "--check-sources",
        "--skip-source-checks",
        "--auto-approve",
        *FLAGS,
    )
    assert code == 0, err
    assert f"Applied {TENANTS} action(s); {sum(n for *_, n in expected)} dependent(s) deleted" in err
    _assert_store_is_the_plan(store_url, tmp_path / "fleet", customer, TENANTS, SHAPES)


def test_bad_input_stops_source_checks_before_any_server(
    run: Run, tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """plan and apply --check-sources find every file valid and every tenant known before they
    contact any server: a bad file, or a tenant the store does not know, in the last batch means
    no server is checked, the problem is said with its file, and no plan is shown."""
    from reconciler import sources

    tenants = _fleet(run, tmp_path / "fleet", "k")
    monkeypatch.setattr(stages, "BATCH_TENANTS", 4)
    calls: list[int] = []

    def check_many(requests: list[tuple[sources.SourceSpec, list[str], bool]], **_: object) -> list[object]:
        calls.append(len(requests))
        return [sources.CheckResult(spec.label, ()) for spec, *_ in requests]

    monkeypatch.setattr(sources, "check_many", check_many)
    last = tenants / "k" / "t012.yaml"  # the last batch of four
    good = last.read_text(encoding="utf-8")
    unknown = tenants / "k" / "t099.yaml"  # sorts after every other file: the last batch too
    for bad, message in (
        (lambda: last.write_text(good.replace("server: sql01", "server: 'sql01;x'"), "utf-8"), "t012.yaml"),
        (lambda: unknown.write_text(good.replace("t012", "t099"), "utf-8"), "tenant k/t099 does not exist"),
    ):
        last.write_text(good, "utf-8")
        bad()
        for command in (["apply", "--auto-approve", *FLAGS], ["plan", "--max-delete", "1"]):
            code, out, err = run(command[0], str(tenants), "--check-sources", *command[1:])
            assert code == 1 and message in err and out == "", err
            assert calls == [], command  # nothing contacted
