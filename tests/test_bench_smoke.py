"""`make bench` works end to end, at a tiny size: every operation measured, plans as expected.

No timing assertions: this proves the harness, not the speed (docs/benchmarks.md has figures).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks import bench, fleet

Run = tuple[subprocess.CompletedProcess[str], dict[str, Any]]
ROOT = Path(__file__).resolve().parent.parent
OPERATIONS = [bench.FLOOR, bench.VALIDATE, bench.PLAN_CLEAN, bench.PLAN_EDITED, bench.PLAN_ONE,
              bench.DRIFT, bench.APPLY, bench.FLOOR + bench.SMALL, bench.PLAN_CLEAN + bench.SMALL,
              bench.PLAN_ONE + bench.SMALL]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    tmp = tmp_path_factory.mktemp("bench")
    out = tmp / "bench.json"
    # 50 tenants: one edited file is exactly 2%.
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench", "--tenants", "50", "--connections", "3",
         "--workdir", str(tmp / "work"), "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc, json.loads(out.read_text(encoding="utf-8"))


def test_main_table_has_every_operation(run: Run) -> None:
    proc, data = run
    ops = [r["op"] for r in data["results"]]
    for op in OPERATIONS:
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
    assert facts["small_plan_clean_actions"] == 0


def test_main_checks_every_target(run: Run) -> None:
    proc, data = run
    assert len(data["checks"]) == 6
    for check in data["checks"]:
        verdict = "PASS" if check["pass"] else "FAIL"
        assert f"{verdict}  {check['name']}" in proc.stdout


def test_choose_full_size_sets_are_disjoint() -> None:
    sets = bench.choose(fleet.Shape(), bench.TARGET_APPLY_ACTIONS)
    groups = [set(sets.edited), {sets.one}, set(sets.drift), set(sets.apply)]
    assert sum(len(g) for g in groups) == len(set().union(*groups))
    assert len(sets.edited) == 40  # 2% of 2,000
    assert len(sets.drift) == 50  # 0.1% of 50,000 connections
    assert len(sets.apply) * (fleet.Shape().connections + 1) >= bench.TARGET_APPLY_ACTIONS
