"""`reconciler plan`: what apply would change, every cascading deletion by name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from reconciler import planfile, workflow
from reconciler.commands import options
from reconciler.progress import Progress


def _desired_for(ctx: workflow.Context, paths: tuple[str, ...], tenants: tuple[str, ...],
                 changed_since: str | None, out: options.Out) -> list[Any]:
    keys = workflow.parse_tenants(tenants)
    only = None
    if changed_since:
        only, notes = workflow.changed_files(ctx.root, changed_since, ctx.default_paths(paths))
        for note in notes:
            out.info(note)
        if not only:
            out.info(f"No tenant files changed since {changed_since}.")
    return workflow.load_desired(ctx, paths, keys, only_files=only)


@click.command(epilog=options.examples(
    ("Plan every tenant file; exit 2 when there are changes", "reconciler plan --detailed-exitcode"),
    ("A pull-request comment for the files changed on the branch",
     "reconciler plan --changed-since origin/main --format markdown"),
    ("Save one tenant's plan for `apply --plan`",
     "reconciler plan --tenant acme/acme-norway --out plan.json")))
@options.paths_argument
@options.tenant_option
@options.format_option
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Save the plan (JSON, signed with the store key) for `apply --plan`.")
@click.option("--plan-ttl", default="24h", show_default=True, metavar="DURATION",
              help="How long a saved plan stays valid (30m, 24h, 2d).")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when there are changes.")
@click.option("--check-sources", is_flag=True,
              help="Also connect to each accounting server and check logins, companies, rights.")
@click.option("--changed-since", metavar="GITREF", help="Only tenant files changed since GITREF.")
@options.max_delete_option
@options.common
def plan(ctx: workflow.Context, out: options.Out, paths: tuple[str, ...], tenants: tuple[str, ...],
         fmt: str, out_file: Path | None, plan_ttl: str, detailed_exitcode: bool,
         check_sources: bool, changed_since: str | None, max_delete: int) -> int:
    """Show what apply would change, every cascading deletion by name. Writes nothing."""
    ttl = planfile.duration(plan_ttl, flag="--plan-ttl")
    with Progress() as progress:
        progress.stage("Reading tenant files…")
        wanted = _desired_for(ctx, paths, tenants, changed_since, out)
        progress.stage(f"Reading the live store and planning {len(wanted)} tenant(s)…")
        st = ctx.open_store(readonly=True)
        try:
            result = workflow.make_plan(ctx, st, wanted, max_delete=max_delete,
                                        fingerprint=out_file is not None)
        finally:
            st.close()
        if check_sources:
            progress.stage("Checking the accounting servers…")
            result = workflow.check_sources(ctx, result, wanted)
    if out_file is not None:
        assert st.keyring is not None
        planfile.write(out_file, result, keyring=st.keyring, store_id=st.store_id,
                       git_commit=workflow.git_commit(ctx.root), ttl_s=ttl)
        out.info(f"Saved the plan to {out_file} (valid for {plan_ttl}).")
    out.result(options.render_plan(result, fmt, out))
    return options.EXIT_CHANGES if detailed_exitcode and result.has_changes else options.EXIT_OK
