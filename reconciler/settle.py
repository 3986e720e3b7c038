"""Record as applied what the files and the live store already agree on (DESIGN §9).

After `drift --write` is merged, the files say what the portal already holds: the plan has
nothing to do, but the connections still carry the fingerprint (and name) the tool applied
before the hand change, so they would keep showing as drifted and a later edit in git as a
conflict. An apply records their current state as applied.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from reconciler import audit, declared, differ, locks, spec, state, store


class Pending(NamedTuple):
    """The tenants a record may concern, with their password fingerprints and, when the run
    read them already, their live state (see record's seen)."""

    tenants: tuple[declared.DesiredTenant, ...]
    fps: differ.PasswordFingerprints
    seen: state.LiveState | None


@dataclass(frozen=True)
class Settled:
    key: str
    connection: str
    connection_id: int
    applied_fp: str


def stale(
    tenants: Sequence[declared.DesiredTenant], live: state.LiveState, fps: differ.PasswordFingerprints
) -> list[Settled]:
    """Managed connections declared exactly as they are live whose applied record is stale."""
    out = []
    for d in tenants:
        lt = live.tenants.get(d.key)
        if lt is None:
            continue
        by_name = {spec.identity(c.spec.name): c for c in lt.connections}
        for dc in d.connections:
            conn = by_name.get(spec.identity(dc.spec.name))
            if conn is None or not conn.managed or not spec.declares(dc.spec, conn.spec):
                continue
            same_password = (
                conn.password_fp is None
                if dc.password is None
                else fps.get(dc.password) == conn.password_fp is not None
            )
            if same_password and (conn.applied_fp != conn.live_fp or conn.applied_name != conn.spec.name):
                out.append(Settled(d.key, conn.spec.name, conn.id, conn.live_fp))
    return out


def record(
    st: store.Store,
    tenants: Sequence[declared.DesiredTenant],
    fps: differ.PasswordFingerprints,
    *,
    held: locks.Held | None = None,
    lock_timeout_s: float = 0.0,
    seen: state.LiveState | None = None,
    written: Collection[int] = (),
    commit: str | None = None,
) -> list[Settled]:
    """Under the tenants' locks (held by the caller, or taken here), record what stale() finds
    as applied (and audit it).

    commit: the git commit of the tenant files, for the audit log (DESIGN §6).
    seen: the live state this run read already (an apply's, before it wrote the connections in
    written, which it records itself): when it covers every tenant, it answers whether there is
    anything to record, instead of a read of the whole fleet again.
    """
    keys = sorted({d.key for d in tenants})
    if seen is not None and set(keys) <= set(seen.tenants):
        if not [s for s in stale(tenants, seen, fps) if s.connection_id not in written]:
            return []
    else:
        with st.reading() as conn:
            if not stale(tenants, store.read(conn, keys), fps):
                return []
    with contextlib.ExitStack() as stack:
        if held is None:
            held = stack.enter_context(locks.leases(st, keys, timeout_s=lock_timeout_s))
        conn = stack.enter_context(st.transaction())
        held.verify(conn)
        found = stale(tenants, store.read(conn, keys), fps)
        for s in found:
            store.set_applied(conn, s.connection_id, s.applied_fp, name=s.connection)
        who, at = locks.actor(), store.now_ms()
        store.write_audit(
            conn,
            [
                audit.AuditEntry(
                    at_ms=at,
                    actor=who,
                    git_commit=commit,
                    customer=s.key.split("/")[0],
                    tenant=s.key.split("/")[1],
                    action="record",
                    connection=s.connection,
                    connection_id=s.connection_id,
                    reason="record_because_accepted_from_portal",
                )
                for s in found
            ],
        )
    return found
