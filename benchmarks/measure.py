"""Measuring one process of the benchmark: a tiny launcher starts it, os.wait4 gives its wall
seconds, peak RSS (ru_maxrss) and CPU seconds (user + system)."""

from __future__ import annotations

import compileall
import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

PYTHON = sys.executable


class BenchError(Exception):
    """The benchmark could not measure what it claims to (a run failed or gave wrong results)."""


# ---------------------------------------------------------------------------------------------
# Running one operation


@dataclass(frozen=True)
class Run:
    code: int
    seconds: float
    rss_mib: float
    cpu_s: float  # user + system
    out: str
    err: str


# Children are started by a tiny launcher, not by this process: Linux carries a process's peak
# RSS over exec (signal->maxrss), so a child forked straight from the benchmark, which holds a
# fleet in memory, would report the benchmark's peak as its own. The launcher times the child.
LAUNCH_CODE = r"""
import json, os, subprocess, sys, time
out, err, *argv = sys.argv[1:]
with open(out, "wb") as o, open(err, "wb") as e:
    started = time.perf_counter()
    child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=o, stderr=e)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
child.returncode = os.waitstatus_to_exitcode(status)
print(json.dumps({"code": child.returncode, "seconds": seconds, "maxrss_kib": usage.ru_maxrss,
                  "cpu": usage.ru_utime + usage.ru_stime}))
"""


def measure(
    argv: Sequence[str], *, cwd: Path, env: dict[str, str], log: Path, expect: Sequence[int] = (0,)
) -> Run:
    """Run argv as a child: wall seconds, and its peak RSS from os.wait4 (ru_maxrss)."""
    out_path, err_path = log.with_suffix(".out"), log.with_suffix(".err")
    launcher = subprocess.run(
        [PYTHON, "-I", "-S", "-c", LAUNCH_CODE, str(out_path), str(err_path), *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if launcher.returncode != 0:
        raise BenchError(f"the launcher failed: {launcher.stderr.strip()[-500:]}")
    got = json.loads(launcher.stdout)
    run = Run(
        got["code"],
        got["seconds"],
        got["maxrss_kib"] / 1024,
        got["cpu"],
        out_path.read_text(encoding="utf-8", errors="replace"),
        err_path.read_text(encoding="utf-8", errors="replace"),
    )
    if run.code not in expect:
        tail = "\n".join((run.err or run.out).strip().splitlines()[-5:])
        raise BenchError(
            f"`{' '.join(argv[:4])} ...` exited {run.code} (expected "
            f"{'/'.join(map(str, expect))}); log in {log.parent}:\n{tail}"
        )
    return run


def compile_tool() -> None:
    """Byte-compile reconciler/ once, as installing a wheel does (pip compiles at install time).

    This checkout is installed editable, and the machine may set PYTHONDONTWRITEBYTECODE, so
    every measured run would otherwise compile the tool from source while the libraries it is
    compared with (SQLAlchemy, pydantic, PyYAML in site-packages) load from .pyc: the same
    settings on both sides means both load compiled code.
    """
    import reconciler

    compileall.compile_dir(str(Path(reconciler.__file__).parent), quiet=1)
