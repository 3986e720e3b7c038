"""The integration catalog: which integrations exist and what each allows (DESIGN §3)."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

import yaml

from reconciler import errors

if TYPE_CHECKING:
    from pydantic import BaseModel

CATALOG_ENV = "RECONCILER_CATALOG"


def _model() -> type[BaseModel]:
    return _models()[""]


@functools.cache
def _models() -> dict[str, type[BaseModel]]:
    """The pydantic model of a catalog file, built on first use: a catalog a user gives
    (RECONCILER_CATALOG) is checked with it as it is read; the built-in one is checked by
    tests/test_catalog.py, so that reading tenant files (validate, plan) needs no pydantic."""
    from pydantic import BaseModel, ConfigDict, Field

    class _Strict(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)

    class _Vouchers(_Strict):
        providers: tuple[str, ...] = Field(min_length=1)

    class _Companies(_Strict):
        query: str
        id_column: str
        name_column: str

    class _Permissions(_Strict):
        read: str
        write: str

    class _Entry(_Strict):
        display_name: str
        default_database: str
        vouchers: _Vouchers | None = None
        companies: _Companies
        company_database: str | None = None
        permissions: _Permissions
        notes: str | None = None

    class _Catalog(_Strict):
        version: int
        integrations: dict[str, _Entry]

    # The model of the mapping under each key ("": the file's), for unknown keys' did-you-mean
    return {
        "": _Catalog,
        "integrations": _Entry,
        "vouchers": _Vouchers,
        "companies": _Companies,
        "permissions": _Permissions,
    }


@dataclass(frozen=True)
class CompanyQuery:
    query: str
    id_column: str
    name_column: str


@dataclass(frozen=True)
class Integration:
    key: str
    display_name: str
    default_database: str
    voucher_providers: tuple[str, ...]
    companies: CompanyQuery
    company_database: str | None
    read_check: str
    write_check: str
    notes: str | None

    @property
    def supports_vouchers(self) -> bool:
        return bool(self.voucher_providers)

    def company_database_for(self, company_id: str, system_database: str) -> str:
        """The database that holds one company's books."""
        if self.company_database is None:
            return system_database
        return self.company_database.format(id=company_id)


@dataclass(frozen=True)
class Catalog:
    integrations: dict[str, Integration]

    def get(self, key: str) -> Integration | None:
        return self.integrations.get(key)

    def keys(self) -> list[str]:
        return sorted(self.integrations)


# libyaml's loader where PyYAML has it (as strictyaml reads tenant files): the same YAML, read
# in a tenth of the time, on every command that reads the catalog.
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _why(exc: Exception) -> str:
    """What is wrong, on one line, without the values written (the file named may hold a key or
    a password by mistake: RECONCILER_CATALOG=.reconciler/store.key)."""
    errors_of = getattr(exc, "errors", None)
    if callable(errors_of):  # pydantic: where and what, never the input
        found = errors_of(include_url=False, include_context=False, include_input=False)
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'the file'}: {e['msg']}" for e in found)
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or type(exc).__name__
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}" if mark else str(problem)


def _parse(text: str, origin: str, *, check: bool = True) -> dict[str, Integration]:
    """The integrations of a catalog file; check: validate it first (every file but the built-in
    one, which tests/test_catalog.py checks the same way)."""
    try:
        data: Any = yaml.load(text, Loader=_LOADER)
        if check:
            data = _model().model_validate(data).model_dump()
    except (yaml.YAMLError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        raise errors.CatalogError(f"{origin}: the integration catalog is invalid: {_why(exc)}") from None
    return _integrations(data)


def _integrations(data: Any) -> dict[str, Integration]:
    """The integrations of a catalog file's checked data."""
    integrations: dict[str, Integration] = {}
    for key, e in data["integrations"].items():
        vouchers, companies, permissions = e.get("vouchers"), e["companies"], e["permissions"]
        integrations[key] = Integration(
            key=key,
            display_name=e["display_name"],
            default_database=e["default_database"],
            voucher_providers=tuple(vouchers["providers"]) if vouchers else (),
            companies=CompanyQuery(companies["query"], companies["id_column"], companies["name_column"]),
            company_database=e.get("company_database"),
            read_check=permissions["read"],
            write_check=permissions["write"],
            notes=e.get("notes"),
        )
    return integrations


@functools.cache
def _load(extra: str | None) -> Catalog:
    text = resources.files("reconciler").joinpath("catalog.yaml").read_text(encoding="utf-8")
    integrations = _parse(text, "reconciler/catalog.yaml", check=False)
    if extra:
        integrations.update(_extra(extra))
    return Catalog(integrations)


def _extra(extra: str) -> dict[str, Integration]:
    """The integrations of the file RECONCILER_CATALOG names, read as strictly as tenant files
    (reconciler.strictyaml: values as written, so `default_database: NO` is the text NO; a key
    written twice, a file over 1 MiB, a pipe: errors), each problem at its line and column, its
    values never quoted (the variable may name a key file by mistake)."""
    from reconciler import strictyaml

    try:
        raw = strictyaml.read_bytes(extra)
        doc = strictyaml.parse(extra, raw)
    except errors.InputError as exc:
        raise errors.CatalogError(
            f"{CATALOG_ENV}={extra}: the extra integration catalog cannot be read",
            problems=exc.problems,
        ) from None
    from pydantic import ValidationError

    from reconciler import validation

    models = _models()
    try:
        data = models[""].model_validate(doc.data).model_dump()
    except ValidationError as exc:
        problems = validation.problems(
            extra, doc, exc, root=models[""], models=models, want={}, item_want={}, example={}
        )
        raise errors.CatalogError(
            f"{extra}: the integration catalog is invalid", problems=tuple(sorted(problems))
        ) from None
    return _integrations(data)


def load() -> Catalog:
    """The built-in catalog, extended by the file named in RECONCILER_CATALOG if set."""
    return _load(os.environ.get(CATALOG_ENV) or None)


def builtin() -> Catalog:
    """The built-in catalog alone (the published editor schema)."""
    return _load(None)
