"""The pydantic models of a tenant file: the long way of reading one (desired.load_file, for a
file reconciler.quickread does not read), the tenant schema (schemas/tenant.schema.json), and
the vocabulary fixtures and change windows share (Name, Text, Flag, VoucherModel, WANT).

Built on first use: a plan of a valid fleet reads every file the quick way and never builds them
(nor imports pydantic).
"""

from __future__ import annotations

import os
from typing import Annotated, Any, Literal

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

from reconciler import checks, declared, errors, spec, strictyaml, validation

SLUG = checks.SLUG


def _composed(value: Any) -> Any:
    """A name composed (NFC) before its length is counted: `Région` typed on a Mac (NFD) is the
    same name, and was refused as longer than the limit the composed one is under."""
    return spec.nfc(value) if isinstance(value, str) else value


Name = Annotated[
    str,
    Field(min_length=1, max_length=checks.MAX_NAME),
    BeforeValidator(_composed),  # after Field: it runs first, before the length is counted
    AfterValidator(checks.check_name),
]
CompanyId = Annotated[
    str,
    Field(min_length=1, max_length=checks.MAX_COMPANY),
    BeforeValidator(_composed),  # after Field: it runs first, before the length is counted
    AfterValidator(checks.check_name),
]
Text = Annotated[
    str,
    # the pattern is checks.check_text's (which says what is wrong) shown to editors
    Field(min_length=1, max_length=checks.MAX_TEXT, json_schema_extra={"pattern": checks.NOT_BLANK}),
    AfterValidator(checks.check_text),
]
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
        alike = spec.first_look_alike(value)
        if alike is not None:
            first, company = value[alike[0]], value[alike[1]]
            raise checks.fail(
                "companies",
                f"company {company!r} looks the same as company {first!r} and is another id "
                f"({spec.look_alike_difference(company, first)}); list the company the accounting "
                "server has, once",
            )
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
                    + ", ".join(validation.shown(str(k)) for k in extra)
                    + " (or remove absent: true to keep "
                    "the connection)",
                    at_key=extra[0],
                )
        return data


Entry = Annotated[
    Annotated[ConnectionModel, Tag("connection")] | Annotated[TombstoneModel, Tag("tombstone")],
    Discriminator(checks.connection_kind),
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
MODELS: dict[str, type[BaseModel]] = {
    "connection": ConnectionModel,
    "tombstone": TombstoneModel,
    "voucher": VoucherModel,
    "password": SecretRefModel,
}
UNIONS = {"connections": frozenset({"connection", "tombstone"})}


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a tenant file, for editors (schemas/tenant.schema.json)."""
    schema = TenantFileModel.model_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://osr-reconciler.invalid/schemas/tenant.schema.json",
        **schema,
    }


def validate(
    label: str, doc: strictyaml.Document, path: str | os.PathLike[str] | None = None
) -> tuple[TenantFileModel | None, list[errors.Problem]]:
    """The model of a tenant file's values, or the problems pydantic found, located and worded
    with the vocabulary above (the rules that need the path, the catalog or the whole file are
    desired's). path: the file's, whose folder and name are what a missing `customer` and
    `tenant` must say (`add customer: nordlys`, not the example's acme, which is an error there)."""
    example = EXAMPLE
    if path is not None:
        customer, tenant = declared.path_parts(path)
        example = {
            **EXAMPLE,
            **{
                key: value
                for key, value in (("customer", customer), ("tenant", tenant))
                if checks.SLUG_RE.fullmatch(value)
            },
        }
    try:
        return TenantFileModel.model_validate(doc.data), []
    except ValidationError as exc:
        return None, validation.problems(
            label,
            doc,
            exc,
            root=TenantFileModel,
            models=MODELS,
            want=WANT,
            item_want=ITEM_WANT,
            example=example,
            unions=UNIONS,
        )
