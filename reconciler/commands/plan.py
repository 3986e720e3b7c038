"""`reconciler plan`: what apply would change, every cascading deletion by name."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from reconciler import clock, declared, errors, gitrepo, lazy, stages
from reconciler.commands import options
from reconciler.progress import Progress

if TYPE_CHECKING:
    from reconciler import planfile
else:  # deepdiff only when a plan is saved
    planfile = lazy.module("reconciler.planfile")

DEFAULT_TTL = "7d"  # a review can take days; apply re-checks the files and the store anyway


def _among_tenant_files(out_file: Path, places: list[str]) -> bool:
    """Whether a plan saved at out_file would replace a tenant file, or be read as one."""
    target = os.path.realpath(out_file)
    for place in map(os.path.realpath, places):
        if target == place or (
            target.lower().endswith(declared.SUFFIXES) and target.startswith(place + os.sep)
        ):
            return True
    return False


def _files_for(
    ctx: stages.Context,
    paths: tuple[str, ...],
    tenants: tuple[str, ...],
    changed_since: str | None,
    out: options.Out,
) -> list[str]:
    keys = options.parse_tenants(tenants)
    if changed_since is None:
        return stages.desired_files(ctx, paths, keys)
    # An empty GITREF is no revision, not "everything". The tenant files are found as without
    # the flag (the same rules, the same paths); git says which of them changed.
    found = stages.desired_files(ctx, paths, keys)
    only, notes = gitrepo.changed_files(ctx.root, changed_since, found, ctx.default_paths(paths))
    for note in notes:
        out.info(note)
    if keys and len(only) < len(found):
        same = sorted(set(found) - set(only))
        raise errors.InputError.of(
            [
                errors.Problem(
                    "--tenant",
                    0,
                    0,
                    f"{declared.path_key(f)}: {f} did not change since {changed_since}; leave out "
                    "--changed-since to plan it",
                )
                for f in same
            ]
        )
    if not only:
        out.info(f"No tenant files changed since {changed_since}.")
    return only


@click.command(
    epilog=options.examples(
        ("Plan every tenant file; exit 2 when there are changes", "reconciler plan --detailed-exitcode"),
        (
            "A pull-request comment for the files changed on the branch",
            "reconciler plan --changed-since origin/main --format markdown",
        ),
        (
            "Save one tenant's plan for `apply --plan`",
            "reconciler plan --tenant acme/acme-norway --out plan.json",
        ),
    )
)
@options.paths_argument
@options.tenant_option
@options.format_option
@click.option(
    "--out",
    "out_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Save the plan (JSON, signed with the store or plan key) for `apply --plan`; a FILE "
    "that exists must be a saved plan or empty.",
)
@click.option(
    "--plan-ttl",
    default=DEFAULT_TTL,
    show_default=True,
    metavar="DURATION",
    help="How long a saved plan stays valid (30m, 24h, 2d; at most 3650d): long enough for the review.",
)
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when there are changes.")
@click.option(
    "--check-sources",
    is_flag=True,
    help="Also connect to each accounting server and check logins, companies, rights.",
)
@click.option(
    "--changed-since",
    metavar="GITREF",
    help="Only tenant files changed since GITREF (since its merge base with HEAD, as a pull "
    "request's diff, up to the files as they are now: uncommitted and new files too).",
)
@options.max_delete_option
@options.common
def plan(
    ctx: stages.Context,
    out: options.Out,
    paths: tuple[str, ...],
    tenants: tuple[str, ...],
    fmt: str,
    out_file: Path | None,
    plan_ttl: str,
    detailed_exitcode: bool,
    check_sources: bool,
    changed_since: str | None,
    max_delete: int,
) -> int:
    """Show what apply would change, every cascading deletion by name. Writes nothing.

    Each tenant's open change window and the next to open (reconciler.yaml at the repository
    root) are shown too, judged now or at RECONCILER_NOW (e.g. 2026-03-30T12:00Z).
    """
    if out_file is not None and str(out_file) == "-":
        # `--out -` wrote a file named `-` (the plan is shown on standard output in any case:
        # --out saves the signed plan for apply --plan)
        raise errors.InputError(
            f"--out {str(out_file)!r}: give the name of a file to save the plan in (the plan is "
            "printed on standard output as well)"
        )
    ttl = options.duration(plan_ttl, flag="--plan-ttl")
    if ttl <= 0:  # a plan saved already expired: apply --plan could only refuse it
        raise errors.InputError(f"--plan-ttl {plan_ttl!r}: write a duration longer than 0, such as 2d")
    found, at = stages.load_windows(ctx), clock.now()
    with Progress() as progress:
        progress.stage("Reading tenant files…")
        files = _files_for(ctx, paths, tenants, changed_since, out)
        if out_file is not None and _among_tenant_files(out_file, [*files, *ctx.default_paths(paths)]):
            raise errors.InputError(
                f"--out {str(out_file)!r} is where tenant files are read from; save the plan "
                "elsewhere (e.g. --out plan.json)"
            )
        checking = " and checking their accounting servers" if check_sources else ""
        progress.stage(f"Reading the live store and planning {len(files)} tenant(s){checking}…")
        with ctx.open_store(readonly=True) as st:
            result, uncompared = stages.plan_files(
                ctx,
                st,
                files,
                max_delete=max_delete,
                fingerprint=out_file is not None,
                check_sources=check_sources,
            )
    result = stages.with_freeze(result, found, at)
    if out_file is None:
        out.result(options.render_plan(result, fmt, out))
    else:
        assert st.keyring is not None
        saving = planfile.saving(
            out_file,
            result,
            keyring=st.keyring,
            store_id=st.store_id,
            git_commit=gitrepo.git_commit(ctx.root),
            ttl_s=ttl,
            uncompared=uncompared,
            root=ctx.root,
        )
        with saving as expires_at:  # in place once the plan it saves was shown
            expires = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(expires_at))
            out.result(options.render_plan(result, fmt, out, expires=expires))
        out.info(f"Saved the plan to {out_file} (valid for {options.spoken(ttl)}, until {expires}).")
    return options.EXIT_CHANGES if detailed_exitcode and result.has_changes else options.EXIT_OK
