"""`reconciler export`: the live connections of a tenant as a tenant file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from reconciler import differ, errors, lazy, stages
from reconciler.commands import completion, options

if TYPE_CHECKING:
    from reconciler import catalog, importer
else:  # PyYAML when a tenant is exported, not for --help or a TAB
    catalog, importer = lazy.module("reconciler.catalog"), lazy.module("reconciler.importer")


@click.command(
    epilog=options.examples(
        ("Print a tenant's live connections", "reconciler export --tenant acme/acme-norway"),
        (
            "Start a tenant file from the portal",
            "reconciler export --tenant acme/acme-norway --store postgresql+psycopg://reader@portal-db/portal",
        ),
    )
)
@click.option(
    "--tenant", "tenant", required=True, metavar="CUSTOMER/TENANT", shell_complete=completion.tenants
)
@options.common
def export(ctx: stages.Context, out: options.Out, tenant: str) -> int:
    """Print the live connections of a tenant as a tenant file (passwords as {env: ...}, each a
    variable no other tenant file under tenants/ uses)."""
    (key,) = options.parse_tenants([tenant])
    with ctx.open_store(readonly=True) as st:
        live = st.snapshot([key])
    if key not in live.tenants:
        problems = differ.unknown_tenants_named([key], live.tenants, live.known)
        raise errors.InputError.of(problems)
    # Variables none of the other tenants' files uses, as import gives: the text is meant to
    # become this tenant's file, and a variable two files share is one password for both.
    fleet = Path(ctx.default_paths(())[0])
    taken = importer.variables_in_use(
        [fleet], cat=catalog.load(), settings=ctx.settings, besides=importer.file_of(fleet, key)
    )
    body = importer.export_tenant(live.tenants[key], ctx.settings.env_prefix, taken=taken)
    header = "# yaml-language-server: $schema=../../schemas/tenant.schema.json\n"
    out.result(header + options.to_yaml(body))
    return options.EXIT_OK
