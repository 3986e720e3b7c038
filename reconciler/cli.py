"""Command line: argument parsing, output, and the one error handler. Commands return int."""

from __future__ import annotations

import gc
import json
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import yaml

from reconciler import (
    applier,
    differ,
    errors,
    fixture,
    planfile,
    redaction,
    render,
    secrets,
    store,
    workflow,
)
from reconciler import plan as p
from reconciler.progress import Progress

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
        return int(func(workflow.Context.make(url), out, **kwargs))

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


# ---------------------------------------------------------------------------------------------
# validate


@cli.command()
@click.argument("paths", nargs=-1, metavar="[PATH]...")
@common
def validate(ctx: workflow.Context, out: Out, paths: tuple[str, ...]) -> int:
    """Check tenant files offline: schema, catalog and path rules (default PATH: tenants/)."""
    with Progress() as progress:
        progress.stage("Validating tenant files…")
        tenants = workflow.load_desired(ctx, paths)
    count = sum(len(t.connections) + len(t.tombstones) for t in tenants)
    out.info(f"OK: {len(tenants)} tenant file(s), {count} connection(s) valid.")
    return EXIT_OK


# ---------------------------------------------------------------------------------------------
# plan


def _desired_for(ctx: workflow.Context, paths: tuple[str, ...], tenants: tuple[str, ...],
                 changed_since: str | None, out: Out) -> list[Any]:
    keys = workflow.parse_tenants(tenants)
    only = None
    if changed_since:
        only, notes = workflow.changed_files(ctx.root, changed_since, ctx.default_paths(paths))
        for note in notes:
            out.info(note)
        if not only:
            out.info(f"No tenant files changed since {changed_since}.")
    return workflow.load_desired(ctx, paths, keys, only_files=only)


@cli.command()
@click.argument("paths", nargs=-1, metavar="[PATH]...")
@tenant_option
@format_option
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Save the plan (JSON, signed with the store key) for `apply --plan`.")
@click.option("--plan-ttl", default="24h", show_default=True, metavar="DURATION",
              help="How long a saved plan stays valid (30m, 24h, 2d).")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when there are changes.")
@click.option("--check-sources", is_flag=True,
              help="Also connect to each accounting server and check logins, companies, rights.")
@click.option("--changed-since", metavar="GITREF", help="Only tenant files changed since GITREF.")
@max_delete_option
@common
def plan(ctx: workflow.Context, out: Out, paths: tuple[str, ...], tenants: tuple[str, ...],
         fmt: str, out_file: Path | None, plan_ttl: str, detailed_exitcode: bool,
         check_sources: bool, changed_since: str | None, max_delete: int) -> int:
    """Show what apply would change, every cascading deletion by name. Writes nothing."""
    ttl = planfile.duration(plan_ttl, flag="--plan-ttl")
    with Progress() as progress:
        progress.stage("Reading tenant files…")
        wanted = _desired_for(ctx, paths, tenants, changed_since, out)
        progress.stage(f"Reading the live store and planning {len(wanted)} tenant(s)…")
        st = ctx.open_store(readonly=True)
        try:
            result = workflow.make_plan(ctx, st, wanted, max_delete=max_delete,
                                        fingerprint=out_file is not None)
        finally:
            st.close()
        if check_sources:
            progress.stage("Checking the accounting servers…")
            result = workflow.check_sources(ctx, result, wanted)
    if out_file is not None:
        assert st.keyring is not None
        planfile.write(out_file, result, keyring=st.keyring, store_id=st.store_id,
                       git_commit=workflow.git_commit(ctx.root), ttl_s=ttl)
        out.info(f"Saved the plan to {out_file} (valid for {plan_ttl}).")
    out.result(_render(result, fmt, out))
    return EXIT_CHANGES if detailed_exitcode and result.has_changes else EXIT_OK


class _Dumper(yaml.SafeDumper):
    """Lists of plain values in flow style (`companies: [F0001, F0002]`), as people write them."""

    def represent_list(self, data: list[Any]) -> yaml.Node:  # type: ignore[override]
        flow = all(isinstance(item, str | int | bool) for item in data)
        return self.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _Dumper.represent_list)


def _yaml(body: object) -> str:
    return yaml.dump(body, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


def _render(result: p.Plan, fmt: str, out: Out) -> str:
    if fmt == "text":
        return render.text(result, color=out.color)
    return render.RENDERERS[fmt](result)


# ---------------------------------------------------------------------------------------------
# apply


def _confirm(result: p.Plan, auto_approve: bool, out: Out) -> None:
    if auto_approve:
        return
    if not sys.stdin.isatty():
        raise errors.RefusedError("refused: not on a terminal; review the plan and pass "
                                  "--auto-approve to apply without a prompt")
    answer = click.prompt("Apply this plan? Only 'yes' is accepted", default="", show_default=False,
                          err=True)
    if answer.strip() != "yes":
        raise errors.RefusedError("apply cancelled; nothing was changed")


@cli.command()
@click.argument("paths", nargs=-1, metavar="[PATH]...")
@tenant_option
@click.option("--plan", "plan_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Apply this saved plan (from `plan --out`) instead of planning now.")
@click.option("--auto-approve", is_flag=True, help="Do not ask; required when not on a terminal.")
@click.option("--allow-cascade", is_flag=True, help="Allow deleting dependents (listed in the plan).")
@click.option("--allow-mass-delete", is_flag=True,
              help="Allow deleting more than --max-delete connections or all of a tenant's.")
@max_delete_option
@click.option("--lock-timeout", default="0s", show_default=True, metavar="DURATION",
              help="How long to wait for another apply's lock on a tenant.")
@click.option("--check-sources", is_flag=True,
              help="Check each accounting server before applying (a saved plan keeps its checks).")
@click.option("--skip-source-checks", is_flag=True,
              help="Apply even if the source checks found problems.")
@format_option
@common
def apply(ctx: workflow.Context, out: Out, paths: tuple[str, ...], tenants: tuple[str, ...],
          plan_file: Path | None, auto_approve: bool, allow_cascade: bool,
          allow_mass_delete: bool, max_delete: int, lock_timeout: str, check_sources: bool,
          skip_source_checks: bool, fmt: str) -> int:
    """Plan (or load a saved plan), show it, and apply it in one transaction."""
    timeout = planfile.duration(lock_timeout, flag="--lock-timeout")
    if plan_file is not None and (paths or tenants):
        raise errors.InputError("--plan applies the saved plan's own tenant files; give either "
                                "--plan FILE, or PATH and --tenant, not both")
    st = ctx.open_store(readonly=False)
    try:
        assert st.keyring is not None
        if plan_file is not None:
            saved = planfile.read(plan_file, keyring=st.keyring, store_id=st.store_id)
            files = [Path(v["path"]) for v in saved.tenants.values()]
            wanted = workflow.load_desired(ctx, (), (), only_files=files)
            changed = [f"{t.key}: {t.path} changed since the plan was made"
                       for t in wanted if t.digest != saved.tenants[t.key]["file_digest"]]
            result = workflow.make_plan(ctx, st, wanted, max_delete=saved.max_delete)
            changed += [f"{t.key}: the live store changed since the plan was made"
                        for t in result.tenants if t.live_fp != saved.tenants[t.key]["live_fp"]]
            moved = planfile.differences(saved.plan, render.plan_obj(result))
            if not changed and moved:
                changed.append("the plan made now differs from the saved plan at "
                               + ", ".join(moved) + " (were secrets unavailable when it was saved?)")
            if changed:
                raise errors.RefusedError("stale plan", problems=tuple(
                    errors.Problem(str(plan_file), 0, 0, f"refused: {c}; nothing was applied, "
                                   "plan again") for c in changed))
            result = planfile.with_saved_checks(result, saved)
        else:
            wanted = workflow.load_desired(ctx, paths, workflow.parse_tenants(tenants))
            result = workflow.make_plan(ctx, st, wanted, max_delete=max_delete)
        if check_sources:
            result = workflow.check_sources(ctx, result, wanted)
        out.result(_render(result, fmt, out))
        if not result.has_changes:
            out.info("No changes to apply.")
            return EXIT_OK
        applier.check_guards(result, allow_cascade=allow_cascade,
                             allow_mass_delete=allow_mass_delete,
                             skip_source_checks=skip_source_checks)
        _confirm(result, auto_approve, out)
        done = applier.apply(st, result, settings=ctx.settings,
                             commit=workflow.git_commit(ctx.root), lock_timeout_s=timeout)
    finally:
        st.close()
    out.info(f"Applied {done.actions} action(s); {done.cascade} dependent(s) deleted.")
    return EXIT_OK


# ---------------------------------------------------------------------------------------------
# drift


@cli.command()
@click.argument("paths", nargs=-1, metavar="[PATH]...")
@tenant_option
@format_option
@click.option("--ignore-unmanaged", is_flag=True,
              help="Report unmanaged connections but do not exit 2 for them alone.")
@common
def drift(ctx: workflow.Context, out: Out, paths: tuple[str, ...], tenants: tuple[str, ...],
          fmt: str, ignore_unmanaged: bool) -> int:
    """Tell drift (live changed by hand) from pending (git not applied); exit 2 if any. Read-only."""
    with Progress() as progress:
        progress.stage("Reading tenant files…")
        wanted = workflow.load_desired(ctx, paths, workflow.parse_tenants(tenants))
        progress.stage("Reading the live store…")
        st = ctx.open_store(readonly=True)
        try:
            result = workflow.make_plan(ctx, st, wanted, max_delete=10**9, fingerprint=False)
        finally:
            st.close()
    if fmt == "json":
        out.result(json.dumps(render.drift_obj(result), indent=2, ensure_ascii=False) + "\n")
    else:
        out.result(render.drift_text(result, color=out.color, markdown_out=fmt == "markdown"))
    differs = bool(result.actions()) or (
        not ignore_unmanaged and any(t.unmanaged for t in result.tenants))
    return EXIT_CHANGES if differs else EXIT_OK


# ---------------------------------------------------------------------------------------------
# export


@cli.command()
@click.option("--tenant", "tenant", required=True, metavar="CUSTOMER/TENANT")
@common
def export(ctx: workflow.Context, out: Out, tenant: str) -> int:
    """Print the live connections of a tenant as a tenant file (passwords as {env: ...})."""
    (key,) = workflow.parse_tenants([tenant])
    st = ctx.open_store(readonly=True)
    try:
        live = st.read([key])
    finally:
        st.close()
    if key not in live.tenants:
        problems = differ.unknown_tenants_named([key], live)
        raise errors.InputError.of(problems)
    body = workflow.export_tenant(live.tenants[key], ctx.settings.env_prefix)
    header = "# yaml-language-server: $schema=../../schemas/tenant.schema.json\n"
    out.result(header + _yaml(body))
    return EXIT_OK


# ---------------------------------------------------------------------------------------------
# companies


@cli.command()
@click.option("--tenant", "tenant", metavar="CUSTOMER/TENANT",
              help="The tenant whose file declares --connection.")
@click.option("--connection", "connection", metavar="NAME", help="A declared connection.")
@click.option("--integration", help="For a connection not declared yet: the catalog key.")
@click.option("--server", help="For a connection not declared yet: host, host\\instance, host,port.")
@click.option("--database", help="For a connection not declared yet (default: the catalog's).")
@click.option("--authentication", type=click.Choice(["sql", "windows"]), default=None)
@click.option("--login", help="SQL login (with --authentication sql).")
@click.option("--password-env", metavar="NAME",
              help="Environment variable holding the password (never the password itself).")
@click.option("--search", metavar="TEXT", help="Only companies whose id or name contains TEXT.")
@click.option("--timeout", type=click.IntRange(min=1), default=15, show_default=True,
              help="Login and query timeout in seconds.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
@common
def companies(ctx: workflow.Context, out: Out, tenant: str | None, connection: str | None,
              integration: str | None, server: str | None, database: str | None,
              authentication: str | None, login: str | None, password_env: str | None,
              search: str | None, timeout: int, fmt: str) -> int:
    """List the companies on a connection's accounting server, like the portal's wizard."""
    from reconciler import sources

    spec_ = workflow.companies_spec(ctx, tenant=tenant, connection=connection,
                                    integration=integration, server=server, database=database,
                                    authentication=authentication, login=login,
                                    password_env=password_env)
    found = sources.list_companies(spec_, search=search, timeout=timeout)
    if fmt == "json":
        out.result(json.dumps([{"id": c.id, "name": c.name} for c in found], indent=2,
                              ensure_ascii=False) + "\n")
        return EXIT_OK
    width = max([len("ID"), *(len(c.id) for c in found)])
    out.result("".join(f"{c_id:<{width}}  {name}\n" for c_id, name in
                       [("ID", "NAME"), *((c.id, c.name) for c in found)]))
    out.info(f"{len(found)} compan{'y' if len(found) == 1 else 'ies'} on {spec_.label}.")
    return EXIT_OK


# ---------------------------------------------------------------------------------------------
# store


@cli.group("store")
def store_group() -> None:
    """Create, seed, dump the live store; rotate its key."""


@store_group.command("init")
@common
def store_init(ctx: workflow.Context, out: Out) -> int:
    """Create the store's tables (and, for the embedded default, its key file)."""
    st = ctx.open_store(readonly=False, create=True)
    try:
        created = st.init()
    finally:
        st.close()
    where = ctx.location.describe()
    out.info(f"Initialised the store at {where}." if created else f"The store at {where} is ready.")
    return EXIT_OK


@store_group.command("seed")
@click.argument("fixture_path", metavar="FIXTURE.yaml",
                type=click.Path(dir_okay=False, path_type=Path))
@common
def store_seed(ctx: workflow.Context, out: Out, fixture_path: Path) -> int:
    """Load live state from a fixture, replacing what exists under the same names."""
    data = fixture.load(fixture_path)
    st = ctx.open_store(readonly=False)
    try:
        count = fixture.seed(st, data)
    finally:
        st.close()
    out.info(f"Seeded {count} connection(s) from {fixture_path}.")
    return EXIT_OK


@store_group.command("dump")
@tenant_option
@common
def store_dump(ctx: workflow.Context, out: Out, tenants: tuple[str, ...]) -> int:
    """Write live state in the fixture format (never passwords)."""
    keys = workflow.parse_tenants(tenants) or None
    st = ctx.open_store(readonly=True)
    try:
        live = st.read(keys, dependents=True)
    finally:
        st.close()
    if keys:
        problems = differ.unknown_tenants_named(keys, live)
        if problems:
            raise errors.InputError.of(problems)
    out.result(_yaml(fixture.dump(live)))
    return EXIT_OK


@store_group.command("rotate-key")
@click.option("--new-key-env", default="RECONCILER_NEW_STORE_KEY", show_default=True,
              metavar="NAME", help="Environment variable holding the new key (server stores).")
@common
def store_rotate_key(ctx: workflow.Context, out: Out, new_key_env: str) -> int:
    """Re-encrypt every password under a new key, in one transaction."""
    from reconciler import rotate

    st = ctx.open_store(readonly=False)
    try:
        message = rotate.rotate(st, new_key_env=new_key_env)
    finally:
        st.close()
    out.info(message)
    return EXIT_OK


# ---------------------------------------------------------------------------------------------
# history, unlock


@cli.command()
@tenant_option
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@common
def history(ctx: workflow.Context, out: Out, tenants: tuple[str, ...], limit: int, fmt: str) -> int:
    """The audit log: time, actor, commit, action, connection, changed fields."""
    keys = workflow.parse_tenants(tenants)
    st = ctx.open_store(readonly=True)
    try:
        with st.engine.connect() as conn:
            rows = store.read_audit(conn, keys, limit)
    finally:
        st.close()
    entries = [{"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(r.at_ms / 1000)),
                "actor": r.actor, "commit": r.git_commit, "tenant": f"{r.customer}/{r.tenant}",
                "action": r.action, "connection": r.connection, "reason": r.reason,
                "fields": [f for f in r.fields.split(",") if f], "cascade": r.cascade_count}
               for r in rows]
    if fmt == "json":
        out.result(json.dumps(entries, indent=2, ensure_ascii=False) + "\n")
    elif not entries:
        out.info("No history yet.")
    else:
        out.result("".join(
            f"{e['time']}  {e['actor']}  {(e['commit'] or '-')[:12]}  {e['tenant']}  "
            f"{e['action']} \"{e['connection']}\"  {','.join(e['fields']) or '-'}"
            + (f"  ({e['cascade']} cascaded)" if e["cascade"] else "") + "\n" for e in entries))
    return EXIT_OK


@cli.command()
@click.argument("lock_id", metavar="LOCK_ID")
@common
def unlock(ctx: workflow.Context, out: Out, lock_id: str) -> int:
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
    return EXIT_OK


# ---------------------------------------------------------------------------------------------
# The one error handler


def _debug_log(exc: BaseException) -> Path:
    secrets.register_environment(os.environ.get(secrets.ENV_PREFIX_VAR) or secrets.DEFAULT_PREFIX)
    text = redaction.redact("".join(traceback.format_exception(exc)))
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
        click.echo(f"error: internal error ({type(exc).__name__}); this is a bug in osr-reconciler. "
                   f"{where}", err=True)
        return EXIT_ERROR


__all__ = ["main", "secrets"]
