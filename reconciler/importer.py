"""`import`: a tenant file for every live tenant that has none yet (DESIGN §9).

Each file declares the tenant's connections exactly as they are live (managed and unmanaged
alike), with password references in place of passwords, so that `plan` of the imported tree
shows only the adoptions of the unmanaged connections.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler import atomic, envnames, spec, state, yamlout

MODELINE = "# yaml-language-server: $schema=../../schemas/tenant.schema.json\n"


@dataclass(frozen=True)
class Written:
    key: str
    path: Path
    variables: tuple[str, ...]  # password variables the file references


@dataclass(frozen=True)
class Outcome:
    written: tuple[Written, ...]
    existing: tuple[tuple[str, Path], ...]  # tenants that already have a file: never touched


def export_tenant(live: state.LiveTenant, prefix: str) -> dict[str, object]:
    """The tenant file document of a live tenant: passwords as {env: NAME} references."""
    conns: list[dict[str, object]] = []
    variables = envnames.password_variables(
        live.customer, live.tenant, [c.spec.name for c in live.connections], prefix
    )
    for c in live.connections:
        sql = c.spec.authentication is spec.Authentication.SQL
        conns.append(c.spec.document(password={"env": variables[c.spec.name]} if sql else None))
    return {
        "version": 1,
        "customer": live.customer,
        "tenant": live.tenant,
        "prune": False,
        "connections": conns,
    }


def tenant_text(live: state.LiveTenant, prefix: str) -> tuple[str, tuple[str, ...]]:
    """The tenant file of a live tenant, and the password variables it references."""
    body = export_tenant(live, prefix)
    variables = tuple(
        str(c["password"]["env"])
        for c in body["connections"]  # type: ignore[attr-defined]
        if isinstance(c.get("password"), dict)
    )
    return MODELINE + yamlout.dump(body), variables


def run(live: state.LiveState, root: Path, keys: Sequence[str], prefix: str) -> Outcome:
    """Write root/<customer>/<tenant>.yaml for each of keys that has no file; never overwrite."""
    written: list[Written] = []
    existing: list[tuple[str, Path]] = []
    for key in keys:
        tenant = live.tenants[key]
        path = root / tenant.customer / f"{tenant.tenant}.yaml"
        if path.exists() or path.is_symlink():
            existing.append((key, path))
            continue
        text, variables = tenant_text(tenant, prefix)
        if atomic.write(path, text, exclusive=True):
            written.append(Written(key, path, variables))
        else:
            existing.append((key, path))
    return Outcome(tuple(written), tuple(existing))
