"""`import`: a tenant file for every live tenant that has none yet (DESIGN §9).

Each file declares the tenant's connections exactly as they are live (managed and unmanaged
alike), with password references in place of passwords, so that `plan` of the imported tree
shows only the adoptions of the unmanaged connections.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler import atomic, checks, envnames, errors, spec, state, yamlout

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


def unwritable(live: state.LiveState, keys: Sequence[str]) -> list[errors.Problem]:
    """What a tenant file cannot hold of these tenants: a portal-made name it refuses (a line
    break, a character that does not show, too long) or a customer or tenant name that is no
    slug. import writes nothing while any is there: a file validate refuses is no import."""
    problems = []
    for key in keys:
        t = live.tenants[key]
        for what, slug in (("customer", t.customer), ("tenant", t.tenant)):
            if len(slug) > checks.MAX_SLUG or not checks.SLUG_RE.fullmatch(slug):
                problems.append(
                    errors.Problem(
                        key[:100],
                        0,
                        0,
                        f"the {what} name is not a slug of at most {checks.MAX_SLUG} lowercase letters, "
                        "digits and '-', so no tenant file can be named after it; correct it in the portal",
                    )
                )
        for c in t.connections:
            named = [("connection", c.spec.name, checks.MAX_NAME)]
            named += [("company", code, checks.MAX_COMPANY) for code in c.spec.companies]
            for what, name, longest in named:
                why = spec.name_problem(name) or (
                    f"is over {longest} characters" if len(name) > longest else None
                )
                if why:
                    problems.append(
                        errors.Problem(
                            f"{key}/{c.spec.name}",
                            0,
                            0,
                            f'the portal\'s {what} "{name}" {why.split(";")[0]}, which a tenant file cannot '
                            "hold; correct it in the portal, then import again",
                        )
                    )
    return problems


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
