"""Desired state: find tenant files, read them strictly, validate them into frozen specs.

pydantic models are the boundary for untrusted input (and the source of
schemas/tenant.schema.json); everything after it works on the frozen dataclasses below.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import stat
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Strict,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from reconciler import checks, errors, quickread, secrets, spec, strictyaml, validation
from reconciler.declared import DesiredConnection, DesiredTenant, SecretRef

if TYPE_CHECKING:
    from reconciler import catalog as catalog_mod

MAX_PROBLEMS = 200
SLUG = checks.SLUG  # fixtures and change windows name their slugs alike
Name = Annotated[str, Field(min_length=1, max_length=checks.MAX_NAME), AfterValidator(checks.check_name)]
CompanyId = Annotated[
    str, Field(min_length=1, max_length=checks.MAX_COMPANY), AfterValidator(checks.check_name)
]
Text = Annotated[str, Field(min_length=1, max_length=checks.MAX_TEXT), AfterValidator(checks.check_text)]
Flag = Annotated[bool, Strict()]
Slug = Annotated[str, AfterValidator(checks.check_slug)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


def declare_simple_fields(namespace: dict[str, Any]) -> None:
    """Declare spec.SIMPLE (plain optional keys: a flag defaulting to false, a text to null) on a
    model whose class body calls this with locals(): a new such field of a connection is one
    line in spec.CONNECTION_FIELDS, and the tenant-file and fixture models follow."""
    annotations = namespace.setdefault("__annotations__", {})
    for f in spec.SIMPLE:
        annotations[f.key] = Flag if f.kind is bool else Text | None
        namespace[f.key] = Field(False if f.kind is bool else None, description=f.description)


class SecretRefModel(_Model):
    """Where the password comes from: an environment variable or a file in the secrets directory."""

    env: str | None = Field(
        None, description="environment variable; must start with OSR_", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$"
    )
    file: str | None = Field(None, description="file inside the secrets directory (.secrets/)", min_length=1)

    @model_validator(mode="after")
    def _one(self) -> SecretRefModel:
        if (self.env is None) == (self.file is None):
            raise checks.fail(
                "secret_ref",
                "the password needs exactly one of {env: OSR_NAME} or {file: PATH}",
                at_key="file" if self.env is not None else None,
            )
        return self


class VoucherModel(_Model):
    provider: str = Field(description="voucher provider, e.g. visma-document-center")
    document_center_path: Annotated[str, AfterValidator(checks.check_doc_path)] = Field(
        description="UNC (\\\\server\\share\\...) or drive path where vouchers are stored"
    )


class ConnectionModel(_Model):
    """A data connection the tenant must have."""

    name: Name = Field(description="connection name, unique per tenant (case-insensitive)")
    integration: str = Field(description="key from the integration catalog, e.g. visma-business")
    server: Annotated[str, AfterValidator(checks.check_server)] = Field(
        description="host, host\\instance, host,port, IPv4 or IPv6"
    )
    database: Text = Field(description="system database of the accounting system")
    authentication: Literal["sql", "windows"]
    login: Text | None = Field(None, description="required for sql, forbidden for windows")
    password: SecretRefModel | None = Field(
        None, description="{env: OSR_NAME} or {file: PATH}; never a literal"
    )
    declare_simple_fields(locals())  # allow_others_to_edit, private, write_back, protected, ...
    companies: list[CompanyId] = Field(
        default_factory=list, description="company ids as the accounting system names them"
    )
    voucher: VoucherModel | None = None
    previous_names: list[Name] = Field(
        default_factory=list, description="earlier names: renaming keeps id and dependents"
    )
    absent: Literal[False] = False
    encrypt: Flag = Field(True, description="ODBC Encrypt=yes when checking sources")
    trust_server_certificate: Flag = Field(False, description="ODBC TrustServerCertificate opt-in")

    @field_validator("password", mode="before")
    @classmethod
    def _no_literal(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, dict):
            # Never echo the value: it may be a real password.
            raise checks.fail(
                "literal_password",
                "a password is never written in a tenant file (the "
                "value is not shown here); write {env: OSR_NAME} or "
                "{file: PATH} instead",
            )
        return value

    @field_validator("companies")
    @classmethod
    def _unique_companies(cls, value: list[str]) -> list[str]:
        seen: dict[str, str] = {}
        for company in value:
            key = spec.identity(company)
            if key in seen:
                same = "" if seen[key] == company else f" (as {seen[key]!r})"
                raise checks.fail(
                    "companies",
                    f"company {company!r} is listed twice{same}: ids are "
                    "compared ignoring case and Unicode form; list it once",
                )
            seen[key] = company
        return value

    @model_validator(mode="after")
    def _authentication(self) -> ConnectionModel:
        if self.authentication == "sql":
            missing = [k for k in ("login", "password") if getattr(self, k) is None]
            if missing:
                raise checks.fail(
                    "sql_auth",
                    "authentication: sql needs a "
                    + " and a ".join(missing)
                    + "; add "
                    + ("them" if len(missing) > 1 else "it")
                    + (" (the password as {env: OSR_NAME} or {file: PATH})" if "password" in missing else "")
                    + ", or write authentication: windows",
                )
        else:
            given = [k for k in ("login", "password") if getattr(self, k) is not None]
            if given:
                raise checks.fail(
                    "windows_auth",
                    "authentication: windows takes no "
                    + " or ".join(given)
                    + "; remove "
                    + ("them" if len(given) > 1 else "it")
                    + " (the service account's Windows identity is used), or write "
                    "authentication: sql",
                    at_key=given[0],
                )
        return self


class TombstoneModel(_Model):
    """A connection that must not exist: deleted if it does (explicit intent)."""

    name: Name
    absent: Literal[True]

    @model_validator(mode="before")
    @classmethod
    def _only_name(cls, data: Any) -> Any:
        if isinstance(data, dict):
            extra = [k for k in data if k not in ("name", "absent")]
            if extra:
                raise checks.fail(
                    "tombstone",
                    "a tombstone (absent: true) takes only name; remove "
                    + ", ".join(map(str, extra))
                    + " (or remove absent: true to keep "
                    "the connection)",
                    at_key=extra[0],
                )
        return data


def _connection_kind(value: Any) -> str:
    # Any `absent` but false is meant as a tombstone (`absent: yes` is an error there, not a
    # connection missing its server).
    if isinstance(value, dict) and value.get("absent", False) is not False:
        return "tombstone"
    return "connection"


Entry = Annotated[
    Annotated[ConnectionModel, Tag("connection")] | Annotated[TombstoneModel, Tag("tombstone")],
    Discriminator(_connection_kind),
]


class TenantFileModel(_Model):
    """tenants/<customer>/<tenant>.yaml: the data connections one tenant must have."""

    model_config = ConfigDict(title="osr-reconciler tenant file")

    version: Annotated[Literal[1], BeforeValidator(checks.not_bool)] = Field(
        description="file format version"
    )
    customer: Slug = Field(pattern=SLUG, description="must equal the folder name")
    tenant: Slug = Field(pattern=SLUG, description="must equal the file name without .yaml")
    prune: Flag = Field(False, description="true: managed live connections missing here are deleted")
    connections: list[Entry] = Field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Discovery


def discover(paths: Sequence[str]) -> list[Path]:
    """Tenant files under the given files or directories, sorted; missing paths are errors."""
    found: set[Path] = set()
    problems: list[errors.Problem] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            in_tenants = path.name in ("tenants", "") or path.resolve().name == "tenants"
            expected = 2 if in_tenants else 1
            for candidate in (*path.rglob("*.yaml"), *path.rglob("*.yml")):
                depth = len(candidate.relative_to(path).parts)
                if depth != expected:
                    problems.append(
                        errors.at(
                            str(candidate),
                            1,
                            1,
                            "tenant files live at tenants/<customer>/<tenant>.yaml; move this file",
                        )
                    )
                    continue
                problem = _not_a_tenant_file(candidate, path)
                if problem:
                    problems.append(errors.Problem(str(candidate), 0, 0, problem))
                    continue
                found.add(candidate)
        elif path.is_file() or path.exists():
            problem = _not_a_tenant_file(path, Path.cwd())
            if problem:
                problems.append(errors.Problem(raw, 0, 0, problem))
                continue
            found.add(path)
        else:
            problems.append(
                errors.Problem(
                    raw, 0, 0, "no such file or directory; give a tenant file or a folder such as tenants/"
                )
            )
    if problems:
        raise errors.InputError.of(problems)
    return sorted(found)


def _not_a_tenant_file(path: Path, within: Path) -> str | None:
    """Why a path found as a tenant file cannot be read as one, or None.

    A link may point only inside the folder it was found in (a link to /etc/passwd would have
    its values echoed in error messages); a pipe or device would block the read forever.
    """
    try:  # nearly always a regular file, not a link: then nothing to resolve (one lstat)
        if stat.S_ISREG(os.lstat(path).st_mode):
            return None
    except OSError:
        pass  # the general rule below says why
    try:
        target = path.resolve(strict=True)
        mode = target.stat().st_mode
    except (OSError, RuntimeError):
        return "cannot be read (a broken link or a link loop?); give a YAML file"
    if path.is_symlink() and not target.is_relative_to(within.resolve()):
        return (
            f"is a link to a file outside {within}; tenant files are read only inside "
            "the folder given (copy the file in instead)"
        )
    if not stat.S_ISREG(mode):
        return "is not a regular file (a pipe, device or socket?); give a YAML file"
    return None


# ---------------------------------------------------------------------------------------------
# Validation: the vocabulary of a tenant file for reconciler.validation, which turns pydantic's
# errors into located problems saying what to write instead

# What to write, per key (and, in ITEM_WANT, per item of a list): shown when a value is
# missing, empty or of the wrong kind. Fixtures and reconciler.yaml extend it.
WANT: dict[str, str] = {
    "version": "1",
    "customer": "the customer slug, which is the folder name (e.g. acme)",
    "tenant": "the tenant slug, which is the file name without .yaml (e.g. acme-norway)",
    "connections": "a list of connections, each starting with `- name: ...`",
    "name": "a name of 1-100 printable characters (e.g. Visma Business Oslo)",
    "integration": "a key of the integration catalog (e.g. visma-business)",
    "server": "host, host\\instance or host,port (e.g. SQL01\\VISMA)",
    "database": "the system database of the accounting system (e.g. vbsys)",
    "authentication": "sql or windows",
    "login": "the SQL login (e.g. osr_reader)",
    "password": "{env: OSR_NAME} or {file: PATH}",
    "companies": "a list of company ids (e.g. [F0001, F0002])",
    "voucher": "a mapping of provider and document_center_path",
    "provider": "a voucher provider (e.g. visma-document-center)",
    "document_center_path": "a UNC path like \\\\fs01\\vdc\\vouchers or a drive path like D:\\Vouchers",
    "previous_names": "a list of earlier names (e.g. [Oslo VB])",
    "env": "an environment variable name such as OSR_ACME_NO_SQL (letters, digits and _)",
    "file": "a path inside the secrets directory (e.g. acme/no.txt)",
    "absent": "`absent: true` to delete this connection, or no absent key",
}
ITEM_WANT: dict[str, str] = {
    "connections": "a connection: a mapping starting with `name: ...`",
    "companies": "a company id (e.g. F0001)",
    "previous_names": "an earlier name of this connection",
}
# Example values for "missing key" messages.
EXAMPLE: dict[str, str] = {
    "version": "1",
    "customer": "acme",
    "tenant": "acme-norway",
    "name": "Visma Business Oslo",
    "integration": "visma-business",
    "server": "SQL01\\VISMA",
    "database": "vbsys",
    "authentication": "sql",
    "provider": "visma-document-center",
    "document_center_path": "\\\\fs01\\vdc\\vouchers",
    "absent": "true",
}
_MODELS: dict[str, type[BaseModel]] = {
    "connection": ConnectionModel,
    "tombstone": TombstoneModel,
    "voucher": VoucherModel,
    "password": SecretRefModel,
}
_UNIONS = {"connections": frozenset({"connection", "tombstone"})}


def _as_text(value: Any) -> str | None:
    """value when it is text, or a number as the models read it (`name: 2024` is the name
    "2024"); else None (validation says what is wrong)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value if isinstance(value, str) else None


def _text_at(mapping: Any, key: str) -> str | None:
    """_as_text(mapping[key]) when mapping is a mapping."""
    return _as_text(mapping.get(key)) if isinstance(mapping, dict) else None


def _rules(
    label: str, doc: strictyaml.Document, path: Path, cat: catalog_mod.Catalog, settings: secrets.Settings
) -> list[errors.Problem]:
    """Rules that need the path, the catalog or the whole file.

    They read the document as written, wherever it holds the right kind of value, so that one
    wrong value elsewhere does not hide the path, catalog and secret problems of the rest.
    """
    problems: list[errors.Problem] = []

    def add(loc: tuple[Any, ...], message: str) -> None:
        line, column = strictyaml.position(doc.root, loc)
        problems.append(errors.at(label, line, column, validation.say(loc, message)))

    data = doc.data if isinstance(doc.data, dict) else {}
    folder, stem, suffix = path.parent.name, path.stem, path.suffix
    customer, tenant = _text_at(data, "customer"), _text_at(data, "tenant")
    if (
        customer
        and checks.SLUG_RE.fullmatch(customer)
        and len(customer) <= checks.MAX_SLUG
        and customer != folder
    ):
        add(
            ("customer",),
            f"is {validation.shown(customer)} but the file is in folder {folder!r}; "
            + (
                f"write customer: {folder}, or move the file to tenants/{customer}/"
                if checks.SLUG_RE.fullmatch(folder)
                else f"tenant files live at tenants/<customer>/<tenant>.yaml: move it to tenants/{customer}/"
            ),
        )
    if tenant and checks.SLUG_RE.fullmatch(tenant) and len(tenant) <= checks.MAX_SLUG and tenant != stem:
        add(
            ("tenant",),
            f"is {validation.shown(tenant)} but the file is named {stem}{suffix}; "
            + (
                f"write tenant: {stem}, or rename the file to {tenant}{suffix}"
                if checks.SLUG_RE.fullmatch(stem)
                else f"rename the file to {tenant}{suffix}"
            ),
        )

    raw = data.get("connections")
    entries = [
        (i, item) for i, item in enumerate(raw if isinstance(raw, list) else []) if isinstance(item, dict)
    ]
    names: dict[str, int] = {}
    for i, item in entries:
        name = _text_at(item, "name")
        if name is None:
            continue
        key = spec.identity(name)
        if key in names:
            add(
                ("connections", i, "name"),
                f"{validation.shown(name)} is already the name of "
                f"connections[{names[key]}] (names are compared ignoring case and Unicode "
                "form); rename one",
            )
        names.setdefault(key, i)
    connections = [(i, item) for i, item in entries if _connection_kind(item) == "connection"]
    previous: dict[str, int] = {}
    for i, item in connections:
        olds = item.get("previous_names")
        for j, old in enumerate(olds if isinstance(olds, list) else []):
            text = _as_text(old)
            if text is None:
                continue
            key = spec.identity(text)
            if key in previous and previous[key] != i:
                add(
                    ("connections", i, "previous_names", j),
                    f"{validation.shown(text)} is also a previous name of connections[{previous[key]}]; "
                    "keep it on one connection",
                )
            previous.setdefault(key, i)
            other = names.get(key)
            if other is not None and other != i:
                add(
                    ("connections", i, "previous_names", j),
                    f"{validation.shown(text)} is the name of connections[{other}]; a previous name must "
                    "not be in use: remove it here",
                )
    for i, item in connections:
        _entry_rules(item, ("connections", i), cat, settings, add)
    return problems


def _entry_rules(
    item: dict[Any, Any],
    loc: tuple[Any, ...],
    cat: catalog_mod.Catalog,
    settings: secrets.Settings,
    add: Callable[[tuple[Any, ...], str], None],
) -> None:
    """The catalog and secret rules of one connection."""
    key = _text_at(item, "integration")
    integration = cat.get(key) if key is not None else None
    if key is not None and integration is None:
        close = difflib.get_close_matches(key, cat.keys(), n=1)
        hint = f"did you mean {close[0]!r}?" if close else "write one of: " + ", ".join(cat.keys())
        add((*loc, "integration"), f"unknown integration {validation.shown(key)}; {hint}")
    voucher = item.get("voucher")
    if integration is not None and voucher is not None:
        provider = _text_at(voucher, "provider")
        if not integration.supports_vouchers:
            add(
                (*loc, "voucher"), f"{integration.display_name} has no voucher step; remove the voucher block"
            )
        elif provider is not None and provider not in integration.voucher_providers:
            add(
                (*loc, "voucher", "provider"),
                f"unknown provider {validation.shown(provider)} for {integration.display_name}; "
                "write one of: " + ", ".join(integration.voucher_providers),
            )
    password = item.get("password")
    if isinstance(password, dict) and len(password) == 1:
        env, file = _text_at(password, "env"), _text_at(password, "file")
        if (env is not None and checks.ENV_NAME.fullmatch(env)) or file:
            message = settings.check_reference(env, file)
            if message:
                add((*loc, "password"), f"the password reference is refused: {message}")


def _freeze(model: TenantFileModel, label: str, digest: str) -> DesiredTenant:
    connections = []
    tombstones = []
    for entry in model.connections:
        if isinstance(entry, TombstoneModel):
            tombstones.append(entry.name)
            continue
        connections.append(
            DesiredConnection(
                spec=spec.ConnectionSpec.from_attributes(entry),
                password=SecretRef(entry.password.env, entry.password.file) if entry.password else None,
                previous_names=tuple(entry.previous_names),
                encrypt=entry.encrypt,
                trust_server_certificate=entry.trust_server_certificate,
            )
        )
    return DesiredTenant(
        model.customer, model.tenant, label, digest, model.prune, tuple(connections), tuple(tombstones)
    )


def load_file(
    path: Path, *, cat: catalog_mod.Catalog, settings: secrets.Settings, raw: bytes | None = None
) -> DesiredTenant:
    """Read and validate one tenant file; raise InputError listing every problem found."""
    label = str(path)
    if raw is None:
        raw = strictyaml.read_bytes(path)
    root = strictyaml.compose(label, raw)
    digest = hashlib.sha256(raw).hexdigest()
    # Nearly every file is valid and plainly written: read in one walk over its nodes, exactly
    # as below. Anything else (None) is read below, which finds and words every problem.
    tenant = quickread.tenant(root, path, digest, cat=cat, settings=settings)
    if tenant is not None:
        return tenant
    doc = strictyaml.build(label, root)
    if not isinstance(doc.data, dict):
        written = "a list" if isinstance(doc.data, list) else "a single value"
        raise errors.InputError.of(
            [
                errors.at(
                    label,
                    *strictyaml.position(doc.root, ()),
                    f"the file holds {written}; a tenant file is a mapping starting with `version: 1`",
                )
            ]
        )
    problems: list[errors.Problem] = []
    model: TenantFileModel | None = None
    try:
        model = TenantFileModel.model_validate(doc.data)
    except ValidationError as exc:
        problems = validation.problems(
            label,
            doc,
            exc,
            root=TenantFileModel,
            models=_MODELS,
            want=WANT,
            item_want=ITEM_WANT,
            example=EXAMPLE,
            unions=_UNIONS,
        )
    problems += _rules(label, doc, path, cat, settings)
    if problems or model is None:
        raise errors.InputError.of(validation.scrub(problems, validation.literal_passwords(doc.data)))
    return _freeze(model, label, digest)


def bounded(problems: Sequence[errors.Problem]) -> errors.InputError:
    """The problems of many files as one error: sorted, at most MAX_PROBLEMS shown."""
    ordered = sorted(problems)
    if len(ordered) > MAX_PROBLEMS:
        rest = len(ordered) - MAX_PROBLEMS
        ordered = [
            *ordered[:MAX_PROBLEMS],
            errors.Problem("", 0, 0, f"... and {rest} more problems, not shown; fix these and run again"),
        ]
    return errors.InputError(f"{len(problems)} problem(s)", problems=tuple(ordered))


class FileReader:
    """Tenant files read one at a time, the problems of all of them collected, one file per
    tenant across all (load, the batches of stages.read_batches and apply's check share it)."""

    def __init__(self, *, cat: catalog_mod.Catalog, settings: secrets.Settings) -> None:
        self._cat, self._settings = cat, settings
        self._seen: dict[str, str] = {}
        self.problems: list[errors.Problem] = []

    def read(self, path: Path) -> DesiredTenant | None:
        """The tenant of one file; None when the file has problems (kept in .problems)."""
        try:
            tenant = load_file(path, cat=self._cat, settings=self._settings)
        except errors.InputError as exc:
            self.problems.extend(exc.problems)
            return None
        if tenant.key in self._seen:
            self.problems.append(
                errors.at(
                    str(path),
                    1,
                    1,
                    f"{tenant.key} is also declared by {self._seen[tenant.key]}; keep one file per tenant",
                )
            )
        self._seen[tenant.key] = str(path)
        return tenant

    def check(self) -> None:
        """Raise every problem found so far (see bounded)."""
        if self.problems:
            raise bounded(self.problems)


def load(
    paths: Iterable[Path], *, cat: catalog_mod.Catalog, settings: secrets.Settings
) -> list[DesiredTenant]:
    """Load every file, collecting the problems of all of them (up to MAX_PROBLEMS)."""
    reader = FileReader(cat=cat, settings=settings)
    tenants = [t for t in map(reader.read, paths) if t is not None]
    reader.check()
    return tenants


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a tenant file, for editors (schemas/tenant.schema.json)."""
    schema = TenantFileModel.model_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://osr-reconciler.invalid/schemas/tenant.schema.json",
        **schema,
    }
