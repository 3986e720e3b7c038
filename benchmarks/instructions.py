"""The full plan and its floor counted in instructions (valgrind's cachegrind), not seconds.

On a machine whose CPUs are shared, wall and CPU seconds of one run can move by half from one
minute to the next, and a ratio of two such figures with them (docs/benchmarks.md). The number
of instructions a process executes does not depend on what else runs: the same fleet, the same
commands and the same settings as `make bench` (floor.argv, the console script's plan) give the
same counts within a fraction of a percent, so a change's effect can be judged on any day.

It is a proxy, not the target: an instruction of libyaml or of a regular expression does not
cost what one of the interpreter's loop does, so the targets stay judged in seconds by `make
bench`. Under valgrind a run is 20 to 50 times slower: the default fleet is a quarter of
`make bench`'s, where start-up weighs more than at full size.

    python -m benchmarks.instructions                # 500 tenants, 12,500 connections
    python -m benchmarks.instructions --quick        # the harness in seconds
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from benchmarks import fleet, floor
from benchmarks.measure import BenchError, compile_tool

DEFAULT_SCALE = 0.25
VALGRIND = ("valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null")
_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def count(argv: Sequence[str], built: fleet.Built) -> tuple[int, str]:
    """(instructions executed by argv under cachegrind, its output) in the fleet's directory."""
    done = subprocess.run(
        [*VALGRIND, *argv], cwd=built.root, env=built.env, capture_output=True, text=True, check=False
    )
    found = _REFS.search(done.stderr)
    if done.returncode != 0 or found is None:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise BenchError(f"`{' '.join(argv[:3])} ...` under valgrind exited {done.returncode}:\n{tail}")
    return int(found.group(1).replace(",", "")), done.stdout


def measure(built: fleet.Built) -> tuple[int, int]:
    """(the floor's instructions, the full plan's), each run checked to have done its work."""
    floor_ir, out = count(floor.argv(built.root, built.url), built)
    if f"{built.shape.tenants} files," not in out:
        raise BenchError(f"the floor read something else than the fleet: {out.strip()}")
    plan_ir, out = count([str(fleet.RECONCILER), "plan", "--store", built.url], built)
    if "Plan: 0 to create, 0 to update, 0 to rename, 0 to adopt, 0 to delete" not in out:
        raise BenchError(f"the fleet is not in sync; the plan said: {out.strip()[-300:]}")
    return floor_ir, plan_ir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.instructions",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fleet.add_shape_arguments(parser)
    parser.set_defaults(scale=DEFAULT_SCALE)  # a quarter of make bench's fleet
    parser.add_argument("--quick", action="store_true", help="50 tenants of 3 connections: the harness only")
    parser.add_argument("--workdir", type=Path, help="where the temporary fleet goes (default: TMPDIR)")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not installed (Debian: apt-get install valgrind)")
    if args.quick:
        args.tenants, args.connections, args.scale = 50, 3, 1.0
    shape = fleet.shape_from(args)
    if args.workdir:  # as make bench's: made when missing (mkdtemp's traceback said it was not)
        args.workdir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="osr-instructions-", dir=args.workdir))
    compile_tool()  # as make bench does: the tool from .pyc, as its libraries
    try:
        print(f"Fleet: {shape.describe()}", file=sys.stderr, flush=True)
        floor_ir, plan_ir = measure(fleet.build(work, shape))
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    connections = shape.tenants * shape.connections
    print(f"osr-reconciler instruction counts (cachegrind): {shape.describe()}")
    print(f"floor: read + secrets + plan rows  {floor_ir:>16,}")
    print(f"plan, no changes                   {plan_ir:>16,}  {plan_ir / floor_ir:.2f}× floor")
    print(f"beyond the floor, per connection   {(plan_ir - floor_ir) / connections:>16,.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
