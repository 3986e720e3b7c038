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
    "--tenant",
    "tenant",
    required=True,
    multiple=True,
    callback=options.once,
    metavar="CUSTOMER/TENANT",
    shell_complete=completion.tenants,
)
@options.common
def export(ctx: stages.Context, out: options.Out, tenant: str) -> int:
    """Print the live connections of a tenant as a tenant file (passwords as {env: ...}, each a
    variable no other tenant file under tenants/ uses). Prints nothing (exit 1) for a tenant
    whose file validate would refuse, and says what to correct in the portal."""
    (key,) = options.parse_tenants([tenant])
    with ctx.open_store(readonly=True) as st:
        live = st.snapshot([key])
    if key not in live.tenants:
        problems = differ.unknown_tenants_named([key], live.tenants, live.known)
        raise errors.InputError.of(problems)
    # Variables none of the other tenants' files uses, as import gives: the text is meant to
    # become this tenant's file, and a variable two files share is one password for both.
    fleet = Path(ctx.default_paths(())[0])
    path, cat = importer.file_of(fleet, key), catalog.load()
    taken = importer.variables_in_use([fleet], cat=cat, settings=ctx.settings, besides=path)
    # A file validate would refuse is no export (a portal name no file can hold, a server the
    # catalog refuses): said of the portal's tenant and connection, as import says it.
    problems = importer.unwritable(live, [key], again="export")
    if not problems:
        text, _ = importer.tenant_text(live.tenants[key], ctx.settings.env_prefix, taken=taken)
        problems = importer.refused(
            live.tenants[key], path, text, cat=cat, settings=ctx.settings, again="export"
        )
    if problems:
        raise errors.InputError.of(problems)
    out.result(text)
    return options.EXIT_OK
