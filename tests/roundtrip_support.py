"""Live tenants described as data, for the round-trip tests (tests/cases_drift_write)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from reconciler import catalog, declared, desired, differ, secrets, spec, state

TENANT_FILE = "tenants/acme/acme-norway.yaml"


def fp(ref: declared.SecretRef) -> str:
    """The password fingerprint of a reference, as the tests pretend it is set."""
    return f"fp:{ref.env or ref.file}"


def live_tenant(doc: dict[str, Any], customer: str = "acme", tenant: str = "acme-norway") -> state.LiveTenant:
    """A live tenant from `connections:` entries in document shape, each with `managed`,
    optionally `applied` (what the tool last applied where the portal changed it since, a
    `password` reference among it) and
    `password_changed` (the portal changed the password)."""
    conns = []
    for i, entry in enumerate(doc.get("connections") or (), 1):
        c = dict(entry)
        managed = bool(c.pop("managed", False))
        applied = c.pop("applied", {})
        changed = c.pop("password_changed", False)
        ref = c.get("password")
        password = f"fp:{ref['env']}" if ref else None
        was = applied.get("password", ref)  # the reference applied last, where the portal changed it
        applied_password = f"fp:{was['env']}" if was else None
        live_spec = spec.ConnectionSpec.from_document(c)
        applied_spec = spec.ConnectionSpec.from_document({**c, **applied})
        conns.append(
            state.LiveConnection(
                id=i,
                spec=live_spec,
                companies=tuple(state.LiveCompany(x, ()) for x in live_spec.companies),
                password_fp="fp:changed-in-portal" if changed else password,
                managed=managed,
                version=1,
                applied_fp=spec.spec_fingerprint(applied_spec, applied_password) if managed else None,
                applied_name=applied_spec.name if managed else None,
            )
        )
    return state.LiveTenant(1, customer, tenant, tuple(conns), ())


def load(path: Path) -> declared.DesiredTenant:
    return desired.load_file(path, cat=catalog.load(), settings=secrets.Settings.from_env(path.parent))


def fingerprints(*tenants: declared.DesiredTenant) -> differ.PasswordFingerprints:
    return {c.password: fp(c.password) for t in tenants for c in t.connections if c.password}


def yaml12(text: str) -> Any:
    """What a YAML 1.2 client other than the tool reads (ruamel's pure safe loader)."""
    return YAML(typ="safe", pure=True).load(text)
