"""`make bench` works end to end, at a tiny size (--quick): every operation measured, plans as
expected, every target printed with its figures and ratio.

No timing assertions: this proves the harness, not the speed (docs/benchmarks.md has figures).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks import bench, fleet, floor, report, scenario
from tests.conftest import CANARY, DATABASES, IN_CI, SERVER_URLS, _server_problem

Run = tuple[subprocess.CompletedProcess[str], dict[str, Any]]
ROOT = Path(__file__).resolve().parent.parent
# The PostgreSQL rows run where the store tests run on PostgreSQL (RECONCILER_TEST_DATABASES), on
# the same server (RECONCILER_TEST_POSTGRESQL_URL). Not reachable: on a laptop the benchmark skips
# its PostgreSQL rows and says so (tested below); under CI=true it is an error, and so here.
ASKED = "postgresql" in DATABASES
PG_URL = SERVER_URLS["postgresql"]
OPERATIONS = [
    report.FLOOR,
    report.VALIDATE,
    report.PLAN_CLEAN,
    report.PLAN_GROWN,
    report.PLAN_EDITED,
    report.PLAN_ONE,
    report.DRIFT,
    report.DRIFT_WRITE,
    report.APPLY,
    report.PLAN_SAVED,
    report.APPLY_FLEET,
    report.APPLY_SAVED,
    *[
        op + size
        for size in (report.X2, report.X4)
        for op in (
            report.FLOOR,
            report.VALIDATE,
            report.PLAN_CLEAN,
            report.DRIFT,
            report.DRIFT_WRITE,
            report.PLAN_ONE,
            report.PLAN_SAVED,
            report.APPLY_FLEET,
            report.APPLY_SAVED,
        )
    ],
    report.PLAN_CLEAN + report.ALTERNATING,
    report.PLAN_CLEAN + report.X2 + report.ALTERNATING,
]
PG_OPERATIONS = [report.FLOOR + report.PG, report.PLAN_CLEAN + report.PG]


def _postgresql() -> bool:
    """Whether the run below measures the PostgreSQL rows."""
    if not ASKED:
        return False
    problem = _server_problem("postgresql")
    if problem is not None and IN_CI:
        pytest.fail(f"CI=true: postgresql at {PG_URL} is not reachable ({problem})", pytrace=False)
    return problem is None


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    tmp = tmp_path_factory.mktemp("bench")
    out = tmp / "bench.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.bench",
            "--quick",
            "--workdir",
            str(tmp / "work"),
            "--json",
            str(out),
            *(["--postgresql", PG_URL] if ASKED else ["--no-postgresql"]),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc, json.loads(out.read_text(encoding="utf-8"))


def test_main_table_has_every_operation(run: Run) -> None:
    proc, data = run
    ops = [r["op"] for r in data["results"]]
    for op in OPERATIONS + (PG_OPERATIONS if _postgresql() else []):
        assert any(o.startswith(op) for o in ops), f"{op!r} not measured: {ops}"
        assert any(line.startswith(op) for line in proc.stdout.splitlines()), f"{op!r} not printed"
    assert all(r["seconds"] > 0 and r["rss_mib"] > 0 for r in data["results"])


def test_main_plans_clean_then_two_percent(run: Run) -> None:
    _, data = run
    facts = data["facts"]
    assert facts["plan_clean_tenants"] == 50
    assert facts["plan_clean_actions"] == 0
    assert facts["edited_files"] == 1
    assert facts["plan_edited_changed_tenants"] == 1
    assert facts["plan_edited_actions"] == 1
    assert facts["plan_edited_share"] == pytest.approx(0.02)
    assert facts["drift_reported"] == facts["drift_hand_edits"] >= 1
    assert facts["apply_message"].startswith(f"Applied {facts['apply_actions']} action(s)")
    assert facts["plan_clean_actions@2x"] == facts["plan_clean_actions@4x"] == 0
    assert facts["apply_fleet_message"] == facts["apply_fleet_message@4x"] == "No changes to apply."
    assert facts["apply_saved_message"] == facts["apply_saved_message@4x"] == "No changes to apply."
    assert (
        facts["drift_write_message"]
        == facts["drift_write_message@4x"]
        == ("Nothing to accept: no tenant file was changed.")
    )


def test_main_checks_every_target_with_figures_and_ratio(run: Run) -> None:
    proc, data = run
    names = [c["name"] for c in data["checks"]]
    measured = _postgresql()
    assert len(names) == (19 if measured else 18), names  # 5 of them start-up targets
    assert any("PostgreSQL" in n for n in names) == measured
    assert sum(n.startswith("start-up: ") for n in names) == 5
    # A target not measured is said (SKIP, with why), never left out of the count.
    assert [s["name"] for s in data["skipped"]] == ([] if measured else [report.PG_TARGET])
    if not measured:
        why = data["skipped"][0]["reason"]
        assert f"SKIP  {report.PG_TARGET}: not measured ({why})" in proc.stdout.splitlines()
    failed = sum(not c["pass"] for c in data["checks"])
    summary = f"{len(names) - failed} of {len(names) + len(data['skipped'])} targets passed"
    assert summary in proc.stdout.splitlines()[-1], proc.stdout
    for check in data["checks"]:
        verdict = "PASS" if check["pass"] else "FAIL"
        assert check["pass"] == (check["value"] <= check["limit"])
        line = next(
            line for line in proc.stdout.splitlines() if line.startswith(f"{verdict}  {check['name']}")
        )
        printed = re.search(r": (\d+\.\d\d)", line)  # the JSON keeps 3 decimals, the line 2
        assert printed and abs(float(printed.group(1)) - check["value"]) <= 0.0051, line
        if check["name"].startswith(("full plan", "growth", "plan peak", "drift peak")):
            # the figures the ratio is made of, side by side: "(1.05 s ÷ 0.12 s; by CPU ...)"
            assert re.search(r"\(\d+(\.\d+)? (s|MiB) ÷ \d+(\.\d+)? (s|MiB)[;)]", line), line


def test_growth_is_judged_on_the_plans_run_alternately(run: Run) -> None:
    """The main table's @1x and @2x plans lie minutes apart, and a VM's speed drifts over
    minutes: the growth target failed at 2.30x and 2.36x where instructions grew 1.94x. Its
    figures are the plans of both fleets in sync run alternately, the median of each's runs."""
    _, data = run
    rows = {r["op"]: r for r in data["results"]}
    small = rows[report.PLAN_CLEAN + report.ALTERNATING]
    large = rows[report.PLAN_CLEAN + report.X2 + report.ALTERNATING]
    assert small["runs"] == large["runs"] == scenario.ALTERNATING_RUNS
    (growth,) = [c for c in data["checks"] if c["name"].startswith("growth")]
    assert "runs alternating" in growth["name"]
    # the JSON rounds seconds and values to 3 decimals
    assert growth["value"] == pytest.approx(large["seconds"] / small["seconds"], rel=0.01)


def test_each_floor_ratio_is_judged_against_the_floor_run_beside_it(run: Run) -> None:
    """A ratio to the floor whose two figures lie minutes apart measures the VM's drift too
    (2026-11-28: the floor row 1.77 s, the plan 5.54 s, the same plan 4.15 s minutes later).
    Each plan the floor targets judge runs alternately with the floor of its own fleet and
    store, and its ratio is to the median of those floor runs."""
    _, data = run
    rows = {r["op"]: r for r in data["results"]}
    judged = {
        "full plan (no changes)": report.PLAN_CLEAN,
        "full plan (~2% changed)": report.PLAN_EDITED,
        "full plan, grown store": report.PLAN_GROWN,
        **({"full plan on PostgreSQL": report.PLAN_CLEAN + report.PG} if _postgresql() else {}),
    }
    for prefix, op in judged.items():
        row, floor_ = rows[op], rows[op]["floor"]
        assert row["runs"] == floor_["runs"] == scenario.ALTERNATING_RUNS, row
        for figures in (row, floor_):  # each run's seconds kept: the spread behind the median
            assert len(figures["each_seconds"]) == figures["runs"]
            assert statistics.median(figures["each_seconds"]) == pytest.approx(figures["seconds"], abs=0.001)
        (check,) = [c for c in data["checks"] if c["name"].startswith(prefix)]
        assert check["value"] == pytest.approx(row["seconds"] / floor_["seconds"], rel=0.01)
        assert row["ratio_to_floor"] == pytest.approx(check["value"], rel=0.01)
        assert "run alternately with the floor" in check["name"]
        shown = re.match(r"(\d+\.\d\d) s ÷ (\d+\.\d\d) s;", check["note"])  # the JSON keeps 3 decimals
        assert shown, check["note"]
        assert abs(float(shown[1]) - row["seconds"]) <= 0.0051, check["note"]
        assert abs(float(shown[2]) - floor_["seconds"]) <= 0.0051, check["note"]
    # The fleet's floor row is the floor run beside its clean plan; so is PostgreSQL's.
    assert rows[report.FLOOR]["seconds"] == rows[report.PLAN_CLEAN]["floor"]["seconds"]
    if _postgresql():
        pg = report.PLAN_CLEAN + report.PG
        assert rows[report.FLOOR + report.PG]["seconds"] == rows[pg]["floor"]["seconds"]


def test_floor_is_honest() -> None:
    """The floor composes (no values built), reads the plan's rows only, collector off."""
    assert "gc.disable()" in floor.FLOOR_CODE and "yaml.compose(" in floor.FLOOR_CODE
    assert "osr_dependents" not in floor.FLOOR_CODE
    assert all(q in floor.FLOOR_CODE for q in floor.PLAN_QUERIES)
    # the secrets' work the plan must do: each referenced file read, each fingerprinted
    assert "os.read(" in floor.FLOOR_CODE and "hmac.new(mac_key" in floor.FLOOR_CODE


def test_choose_full_size_sets_are_disjoint() -> None:
    sets = scenario.choose(fleet.Shape(), report.TARGET_APPLY_ACTIONS)
    groups = [set(sets.edited), {sets.one}, set(sets.drift), set(sets.apply)]
    assert sum(len(g) for g in groups) == len(set().union(*groups))
    assert len(sets.edited) == 40  # 2% of 2,000
    assert len(sets.drift) == 50  # 0.1% of 50,000 connections
    assert len(sets.apply) * (fleet.Shape().connections + 1) >= report.TARGET_APPLY_ACTIONS


def test_instruction_counts_of_the_plan_and_its_floor(tmp_path: Path) -> None:
    """benchmarks.instructions counts the floor and the plan of an in-sync fleet under valgrind
    and prints their ratio as the counts make it (no figure asserted: the harness, not speed)."""
    if shutil.which("valgrind") is None:
        message = "valgrind not installed (Debian: apt-get install valgrind; .ci/run does)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true: {message}", pytrace=False)
        pytest.skip(message)
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.instructions", "--quick", "--workdir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    found = re.search(r"floor: read \+ secrets \+ plan rows +([\d,]+)\n", proc.stdout)
    made = re.search(r"plan, no changes +([\d,]+) +(\d+\.\d\d)× floor\n", proc.stdout)
    assert found and made, proc.stdout
    floor_ir, plan_ir = (int(m.group(1).replace(",", "")) for m in (found, made))
    assert 0 < floor_ir < plan_ir  # the plan does at least the floor's work
    assert made.group(2) == f"{plan_ir / floor_ir:.2f}"
    assert list(tmp_path.iterdir()) == []  # the fleet is removed afterwards


def test_unreachable_postgresql_is_an_error_under_ci_before_any_fleet_is_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Under CI=true the PostgreSQL rows must run: a server that does not answer ends the
    benchmark at once (exit 1, why, and how to go on), with no password of its URL printed."""
    monkeypatch.setenv("CI", "true")
    url = f"postgresql+psycopg://postgres:{CANARY}@127.0.0.1:1/test"  # port 1: nothing listens
    assert bench.main(["--quick", "--postgresql", url, "--workdir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "error: PostgreSQL at postgresql+psycopg://postgres:***@127.0.0.1:1/test is not reachable" in err
    assert "--no-postgresql" in err and "Traceback" not in err and CANARY not in err
    assert list(tmp_path.iterdir()) == []  # no fleet built, nothing left behind


def test_unreachable_postgresql_is_skipped_and_said_on_a_laptop() -> None:
    """Off CI, the same server skips the PostgreSQL target: printed as SKIP with why, and
    counted as not measured (evaluate on the rows of a run that could not reach PostgreSQL)."""
    made = report.Report(fleet.Shape(tenants=50, connections=3))

    def row(op: str, seconds: float = 1.0) -> None:
        made.results.append(report.Result(op, seconds, 50.0, seconds, 1))

    row(report.FLOOR, 0.5)  # every full plan 2x its floor: three targets fail
    for op in (
        report.VALIDATE,
        report.PLAN_CLEAN,
        report.DRIFT,
        report.DRIFT_WRITE,
        report.APPLY_FLEET,
        report.APPLY_SAVED,
    ):
        row(op)
        row(op + report.X4)
    for op in (report.PLAN_EDITED, report.PLAN_GROWN, report.PLAN_ONE, report.PLAN_ONE + report.X4):
        row(op)
    row(report.PLAN_CLEAN + report.X2)
    row(report.APPLY + ", 92 actions", 0.5)
    why = "PostgreSQL at x is not reachable: OperationalError: refused"
    made.facts.update({"apply_actions": 92, report.POSTGRESQL_SKIPPED: why})
    report.evaluate(made)
    assert made.skipped == {report.PG_TARGET: why}
    assert len(made.checks) == 13 and not any("PostgreSQL" in c.name for c in made.checks)
    assert report.checks_text(made).splitlines()[-1] == f"SKIP  {report.PG_TARGET}: not measured ({why})"
    assert report.summary(made) == "10 of 14 targets passed; 3 FAILED; 1 not measured"
