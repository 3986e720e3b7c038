"""The audit log's record: one frozen type going into the store and coming out of it."""

from __future__ import annotations

from collections.abc import Container, Iterable
from dataclasses import dataclass
from typing import NamedTuple

from reconciler import spec


@dataclass(frozen=True)
class AuditEntry:
    """One applied (or recorded) action, as the audit log keeps it (DESIGN §6)."""

    at_ms: int  # epoch milliseconds
    actor: str
    git_commit: str | None
    customer: str
    tenant: str
    action: str  # a plan.ActionKind value, or "record" (settle)
    connection: str
    connection_id: int | None
    reason: str
    fields: tuple[str, ...] = ()  # the changed field names
    cascade_count: int = 0
    freeze_override: str | None = None  # apply --override-freeze: the window and the reason
    previous_name: str | None = None  # a rename: the live name it replaced (None in entries before v4)

    @property
    def key(self) -> str:
        return f"{self.customer}/{self.tenant}"


class Named(NamedTuple):
    """An entry as deleted_in_portal reads it: what a read of many entries keeps of each."""

    key: str
    action: str
    connection: str
    connection_id: int | None


def deleted_in_portal(
    newest_first: Iterable[AuditEntry | Named], live_ids: Container[int]
) -> dict[str, set[str]]:
    """tenant key -> identities of names the tool last applied to a connection that is gone.

    A declared connection the tool applied that is no longer live was deleted in the portal
    (drift reports it as drift, drift --write removes it from the file); a name whose
    connection is still live (renamed since, through previous_names) was not, and an entry of
    that name is a new connection to create. An entry without its connection's id (a create
    before the id was recorded) counts as gone when its last action was not a delete.
    """
    last: dict[tuple[str, str], AuditEntry | Named] = {}
    for entry in newest_first:
        last.setdefault((entry.key, spec.identity(entry.connection)), entry)
    out: dict[str, set[str]] = {}
    for (key, name), entry in last.items():
        gone = entry.connection_id is None or entry.connection_id not in live_ids
        if entry.action != "delete" and gone:
            out.setdefault(key, set()).add(name)
    return out
