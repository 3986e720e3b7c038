"""desired + live -> Plan. Pure: no I/O, no printing, no SQLAlchemy."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Container, Iterable, Mapping, Sequence

from reconciler import declared, errors, spec, state
from reconciler import plan as p
from reconciler.declared import DesiredConnection, DesiredTenant, SecretRef

DEFAULT_MAX_DELETE = 10
_KIND_ORDER = {kind: i for i, kind in enumerate(spec.DependentKind)}
_ACTION_RANK = {kind: i for i, kind in enumerate(p.ORDER)}

# Password fingerprints of resolved references; None where the value is not available here.
PasswordFingerprints = Mapping[SecretRef, str | None]


def _field_changes(before: spec.ConnectionSpec | None, after: spec.ConnectionSpec) -> list[p.Change]:
    shown_after = after.shown()
    if before is None:
        return [
            p.Change(name, None, value)
            for name, value in shown_after.items()
            if value not in (None, False, [])
        ]
    old, new = before.comparable(), after.comparable()
    shown_before = before.shown()
    if old["companies"] != new["companies"]:
        # A company the connection keeps stays as the portal spells it (apply renames no
        # company: store._sync_companies): after is what the store will hold.
        live = {spec.identity(c): c for c in before.companies}
        kept = (live.get(spec.identity(c), c) for c in after.companies)
        shown_after["companies"] = sorted(kept, key=spec.natural_key)
    return [p.Change(name, shown_before[name], shown_after[name]) for name in new if old[name] != new[name]]


def _password_change(
    d: DesiredConnection, live_fp: str | None, fps: PasswordFingerprints
) -> tuple[p.Change | None, str | None, str | None]:
    """(change, note, the fingerprint the connection will have after apply)."""
    if d.password is None:
        return (p.Change("password", sensitive=True) if live_fp else None), None, None
    fp = fps.get(d.password)
    if fp is None:
        missing = "not set" if d.password.env else declared.UNREADABLE
        note = f"password not compared ({d.password} {missing})"
        return None, note, live_fp
    return (p.Change("password", sensitive=True) if fp != live_fp else None), None, fp


def _cascade(companies: Sequence[state.LiveCompany]) -> tuple[p.Cascade, ...]:
    items = [p.Cascade(dep.kind, dep.name, company.id) for company in companies for dep in company.dependents]
    return tuple(
        sorted(
            items,
            key=lambda c: (
                spec.natural_key(c.company),
                _KIND_ORDER[c.kind],
                spec.natural_key(c.name),
                c.name,
            ),
        )
    )


def _kept(live: state.LiveTenant, connection_id: int) -> tuple[p.Kept, ...]:
    names = sorted(
        (t.name for t in live.report_templates if t.connection_id == connection_id),
        key=spec.name_order,  # not as each database sorts
    )
    return tuple(p.Kept(p.KeptKind.REPORT_TEMPLATE, name) for name in names)


def _delete(live_tenant: state.LiveTenant, conn: state.LiveConnection, reason: p.Reason) -> p.Action:
    blocked = None
    if not conn.managed:
        blocked = p.Blocked.UNMANAGED
    elif conn.spec.protected:
        blocked = p.Blocked.PROTECTED
    return p.Action(
        p.ActionKind.DELETE,
        conn.spec.name,
        reason,
        cascade=_cascade(conn.companies),
        kept=_kept(live_tenant, conn.id),
        blocked=blocked,
        # A tombstone or prune is git's change: pending wherever the tool applied the connection
        status=p.Status.of(conn.drifted, conn.applied_fp is not None),
        live_id=conn.id,
        live_version=conn.version,
    )


class _LooksLike(Exception):
    """A declared name that the portal has with characters that show nothing, or with letters
    that look the same (DESIGN §2, §8)."""

    def __init__(self, what: str, declared: str, live: str) -> None:
        super().__init__(what, declared, live)
        self.what, self.declared, self.live = what, declared, live


def _look_alike(what: str, declared: Iterable[str], odd: spec.Looks, but: str | None = None) -> None:
    """Refuse a declared name that one of the live names (odd, by spec.by_look) looks the same
    as and is not: to a person they are one name, to the store two (matched by identity, it
    would be created beside it, renamed to beside it, or its company removed with its
    dependents). but: the live name of the connection being renamed, which gives its name up."""
    if odd:
        for name in declared:
            for live in spec.alike_in(odd, name):
                if live != but and spec.looks_alike(name, live):
                    raise _LooksLike(what, name, live)


def _looks_declared(live_name: str, declared: spec.Looks) -> list[str]:
    """A note when a live connection no entry matched (unmanaged, or pruned) looks the same as
    a name the file declares (declared: by spec.by_look): a reviewer would read `unmanaged
    "Rаpport"` (a Cyrillic а) beside a declared Rapport as the declared connection (DESIGN §8)."""
    for name in spec.alike_in(declared, live_name):
        if spec.looks_alike(name, live_name):
            return [
                f'"{live_name}" in the portal looks the same as "{name}" in the file and is another '
                f"connection ({spec.look_alike_difference(live_name, name)}): rename it in the portal"
            ]
    return []


def _renamed_alike(a: p.Action, declared: spec.Looks) -> list[str]:
    """A note when the portal renamed a connection onto a name that looks the same as another
    the file declares: `rename "Visma Оslo" → "Visma Bergen"` (a Cyrillic О) read as a rename of
    the file's Visma Oslo, which the plan does not touch."""
    assert a.renamed_in_portal is not None
    portal = a.renamed_in_portal[1]
    for name in spec.alike_in(declared, portal):
        if spec.identity(name) != spec.identity(a.connection) and spec.looks_alike(name, portal):
            return [
                f'"{portal}" in the portal looks the same as "{name}" in the file and is another '
                f"connection ({spec.look_alike_difference(portal, name)}): the portal renamed "
                f'"{a.connection}" so; the plan renames it back, and leaves "{name}" as it is'
            ]
    return []


def _shown_alike(actions: Sequence[p.Action], unmanaged: Sequence[str], notes: Sequence[str]) -> list[str]:
    """A note for two names the plan shows that look the same and are two names, saying where
    they differ: a rename from `Visma Oslo` to `Visma Оslo` (a Cyrillic О) read as no rename,
    two unmanaged `Visma Oslo` as one connection listed twice (DESIGN §8). Those a note names
    already (_looks_declared) are not named again."""
    shown: dict[str, None] = {}
    for a in actions:
        shown[a.connection] = None
        if a.previous_name is not None:
            shown[a.previous_name] = None
        if a.renamed_in_portal is not None:
            shown.update(dict.fromkeys(a.renamed_in_portal))
    shown.update(dict.fromkeys(unmanaged))
    names = list(shown)
    found = []
    for first, i in spec.alike_after(names):  # each with the first it looks like: one pass
        one, other = names[first], names[i]
        if not any(f'"{one}"' in n and f'"{other}"' in n for n in notes):
            found.append(
                f'"{one}" and "{other}" look the same and are two names '
                f"({spec.look_alike_difference(one, other)})"
            )
    return found


def _accepted_rename(
    conn: state.LiveConnection,
    entries: Mapping[str, DesiredConnection],
    by_name: Mapping[str, state.LiveConnection],
) -> bool:
    """Whether the file took the portal's swap of names: conn's applied name is another live
    connection's name now (a swap, or a chain of renames), and the file declares conn's name in
    the portal with conn's fields and its applied name (as a name, or a previous name) in
    another entry with other fields (as the other is: drift --write wrote the swap). Then the
    applied name's entry is not conn's: a rename back would give conn the other's fields, and
    cascade their companies' dependents. A plain rename in the portal (no other connection of
    the applied name) is never taken as accepted here: it is planned back (DESIGN §5), whatever
    the file's order. Fields only, never passwords: the pull request's plan, made without them,
    must match as apply's does. entries: by every name and previous name they declare."""
    assert conn.applied_name is not None
    applied = spec.identity(conn.applied_name)
    other = by_name.get(applied)
    if other is None or other.id == conn.id:
        return False
    here = entries.get(spec.identity(conn.spec.name))
    there = entries.get(applied)
    return (
        here is not None
        and there is not None
        and here is not there
        and not _field_changes(conn.spec, here.spec)
        and bool(_field_changes(conn.spec, there.spec))
    )


def _refuse_taken_applied_names(
    d: DesiredTenant,
    reserved: Mapping[int, str],
    by_applied: Mapping[str, state.LiveConnection],
    by_name: Mapping[str, state.LiveConnection],
) -> None:
    """A connection renamed in the portal whose applied name the file declares is that entry's
    (reserved, by id). Where another live connection now has that name and keeps it (made by
    hand, or renamed there from another name), neither answer is safe: matched by name, the
    other would be adopted and the tool's own connection, with its dependents, pruned or left
    behind; by id, its rename back would take a name in use. Refused: the portal must settle it.
    The same where the entry (which declares the applied name as a previous name) gives it a name
    another live connection has: `Y` with previous_names [A], the portal's A renamed to X, a
    hand-made Y beside it (adopted and rewritten, and X pruned with its dependents)."""
    problems = []
    for key, renamed in by_applied.items():
        target = reserved.get(renamed.id)
        if target is None:
            continue
        holders = (by_name.get(name_key) for name_key in (key, target))
        other = next(
            (o for o in holders if o is not None and o.id != renamed.id and o.id not in reserved), None
        )
        if other is not None:
            problems.append(
                errors.Problem(
                    d.path,
                    0,
                    0,
                    f'connection "{renamed.applied_name}": the portal renamed it to "{renamed.spec.name}" '
                    f'and has another connection named "{other.spec.name}" '
                    f"({'managed' if other.managed else 'made by hand'}); the plan can neither rename "
                    "it back beside that one nor take that one for it: rename or delete one of the "
                    f'two in the portal (or declare "{renamed.spec.name}" in the file instead of '
                    f'"{renamed.applied_name}"), then plan again',
                )
            )
    if problems:
        raise errors.InputError.of(problems)


def _tombstoned(
    d: DesiredTenant,
    name: str,
    by_name: Mapping[str, state.LiveConnection],
    by_applied: Mapping[str, state.LiveConnection],
    used: set[int],
) -> state.LiveConnection | None:
    """The live connection a tombstone names: by its name, or by the name the tool last applied
    to a connection renamed in the portal since (DESIGN §5: by id), whichever no entry took.
    Where both are there and neither is taken (the tool's A renamed C in the portal, and another
    connection named A there now), either delete could be the wrong one, with its dependents:
    refused, as an entry of that name is (_refuse_taken_applied_names). It took the one of the
    name in the portal, the tool's own B."""
    key = spec.identity(name)
    named, applied = by_name.get(key), by_applied.get(key)
    if applied is None:
        return named
    if named is None or named.id == applied.id or named.id in used:
        return applied
    if applied.id in used:
        return named
    raise errors.InputError.of(
        [
            errors.Problem(
                d.path,
                0,
                0,
                f'tombstone "{name}": the portal renamed the connection the tool applied as '
                f'"{applied.applied_name}" to "{applied.spec.name}" and has another connection named '
                f'"{named.spec.name}" ({"managed" if named.managed else "made by hand"}); the plan cannot '
                "tell which one to delete: rename or delete one of the two in the portal (or write "
                f'the tombstone as "{applied.spec.name}" to delete the one renamed), then plan again',
            )
        ]
    )


def _match(
    d: DesiredConnection,
    by_name: Mapping[str, state.LiveConnection],
    by_applied: Mapping[str, state.LiveConnection],
    used: set[int],
    reserved: Mapping[int, str],
) -> tuple[state.LiveConnection | None, str | None]:
    """The live connection a desired one is: by name, by a previous name, or by the name the
    tool last applied to a connection renamed in the portal since (same id, new name).

    reserved: live connections renamed in the portal whose applied name (the identity, by id)
    the file declares: that entry's, whatever the order of the entries (DESIGN §5)."""
    own = spec.identity(d.spec.name)
    for index in (by_name, by_applied):
        for name in (d.spec.name, *d.previous_names):
            conn = index.get(spec.identity(name))
            if conn is not None and conn.id not in used and reserved.get(conn.id, own) == own:
                same = conn.spec.name == d.spec.name or spec.identity(conn.spec.name) == spec.identity(
                    d.spec.name
                )
                return conn, None if same else conn.spec.name
    return None, None


def _previous_still_live(
    d: DesiredConnection, conn: state.LiveConnection, by_name: Mapping[str, state.LiveConnection]
) -> list[str]:
    """Notes for previous names of d that are other live connections: d is the connection that
    has its name, and the one a reviewer may take for renamed stays as it is (with prune: true,
    is deleted, with its dependents, in the plan's deletes)."""
    return [
        f"{d.spec.name}: previous name {old} is another live connection, not renamed: the "
        "portal has a connection of the name itself; remove the previous name, or delete one "
        "of the two"
        for old in d.previous_names
        if (other := by_name.get(spec.identity(old))) is not None and other.id != conn.id
    ]


def _unchanged(d: DesiredConnection, conn: state.LiveConnection, fps: PasswordFingerprints) -> bool:
    """Managed, the same spec (so the same name) and the same password, or none on either side."""
    if not conn.managed or d.spec != conn.spec:
        return False
    if d.password is None:
        return conn.password_fp is None
    # A fingerprint not available here (None) is never the same password.
    return conn.password_fp is not None and fps.get(d.password) == conn.password_fp


def _matched(
    d: DesiredConnection, conn: state.LiveConnection, renamed_from: str | None, fps: PasswordFingerprints
) -> tuple[p.Action | None, str | None]:
    if _unchanged(d, conn, fps):
        return None, None  # the common case in a large fleet: nothing to compare field by field
    changes = _field_changes(conn.spec, d.spec)
    password, note, new_fp = _password_change(d, conn.password_fp, fps)
    if password:
        changes.append(password)
    if spec.nfc(conn.spec.name) != d.spec.name:  # one name in NFC and NFD is no change
        changes.append(p.Change("name", renamed_from or conn.spec.name, d.spec.name))
    changes.sort(key=lambda c: spec.FIELD_RANK[c.field])
    removed = {spec.identity(c) for c in conn.spec.companies} - {spec.identity(c) for c in d.spec.companies}
    if removed:
        odd = spec.by_look(c for c in conn.spec.companies if spec.identity(c) in removed)
        _look_alike("company", d.spec.companies, odd)
    cascade = _cascade([c for c in conn.companies if spec.identity(c.id) in removed])
    pending = conn.applied_fp is not None and (
        spec.spec_fingerprint(d.spec, new_fp) != conn.applied_fp
        or (conn.applied_name is not None and spec.nfc(conn.applied_name) != d.spec.name)
    )
    status = p.Status.of(conn.drifted, pending)
    needs = (
        str(d.password) if d.password and fps.get(d.password) is None and conn.password_fp is None else None
    )
    portal = None  # (applied name, name in the portal): renamed there, planned back
    if conn.renamed_in_portal and conn.applied_name is not None and renamed_from is not None:
        portal = (conn.applied_name, conn.spec.name)

    def action(kind: p.ActionKind, reason: p.Reason, previous_name: str | None = None) -> p.Action:
        return p.Action(
            kind,
            d.spec.name,
            reason,
            previous_name=previous_name,
            changes=tuple(changes),
            cascade=cascade,
            status=status,
            live_id=conn.id,
            renamed_in_portal=portal,
            live_version=conn.version,
            desired=d,
            needs_secret=needs,
        )

    if not conn.managed:
        return action(p.ActionKind.ADOPT, p.Reason.ADOPT_UNMANAGED), note
    if renamed_from is not None:
        reason = p.Reason.RENAME_PORTAL if portal else p.Reason.RENAME_PREVIOUS_NAME
        return action(p.ActionKind.RENAME, reason, renamed_from), note
    if changes:
        return action(p.ActionKind.UPDATE, p.Reason.UPDATE_CHANGED), note
    return None, note


def diff_tenant(
    d: DesiredTenant,
    live: state.LiveTenant,
    fps: PasswordFingerprints,
    *,
    identities: dict[str, str] | None = None,
) -> p.TenantPlan:
    """The plan of one tenant (without the live fingerprint: see fingerprinted).

    identities: spec.identity() of names by their text, to share between tenants (a fleet
    repeats its connection names from tenant to tenant); filled in here.

    Raises InputError for a declared name (connection, previous name, tombstone, company) that
    the portal has with characters that do not show (DESIGN §2).
    """
    try:
        return _diff_tenant(d, live, fps, {} if identities is None else identities)
    except _LooksLike as same:
        why = (spec.name_problem(same.live) or "").split(";")[0]
        if why:
            why = f"the portal's {same.what} {why}; correct it in the portal"
        else:
            why = (
                f"{spec.look_alike_difference(same.declared, same.live)}; correct the portal's "
                f"{same.what}, or write the file's with the same characters"
            )
        raise errors.InputError.of(
            [
                errors.Problem(
                    d.path,
                    0,
                    0,
                    f'{same.what} "{same.declared}" looks the same as the portal\'s "{same.live}", '
                    f"which is another name: {why}, then plan again (names that look the same "
                    "and are not are errors)",
                )
            ]
        ) from None


def one_name_twice(live: state.LiveTenant, again: str = "plan") -> errors.Problem | None:
    """The problem of a live tenant two of whose connections have one name
    (LiveTenant.one_name_twice), or None."""
    pair = live.one_name_twice()
    if pair is None:
        return None
    first, second = pair
    return errors.Problem(
        live.key,
        0,
        0,
        f'the portal has two connections of one name, "{first}" and "{second}" (names are one when '
        f"they differ only in case or Unicode form); rename one in the portal, then {again} again",
    )


def _diff_tenant(
    d: DesiredTenant, live: state.LiveTenant, fps: PasswordFingerprints, identities: dict[str, str]
) -> p.TenantPlan:
    # Each live name's identity, by its text: a declared name is most often the same text.
    for c in live.connections:
        if c.spec.name not in identities:
            identities[c.spec.name] = spec.identity(c.spec.name)
    by_name = {identities[c.spec.name]: c for c in live.connections}
    if len(by_name) < len(live.connections) and (twice := one_name_twice(live)) is not None:
        raise errors.InputError.of([twice])
    by_applied = {
        spec.identity(c.applied_name): c
        for c in live.connections
        # renamed_in_portal asks these first: most connections are not renamed
        if c.applied_name is not None and c.applied_name != c.spec.name and c.renamed_in_portal
    }
    # A connection renamed in the portal is the entry that declares its applied name, even when
    # another entry declares its name in the portal (that one is new): by id, never by order;
    # unless the file took the rename (_accepted_rename: a swap of two names drift --write wrote).
    reserved: dict[int, str] = {}
    if by_applied:
        # Every name and previous name the file declares, and its entry (names first): a
        # connection renamed in the portal is the entry's that declares its applied name either
        # way (a rename in git while the portal renamed it too), unless the same entry names it
        # by its name in the portal already.
        entries = {spec.identity(old): c for c in d.connections for old in c.previous_names}
        entries.update((spec.identity(c.spec.name), c) for c in d.connections)
        for applied_key, c in by_applied.items():
            entry = entries.get(applied_key)
            if entry is None or entries.get(spec.identity(c.spec.name)) is entry:
                continue
            if not _accepted_rename(c, entries, by_name):
                reserved[c.id] = spec.identity(entry.spec.name)
        _refuse_taken_applied_names(d, reserved, by_applied, by_name)
    used: set[int] = set()
    actions: list[p.Action] = []
    notes: list[str] = []
    named: list[str] = []  # the notes about names (TenantPlan.name_notes), after the others
    odd: spec.Looks | None = None  # live names by their looks: asked only before a create
    for desired_conn in d.connections:
        # _match's first question, asked here with the identity already known: by name.
        name = desired_conn.spec.name
        key = identities.get(name)
        conn = by_name.get(key if key is not None else spec.identity(name))
        if conn is not None and conn.id not in used and conn.spec.name == name and conn.id not in reserved:
            renamed_from = None
        else:
            conn, renamed_from = _match(desired_conn, by_name, by_applied, used, reserved)
        if conn is None:
            odd = spec.by_look(c.spec.name for c in live.connections) if odd is None else odd
            _look_alike("connection", (name, *desired_conn.previous_names), odd)
            password, note, _ = _password_change(desired_conn, None, fps)
            changes = _field_changes(None, desired_conn.spec)
            if password:
                changes.append(password)
            changes.sort(key=lambda c: spec.FIELD_RANK[c.field])
            actions.append(
                p.Action(
                    p.ActionKind.CREATE,
                    desired_conn.spec.name,
                    p.Reason.CREATE_DECLARED,
                    changes=tuple(changes),
                    desired=desired_conn,
                    needs_secret=str(desired_conn.password) if note else None,
                )
            )
        else:
            used.add(conn.id)
            if renamed_from is not None:  # renamed to the declared name: beside a look-alike?
                odd = spec.by_look(c.spec.name for c in live.connections) if odd is None else odd
                _look_alike("connection", (name,), odd, but=conn.spec.name)
            if desired_conn.previous_names and renamed_from is None:
                named += _previous_still_live(desired_conn, conn, by_name)
            if _unchanged(desired_conn, conn, fps):
                continue  # no action, no note: _matched's first answer, without building its tuple
            action, note = _matched(desired_conn, conn, renamed_from, fps)
            if action:
                actions.append(action)
        if note:
            notes.append(f"{desired_conn.spec.name}: {note}")
    for name in d.tombstones:
        conn = _tombstoned(d, name, by_name, by_applied, used)
        if conn is not None and conn.id not in used:
            used.add(conn.id)
            actions.append(_delete(live, conn, p.Reason.DELETE_TOMBSTONE))
        elif conn is None:  # gone already, or there with what does not show (then: refused)
            odd = spec.by_look(c.spec.name for c in live.connections) if odd is None else odd
            _look_alike("connection", (name,), odd)
    unmanaged = []
    declared: spec.Looks | None = None  # the file's names by look: asked only where needed
    if len(used) < len(live.connections):  # used holds ids of live connections: all of them when equal
        for conn in live.connections:
            if conn.id in used:
                continue
            if not conn.managed:
                unmanaged.append(conn.spec.name)
            elif d.prune:
                actions.append(_delete(live, conn, p.Reason.DELETE_PRUNED))
            # else kept as it is, unnamed by the plan: `Trail ` beside the declared (or
            # tombstoned) `Trail` reads as the connection the file means all the same
            if declared is None:
                declared = spec.by_look([*(c.spec.name for c in d.connections), *d.tombstones])
            named += _looks_declared(conn.spec.name, declared)
    for a in actions:  # a portal rename onto a look-alike of another declared name
        if a.renamed_in_portal is not None:
            if declared is None:
                declared = spec.by_look([*(c.spec.name for c in d.connections), *d.tombstones])
            named += _renamed_alike(a, declared)
    if len(actions) > 1:
        actions.sort(key=lambda a: (_ACTION_RANK[a.action], spec.natural_key(a.connection), a.connection))
    if len(unmanaged) > 1:
        unmanaged.sort(key=spec.name_order)
    if len(actions) + len(unmanaged) > 1 or any(a.previous_name or a.renamed_in_portal for a in actions):
        named += _shown_alike(actions, unmanaged, [*notes, *named])
    return p.TenantPlan(
        d.customer,
        d.tenant,
        tuple(actions),
        tuple(unmanaged),
        tuple(notes) + tuple(named) if named else tuple(notes),
        d.path,
        d.digest,
        name_notes=tuple(named),
    )


def unknown_tenants_named(
    keys: Sequence[str],
    tenants: Container[str],
    known_names: Mapping[str, Sequence[str]],
    where: Sequence[str] | None = None,
) -> list[errors.Problem]:
    """Tenants are created in the portal: naming one the store does not know is an error.

    tenants: the keys the store knows (a LiveState's tenants, or every tenant's);
    known_names: customer -> the names of its tenants (LiveState.known), for the hint."""
    problems = []
    for i, key in enumerate(keys):
        if key in tenants:
            continue
        customer = key.split("/", 1)[0]
        known = known_names.get(customer, ())
        hint = (
            "the store knows " + ", ".join(f"{customer}/{t}" for t in known)
            if known
            else f"the store knows no tenants of customer {customer!r}"
        )
        problems.append(
            errors.Problem(
                where[i] if where else "--tenant",
                0,
                0,
                f"tenant {key} does not exist in the store (tenants are created in the portal); {hint}",
            )
        )
    return problems


def unknown_tenants(desired: Sequence[DesiredTenant], live: state.LiveState) -> list[errors.Problem]:
    return unknown_tenants_named(
        [d.key for d in desired], live.tenants, live.known, [d.path for d in desired]
    )


def diff_tenants(
    desired: Sequence[DesiredTenant], live: state.LiveState, fps: PasswordFingerprints
) -> tuple[p.TenantPlan, ...]:
    """The plans of these tenants, sorted by key, without the guards that span tenants."""
    problems = unknown_tenants(desired, live)
    if problems:
        raise errors.InputError.of(problems)
    identities: dict[str, str] = {}  # as many as the names of these tenants' connections
    return tuple(
        diff_tenant(d, live.tenants[d.key], fps, identities=identities)
        for d in sorted(desired, key=lambda t: t.key)
    )


def mass_deletes(
    tenants: Sequence[p.TenantPlan], live_counts: Mapping[str, int], max_delete: int
) -> tuple[p.MassDelete, ...]:
    """Why --allow-mass-delete is needed: too many deletes, or a tenant emptied.

    live_counts: the number of live connections of each tenant that deletes any (live_counts).
    """
    gone = {t.key: n for t in tenants if (n := deleting(t))}
    mass: list[p.MassDelete] = []
    if sum(gone.values()) > max_delete:
        mass.append(p.TooManyDeletes(sum(gone.values()), max_delete))
    mass += [p.EveryConnectionDeleted(key, n) for key, n in gone.items() if n == live_counts[key]]
    return tuple(mass)


def deleting(tenant: p.TenantPlan) -> int:
    """How many connections the tenant's plan deletes (its deletes that are not blocked)."""
    return sum(1 for a in tenant.actions if a.action is p.ActionKind.DELETE and not a.blocked)


def live_counts(live: state.LiveState, tenants: Iterable[p.TenantPlan]) -> dict[str, int]:
    """The number of live connections of each of these tenants whose plan deletes any: what
    mass_deletes needs (a plan read in batches keeps these of each batch, and nothing more)."""
    return {t.key: len(live.tenants[t.key].connections) for t in tenants if deleting(t)}


def diff(
    desired: Sequence[DesiredTenant],
    live: state.LiveState,
    fps: PasswordFingerprints,
    *,
    max_delete: int = DEFAULT_MAX_DELETE,
) -> p.Plan:
    """The plan that makes live equal desired, with every guard it needs marked."""
    tenants = diff_tenants(desired, live, fps)
    return p.Plan(tenants, max_delete, mass_deletes(tenants, live_counts(live, tenants), max_delete))


def drift(desired: Sequence[DesiredTenant], live: state.LiveState, fps: PasswordFingerprints) -> p.Plan:
    """What differs, for `drift`: the plan's tenants without its deletion guards (a drift report
    is never applied; max_delete is recorded as the default and nothing is checked against it)."""
    return p.Plan(diff_tenants(desired, live, fps), DEFAULT_MAX_DELETE)


def _cascading(a: p.Action, conn: state.LiveConnection) -> list[state.LiveCompany]:
    """The companies of conn whose dependents action a deletes: every one of a delete, and
    those the desired connection no longer lists (as _matched's cascade)."""
    if a.action is p.ActionKind.DELETE:
        return list(conn.companies)
    kept = {spec.identity(c) for c in a.desired.spec.companies} if a.desired else set()
    return [c for c in conn.companies if spec.identity(c.id) not in kept]


def cascade_companies(plan: p.Plan, live: state.LiveState) -> dict[str, set[int]]:
    """Per tenant, the companies (row ids) whose dependents the plan's actions may delete."""
    needed: dict[str, set[int]] = {}
    for t in plan.tenants:
        by_id = {c.id: c for c in live.tenants[t.key].connections}
        for a in t.actions:
            conn = by_id.get(a.live_id) if a.live_id is not None else None
            if conn is None:
                continue
            keys = {c.row_id for c in _cascading(a, conn)}
            if keys:
                needed.setdefault(t.key, set()).update(keys)
    return needed


def with_cascades(plan: p.Plan, live: state.LiveState) -> p.Plan:
    """The plan with its cascades listed, now that live has the dependents cascade_companies
    named: each action's cascade made again from live (_cascade is the differ's one reader of
    dependents, so nothing else the plan says changes). Diffing the tenants again for it was 6%
    of an apply of 1,000 actions (5,080 -> 4,786 million instructions)."""
    affected = cascade_companies(plan, live)
    if not affected:
        return plan

    def cascaded(t: p.TenantPlan) -> p.TenantPlan:
        by_id = {c.id: c for c in live.tenants[t.key].connections}
        actions = tuple(
            dataclasses.replace(a, cascade=_cascade(_cascading(a, by_id[a.live_id])))
            if a.live_id is not None and a.live_id in by_id
            else a
            for a in t.actions
        )
        return dataclasses.replace(t, actions=actions)

    return dataclasses.replace(
        plan, tenants=tuple(cascaded(t) if t.key in affected else t for t in plan.tenants)
    )


def fingerprinted(
    plan: p.Plan, live: state.LiveState, read: Mapping[str, set[int]], *, only: Collection[str] | None = None
) -> p.Plan:
    """The plan with a fingerprint of each live tenant as read, for saved plans and apply.

    only: just these tenants (apply compares the fingerprints of the tenants it changes, and
    every connection of a fleet costs one); the others keep none."""
    return dataclasses.replace(
        plan,
        tenants=tuple(
            dataclasses.replace(
                t,
                tenant_fp=live.tenants[t.key].object_fp(),
                read_companies=tuple(sorted(read.get(t.key, ()))),
            )
            if only is None or t.key in only
            else t
            for t in plan.tenants
        ),
    )
