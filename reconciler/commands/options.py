"""What every command shares: global options, output streams, exit codes, plan rendering."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from reconciler import differ, render, workflow, yamlout
from reconciler import plan as p

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2
F = TypeVar("F", bound=Callable[..., Any])
FORMATS = click.Choice(["text", "markdown", "json"])


class Out:
    """Where output goes: stdout for results, stderr for messages; colour on a terminal only."""

    def __init__(self, no_color: bool) -> None:
        self.color = (not no_color and not os.environ.get("NO_COLOR") and sys.stdout.isatty()
                      and os.environ.get("TERM") != "dumb")

    def result(self, text: str) -> None:
        click.echo(text, nl=False)

    def info(self, text: str) -> None:
        click.echo(text, err=True)


def common(func: F) -> F:
    """--store and --no-color, accepted after the subcommand as well as before it."""
    @click.option("--store", "store_url", metavar="URL", default=None,
                  help="SQLAlchemy URL of the live store (env RECONCILER_STORE; default: "
                       "sqlite at .reconciler/store.db)")
    @click.option("--no-color", is_flag=True, default=False, help="No colour (also NO_COLOR).")
    @click.pass_context
    def wrapper(ctx: click.Context, /, store_url: str | None, no_color: bool, **kwargs: Any) -> int:
        parent = ctx.find_root().params
        url = store_url or parent.get("store_url")
        out = Out(no_color or bool(parent.get("no_color")))
        return int(func(workflow.Context.make(url, f"`{ctx.command_path}`"), out, **kwargs))

    wrapper.__name__, wrapper.__doc__ = func.__name__, func.__doc__  # the command's name and help
    return wrapper  # type: ignore[return-value]


tenant_option = click.option(
    "--tenant", "tenants", multiple=True, metavar="CUSTOMER/TENANT",
    help="Only this tenant (repeatable). An unknown tenant is an error.")
format_option = click.option("--format", "fmt", type=FORMATS, default="text", show_default=True,
                             help="Output format.")
max_delete_option = click.option(
    "--max-delete", type=click.IntRange(min=0), default=differ.DEFAULT_MAX_DELETE, show_default=True,
    help="A plan deleting more connections than this needs --allow-mass-delete.")


def to_yaml(body: object) -> str:
    return yamlout.dump(body)


# What lets a guarded apply through, in the pipeline's own words (e.g. "add the label
# reconciler:allow-cascade"): RECONCILER_HINT_ALLOW_CASCADE and so on, one per flag.
GUARD_FLAGS = ("--allow-cascade", "--allow-mass-delete", "--skip-source-checks")


def hint_variable(flag: str) -> str:
    return "RECONCILER_HINT_" + flag.removeprefix("--").upper().replace("-", "_")


def guard_hints() -> dict[str, str]:
    return {flag: os.environ[hint_variable(flag)].strip() for flag in GUARD_FLAGS
            if os.environ.get(hint_variable(flag), "").strip()}


def render_plan(result: p.Plan, fmt: str, out: Out,
                allowed: render.Allowed = render.NOTHING_ALLOWED, *,
                expires: str | None = None) -> str:
    """The plan in a format; `allowed`: the guard flags of this run (apply), so that the plan
    says what they let through instead of what it needs; `expires`: the saved plan's expiry."""
    if fmt == "text":
        return render.text(result, color=out.color, allowed=allowed)
    if fmt == "markdown":
        return render.markdown(result, allowed=allowed, hints=guard_hints(), expires=expires)
    return render.RENDERERS[fmt](result)
