"""`drift --write`: accept the portal's hand changes into the tenant files (DESIGN §9).

For each connection whose status is drift (live changed, git did not), the keys that changed
are rewritten in place, a rename in the portal renames the entry, a connection the tool applied
and the portal deleted is removed, and an unmanaged live connection is appended (merging the
pull request adopts it). Everything else in the file stays byte for byte (reconciler.textedit).
A connection changed on both sides is a conflict and a password changed in the portal cannot
be written (the file holds a reference): both are reported, not written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler import (
    catalog,
    declared,
    desired,
    differ,
    envnames,
    errors,
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


def deleted_in_portal(audit: Iterable[tuple[str, str, str]]) -> dict[str, set[str]]:
    """tenant key -> identities of connections whose last audited action was not a delete.

    audit: (tenant key, connection, action), newest first. A declared connection the tool
    applied that is no longer live was deleted in the portal.
    """
    last: dict[tuple[str, str], str] = {}
    for key, name, action in audit:
        last.setdefault((key, spec.identity(name)), action)
    out: dict[str, set[str]] = {}
    for (key, name), action in last.items():
        if action != p.ActionKind.DELETE.value:
            out.setdefault(key, set()).add(name)
    return out


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
) -> list[str]:
    accepted = []
    values = live.spec.values()
    voucher_done = False
    for change in a.changes:
        if change.field == "password":
            variable = a.desired.password if a.desired is not None else None
            reports.append(
                f"{label}: the password was changed in the portal; the file holds a "
                f"reference ({variable}): update that variable (or secret) to the "
                "new password"
            )
            continue
        if change.field == "name":
            ed.set_key(entry, "name", live.spec.name)
            accepted.append(f"{label}: renamed in the portal to {live.spec.name!r}: renamed in the file")
            continue
        if change.field == "companies":
            ed.set_key(entry, "companies", list(live.spec.companies))
        elif change.field.startswith("voucher."):
            if not voucher_done:
                ed.set_key(entry, "voucher", live.spec.document().get("voucher"))
                voucher_done = True
        else:
            ed.set_key(entry, change.field, values[change.field])
        accepted.append(
            f"{label}: {change.field} changed in the portal: "
            f"{_shown(change.after)} -> {_shown(change.before)}"
        )
    return accepted


def _shown(value: object) -> str:
    return "(none)" if value is None else yamlout.flow(value)


def accept_tenant(
    d: declared.DesiredTenant,
    t: p.TenantPlan,
    live: state.LiveTenant,
    text: str,
    *,
    deleted: set[str],
    prefix: str,
    with_unmanaged: bool,
) -> tuple[str, list[str], list[str], list[str]]:
    """(new text, accepted lines, reports, variables to set) for one tenant file."""
    ed = textedit.Editor(text)
    root = textedit.compose(text)
    found = textedit.get(root, "connections")
    seq = found[1] if found is not None and isinstance(found[1], textedit.SequenceNode) else None
    entries = _entries(seq) if seq is not None else {}
    by_id = {c.id: c for c in live.connections}
    accepted: list[str] = []
    reports: list[str] = []
    for a in t.actions:
        label = f"{t.key}/{a.connection}"
        entry = entries.get(spec.identity(a.connection))
        if a.status is p.Status.DRIFT_AND_PENDING:
            fields = ", ".join(a.changed_fields) or a.action.value
            reports.append(
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
            accepted += _accept_changes(ed, entry, a, by_id[a.live_id], label, reports)
        elif (
            a.action is p.ActionKind.CREATE
            and a.desired is not None
            and entry is not None
            and seq is not None
            and any(spec.identity(n) in deleted for n in (a.connection, *a.desired.previous_names))
        ):
            ed.remove_item(seq, entry)
            accepted.append(f"{label}: deleted in the portal: removed from the file")
    variables: list[str] = []
    if with_unmanaged and t.unmanaged and seq is not None:
        names = envnames.password_variables(
            live.customer, live.tenant, [c.spec.name for c in live.connections], prefix
        )
        wanted = {spec.identity(n) for n in t.unmanaged}
        docs = []
        for conn in live.connections:
            if spec.identity(conn.spec.name) not in wanted:
                continue
            sql = conn.spec.authentication is spec.Authentication.SQL
            docs.append(conn.spec.document(password={"env": names[conn.spec.name]} if sql else None))
            accepted.append(
                f"{t.key}/{conn.spec.name}: made in the portal (unmanaged): appended; merging adopts it"
            )
            if sql:
                variables.append(names[conn.spec.name])
        ed.append_items(seq, docs, ADDED_COMMENT, found[0] if found is not None else None)
    return ed.result(), accepted, reports, variables


def accept(
    tenants: Sequence[declared.DesiredTenant],
    live: state.LiveState,
    result: p.Plan,
    fps: differ.PasswordFingerprints,
    *,
    deleted: Mapping[str, set[str]],
    settings: secrets.Settings,
    with_unmanaged: bool = True,
) -> Outcome:
    """The accepted files, each validated and checked to plan no change for what it accepted;
    nothing is written here."""
    by_key = {d.key: d for d in tenants}
    files: list[FileChange] = []
    reports: list[str] = []
    cat = catalog.load()
    for t in result.tenants:
        d = by_key[t.key]
        path = Path(d.path)
        raw = path.read_bytes()
        text = raw.decode("utf-8-sig")
        bom = raw.startswith(b"\xef\xbb\xbf")
        new, accepted, told, variables = accept_tenant(
            d,
            t,
            live.tenants[t.key],
            text,
            deleted=deleted.get(t.key, set()),
            prefix=settings.env_prefix,
            with_unmanaged=with_unmanaged,
        )
        reports += told
        if new == text:
            continue
        data = ("\ufeff" if bom else "") + new
        written = desired.load_file(path, cat=cat, settings=settings, raw=data.encode("utf-8"))
        again = differ.diff_tenant(written, live.tenants[t.key], fps)
        left = [
            a
            for a in again.actions
            if a.action is not p.ActionKind.ADOPT
            and a.status is not p.Status.DRIFT_AND_PENDING
            and any(line.startswith(f"{t.key}/{a.connection}:") for line in accepted)
            and [c.field for c in a.changes] != ["password"]
        ]
        if left:
            raise errors.InputError(
                f"{path}: could not accept the portal's changes to "
                + ", ".join(a.connection for a in left)
                + " by editing the file; nothing was written (edit it by hand)"
            )
        files.append(FileChange(t.key, path, data, tuple(accepted), tuple(variables)))
    return Outcome(tuple(files), tuple(reports))
