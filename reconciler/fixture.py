"""Store fixtures: `store seed FIXTURE.yaml` and `store dump` (DESIGN §6).

A fixture describes live portal state, including what only the portal creates (customers,
tenants, dependents, report templates). Passwords may be literals here, never in dumps.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from reconciler import (
    desired,
    differ,
    errors,
    redaction,
    secrets,
    spec,
    state,
    store,
    strictyaml,
    tenantfile,
    validation,
    yamlout,
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


# Names made in the portal: anyone who can edit there can type anything (line breaks, markup,
# bidirectional controls), and a fixture stands for the portal. Only the store's limit holds;
# every output renders them inert.
def _storable(value: str) -> str:
    """What every store can hold: PostgreSQL refuses a NUL character in text (SQLite and MariaDB
    kept it, so a dump of theirs could not be seeded into PostgreSQL)."""
    if "\0" in value:
        raise PydanticCustomError(
            "nul", "holds a NUL character (U+0000), which a store cannot hold; remove it"
        )
    return value


PortalName = Annotated[str, Field(min_length=1, max_length=store.NAME), AfterValidator(_storable)]
# The portal's other text (integration, server, login, voucher provider): its column's limit,
# checked here with the fixture's line and column (a store said `Data too long for column`,
# or nothing: SQLite keeps any length).
PortalText = Annotated[str, Field(max_length=store.NAME), AfterValidator(_storable)]


class EnvOnly(_Model):
    env: str


class FixtureCompany(_Model):
    id: tenantfile.Text
    data_access_filters: list[PortalName] = Field(default_factory=list)
    budget_flows: list[PortalName] = Field(default_factory=list)
    publisher_jobs: list[PortalName] = Field(default_factory=list)
    reports: list[PortalName] = Field(default_factory=list)

    def dependents(self) -> list[tuple[spec.DependentKind, str]]:
        kinds = (
            (spec.DependentKind.DATA_ACCESS_FILTER, self.data_access_filters),
            (spec.DependentKind.BUDGET_FLOW, self.budget_flows),
            (spec.DependentKind.PUBLISHER_JOB, self.publisher_jobs),
            (spec.DependentKind.REPORT, self.reports),
        )
        return [(kind, name) for kind, names in kinds for name in names]


class FixtureVoucher(tenantfile.VoucherModel):
    provider: PortalText  # any the portal has (a tenant file's is one of the catalog's)


class FixtureConnection(_Model):
    name: PortalName
    managed: tenantfile.Flag = False
    integration: PortalText
    server: PortalText
    database: tenantfile.Text
    authentication: Literal["sql", "windows"]
    login: PortalText | None = None
    password: str | EnvOnly | None = None
    tenantfile.declare_simple_fields(locals())  # allow_others_to_edit, private, write_back, protected
    voucher: FixtureVoucher | None = None
    companies: list[FixtureCompany] = Field(default_factory=list)

    @field_validator("password", mode="before")
    @classmethod
    def _password_shape(cls, value: Any) -> Any:
        # One clear message instead of one per member of `str | EnvOnly`; never the value.
        if value is None or (isinstance(value, str | int) and not isinstance(value, bool)):
            return value
        if isinstance(value, dict) and list(value) == ["env"] and isinstance(value["env"], str):
            return value
        raise PydanticCustomError(
            "password", "the password is text or {env: NAME} (what is written is not shown here)"
        )

    @field_validator("companies", mode="before")
    @classmethod
    def _plain_ids(cls, value: Any) -> Any:
        # `- F0002` is shorthand for `- id: F0002` with no dependents.
        if isinstance(value, list):
            return [{"id": v} if isinstance(v, str | int) else v for v in value]
        return value

    def spec(self) -> spec.ConnectionSpec:
        return spec.ConnectionSpec.from_document(self.model_dump(exclude={"password"}))


class FixtureTemplate(_Model):
    name: PortalName
    connection: str | None = None


class FixtureTenant(_Model):
    name: tenantfile.Slug = Field(pattern=tenantfile.SLUG)
    connections: list[FixtureConnection] = Field(default_factory=list)
    report_templates: list[FixtureTemplate] = Field(default_factory=list)


class FixtureCustomer(_Model):
    name: tenantfile.Slug = Field(pattern=tenantfile.SLUG)
    tenants: list[FixtureTenant] = Field(default_factory=list)


class Fixture(_Model):
    version: Literal[1]
    customers: list[FixtureCustomer] = Field(default_factory=list)


# What to write in a fixture, where it differs from a tenant file (tenantfile.WANT).
_WANT = {
    "customers": "a list of customers, each `- name: ...` with its tenants",
    "tenants": "a list of tenants, each `- name: ...` with its connections",
    "connections": "a list of connections, each starting with `- name: ...`",
    "companies": "a list of companies: ids (F0001) or mappings with id and dependents",
    "report_templates": "a list of report templates, each `- name: ...`",
    "connection": "the name of one of this tenant's connections, or null",
    "password": "text or {env: NAME}",
    "server": "host, host\\instance or host,port (e.g. SQL01\\VISMA)",
    "id": "a company id (e.g. F0001)",
    "data_access_filters": "a list of names",
    "budget_flows": "a list of names",
    "publisher_jobs": "a list of names",
    "reports": "a list of names",
}
_ITEM_WANT = {
    "customers": "a customer: a mapping with name and tenants",
    "tenants": "a tenant: a mapping with name and connections",
    "connections": "a connection: a mapping starting with `name: ...`",
    "companies": "a company: an id (F0001) or a mapping with id and its dependents",
    "report_templates": "a report template: a mapping with name and connection",
    "data_access_filters": "a name",
    "budget_flows": "a name",
    "publisher_jobs": "a name",
    "reports": "a name",
}
_MODELS: dict[str, type[BaseModel]] = {
    "customers": FixtureCustomer,
    "tenants": FixtureTenant,
    "connections": FixtureConnection,
    "companies": FixtureCompany,
    "report_templates": FixtureTemplate,
    "voucher": tenantfile.VoucherModel,
    "EnvOnly": EnvOnly,
}


def load(path: Path) -> Fixture:
    label = str(path)
    doc = strictyaml.parse(label, strictyaml.read_bytes(path))
    try:
        fixture = Fixture.model_validate(doc.data)
    except ValidationError as exc:
        raise desired.bounded(  # at most desired.MAX_PROBLEMS lines, as for tenant files
            validation.scrub(
                validation.problems(
                    label,
                    doc,
                    exc,
                    root=Fixture,
                    models=_MODELS,
                    want={**tenantfile.WANT, **_WANT},
                    item_want={**tenantfile.ITEM_WANT, **_ITEM_WANT},
                    example=tenantfile.EXAMPLE,
                    unions={"password": frozenset({"str", "EnvOnly"})},
                ),
                validation.literal_passwords(doc.data),
            )
        ) from None
    problems = _duplicates(label, doc, fixture)
    for ci, customer in enumerate(fixture.customers):
        for ti, tenant in enumerate(customer.tenants):
            for i, c in enumerate(tenant.connections):  # said at seed time, without a place
                if isinstance(c.password, EnvOnly) and not os.environ.get(c.password.env):
                    problems.append(  # empty counts as not set, as for a tenant file (no password)
                        validation.at(
                            label,
                            doc,
                            ("customers", ci, "tenants", ti, "connections", i, "password", "env"),
                            f"environment variable {c.password.env} is not set (or empty); set it "
                            "to the connection's password",
                        )
                    )
            names = {spec.identity(c.name) for c in tenant.connections}
            for ri, template in enumerate(tenant.report_templates):
                if template.connection is not None and spec.identity(template.connection) not in names:
                    problems.append(
                        validation.at(
                            label,
                            doc,
                            ("customers", ci, "tenants", ti, "report_templates", ri, "connection"),
                            f"report template {validation.shown(template.name)} names unknown "
                            f"connection {validation.shown(template.connection)}; write the name of "
                            "one of this tenant's connections, or null",
                        )
                    )
    if problems:
        raise desired.bounded(validation.scrub(problems, validation.literal_passwords(doc.data)))
    return fixture


def _duplicates(label: str, doc: strictyaml.Document, fixture: Fixture) -> list[errors.Problem]:
    """Names a fixture lists twice: seeding would silently merge them."""
    problems: list[errors.Problem] = []

    def once(items: list[tuple[tuple[Any, ...], str]], what: str) -> None:
        first: dict[str, tuple[Any, ...]] = {}
        for loc, name in items:
            key = spec.identity(name)
            if key in first:
                problems.append(
                    validation.at(
                        label,
                        doc,
                        loc,
                        f"{what} {validation.shown(name)} is listed twice (compared ignoring case "
                        f"and Unicode form; first at {validation.say(first[key], '')[:-2]}); "
                        "list it once",
                    )
                )
            first.setdefault(key, loc)

    once([(("customers", ci, "name"), c.name) for ci, c in enumerate(fixture.customers)], "customer")
    for ci, customer in enumerate(fixture.customers):
        at = ("customers", ci, "tenants")
        once([((*at, ti, "name"), t.name) for ti, t in enumerate(customer.tenants)], "tenant")
        for ti, tenant in enumerate(customer.tenants):
            at_c = (*at, ti, "connections")
            once([((*at_c, i, "name"), c.name) for i, c in enumerate(tenant.connections)], "connection")
            for i, conn in enumerate(tenant.connections):
                once([((*at_c, i, "companies", k), c.id) for k, c in enumerate(conn.companies)], "company")
            at_r = (*at, ti, "report_templates")
            once(
                [((*at_r, i, "name"), r.name) for i, r in enumerate(tenant.report_templates)],
                "report template",
            )
    return problems


def _password(value: str | EnvOnly | None, label: str) -> str | None:
    if isinstance(value, EnvOnly):
        resolved = os.environ.get(value.env)
        if resolved is None:
            raise errors.SecretError(f"{label}: environment variable {value.env} is not set")
        value = resolved
    if value:
        redaction.register(value)
    return value


SEED_MARK = "seed_run"  # the meta key a seed sets to its own mark, committed with what it loads


class Seeded(NamedTuple):
    """What a committed seed loaded; lost: the driver's error when the connection failed as the
    commit ended and the store, read again, shows it committed."""

    connections: int
    lost: str = ""


def seed(st: store.Store, fixture: Fixture, commit_begins: Callable[[], None] = lambda: None) -> Seeded:
    """Load a fixture in one transaction, replacing what exists under the same names.
    commit_begins: called just before the commit (locks.until_commit: from then on a signal
    is ignored, not taken for "nothing was changed"). When the connection fails as the commit
    ends, whether it committed is read, never guessed, as an apply reads its audit row: the seed
    sets the store's meta SEED_MARK to a mark of its own in the same transaction."""
    assert st.keyring is not None
    keyring = st.keyring
    count = 0
    mark, committing = uuid.uuid4().hex, []
    try:
        with st.transaction() as conn:
            store.hold_key(conn, keyring)
            for customer in fixture.customers:
                for tenant in customer.tenants:
                    tenant_id = store.ensure_tenant(conn, customer.name, tenant.name)
                    ids = {}
                    for c in tenant.connections:
                        ids[spec.identity(c.name)] = _seed_connection(
                            conn, tenant_id, c, keyring, f"{customer.name}/{tenant.name}/{c.name}"
                        )
                        count += 1
                    store.replace_templates(
                        conn,
                        tenant_id,
                        [
                            (t.name, ids[spec.identity(t.connection)] if t.connection else None)
                            for t in tenant.report_templates
                        ],
                    )
            store.set_meta(conn, SEED_MARK, mark)
            committing.append(store.session_of(conn))
            commit_begins()
    except errors.StoreError as error:
        if not committing or not _seeded(st, mark, error, committing[0]):
            raise errors.StoreError(f"{error}; nothing was seeded") from None
        return Seeded(count, str(error))
    return Seeded(count)


def _seeded(st: store.Store, mark: str, error: errors.StoreError, session: int | None) -> bool:
    """After the connection failed during the commit: whether the store holds this seed's mark,
    read once the transaction's session has left the server, again and again for up to
    store.OUTCOME_WAIT_S. When the store cannot say by then, a StoreError saying the outcome
    is unknown (never that nothing was seeded)."""
    wait_s = store.OUTCOME_WAIT_S
    try:
        return store.asked_again(lambda: store.meta_is(st, SEED_MARK, mark, session), wait_s)
    except errors.StoreError:
        raise errors.StoreError(
            f"{error}; the connection failed while the fixture was being committed, and the store "
            f"could not be read for {wait_s:g}s to tell whether it was. It may have been loaded: "
            "`reconciler store dump` shows what the store holds, and seeding again is safe (it "
            "replaces what exists under the same names)"
        ) from None


def _seed_connection(
    conn: store.Transaction, tenant_id: int, c: FixtureConnection, keyring: secrets.Keyring, label: str
) -> int:
    value = _password(c.password, label)
    password = store.Password(keyring.encrypt(value), keyring.fingerprint(value)) if value else None
    s = c.spec()
    applied = spec.spec_fingerprint(s, password.fingerprint if password else None) if c.managed else None
    existing = store.connection_id_by_name(conn, tenant_id, c.name)
    if existing is None:
        connection_id = store.create_connection(
            conn, tenant_id, s, password=password, managed=c.managed, applied_fp=applied
        )
    else:
        connection_id, version = existing
        store.set_companies(conn, connection_id, [])  # replace companies and their dependents
        store.update_connection(
            conn,
            connection_id,
            version,
            s,
            password=store.SetTo(password) if password else store.CLEAR,
            managed=c.managed,
            applied_fp=applied,
            label=label,
        )
    for company in c.companies:
        store.add_dependents(conn, connection_id, company.id, company.dependents())
    return connection_id


def dump_text(conn: store.Transaction, keys: Sequence[str] | None) -> Iterator[str]:
    """The fixture format of these tenants (or all) as YAML, a customer at a time: the text of
    dump() of all of them, made without holding them all (a fleet's dump held every dependent,
    its document and its text at once: 1.8 GiB at 2,000 tenants).

    Raises InputError for keys the store does not know (before any text)."""
    rows = store.tenant_rows(conn)
    if keys:
        problems = differ.unknown_tenants_named(keys, rows.by_key, rows.known)
        if problems:
            raise errors.InputError.of(problems)
    wanted = sorted(set(keys) if keys else rows.by_key)
    if not wanted:
        yield yamlout.dump({"version": 1, "customers": []})
        return
    yield "version: 1\ncustomers:\n"
    for _, group in itertools.groupby(wanted, key=lambda k: k.split("/", 1)[0]):
        live = store.read(conn, list(group), dependents=True, tenants_read=rows)
        yield yamlout.dump({"customers": dump(live)["customers"]}).removeprefix("customers:\n")


def dump(live: state.LiveState) -> dict[str, Any]:
    """The fixture format of live state, without passwords."""
    by_customer: dict[str, list[dict[str, Any]]] = {}
    for key in sorted(live.tenants):
        t = live.tenants[key]
        names = {c.id: c.spec.name for c in t.connections}
        tenant: dict[str, Any] = {
            "name": t.tenant,
            "connections": [_dump_connection(c) for c in t.connections],
        }
        if t.report_templates:
            tenant["report_templates"] = [
                {"name": r.name, "connection": names.get(r.connection_id) if r.connection_id else None}
                for r in sorted(t.report_templates, key=lambda r: spec.name_order(r.name))
            ]
        by_customer.setdefault(t.customer, []).append(tenant)
    return {
        "version": 1,
        "customers": [{"name": name, "tenants": items} for name, items in by_customer.items()],
    }


def _dump_connection(c: state.LiveConnection) -> dict[str, Any]:
    out: dict[str, Any] = {"managed": c.managed, **c.spec.document()}
    out = {"name": out.pop("name"), **out}
    companies: list[Any] = []
    for company in c.companies:
        entry: dict[str, Any] = {"id": company.id}
        for kind, key in (
            (spec.DependentKind.DATA_ACCESS_FILTER, "data_access_filters"),
            (spec.DependentKind.BUDGET_FLOW, "budget_flows"),
            (spec.DependentKind.PUBLISHER_JOB, "publisher_jobs"),
            (spec.DependentKind.REPORT, "reports"),
        ):
            names = [d.name for d in company.dependents if d.kind is kind]
            if names:
                entry[key] = names
        companies.append(entry)
    out["companies"] = companies
    return out
