"""The plan: actions with their reasons, field changes, cascades and guards. Data only."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from reconciler import declared, freeze, spec


class ActionKind(enum.StrEnum):
    CREATE = "create"
    UPDATE = "update"
    RENAME = "rename"
    ADOPT = "adopt"
    DELETE = "delete"


# DESIGN §5: per tenant, deletes first (they free names), creates last.
ORDER = (ActionKind.DELETE, ActionKind.RENAME, ActionKind.UPDATE, ActionKind.ADOPT, ActionKind.CREATE)


class Reason(enum.StrEnum):
    """Why an action is in the plan. Explains the plan to people; never drives apply."""

    CREATE_DECLARED = "create_because_declared"
    UPDATE_CHANGED = "update_because_fields_differ"
    RENAME_PREVIOUS_NAME = "rename_because_previous_name"
    RENAME_PORTAL = "rename_because_renamed_in_portal"  # back to the declared name
    ADOPT_UNMANAGED = "adopt_because_declared_and_unmanaged"
    DELETE_TOMBSTONE = "delete_because_tombstone"
    DELETE_PRUNED = "delete_because_pruned"


class Status(enum.StrEnum):
    """Where a difference comes from, where it can be known (DESIGN §5)."""

    DRIFT = "drift"  # the live store changed outside the tool since the last apply
    PENDING = "pending"  # git changed and was not applied yet
    DRIFT_AND_PENDING = "drift_and_pending"

    @classmethod
    def of(cls, drift: bool, pending: bool) -> Status | None:
        if drift and pending:
            return cls.DRIFT_AND_PENDING
        if drift:
            return cls.DRIFT
        return cls.PENDING if pending else None


class Blocked(enum.StrEnum):
    """Why a delete is shown but never carried out; the value is the sentence the plan shows."""

    UNMANAGED = (
        "unmanaged: the tool deletes only connections it created or adopted; "
        "declare it to adopt it first, or delete it in the portal"
    )
    PROTECTED = "protected: set protected: false on the live connection first"


@dataclass(frozen=True)
class TooManyDeletes:
    """More unblocked deletes than --max-delete allows, across the plan."""

    count: int
    max_delete: int

    def __str__(self) -> str:
        return f"{self.count} connections would be deleted, more than --max-delete {self.max_delete}"


@dataclass(frozen=True)
class EveryConnectionDeleted:
    """Every live connection of one tenant would be deleted."""

    tenant: str  # customer/tenant
    count: int

    def __str__(self) -> str:
        return f"{self.tenant}: every connection of the tenant would be deleted ({self.count})"


MassDelete = TooManyDeletes | EveryConnectionDeleted  # str() is the sentence plans show


class DriftStatus(enum.StrEnum):
    """Why a connection is in the drift report: Status's words, and one more."""

    DRIFT = Status.DRIFT.value
    PENDING = Status.PENDING.value
    DRIFT_AND_PENDING = Status.DRIFT_AND_PENDING.value
    UNMANAGED = "unmanaged"  # in the portal, not declared, not managed: never deleted


SENSITIVE_FIELDS = frozenset({"password"})


@dataclass(frozen=True)
class Change:
    field: str
    before: object = None
    after: object = None
    sensitive: bool = False
    note: str | None = None


@dataclass(frozen=True)
class Cascade:
    kind: spec.DependentKind
    name: str
    company: str


class KeptKind(enum.StrEnum):
    """What a delete keeps, detached from the connection, instead of deleting it."""

    REPORT_TEMPLATE = "report_template"


@dataclass(frozen=True)
class Kept:
    kind: KeptKind
    name: str


@dataclass(frozen=True)
class Action:
    action: ActionKind
    connection: str
    reason: Reason
    previous_name: str | None = None
    changes: tuple[Change, ...] = ()
    cascade: tuple[Cascade, ...] = ()
    kept: tuple[Kept, ...] = ()
    blocked: Blocked | None = None
    status: Status | None = None
    # What the applier needs; never rendered.
    live_id: int | None = field(default=None, compare=False)
    live_version: int | None = field(default=None, compare=False)
    desired: declared.DesiredConnection | None = field(default=None, compare=False, repr=False)
    needs_secret: str | None = field(default=None, compare=False)  # reference not available here
    # (the name the tool last applied, the name given in the portal since), for a portal rename
    renamed_in_portal: tuple[str, str] | None = None

    @property
    def changed_fields(self) -> tuple[str, ...]:
        return tuple(c.field for c in self.changes)


@dataclass(frozen=True)
class SourceCheck:
    """The result of --check-sources for one declared connection."""

    connection: str
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True, slots=True)  # one per tenant of the fleet, kept to the end of a run
class TenantPlan:
    customer: str
    tenant: str
    actions: tuple[Action, ...]
    unmanaged: tuple[str, ...]
    notes: tuple[str, ...] = ()
    path: str = ""
    digest: str = ""  # sha256 of the tenant file the plan was made from
    tenant_fp: str = ""  # fingerprint of the whole live tenant as read (not a connection's live_fp)
    checks: tuple[SourceCheck, ...] = ()  # empty unless sources were checked
    read_companies: tuple[int, ...] = ()  # companies whose dependents were read (for tenant_fp)
    freeze: freeze.Freeze | None = None  # change window open now and the next to open (DESIGN §11)
    # Those of notes about names (two that look the same, a rename onto a look-alike, a previous
    # name still live): what drift says too, where "password not compared" would be noise
    name_notes: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.customer}/{self.tenant}"

    @property
    def has_changes(self) -> bool:
        """An action apply would carry out (one not blocked): apply leases, reads and writes it."""
        return any(not a.blocked for a in self.actions)


@dataclass(frozen=True)
class Summary:
    create: int
    update: int
    rename: int
    adopt: int
    delete: int
    cascade: int
    blocked: int

    @property
    def changes(self) -> int:
        return self.create + self.update + self.rename + self.adopt + self.delete


@dataclass(frozen=True)
class Plan:
    tenants: tuple[TenantPlan, ...]
    max_delete: int
    mass_delete: tuple[MassDelete, ...] = ()  # why --allow-mass-delete is needed, if it is

    def all_actions(self) -> list[tuple[TenantPlan, Action]]:
        """Every action of every tenant, with its tenant (TenantPlan.actions: one tenant's)."""
        return [(t, a) for t in self.tenants for a in t.actions]

    @property
    def summary(self) -> Summary:
        counts = {kind: 0 for kind in ActionKind}
        cascade = blocked = 0
        for _, action in self.all_actions():
            if action.blocked:
                blocked += 1
                continue
            counts[action.action] += 1
            cascade += len(action.cascade)
        return Summary(
            counts[ActionKind.CREATE],
            counts[ActionKind.UPDATE],
            counts[ActionKind.RENAME],
            counts[ActionKind.ADOPT],
            counts[ActionKind.DELETE],
            cascade,
            blocked,
        )

    @property
    def has_changes(self) -> bool:
        return self.summary.changes > 0

    @property
    def frozen(self) -> list[TenantPlan]:
        """Tenants with changes to apply that are inside an open change window."""
        return [
            t for t in self.tenants if t.freeze is not None and t.freeze.active is not None and t.has_changes
        ]

    @property
    def failed_checks(self) -> list[tuple[TenantPlan, SourceCheck]]:
        return [(t, c) for t in self.tenants for c in t.checks if not c.ok]

    def with_checks(self, checks: Mapping[str, tuple[SourceCheck, ...]]) -> Plan:
        """The plan with these source checks, by tenant key (a tenant not in checks: none)."""
        return dataclasses.replace(
            self, tenants=tuple(dataclasses.replace(t, checks=checks.get(t.key, ())) for t in self.tenants)
        )
