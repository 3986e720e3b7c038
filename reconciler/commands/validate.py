"""`reconciler validate`: check tenant files offline."""

from __future__ import annotations

import click

from reconciler import stages
from reconciler.commands import options
from reconciler.progress import Progress


@click.command(
    epilog=options.examples(
        ("Check every tenant file under tenants/", "reconciler validate"),
        ("Check the files of one customer", "reconciler validate tenants/acme"),
        (
            "Check two files, as the pre-commit hook does",
            "reconciler validate tenants/acme/acme-norway.yaml tenants/acme/acme-sweden.yaml",
        ),
    )
)
@options.paths_argument
@options.common
def validate(ctx: stages.Context, out: options.Out, paths: tuple[str, ...]) -> int:
    """Check tenant files offline: schema, catalog and path rules (default PATH: tenants/), and
    reconciler.yaml's change windows."""
    with Progress() as progress:
        progress.stage("Validating tenant files…")
        found = stages.load_windows(ctx)
        files = count = 0
        for tenant in stages.each_valid(ctx, stages.desired_files(ctx, paths)):  # one held at a time
            files += 1
            count += len(tenant.connections) + len(tenant.tombstones)
    out.info(
        f"OK: {files} tenant file(s), {count} connection(s) valid"
        + (f"; {len(found)} change window(s)." if found else ".")
    )
    return options.EXIT_OK
