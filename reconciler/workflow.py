"""The stages commands share: find the repository, load desired state, open the store, plan.

Like pyinfra's API layer: the CLI calls these; these never print or parse arguments.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler import declared, errors, lazy, secrets, spec

if TYPE_CHECKING:
    from reconciler import catalog, desired, differ, envnames, state, store, windows
    from reconciler import plan as p
else:  # SQLAlchemy only where a store is opened, pydantic's models where a file is read, the
    # differ where a plan is made: `validate`, `--help` and a TAB load only what they use
    catalog, desired, differ, envnames, p, store, windows = map(lazy.module, (
        "reconciler.catalog", "reconciler.desired", "reconciler.differ", "reconciler.envnames",
        "reconciler.plan", "reconciler.store", "reconciler.windows"))

TENANT_ARG = r"^[a-z0-9][a-z0-9-]*/[a-z0-9][a-z0-9-]*$"


def repo_root(start: Path | None = None) -> Path:
    """The git work tree containing start (default: cwd), else start itself."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / ".git").exists():
            return candidate
    return here


def git_commit(root: Path) -> str | None:
    for var in ("GITHUB_SHA", "CI_COMMIT_SHA", "BUILD_SOURCEVERSION"):
        if os.environ.get(var):
            return os.environ[var]
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def parse_tenants(values: Sequence[str]) -> list[str]:
    problems = [errors.Problem("--tenant", 0, 0, f"{v!r} is not CUSTOMER/TENANT (e.g. acme/acme-norway)")
                for v in values if not re.match(TENANT_ARG, v)]
    if problems:
        raise errors.InputError.of(problems)
    return list(dict.fromkeys(values))


@dataclass(frozen=True)
class Context:
    root: Path
    store_url: str | None
    settings: secrets.Settings
    command: str = "this command"  # e.g. "reconciler apply", for messages

    @classmethod
    def make(cls, store_url: str | None, command: str = "this command") -> Context:
        root = repo_root()
        return cls(root, store_url or os.environ.get("RECONCILER_STORE") or None,
                   secrets.Settings.from_env(root), command)

    @property
    def location(self) -> store.Location:
        return store.Location.resolve(self.store_url, self.root)

    def open_store(self, *, readonly: bool, create: bool = False,
                   store_key: bool | None = None, first_use: bool = False) -> store.Store:
        """Open the store; first_use creates the embedded default if it does not exist yet.

        store_key: the command needs the store key, not a plan key (default: when it writes).
        """
        location = self.location
        if (first_use and location.embedded and location.db_path is not None
                and not location.db_path.exists()):
            st = store.Store.open(location, readonly=False, create=True, command=self.command)
            try:
                st.init()
            except BaseException:
                st.close()
                raise
            return st
        return store.Store.open(location, readonly=readonly, create=create,
                                command=self.command, store_key=store_key)

    def default_paths(self, paths: Sequence[str]) -> list[str]:
        if paths:
            return list(paths)
        return [shown_path(self.root / "tenants")]


def shown_path(path: Path) -> str:
    """path relative to the current directory where it is inside it, as messages name files."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def load_windows(ctx: Context) -> tuple[windows.Window, ...]:
    """The change windows of reconciler.yaml at the repository root (none without the file)."""
    path = ctx.root / windows.FILE_NAME
    return windows.load(path, label=shown_path(path))


def with_freeze(result: p.Plan, found: Sequence[windows.Window], at: datetime) -> p.Plan:
    """The plan with each tenant's open or upcoming change window at `at`."""
    if not found:
        return result
    statuses = windows.status(found, at)
    return dataclasses.replace(result, tenants=tuple(
        dataclasses.replace(t, freeze=windows.freeze_of(statuses, t.key)) for t in result.tenants))


def load_desired(ctx: Context, paths: Sequence[str], tenants: Sequence[str] = (),
                 only_files: Sequence[Path] | None = None) -> list[declared.DesiredTenant]:
    """Validate every file in paths; keep those of the --tenant filter (unknown ones are errors)."""
    files = desired.discover(ctx.default_paths(paths)) if only_files is None else list(only_files)
    if tenants:
        by_key = {f"{f.parent.name}/{f.stem}": f for f in files}
        missing = [t for t in tenants if t not in by_key]
        if missing:
            raise errors.InputError.of([errors.Problem(
                "--tenant", 0, 0, f"no tenant file declares {t} (expected tenants/{t}.yaml)")
                for t in missing])
        files = [by_key[t] for t in tenants]
    return desired.load(files, cat=catalog.load(), settings=ctx.settings)


def password_fingerprints(ctx: Context, keyring: secrets.Keyring,
                          tenants: Sequence[declared.DesiredTenant],
                          hidden: Collection[str] = ()) -> differ.PasswordFingerprints:
    """hidden: references (as str) to treat as unavailable, as a saved plan could not see them."""
    fps: dict[declared.SecretRef, str | None] = {}
    for t in tenants:
        for c in t.connections:
            if c.password is not None and c.password not in fps:
                value = None if str(c.password) in hidden else ctx.settings.resolve(c.password)
                fps[c.password] = keyring.fingerprint(value) if value is not None else None
    return fps


def unavailable_passwords(ctx: Context, tenants: Sequence[declared.DesiredTenant]
                          ) -> list[tuple[declared.DesiredTenant, str, declared.SecretRef]]:
    """(tenant, connection name, reference) of every password reference not available here."""
    return [(t, c.spec.name, c.password) for t in tenants for c in t.connections
            if c.password is not None and ctx.settings.resolve(c.password) is None]


def make_plan(ctx: Context, st: store.Store, tenants: Sequence[declared.DesiredTenant], *,
              max_delete: int, fingerprint: bool = True, hidden: Collection[str] = ()) -> p.Plan:
    """Read live state (dependents only where a plan may cascade) and diff it, in one read.

    fingerprint: also fingerprint every live tenant read, for saved plans and apply.
    hidden: password references to plan as if they were not set (see password_fingerprints).
    """
    with st.reading() as conn:
        return plan_from(ctx, st, conn, tenants, max_delete=max_delete, fingerprint=fingerprint,
                         hidden=hidden)[0]


def plan_from(ctx: Context, st: store.Store, conn: store.Transaction,
              tenants: Sequence[declared.DesiredTenant], *, max_delete: int,
              fingerprint: bool = True, hidden: Collection[str] = ()) -> tuple[p.Plan, state.LiveState]:
    """make_plan on an open connection (an apply's transaction), with the live state it read."""
    assert st.keyring is not None
    fps = password_fingerprints(ctx, st.keyring, tenants, hidden)
    live = store.read(conn, [t.key for t in tenants])
    result = differ.diff(tenants, live, fps, max_delete=max_delete)
    needed = differ.cascade_companies(result, live)
    if needed:
        keys = set().union(*needed.values())
        live = live.with_dependents(store.read_dependents(conn, keys))
        result = differ.with_cascades(result, tenants, live, fps)
    return (differ.fingerprinted(result, live, needed) if fingerprint else result), live


def source_specs(ctx: Context, tenant: declared.DesiredTenant) -> list[tuple[Any, list[str], bool]]:
    """One check request per declared connection of a tenant (passwords resolved here)."""
    from reconciler import sources

    requests = []
    for c in tenant.connections:
        s = c.spec
        spec_ = sources.SourceSpec(
            label=f"{tenant.key}/{s.name}", integration=s.integration, server=s.server,
            database=s.database, authentication=s.authentication.value, login=s.login,
            password=ctx.settings.resolve(c.password) if c.password else None,
            encrypt=c.encrypt, trust_server_certificate=c.trust_server_certificate)
        requests.append((spec_, list(s.companies), s.write_back))
    return requests


def check_sources(ctx: Context, result: p.Plan, tenants: Sequence[declared.DesiredTenant],
                  *, timeout: int = 15) -> p.Plan:
    """The plan with the source checks of every declared connection attached."""
    from reconciler import sources

    by_tenant: dict[str, list[p.SourceCheck]] = {}
    requests = []
    for t in tenants:
        for c, req in zip(t.connections, source_specs(ctx, t), strict=True):
            if c.password is not None and req[0].password is None:
                by_tenant.setdefault(t.key, []).append(p.SourceCheck(c.spec.name, (
                    f"{req[0].label}: not checked: the password ({c.password}) is not available "
                    "here; set it and check again",)))
            else:
                requests.append((t.key, c.spec.name, req))
    results = sources.check_many([r for _, _, r in requests], timeout=timeout)
    for (key, name, _), outcome in zip(requests, results, strict=True):
        by_tenant.setdefault(key, []).append(p.SourceCheck(name, outcome.problems))
    return dataclasses.replace(result, tenants=tuple(
        dataclasses.replace(t, checks=tuple(by_tenant.get(t.key, ()))) for t in result.tenants))


def _revision(root: Path, ref: str) -> str:
    """The commit ref names; anything that is not a revision is refused, never given to git as
    an option (`--changed-since=--output=FILE` would make git write a file)."""
    hint = "give a commit, branch or tag (e.g. origin/main; fetch it first in CI)"
    if not ref or ref.startswith("-") or not ref.isprintable() or any(c.isspace() for c in ref):
        raise errors.InputError(f"--changed-since {ref!r} is not a git revision; {hint}")
    try:
        out = subprocess.run(["git", "rev-parse", "--verify", "--quiet", "--end-of-options",
                              f"{ref}^{{commit}}"], cwd=root, capture_output=True, text=True,
                             timeout=60, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise errors.InputError(f"--changed-since {ref}: git failed ({exc})") from None
    commit = out.stdout.strip()
    if out.returncode != 0 or not re.fullmatch(r"[0-9a-f]{40,64}", commit):
        raise errors.InputError(f"--changed-since {ref!r}: no such commit in this repository; {hint}")
    return commit


def changed_files(root: Path, ref: str, paths: Sequence[str]) -> tuple[list[Path], list[str]]:
    """Tenant files changed since ref: (files to plan, lines about deleted/renamed ones)."""
    commit = _revision(root, ref)
    try:
        out = subprocess.run(["git", "diff", "--name-status", "-M", f"{commit}...HEAD", "--", *paths],
                             cwd=root, capture_output=True, text=True, timeout=60, check=False)
        untracked = subprocess.run(["git", "ls-files", "--others", "--exclude-standard", "--", *paths],
                                   cwd=root, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise errors.InputError(f"--changed-since {ref}: git failed ({exc})") from None
    if out.returncode != 0:
        raise errors.InputError(f"--changed-since {ref}: {out.stderr.strip() or 'git diff failed'}; "
                                "give a commit, branch or tag that exists (fetch it first in CI)")
    files: list[Path] = []
    notes: list[str] = []
    for line in out.stdout.splitlines():
        parts = line.split("\t")
        status = parts[0]
        if not parts[-1].endswith((".yaml", ".yml")):
            continue
        if status.startswith("D"):
            notes.append(f"{parts[1]}: deleted since {ref}; a missing tenant file deletes nothing")
        elif status.startswith("R"):
            notes.append(f"{parts[1]} renamed to {parts[2]} since {ref}; not planned here (a "
                         "rename changes which tenant the file declares): plan it by path")
        else:
            files.append(root / parts[-1])
    files += [root / name for name in untracked.stdout.splitlines() if name.endswith((".yaml", ".yml"))]
    return sorted(set(files)), notes


def export_tenant(live: state.LiveTenant, prefix: str) -> dict[str, object]:
    conns: list[dict[str, object]] = []
    variables = envnames.password_variables(
        live.customer, live.tenant, [c.spec.name for c in live.connections], prefix)
    for c in live.connections:
        sql = c.spec.authentication is spec.Authentication.SQL
        conns.append(c.spec.document(password={"env": variables[c.spec.name]} if sql else None))
    return {"version": 1, "customer": live.customer, "tenant": live.tenant, "prune": False,
            "connections": conns}


def companies_spec(ctx: Context, *, tenant: str | None, connection: str | None,
                   integration: str | None, server: str | None, database: str | None,
                   authentication: str | None, login: str | None, password_env: str | None,
                   encrypt: bool = True, trust_server_certificate: bool = False) -> Any:
    """The source to list companies on: a declared connection, or one given by flags.

    --password-env sends a variable's value to the server named on the command line, so it is
    held to the rule of tenant files: only variables meant for tenant secrets (the prefix).
    """
    from reconciler import sources

    if tenant or connection:
        if not (tenant and connection):
            raise errors.InputError("give both --tenant CUSTOMER/TENANT and --connection NAME, "
                                    "or --integration and --server for a connection not declared yet")
        (key,) = parse_tenants([tenant])
        (declared,) = load_desired(ctx, (), [key])
        match = [c for c in declared.connections
                 if spec.identity(c.spec.name) == spec.identity(connection)]
        if not match:
            names = ", ".join(c.spec.name for c in declared.connections) or "none"
            raise errors.InputError(f"{declared.path}: no connection named {connection!r} "
                                    f"(declared: {names})")
        for c, request in zip(declared.connections, source_specs(ctx, declared), strict=True):
            if c is match[0]:
                if c.password is not None and request[0].password is None:
                    raise errors.SecretError(f"{request[0].label}: the password ({c.password}) is "
                                             "not available here; set it and try again")
                return request[0]
    if not (integration and server):
        raise errors.InputError("give --tenant and --connection, or --integration and --server "
                                "(with --database, --authentication, --login, --password-env)")
    entry = catalog.load().get(integration)
    if entry is None:
        raise errors.InputError(f"--integration {integration!r} is not in the catalog; known: "
                                + ", ".join(catalog.load().keys()))
    auth = authentication or ("sql" if login else "windows")
    password = None
    if password_env:
        refused = ctx.settings.check_reference(password_env, None)
        if refused:
            raise errors.SecretError(f"--password-env: {refused}")
        password = os.environ.get(password_env)
        if password is None:
            raise errors.SecretError(f"--password-env {password_env}: the variable is not set")
        from reconciler import redaction

        redaction.register(password)
    if auth == "sql" and (login is None or password is None):
        raise errors.InputError("--authentication sql needs --login and --password-env")
    return sources.SourceSpec(label=f"{server}/{database or entry.default_database}",
                              integration=integration, server=server,
                              database=database or entry.default_database, authentication=auth,
                              login=login, password=password, encrypt=encrypt,
                              trust_server_certificate=trust_server_certificate)
