"""What every command shares: global options, output streams, exit codes, plan rendering."""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click

from reconciler import errors, lazy, stages
from reconciler.commands import completion

if TYPE_CHECKING:
    from reconciler import differ, render, render_html
    from reconciler import plan as p
else:  # the differ and renderers for the commands that use them, not for every command
    differ, render, render_html = map(
        lazy.module, ("reconciler.differ", "reconciler.render", "reconciler.render_html")
    )

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2
F = TypeVar("F", bound=Callable[..., Any])
FORMATS = click.Choice(["text", "markdown", "json", "html"])
TENANT_ARG = r"^[a-z0-9][a-z0-9-]*/[a-z0-9][a-z0-9-]*$"


def _set(env: Mapping[str, str], name: str) -> bool:
    """A variable that turns something on: set, and not empty, 0 or false."""
    return env.get(name, "").strip().lower() not in ("", "0", "false")


def use_color(*, isatty: bool, env: Mapping[str, str], no_color: bool) -> bool:
    """Colour for results on stdout, as most command-line tools decide it.

    --no-color and NO_COLOR (no-color.org) always win; FORCE_COLOR or CLICOLOR_FORCE colour even
    a pipe or a CI log; otherwise a terminal gets colour unless TERM=dumb or CLICOLOR=0.
    """
    if no_color or env.get("NO_COLOR"):
        return False
    if _set(env, "FORCE_COLOR") or _set(env, "CLICOLOR_FORCE"):
        return True
    return isatty and env.get("TERM") != "dumb" and env.get("CLICOLOR") != "0"


def write_result(text: str, *, color: bool | None = None) -> None:
    """text on standard output; OutputError, a reason and no internal error, when it cannot be
    written (`> /dev/full`, a full disk). A closed pipe (`| head`) is cli.main's to say."""
    try:
        click.echo(text, nl=False, color=color)
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise errors.OutputError(
            f"cannot write to standard output ({exc.strerror or exc}); send it where there is room"
        ) from None


def result_after_writing(out: Out, text: str, written: str) -> None:
    """The result of a command that has written its files (import, drift --write): when it
    cannot be shown, stderr says so and that the files were written, and the exit code stays
    the one of what was done (an exit 1 says nothing was written)."""
    try:
        out.result(text)
    except errors.OutputError as exc:
        with contextlib.suppress(OSError):
            out.info(f"warning: {exc}; {written}")


class Out:
    """Where output goes: stdout for results, stderr for messages; colour as use_color decides."""

    def __init__(self, no_color: bool) -> None:
        self.color = use_color(isatty=sys.stdout.isatty(), env=os.environ, no_color=no_color)

    def result(self, text: str) -> None:
        write_result(text, color=self.color)  # click would strip forced colour from a pipe

    def info(self, text: str) -> None:
        """A line on stderr; what it names from outside (files, the portal, an actor) is shown
        inert: it cannot start another line."""
        from reconciler import spec

        if not spec.visible(text):  # rendering loaded only for such a line (start-up: validate's OK)
            from reconciler import render

            text = render.inert(text)
        click.echo(text, err=True)


def common(func: F) -> F:
    """--store and --no-color, accepted after the subcommand as well as before it."""

    @click.option(
        "--store",
        "store_url",
        metavar="URL",
        default=None,
        help="SQLAlchemy URL of the live store (env RECONCILER_STORE; default: "
        "sqlite at .reconciler/store.db)",
    )
    @click.option("--no-color", is_flag=True, default=False, help="No colour (also NO_COLOR).")
    @click.pass_context
    def wrapper(ctx: click.Context, /, store_url: str | None, no_color: bool, **kwargs: Any) -> int:
        parent = ctx.find_root().params
        url = store_url or parent.get("store_url")
        out = Out(no_color or bool(parent.get("no_color")))
        return int(func(stages.Context.make(url, f"`{ctx.command_path}`", out.info), out, **kwargs))

    wrapper.__name__, wrapper.__doc__ = func.__name__, func.__doc__  # the command's name and help
    return wrapper  # type: ignore[return-value]


def examples(*pairs: tuple[str, str]) -> str:
    """The end of a command's --help: (what it does, the command line), as kubectl shows them."""
    return "\b\nExamples:\n" + "".join(
        (f"  # {what}\n" if what else "") + f"  {line}\n" for what, line in pairs
    )


paths_argument = click.argument("paths", nargs=-1, metavar="[PATH]...", type=click.Path())
tenant_option = click.option(
    "--tenant",
    "tenants",
    multiple=True,
    metavar="CUSTOMER/TENANT",
    shell_complete=completion.tenants,
    help="Only this tenant (repeatable). An unknown tenant is an error.",
)
format_option = click.option(
    "--format",
    "fmt",
    type=FORMATS,
    default="text",
    show_default=True,
    help="Output format (html: one self-contained page).",
)


def max_delete_option(func: F) -> F:
    """--max-delete, whose default is the differ's: read when a command that plans is defined."""
    return click.option(
        "--max-delete",
        type=click.IntRange(min=0),
        default=differ.DEFAULT_MAX_DELETE,
        show_default=True,
        help="A plan deleting more connections than this needs --allow-mass-delete.",
    )(func)


# What lets a guarded apply through, in the pipeline's own words (e.g. "add the label
# reconciler:allow-cascade"): RECONCILER_HINT_ALLOW_CASCADE and so on, one per flag.
GUARD_FLAGS = ("--allow-cascade", "--allow-mass-delete", "--skip-source-checks", "--override-freeze")


def hint_variable(flag: str) -> str:
    return "RECONCILER_HINT_" + flag.removeprefix("--").upper().replace("-", "_")


def guard_hints() -> dict[str, str]:
    return {
        flag: os.environ[hint_variable(flag)].strip()
        for flag in GUARD_FLAGS
        if os.environ.get(hint_variable(flag), "").strip()
    }


def render_plan(
    result: p.Plan, fmt: str, out: Out, allowed: render.Allowed | None = None, *, expires: str | None = None
) -> str:
    """The plan in a format; `allowed`: the guard flags of this run (apply), so that the plan
    says what they let through instead of what it needs (default: none); `expires`: the saved
    plan's expiry."""
    if allowed is None:
        allowed = render.NOTHING_ALLOWED
    if fmt == "text":
        return render.text(result, color=out.color, allowed=allowed)
    if fmt == "markdown":
        return render.markdown(result, allowed=allowed, hints=guard_hints(), expires=expires)
    if fmt == "html":
        return render_html.plan_page(result)
    return render.RENDERERS[fmt](result)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


MAX_DURATION_S = 3650 * 86400  # ten years: as good as forever for a lease wait or a plan's life


def duration(text: str, *, flag: str) -> float:
    """'90s', '15m', '24h', '2d' (bare numbers are seconds), for --plan-ttl and --lock-timeout."""
    match = _DURATION.match(text)
    if not match:
        raise errors.InputError(f"{flag} {text!r}: write a duration such as 30s, 15m, 24h or 2d")
    seconds = float(match[1]) * _UNITS[match[2]]
    if seconds > MAX_DURATION_S:  # a plan's expiry past year 9999 overflowed, after the file was written
        raise errors.InputError(f"{flag} {text!r}: write at most {MAX_DURATION_S // 86400}d")
    return seconds


def spoken(seconds: float) -> str:
    """A duration as --plan-ttl's words say it back: 7d, 1d 12h, 90m → 1h 30m, 10 → 10s (the
    value as written was echoed: `valid for 10`, `valid for  5 m `)."""
    if seconds < 1:
        return f"{seconds:g}s"
    whole, parts = int(seconds), []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if whole >= size:
            parts.append(f"{whole // size}{unit}")
            whole %= size
    return " ".join(parts)


def once(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> str | None:
    """The callback of an option given at most once (declared multiple=True so that a repeat is
    seen): `export --tenant a --tenant b` exported b alone, where every other --tenant repeats."""
    if len(values) > 1:
        flag = param.opts[0] if param.opts else str(param.name)
        raise click.UsageError(f"{flag} is given {len(values)} times and takes one value; give it once", ctx)
    return values[0] if values else None


def parse_tenants(values: Sequence[str]) -> list[str]:
    problems = [
        errors.Problem("--tenant", 0, 0, f"{v!r} is not CUSTOMER/TENANT (e.g. acme/acme-norway)")
        for v in values
        if not re.fullmatch(TENANT_ARG, v)
    ]
    if problems:
        raise errors.InputError.of(problems)
    return list(dict.fromkeys(values))
