"""`make bench`: the reconciler against a synthetic fleet, next to the floor of the same work.

Every operation is a subprocess of the installed console script, timed wall-clock with its
peak RSS taken from os.wait4 (measure.py). The floor (floor.py) is what any
implementation must at least do for a full plan, measured honestly: every tenant file
read into its structure as the tool reads it, every password resolved and fingerprinted, the
rows of the plan's own queries fetched raw, the cycle collector off as the tool has it, in a
fresh interpreter (docs/benchmarks.md). The fleet is planned again at twice and four times its
size (growth, memory), on a store grown out of key order and on PostgreSQL.

PostgreSQL is asked for first, before any fleet is built. A server that does not answer skips
the PostgreSQL rows, and says so (its target is printed as SKIP, not measured), except under
CI=true, where it is an error: exit 1.

    python -m benchmarks.bench                  # 2,000 tenants, ~50k connections, ~1M dependents
    python -m benchmarks.bench --scale 0.05     # a quick run
    python -m benchmarks.bench --quick --no-postgresql   # the harness in seconds (smoke test)
    python -m benchmarks.bench --profile bench-out/   # also profile the full plan (pyinstrument)

A benchmark, not a test: it exits 0 when a target fails (and says FAIL), unless --strict.
A run whose results are wrong (a plan that should be empty is not) is an error: exit 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from benchmarks import fleet, startup
from benchmarks.measure import BenchError, compile_tool
from benchmarks.report import (
    PG,
    PLAN_CLEAN,
    PLAN_GROWN,
    POSTGRESQL_SKIPPED,
    TARGET_APPLY_ACTIONS,
    X2,
    X4,
    Report,
    add_startup,
    checks_text,
    evaluate,
    machine,
    summary,
    table,
    to_json,
)
from benchmarks.scenario import ALTERNATING_RUNS, OtherStore, alternate_growth, run_full, run_larger
from reconciler import redaction

DEFAULT_POSTGRESQL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _postgresql(admin_url: str, name: str, *, drop: bool = False) -> None:
    """A private database on the PostgreSQL server of admin_url (created, or dropped); its URL:
    _private_url."""
    import psycopg

    plain = admin_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop:
            conn.execute(f'CREATE DATABASE "{name}"')


def _private_url(admin_url: str, name: str) -> str:
    """admin_url with the private database's name in place of its own."""
    from sqlalchemy.engine import make_url

    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def _postgresql_problem(admin_url: str, name: str) -> str | None:
    """None once the private database is made on the server; else why it could not be (the
    driver missing, the server not answering), as one line without a password."""
    try:
        _postgresql(admin_url, name)
    except Exception as exc:  # any error of the driver or its import: no PostgreSQL rows
        first = (str(exc).strip().splitlines() or [""])[0]
        return redaction.redact(f"{type(exc).__name__}: {first}" if first else type(exc).__name__)
    return None


def _built_line(built: fleet.Built) -> str:
    return (
        f"  built in {built.seconds_files:.1f} s (files, {built.file_bytes / 2**20:.1f} MiB) "
        f"+ {built.seconds_store:.1f} s (store, {built.db.stat().st_size / 2**20:.0f} MiB)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fleet.add_shape_arguments(parser)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a tiny fleet (50 tenants of 3 connections): proves the harness in "
        "seconds; its figures say nothing about speed",
    )
    parser.add_argument(
        "--apply-changes",
        type=int,
        default=TARGET_APPLY_ACTIONS,
        help="actions in the apply run (fewer if the fleet is too small)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="runs per operation, median reported (one-tenant plans: at least 3)",
    )
    parser.add_argument(
        "--postgresql",
        metavar="URL",
        default=DEFAULT_POSTGRESQL,
        help="PostgreSQL server for the PostgreSQL rows; a private database "
        "osr_bench_<pid> is created on it and dropped afterwards "
        f"(default {DEFAULT_POSTGRESQL}); a server that does not answer skips the rows, "
        "and says so (SKIP), except under CI=true, where it is an error",
    )
    parser.add_argument(
        "--no-postgresql", action="store_true", help="skip the PostgreSQL rows (their target: SKIP)"
    )
    parser.add_argument(
        "--profile", type=Path, metavar="DIR", help="also profile the full plan with pyinstrument into DIR"
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--workdir", type=Path, help="where the temporary fleets go (default: TMPDIR)")
    parser.add_argument("--keep", action="store_true", help="keep the fleets and logs afterwards")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    args = parser.parse_args(argv)
    if not fleet.RECONCILER.exists():
        parser.error(f"no console script at {fleet.RECONCILER}; run `make` (pip install -e .)")
    if args.repeat < 1 or args.apply_changes < 1:
        parser.error("--repeat and --apply-changes must be at least 1")
    if args.quick:
        args.tenants, args.connections = 50, 3  # 50 tenants: one edited file is exactly 2%
    for name in ("profile", "json", "workdir"):
        if getattr(args, name) is not None:  # the runs' working directory is the fleet's
            setattr(args, name, getattr(args, name).resolve())
    shape = fleet.shape_from(args)
    report = Report(shape)
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="osr-bench-", dir=args.workdir))
    compile_tool()  # the tool from .pyc, as installed and as its libraries are measured
    load_start = os.getloadavg()[0]
    pg_name = f"osr_bench_{os.getpid()}"
    pg_made = False
    if args.no_postgresql:
        report.facts[POSTGRESQL_SKIPPED] = "--no-postgresql"
    else:
        problem = _postgresql_problem(args.postgresql, pg_name)
        pg_made = problem is None
        if problem is not None:
            where = redaction.redact(args.postgresql)
            if os.environ.get("CI", "").lower() == "true":
                print(
                    f"error: PostgreSQL at {where} is not reachable ({problem}); under CI=true the "
                    "PostgreSQL rows must run (pass --postgresql URL, or --no-postgresql)",
                    file=sys.stderr,
                )
                shutil.rmtree(work, ignore_errors=True)
                return 1
            report.facts[POSTGRESQL_SKIPPED] = f"PostgreSQL at {where} is not reachable: {problem}"
            print(
                f"note: the PostgreSQL rows are skipped: PostgreSQL at {where} is not reachable "
                f"({problem}); pass --postgresql URL, or --no-postgresql",
                file=sys.stderr,
                flush=True,
            )
    try:
        print(f"Fleet @1x: {shape.describe()}", file=sys.stderr, flush=True)
        built = fleet.build(work / "x1", shape)
        print(_built_line(built), file=sys.stderr, flush=True)
        in_sync = fleet.copied(built, work / "x1-in-sync")  # for alternate_growth, after @2x
        stores = []
        grown_db = built.root / "grown.db"
        grown_shape = dataclasses.replace(shape, grown=True)
        grown_url = f"sqlite:///{grown_db}"
        seconds = fleet.init_store(grown_url, grown_shape, built.env, built.root)
        print(f"  grown store (rows out of key order) in {seconds:.1f} s", file=sys.stderr)
        stores.append(
            OtherStore(dataclasses.replace(built, url=grown_url, db=grown_db), PLAN_GROWN, "", database=False)
        )
        if pg_made:
            pg_url = _private_url(args.postgresql, pg_name)  # made above
            seconds = fleet.init_store(pg_url, grown_shape, built.env, built.root)
            print(f"  PostgreSQL store {pg_name} (grown) in {seconds:.1f} s", file=sys.stderr)
            stores.append(OtherStore(dataclasses.replace(built, url=pg_url), PLAN_CLEAN, PG, database=True))
        run_full(
            built,
            report,
            repeat=args.repeat,
            apply_actions=args.apply_changes,
            profile=args.profile,
            stores=stores,
        )
        shutil.rmtree(built.root / ".secrets", ignore_errors=True)  # disk: the larger fleets
        for factor, suffix in ((2, X2), (4, X4)):
            size = shape.scaled(factor)
            print(f"Fleet{suffix}: {size.describe()}", file=sys.stderr, flush=True)
            larger = fleet.build(work / f"x{factor}", size)
            print(_built_line(larger), file=sys.stderr, flush=True)
            run_larger(larger, report, suffix=suffix, repeat=args.repeat)
            if factor == 2:
                alternate_growth(in_sync, larger, report, runs=max(args.repeat, ALTERNATING_RUNS))
                if not args.keep:
                    shutil.rmtree(in_sync.root, ignore_errors=True)
            if not args.keep:
                shutil.rmtree(larger.root, ignore_errors=True)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        args.keep = True
        return 1
    finally:
        if pg_made:
            _postgresql(args.postgresql, pg_name, drop=True)
        if args.keep:
            print(f"Fleets and logs kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    report.facts["load_average"] = [round(load_start, 2), round(os.getloadavg()[0], 2)]
    evaluate(report)
    info = machine()
    print(f"\nosr-reconciler benchmark: {shape.describe()}")
    print(
        f"{info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB; Python "
        f"{info['python']}, SQLite {info['sqlite']}; load average {load_start:.2f} at the "
        f"start, {os.getloadavg()[0]:.2f} at the end"
    )
    if max(load_start, os.getloadavg()[0]) > 0.5 * (os.cpu_count() or 1):
        print("note: other work shared the CPUs; wall seconds are inflated (CPU s less so)")
    print()
    print(table(report))
    f = report.facts
    print(
        f"\nplan before edits: {f['plan_clean_actions']} actions; after editing "
        f"{f['edited_files']} of {shape.tenants} tenant files: {f['plan_edited_actions']} actions "
        f"in {f['plan_edited_changed_tenants']} tenants ({100 * f['plan_edited_share']:.1f}%)"
    )
    print(
        f"drift: {f['drift_reported']} hand-made changes found; apply: {f['apply_actions']} "
        f"actions over {f['apply_files']} tenant files ({f['apply_deletes']} deletes)"
    )
    for key in sorted(f):
        if key.startswith("apply_message"):
            print(f"{key}: {f[key]}")
    # Start-up (benchmarks/startup.py): short commands next to `import sqlalchemy, pydantic`.
    startup_rows = startup.rows(3 if args.quick else 5)
    print(f"\nstart-up: CPU = user+sys, best of {3 if args.quick else 5} fresh processes")
    print(startup.table(startup_rows))
    add_startup(report, startup_rows)
    print(checks_text(report))
    report.facts["startup"] = [
        {
            "op": r.name,
            "cpu_s": round(r.cpu_s, 4),
            "ratio_to_floor": round(r.ratio, 3),
            "target": r.target,
            "passed": r.ok,
        }
        for r in startup_rows
    ]
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(to_json(report), indent=2) + "\n", encoding="utf-8")
    failed = any(not c.passed for c in report.checks)
    print(
        f"\n{summary(report)}"
        + (" (exit 0: a benchmark, not a test; --strict to fail)" if failed and not args.strict else "")
    )
    return 1 if failed and args.strict else 0


if __name__ == "__main__":
    raise SystemExit(main())
