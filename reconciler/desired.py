"""Desired state: find tenant files, read them strictly, validate them into frozen specs.

pydantic models are the boundary for untrusted input (and the source of
schemas/tenant.schema.json); everything after it works on the frozen dataclasses below.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Strict,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from reconciler import catalog as catalog_mod
from reconciler import errors, secrets, spec, strictyaml

MAX_PROBLEMS = 200
SLUG = r"^[a-z0-9][a-z0-9-]*$"

_SERVER = re.compile(
    r"""^(?:tcp:)?
    (?P<host>[A-Za-z0-9_][A-Za-z0-9._-]*|\[[0-9A-Fa-f:.]+\]|[0-9A-Fa-f]*:[0-9A-Fa-f:.]+|\.|\(local\))
    (?:\\(?P<instance>[A-Za-z0-9_$#-]{1,16}))?
    (?:,(?P<port>[0-9]{1,5}))?$""",
    re.VERBOSE,
)
_DOC_PATH = re.compile(r'^(?:\\\\[^\\/:*?"<>|]+\\[^\\/:*?"<>|]+(?:\\[^\\/:*?"<>|]*)*|[A-Za-z]:\\[^/:*?"<>|]*)$')


def _fail(kind: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(kind, message)


def _check_name(value: str) -> str:
    if not value.isprintable() or value != value.strip():
        raise _fail("name", "a name is 1-100 printable characters, without leading or trailing spaces")
    return value


def _check_server(value: str) -> str:
    match = _SERVER.match(value)
    if not match or (match["port"] and not 0 < int(match["port"]) < 65536):
        raise _fail("server", "write the server as host, host\\instance, host,port or an IP address "
                              "(e.g. SQL01\\VISMA or sql01.corp.local,1433)")
    return value


def _check_doc_path(value: str) -> str:
    if not _DOC_PATH.match(value):
        raise _fail("document_center_path", "write a UNC path like \\\\fs01\\vdc\\vouchers or a "
                                             "drive path like D:\\Vouchers")
    return value


Name = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_check_name)]
Text = Annotated[str, Field(min_length=1, max_length=128)]
Flag = Annotated[bool, Strict()]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


class SecretRefModel(_Model):
    """Where the password comes from: an environment variable or a file in the secrets directory."""

    env: str | None = Field(None, description="environment variable; must start with OSR_",
                            pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    file: str | None = Field(None, description="file inside the secrets directory (.secrets/)",
                             min_length=1)

    @model_validator(mode="after")
    def _one(self) -> SecretRefModel:
        if (self.env is None) == (self.file is None):
            raise _fail("secret_ref", "write exactly one of {env: OSR_NAME} or {file: PATH}")
        return self


class VoucherModel(_Model):
    provider: str = Field(description="voucher provider, e.g. visma-document-center")
    document_center_path: Annotated[str, AfterValidator(_check_doc_path)] = Field(
        description="UNC (\\\\server\\share\\...) or drive path where vouchers are stored")


class ConnectionModel(_Model):
    """A data connection the tenant must have."""

    name: Name = Field(description="connection name, unique per tenant (case-insensitive)")
    integration: str = Field(description="key from the integration catalog, e.g. visma-business")
    server: Annotated[str, AfterValidator(_check_server)] = Field(
        description="host, host\\instance, host,port, IPv4 or IPv6")
    database: Text = Field(description="system database of the accounting system")
    authentication: Literal["sql", "windows"]
    login: Text | None = Field(None, description="required for sql, forbidden for windows")
    password: SecretRefModel | None = Field(
        None, description="{env: OSR_NAME} or {file: PATH}; never a literal")
    allow_others_to_edit: Flag = False
    private: Flag = False
    companies: list[Text] = Field(default_factory=list,
                                  description="company ids as the accounting system names them")
    voucher: VoucherModel | None = None
    write_back: Flag = Field(False, description="budgeting writes back to the ERP")
    protected: Flag = Field(False, description="never deleted while the live connection is protected")
    previous_names: list[Name] = Field(default_factory=list,
                                       description="earlier names: renaming keeps id and dependents")
    absent: Literal[False] = False
    encrypt: Flag = Field(True, description="ODBC Encrypt=yes when checking sources")
    trust_server_certificate: Flag = Field(False, description="ODBC TrustServerCertificate opt-in")

    @field_validator("password", mode="before")
    @classmethod
    def _no_literal(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, dict):
            # Never echo the value: it may be a real password.
            raise _fail("literal_password", "a password is never written in a tenant file; "
                                            "write {env: OSR_NAME} or {file: PATH} instead")
        return value

    @field_validator("companies")
    @classmethod
    def _unique_companies(cls, value: list[str]) -> list[str]:
        seen: set[str] = set()
        for company in value:
            if company.casefold() in seen:
                raise _fail("companies", f"company {company!r} is listed twice; list it once")
            seen.add(company.casefold())
        return value

    @model_validator(mode="after")
    def _authentication(self) -> ConnectionModel:
        if self.authentication == "sql":
            missing = [k for k in ("login", "password") if getattr(self, k) is None]
            if missing:
                raise _fail("sql_auth", "authentication: sql needs " + " and ".join(missing)
                            + " (password as {env: OSR_NAME} or {file: PATH})")
        else:
            given = [k for k in ("login", "password") if getattr(self, k) is not None]
            if given:
                raise _fail("windows_auth", "authentication: windows takes no " + " or ".join(given)
                            + "; remove it (the service account's Windows identity is used)")
        return self


class TombstoneModel(_Model):
    """A connection that must not exist: deleted if it does (explicit intent)."""

    name: Name
    absent: Literal[True]

    @model_validator(mode="before")
    @classmethod
    def _only_name(cls, data: Any) -> Any:
        if isinstance(data, dict):
            extra = sorted(set(data) - {"name", "absent"})
            if extra:
                raise _fail("tombstone", "a tombstone (absent: true) takes only name; remove "
                            + ", ".join(extra))
        return data


def _connection_kind(value: Any) -> str:
    return "tombstone" if isinstance(value, dict) and value.get("absent") is True else "connection"


Entry = Annotated[
    Annotated[ConnectionModel, Tag("connection")] | Annotated[TombstoneModel, Tag("tombstone")],
    Discriminator(_connection_kind),
]


class TenantFileModel(_Model):
    """tenants/<customer>/<tenant>.yaml: the data connections one tenant must have."""

    model_config = ConfigDict(title="osr-reconciler tenant file")

    version: Literal[1] = Field(description="file format version")
    customer: str = Field(pattern=SLUG, description="must equal the folder name")
    tenant: str = Field(pattern=SLUG, description="must equal the file name without .yaml")
    prune: Flag = Field(False, description="true: managed live connections missing here are deleted")
    connections: list[Entry] = Field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Frozen results


@dataclass(frozen=True)
class DesiredConnection:
    spec: spec.ConnectionSpec
    password: secrets.SecretRef | None
    previous_names: tuple[str, ...]
    encrypt: bool
    trust_server_certificate: bool


@dataclass(frozen=True)
class DesiredTenant:
    customer: str
    tenant: str
    path: str
    digest: str  # sha256 of the file's bytes
    prune: bool
    connections: tuple[DesiredConnection, ...]
    tombstones: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"{self.customer}/{self.tenant}"


# ---------------------------------------------------------------------------------------------
# Discovery


def discover(paths: Sequence[str]) -> list[Path]:
    """Tenant files under the given files or directories, sorted; missing paths are errors."""
    found: set[Path] = set()
    problems: list[errors.Problem] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for candidate in (*path.rglob("*.yaml"), *path.rglob("*.yml")):
                depth = len(candidate.relative_to(path).parts)
                expected = 2 if path.name in ("tenants", "") or path.resolve().name == "tenants" else 1
                if depth != expected:
                    problems.append(errors.at(str(candidate), 1, 1, "tenant files live at "
                                              "tenants/<customer>/<tenant>.yaml; move this file"))
                    continue
                found.add(candidate)
        elif path.is_file():
            found.add(path)
        else:
            problems.append(errors.Problem(raw, 0, 0, "no such file or directory; "
                                           "give a tenant file or a folder such as tenants/"))
    if problems:
        raise errors.InputError.of(problems)
    return sorted(found)


# ---------------------------------------------------------------------------------------------
# Validation


def _known_keys(loc: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] = TenantFileModel
    parts = [p for p in loc[:-1] if not isinstance(p, int)]
    for part in parts:
        if part in ("connection",):
            model = ConnectionModel
        elif part == "tombstone":
            model = TombstoneModel
        elif part == "voucher":
            model = VoucherModel
        elif part == "password":
            model = SecretRefModel
    return list(model.model_fields)


def _strip_tags(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(p for p in loc if p not in ("connection", "tombstone"))


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


_MESSAGES = {
    "bool_type": "expected true or false",
    "string_type": "expected a string; quote the value",
    "list_type": "expected a list, e.g. [F0001, F0002]",
    "dict_type": "expected a mapping of keys",
    "model_type": "expected a mapping of keys",
    "model_attributes_type": "expected a mapping of keys",
    "int_type": "expected a whole number",
    "int_parsing": "expected a whole number",
    "missing": "",
}


def _problems_from(label: str, doc: strictyaml.Document, exc: ValidationError) -> list[errors.Problem]:
    problems = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        loc = tuple(err["loc"])
        clean = _strip_tags(loc)
        kind = err["type"]
        if kind == "extra_forbidden":
            key = str(clean[-1])
            close = difflib.get_close_matches(key, _known_keys(loc), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else (
                "; allowed keys: " + ", ".join(_known_keys(loc)))
            line, column = strictyaml.position(doc.root, clean, key=True)
            message = f"unknown key {key!r}{hint}"
            clean = clean[:-1]
        elif kind == "missing":
            line, column = strictyaml.position(doc.root, clean[:-1])
            message = f"missing key {clean[-1]!r}"
            clean = clean[:-1]
        elif kind == "literal_error" and clean == ("version",):
            line, column = strictyaml.position(doc.root, clean)
            message = "expected `version: 1`"
        else:
            line, column = strictyaml.position(doc.root, clean)
            message = _MESSAGES.get(kind) or err["msg"].removeprefix("Value error, ")
            if kind == "string_pattern_mismatch" and clean[-1] in ("customer", "tenant"):
                message = "expected a slug: lowercase letters, digits and '-' (e.g. acme-norway)"
        where = _dotted(clean)
        problems.append(errors.at(label, line, column, f"{where}: {message}" if where else message))
    return problems


def _rules(label: str, doc: strictyaml.Document, model: TenantFileModel, customer: str,
           tenant: str, cat: catalog_mod.Catalog, settings: secrets.Settings) -> list[errors.Problem]:
    """Rules that need the path, the catalog or the whole file."""
    problems: list[errors.Problem] = []

    def add(loc: tuple[Any, ...], message: str) -> None:
        line, column = strictyaml.position(doc.root, loc)
        problems.append(errors.at(label, line, column, f"{_dotted(loc)}: {message}"))

    if model.customer != customer:
        add(("customer",), f"is {model.customer!r} but the file is in folder {customer!r}; "
                           f"write customer: {customer}")
    if model.tenant != tenant:
        add(("tenant",), f"is {model.tenant!r} but the file is named {tenant}.yaml; "
                         f"write tenant: {tenant}")
    names: dict[str, int] = {}
    previous: dict[str, int] = {}
    for i, entry in enumerate(model.connections):
        key = spec.normalize_name(entry.name)
        if key in names:
            add(("connections", i, "name"), f"{entry.name!r} is already the name of "
                f"connections[{names[key]}] (names are compared ignoring case); rename one")
        names.setdefault(key, i)
        if isinstance(entry, ConnectionModel):
            for j, old in enumerate(entry.previous_names):
                if spec.normalize_name(old) in previous and previous[spec.normalize_name(old)] != i:
                    add(("connections", i, "previous_names", j),
                        f"{old!r} is also a previous name of connections[{previous[spec.normalize_name(old)]}]")
                previous.setdefault(spec.normalize_name(old), i)
    for i, entry in enumerate(model.connections):
        for j, old in enumerate(getattr(entry, "previous_names", [])):
            other = names.get(spec.normalize_name(old))
            if other is not None and other != i:
                add(("connections", i, "previous_names", j),
                    f"{old!r} is the name of connections[{other}]; a previous name must not be in use")
        if not isinstance(entry, ConnectionModel):
            continue
        integration = cat.get(entry.integration)
        if integration is None:
            close = difflib.get_close_matches(entry.integration, cat.keys(), n=1)
            hint = f"did you mean {close[0]!r}?" if close else "known: " + ", ".join(cat.keys())
            add(("connections", i, "integration"), f"unknown integration {entry.integration!r}; {hint}")
        elif entry.voucher is not None:
            if not integration.supports_vouchers:
                add(("connections", i, "voucher"), f"{integration.display_name} has no voucher "
                    "step; remove the voucher block")
            elif entry.voucher.provider not in integration.voucher_providers:
                add(("connections", i, "voucher", "provider"),
                    f"unknown provider {entry.voucher.provider!r} for {integration.display_name}; "
                    "write one of: " + ", ".join(integration.voucher_providers))
        if entry.password is not None:
            message = settings.check_reference(entry.password.env, entry.password.file)
            if message:
                add(("connections", i, "password"), message)
    return problems


def _freeze(model: TenantFileModel, label: str, digest: str) -> DesiredTenant:
    connections = []
    tombstones = []
    for entry in model.connections:
        if isinstance(entry, TombstoneModel):
            tombstones.append(entry.name)
            continue
        connections.append(DesiredConnection(
            spec=spec.ConnectionSpec(
                name=entry.name,
                integration=entry.integration,
                server=entry.server,
                database=entry.database,
                authentication=spec.Authentication(entry.authentication),
                login=entry.login,
                allow_others_to_edit=entry.allow_others_to_edit,
                private=entry.private,
                companies=tuple(entry.companies),
                voucher=spec.Voucher(entry.voucher.provider, entry.voucher.document_center_path)
                if entry.voucher else None,
                write_back=entry.write_back,
                protected=entry.protected,
            ),
            password=secrets.SecretRef(entry.password.env, entry.password.file)
            if entry.password else None,
            previous_names=tuple(entry.previous_names),
            encrypt=entry.encrypt,
            trust_server_certificate=entry.trust_server_certificate,
        ))
    return DesiredTenant(model.customer, model.tenant, label, digest, model.prune,
                         tuple(connections), tuple(tombstones))


def load_file(path: Path, *, cat: catalog_mod.Catalog, settings: secrets.Settings,
              raw: bytes | None = None) -> DesiredTenant:
    """Read and validate one tenant file; raise InputError listing every problem found."""
    label = str(path)
    if raw is None:
        try:
            with path.open("rb") as handle:
                raw = handle.read(strictyaml.MAX_BYTES + 1)
        except OSError as exc:
            raise errors.InputError.of([errors.Problem(label, 0, 0, f"cannot read: {exc.strerror}")]) from None
    doc = strictyaml.parse(label, raw)
    if not isinstance(doc.data, dict):
        raise errors.InputError.of([errors.at(label, *strictyaml.position(doc.root, ()),
                                              "expected a mapping starting with `version: 1`")])
    try:
        model = TenantFileModel.model_validate(doc.data)
    except ValidationError as exc:
        raise errors.InputError.of(_problems_from(label, doc, exc)) from None
    problems = _rules(label, doc, model, path.parent.name, path.stem, cat, settings)
    if problems:
        raise errors.InputError.of(problems)
    return _freeze(model, label, hashlib.sha256(raw).hexdigest())


def load(paths: Iterable[Path], *, cat: catalog_mod.Catalog,
         settings: secrets.Settings) -> list[DesiredTenant]:
    """Load every file, collecting the problems of all of them (up to MAX_PROBLEMS)."""
    tenants: list[DesiredTenant] = []
    problems: list[errors.Problem] = []
    seen: dict[str, str] = {}
    for path in paths:
        try:
            tenant = load_file(path, cat=cat, settings=settings)
        except errors.InputError as exc:
            problems.extend(exc.problems)
            continue
        if tenant.key in seen:
            problems.append(errors.at(str(path), 1, 1, f"{tenant.key} is also declared by "
                                      f"{seen[tenant.key]}; keep one file per tenant"))
        seen[tenant.key] = str(path)
        tenants.append(tenant)
    if problems:
        ordered = sorted(problems)
        if len(ordered) > MAX_PROBLEMS:
            rest = len(ordered) - MAX_PROBLEMS
            ordered = [*ordered[:MAX_PROBLEMS], errors.Problem("", 0, 0, f"... and {rest} more problems")]
        raise errors.InputError(f"{len(problems)} problem(s)", problems=tuple(ordered))
    return tenants


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a tenant file, for editors (schemas/tenant.schema.json)."""
    schema = TenantFileModel.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://osr-reconciler.invalid/schemas/tenant.schema.json", **schema}
