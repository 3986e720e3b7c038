"""`reconciler validate`: check tenant files offline."""

from __future__ import annotations

import click

from reconciler import workflow
from reconciler.commands import options
from reconciler.progress import Progress


@click.command()
@click.argument("paths", nargs=-1, metavar="[PATH]...")
@options.common
def validate(ctx: workflow.Context, out: options.Out, paths: tuple[str, ...]) -> int:
    """Check tenant files offline: schema, catalog and path rules (default PATH: tenants/), and
    reconciler.yaml's change windows."""
    with Progress() as progress:
        progress.stage("Validating tenant files…")
        found = workflow.load_windows(ctx)
        tenants = workflow.load_desired(ctx, paths)
    count = sum(len(t.connections) + len(t.tombstones) for t in tenants)
    out.info(f"OK: {len(tenants)} tenant file(s), {count} connection(s) valid"
             + (f"; {len(found)} change window(s)." if found else "."))
    return options.EXIT_OK
