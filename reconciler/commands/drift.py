"""`reconciler drift`: drift (changed by hand) vs pending (git not applied); read-only."""

from __future__ import annotations

import json

import click

from reconciler import clock, errors, render, render_html, stages
from reconciler.commands import options
from reconciler.progress import Progress


@click.command(
    epilog=options.examples(
        ("Nightly: exit 2 when anything differs", "reconciler drift"),
        ("Only hand changes, as JSON for an alert", "reconciler drift --ignore-unmanaged --format json"),
        ("Accept the portal's hand changes into the tenant files", "reconciler drift --write"),
    )
)
@options.paths_argument
@options.tenant_option
@options.format_option
@click.option(
    "--ignore-unmanaged", is_flag=True, help="Report unmanaged connections but do not exit 2 for them alone."
)
@click.option(
    "--write",
    is_flag=True,
    help="Accept the portal's hand changes into the tenant files (exit 2 if written).",
)
@options.common
def drift(
    ctx: stages.Context,
    out: options.Out,
    paths: tuple[str, ...],
    tenants: tuple[str, ...],
    fmt: str,
    ignore_unmanaged: bool,
    write: bool,
) -> int:
    """Tell drift (live changed by hand) from pending (git not applied); exit 2 if any. Read-only
    on the store; --write edits the tenant files (docs/roundtrip.md).

    A tenant inside an open change window (reconciler.yaml at the repository root, judged now
    or at RECONCILER_NOW) is said to be: changes made during it may be intended.
    """
    if write:
        if fmt != "text":
            raise errors.InputError(
                f"--write says what it wrote as text; leave out --format {fmt} (or run drift "
                f"--format {fmt} without --write for the report)"
            )
        from reconciler.commands import drift_write

        return drift_write.run(ctx, out, paths, tenants, ignore_unmanaged=ignore_unmanaged)
    found, at = stages.load_windows(ctx), clock.now()
    with Progress() as progress:
        progress.stage("Reading tenant files…")
        files = stages.desired_files(ctx, paths, options.parse_tenants(tenants))
        progress.stage("Reading the live store…")
        with ctx.open_store(readonly=True) as st:
            result = stages.drift_files(ctx, st, files)
    result = stages.with_freeze(result, found, at)
    if fmt == "json":
        out.result(json.dumps(render.drift_obj(result), indent=2, ensure_ascii=False) + "\n")
    elif fmt == "html":
        out.result(render_html.drift_page(result))
    else:
        out.result(render.drift_text(result, color=out.color, markdown_out=fmt == "markdown"))
    differs = bool(result.all_actions()) or (
        not ignore_unmanaged and any(t.unmanaged for t in result.tenants)
    )
    return options.EXIT_CHANGES if differs else options.EXIT_OK
