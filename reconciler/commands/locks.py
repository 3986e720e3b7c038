"""`reconciler locks`: the tenant locks held now, with holder, host, pid, CI job and lease."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from reconciler import lazy, render, stages
from reconciler.commands import options

if TYPE_CHECKING:
    from reconciler import store
else:  # SQLAlchemy only when the command runs, not for its --help or a TAB
    store = lazy.module("reconciler.store")


def lock_obj(lock: store.LockRow, now_ms: int) -> dict[str, object]:
    return {
        "id": lock.id,
        "tenant": lock.scope,
        "holder": lock.holder.actor,
        "host": lock.holder.host,
        "pid": lock.holder.pid,
        "ci_job": lock.holder.ci_job,
        "since": store.utc(lock.acquired_ms),
        "expires": store.utc(lock.expires_ms),
        "expired": lock.expires_ms < now_ms,
    }


@click.command(
    epilog=options.examples(
        ("Who holds which tenant, since when, until when", "reconciler locks"),
        ("For a script", "reconciler locks --format json"),
    )
)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@options.common
def locks(ctx: stages.Context, out: options.Out, fmt: str) -> int:
    """The tenant locks held now: holder, host, pid, CI job, since, expiry.

    Free one with `reconciler unlock LOCK_ID`, a holder's with `--holder`, stale ones with
    `--expired`.
    """
    with ctx.open_store(readonly=True) as st:
        rows = store.list_locks(st)
    now = store.now_ms()
    entries = [lock_obj(lock, now) for lock in rows]
    if fmt == "json":
        out.result(json.dumps(entries, indent=2, ensure_ascii=False) + "\n")
    elif not entries:
        out.info("No locks held.")
    else:
        out.result(
            "".join(
                f"{render.inert(str(e['id']))}  {render.inert(str(e['tenant']))}  "
                f"{render.inert(str(e['holder']))} on "
                f"{render.inert(str(e['host']))} pid {e['pid']}"
                + (f"  CI job {render.inert(str(e['ci_job']))}" if e["ci_job"] else "")
                + f"  since {e['since']}  {'expired' if e['expired'] else 'expires'} {e['expires']}\n"
                for e in entries
            )
        )
    return options.EXIT_OK
