"""The stages a command runs: load desired -> plan (or drift) -> check sources -> freeze.

Rendering, the guards and apply follow in the commands (render, applier). Like pyinfra's API
layer: the CLI calls these; these never print or parse arguments. Git is in gitrepo, flag
parsing in commands/options.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler import declared, errors, gitrepo, lazy, secrets

if TYPE_CHECKING:
    from reconciler import catalog, desired, differ, state, store, windows
    from reconciler import plan as p
    from reconciler.sources import SourceSpec
else:  # SQLAlchemy only where a store is opened, pydantic's models where a file is read, the
    # differ where a plan is made: `validate`, `--help` and a TAB load only what they use
    catalog, desired, differ, p, store, windows = map(
        lazy.module,
        (
            "reconciler.catalog",
            "reconciler.desired",
            "reconciler.differ",
            "reconciler.plan",
            "reconciler.store",
            "reconciler.windows",
        ),
    )


@dataclass(frozen=True)
class Context:
    root: Path
    store_url: str | None
    settings: secrets.Settings
    command: str = "this command"  # e.g. "reconciler apply", for messages
    warn: Callable[[str], None] | None = None  # a warning line on stderr (the command's Out.info)

    @classmethod
    def make(
        cls, store_url: str | None, command: str = "this command", warn: Callable[[str], None] | None = None
    ) -> Context:
        root = gitrepo.repo_root()
        return cls(
            root,
            store_url or os.environ.get("RECONCILER_STORE") or None,
            secrets.Settings.from_env(root),
            command,
            warn,
        )

    @property
    def location(self) -> store.Location:
        return store.Location.resolve(self.store_url, self.root)

    def open_store(
        self, *, readonly: bool, create: bool = False, store_key: bool | None = None, first_use: bool = False
    ) -> store.Store:
        """Open the store; first_use creates the embedded default if it does not exist yet.

        store_key: the command needs the store key, not a plan key (default: when it writes).
        """
        location = self.location
        loose = store.loose_key_file(location)
        if loose is not None and self.warn is not None:
            self.warn(f"warning: {loose}")
        if first_use and location.embedded and location.db_path is not None and not location.db_path.exists():
            st = store.Store.open(location, readonly=False, create=True, command=self.command)
            try:
                st.init()
            except BaseException:
                st.close()
                raise
            return st
        return store.Store.open(
            location, readonly=readonly, create=create, command=self.command, store_key=store_key
        )

    def default_paths(self, paths: Sequence[str]) -> list[str]:
        """paths (of the root's work tree: own_work_tree), or tenants/ at the root."""
        refuse_urls(paths)
        if not paths:
            default = self.root / "tenants"
            root = os.path.realpath(self.root)
            if not os.path.realpath(default).startswith(root.rstrip(os.sep) + os.sep):
                # tenants/ as a link out of the root (into another work tree: its windows were
                # skipped); asked of git only then, not on every command's start
                self.own_work_tree([str(default)])
            return [shown_path(default)]
        self.own_work_tree(paths)
        return list(paths)

    def own_work_tree(self, paths: Sequence[str]) -> None:
        """Refuse tenant files (PATH, or a saved plan's) of another git work tree than the one
        the command runs in: their change windows (reconciler.yaml), secrets folder and
        embedded store are found from the root, and an apply run from elsewhere would skip
        their freezes. A work tree inside the root's (tenants/ as a git submodule) is the root's."""
        here = gitrepo.work_tree(self.root)
        trees: dict[str, Path | None] = {}  # by folder: a pre-commit hook passes many files
        for path in paths:
            folder = os.path.abspath(path) if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
            if folder not in trees:
                trees[folder] = gitrepo.work_tree(Path(path))
            tree = trees[folder]
            if tree is not None and (here is None or not tree.is_relative_to(here)):
                raise errors.InputError(
                    f"{path}: the tenant files are in the git work tree {tree}, and this command "
                    f"runs in {here or self.root}; run it from {tree} (its change windows, secrets "
                    "folder and store are found from there)"
                )


def shown_path(path: Path) -> str:
    """path relative to the current directory where it is inside it, as messages name files."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# windows.FILE_NAME, named here too so that a repository without the file never imports windows
# (its models, pydantic, cron and zone data); tests/test_windows.py checks that they agree.
WINDOWS_FILE = "reconciler.yaml"


def load_windows(ctx: Context) -> tuple[windows.Window, ...]:
    """The change windows of reconciler.yaml at the repository root (none without the file)."""
    path = ctx.root / WINDOWS_FILE
    if not path.exists() and not path.is_symlink():  # a broken link is an error, not no windows
        return ()
    return windows.load(path, label=shown_path(path))


def with_freeze(result: p.Plan, found: Sequence[windows.Window], at: datetime) -> p.Plan:
    """The plan with each tenant's open or upcoming change window at `at`."""
    if not found:
        return result
    statuses = windows.status(found, at)
    return dataclasses.replace(
        result,
        tenants=tuple(
            dataclasses.replace(t, freeze=windows.freeze_of(statuses, t.key)) for t in result.tenants
        ),
    )


def refuse_urls(paths: Sequence[str]) -> None:
    """A store URL given as PATH (`reconciler import postgresql://user:secret@host/db`) is not
    echoed in a message naming the path, nor made a folder with its password in the name."""
    for path in paths:
        if "://" in path and not os.path.lexists(path):
            raise errors.InputError(
                "a PATH holds '://' and names no file (not shown: it may be a store URL with its "
                "password); give the store with --store URL (or RECONCILER_STORE), and as PATH a "
                "folder or tenant file"
            )


def desired_files(ctx: Context, paths: Sequence[str], tenants: Sequence[str] = ()) -> list[str]:
    """The tenant files in paths (sorted), or those of the --tenant filter (unknown ones are
    errors)."""
    files = desired.discover(ctx.default_paths(paths))
    if tenants:
        by_key = {declared.path_key(f): f for f in files}
        missing = [t for t in tenants if t not in by_key]
        if missing:
            raise errors.InputError.of(
                [
                    errors.Problem(
                        "--tenant", 0, 0, f"no tenant file declares {t} (expected tenants/{t}.yaml)"
                    )
                    for t in missing
                ]
            )
        files = [by_key[t] for t in tenants]
    return files


def load_desired(
    ctx: Context, paths: Sequence[str], tenants: Sequence[str] = ()
) -> list[declared.DesiredTenant]:
    """Validate every file in paths; keep those of the --tenant filter (unknown ones are errors)."""
    return desired.load(desired_files(ctx, paths, tenants), cat=catalog.load(), settings=ctx.settings)


def each_valid(
    ctx: Context,
    files: Sequence[Path | str],
    *,
    keep: dict[str, declared.DesiredTenant] | None = None,
    size: int | None = None,
) -> Iterator[declared.DesiredTenant]:
    """The tenant of each valid file, read one at a time; the problems of every file raised
    together (errors.InputError) after the last tenant: a pass that checks the whole fleet
    before anything is leased or contacted, in the memory of one file.

    keep: filled with the first batch's tenants (size files, as read_batches), by the path they
    were read from, which read_batches then plans without reading their files again
    (read_before): a fleet of a batch or fewer is read once; memory holds a batch more."""
    reader = desired.FileReader(cat=catalog.load(), settings=ctx.settings)
    room = batch_size(size) if keep is not None else 0
    for path in files:
        tenant = reader.read(path)
        if tenant is not None:
            if keep is not None and len(keep) < room:
                keep[tenant.path] = tenant
            yield tenant
    reader.check()


def refuse_unknown(st: store.Store, keys: Sequence[str], paths: Sequence[str] | None = None) -> None:
    """errors.InputError naming every tenant (key, from its file at path; without paths, from
    --tenant) the store does not know; tenants are created in the portal. Reads only the
    tenants' names."""
    with st.reading() as conn:
        rows = store.tenant_rows(conn)
    problems = differ.unknown_tenants_named(keys, rows.by_key, rows.known, paths)
    if problems:
        raise errors.InputError.of(problems)


def password_fingerprints(
    ctx: Context,
    keyring: secrets.Keyring,
    tenants: Sequence[declared.DesiredTenant],
    hidden: Collection[str] = (),
) -> differ.PasswordFingerprints:
    """hidden: references (as str) to treat as unavailable, as a saved plan could not see them."""
    fps: dict[declared.SecretRef, str | None] = {}
    resolve, fingerprint = ctx.settings.resolve, keyring.fingerprint
    for t in tenants:
        for c in t.connections:
            ref = c.password
            if ref is not None and ref not in fps:
                # Only fingerprinted here (never shown, stored or sent): not kept for redaction.
                value = None if hidden and str(ref) in hidden else resolve(ref, register=False)
                fps[ref] = fingerprint(value) if value is not None else None
    return fps


def unavailable_passwords(
    ctx: Context, tenants: Sequence[declared.DesiredTenant]
) -> list[tuple[declared.DesiredTenant, str, declared.SecretRef]]:
    """(tenant, connection name, reference) of every password reference not available here.

    Only asked whether each is there: the values are not kept for redaction (a fleet's tens of
    thousands would stay in memory to the end); the applier registers those it writes."""
    return [
        (t, c.spec.name, c.password)
        for t in tenants
        for c in t.connections
        if c.password is not None and ctx.settings.resolve(c.password, register=False) is None
    ]


def make_plan(
    ctx: Context,
    st: store.Store,
    tenants: Sequence[declared.DesiredTenant],
    *,
    max_delete: int,
    fingerprint: bool = True,
) -> p.Plan:
    """The plan of these tenants against live state, every guard marked, all read at once
    (dependents only where the plan may cascade): the commands read a fleet in batches
    (plan_files), this is the whole-fleet plan they must equal.

    fingerprint: also fingerprint every live tenant read, as a saved plan records them.
    """
    assert st.keyring is not None
    fps = password_fingerprints(ctx, st.keyring, tenants)
    with st.reading() as conn:
        live = store.read(conn, [t.key for t in tenants])
        result = differ.diff(tenants, live, fps, max_delete=max_delete)
        needed = differ.cascade_companies(result, live)
        if needed:
            live = live.with_dependents(
                store.read_dependents(conn, set().union(*needed.values())), needed.keys()
            )
            result = differ.with_cascades(result, live)
        result = deleted_by_hand(st, result, live, conn)
    return differ.fingerprinted(result, live, needed) if fingerprint else result


# Plan and drift read and diff the fleet in batches of this many tenant files: memory stays
# bounded by a batch, whatever the fleet's size; each batch is one query per table.
BATCH_TENANTS = 250


def batch_size(size: int | None) -> int:
    """size, or BATCH_TENANTS read when called (tests make it small)."""
    return BATCH_TENANTS if size is None else size


@dataclass(frozen=True)
class Batch:
    """Desired and live state of a batch of tenants, read together (see read_batches)."""

    desired: tuple[declared.DesiredTenant, ...]
    live: state.LiveState
    fps: differ.PasswordFingerprints
    dependents: Callable[[Iterable[int]], dict[int, tuple[state.Dependent, ...]]]


def read_batches(
    ctx: Context,
    st: store.Store,
    files: Sequence[Path | str],
    *,
    size: int | None = None,
    hidden: Collection[str] = (),
    conn: store.Transaction | None = None,
    read_before: Mapping[str, declared.DesiredTenant] | None = None,
) -> Iterator[Batch]:
    """The fleet in batches of `size` tenant files, in the order given: each batch's files
    validated, its live tenants read (one query per table) and its passwords fingerprinted.

    Every file is validated: the problems of all batches are raised together at the end, and no
    batch is yielded after the first problem. The seam for any stage that wants the whole fleet
    in bounded memory (plan, drift and apply). conn: read there (apply's transaction).
    read_before: tenants validated already, by the path they were read from (apply's check
    keeps its first batch's: its files are not read and validated twice).
    """
    assert st.keyring is not None
    size = batch_size(size)
    reader = desired.FileReader(cat=catalog.load(), settings=ctx.settings)
    before = read_before or {}

    def read(path: Path | str) -> declared.DesiredTenant | None:
        tenant = before.get(path) if isinstance(path, str) else None
        return reader.read(path) if tenant is None else reader.add(tenant)

    with contextlib.nullcontext(conn) if conn is not None else st.reading() as conn:
        tenants_read: list[Any] | None = None
        for start in range(0, len(files), size):
            loaded = [t for t in map(read, files[start : start + size]) if t is not None]
            if reader.problems:  # every file is still validated; no batch is yielded
                continue
            if tenants_read is None:
                tenants_read = store.tenant_rows(conn)
            live = store.read(conn, [t.key for t in loaded], tenants_read=tenants_read)
            yield Batch(
                tuple(loaded),
                live,
                password_fingerprints(ctx, st.keyring, loaded, hidden),
                functools.partial(store.read_dependents, conn),
            )
            del loaded, live  # not alive while the next batch is read: one batch at a time
    reader.check()


def batch_plan(
    batch: Batch, result: p.Plan, *, fingerprint: bool, changing_only: bool = False
) -> tuple[p.Plan, state.LiveState]:
    """A batch's plan with its cascades listed (their dependents read), fingerprinted if asked:
    every tenant (a saved plan), or with changing_only the tenants it changes (apply compares
    those when it reads them again; every connection of a fleet costs one)."""
    live = batch.live
    needed = differ.cascade_companies(result, live)
    if needed:
        live = live.with_dependents(batch.dependents(set().union(*needed.values())), needed.keys())
        result = differ.with_cascades(result, live)
    if not fingerprint:
        return result, live
    only = {t.key for t in result.tenants if t.has_changes} if changing_only else None
    return differ.fingerprinted(result, live, needed, only=only), live


def plan_files(
    ctx: Context,
    st: store.Store,
    files: Sequence[str],
    *,
    max_delete: int,
    fingerprint: bool = True,
    check_sources: bool = False,
    size: int | None = None,
) -> tuple[p.Plan, list[str]]:
    """make_plan for the tenant files, read and diffed in bounded batches: (the plan, the
    password references not available here, as a saved plan records them).

    The plan keeps only what rendering needs; the guards that span tenants (--max-delete, a
    tenant emptied) are computed over every batch at the end, as make_plan computes them.
    check_sources: each batch's servers checked (source_checks) once it is planned, after every
    file was found valid and every tenant known: bad input contacts no server. That check keeps
    the first batch's tenants, which are planned as checked, not read again (read_batches).
    """
    first: dict[str, declared.DesiredTenant] = {}
    if check_sources:
        valid = [(t.key, t.path) for t in each_valid(ctx, files, keep=first, size=size)]
        refuse_unknown(st, [key for key, _ in valid], [path for _, path in valid])
    tenants: list[p.TenantPlan] = []
    counts: dict[str, int] = {}
    unknown: list[errors.Problem] = []
    uncompared: list[str] = []
    for batch in read_batches(ctx, st, files, size=size, read_before=first):
        try:
            found = differ.diff_tenants(batch.desired, batch.live, batch.fps)
        except errors.InputError as exc:
            unknown.extend(exc.problems)
            continue
        if unknown:
            continue
        result, live = batch_plan(batch, p.Plan(found, max_delete), fingerprint=fingerprint)
        result = deleted_by_hand(st, result, live)
        if check_sources:
            result = result.with_checks(source_checks(ctx, batch.desired))
        tenants.extend(result.tenants)
        counts.update(differ.live_counts(live, result.tenants))
        uncompared += [str(ref) for ref, fp in batch.fps.items() if fp is None]
        del batch, found, result, live  # freed before the next batch is read
    if unknown:
        raise errors.InputError.of(unknown)
    tenants.sort(key=lambda t: t.key)
    return p.Plan(tuple(tenants), max_delete, differ.mass_deletes(tenants, counts, max_delete)), uncompared


def drift_files(ctx: Context, st: store.Store, files: Sequence[str], *, size: int | None = None) -> p.Plan:
    """drift for the tenant files, read and diffed in bounded batches."""
    tenants: list[p.TenantPlan] = []
    unknown: list[errors.Problem] = []
    for batch in read_batches(ctx, st, files, size=size):
        try:
            result = differ.drift(batch.desired, batch.live, batch.fps)
        except errors.InputError as exc:
            unknown.extend(exc.problems)
            continue
        if not unknown:
            result = batch_plan(batch, result, fingerprint=False)[0]
            tenants.extend(deleted_by_hand(st, result, batch.live).tenants)
        del batch, result  # freed before the next batch is read
    if unknown:
        raise errors.InputError.of(unknown)
    tenants.sort(key=lambda t: t.key)
    return p.Plan(tuple(tenants), differ.DEFAULT_MAX_DELETE)


# Audit entries read per tenant that creates something (drift --write reads as many).
AUDIT_LIMIT = 1_000_000


def deleted_in_portal(
    st: store.Store, result: p.Plan, live: state.LiveState, conn: store.Transaction | None = None
) -> dict[str, set[str]]:
    """The names (identities) of each tenant that the tool applied and the portal deleted since
    (audit.deleted_in_portal), read from the audit log only for the tenants that create
    something: only a create can be of such a name. conn: read there (apply's transaction)."""
    keys = [t.key for t in result.tenants if any(a.action is p.ActionKind.CREATE for a in t.actions)]
    if not keys:
        return {}
    from reconciler import audit

    live_ids = {c.id for k in keys for c in live.tenants[k].connections}
    # read as it is folded: one name kept per tenant and name
    with contextlib.nullcontext(conn) if conn is not None else st.reading() as conn:
        return audit.deleted_in_portal(store.audit_names(conn, keys, AUDIT_LIMIT), live_ids)


def deleted_by_hand(
    st: store.Store, result: p.Plan, live: state.LiveState, conn: store.Transaction | None = None
) -> p.Plan:
    """A create of a connection the tool applied and the portal deleted since is drift, not
    pending (git did not change; someone deleted it by hand): the audit log tells. Marked by
    plan, apply and drift alike (a saved plan's statuses are compared with apply's), once the
    cascades are listed: listing them plans a tenant again, unmarked."""
    deleted = deleted_in_portal(st, result, live, conn)
    if not deleted:
        return result
    from reconciler import spec

    def marked(t: p.TenantPlan) -> p.TenantPlan:
        gone = deleted.get(t.key, set())
        return dataclasses.replace(
            t,
            actions=tuple(
                dataclasses.replace(a, status=p.Status.DRIFT)
                if a.action is p.ActionKind.CREATE and spec.identity(a.connection) in gone
                else a
                for a in t.actions
            ),
        )

    return dataclasses.replace(
        result, tenants=tuple(marked(t) if t.key in deleted else t for t in result.tenants)
    )


def source_specs(ctx: Context, tenant: declared.DesiredTenant) -> list[tuple[SourceSpec, list[str], bool]]:
    """One check request per declared connection of a tenant (passwords resolved here)."""
    from reconciler import sources

    requests = []
    for c in tenant.connections:
        s = c.spec
        spec_ = sources.SourceSpec(
            label=f"{tenant.key}/{s.name}",
            integration=s.integration,
            server=s.server,
            database=s.database,
            authentication=s.authentication,
            login=s.login,
            password=ctx.settings.resolve(c.password) if c.password else None,
            encrypt=c.encrypt,
            trust_server_certificate=c.trust_server_certificate,
        )
        requests.append((spec_, list(s.companies), s.write_back))
    return requests


def source_checks(
    ctx: Context, tenants: Iterable[declared.DesiredTenant], *, timeout: int = 15
) -> dict[str, tuple[p.SourceCheck, ...]]:
    """The source checks of every declared connection of these tenants, by tenant key (a
    batch's: the servers of a fleet are checked a batch at a time, as it is read)."""
    from reconciler import sources

    by_tenant: dict[str, list[p.SourceCheck]] = {}
    requests = []
    for t in tenants:
        by_tenant[t.key] = []
        for c, req in zip(t.connections, source_specs(ctx, t), strict=True):
            if c.password is not None and req[0].password is None:
                by_tenant[t.key].append(
                    p.SourceCheck(
                        c.spec.name,
                        (
                            f"{req[0].label}: not checked: the password ({c.password}) is not available "
                            "here; set it and check again",
                        ),
                    )
                )
            else:
                requests.append((t.key, c.spec.name, req))
    results = sources.check_many([r for _, _, r in requests], timeout=timeout)
    for (key, name, _), outcome in zip(requests, results, strict=True):
        by_tenant[key].append(p.SourceCheck(name, outcome.problems))
    return {key: tuple(found) for key, found in by_tenant.items()}
