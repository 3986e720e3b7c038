"""Command line entry point: the command group and the one error handler.

The commands live in reconciler.commands, one module each; each returns its exit code. The group
knows their names and one-line help, and imports a command's module only to run or complete it:
every TAB of shell completion and every `reconciler --help` starts this process.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import io
import os
import re
import signal
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import click
from click.shell_completion import CompletionItem

from reconciler import drivers, errors, lazy, redaction

if TYPE_CHECKING:
    import tempfile
    import traceback
else:  # only an internal error writes a debug log
    tempfile, traceback = lazy.module("tempfile"), lazy.module("traceback")

EXIT_OK, EXIT_ERROR = 0, 1

# name -> (module in reconciler.commands, its click command, the one line `reconciler --help` shows)
COMMANDS = {
    "apply": ("apply", "apply", "Plan (or load a saved plan), show it, and apply it."),
    "companies": ("companies", "companies", "List the companies on an accounting server."),
    "completion": ("completion", "completion", "Print the shell completion script (bash, zsh, fish)."),
    "drift": ("drift", "drift", "Tell drift from pending; exit 2 if any. Read-only."),
    "export": ("export", "export", "Print a tenant's live connections as a tenant file."),
    "history": ("history", "history", "The audit log of applied changes."),
    "import": ("import_tenants", "import_tenants", "Write tenant files for live tenants that have none."),
    "locks": ("locks", "locks", "List the tenant locks held: holder, host, pid, CI job, expiry."),
    "plan": ("plan", "plan", "Show what apply would change. Writes nothing."),
    "store": ("store", "store_group", "Create, seed, dump the live store; rotate its key."),
    "unlock": ("unlock", "unlock", "Release a tenant lock by hand."),
    "validate": ("validate", "validate", "Check tenant files offline (the pre-commit hook)."),
    "windows": ("windows", "windows_command", "List the change windows and the tenants each covers."),
}


class LazyGroup(click.Group):
    """A group that imports a command's module only when that command runs or completes."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS or cmd_name in self.commands:
            return super().get_command(ctx, cmd_name)
        module, attribute, short_help = COMMANDS[cmd_name]
        command: click.Command = getattr(importlib.import_module(f"reconciler.commands.{module}"), attribute)
        command.short_help = short_help
        self.add_command(command, cmd_name)
        return command

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.exceptions.NoSuchCommand as exc:  # click offers only the commands loaded
            raise click.exceptions.NoSuchCommand(
                exc.command_name, possibilities=self.list_commands(ctx), ctx=ctx
            ) from None

    def _short_help(self, name: str) -> str:
        if name in COMMANDS and name not in self.commands:
            return COMMANDS[name][2]
        return self.commands[name].get_short_help_str(limit=1000)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, self._short_help(name)) for name in self.list_commands(ctx)])

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        # click's own would import every matching command for its help line
        names = [
            CompletionItem(name, help=self._short_help(name))
            for name in self.list_commands(ctx)
            if name.startswith(incomplete)
        ]
        return names + click.Command.shell_complete(self, ctx, incomplete)


def _print_versions(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(drivers.versions_text(), nl=False)
        ctx.exit(EXIT_OK)


EXAMPLES = """\b
Examples:
  # Set up completion for bash (zsh, fish alike); see `reconciler completion --help`
  source <(reconciler completion bash)
  # What would change for one tenant, then apply exactly that plan
  reconciler plan --tenant acme/acme-norway --out plan.json
  reconciler apply --plan plan.json
"""


@click.group(
    cls=LazyGroup,
    epilog=EXAMPLES,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--store",
    "store_url",
    metavar="URL",
    default=None,
    help="SQLAlchemy URL of the live store (env RECONCILER_STORE).",
)
@click.option(
    "--no-color",
    is_flag=True,
    default=False,
    help="No colour (also NO_COLOR); FORCE_COLOR or CLICOLOR_FORCE force it.",
)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_versions,
    help="Show the versions of the tool, Python, SQLAlchemy and database drivers.",
)
def cli(store_url: str | None, no_color: bool) -> None:
    """Declare a reporting portal's data connections in git; plan and apply them safely.

    \b
    Exit codes: 0 success (no changes with --detailed-exitcode),
                1 error or refusal (nothing written),
                2 success with changes (plan --detailed-exitcode, drift,
                  drift --write that wrote).
    """


# ---------------------------------------------------------------------------------------------
# The one error handler


DEBUG_VAR = "RECONCILER_DEBUG"  # 1: also print the redacted traceback (a CI runner's tmp vanishes)


def _redacted_traceback(exc: BaseException) -> str:
    from reconciler import secrets

    secrets.register_environment(os.environ.get(secrets.ENV_PREFIX_VAR) or secrets.DEFAULT_PREFIX)
    return redaction.redact("".join(traceback.format_exception(exc)))


def _debug_log(exc: BaseException) -> Path:
    text = _redacted_traceback(exc)
    fd, name = tempfile.mkstemp(prefix="reconciler-debug-", suffix=".log")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    return Path(name)


# click >= 8.2 raises this for a group called without a command; older versions print help.
_NO_ARGS: type[Exception] = getattr(click.exceptions, "NoArgsIsHelpError", type("_Never", (Exception,), {}))


def _escape_what_the_encoding_lacks() -> None:
    """Output in an encoding other than UTF-8 (PYTHONIOENCODING=cp1252, Windows redirected to a
    file): a character it lacks (→, a portal's Cyrillic) is written escaped (\u2192), not an
    internal error halfway through a plan."""
    for stream in (sys.stdout, sys.stderr):
        encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "")
        if encoding != "utf8" and isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")


def _warning_line(message: Warning | str, category: type[Warning], *_: object, **__: object) -> None:
    """A library's warning (SQLAlchemy's about a store URL's options) as one line of ours, not
    Python's two with a source line of the tool: `warning: ...`, inert and redacted."""
    text = " ".join(str(message).split())
    click.echo(redaction.redact(f"warning: {_inert(text)}"), err=True)


_CHOICE_BREAK = re.compile(r"(?<=[:,])\n\t")


def _inert(line: str) -> str:
    """An error line as render.inert shows text from outside (loaded only to say an error)."""
    from reconciler import render

    return render.inert(line)


def main(argv: list[str] | None = None) -> int:
    shown = warnings.showwarning
    warnings.showwarning = _warning_line
    try:
        return _main(argv)
    finally:  # the in-process test runner calls main again and again
        warnings.showwarning = shown


def _main(argv: list[str] | None) -> int:
    # A short-lived process over acyclic data: the cycle collector only costs time (about 40%
    # of a large plan, measured by `make bench`). Reference counting still frees everything.
    gc.disable()
    if sys.stderr is None:  # `2>&-`: run as asked, its messages unsaid (the exit code says how it went)
        sys.stderr = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 (the process's own)
    if sys.stdout is None:  # `>&-`: Python has no standard output to give (click's isatty failed)
        click.echo(
            "error: standard output is closed; send it somewhere, e.g. > /dev/null (nothing was done)",
            err=True,
        )
        return EXIT_ERROR
    _escape_what_the_encoding_lacks()
    try:
        result = cli.main(args=argv, prog_name="reconciler", standalone_mode=False)
        return int(result or 0)
    except errors.ReconcilerError as exc:
        for line in exc.lines():  # one line each: a file name or an actor cannot start another
            click.echo(redaction.redact(f"error: {_inert(line)}"), err=True)
        return EXIT_ERROR
    except _NO_ARGS as exc:  # `reconciler` or `reconciler store` alone: show the help
        ctx = getattr(exc, "ctx", None)
        try:
            click.echo(ctx.get_help() if ctx else "")
        except OSError as error:
            return _unwritten(error)
        return EXIT_OK
    except click.UsageError as exc:
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
        # Click lays a choice list out over lines ("Choose from:\n\tbash,\n\tzsh"): one line here
        message = _CHOICE_BREAK.sub(" ", exc.format_message())
        click.echo(redaction.redact(f"error: {_inert(message)}{hint}"), err=True)
        return EXIT_ERROR
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.Abort as exc:  # click's own for Ctrl-C (and Ctrl-D at a prompt)
        what = "interrupted" if isinstance(exc.__cause__, KeyboardInterrupt) else "aborted"
        click.echo(f"error: {what}; nothing was changed", err=True)
        return EXIT_ERROR
    except KeyboardInterrupt:  # an error like any other (DESIGN: 0, 1 and 2 are the exit codes)
        click.echo("error: interrupted; nothing was changed", err=True)
        return EXIT_ERROR
    except SystemExit as exc:
        if type(sys.stdout).__name__ == "_PacifyFlushWrapper":  # click's exit 1 on a closed pipe
            _closed_output()
            return EXIT_ERROR
        if type(exc).__name__ != "Terminated":  # locks.Terminated, without importing locks here
            raise
        what = signal.Signals(int(exc.code or 0) - 128).name  # SIGTERM, SIGHUP (locks: 128 + signum)
        with contextlib.suppress(OSError):  # a hang-up: its terminal may be gone
            click.echo(f"error: terminated ({what}); nothing was changed", err=True)
        return EXIT_ERROR
    except BrokenPipeError:
        _closed_output()
        return EXIT_ERROR
    except Exception as exc:  # the one place an unexpected error (a bug) is reported
        if isinstance(exc, OSError) and _from_standard_output(exc):
            return _unwritten(exc)
        try:
            where = f"The traceback (secrets redacted) is in {_debug_log(exc)}"
        except OSError as log_error:
            where = f"No debug log could be written ({log_error.strerror})"
        if os.environ.get(DEBUG_VAR, "").strip().lower() in ("1", "true", "yes"):
            click.echo(_redacted_traceback(exc), err=True, nl=False)
        click.echo(
            f"error: internal error ({type(exc).__name__}); this is a bug in osr-reconciler. {where}",
            err=True,
        )
        return EXIT_ERROR


def _unwritten(exc: OSError) -> int:
    """Standard output could not be written: a closed pipe, or no room (options.write_result)."""
    if isinstance(exc, BrokenPipeError):
        _closed_output()
    else:
        click.echo(
            f"error: cannot write to standard output ({exc.strerror or exc}); send it where there is room",
            err=True,
        )
    return EXIT_ERROR


def _from_standard_output(exc: OSError) -> bool:
    """Whether exc came from click.echo writing to standard output (`--help > /dev/full`, a
    full disk): no bug. The tool's own output goes through options.write_result, which says so
    itself; click's --help and --version do not."""
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_name == "echo" and code.co_filename.endswith(os.path.join("click", "utils.py")):
            return not tb.tb_frame.f_locals.get("err")
        tb = tb.tb_next
    return False


def _closed_output() -> None:
    """`reconciler drift | head -1`: say why the exit is 1, where it can still be said."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        print("error: the output was closed before all of it was written (broken pipe)", file=sys.__stderr__)
        sys.__stderr__.flush()  # type: ignore[union-attr]


__all__ = ["main"]
