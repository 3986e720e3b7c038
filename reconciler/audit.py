"""The audit log's record: one frozen type going into the store and coming out of it."""

from __future__ import annotations

from dataclasses import dataclass


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

    @property
    def key(self) -> str:
        return f"{self.customer}/{self.tenant}"
