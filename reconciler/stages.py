"""The stages a command runs: load desired -> plan (or drift) -> check sources -> freeze.

Rendering, the guards and apply follow in the commands (render, applier). Like pyinfra's API
layer: the CLI calls these; these never print or parse arguments. Git is in gitrepo, flag
parsing in commands/options.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler import (
    catalog,
    declared,
    desired,
    differ,
    errors,
    gitrepo,
    secrets,
    state,
    store,
    windows,
)
from reconciler import plan as p

if TYPE_CHECKING:
    from reconciler.sources import SourceSpec

@dataclass(frozen=True)
class Context:
    root: Path
    store_url: str | None
    settings: secrets.Settings
    command: str = "this command"  # e.g. "reconciler apply", for messages

    @classmethod
    def make(cls, store_url: str | None, command: str = "this command") -> Context:
        root = gitrepo.repo_root()
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


def _read_and_diff(st: store.Store, tenants: Sequence[declared.DesiredTenant],
                   fps: differ.PasswordFingerprints, diff: Callable[[state.LiveState], p.Plan],
                   ) -> tuple[p.Plan, state.LiveState, dict[str, set[int]]]:
    """Read live state (dependents only where the plan may cascade) and diff it, in one read."""
    with st.reading() as conn:
        live = store.read(conn, [t.key for t in tenants])
        result = diff(live)
        needed = differ.cascade_companies(result, live)
        if needed:
            keys = set().union(*needed.values())
            live = live.with_dependents(store.read_dependents(conn, keys))
            result = differ.with_cascades(result, tenants, live, fps)
    return result, live, needed


def make_plan(ctx: Context, st: store.Store, tenants: Sequence[declared.DesiredTenant], *,
              max_delete: int, fingerprint: bool = True, hidden: Collection[str] = ()) -> p.Plan:
    """The plan of these tenants against live state, every guard marked.

    fingerprint: also fingerprint every live tenant read, for saved plans and apply.
    hidden: password references to plan as if they were not set (see password_fingerprints).
    """
    assert st.keyring is not None
    fps = password_fingerprints(ctx, st.keyring, tenants, hidden)
    result, live, needed = _read_and_diff(
        st, tenants, fps, lambda live: differ.diff(tenants, live, fps, max_delete=max_delete))
    return differ.fingerprinted(result, live, needed) if fingerprint else result


def drift(ctx: Context, st: store.Store, tenants: Sequence[declared.DesiredTenant]) -> p.Plan:
    """What differs between these tenants and live state, for `drift`: nothing is applied from
    it, so it has no deletion guards and no live fingerprints."""
    assert st.keyring is not None
    fps = password_fingerprints(ctx, st.keyring, tenants)
    result, _, _ = _read_and_diff(st, tenants, fps, lambda live: differ.drift(tenants, live, fps))
    return result


def source_specs(ctx: Context, tenant: declared.DesiredTenant
                 ) -> list[tuple[SourceSpec, list[str], bool]]:
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
