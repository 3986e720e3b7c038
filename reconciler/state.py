"""Live state as read from the store: frozen dataclasses, no SQLAlchemy."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from reconciler import spec
from reconciler.spec import ConnectionSpec  # for LiveConnection.read(), where `spec` is a field


@dataclass(frozen=True)
class Dependent:
    kind: spec.DependentKind
    name: str
    row_id: int = field(default=0, compare=False)  # the store's row id (a tenant's key is customer/tenant)


@dataclass(frozen=True)
class LiveCompany:
    id: str
    dependents: tuple[Dependent, ...]  # read only where a plan may cascade (see store.read)
    row_id: int = field(default=0, compare=False)  # the store's row id (a tenant's key is customer/tenant)


@dataclass(frozen=True)
class LiveConnection:
    id: int
    spec: spec.ConnectionSpec
    companies: tuple[LiveCompany, ...]
    password_fp: str | None  # keyed HMAC of the stored password
    managed: bool
    version: int
    applied_fp: str | None  # spec_fingerprint of the spec last applied by the tool
    applied_name: str | None = None  # the name last applied (a portal rename changes name only)

    @classmethod
    def read(
        cls,
        id: int,
        spec_: ConnectionSpec,
        company_rows: Sequence[tuple[int, int, str]],
        password_fp: str | None,
        managed: bool,
        version: int,
        applied_fp: str | None,
        applied_name: str | None,
    ) -> LiveConnection:
        """A connection as the store read it, its companies made on first use from their rows
        (row id, connection id, code; in code order), without dependents.

        A plan reads every connection of a fleet but looks at the companies of only the few it
        deletes or changes (cascades) or fingerprints (saved plans): the rest are never made.
        Its attributes are set in one go, as ConnectionSpec._made does (checked at import).
        """
        made = object.__new__(cls)
        object.__setattr__(
            made,
            "__dict__",
            {
                "id": id,
                "spec": spec_,
                _COMPANY_ROWS: company_rows,
                "password_fp": password_fp,
                "managed": managed,
                "version": version,
                "applied_fp": applied_fp,
                "applied_name": applied_name,
            },
        )
        return made

    if not TYPE_CHECKING:  # to the type checker, companies is the field it is

        def __getattr__(self, name: str) -> Any:
            """companies, made from the rows read() kept (only called while it is not made)."""
            rows = self.__dict__.get(_COMPANY_ROWS) if name == "companies" else None
            if rows is None:
                raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
            companies = tuple([LiveCompany(code, (), row_id) for row_id, _, code in rows])
            self.__dict__["companies"] = companies
            del self.__dict__[_COMPANY_ROWS]
            return companies

    @property
    def renamed_in_portal(self) -> bool:
        """Renamed outside the tool since it last applied this connection."""
        return (
            self.managed
            and self.applied_name is not None
            and self.applied_name != self.spec.name  # equal text: the same identity
            and spec.identity(self.applied_name) != spec.identity(self.spec.name)
        )

    @functools.cached_property
    def live_fp(self) -> str:
        """spec_fingerprint of the connection as read (made once: settle, saved plans and drift
        ask for it of every connection of a fleet, some twice). A LiveConnection is never
        changed once made."""
        return spec.spec_fingerprint(self.spec, self.password_fp)

    @property
    def drifted(self) -> bool:
        """Changed outside the tool since it last applied this connection: its fields, or its
        name's text (the fingerprint holds the name's identity: `OSLO` for `Oslo` is one name,
        and still a change a person made in the portal; a portal that keeps the name
        decomposed made none)."""
        if not self.managed or self.applied_fp is None:
            return False
        if self.applied_fp != self.live_fp:
            return True
        named = self.applied_name
        return named is not None and named != self.spec.name and spec.nfc(named) != spec.nfc(self.spec.name)

    def as_read(self) -> tuple[Any, ...]:
        """Everything a plan read of this connection, as stored: every column, its companies
        and the dependents read under them, with their row ids (LiveTenant.object_fp)."""
        return (
            self.id,
            self.version,
            self.managed,
            self.applied_fp,
            self.applied_name,
            self.password_fp,
            self.spec.name,
            self.spec.stored_row(),
            [
                (c.id, c.row_id, [(d.kind.value, d.name, d.row_id) for d in c.dependents])
                for c in self.companies
            ],
        )


# LiveTenant.object_fp: JSON (not repr) is the same text on every Python a plan and its apply run
# on; nothing it encodes can be circular.
_JSON = json.JSONEncoder(check_circular=False)


# LiveConnection.read(): where a connection keeps its company rows until companies is made.
_COMPANY_ROWS = "_company_rows"
assert {f.name for f in dataclasses.fields(LiveConnection)} - {"companies"} == {
    "id",
    "spec",
    "password_fp",
    "managed",
    "version",
    "applied_fp",
    "applied_name",
}


@dataclass(frozen=True)
class ReportTemplate:
    name: str
    connection_id: int | None


@dataclass(frozen=True)
class LiveTenant:
    id: int
    customer: str
    tenant: str
    connections: tuple[LiveConnection, ...]
    report_templates: tuple[ReportTemplate, ...]

    @property
    def key(self) -> str:
        return f"{self.customer}/{self.tenant}"

    def one_name_twice(self) -> tuple[str, str] | None:
        """Two of its connections whose names are one identity (`Consultant sandbox` and
        `CONSULTANT SANDBOX`: one name to a person, and to every rule of this tool), first
        found; None when each has a name of its own. The store keys names by identity, but
        the portal's rows are its own: one renamed there outside that key was a second
        connection of the name to the plan, and an internal error to export and import."""
        seen: dict[str, int] = {}
        for i, c in enumerate(self.connections):
            first = seen.setdefault(spec.identity(c.spec.name), i)
            if first != i:
                return self.connections[first].spec.name, c.spec.name
        return None

    def object_fp(self) -> str:
        """Fingerprint of the tenant as a plan read it: its connections as stored
        (LiveConnection.as_read, in id order) and its report templates.

        Compared only with the same tenant read again by the same version of the tool (a saved
        plan at apply, the apply's transaction): never kept in the store, so it may change
        between versions (saved plans name it read_fp). It digests the values as stored, not as
        compared (spec_fingerprint): a portal edit that SQL Server would not tell apart (a
        server's case) still makes a saved plan stale, as it should; the plan showed the old
        spelling."""
        body = (
            sorted([c.as_read() for c in self.connections]),
            sorted([(t.name, t.connection_id or 0) for t in self.report_templates]),
        )
        return hashlib.sha256(_JSON.encode(body).encode()).hexdigest()


@dataclass(frozen=True)
class LiveState:
    tenants: dict[str, LiveTenant]  # by "customer/tenant"
    known: dict[str, tuple[str, ...]]  # customer -> every tenant name the store knows

    def with_dependents(
        self, dependents: Mapping[int, tuple[Dependent, ...]], keys: Collection[str]
    ) -> LiveState:
        """The same state with the dependents of these companies (by row id), of the tenants
        keys, filled in. Only those tenants are looked at: looking at every tenant of a batch for
        a few cascades made every connection's companies (LiveConnection.read), 5% of a plan
        with 2% of its tenants changed."""
        if not dependents:
            return self

        def company(c: LiveCompany) -> LiveCompany:
            return dataclasses.replace(c, dependents=dependents[c.row_id]) if c.row_id in dependents else c

        def connection(c: LiveConnection) -> LiveConnection:
            if not any(x.row_id in dependents for x in c.companies):
                return c
            return dataclasses.replace(c, companies=tuple(company(x) for x in c.companies))

        def tenant(t: LiveTenant) -> LiveTenant:
            if not any(x.row_id in dependents for c in t.connections for x in c.companies):
                return t
            return dataclasses.replace(t, connections=tuple(connection(c) for c in t.connections))

        return LiveState({k: tenant(t) if k in keys else t for k, t in self.tenants.items()}, self.known)
