"""Command line entry point: the command group and the one error handler.

The commands live in reconciler.commands, one module each; each returns its exit code.
"""

from __future__ import annotations

import gc
import os
import tempfile
import traceback
from pathlib import Path

import click

from reconciler import errors, redaction, secrets
from reconciler.commands import (
    apply,
    companies,
    drift,
    export,
    history,
    import_tenants,
    options,
    plan,
    store,
    unlock,
    validate,
)

EXIT_OK, EXIT_ERROR = options.EXIT_OK, options.EXIT_ERROR


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--store", "store_url", metavar="URL", default=None,
              help="SQLAlchemy URL of the live store (env RECONCILER_STORE).")
@click.option("--no-color", is_flag=True, default=False, help="No colour (also NO_COLOR).")
@click.version_option(package_name="osr-reconciler", prog_name="reconciler")
def cli(store_url: str | None, no_color: bool) -> None:
    """Declare a reporting portal's data connections in git; plan and apply them safely.

    \b
    Exit codes: 0 success (no changes with --detailed-exitcode),
                1 error or refusal (nothing written),
                2 success with changes (plan --detailed-exitcode, drift).
    """


for _command in (validate.validate, plan.plan, apply.apply, drift.drift, export.export,
                 companies.companies, store.store_group, history.history, unlock.unlock,
                 import_tenants.import_tenants):
    cli.add_command(_command)


# ---------------------------------------------------------------------------------------------
# The one error handler


DEBUG_VAR = "RECONCILER_DEBUG"  # 1: also print the redacted traceback (a CI runner's tmp vanishes)


def _redacted_traceback(exc: BaseException) -> str:
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


def main(argv: list[str] | None = None) -> int:
    # A short-lived process over acyclic data: the cycle collector only costs time (about 40%
    # of a large plan, measured by `make bench`). Reference counting still frees everything.
    gc.disable()
    try:
        result = cli.main(args=argv, prog_name="reconciler", standalone_mode=False)
        return int(result or 0)
    except errors.ReconcilerError as exc:
        for line in exc.lines():
            click.echo(redaction.redact(f"error: {line}"), err=True)
        return EXIT_ERROR
    except _NO_ARGS as exc:  # `reconciler` or `reconciler store` alone: show the help
        ctx = getattr(exc, "ctx", None)
        click.echo(ctx.get_help() if ctx else "")
        return EXIT_OK
    except click.UsageError as exc:
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
        click.echo(redaction.redact(f"error: {exc.format_message()}{hint}"), err=True)
        return EXIT_ERROR
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.Abort:
        click.echo("error: aborted; nothing was changed", err=True)
        return EXIT_ERROR
    except KeyboardInterrupt:
        click.echo("error: interrupted; nothing was changed", err=True)
        return 130
    except BrokenPipeError:
        return EXIT_ERROR
    except Exception as exc:  # the one place an unexpected error (a bug) is reported
        try:
            where = f"The traceback (secrets redacted) is in {_debug_log(exc)}"
        except OSError as log_error:
            where = f"No debug log could be written ({log_error.strerror})"
        if os.environ.get(DEBUG_VAR, "").strip().lower() in ("1", "true", "yes"):
            click.echo(_redacted_traceback(exc), err=True, nl=False)
        click.echo(f"error: internal error ({type(exc).__name__}); this is a bug in osr-reconciler. "
                   f"{where}", err=True)
        return EXIT_ERROR


__all__ = ["main"]
