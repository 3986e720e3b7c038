"""`reconciler drift --write`: accept the portal's hand changes into the tenant files (§9)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from reconciler import accept, atomic, declared, differ, errors, stages
from reconciler.commands import options


def run(
    ctx: stages.Context,
    out: options.Out,
    paths: Sequence[str],
    tenants: Sequence[str],
    *,
    ignore_unmanaged: bool,
) -> int:
    """Exit 2 when files were written, 0 when none was (nothing to accept, or only what must be
    resolved by hand, listed), 1 on error (nothing written). Read-only on the store. The fleet
    is read, diffed and accepted in batches, as drift reads it (stages.read_batches); only the
    edited files' text is kept to the end, when all are written at once."""
    # In the order of the tenants' keys, as one diff of the fleet orders them: a variable
    # appended is given to the first tenant that asks for it.
    files = sorted(stages.desired_files(ctx, paths, options.parse_tenants(tenants)), key=declared.path_key)
    variables = accept.Variables([Path(ctx.default_paths(())[0]), *map(Path, paths)], ctx.settings)
    changes: list[accept.FileChange] = []
    reports: list[str] = []
    unknown: list[errors.Problem] = []
    with ctx.open_store(readonly=True) as st:
        for batch in stages.read_batches(ctx, st, files):
            try:
                result = differ.diff(batch.desired, batch.live, batch.fps, max_delete=10**9)
            except errors.InputError as exc:
                unknown.extend(exc.problems)
                continue
            if unknown:
                continue
            deleted = stages.deleted_in_portal(st, result, batch.live)  # a create of it is removed
            outcome = accept.accept(
                batch.desired,
                batch.live,
                result,
                batch.fps,
                deleted=deleted,
                settings=ctx.settings,
                variables=variables,
                with_unmanaged=not ignore_unmanaged,
            )
            changes += outcome.files
            reports += outcome.reports
            del batch, result, outcome  # freed before the next batch is read
    if unknown:
        raise errors.InputError.of(unknown)
    outcome = accept.Outcome(tuple(changes), tuple(reports))
    if outcome.files:
        atomic.writes_begin()
    atomic.replace_all([(change.path, change.text) for change in outcome.files])
    lines: list[str] = []
    for change in outcome.files:
        lines.append(f"Wrote {change.path}:\n")
        lines += [f"  - {line}\n" for line in change.accepted]
        if change.variables:
            lines.append(
                "  Set these password variables (the connections' current passwords) "
                "before the plan of the pull request:\n"
            )
            lines += [f"    {v}\n" for v in change.variables]
    if outcome.reports:
        lines.append("Not accepted (resolve by hand):\n")
        lines += [f"  - {line}\n" for line in outcome.reports]
    if not outcome.files and outcome.reports:  # exit 0: nothing it could write (drift exits 2)
        lines.append("No tenant file was changed: nothing above could be accepted into the files.\n")
    elif not outcome.files:
        lines.append("Nothing to accept: no tenant file was changed.\n")
    if outcome.files:
        written = f"{len(outcome.files)} tenant file(s) were written"
        options.result_after_writing(out, "".join(lines), written)
    else:
        out.result("".join(lines))
    return options.EXIT_CHANGES if outcome.files else options.EXIT_OK
