"""The JSON the tool emits: `plan --format json` (and saved plans) and `drift --format json`.

One description: render.py builds these TypedDicts (mypy checks every key and value), and
schemas.py turns the same TypedDicts into schemas/plan.schema.json and drift.schema.json. A key
that is NotRequired is left out when it has nothing to say. What the Python types cannot say
(a count is never negative, a fixed value, a description) rides along in Annotated metadata.

Enum values are the enum members themselves (StrEnum: json.dumps writes their value). No
third-party library here: render imports it, and render must not reach pydantic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal, NotRequired, TypedDict

from reconciler import plan as p
from reconciler import spec

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Minimum:
    value: int


@dataclass(frozen=True)
class Const:
    value: object


@dataclass(frozen=True)
class OneOf:
    """The string is one of these values (for a set of words that is not an enum)."""

    values: tuple[str, ...]


@dataclass(frozen=True)
class Doc:
    """A description; `{name}` fields are filled by schemas.py (see schemas.DOC_FIELDS)."""

    text: str


Count = Annotated[int, Minimum(0)]
Version = Annotated[int, Const(FORMAT_VERSION)]


# --- shared -------------------------------------------------------------------------------------


class OccurrenceJSON(TypedDict):
    """An opening of a change window: ISO 8601 times in the window's zone, with its offset."""

    window: str
    start: str
    end: str
    timezone: str


class FreezeJSON(TypedDict):
    active: OccurrenceJSON | None
    next: OccurrenceJSON | None


FreezeField = Annotated[
    FreezeJSON,
    Doc(
        "active: the open window (apply refuses without --override-freeze); "
        "next: the next to open (a schedule's within {lookahead_days} days, a one-off's however far)"
    ),
]

# A connection renamed in the portal since the tool last applied it (same id, new name).
PortalRenameJSON = TypedDict("PortalRenameJSON", {"from": str, "to": str})


# --- plan ---------------------------------------------------------------------------------------


class ValueChangeJSON(TypedDict):
    field: str
    before: Any
    after: Any


class SensitiveChangeJSON(TypedDict):
    field: Annotated[str, OneOf(tuple(sorted(p.SENSITIVE_FIELDS)))]
    sensitive: Literal[True]
    note: NotRequired[str]


class CascadeJSON(TypedDict):
    kind: spec.DependentKind
    name: str
    company: str


class KeptJSON(TypedDict):
    kind: p.KeptKind
    name: str


class ActionJSON(TypedDict):
    action: p.ActionKind
    connection: str
    previous_name: NotRequired[str]
    reason: p.Reason
    status: NotRequired[p.Status]
    changes: list[ValueChangeJSON | SensitiveChangeJSON]
    cascade: list[CascadeJSON]
    kept: list[KeptJSON]
    blocked: NotRequired[str]
    needs_secret: NotRequired[str]
    renamed_in_portal: NotRequired[PortalRenameJSON]


class SourceCheckJSON(TypedDict):
    connection: str
    ok: bool
    problems: list[str]


class TenantPlanJSON(TypedDict):
    customer: str
    tenant: str
    actions: list[ActionJSON]
    unmanaged: list[str]
    notes: list[str]
    checks: NotRequired[list[SourceCheckJSON]]  # only when sources were checked
    freeze: NotRequired[FreezeField]


class SummaryJSON(TypedDict):
    create: Count
    update: Count
    rename: Count
    adopt: Count
    delete: Count
    cascade: Count
    blocked: Count


class GuardsJSON(TypedDict):
    max_delete: Count
    mass_delete: list[str]
    needs_allow_cascade: bool
    needs_allow_mass_delete: bool
    source_checks_failed: bool


class PlanJSON(TypedDict):
    format_version: Version
    tenants: list[TenantPlanJSON]
    summary: SummaryJSON
    guards: GuardsJSON


# --- drift report -------------------------------------------------------------------------------


class DriftItemJSON(TypedDict):
    connection: str
    status: p.DriftStatus
    action: p.ActionKind | None  # None for an unmanaged connection
    fields: list[str]
    blocked: NotRequired[str]
    renamed_in_portal: NotRequired[PortalRenameJSON]


class DriftTenantJSON(TypedDict):
    customer: str
    tenant: str
    connections: list[DriftItemJSON]
    freeze: NotRequired[FreezeField]
    notes: NotRequired[
        Annotated[
            list[str],
            Doc(
                "what the plan notes of this tenant's names: two that look the same and are two, "
                "a portal rename onto a look-alike of another declared name, a previous name still live"
            ),
        ]
    ]


class DriftSummaryJSON(TypedDict):
    drift: Count
    pending: Count
    drift_and_pending: Count
    unmanaged: Count


class DriftJSON(TypedDict):
    format_version: Version
    kind: Literal["drift"]
    tenants: list[DriftTenantJSON]
    summary: DriftSummaryJSON
