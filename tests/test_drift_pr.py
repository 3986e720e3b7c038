"""examples/cron/drift.sh with DRIFT_PR_BRANCH: drift --write, one branch, one pull request."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DRIFT_SH = Path(__file__).resolve().parent.parent / "examples" / "cron" / "drift.sh"
# Each fake logs its arguments; reconciler exits 2 (drift found, then files written).
FAKE = """#!/bin/sh
printf '%s %s\\n' "$(basename "$0")" "$*" >> "$FAKE_LOG"
case "$(basename "$0") $*" in
  "reconciler drift --write"*) echo "Wrote tenants/acme/acme-norway.yaml:"; exit "$FAKE_WRITE_RC" ;;
  reconciler*) echo "## Drift in acme/acme-norway"; exit 2 ;;
  "gh pr list"*) printf '%s' "$FAKE_OPEN_PR" ;;
  "git symbolic-ref"*) echo main ;;
esac
exit 0
"""


def _run(tmp_path: Path, *, write_rc: int, open_pr: str = "", gh: bool = True) -> tuple[int, str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("reconciler", "git", "gh") if gh else ("reconciler", "git"):
        (bin_dir / name).write_text(FAKE, encoding="utf-8")
        (bin_dir / name).chmod(0o755)
    log = tmp_path / "log"
    env = {
        "PATH": os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), "/usr/bin", "/bin"]),
        "HOME": str(tmp_path),
        "FAKE_LOG": str(log),
        "FAKE_WRITE_RC": str(write_rc),
        "FAKE_OPEN_PR": open_pr,
        "DRIFT_PR_BRANCH": "reconciler/accept-drift",
    }
    result = subprocess.run(
        ["sh", str(DRIFT_SH)], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60, check=False
    )
    return result.returncode, log.read_text(encoding="utf-8"), result.stderr


def test_drift_with_changes_to_accept_opens_one_pull_request(tmp_path: Path) -> None:
    code, log, alert = _run(tmp_path, write_rc=2)
    assert code == 2
    lines = log.splitlines()
    assert lines[:-1] == [
        "reconciler drift --format markdown",
        "reconciler drift --write",
        "git symbolic-ref --quiet --short HEAD",
        "git switch --quiet -C reconciler/accept-drift",
        "git add tenants",
        "git commit --quiet -m Accept the portal's hand changes (reconciler drift --write)",
        "git push --quiet --force origin reconciler/accept-drift",
        "git switch --quiet --discard-changes main",
        "gh pr list --head reconciler/accept-drift --state open --json number --jq .[].number",
    ]
    assert lines[-1].startswith("gh pr create --head reconciler/accept-drift --body-file ")
    assert lines[-1].endswith(" --title Accept the portal's hand changes into git")
    assert (
        "Accepted into branch reconciler/accept-drift (pull request opened or updated)" in alert
    )  # stderr: no mail


def test_without_gh_the_alert_says_the_branch_was_pushed_not_a_pull_request_opened(tmp_path: Path) -> None:
    """Without gh on PATH no pull request is touched: the alert said one was opened or updated."""
    if shutil.which("gh", path="/usr/bin:/bin"):
        pytest.skip("a gh in /usr/bin or /bin, which the script's PATH keeps, would be called")
    code, log, alert = _run(tmp_path, write_rc=2, gh=False)
    assert code == 2 and "gh " not in log
    assert (
        "Accepted into branch reconciler/accept-drift (pushed; no gh on PATH: open the pull request by hand)"
        in alert
    )


def test_an_open_pull_request_is_updated_not_duplicated(tmp_path: Path) -> None:
    code, log, _ = _run(tmp_path, write_rc=2, open_pr="17")
    assert code == 2
    assert log.splitlines()[-1].startswith("gh pr edit 17 --body-file ")
    assert "gh pr create" not in log


def test_nothing_to_accept_pushes_nothing(tmp_path: Path) -> None:
    code, log, _ = _run(tmp_path, write_rc=0)
    assert code == 2  # the drift is still alerted
    assert [line.split()[0] for line in log.splitlines()] == ["reconciler", "reconciler"]


# A fake reconciler for the real git below: drift finds drift, drift --write edits a tenant file.
EDITS = """#!/bin/sh
case "$*" in
  "drift --write"*) date +%s%N >> tenants/acme/acme-norway.yaml; echo Wrote; exit 2 ;;
  drift*) echo "## Drift in acme/acme-norway"; exit 2 ;;
esac
exit 1
"""


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True, timeout=60)
    return done.stdout.strip()


def test_the_nightly_cron_line_works_night_after_night(tmp_path: Path) -> None:
    """The cron line of docs/ci.md (`git pull --ff-only && sh drift.sh`) with DRIFT_PR_BRANCH:
    the script left the checkout on the accept branch, so from the second night the pull failed
    ("no tracking information") and drift.sh never ran again."""
    origin, checkout = tmp_path / "origin.git", tmp_path / "checkout"
    _git(tmp_path, "init", "--quiet", "--bare", "--initial-branch=main", str(origin))
    _git(tmp_path, "clone", "--quiet", str(origin), str(checkout))
    for key, value in (("user.email", "cron@example.com"), ("user.name", "cron")):
        _git(checkout, "config", key, value)
    (checkout / "tenants" / "acme").mkdir(parents=True)
    (checkout / "tenants" / "acme" / "acme-norway.yaml").write_text("version: 1\n", encoding="utf-8")
    _git(checkout, "add", "-A")
    _git(checkout, "commit", "--quiet", "-m", "tenants")
    _git(checkout, "push", "--quiet", "-u", "origin", "main")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "reconciler").write_text(EDITS, encoding="utf-8")
    (bin_dir / "reconciler").chmod(0o755)
    env = {
        "PATH": os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), "/usr/bin", "/bin"]),
        "HOME": str(tmp_path),
        "DRIFT_PR_BRANCH": "reconciler/accept-drift",
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    pushed = []
    for _night in range(3):
        night = subprocess.run(
            ["sh", "-c", f"git pull --quiet --ff-only && sh {DRIFT_SH}"],
            cwd=checkout,
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert night.returncode == 2, night.stderr
        assert _git(checkout, "symbolic-ref", "--short", "HEAD") == "main"
        assert _git(checkout, "status", "--porcelain") == ""
        pushed.append(_git(origin, "rev-parse", "reconciler/accept-drift"))
    assert len(set(pushed)) == 3  # a new commit of accepted changes each night, on main's tip
    assert _git(origin, "rev-parse", "reconciler/accept-drift~1") == _git(origin, "rev-parse", "main")
