"""Carry out a Plan in one transaction, under per-tenant leases (reconciler.locks) and guards."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import UTC

from reconciler import errors, freeze, locks, secrets, spec, store
from reconciler import plan as p

# Testing knob: stretch the transaction so that kill -9 tests can land inside it.
_DELAY_VAR = "RECONCILER_DEBUG_ACTION_DELAY_MS"
DEFAULT_LOCK_TIMEOUT_S = 0.0


@dataclass(frozen=True)
class Applied:
    """What a committed apply did; the leases it could not release; a signal that came late."""

    actions: int
    cascade: int
    unreleased: tuple[locks.Unreleased, ...] = ()
    signal: int | None = None  # arrived after the commit had begun: recorded, not obeyed


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
        names = sorted({f"{t.key}/{a.connection}" for t, a in plan.all_actions()
                        if a.cascade and not a.blocked})
        problems.append(errors.Problem("", 0, 0, f"refused: the plan deletes {plan.summary.cascade} "
                                       f"dependents ({', '.join(names)}); review the cascade and "
                                       "pass --allow-cascade"))
    missing = [f"{t.key}/{a.connection} needs the password from {a.needs_secret}, which is not set"
               for t, a in plan.all_actions() if a.needs_secret and not a.blocked]
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
          held: locks.Held | None = None,
          lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S,
          freeze_overrides: dict[str, str] | None = None) -> Applied:
    """Apply every unblocked action of the plan, all or nothing, then release the leases.

    held: the leases the caller took before it planned; without, the tenants are locked here.
    Once the commit has begun, the result is returned whatever happens while releasing.
    freeze_overrides: per tenant, the change window overridden and why (check_freeze), written
    to the audit log with each of its actions.
    """
    if held is None:
        with locks.leases(st, [t.key for t in plan.tenants], timeout_s=lock_timeout_s) as own:
            return apply(st, plan, settings=settings, commit=commit, held=own,
                         freeze_overrides=freeze_overrides)
    assert st.keyring is not None
    keyring = st.keyring
    scopes = [t.key for t in plan.tenants if any(not a.blocked for a in t.actions)]
    try:
        with st.transaction() as conn:
            held.verify(conn)
            done, cascade = _write(conn, plan, scopes, settings=settings, keyring=keyring,
                                   commit=commit, held=held, freeze_overrides=freeze_overrides)
            held.commit_begins()
    except BaseException:
        held.commit_failed()
        raise
    return Applied(done, cascade, held.release_after_commit(), held.signalled)


def _write(conn: store.Transaction, plan: p.Plan, scopes: list[str], *,
           settings: secrets.Settings, keyring: secrets.Keyring, commit: str | None,
           held: locks.Held, freeze_overrides: dict[str, str] | None) -> tuple[int, int]:
    """The writes and audit rows of the plan's actions: (actions applied, dependents deleted)."""
    who = locks.actor()
    delay_s = int(os.environ.get(_DELAY_VAR) or 0) / 1000
    done = cascade = 0
    live = store.read(conn, scopes)
    live = live.with_dependents(store.read_dependents(
        conn, [k for t in plan.tenants if t.key in scopes for k in t.read_companies]))
    audit = []
    for t in plan.tenants:
        if t.key not in scopes:
            continue
        held.check()
        lt = live.tenants.get(t.key)
        if lt is None or lt.object_fp() != t.tenant_fp:
            raise errors.ConflictError(f"{t.key}: the live store changed since the plan was "
                                       "made; nothing was applied, plan again")
        live_by_id = {c.id: c for c in lt.connections}
        for a in t.actions:
            if a.blocked:
                continue
            label = f"{t.key}/{a.connection}"
            live_conn = live_by_id.get(a.live_id) if a.live_id is not None else None
            # Only the dependents read (and fingerprinted) in this transaction may go.
            listed = {d.row_id for c in live_conn.companies for d in c.dependents} if live_conn else set()
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
    return done, cascade
