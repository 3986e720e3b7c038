"""`drift --write`: accept the portal's hand changes into the tenant files (DESIGN §9).

For each connection whose status is drift (live changed, git did not), the keys that changed
are rewritten in place, a rename in the portal renames the entry, a connection the tool applied
and the portal deleted is removed, and an unmanaged live connection is appended (merging the
pull request adopts it). Everything else in the file stays byte for byte (reconciler.textedit).
A connection changed on both sides is a conflict and a password changed in the portal cannot
be written (the file holds a reference): both are reported, not written.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from reconciler import (
    catalog,
    declared,
    desired,
    differ,
    envnames,
    errors,
    importer,
    render,
    secrets,
    spec,
    state,
    textedit,
    yamlout,
)
from reconciler import plan as p

ADDED_COMMENT = (
    "Made in the portal by hand (reconciler drift --write); "
    "merging adopts it, deleting this entry leaves it unmanaged."
)


@dataclass(frozen=True)
class FileChange:
    key: str
    path: Path
    text: str  # the new text of the file
    accepted: tuple[str, ...]  # one line per accepted change
    variables: tuple[str, ...] = ()  # password variables of appended connections


@dataclass(frozen=True)
class Outcome:
    files: tuple[FileChange, ...]
    reports: tuple[str, ...]  # conflicts and passwords: told, not written


def _entries(seq: textedit.SequenceNode) -> dict[str, textedit.Node]:
    out = {}
    for item in seq.value:
        found = textedit.get(item, "name")
        if found is not None and textedit.plain(found[1]) is not None:
            out[spec.identity(str(textedit.plain(found[1])))] = item
    return out


def _accept_changes(
    ed: textedit.Editor,
    entry: textedit.MappingNode,
    a: p.Action,
    live: state.LiveConnection,
    label: str,
    reports: list[str],
) -> list[str] | None:
    """The portal's changes of one connection written into its entry; what was accepted, or
    None when they cannot be written (reported, the entry left as it is)."""
    accepted = []
    values = live.spec.values()
    new: dict[str, object] = {}  # key -> its value now (None: the key goes)
    variable = a.desired.password if a.desired is not None else None
    if "password" in a.changed_fields and variable is None and live.password_fp is not None:
        reports.append(
            f"{label}: the portal has a password for it now (authentication: sql) and the file no "
            "reference: not accepted; add `password: {env: ...}` and the portal's other changes by hand"
        )
        return None
    for change in a.changes:
        if change.field == "password" and live.spec.authentication is spec.Authentication.WINDOWS:
            new["password"] = None
            accepted.append(f"{label}: no password with windows authentication: removed from the file")
            continue
        if change.field == "password":
            reports.append(
                f"{label}: the password was changed in the portal; the file holds a "
                f"reference ({variable}): update that variable (or secret) to the "
                "new password"
            )
            continue
        if change.field == "name":
            new["name"] = live.spec.name
            accepted.append(f"{label}: renamed in the portal to {live.spec.name!r}: renamed in the file")
            continue
        if change.field == "companies":
            new["companies"] = list(live.spec.companies)
        elif change.field.startswith("voucher."):
            new["voucher"] = live.spec.document().get("voucher")
        else:
            new[change.field] = values[change.field]
        accepted.append(
            f"{label}: {change.field} changed in the portal: "
            f"{_shown(change.after)} -> {_shown(change.before)}"
        )
    if entry.flow_style and any(v is None and textedit.get(entry, k) is not None for k, v in new.items()):
        # A key removed from a flow mapping rewrites it: once, with every change. (A key added
        # goes after its last value, the rest as written: set_key.)
        ed.rewrite_flow(entry, new)
    else:
        # The keys there first, then those added after the entry's last line: a company added to
        # a block list there is inserted after that line too, and after `private: true` it was
        # read as part of its value
        for key, value in sorted(new.items(), key=lambda item: textedit.get(entry, item[0]) is None):
            ed.set_key(entry, key, value)
    return accepted


def _shown(value: object) -> str:
    return "(none)" if value is None else yamlout.flow(value)


@dataclass
class _Edit:
    """What accept_tenant did to one file, to check the file it made against (_unexpected)."""

    text: str
    accepted: list[str] = field(default_factory=list)
    reports: list[str] = field(default_factory=list)
    variables: list[str] = field(default_factory=list)
    changed: dict[str, state.LiveConnection] = field(default_factory=dict)  # declared identity ->
    removed: set[str] = field(default_factory=set)  # declared identities
    appended: list[declared.DesiredConnection] = field(default_factory=list)


def accept_tenant(
    d: declared.DesiredTenant,
    t: p.TenantPlan,
    live: state.LiveTenant,
    text: str,
    *,
    deleted: set[str],
    prefix: str,
    with_unmanaged: bool,
    taken: Collection[str] = (),
) -> _Edit:
    """The edited text of one tenant file and what was accepted, reported and appended.

    taken: password variables the fleet's files use already (an appended connection's variable
    must be none of them)."""
    ed = textedit.Editor(text)
    root = textedit.compose(text)
    found = textedit.get(root, "connections")
    seq = found[1] if found is not None and isinstance(found[1], textedit.SequenceNode) else None
    entries = _entries(seq) if seq is not None else {}
    by_id = {c.id: c for c in live.connections}
    done = _Edit(text)
    for a in t.actions:
        label = f"{t.key}/{render.quoted(a.connection)[1:-1]}"  # its backslashes doubled, as below
        entry = entries.get(spec.identity(a.connection))
        if a.status is p.Status.DRIFT_AND_PENDING:
            fields = ", ".join(a.changed_fields) or a.action.value
            done.reports.append(
                f"{label}: conflict: changed in the portal and in git ({fields}); not "
                "accepted: make the file say what it should be, then plan"
            )
        elif (
            a.status is p.Status.DRIFT
            and a.live_id in by_id
            and entry is not None
            and isinstance(entry, textedit.MappingNode)
            and (a.action is p.ActionKind.UPDATE or a.reason is p.Reason.RENAME_PORTAL)
        ):
            accepted = _accept_changes(ed, entry, a, by_id[a.live_id], label, done.reports)
            if accepted is not None:
                done.accepted += accepted
                done.changed[spec.identity(a.connection)] = by_id[a.live_id]
        elif entry is not None and seq is not None and _deleted_in_portal(a, deleted):
            ed.remove_item(seq, entry)
            done.accepted.append(f"{label}: deleted in the portal: removed from the file")
            done.removed.add(spec.identity(a.connection))
        elif a.status is p.Status.DRIFT and (
            a.action is p.ActionKind.UPDATE or a.reason is p.Reason.RENAME_PORTAL
        ):
            # Never dropped without a word (it was, for a name written as a folded block scalar)
            fields = ", ".join(a.changed_fields) or a.action.value
            done.reports.append(
                f"{label}: changed in the portal ({fields}), but its entry could not be found in the "
                "file as written to be edited; not accepted: accept it by hand"
            )
    if with_unmanaged and t.unmanaged:
        named = [*(c.spec.name for c in d.connections), *d.tombstones]
        _append_unmanaged(
            ed, done, t, live, seq, found[0] if found is not None else None, prefix, taken, named
        )
    done.text = ed.result()
    return done


def _append_unmanaged(
    ed: textedit.Editor,
    done: _Edit,
    t: p.TenantPlan,
    live: state.LiveTenant,
    seq: textedit.SequenceNode | None,
    key: textedit.Node | None,
    prefix: str,
    taken: Collection[str],
    named: Sequence[str],
) -> None:
    """Append the connections made by hand in the portal, each with a password variable of
    its own; a name no tenant file can hold, or one that looks the same as a name the file has
    (named, appended ones added), is reported instead (correct it in the portal)."""
    if seq is None:
        done.reports.append(
            f"{t.key}: the portal has connections made by hand ("
            + ", ".join(render.quoted(n) for n in t.unmanaged)
            + "); the file has no `connections:` list to append them to: add `connections: []`, "
            "then run drift --write again"
        )
        return
    names = envnames.password_variables(
        live.customer, live.tenant, [c.spec.name for c in live.connections], prefix, taken=taken
    )
    wanted = {spec.identity(n) for n in t.unmanaged}
    looks = spec.by_look(named)  # and those appended
    docs = []
    for conn in live.connections:
        if spec.identity(conn.spec.name) not in wanted:
            continue
        unholdable = importer.unholdable(conn)
        if unholdable:
            what, name, why = unholdable[0]
            if what == "company":
                why = f"has the company {render.quoted(name)}, which {why}"
            done.reports.append(
                f"{t.key}/{render.quoted(conn.spec.name)[1:-1]}: made in the portal (unmanaged), {why}, "
                "which a tenant file cannot hold: not appended; correct it in the portal"
            )
            continue
        alike = next(
            (n for n in spec.alike_in(looks, conn.spec.name) if spec.looks_alike(conn.spec.name, n)), None
        )
        if alike is not None:
            done.reports.append(
                f"{t.key}/{render.quoted(conn.spec.name)[1:-1]}: made in the portal (unmanaged), "
                "looks the same as "
                f"{render.quoted(alike)} in the file and is another name "
                f"({spec.look_alike_difference(conn.spec.name, alike)}): not appended; "
                "correct it in the portal"
            )
            continue
        looks.add(conn.spec.name)
        sql = conn.spec.authentication is spec.Authentication.SQL
        ref = declared.SecretRef(names[conn.spec.name], None) if sql else None
        docs.append(conn.spec.document(password={"env": ref.env} if ref else None))
        done.appended.append(declared.DesiredConnection(conn.spec, ref, (), True, False))
        done.accepted.append(
            f"{t.key}/{render.quoted(conn.spec.name)[1:-1]}: made in the portal (unmanaged): appended; "
            "merging adopts it"
        )
        if ref:
            done.variables.append(names[conn.spec.name])
    ed.append_items(seq, docs, ADDED_COMMENT, key)


def _anything_to_accept(t: p.TenantPlan, deleted: set[str], with_unmanaged: bool) -> bool:
    """Whether accept_tenant would accept or report anything for t (else its file is not read)."""
    if with_unmanaged and t.unmanaged:
        return True
    for a in t.actions:
        if a.status in (p.Status.DRIFT, p.Status.DRIFT_AND_PENDING):
            return True
        if _deleted_in_portal(a, deleted):
            return True
    return False


def _deleted_in_portal(a: p.Action, deleted: set[str]) -> bool:
    """A create of a connection the tool applied once and the portal deleted (audit.deleted_in_portal)."""
    return (
        a.action is p.ActionKind.CREATE
        and a.desired is not None
        and any(spec.identity(n) in deleted for n in (a.connection, *a.desired.previous_names))
    )


def _unexpected(d: declared.DesiredTenant, written: declared.DesiredTenant, done: _Edit) -> str | None:
    """What the edited file says that accepting did not mean it to, or None. Edits made on the
    text can land elsewhere than meant (an alias edits its anchor; overlapping edits); this
    compares the whole file as the tool reads it with what was accepted."""
    want: dict[str, declared.DesiredConnection] = {}
    for c in d.connections:
        key = spec.identity(c.spec.name)
        if key in done.removed:
            continue
        conn = done.changed.get(key)
        if conn is None:
            want[key] = c
        else:  # windows authentication in the portal: the password reference is removed too
            password = None if conn.spec.authentication is spec.Authentication.WINDOWS else c.password
            want[spec.identity(conn.spec.name)] = dataclasses.replace(c, spec=conn.spec, password=password)
    for c in done.appended:
        want[spec.identity(c.spec.name)] = c
    got = {spec.identity(c.spec.name): c for c in written.connections}
    accepted = {spec.identity(c.spec.name) for c in done.changed.values()}
    accepted |= {spec.identity(c.spec.name) for c in done.appended}
    for key, c in want.items():
        made = got.get(key)
        if made is None:
            return f"{render.quoted(c.spec.name)} would be missing"
        if key in accepted and (not spec.declares(made.spec, c.spec) or made.password != c.password):
            return f"{render.quoted(c.spec.name)} would not say what the portal says"
        if key not in accepted and made != c:
            return (
                f"{render.quoted(c.spec.name)} would change too, which the portal did not change "
                "(a value shared through an alias, or edits that meet)"
            )
    extra = [got[k].spec.name for k in got.keys() - want.keys()]
    if extra:
        return f"{render.quoted(extra[0])} would be added"
    if (written.prune, written.tombstones) != (d.prune, d.tombstones):
        return "its prune or tombstones would change"
    return None


class Variables:
    """The password variables the fleet's tenant files use, and those given out since: a
    connection appended gets none of them, as import gives (envnames.password_variables' taken).

    fleet: the folders and files of every tenant file, read once on first use (only a run that
    appends a connection needs them; with --tenant, the other tenants' files are read too).
    InputError when one of them cannot be read, as import refuses."""

    def __init__(self, fleet: Sequence[Path], settings: secrets.Settings) -> None:
        self._fleet, self._settings = fleet, settings
        self._taken: set[str] | None = None

    def taken(self) -> set[str]:
        if self._taken is None:
            self._taken = importer.variables_in_use(self._fleet, cat=catalog.load(), settings=self._settings)
        return self._taken


@dataclass
class _Attempt:
    done: _Edit
    data: str  # the edited file's text, with its byte-order mark if it had one
    why: str | None  # why it cannot be written, or None
    invalid: tuple[str, ...] = ()  # what validate would say of it (its file:line:col left out)


def _attempt(
    t: p.TenantPlan,
    *,
    d: declared.DesiredTenant,
    live: state.LiveTenant,
    text: str,
    bom: bool,
    deleted: set[str],
    settings: secrets.Settings,
    cat: catalog.Catalog,
    with_unmanaged: bool,
    variables: Variables,
) -> _Attempt:
    """The file edited to accept t, read back as the tool reads it: whether it says what was
    accepted."""
    done = accept_tenant(
        d,
        t,
        live,
        text,
        deleted=deleted,
        prefix=settings.env_prefix,
        with_unmanaged=with_unmanaged,
        taken=variables.taken() if with_unmanaged and t.unmanaged else (),
    )
    data = ("\ufeff" if bom else "") + done.text
    if done.text == text:
        return _Attempt(done, data, None)
    try:
        written = desired.load_file(Path(d.path), cat=cat, settings=settings, raw=data.encode("utf-8"))
    except errors.InputError as error:
        said = tuple(problem.message for problem in error.problems) or (str(error),)
        return _Attempt(done, data, "it would not be a valid tenant file", said)
    return _Attempt(done, data, _unexpected(d, written, done))


def _units(changes: Sequence[p.Action], live: state.LiveTenant) -> list[list[p.Action]]:
    """changes in units that can only be written together, in the order of their first change.

    A rename in the portal onto a name another connection was renamed away from (a chain, a
    swap, a rotation) leaves two entries of one name until both renames are written: the two
    are one unit. Every other change is a unit of its own. (A name that looks the same as a
    name of the file, and is another, is refused by the plan before: differ.diff_tenant.)"""
    names = {c.id: c.spec.name for c in live.connections}
    renamed = {  # index of a change that renames its entry -> the name the portal gave it
        i: names[a.live_id]
        for i, a in enumerate(changes)
        if a.status is p.Status.DRIFT
        and a.live_id in names
        and any(change.field == "name" for change in a.changes)
    }
    old = {spec.identity(changes[i].connection): i for i in renamed}  # the name it gives up ->
    parent = list(range(len(changes)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, name in renamed.items():
        j = old.get(spec.identity(name))
        if j is not None:
            parent[root(i)] = root(j)
    units: dict[int, list[p.Action]] = {}
    for i, a in enumerate(changes):
        units.setdefault(root(i), []).append(a)
    return list(units.values())


def _without_invalid(
    t: p.TenantPlan,
    attempt: Callable[[p.TenantPlan], _Attempt],
    deleted: set[str],
    live: state.LiveTenant,
) -> tuple[_Attempt, list[str]]:
    """A file the portal's changes together would make invalid (a switch to sql without a
    password reference, a name no file may hold): each change alone, and appending the
    portal's connections alone, is tried; those that alone make it invalid are reported with
    what validate says, and the rest accepted (the tenant's other changes were lost with them).
    Renames that can only be written together (a swap of two names: _units) are tried as one
    change, never one without the other (each alone leaves two entries of one name).

    Each attempt reads the whole file again: trying hundreds of changes one by one beside one
    change no file holds took minutes (quadratic). A removal of an entry the portal deleted
    makes no file invalid, and is not tried; the other changes are tried half by half, a half
    that makes a valid file being kept whole (one such change among 400: about 18 tries).
    What is kept is tried together at the end, as before."""
    refused: list[str] = []
    kept: list[p.Action] = [a for a in t.actions if _deleted_in_portal(a, deleted)]

    def search(units: Sequence[Sequence[p.Action]]) -> None:
        changes = [a for unit in units for a in unit]
        tried = attempt(dataclasses.replace(t, actions=tuple(changes), unmanaged=()))
        if not tried.invalid:
            kept.extend(changes)
        elif len(units) > 1:
            search(units[: len(units) // 2])
            search(units[len(units) // 2 :])
        else:
            for a in changes:
                names = ", ".join(render.quoted(b.connection) for b in changes if b is not a)
                together = (
                    f", even with the portal's changes of {names} (renames that pass names on: "
                    "written together or not at all)"
                    if names
                    else ""
                )
                refused.append(
                    f"{t.key}/{render.quoted(a.connection)[1:-1]}: the portal's change cannot be written "
                    f"into the file{together} ({'; '.join(tried.invalid)}); not accepted: correct it in "
                    "the portal, or accept it by hand"
                )

    others = [a for a in t.actions if not _deleted_in_portal(a, deleted)]
    if others:
        search(_units(others, live))
    order = {id(a): i for i, a in enumerate(t.actions)}
    kept.sort(key=lambda a: order[id(a)])
    unmanaged = t.unmanaged
    if unmanaged and attempt(dataclasses.replace(t, actions=())).invalid:
        refused.append(
            f"{t.key}: the portal's connections it does not manage cannot be appended to the "
            "file (it would not be a valid tenant file); not appended: add them by hand"
        )
        unmanaged = ()
    return attempt(dataclasses.replace(t, actions=tuple(kept), unmanaged=unmanaged)), refused


def accept(
    tenants: Sequence[declared.DesiredTenant],
    live: state.LiveState,
    result: p.Plan,
    fps: differ.PasswordFingerprints,
    *,
    deleted: Mapping[str, set[str]],
    settings: secrets.Settings,
    variables: Variables | None = None,
    with_unmanaged: bool = True,
) -> Outcome:
    """The accepted files, each read back as the tool reads it and checked to say exactly what
    was accepted and nothing else; nothing is written here. A file that cannot be edited so is
    reported (edit it by hand) and left as it is; the others are still accepted.

    variables: the fleet's password variables (by default, those of tenants' files)."""
    if variables is None:
        variables = Variables([Path(d.path) for d in tenants], settings)
    by_key = {d.key: d for d in tenants}
    files: list[FileChange] = []
    reports: list[str] = []
    cat = catalog.load()
    for t in result.tenants:
        if not _anything_to_accept(t, deleted.get(t.key, set()), with_unmanaged):
            continue  # most files of a fleet: not parsed again (32 ms a file, round-trip)
        d = by_key[t.key]
        path = Path(d.path)
        raw = path.read_bytes()
        text = raw.decode("utf-8-sig")
        bom = raw.startswith(b"\xef\xbb\xbf")
        attempt = functools.partial(
            _attempt,
            d=d,
            live=live.tenants[t.key],
            text=text,
            bom=bom,
            deleted=deleted.get(t.key, set()),
            settings=settings,
            cat=cat,
            with_unmanaged=with_unmanaged,
            variables=variables,
        )
        try:
            tried = attempt(t)
            if tried.invalid:  # which change makes it invalid: the others are still accepted
                tried, refused = _without_invalid(t, attempt, deleted.get(t.key, set()), live.tenants[t.key])
                reports += refused
        except textedit.Unreadable as e:
            at = f" at line {e.line}, column {e.column}" if e.line is not None else ""
            reports.append(
                f"{t.key}: its file cannot be edited in place ({e.problem}{at}); the file was not "
                "changed: accept the portal's changes by hand (a tab after a value is a common cause: "
                "use spaces)"
            )
            continue
        done, data, why = tried.done, tried.data, tried.why
        reports += done.reports
        if done.text == text:
            continue
        if why is not None:
            reports.append(
                f"{t.key}: could not accept the portal's changes by editing its file ({why}); the "
                "file was not changed: accept them by hand"
            )
            continue
        if done.variables:
            variables.taken().update(done.variables)
        files.append(FileChange(t.key, path, data, tuple(done.accepted), tuple(done.variables)))
    return Outcome(tuple(files), tuple(reports))
