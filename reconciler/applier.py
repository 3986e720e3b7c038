"""Carry out a Plan in one transaction, under per-tenant leases and every guard."""

from __future__ import annotations

import contextlib
import getpass
import os
import signal
import socket
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from reconciler import errors, freeze, secrets, spec, store
from reconciler import plan as p

DEFAULT_LEASE_S = 15 * 60
# Testing knob: stretch the transaction so that kill -9 tests can land inside it.
_DELAY_VAR = "RECONCILER_DEBUG_ACTION_DELAY_MS"
DEFAULT_LOCK_TIMEOUT_S = 0.0


def actor() -> str:
    """RECONCILER_ACTOR, else the CI's user, else user@host."""
    for var in ("RECONCILER_ACTOR", "GITHUB_ACTOR", "GITLAB_USER_LOGIN", "BUILD_REQUESTEDFOR"):
        if os.environ.get(var):
            return os.environ[var]
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def ci_job() -> str | None:
    if os.environ.get("GITHUB_RUN_ID"):
        server = os.environ.get("GITHUB_SERVER_URL", "https://github.com")
        repository = os.environ.get("GITHUB_REPOSITORY", "")
        return f"{server}/{repository}/actions/runs/{os.environ['GITHUB_RUN_ID']}"
    return os.environ.get("CI_JOB_URL") or os.environ.get("BUILD_BUILDURI") or None


def holder() -> store.Holder:
    return store.Holder(actor(), socket.gethostname(), os.getpid(), ci_job())


def _holder_is_dead(h: store.Holder) -> bool:
    """A lease of a process on this host that no longer exists can be taken over at once."""
    if h.host != socket.gethostname():
        return False
    try:
        os.kill(h.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@contextlib.contextmanager
def _terminate_as_exit() -> Iterator[None]:
    """SIGTERM unwinds like SIGINT, so that `finally` releases the leases."""
    def handler(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def leases(st: store.Store, scopes: Sequence[str], *, timeout_s: float,
           lease_s: float = DEFAULT_LEASE_S) -> Iterator[None]:
    """Hold a lease on every scope (taken in sorted order) for the duration of the block."""
    me = holder()
    taken: list[str] = []
    wanted = sorted(scopes)
    deadline = time.monotonic() + timeout_s
    with _terminate_as_exit():
        try:
            while wanted:
                taken, current = store.try_locks(st, wanted, me, int(lease_s * 1000), _holder_is_dead)
                if taken:
                    break
                if time.monotonic() >= deadline:
                    if current is None:
                        raise errors.RefusedError(f"{', '.join(wanted)}: another apply is taking "
                                                  f"the locks; waited {timeout_s:g}s (--lock-timeout)")
                    raise errors.RefusedError(
                        f"{current.scope}: {current.describe()}; waited {timeout_s:g}s "
                        f"(--lock-timeout). If that apply is gone, run `reconciler unlock {current.id}`")
                time.sleep(min(0.5, max(0.05, deadline - time.monotonic())))
            yield
        finally:
            if taken:
                with contextlib.suppress(errors.StoreError):
                    store.release_locks(st, taken)


@dataclass(frozen=True)
class Applied:
    actions: int
    cascade: int


def check_guards(plan: p.Plan, *, allow_cascade: bool, allow_mass_delete: bool,
                 skip_source_checks: bool = False) -> None:
    problems = []
    if not skip_source_checks:
        problems += [errors.Problem("", 0, 0, f"refused: source check failed: {line}; fix it or "
                                    "pass --skip-source-checks")
                     for _, check in plan.failed_checks for line in check.problems]
    if plan.mass_delete and not allow_mass_delete:
        problems += [errors.Problem("", 0, 0, f"refused: {r}; review the plan and pass "
                                    "--allow-mass-delete if this is intended") for r in plan.mass_delete]
    if plan.summary.cascade and not allow_cascade:
        names = sorted({f"{t.key}/{a.connection}" for t, a in plan.actions() if a.cascade and not a.blocked})
        problems.append(errors.Problem("", 0, 0, f"refused: the plan deletes {plan.summary.cascade} "
                                       f"dependents ({', '.join(names)}); review the cascade and "
                                       "pass --allow-cascade"))
    missing = [f"{t.key}/{a.connection} needs the password from {a.needs_secret}, which is not set"
               for t, a in plan.actions() if a.needs_secret and not a.blocked]
    problems += [errors.Problem("", 0, 0, f"refused: {m}") for m in missing]
    if problems:
        raise errors.RefusedError("refused", problems=tuple(problems))


def check_freeze(plan: p.Plan, *, override: str | None) -> dict[str, str]:
    """Refuse tenants with changes inside an open change window (DESIGN §11) unless overridden;
    with an override, what the audit log records per tenant."""
    frozen = [(t.key, t.freeze.active) for t in plan.frozen if t.freeze and t.freeze.active]
    if frozen and override is None:
        raise errors.RefusedError("frozen", problems=tuple(errors.Problem("", 0, 0, (
            f"refused: {key} is inside {freeze.until_text(o)} "
            f"({o.end.astimezone(UTC):%Y-%m-%d %H:%M} UTC); nothing was applied. Apply after it "
            "ends, or pass --override-freeze REASON")) for key, o in frozen))
    return {key: f'window "{o.window}" until {freeze.local_text(o.end)}: {override}'
            for key, o in frozen}


def _password(a: p.Action, settings: secrets.Settings, keyring: secrets.Keyring,
              live_fp: str | None) -> tuple[store.Password | None, bool, str | None]:
    """(new password or None to keep, whether to clear it, the fingerprint after apply)."""
    assert a.desired is not None
    ref = a.desired.password
    if ref is None:
        return None, True, None
    value = settings.resolve(ref)
    if value is None:
        return None, False, live_fp  # not available here: keep what is stored
    fp = keyring.fingerprint(value)
    if fp == live_fp:
        return None, False, fp
    return store.Password(keyring.encrypt(value), fp), False, fp


def apply(st: store.Store, plan: p.Plan, *, settings: secrets.Settings, commit: str | None,
          lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S,
          freeze_overrides: dict[str, str] | None = None) -> Applied:
    """Apply every unblocked action of the plan, all or nothing.

    freeze_overrides: per tenant, the change window overridden and why (check_freeze), written
    to the audit log with each of its actions.
    """
    assert st.keyring is not None
    keyring = st.keyring
    scopes = [t.key for t in plan.tenants if any(not a.blocked for a in t.actions)]
    who = actor()
    delay_s = int(os.environ.get(_DELAY_VAR) or 0) / 1000
    done = cascade = 0
    with leases(st, scopes, timeout_s=lock_timeout_s), st.transaction() as conn:
        live = store.read(conn, scopes)
        live = live.with_dependents(store.read_dependents(
            conn, [k for t in plan.tenants if t.key in scopes for k in t.read_companies]))
        audit = []
        for t in plan.tenants:
            if t.key not in scopes:
                continue
            lt = live.tenants.get(t.key)
            if lt is None or lt.object_fp() != t.live_fp:
                raise errors.ConflictError(f"{t.key}: the live store changed since the plan was "
                                           "made; nothing was applied, plan again")
            live_by_id = {c.id: c for c in lt.connections}
            for a in t.actions:
                if a.blocked:
                    continue
                label = f"{t.key}/{a.connection}"
                live_conn = live_by_id.get(a.live_id) if a.live_id is not None else None
                # Only the dependents read (and fingerprinted) in this transaction may go.
                listed = {d.key for c in live_conn.companies for d in c.dependents} if live_conn else set()
                if a.action is p.ActionKind.DELETE:
                    assert a.live_id is not None and a.live_version is not None
                    store.delete_connection(conn, a.live_id, a.live_version, label=label,
                                            listed=listed)
                else:
                    assert a.desired is not None
                    password, clear, fp = _password(a, settings, keyring,
                                                    live_conn.password_fp if live_conn else None)
                    applied = spec.spec_fingerprint(a.desired.spec, fp)
                    if a.action is p.ActionKind.CREATE:
                        store.create_connection(conn, lt.id, a.desired.spec, password=password,
                                                managed=True, applied_fp=applied)
                    else:
                        assert a.live_id is not None and a.live_version is not None
                        store.update_connection(conn, a.live_id, a.live_version, a.desired.spec,
                                                password=password, clear_password=clear,
                                                managed=True, applied_fp=applied, label=label,
                                                listed=listed)
                done += 1
                cascade += len(a.cascade)
                if delay_s:
                    time.sleep(delay_s)
                audit.append({"actor": who[:store.NAME], "git_commit": commit,
                              "customer": t.customer, "tenant": t.tenant,
                              "action": a.action.value, "connection": a.connection,
                              "connection_id": a.live_id, "reason": a.reason.value,
                              "fields": ",".join(a.changed_fields), "cascade_count": len(a.cascade),
                              "freeze_override": (freeze_overrides or {}).get(t.key)})
        store.write_audit(conn, audit)
    return Applied(done, cascade)
