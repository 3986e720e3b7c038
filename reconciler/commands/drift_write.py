"""`reconciler drift --write`: accept the portal's hand changes into the tenant files (§9)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from reconciler import accept, atomic, differ, stages, store
from reconciler import audit as audit_log
from reconciler.commands import options


def run(
    ctx: stages.Context,
    out: options.Out,
    paths: Sequence[str],
    tenants: Sequence[str],
    *,
    ignore_unmanaged: bool,
) -> int:
    """Exit 2 when files were written, 0 when there was nothing to accept, 1 on error (nothing
    written). Read-only on the store."""
    wanted = stages.load_desired(ctx, paths, options.parse_tenants(tenants))
    with ctx.open_store(readonly=True) as st:
        assert st.keyring is not None
        fps = stages.password_fingerprints(ctx, st.keyring, wanted)
        with st.reading() as conn:
            live = store.read(conn, [t.key for t in wanted])
            result = differ.diff(wanted, live, fps, max_delete=10**9)
            audit = store.read_audit(conn, [t.key for t in wanted], stages.AUDIT_LIMIT)
    deleted = audit_log.deleted_in_portal(audit, {c.id for t in live.tenants.values() for c in t.connections})
    outcome = accept.accept(
        wanted,
        live,
        result,
        fps,
        deleted=deleted,
        settings=ctx.settings,
        with_unmanaged=not ignore_unmanaged,
        fleet=[Path(ctx.default_paths(())[0]), *map(Path, paths)],
    )
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
    if not outcome.files:
        lines.append("Nothing to accept: no tenant file was changed.\n")
    out.result("".join(lines))
    return options.EXIT_CHANGES if outcome.files else options.EXIT_OK
