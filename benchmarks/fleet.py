"""A synthetic fleet: tenant files and a live store that match, seeded by bulk inserts.

Every tenant is a pure function of the fleet's shape and the tenant's index, so that the
benchmark can regenerate a tenant file with edits and know what each plan must contain.
The store is seeded through SQLAlchemy Core with reconciler.store's own tables (executemany
of large batches, explicit ids), not through `store seed`, which is built for small fixtures.

    python -m benchmarks.fleet DIR [--tenants N] [--connections N] ...   # a fleet to poke at
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from reconciler import secrets, spec, store

PASSWORD_ENV = "OSR_BENCH_PW_{}"
BATCH = 50_000
RECONCILER = Path(sys.executable).with_name("reconciler")

# key, name prefix, system database, company id pattern, voucher step
INTEGRATIONS = (
    ("visma-business", "Visma Business", "vbsys", "F{:04d}", True),
    ("dynamics-gp", "Dynamics GP", "DYNAMICS", "GP{:03d}", False),
    ("dynamics-nav", "NAV", "NAV", "Company {:03d} AS", False),
    ("dynamics-ax", "AX", "AX2012", "A{:03d}", False),
    ("sap-business-one", "SAP B1", "SBO-COMMON", "SBO{:03d}", False),
)
# Places in connection names: non-ASCII letters, as Nordic and German tenants write them.
PLACES = ("Oslo", "Tromsø", "Ålesund", "Malmö", "Göteborg", "Århus", "Zürich", "Bergen")
KINDS = tuple(spec.DependentKind)
KIND_LABELS = {
    spec.DependentKind.DATA_ACCESS_FILTER: "Filter",
    spec.DependentKind.BUDGET_FLOW: "Budget",
    spec.DependentKind.PUBLISHER_JOB: "Job",
    spec.DependentKind.REPORT: "Report",
}


@dataclass(frozen=True)
class Shape:
    """How big the fleet is: counts per parent, so that scaling keeps each tenant the same."""

    tenants: int = 2000
    connections: int = 25  # per tenant
    companies: int = 3  # per connection
    dependents: int = 7  # per company
    customers: int = 0  # 0: one customer per 20 tenants
    templates: int = 3  # report templates per tenant
    env_every: int = 10  # every n-th secret is an {env: ...} reference; the others {file: ...}
    grown: bool = False  # store rows inserted out of key order, as applies over time leave them

    def __post_init__(self) -> None:
        if self.tenants < 1 or self.connections < 1 or self.companies < 1:
            raise ValueError("a fleet needs at least one tenant, connection and company")
        if self.dependents < 0 or self.templates < 0 or self.customers < 0 or self.env_every < 1:
            raise ValueError("counts must not be negative (and env_every at least 1)")

    @property
    def n_customers(self) -> int:
        return min(self.tenants, self.customers or max(1, self.tenants // 20))

    def scaled(self, factor: float) -> Shape:
        """The same tenants, factor times as many of them (and of customers)."""
        tenants = max(1, round(self.tenants * factor))
        customers = max(1, round(self.customers * factor)) if self.customers else 0
        return replace(self, tenants=tenants, customers=customers)

    def customer_index(self, t: int) -> int:
        return t * self.n_customers // self.tenants

    def customer(self, t: int) -> str:
        return f"customer-{self.customer_index(t):03d}"

    def tenant(self, t: int) -> str:
        return f"tenant-{t:05d}"

    def key(self, t: int) -> str:
        return f"{self.customer(t)}/{self.tenant(t)}"

    def order(self) -> list[int]:
        """Tenants in the order their rows were inserted: key order, or shuffled when grown."""
        order = list(range(self.tenants))
        if self.grown:
            random.Random(15).shuffle(order)
        return order

    def connection_id(self, t: int, c: int, position: Mapping[int, int] | None = None) -> int:
        """The row id of connection c of tenant t (position: tenant -> insertion rank)."""
        if not self.grown:
            return t * self.connections + c + 1
        rank = position[t] if position is not None else self.order().index(t)
        return rank * self.connections + (self.connections - 1 - c) + 1

    def totals(self) -> dict[str, int]:
        conns = self.tenants * self.connections
        return {
            "customers": self.n_customers,
            "tenants": self.tenants,
            "connections": conns,
            "companies": conns * self.companies,
            "dependents": conns * self.companies * self.dependents,
            "report_templates": self.tenants * self.templates,
        }

    def describe(self) -> str:
        t = self.totals()
        return (
            f"{t['tenants']:,} tenants of {t['customers']:,} customers, {t['connections']:,} "
            f"connections, {t['companies']:,} companies, {t['dependents']:,} dependents"
        )


@dataclass
class Conn:
    """One connection as a tenant file declares it (mutable: the benchmark edits copies)."""

    name: str
    integration: str
    server: str
    database: str
    authentication: str
    login: str | None
    password: int | None  # the secret's number: see reference()
    allow_others_to_edit: bool
    private: bool
    companies: list[str]
    voucher: tuple[str, str] | None
    write_back: bool
    protected: bool
    absent: bool = False  # a tombstone

    def spec(self) -> spec.ConnectionSpec:
        return spec.ConnectionSpec(
            name=self.name,
            integration=self.integration,
            server=self.server,
            database=self.database,
            authentication=spec.Authentication(self.authentication),
            login=self.login,
            allow_others_to_edit=self.allow_others_to_edit,
            private=self.private,
            companies=tuple(self.companies),
            voucher=spec.Voucher(*self.voucher) if self.voucher else None,
            write_back=self.write_back,
            protected=self.protected,
        )


def password_value(n: int) -> str:
    return f"bench-password-{n}-ø"


def secret_count(shape: Shape) -> int:
    return shape.tenants * shape.connections


def reference(shape: Shape, n: int) -> str:
    """Secret n as a tenant file references it: one secret per connection, env or file."""
    if n % shape.env_every == 0:
        return f"{{env: {PASSWORD_ENV.format(n)}}}"
    return f"{{file: bench/{n // 1000:03d}/{n}.txt}}"


def password_env(shape: Shape) -> dict[str, str]:
    """The environment the tenant files' {env: ...} references need."""
    return {PASSWORD_ENV.format(n): password_value(n) for n in range(0, secret_count(shape), shape.env_every)}


def write_secret_files(root: Path, shape: Shape) -> None:
    """The files the {file: ...} references name, under root/.secrets (mode 600)."""
    base = root / ".secrets"
    for n in range(secret_count(shape)):
        if n % shape.env_every:
            path = base / "bench" / f"{n // 1000:03d}" / f"{n}.txt"
            if n % 1000 == 0 or not path.parent.exists():
                path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(password_value(n) + "\n")
    base.chmod(0o700)


def connections(shape: Shape, t: int) -> list[Conn]:
    """The connections of tenant t, as live has them and its tenant file declares them."""
    out = []
    for c in range(shape.connections):
        key, prefix, database, company_id, vouchers = INTEGRATIONS[(t + c) % len(INTEGRATIONS)]
        if c % 3 == 0:
            server = f"sql{t:05d}.corp.local,1433"
        elif c % 3 == 1:
            server = f"SQL{t:05d}\\ERP{c % 4}"
        else:
            server = f"10.{t // 250 % 250}.{t % 250}.{c % 250 + 1}"
        sql = c % 5 != 4
        first = c * shape.companies + 1
        out.append(
            Conn(
                name=f"{prefix} {PLACES[(t + c) % len(PLACES)]} {c:03d}",
                integration=key,
                server=server,
                database=database,
                authentication="sql" if sql else "windows",
                login="osr_reader" if sql else None,
                password=t * shape.connections + c if sql else None,
                allow_others_to_edit=c % 2 == 1,
                private=c % 7 == 3,
                companies=[company_id.format(first + k) for k in range(shape.companies)],
                voucher=(
                    ("visma-document-center", f"\\\\fs{t % 100:02d}\\vdc\\{shape.tenant(t)}\\{c:03d}")
                    if vouchers and c % 2 == 0
                    else None
                ),
                write_back=c % 11 == 5,
                protected=c % 13 == 6,
            )
        )
    return out


def dependents(shape: Shape, company: str) -> Iterator[tuple[spec.DependentKind, str]]:
    for j in range(shape.dependents):
        kind = KINDS[j % len(KINDS)]
        yield kind, f"{KIND_LABELS[kind]} {company} {j + 1}"


# ---------------------------------------------------------------------------------------------
# Tenant files


def tenant_path(root: Path, shape: Shape, t: int) -> Path:
    return root / "tenants" / shape.customer(t) / f"{shape.tenant(t)}.yaml"


def render_tenant(shape: Shape, t: int, conns: list[Conn], *, prune: bool = False) -> str:
    """The tenant file, written the way a person would (block style, flow lists)."""
    lines = [
        "# yaml-language-server: $schema=../../schemas/tenant.schema.json",
        "version: 1",
        f"customer: {shape.customer(t)}",
        f"tenant: {shape.tenant(t)}",
        f"prune: {'true' if prune else 'false'}",
        "connections:",
    ]
    flag = {True: "true", False: "false"}
    for c in conns:
        lines.append(f"  - name: {c.name}")
        if c.absent:
            lines.append("    absent: true")
            continue
        lines += [
            f"    integration: {c.integration}",
            f"    server: {c.server}",
            f"    database: {c.database}",
            f"    authentication: {c.authentication}",
        ]
        if c.login is not None:
            lines.append(f"    login: {c.login}")
        if c.password is not None:
            lines.append(f"    password: {reference(shape, c.password)}")
        lines += [
            f"    allow_others_to_edit: {flag[c.allow_others_to_edit]}",
            f"    private: {flag[c.private]}",
            f"    companies: [{', '.join(c.companies)}]",
        ]
        if c.voucher:
            lines += [
                "    voucher:",
                f"      provider: {c.voucher[0]}",
                f"      document_center_path: {c.voucher[1]}",
            ]
        lines += [f"    write_back: {flag[c.write_back]}", f"    protected: {flag[c.protected]}"]
    return "\n".join(lines) + "\n"


def write_tenant(root: Path, shape: Shape, t: int, conns: list[Conn]) -> Path:
    path = tenant_path(root, shape, t)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_tenant(shape, t, conns), encoding="utf-8")
    return path


def write_tenants(root: Path, shape: Shape) -> int:
    """One file per tenant, matching live; returns the bytes written."""
    size = 0
    for t in range(shape.tenants):
        size += write_tenant(root, shape, t, connections(shape, t)).stat().st_size
    return size


# ---------------------------------------------------------------------------------------------
# The store


def _engine(url: str) -> sa.Engine:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    if engine.dialect.name != "sqlite":
        return engine

    @event.listens_for(engine, "connect")
    def _fast(dbapi: Any, _record: Any) -> None:
        cursor = dbapi.cursor()
        cursor.execute("PRAGMA synchronous=OFF")  # a benchmark fixture: crash safety not needed
        cursor.execute("PRAGMA foreign_keys=OFF")  # ids are consistent by construction
        cursor.close()

    return engine


class _Batches:
    """Rows per table, flushed with executemany whenever a table has BATCH of them."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.rows: dict[sa.Table, list[dict[str, Any]]] = {}
        self.counts: dict[str, int] = {}

    def add(self, table: sa.Table, row: dict[str, Any]) -> None:
        rows = self.rows.setdefault(table, [])
        rows.append(row)
        if len(rows) >= BATCH:
            self.flush_all()  # parents first: a server enforces the foreign keys

    def flush(self, table: sa.Table) -> None:
        rows = self.rows.get(table)
        if rows:
            self.conn.execute(table.insert(), rows)
            self.counts[table.name] = self.counts.get(table.name, 0) + len(rows)
            rows.clear()

    def flush_all(self) -> None:
        # Parents first, so the order is valid even where foreign keys are enforced.
        for table in store.metadata.sorted_tables:
            self.flush(table)


def seed(url: str, shape: Shape, keyring: secrets.Keyring) -> dict[str, int]:
    """Insert the whole fleet as live state, managed and in sync (applied_fp = live).

    Bulk-loaded: rows in key order. shape.grown: tenants in a shuffled order and each tenant's
    connections in reverse, so that row ids and key order disagree as after years of applies.
    """
    now = store.now_ms()
    engine = _engine(url)
    order = shape.order()
    position = {t: rank for rank, t in enumerate(order)}
    try:
        with engine.begin() as conn:
            batches = _Batches(conn)
            for cu in range(shape.n_customers):
                batches.add(store.customers, {"id": cu + 1, "name": f"customer-{cu:03d}"})
            batches.flush_all()
            dependent_id = template_id = 0
            for rank, t in enumerate(order):
                tenant_id = rank + 1
                customer_id = shape.customer_index(t) + 1
                batches.add(
                    store.tenants, {"id": tenant_id, "customer_id": customer_id, "name": shape.tenant(t)}
                )
                conns = connections(shape, t)
                walk = list(enumerate(conns))
                for c, item in reversed(walk) if shape.grown else walk:
                    connection_id = shape.connection_id(t, c, position)
                    s = item.spec()
                    ct = fp = None
                    if item.password is not None:
                        value = password_value(item.password)
                        ct, fp = keyring.encrypt(value), keyring.fingerprint(value)
                    batches.add(
                        store.connections,
                        {
                            "id": connection_id,
                            "tenant_id": tenant_id,
                            **store.spec_columns(s),
                            "password_ct": ct,
                            "password_fp": fp,
                            "managed": True,
                            "version": 1,
                            "applied_fp": spec.spec_fingerprint(s, fp),
                            "applied_name": s.name,
                            "updated_ms": now,
                        },
                    )
                    for k, code in enumerate(item.companies):
                        company_id = (connection_id - 1) * shape.companies + k + 1
                        batches.add(
                            store.companies,
                            {
                                "id": company_id,
                                "connection_id": connection_id,
                                "code": code,
                                "code_key": spec.identity_key(code),
                            },
                        )
                        for kind, name in dependents(shape, code):
                            dependent_id += 1
                            batches.add(
                                store.osr_dependents,
                                {
                                    "id": dependent_id,
                                    "company_id": company_id,
                                    "kind": kind.value,
                                    "name": name,
                                },
                            )
                for i in range(shape.templates):
                    template_id += 1
                    target = i if i < shape.templates - 1 and i < shape.connections else None
                    batches.add(
                        store.report_templates,
                        {
                            "id": template_id,
                            "tenant_id": tenant_id,
                            "name": f"Template {i + 1}",
                            "connection_id": shape.connection_id(t, target, position)
                            if target is not None
                            else None,
                        },
                    )
            batches.flush_all()
            if engine.dialect.name == "postgresql":
                # Explicit ids leave a server's identity sequences at 1: move each past its
                # table's highest id, or the first insert after the seed (an apply) collides.
                for table in (
                    store.customers,
                    store.tenants,
                    store.connections,
                    store.companies,
                    store.osr_dependents,
                    store.report_templates,
                ):
                    conn.exec_driver_sql(
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                        f"(SELECT COALESCE(MAX(id), 0) + 1 FROM {table.name}), false)"
                    )
                # Statistics now, as autovacuum gives a real store in time: left to autovacuum,
                # whether the plan's queries run with them or without depends on when it wakes.
                conn.exec_driver_sql("ANALYZE")
        if engine.dialect.name == "sqlite":
            with engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        engine.dispose()
    return batches.counts


def new_key() -> str:
    return secrets.Keyring.generate().decode()


def run_env(shape: Shape, key: str) -> dict[str, str]:
    """The environment every reconciler run of the benchmark gets (nothing of the caller's)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RECONCILER_", "OSR_", "GITHUB_", "CI_", "BUILD_", "GITLAB_"))
    }
    env.update(password_env(shape))
    env.update({secrets.STORE_KEY_VAR: key, "RECONCILER_ACTOR": "bench", "NO_COLOR": "1"})
    return env


@dataclass(frozen=True)
class Built:
    root: Path
    shape: Shape
    url: str
    db: Path
    env: dict[str, str]
    seconds_files: float
    seconds_store: float
    file_bytes: int
    rows: dict[str, int]  # unused (kept for callers of older versions)


def init_store(url: str, shape: Shape, env: dict[str, str], cwd: Path) -> float:
    """`reconciler store init` on url, then the fleet seeded into it: seconds taken."""
    started = time.perf_counter()
    init = subprocess.run(
        [str(RECONCILER), "store", "init", "--store", url],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if init.returncode != 0:
        raise RuntimeError(f"reconciler store init failed: {init.stderr.strip()}")
    seed(url, shape, secrets.Keyring(env[secrets.STORE_KEY_VAR].encode()))
    return time.perf_counter() - started


def copied(built: Built, root: Path) -> Built:
    """The fleet as built, copied to root (its files, secrets and store, the same key): one to
    plan again in sync after the benchmark edited and applied the first."""
    shutil.copytree(built.root, root, ignore=shutil.ignore_patterns("logs"))
    db = root / built.db.relative_to(built.root)
    return replace(built, root=root, url=f"sqlite:///{db}", db=db)


def build(root: Path, shape: Shape, *, key: str | None = None) -> Built:
    """Tenant files under root/tenants, their secrets under root/.secrets, a store at
    root/store.db initialised by the CLI and bulk-loaded."""
    root.mkdir(parents=True, exist_ok=True)
    key = key or new_key()
    env = run_env(shape, key)
    started = time.perf_counter()
    size = write_tenants(root, shape)
    write_secret_files(root, shape)
    files_s = time.perf_counter() - started
    db = root / "store.db"
    url = f"sqlite:///{db}"
    store_s = init_store(url, shape, env, root)
    # For poking at a kept fleet: `set -a; . ./bench.env; set +a` (a throwaway key).
    (root / "bench.env").write_text(
        "".join(f"{k}={env[k]}\n" for k in sorted(env) if k.startswith(("OSR_", "RECONCILER_")))
    )
    return Built(root, shape, url, db, env, files_s, store_s, size, {})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.fleet",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("dir", type=Path, help="where to write tenants/ and store.db (new)")
    add_shape_arguments(parser)
    args = parser.parse_args(argv)
    if args.dir.exists() and any(args.dir.iterdir()):
        parser.error(f"{args.dir} is not empty")
    shape = shape_from(args)
    built = build(args.dir, shape)
    print(f"{shape.describe()}: files {built.seconds_files:.1f}s, store {built.seconds_store:.1f}s")
    print(f"cd {args.dir} && set -a && . ./bench.env && set +a && {RECONCILER} plan --store {built.url}")
    return 0


def add_shape_arguments(parser: argparse.ArgumentParser) -> None:
    d = Shape()
    parser.add_argument("--tenants", type=int, default=d.tenants, help=f"default {d.tenants}")
    parser.add_argument(
        "--connections", type=int, default=d.connections, help=f"per tenant (default {d.connections})"
    )
    parser.add_argument(
        "--companies", type=int, default=d.companies, help=f"per connection (default {d.companies})"
    )
    parser.add_argument(
        "--dependents", type=int, default=d.dependents, help=f"per company (default {d.dependents})"
    )
    parser.add_argument("--customers", type=int, default=0, help="default: one per 20 tenants")
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply --tenants and --customers (e.g. 0.05 for a quick run)",
    )


def shape_from(args: argparse.Namespace) -> Shape:
    shape = Shape(
        tenants=args.tenants,
        connections=args.connections,
        companies=args.companies,
        dependents=args.dependents,
        customers=args.customers,
    )
    return shape.scaled(args.scale) if args.scale != 1.0 else shape


if __name__ == "__main__":
    raise SystemExit(main())
