"""`reconciler drift`: drift (changed by hand) vs pending (git not applied); read-only."""

from __future__ import annotations

import json

import click

from reconciler import clock, render, render_html, workflow
from reconciler.commands import options
from reconciler.progress import Progress


@click.command(epilog=options.examples(
    ("Nightly: exit 2 when anything differs", "reconciler drift"),
    ("Only hand changes, as JSON for an alert", "reconciler drift --ignore-unmanaged --format json"),
    ("One tenant", "reconciler drift --tenant acme/acme-norway")))
@options.paths_argument
@options.tenant_option
@options.format_option
@click.option("--ignore-unmanaged", is_flag=True,
              help="Report unmanaged connections but do not exit 2 for them alone.")
@options.common
def drift(ctx: workflow.Context, out: options.Out, paths: tuple[str, ...], tenants: tuple[str, ...],
          fmt: str, ignore_unmanaged: bool) -> int:
    """Tell drift (live changed by hand) from pending (git not applied); exit 2 if any. Read-only."""
    found, at = workflow.load_windows(ctx), clock.now()
    with Progress() as progress:
        progress.stage("Reading tenant files…")
        wanted = workflow.load_desired(ctx, paths, workflow.parse_tenants(tenants))
        progress.stage("Reading the live store…")
        st = ctx.open_store(readonly=True)
        try:
            result = workflow.make_plan(ctx, st, wanted, max_delete=10**9, fingerprint=False)
        finally:
            st.close()
    result = workflow.with_freeze(result, found, at)
    if fmt == "json":
        out.result(json.dumps(render.drift_obj(result), indent=2, ensure_ascii=False) + "\n")
    elif fmt == "html":
        out.result(render_html.drift_page(result))
    else:
        out.result(render.drift_text(result, color=out.color, markdown_out=fmt == "markdown"))
    differs = bool(result.actions()) or (
        not ignore_unmanaged and any(t.unmanaged for t in result.tenants))
    return options.EXIT_CHANGES if differs else options.EXIT_OK
