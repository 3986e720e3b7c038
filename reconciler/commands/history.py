"""`reconciler history`: the audit log."""

from __future__ import annotations

import json
import time
from typing import Any

import click

from reconciler import render, stages
from reconciler.commands import options


@click.command(
    epilog=options.examples(
        ("The last 100 applied changes", "reconciler history"),
        (
            "One tenant's last 20, as JSON",
            "reconciler history --tenant acme/acme-norway --limit 20 --format json",
        ),
    )
)
@options.tenant_option
@click.option(
    "--limit",
    type=click.IntRange(min=1, max=1_000_000),
    default=100,
    show_default=True,
    help="At most this many entries, newest first (1 to 1,000,000).",
)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@options.common
def history(ctx: stages.Context, out: options.Out, tenants: tuple[str, ...], limit: int, fmt: str) -> int:
    """The audit log: time, actor, commit, action, connection (a rename: from → to), changed
    fields, freeze overrides."""
    keys = options.parse_tenants(tenants)
    with ctx.open_store(readonly=True) as st:
        if keys:  # "No history yet" for a misspelt tenant would say something untrue
            stages.refuse_unknown(st, keys)
        rows = st.history(keys, limit)
    entries: list[dict[str, Any]] = [
        {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(r.at_ms / 1000)),
            "actor": r.actor,
            "commit": r.git_commit,
            "tenant": r.key,
            "action": r.action,
            "connection": r.connection,
            "previous_name": r.previous_name,
            "reason": r.reason,
            "fields": list(r.fields),
            "cascade": r.cascade_count,
            "freeze_override": r.freeze_override,
        }
        for r in rows
    ]
    if fmt == "json":
        out.result(json.dumps(entries, indent=2, ensure_ascii=False) + "\n")
    elif not entries:
        out.info("No history yet.")
    else:
        out.result(
            "".join(
                # Every value from the audit log inert: the store is the portal's, and a line
                # break in a tenant's name or a field printed a forged entry of its own
                f"{e['time']}  {render.inert(e['actor'])}  {_short_commit(e['commit'])}  "
                f"{render.inert(e['tenant'])}  {render.inert(e['action'])} {_named(e)}  "
                f"{render.inert(','.join(e['fields'])) or '-'}"
                + (f"  ({e['cascade']} cascaded)" if e["cascade"] else "")
                + (  # in quotes it cannot close: a reason's `]` ended a bracket here
                    f"  override-freeze: {render.quoted(e['freeze_override'])}"
                    if e["freeze_override"]
                    else ""
                )
                + "\n"
                for e in entries
            )
        )
    return options.EXIT_OK


def _named(entry: dict[str, Any]) -> str:
    """The connection an entry names, and the name it replaced (`"Oslo GP" → "GP Oslo"`)."""
    name = render.quoted(entry["connection"])
    before = entry["previous_name"]
    return name if before is None else f"{render.quoted(before)} → {name}"


def _short_commit(commit: str | None) -> str:
    """A commit as git shows it short, keeping the `-dirty` of an apply of files not committed."""
    if not commit:
        return "-"
    sha, dirty, _ = commit.partition("-dirty")
    return render.inert(sha[:12] + dirty)
