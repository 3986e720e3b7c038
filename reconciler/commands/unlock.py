"""`reconciler unlock`: release tenant locks by hand (by id, by holder, or the expired ones)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from reconciler import errors, lazy, render, stages
from reconciler.commands import options

if TYPE_CHECKING:
    from reconciler import locks, store
else:  # SQLAlchemy only when the command runs, not for its --help or a TAB
    locks, store = lazy.module("reconciler.locks"), lazy.module("reconciler.store")


# Locks (and holders) a message names; `reconciler locks` lists them all. An apply of a whole
# fleet holds a lock per tenant: a mistyped LOCK_ID named 8,000 of them.
MOST_NAMED = 20


@click.command(
    epilog=options.examples(
        ("Release the lock a refused apply named", "reconciler unlock 3f2a9c1e-lock-id"),
        ("Every lock a crashed CI job left", "reconciler unlock --holder ci-bot"),
        ("Every lock whose lease has run out", "reconciler unlock --expired"),
    )
)
@click.argument("lock_ids", nargs=-1, metavar="[LOCK_ID]...")
@click.option(
    "--holder",
    metavar="HOLDER",
    default=None,
    help="Release every lock this holder holds: exactly as `reconciler locks` shows it (case and "
    "spaces count).",
)
@click.option("--expired", is_flag=True, help="Release every lock whose lease has run out.")
@options.common
def unlock(
    ctx: stages.Context, out: options.Out, lock_ids: tuple[str, ...], holder: str | None, expired: bool
) -> int:
    """Release tenant locks by hand when their apply is gone: LOCK_ID... | --holder | --expired.

    `reconciler locks` lists them; a refused apply names the one it waited for.
    """
    if sum((bool(lock_ids), holder is not None, expired)) != 1:
        raise errors.InputError("give LOCK_ID..., --holder HOLDER or --expired (exactly one)")
    if holder is not None and not holder.strip():  # an unset variable: `--holder "$JOB"`
        raise errors.InputError("--holder is empty; give the holder as `reconciler locks` shows it")
    with ctx.open_store(readonly=False) as st:
        if lock_ids:
            held = {lock.id: lock for lock in store.list_locks(st)}
            missing = [i for i in dict.fromkeys(lock_ids) if i not in held]
            if missing:
                raise errors.InputError(
                    "no such lock",
                    problems=tuple(
                        errors.Problem(
                            "",
                            0,
                            0,
                            f"no lock {render.inert(i)!r}; current locks: "
                            + (errors.some_of(list(held), MOST_NAMED) or "none")
                            + " (see `reconciler locks`)",
                        )
                        for i in missing
                    ),
                )
        try:
            if lock_ids:
                store.release_lock_ids(st, list(dict.fromkeys(lock_ids)))
                released = [held[i] for i in dict.fromkeys(lock_ids)]
            else:
                released = store.release_where(
                    st,
                    holder=None if holder is None else locks.text(holder),
                    shown=render.inert,  # a holder as `locks` shows it: escaped
                    expired_before=store.now_ms() if expired else None,
                )
            # A --holder that matches none is most often a typo: say who does hold locks.
            holders = sorted({render.inert(lock.holder.actor) for lock in store.list_locks(st)})
        except store.Busy:  # every way of naming the leases: one message (a LOCK_ID got the driver's)
            raise errors.StoreError(
                "the store is busy with another writer (an apply in its transaction); nothing "
                "was released: run unlock again once it has finished"
            ) from None
    if not released and holder is not None:
        out.info(
            f"No lock is held by {render.inert(holder)!r}; nothing was released. Holders now: "
            + (errors.some_of([repr(h) for h in holders], MOST_NAMED) or "none")
            + " (as `reconciler locks` shows them)."
        )
    elif not released:
        out.info("No lock matched; nothing was released.")
    for lock in released:
        out.info(f"Released {render.inert(lock.describe())}.")
        if locks.holder_is_alive(lock.holder):
            # The release waited for the apply's transaction, if it was in one: it has ended.
            # Committed, it wrote its audit rows; else it stops when it finds its lock gone.
            applied = _applied_since(ctx, lock)
            if applied:
                out.info(
                    f"note: its holder, pid {lock.holder.pid} on this machine, had already applied "
                    f"{applied} action(s) to {lock.scope} when the lock was released (unlock waited "
                    f"for its transaction): `reconciler history --tenant {lock.scope}` lists them"
                )
            else:
                out.info(
                    f"warning: its holder, pid {lock.holder.pid} on this machine, is still running: "
                    "an apply that loses its lock stops before it commits"
                )
    return options.EXIT_OK


def _applied_since(ctx: stages.Context, lock: store.LockRow) -> int:
    """Actions the lock's holder applied to its tenant since it took the lock (0 when the store
    cannot say)."""
    try:
        with ctx.open_store(readonly=True) as st:
            entries = st.history([lock.scope], 10_000)
    except errors.ReconcilerError:
        return 0
    return sum(1 for e in entries if e.at_ms >= lock.acquired_ms and e.actor == lock.holder.actor)
