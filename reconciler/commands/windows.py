"""`reconciler windows`: the change windows of reconciler.yaml and the tenants they cover."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from reconciler import clock, declared, freeze, lazy, stages
from reconciler.commands import options

if TYPE_CHECKING:
    from reconciler import desired, windows
else:  # pydantic's models when the command runs, not for its --help or a TAB
    desired, windows = lazy.module("reconciler.desired"), lazy.module("reconciler.windows")


def _declared(ctx: stages.Context) -> list[str]:
    """The tenants the tenant files declare, by their paths (tenants/<customer>/<tenant>.yaml)."""
    if not (ctx.root / "tenants").is_dir():
        return []
    return [declared.path_key(f) for f in desired.discover(ctx.default_paths(()))]


def lines(found: tuple[windows.Window, ...], tenants: list[str], at_text: str, at: datetime) -> list[str]:
    out = [f"Change windows at {at_text}:"]
    for w in found:
        out.append(f"{freeze.quoted(w.name)}: {w.describe()}")
        active = w.active(at)
        upcoming = w.next_opening(at)
        covered = windows.covered(w, tenants)
        if active is not None:
            out.append(
                f"  OPEN since {freeze.local_text(active.start)} until "
                f"{freeze.local_text(active.end)}: apply refuses the tenants below"
            )
        if upcoming is not None:
            out.append(
                f"  next opens {freeze.local_text(upcoming.start)} until {freeze.local_text(upcoming.end)}"
            )
        elif active is None:
            out.append(
                "  does not open again"
                if w.schedule is None
                else f"  does not open within {windows.LOOKAHEAD.days} days"
            )
        label = "frozen now" if active is not None else "covers"
        out.append(f"  {label}: {', '.join(covered) if covered else 'no declared tenant'}")
    return out


@click.command(
    "windows",
    epilog=options.examples(
        ("The windows and the tenants each covers now", "reconciler windows"),
        ("The same on the first day of the year-end audit", "reconciler windows --at 2026-12-28T09:00+01:00"),
    ),
)
@click.option(
    "--at",
    "at_text",
    metavar="TIME",
    help="Show the windows at this time (ISO 8601 with offset, e.g. 2026-03-30T12:00Z); "
    "default now (or RECONCILER_NOW).",
)
@options.common
def windows_command(ctx: stages.Context, out: options.Out, at_text: str | None) -> int:
    """List the change windows (reconciler.yaml) and the tenants each covers at a time."""
    at = clock.parse(at_text, source="--at") if at_text is not None else clock.now()
    found = stages.load_windows(ctx)
    path = stages.shown_path(ctx.root / windows.FILE_NAME)
    if not found:
        out.info(
            f"No change windows: {path} "
            + ("declares none." if (ctx.root / windows.FILE_NAME).exists() else "does not exist.")
        )
        return options.EXIT_OK
    shown = f"{freeze.clock_text(at.astimezone(UTC))} UTC"
    out.result("\n".join(lines(found, _declared(ctx), shown, at)) + "\n")
    return options.EXIT_OK
