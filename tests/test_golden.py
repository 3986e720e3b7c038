"""Golden plan cases kept as data: tests/cases/<case>/{live.yaml, tenants/, expected.txt, expected.json}.

Each case seeds live.yaml into a store (SQLite, PostgreSQL, MariaDB), plans the tenant files and
compares text and JSON with the checked-in expectation. `UPDATE_GOLDEN=1 pytest` rewrites them;
review the diff before committing.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import jsonschema
import pytest

from tests.conftest import CANARY_ENV, Cli

CASES = Path(__file__).parent / "cases"
REPO = Path(__file__).resolve().parent.parent
PLAN_SCHEMA = json.loads((REPO / "schemas" / "plan.schema.json").read_text())
DEMO_ENV = {
    "OSR_ACME_NO_OSLO": "demo-oslo-pw",
    "OSR_ACME_NO_BERGEN": "demo-bergen-pw",
    "OSR_ACME_SE_STOCKHOLM": "demo-stockholm-pw",
}


def _case_inputs(name: str) -> tuple[Path, Path]:
    if name == "demo":
        return REPO / "examples" / "demo-store.yaml", REPO / "tenants"
    return CASES / name / "live.yaml", CASES / name / "tenants"


def _check(expected: Path, actual: str) -> None:
    if os.environ.get("UPDATE_GOLDEN"):
        expected.write_text(actual, encoding="utf-8")
    assert actual == expected.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "case", ["demo", *sorted(p.name for p in CASES.iterdir() if p.is_dir() and p.name != "demo")]
)
def test_plan_matches_golden(cli: Cli, case: str) -> None:
    live, tenants = _case_inputs(case)
    shutil.copytree(tenants, cli.root / "tenants")
    assert cli("store", "seed", str(live)).code == 0
    env = {**DEMO_ENV, CANARY_ENV: cli.env[CANARY_ENV]}
    text = cli("plan", env=env)
    assert text.code == 0, text.err
    as_json = cli("plan", "--format", "json", env=env)
    assert as_json.code == 0, as_json.err
    jsonschema.validate(json.loads(as_json.out), PLAN_SCHEMA)
    target = CASES / case
    target.mkdir(exist_ok=True)
    _check(target / "expected.txt", text.out)
    _check(target / "expected.json", as_json.out)
