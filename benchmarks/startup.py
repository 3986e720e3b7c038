"""Start-up cost: the CPU of short commands next to the floor `python -c "import sqlalchemy, pydantic"`.

Each command runs in a fresh interpreter (the same one and the same flags as the floor), with
`reconciler.cli.main` called from `-c`; its CPU is the child's user+sys time from os.wait4, the
best of N runs (the least disturbed by the other processes on the machine).

    python -m benchmarks.startup              # best of 5
    python -m benchmarks.startup --repeat 9

rows() returns the same figures for `make bench`. A benchmark, not a test: it exits 0 when a
target is missed (and says FAIL), unless --strict.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from benchmarks.measure import compile_tool

PYTHON = sys.executable
REPO = Path(__file__).resolve().parent.parent
FLOOR_CODE = "import sqlalchemy, pydantic"
# A command as the console script runs it: `reconciler ARGS`.
MAIN_CODE = "import sys; from reconciler.cli import main; sys.exit(main(sys.argv[1:]))"
ONE_FILE = "tenants/acme/acme-norway.yaml"
COMPLETE_ENV = {"_RECONCILER_COMPLETE": "bash_complete", "COMP_WORDS": "reconciler ", "COMP_CWORD": "1"}
COMPLETE_FLAGS_ENV = {
    "_RECONCILER_COMPLETE": "bash_complete",
    "COMP_WORDS": "reconciler plan --",
    "COMP_CWORD": "2",
}

# Targets: the command's CPU at most this multiple of the floor's (issue 15).
TARGET_LIGHT = 0.5  # --help, --version, a completion TAB (commands or flags)
TARGET_VALIDATE = 1.0  # validate of one file


class Case(NamedTuple):
    name: str
    args: tuple[str, ...]
    target: float
    env: Mapping[str, str] = {}


CASES = (
    Case("--help", ("--help",), TARGET_LIGHT),
    Case("--version", ("--version",), TARGET_LIGHT),
    Case("completion of command names (TAB)", (), TARGET_LIGHT, COMPLETE_ENV),
    Case("completion of plan's flags (TAB)", (), TARGET_LIGHT, COMPLETE_FLAGS_ENV),
    Case(f"validate {ONE_FILE}", ("validate", ONE_FILE), TARGET_VALIDATE),
)


class Row(NamedTuple):
    name: str
    cpu_s: float  # user+sys of the child, best of the runs
    floor_s: float
    target: float  # the ratio to the floor it must not exceed

    @property
    def ratio(self) -> float:
        return self.cpu_s / self.floor_s if self.floor_s else float("inf")

    @property
    def ok(self) -> bool:
        return self.ratio <= self.target


def child_cpu(argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path = REPO) -> float:
    """User+sys CPU seconds of one fresh child process (it must exit 0)."""
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stderr.close()
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} exited {proc.returncode}: {err.decode(errors='replace').strip()[-500:]}"
        )
    return usage.ru_utime + usage.ru_stime


def best(argv: Sequence[str], repeat: int, env: Mapping[str, str] | None = None) -> float:
    return min(child_cpu(argv, env=env) for _ in range(repeat))


def rows(repeat: int = 5, flags: Sequence[str] = ()) -> list[Row]:
    """The floor (first row, ratio 1) and each command, best of `repeat` fresh processes."""
    python = [PYTHON, *flags]
    floor = best([*python, "-c", FLOOR_CODE], repeat)
    out = [Row(f"floor: python -c {FLOOR_CODE!r}", floor, floor, 1.0)]
    for case in CASES:
        cpu = best([*python, "-c", MAIN_CODE, *case.args], repeat, case.env)
        out.append(Row(case.name, cpu, floor, case.target))
    return out


def table(found: Sequence[Row]) -> str:
    width = max(len(r.name) for r in found)
    lines = [f"{'operation':<{width}}  {'CPU ms':>7}  {'× floor':>7}  {'target':>7}  result"]
    for i, r in enumerate(found):
        verdict = "" if i == 0 else ("ok" if r.ok else "FAIL")
        target = "" if i == 0 else f"≤ {r.target:.2f}"
        lines.append(
            f"{r.name:<{width}}  {r.cpu_s * 1000:>7.0f}  {r.ratio:>7.2f}  {target:>7}  {verdict}".rstrip()
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=5, help="fresh processes per row (best of)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    compile_tool()  # from .pyc, as the floor's libraries load
    found = rows(max(1, args.repeat))
    sys.stdout.write(f"Python {sys.version.split()[0]} ({PYTHON}); CPU = user+sys, best of {args.repeat}\n")
    sys.stdout.write(table(found))
    return 1 if args.strict and not all(r.ok for r in found) else 0


if __name__ == "__main__":
    sys.exit(main())
