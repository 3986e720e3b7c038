"""The scenarios: which tenants each step touches and how they are edited, the operations run
against one built fleet (Runner), the full run at 1x and the runs of the larger fleets."""

from __future__ import annotations

import contextlib
import functools
import json
import sqlite3
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import fleet, floor
from benchmarks.measure import PYTHON, BenchError, Run, measure
from benchmarks.report import (
    ALTERNATING,
    APPLY,
    APPLY_FLEET,
    APPLY_SAVED,
    DRIFT,
    DRIFT_WRITE,
    FLOOR,
    PLAN_CLEAN,
    PLAN_EDITED,
    PLAN_ONE,
    PLAN_SAVED,
    VALIDATE,
    X2,
    Report,
    Result,
)

EDIT_SHARE = 0.02  # of tenant files edited for "plan, ~2% changed"
DRIFT_SHARE = 0.001  # of live connections changed by hand before drift
MAX_TOMBSTONES = 5  # deletes in the apply set: stays under the default --max-delete 10
ONE_TENANT_RUNS = 3  # the one-tenant plans are short: median of at least this many runs
# Runs of each side where two figures make a ratio, run alternately: each fleet's full plan for
# the growth target (alternate_growth), each plan and its floor for the floor ratios
# (Runner.beside_floor).
ALTERNATING_RUNS = 3


class Runner:
    """Runs operations against one built fleet and records them in the report."""

    def __init__(self, built: fleet.Built, report: Report, *, suffix: str = "", verbose: bool = True) -> None:
        self.built = built
        self.report = report
        self.suffix = suffix
        self.logs = built.root / "logs"
        self.logs.mkdir(exist_ok=True)
        self.floor_s: float | None = None
        self.verbose = verbose
        self.count = 0

    def _log(self, op: str) -> Path:
        self.count += 1
        slug = "".join(ch if ch.isalnum() else "-" for ch in op).strip("-")
        return self.logs / f"{self.count:02d}-{slug}"

    def _record(self, op: str, runs: list[Run], *, reconciler: bool, paired: Result | None = None) -> Result:
        floor_s = paired.seconds if paired else self.floor_s
        result = _median_of(op + self.suffix, runs, floor_s=floor_s, reconciler=reconciler, paired=paired)
        self.report.results.append(result)
        if self.verbose:
            print(
                f"  {result.op:<42} {result.seconds:8.2f} s {result.rss_mib:8.0f} MiB "
                f"{result.cpu_s:8.2f} s CPU"
                + (f"  ({len(runs)} runs, median)" if len(runs) > 1 else "")
                + (f"; the floor beside it {paired.seconds:.2f} s" if paired else ""),
                file=sys.stderr,
                flush=True,
            )
        return result

    def record(self, op: str, runs: list[Run]) -> Result:
        """Runs of the reconciler measured by the caller, as one row (their median)."""
        return self._record(op, runs, reconciler=True)

    def floor_run(self, *, more_secrets: int = 0) -> Run:
        """One run of the floor, checked to have fingerprinted one secret per SQL connection of
        the fleet (more_secrets: connections added by editing files since it was built)."""
        run = measure(
            floor.argv(self.built.root, self.built.url),
            cwd=self.built.root,
            env=self.built.env,
            log=self._log(FLOOR),
        )
        shape = self.built.shape
        sql = sum(c.password is not None for c in fleet.connections(shape, 0))
        expected = (sql * shape.tenants if shape.tenants else 0) + more_secrets
        got = run.out.split()
        if len(got) < 4 or got[2] != str(expected):  # the floor must have done the secrets' work
            raise BenchError(
                f"the floor fingerprinted {got[2] if len(got) > 2 else '?'} "
                f"secrets, expected {expected}: {run.out.strip()}"
            )
        return run

    def floor(self, repeat: int) -> Result:
        return self._floor_row([self.floor_run() for _ in range(repeat)])

    def _floor_row(self, runs: list[Run]) -> Result:
        result = self._record(FLOOR, runs, reconciler=False)
        self.floor_s = result.seconds
        result.floor_s = result.seconds
        return result

    def beside_floor(
        self, op: str, *args: str, runs: int, record_floor: bool = False, more_secrets: int = 0
    ) -> tuple[Result, Run]:
        """op and the floor of the same fleet and store run alternately, floor, op, floor, op,
        ..., runs of each: op's row, judged against the median of those floor runs (its
        `paired`). A VM's speed drifts by tens of percent over the minutes between rows measured
        one after the other (2026-11-28: the one floor row 1.77 s, the plan 5.54 s, and the same
        plan 4.15 s a few minutes later), so a ratio's two figures are measured side by side in
        time, as the growth target's are (alternate_growth). record_floor: the floor runs are
        also this runner's floor row (and its floor_s for the rows after)."""
        floors, done = _alternately(
            runs, lambda: self.floor_run(more_secrets=more_secrets), lambda: self.measured(op, *args)
        )
        paired = (
            self._floor_row(floors)
            if record_floor
            else _median_of(FLOOR + self.suffix, floors, reconciler=False)
        )
        result = self._record(op, done, reconciler=True, paired=paired)
        return result, done[-1]

    def reconciler(
        self, op: str, *args: str, repeat: int = 1, expect: Sequence[int] = (0,), record: bool = True
    ) -> tuple[Result | None, Run]:
        runs = [self.measured(op, *args, expect=expect) for _ in range(repeat)]
        return (self._record(op, runs, reconciler=True) if record else None), runs[-1]

    def measured(self, op: str, *args: str, expect: Sequence[int] = (0,)) -> Run:
        """One run of the reconciler, measured and logged, not recorded (reconciler, record)."""
        argv = [str(fleet.RECONCILER), *args, "--store", self.built.url]
        return measure(argv, cwd=self.built.root, env=self.built.env, log=self._log(op), expect=expect)


def _alternately(runs: int, *steps: Callable[[], Run]) -> list[list[Run]]:
    """Each step's runs, the steps taken in turn (a, b, a, b, ...) runs times: the two figures of
    a ratio side by side in time, so that both meet the VM's drift alike."""
    done: list[list[Run]] = [[] for _ in steps]
    for _ in range(runs):
        for step, got in zip(steps, done, strict=True):
            got.append(step())
    return done


def _median_of(op: str, runs: list[Run], **fields: Any) -> Result:
    """One row of runs: their median seconds and CPU, the highest peak RSS, and each run's
    seconds (their spread: how far to trust a median on a VM whose speed drifts)."""
    return Result(
        op,
        statistics.median(r.seconds for r in runs),
        max(r.rss_mib for r in runs),
        statistics.median(r.cpu_s for r in runs),
        len(runs),
        each_s=tuple(r.seconds for r in runs),
        **fields,
    )


def _plan_json(run: Run) -> dict[str, Any]:
    try:
        return json.loads(run.out)  # type: ignore[no-any-return]
    except json.JSONDecodeError as exc:
        raise BenchError(f"the plan is not JSON ({exc}); first lines: {run.out[:200]!r}") from None


def _changed(plan: dict[str, Any]) -> tuple[int, int]:
    """(tenants with actions, actions) of a JSON plan."""
    actions = [len(t["actions"]) for t in plan["tenants"]]
    return sum(1 for n in actions if n), sum(actions)


# ---------------------------------------------------------------------------------------------
# Which tenants each step touches (pure: the smoke test and the docs rely on it)


@dataclass(frozen=True)
class Sets:
    edited: tuple[int, ...]  # tenant files edited for "plan, ~2% changed"
    one: int  # the tenant of the one-tenant plan
    drift: tuple[int, ...]  # tenants with one connection changed by hand in the store
    apply: tuple[int, ...]  # tenant files edited for the apply


def spread(count: int, start: int, stop: int) -> list[int]:
    """count indices spread evenly over [start, stop)."""
    span = stop - start
    return [start + int((i + 0.5) * span / count) for i in range(min(count, span))]


def choose(shape: fleet.Shape, apply_actions: int) -> Sets:
    t = shape.tenants
    edited = spread(max(1, round(t * EDIT_SHARE)), 0, t)
    taken = set(edited)
    one = next((i for i in range(t // 2, t) if i not in taken), t // 2)
    taken.add(one)
    drift_count = max(1, round(t * shape.connections * DRIFT_SHARE))
    drift = [i for i in spread(drift_count + len(taken), 0, max(1, t // 2)) if i not in taken]
    drift = drift[:drift_count]
    taken.update(drift)
    per_tenant = shape.connections + 1  # every connection changed, and one created
    wanted = -(-apply_actions // per_tenant)
    free = [i for i in range(t - 1, -1, -1) if i not in taken]
    apply = free[: min(wanted, max(1, len(free) // 2))]
    return Sets(tuple(edited), one, tuple(drift), tuple(sorted(apply)))


def edit_for_plan(shape: fleet.Shape, t: int, n: int) -> tuple[list[fleet.Conn], str]:
    """Edit n of the ~2%: one action each (a field change, a removed company, a new connection)."""
    conns = fleet.connections(shape, t)
    kind = n % 3
    if kind == 1 and len(conns[0].companies) >= 2:
        conns[0].companies = conns[0].companies[:-1]
        return conns, "update (removed company, cascade)"
    if kind == 2:
        conns.append(_new_connection(t, "Added"))
        return conns, "create"
    target = conns[min(1, len(conns) - 1)]
    target.allow_others_to_edit = not target.allow_others_to_edit
    target.database = target.database + "_V2"
    return conns, "update (fields)"


def _new_connection(t: int, word: str) -> fleet.Conn:
    return fleet.Conn(
        name=f"{word} Visma {t:05d}",
        integration="visma-business",
        server=f"sqlnew{t:05d}\\VISMA",
        database="vbsys",
        authentication="sql",
        login="osr_reader",
        password=0,
        allow_others_to_edit=False,
        private=False,
        companies=["F9001", "F9002"],
        voucher=None,
        write_back=False,
        protected=False,
    )


def edit_for_apply(shape: fleet.Shape, t: int, j: int, budget: int) -> tuple[list[fleet.Conn], int, int]:
    """Up to budget actions on tenant t (the j-th apply tenant): (connections, actions, deletes)."""
    conns = fleet.connections(shape, t)
    actions = deletes = 0
    if budget > 0:
        conns.append(_new_connection(t, "Applied"))
        actions += 1
    last = shape.connections - 1
    for c, item in enumerate(conns[: shape.connections]):
        if actions >= budget:
            break
        if j < MAX_TOMBSTONES and c == last and last >= 1 and not item.protected:
            item.absent = True
            deletes += 1
        elif c % 5 == 1 and len(item.companies) >= 2:
            item.companies = item.companies[:-1]
        elif c % 5 == 2:
            item.server = f"sqlmoved{t:05d}\\ERP{c % 4}"
        elif c % 5 == 3 and item.password is not None:
            item.password = (item.password + 1) % fleet.secret_count(shape)  # another secret
        else:
            item.private = not item.private
        actions += 1
    return conns, actions, deletes


def hand_edit(built: fleet.Built, tenants: Sequence[int]) -> int:
    """Change one connection per tenant in the store behind the tool's back (drift)."""
    shape = built.shape
    ids = [t * shape.connections + 1 for t in tenants]  # connection 0 of each tenant
    with contextlib.closing(sqlite3.connect(built.db)) as conn, conn:
        conn.executemany(
            "UPDATE osr_connections SET allow_others_to_edit = "
            "1 - allow_others_to_edit, version = version + 1 WHERE id = ?",
            [(i,) for i in ids],
        )
    return len(ids)


# ---------------------------------------------------------------------------------------------
# The run


@dataclass(frozen=True)
class OtherStore:
    """The same tenant files against another store: planned clean before any edit."""

    built: fleet.Built
    op: str
    suffix: str
    database: bool  # another database (its floor is a row, and the apply runs on it too), or
    # another SQLite store of the same fleet


def run_full(
    built: fleet.Built,
    report: Report,
    *,
    repeat: int,
    apply_actions: int,
    profile: Path | None,
    stores: Sequence[OtherStore] = (),
) -> None:
    shape = built.shape
    sets = choose(shape, apply_actions)
    r = Runner(built, report)
    pairs = max(repeat, ALTERNATING_RUNS)  # the floor ratios' runs, each plan beside its floor
    _, run = r.beside_floor(PLAN_CLEAN, "plan", "--format", "json", runs=pairs, record_floor=True)
    clean = _plan_json(run)
    report.facts["plan_clean_tenants"] = len(clean["tenants"])
    report.facts["plan_clean_changed_tenants"], report.facts["plan_clean_actions"] = _changed(clean)
    if report.facts["plan_clean_actions"] or len(clean["tenants"]) != shape.tenants:
        raise BenchError(
            f"the fleet is not in sync: the plan of the unedited fleet has "
            f"{report.facts['plan_clean_actions']} actions over "
            f"{len(clean['tenants'])} tenants (expected 0 over {shape.tenants})"
        )
    r.reconciler(VALIDATE, "validate", repeat=repeat)
    if profile is not None:
        profile_plan(built, profile)
    apply_fleet(r, report)
    for extra in stores:  # each beside the floor read from its own store
        runner = Runner(extra.built, report, suffix=extra.suffix)
        _, run = runner.beside_floor(
            extra.op, "plan", "--format", "json", runs=pairs, record_floor=extra.database
        )
        actions = _changed(_plan_json(run))[1]
        if actions:
            raise BenchError(f"{extra.op + extra.suffix}: the unedited fleet planned {actions} actions")

    kinds: dict[str, int] = {}
    for n, t in enumerate(sets.edited):
        conns, kind = edit_for_plan(shape, t, n)
        fleet.write_tenant(built.root, shape, t, conns)
        kinds[kind] = kinds.get(kind, 0) + 1
    added = kinds.get("create", 0)  # each a new connection with a secret, for the floor too
    _, run = r.beside_floor(PLAN_EDITED, "plan", "--format", "json", runs=pairs, more_secrets=added)
    changed_tenants, actions = _changed(_plan_json(run))
    report.facts.update(
        edited_files=len(sets.edited),
        edit_kinds=kinds,
        plan_edited_changed_tenants=changed_tenants,
        plan_edited_actions=actions,
        plan_edited_share=changed_tenants / shape.tenants,
    )
    if (changed_tenants, actions) != (len(sets.edited), len(sets.edited)):
        raise BenchError(
            f"editing {len(sets.edited)} tenant files (one action each) gave a plan "
            f"with {actions} actions over {changed_tenants} tenants"
        )

    key = shape.key(sets.one)
    r.reconciler(PLAN_ONE, "plan", "--tenant", key, repeat=max(repeat, ONE_TENANT_RUNS))
    report.facts["one_tenant"] = key

    drift_write(r, report)
    report.facts["drift_hand_edits"] = hand_edit(built, sets.drift)
    _, run = r.reconciler(DRIFT, "drift", "--format", "json", repeat=repeat, expect=(2,))
    # drift's JSON lists "connections" (older versions: the plan's "actions"), each with a status.
    drifted = sum(
        1
        for t in _plan_json(run)["tenants"]
        for a in t.get("connections", t.get("actions", []))
        if a.get("status") in ("drift", "drift_and_pending")
    )
    report.facts["drift_reported"] = drifted
    if drifted != len(sets.drift):
        raise BenchError(f"{len(sets.drift)} connections were changed by hand but drift reported {drifted}")

    budget, deletes, files = apply_actions, 0, []
    for j, t in enumerate(sets.apply):
        conns, n, d = edit_for_apply(shape, t, j, budget)
        if n == 0:
            break
        budget -= n
        deletes += d
        files.append(str(fleet.tenant_path(built.root, shape, t).relative_to(built.root)))
        fleet.write_tenant(built.root, shape, t, conns)
    planned = apply_actions - budget
    _, run = r.reconciler(f"{APPLY}, {planned} actions", "apply", *files, "--auto-approve", "--allow-cascade")
    applied = next((line for line in run.err.splitlines() if line.startswith("Applied ")), "")
    report.facts.update(
        apply_files=len(files), apply_actions=planned, apply_deletes=deletes, apply_message=applied
    )
    if not applied.startswith(f"Applied {planned} action(s)"):
        raise BenchError(f"apply of {planned} planned actions said: {applied or run.err[-300:]!r}")
    # Afterwards the applied files must plan clean: everything was done, in one transaction.
    r.reconciler("plan after apply", "plan", *files, "--detailed-exitcode", record=False)
    # The same files applied to the other databases' stores (untouched since their clean plan,
    # no hand edits: the same actions), each checked the same way (issue 14).
    for extra in stores:
        if not extra.database:
            continue
        other = Runner(extra.built, report, suffix=extra.suffix)
        _, run = other.reconciler(
            f"{APPLY}, {planned} actions", "apply", *files, "--auto-approve", "--allow-cascade"
        )
        said = next((line for line in run.err.splitlines() if line.startswith("Applied ")), "")
        report.facts[f"apply_message{extra.suffix.strip()}"] = said
        if not said.startswith(f"Applied {planned} action(s)"):
            raise BenchError(
                f"apply{extra.suffix} of {planned} planned actions said: {said or run.err[-300:]!r}"
            )
        other.reconciler("plan after apply", "plan", *files, "--detailed-exitcode", record=False)


def alternate_growth(small: fleet.Built, large: fleet.Built, report: Report, *, runs: int) -> None:
    """The full plan of the fleet in sync @1x and @2x again, run alternately (1x, 2x, 1x, ...):
    the growth target's two figures, each the median of its runs. The main table's @1x and @2x
    rows lie minutes apart, and a VM's speed drifts over minutes (2026-11-28: 2.30x and 2.36x
    between them, 1.94x by instructions; hand-timed alternating runs 1.49x-2.79x pair by pair):
    alternating, both sizes meet the same drift. small: the @1x fleet as built (run_full edits
    and applies its own)."""
    runners = (Runner(small, report, suffix=ALTERNATING), Runner(large, report, suffix=X2 + ALTERNATING))

    def clean_plan(runner: Runner) -> Run:
        run = runner.measured(PLAN_CLEAN, "plan", "--format", "json")
        actions = _changed(_plan_json(run))[1]
        if actions:
            raise BenchError(f"the unedited fleet{runner.suffix} planned {actions} actions")
        return run

    timed = _alternately(runs, *(functools.partial(clean_plan, runner) for runner in runners))
    for runner, got in zip(runners, timed, strict=True):
        runner.record(PLAN_CLEAN, got)


def run_larger(built: fleet.Built, report: Report, *, suffix: str, repeat: int) -> None:
    """The same tenants, more of them: validate, the full plan, drift and the one-tenant plan
    again."""
    shape = built.shape
    r = Runner(built, report, suffix=suffix)
    r.floor(repeat)
    r.reconciler(VALIDATE, "validate", repeat=repeat)
    _, run = r.reconciler(PLAN_CLEAN, "plan", "--format", "json", repeat=repeat)
    actions = _changed(_plan_json(run))[1]
    report.facts[f"plan_clean_actions{suffix.strip()}"] = actions
    if actions:
        raise BenchError(f"the unedited fleet{suffix} planned {actions} actions")
    r.reconciler(DRIFT, "drift", "--format", "json", repeat=repeat)
    drift_write(r, report, suffix=suffix)
    one = next((i for i in range(shape.tenants // 2, shape.tenants)), 0)
    r.reconciler(PLAN_ONE, "plan", "--tenant", shape.key(one), repeat=max(repeat, ONE_TENANT_RUNS))
    apply_fleet(r, report, suffix=suffix)


def drift_write(r: Runner, report: Report, *, suffix: str = "") -> None:
    """drift --write over a fleet with no hand change (the edited files are pending, not drift):
    every file validated, read and diffed in batches, none edited. Its memory must not grow with
    the fleet either."""
    _, run = r.reconciler(DRIFT_WRITE, "drift", "--write")
    said = run.out.strip().splitlines()[-1:] or [""]
    report.facts[f"drift_write_message{suffix.strip()}"] = said[0]
    if said[0] != "Nothing to accept: no tenant file was changed.":
        raise BenchError(f"drift --write of a fleet without hand changes{suffix} said: {run.out[-300:]!r}")


def apply_fleet(r: Runner, report: Report, *, suffix: str = "") -> None:
    """apply on merge over the fleet in sync, of a fresh plan and of a saved one: every file
    validated, every tenant leased, read and planned in batches, nothing to write. Their memory
    must not grow with the fleet either."""
    _, run = r.reconciler(APPLY_FLEET, "apply", "--auto-approve")
    said = run.err.strip().splitlines()[-1:] or [""]
    report.facts[f"apply_fleet_message{suffix.strip()}"] = said[0]
    if said[0] != "No changes to apply.":
        raise BenchError(f"apply of the fleet in sync{suffix} said: {run.err[-300:]!r}")
    # Apply on merge of the plan reviewed on the pull request: saved (every tenant fingerprinted),
    # then applied (every file checked against it, the fleet read in batches).
    saved = r.built.root / "plan.saved.json"
    r.reconciler(PLAN_SAVED, "plan", "--out", str(saved))
    _, run = r.reconciler(APPLY_SAVED, "apply", "--plan", str(saved), "--auto-approve")
    said = run.err.strip().splitlines()[-1:] or [""]
    report.facts[f"apply_saved_message{suffix.strip()}"] = said[0]
    if said[0] != "No changes to apply.":
        raise BenchError(f"apply --plan of the fleet in sync{suffix} said: {run.err[-300:]!r}")


def profile_plan(built: fleet.Built, out: Path) -> None:
    """The full plan under pyinstrument: a call tree and a flat list of self time."""
    out.mkdir(parents=True, exist_ok=True)
    session = out / "plan.pyisession"
    argv = [
        PYTHON,
        "-m",
        "pyinstrument",
        "-r",
        "pyisession",
        "-o",
        str(session),
        "-m",
        "reconciler",
        "plan",
        "--format",
        "json",
        "--store",
        built.url,
    ]
    print("  profiling the full plan (pyinstrument) ...", file=sys.stderr, flush=True)
    measure(argv, cwd=built.root, env=built.env, log=built.root / "logs" / "profile")
    for name, options in (
        ("plan-tree.txt", ["-p", "processor_options.filter_threshold=0.005"]),
        ("plan-flat.txt", ["-p", "flat=true"]),
    ):
        text = subprocess.run(
            [
                PYTHON,
                "-m",
                "pyinstrument",
                "--load",
                str(session),
                "-r",
                "text",
                "--no-color",
                "--show-all",
                *options,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        (out / name).write_text(text, encoding="utf-8")
    print(f"  profile: {out / 'plan-tree.txt'}, {out / 'plan-flat.txt'}", file=sys.stderr)
