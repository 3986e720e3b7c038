"""The integration catalog: which integrations exist and what each allows (DESIGN §3)."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from reconciler import errors

CATALOG_ENV = "RECONCILER_CATALOG"


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


def _parse(text: str, origin: str) -> dict[str, Integration]:
    try:
        model = _Catalog.model_validate(yaml.load(text, Loader=_LOADER))
    except (yaml.YAMLError, ValidationError) as exc:
        raise errors.CatalogError(f"{origin}: the integration catalog is invalid: {exc}") from None
    return {
        key: Integration(
            key=key,
            display_name=e.display_name,
            default_database=e.default_database,
            voucher_providers=e.vouchers.providers if e.vouchers else (),
            companies=CompanyQuery(e.companies.query, e.companies.id_column, e.companies.name_column),
            company_database=e.company_database,
            read_check=e.permissions.read,
            write_check=e.permissions.write,
            notes=e.notes,
        )
        for key, e in model.integrations.items()
    }


@functools.cache
def _load(extra: str | None) -> Catalog:
    text = resources.files("reconciler").joinpath("catalog.yaml").read_text(encoding="utf-8")
    integrations = _parse(text, "reconciler/catalog.yaml")
    if extra:
        path = Path(extra)
        try:
            extra_text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise errors.CatalogError(
                f"{CATALOG_ENV}={extra}: cannot read the extra catalog ({exc.strerror})"
            ) from None
        integrations.update(_parse(extra_text, str(path)))
    return Catalog(integrations)


def load() -> Catalog:
    """The built-in catalog, extended by the file named in RECONCILER_CATALOG if set."""
    return _load(os.environ.get(CATALOG_ENV) or None)


def builtin() -> Catalog:
    """The built-in catalog alone (the published editor schema)."""
    return _load(None)
