"""Carry out a Plan in one transaction, under per-tenant leases (reconciler.locks) and guards."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC
from typing import NamedTuple

from reconciler import audit, errors, freeze, locks, secrets, spec, state, store
from reconciler import plan as p

# Testing knob: stretch the transaction so that kill -9 tests can land inside it.
_DELAY_VAR = "RECONCILER_DEBUG_ACTION_DELAY_MS"
DEFAULT_LOCK_TIMEOUT_S = 0.0
# A write batch: whole tenants, up to WRITE_TENANTS of them or until they hold WRITE_ACTIONS
# actions (one tenant may hold more).
WRITE_ACTIONS = 2_000
WRITE_TENANTS = 250


@dataclass(frozen=True)
class Applied:
    """What a committed apply did; the leases it could not release; a signal that came late."""

    actions: int
    cascade: int
    unreleased: tuple[locks.Unreleased, ...] = ()
    signal: int | None = None  # arrived after the commit had begun: recorded, not obeyed
    written: frozenset[int] = frozenset()  # live connections updated or deleted
    # The connection failed as the commit ended, and the store showed the commit had happened.
    lost_at_commit: str | None = None


def _quoted(name: str) -> str:
    """tenant/connection in a refusal, quoted as plan lines quote names: a portal connection
    named `Old NAV, acme/t1/Visma Oslo` read, unquoted in a list, as two connections."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def check_guards(
    plan: p.Plan, *, allow_cascade: bool, allow_mass_delete: bool, skip_source_checks: bool = False
) -> None:
    problems = []
    if not skip_source_checks:
        problems += [
            errors.Problem(
                "", 0, 0, f"refused: source check failed: {line}; fix it or pass --skip-source-checks"
            )
            for _, check in plan.failed_checks
            for line in check.problems
        ]
    if plan.mass_delete and not allow_mass_delete:
        problems += [
            errors.Problem(
                "", 0, 0, f"refused: {r}; review the plan and pass --allow-mass-delete if this is intended"
            )
            for r in plan.mass_delete
        ]
    if plan.summary.cascade and not allow_cascade:
        names = sorted(
            {_quoted(f"{t.key}/{a.connection}") for t, a in plan.all_actions() if a.cascade and not a.blocked}
        )
        problems.append(
            errors.Problem(
                "",
                0,
                0,
                f"refused: the plan deletes {plan.summary.cascade} "
                f"dependents ({errors.some_of(names, MOST_NAMED)}); review the cascade and "
                "pass --allow-cascade",
            )
        )
    missing = [
        f"{t.key}/{a.connection} needs the password from {a.needs_secret}, which is not set"
        for t, a in plan.all_actions()
        if a.needs_secret and not a.blocked
    ]
    problems += [errors.Problem("", 0, 0, f"refused: {m}") for m in missing]
    if problems:
        raise errors.RefusedError("refused", problems=tuple(problems))


# Connections a refusal names; the plan lists them all.
MOST_NAMED = 20


def check_freeze(plan: p.Plan, *, override: str | None) -> dict[str, str]:
    """Refuse tenants with changes inside an open change window (DESIGN §11) unless overridden;
    with an override, what the audit log records per tenant."""
    frozen = [(t.key, t.freeze.active) for t in plan.frozen if t.freeze and t.freeze.active]
    if frozen and override is None:
        raise errors.RefusedError(
            "frozen",
            problems=tuple(
                errors.Problem(
                    "",
                    0,
                    0,
                    (
                        f"refused: {key} is inside {freeze.until_text(o)} "
                        f"({freeze.clock_text(o.end.astimezone(UTC))} UTC); nothing was applied. "
                        "Apply after it ends, or pass --override-freeze REASON"
                    ),
                )
                for key, o in frozen
            ),
        )
    return {
        key: f"window {freeze.quoted(o.window)} until {freeze.local_text(o.end)}: {override}"
        for key, o in frozen
    }


def _password(
    a: p.Action, settings: secrets.Settings, keyring: secrets.Keyring, live_fp: str | None
) -> tuple[store.PasswordChange, str | None]:
    """(what the write does to the stored password, the fingerprint after apply)."""
    assert a.desired is not None
    ref = a.desired.password
    if ref is None:
        return store.CLEAR, None
    value = settings.resolve(ref)
    if value is None:
        return store.KEEP, live_fp  # not available here: keep what is stored
    fp = keyring.fingerprint(value)
    if fp == live_fp:
        return store.KEEP, fp
    return store.SetTo(store.Password(keyring.encrypt(value), fp)), fp


class Planned(NamedTuple):
    """A plan to apply (made before the apply's transaction or inside it) and, per tenant, the
    change window it overrides."""

    plan: p.Plan
    freeze_overrides: dict[str, str]


def apply(
    st: store.Store,
    plan: p.Plan,
    *,
    settings: secrets.Settings,
    commit: str | None,
    held: locks.Held | None = None,
    lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S,
    freeze_overrides: dict[str, str] | None = None,
) -> Applied:
    """Apply every unblocked action of a plan made before the transaction, all or nothing,
    then release the leases. The transaction reads the live tenants that change again and
    refuses if any changed since the plan read them (fingerprints), as every apply does.

    held: the leases the caller took before it planned; without, the tenants are locked here.
    Once the commit has begun, the result is returned whatever happens while releasing.
    freeze_overrides: per tenant, the change window overridden and why (check_freeze), written
    to the audit log with each of its actions.
    """
    if held is None:
        with locks.leases(st, [t.key for t in plan.tenants], timeout_s=lock_timeout_s) as own:
            return apply(
                st, plan, settings=settings, commit=commit, held=own, freeze_overrides=freeze_overrides
            )

    planned = Planned(plan, freeze_overrides or {})
    done = apply_planned(st, lambda _: planned, settings=settings, commit=commit, held=held)
    assert done is not None
    return done


def apply_planned(
    st: store.Store,
    make: Callable[[store.Transaction], Planned | None],
    *,
    settings: secrets.Settings,
    commit: str | None,
    held: locks.Held,
) -> Applied | None:
    """Plan inside the apply's transaction (make: read live, plan, show, guard; or a plan made
    before), then write it (_write); None when make found nothing to apply (nothing is written).

    Under the leases taken before, only a writer outside the tool can change these tenants: the
    fingerprints _write compares, the version checks and the dependents guard of every write
    (store.write) stop it (docs/architecture.md, "Applying: planned in batches, written in batches").
    """
    assert st.keyring is not None
    keyring = st.keyring
    planned: Planned | None = None
    wrote: Written | None = None
    lost: str | None = None
    session: int | None = None
    try:
        with st.transaction() as conn:
            held.verify(conn)
            session = store.session_of(conn)
            store.hold_key(conn, keyring)  # a rotate-key now waits for this commit, or refuses it
            planned = make(conn)
            if planned is None:
                return None
            wrote = _write(conn, planned, settings=settings, keyring=keyring, commit=commit, held=held)
            held.commit_begins()
    except errors.StoreError as error:
        # The commit itself failed (the connection was lost): the store may have committed
        # before the reply was lost. Which it was is read, never guessed.
        if not held.deferring or wrote is None or not _committed(st, wrote.marker, error, session):
            held.commit_failed()
            # Rolled back (a statement failed, or the commit did not happen): say so, as every
            # other refusal does (it named the database's error alone).
            raise errors.StoreError(f"{error}; nothing was applied, plan again") from None
        lost = str(error)
    except BaseException:
        held.commit_failed()
        raise
    assert planned is not None and wrote is not None
    return Applied(
        wrote.actions,
        wrote.cascade,
        held.release_after_commit(),
        held.signalled,
        wrote.connections,
        lost,
    )


def _committed(
    st: store.Store, marker: audit.AuditEntry | None, error: errors.StoreError, session: int | None
) -> bool:
    """After the connection failed during the commit: whether the store holds this apply's
    first audit row (so its transaction committed), read on a new connection once the
    transaction's session (store.session_of) has left the server (read while PostgreSQL still
    ran the COMMIT, it said "nothing was applied" and the commit landed), again and again for
    up to store.OUTCOME_WAIT_S. When the store cannot be read by then, a StoreError saying the
    outcome is unknown (never that nothing changed)."""
    if marker is None:  # no row was written
        return False
    try:
        return store.asked_again(lambda: store.audit_has(st, marker, session), store.OUTCOME_WAIT_S)
    except errors.StoreError as again:
        raise errors.StoreError(
            f"{error}; the connection failed while the changes were being committed, and "
            f"the store could not be read for {store.OUTCOME_WAIT_S:g}s to tell whether they were "
            f"({again}). They may have been applied: `reconciler history` lists them if so; "
            "plan again before applying again"
        ) from None


class Written(NamedTuple):
    """What _write wrote: actions, dependents deleted, live connections updated or deleted,
    and its first audit row (how a commit that lost its connection is found, see _committed)."""

    actions: int
    cascade: int
    connections: frozenset[int]
    marker: audit.AuditEntry | None


def _verified_live(conn: store.Transaction, tenants: Sequence[p.TenantPlan]) -> state.LiveState:
    """These tenants as they are live, read in the transaction with the dependents their plan
    read, their rows locked to its end (store._locked); refused if any moved since the plan
    read it (its fingerprint)."""
    live = store.read(conn, [t.key for t in tenants], lock=True)
    live = live.with_dependents(
        store.read_dependents(conn, [k for t in tenants for k in t.read_companies], lock=True),
        {t.key for t in tenants if t.read_companies},
    )
    for t in tenants:
        lt = live.tenants.get(t.key)
        if lt is None or lt.object_fp() != t.tenant_fp:
            raise errors.ConflictError(
                f"{t.key}: the live store changed since the plan was made; nothing was applied, plan again"
            )
    return live


def _write_batches(plan: p.Plan) -> Iterator[list[p.TenantPlan]]:
    """The tenants with actions to apply, in plan order, a write batch at a time: whole tenants,
    up to WRITE_TENANTS of them or until they hold WRITE_ACTIONS actions."""
    batch: list[p.TenantPlan] = []
    actions = 0
    for t in plan.tenants:
        if not t.has_changes:
            continue
        batch.append(t)
        actions += len(t.actions)
        if actions >= WRITE_ACTIONS or len(batch) >= WRITE_TENANTS:
            yield batch
            batch, actions = [], 0
    if batch:
        yield batch


def _write(
    conn: store.Transaction,
    planned: Planned,
    *,
    settings: secrets.Settings,
    keyring: secrets.Keyring,
    commit: str | None,
    held: locks.Held,
) -> Written:
    """The writes and audit rows of the plan's actions, in the one transaction, a batch of whole
    tenants at a time (_write_batches): each batch's tenants read again and compared with the
    plan (_verified_live), then written, one statement per kind a batch.

    Nothing is committed before the last batch is written, so the batches are one change to
    anyone reading the store; they bound what memory holds for a plan that changes a whole
    fleet (an adoption of a portal): a batch's live state, statement parameters and audit rows.
    Names are unique within a tenant and a tenant is never split, so the order of the
    statements within a batch (deletes free names, then updates, then creates) still holds.
    """
    who, at = locks.actor(), store.now_ms()
    delay_s = int(os.environ.get(_DELAY_VAR) or 0) / 1000
    actions = cascade = 0
    written: set[int] = set()
    marker: audit.AuditEntry | None = None
    for tenants in _write_batches(planned.plan):
        held.check()
        live = _verified_live(conn, tenants)
        batch = _WriteBatch()
        for t in tenants:
            held.check()
            lt = live.tenants[t.key]
            live_by_id = {c.id: c for c in lt.connections}
            for a in t.actions:
                if a.blocked:
                    continue
                live_conn = live_by_id.get(a.live_id) if a.live_id is not None else None
                batch.add(a, f"{t.key}/{a.connection}", lt.id, live_conn, settings=settings, keyring=keyring)
                cascade += len(a.cascade)
                if delay_s:
                    time.sleep(delay_s)
                batch.entries.append(
                    audit.AuditEntry(
                        at_ms=at,
                        actor=who,
                        git_commit=commit,
                        customer=t.customer,
                        tenant=t.tenant,
                        action=a.action.value,
                        connection=a.connection,
                        connection_id=a.live_id,
                        reason=a.reason.value,
                        fields=a.changed_fields,
                        cascade_count=len(a.cascade),
                        freeze_override=planned.freeze_overrides.get(t.key),
                        previous_name=_name_replaced(a, live_conn),
                    )
                )
        held.check()
        first = batch.write(conn)
        marker, actions = marker or first, actions + len(batch.entries)
        written.update(d.connection_id for d in batch.deletes)
        written.update(u.connection_id for u in batch.updates)
        del live, batch  # freed before the next batch is read
    return Written(actions, cascade, frozenset(written), marker)


def _name_replaced(a: p.Action, live_conn: state.LiveConnection | None) -> str | None:
    """The live name an action writes over (a rename, an update or adoption that changes the
    name's case), as the store held it: the audit log keeps it beside the new name."""
    if live_conn is None or not any(c.field == "name" for c in a.changes):
        return None
    return live_conn.spec.name


def _spelled_as_live(s: spec.ConnectionSpec, live_conn: state.LiveConnection | None) -> spec.ConnectionSpec:
    """s with the live connection's spelling wherever the two say the same to the differ: a name
    in the other Unicode form (`Bjørn Ås` typed on a Mac, NFD, and declared NFC), a server or
    database SQL Server compares without case (`SQL01\\visma`, `sql01\\VISMA`). The plan lists
    no change there, so none is written (an update of another field rewrote them; companies
    keep theirs: store._sync_companies)."""
    if live_conn is None or live_conn.spec == s:
        return s
    live = live_conn.spec
    name = live.name if live.name != s.name and spec.nfc(live.name) == s.name else s.name
    mine, theirs, live_values = s.comparable(), live.comparable(), live.values()
    values = {
        key: live_values[key] if mine[key] == theirs[key] else value for key, value in s.values().items()
    }
    if name == s.name and values == s.values():
        return s
    return spec.ConnectionSpec.of(name, s.companies, values)


@dataclass
class _WriteBatch:
    """The statements of whole tenants' actions, written together (store.write)."""

    deletes: list[store.Delete] = field(default_factory=list)
    updates: list[store.Update] = field(default_factory=list)
    creates: list[store.Create] = field(default_factory=list)
    listed: dict[int, set[int]] = field(default_factory=dict)  # by company row id
    entries: list[audit.AuditEntry] = field(default_factory=list)

    def add(
        self,
        a: p.Action,
        label: str,
        tenant_id: int,
        live_conn: state.LiveConnection | None,
        *,
        settings: secrets.Settings,
        keyring: secrets.Keyring,
    ) -> None:
        """The statement of one unblocked action (its audit row is the caller's)."""
        if live_conn is not None:  # only dependents read (and fingerprinted) may go
            self.listed.update({c.row_id: {d.row_id for d in c.dependents} for c in live_conn.companies})
        if a.action is p.ActionKind.DELETE:
            assert a.live_id is not None and a.live_version is not None
            self.deletes.append(store.Delete(a.live_id, a.live_version, label))
            return
        assert a.desired is not None
        password, fp = _password(a, settings, keyring, live_conn.password_fp if live_conn else None)
        applied = spec.spec_fingerprint(a.desired.spec, fp)
        if a.action is p.ActionKind.CREATE:
            created = password.password if isinstance(password, store.SetTo) else None
            self.creates.append(store.Create(tenant_id, a.desired.spec, created, True, applied))
        else:
            assert a.live_id is not None and a.live_version is not None
            self.updates.append(
                store.Update(
                    a.live_id,
                    a.live_version,
                    _spelled_as_live(a.desired.spec, live_conn),
                    password,
                    True,
                    applied,
                    label,
                    renamed=a.action is p.ActionKind.RENAME,
                )
            )

    def write(self, conn: store.Transaction) -> audit.AuditEntry | None:
        """Write the batch and its audit rows; its first audit row (None when it has none)."""
        if not self.entries:
            return None
        new_ids = store.write(
            conn, deletes=self.deletes, updates=self.updates, creates=self.creates, listed=self.listed
        )
        # A create's entry names the connection it made (drift --write tells a name applied to a
        # connection still live, renamed since, from one the portal deleted by it).
        made = iter(new_ids)
        entries = [
            replace(e, connection_id=next(made)) if e.action == p.ActionKind.CREATE.value else e
            for e in self.entries
        ]
        store.write_audit(conn, entries)
        return entries[0]
