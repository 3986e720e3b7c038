"""`reconciler unlock`: release a tenant lock by hand."""

from __future__ import annotations

import click

from reconciler import errors, store, workflow
from reconciler.commands import options


@click.command(epilog=options.examples(
    ("Release the lock a refused apply named", "reconciler unlock 3f2a9c1e-lock-id"),
    ("On a server store", "reconciler unlock 3f2a9c1e-lock-id --store postgresql+psycopg://admin@portal-db/portal")))
@click.argument("lock_id", metavar="LOCK_ID")
@options.common
def unlock(ctx: workflow.Context, out: options.Out, lock_id: str) -> int:
    """Release a tenant lock by hand (when its apply is gone). LOCK_ID is shown by the refusal."""
    st = ctx.open_store(readonly=False)
    try:
        held = {lock.id: lock for lock in store.list_locks(st)}
        if lock_id not in held:
            raise errors.InputError(f"no lock {lock_id!r}; current locks: "
                                    + (", ".join(held) or "none"))
        store.release_locks(st, [lock_id])
    finally:
        st.close()
    out.info(f"Released {held[lock_id].describe()}.")
    return options.EXIT_OK
