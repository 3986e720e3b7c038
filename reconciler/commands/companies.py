"""`reconciler companies`: the companies on an accounting server, like the portal wizard."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from reconciler import errors, lazy, spec, stages
from reconciler.commands import completion, options

if TYPE_CHECKING:
    from reconciler import catalog
    from reconciler.sources import SourceSpec
else:  # pydantic's models when the command runs, not for --help or a TAB
    catalog = lazy.module("reconciler.catalog")


def companies_spec(
    ctx: stages.Context,
    *,
    tenant: str | None,
    connection: str | None,
    integration: str | None,
    server: str | None,
    database: str | None,
    authentication: str | None,
    login: str | None,
    password_env: str | None,
    encrypt: bool = True,
    trust_server_certificate: bool = False,
) -> SourceSpec:
    """The source to list companies on: a declared connection, or one given by flags.

    --password-env sends a variable's value to the server named on the command line, so it is
    held to the rule of tenant files: only variables meant for tenant secrets (the prefix).
    """
    from reconciler import sources

    if tenant or connection:
        if not (tenant and connection):
            raise errors.InputError(
                "give both --tenant CUSTOMER/TENANT and --connection NAME, "
                "or --integration and --server for a connection not declared yet"
            )
        given = {
            "--integration": integration,
            "--server": server,
            "--database": database,
            "--authentication": authentication,
            "--login": login,
            "--password-env": password_env,
        }
        ignored = [flag for flag, value in given.items() if value is not None]
        if ignored:  # the declared connection's own settings would be used, these not
            raise errors.InputError(
                f"{', '.join(ignored)} with --tenant and --connection: the declared connection's own "
                "settings are used; leave out "
                + ("that flag" if len(ignored) == 1 else "those flags")
                + ", or --tenant and --connection for a connection not declared yet"
            )
        (key,) = options.parse_tenants([tenant])
        (declared,) = stages.load_desired(ctx, (), [key])
        match = [c for c in declared.connections if spec.identity(c.spec.name) == spec.identity(connection)]
        if not match:
            names = ", ".join(c.spec.name for c in declared.connections) or "none"
            raise errors.InputError(
                f"{declared.path}: no connection named {connection!r} (declared: {names})"
            )
        for c, request in zip(declared.connections, stages.source_specs(ctx, declared), strict=True):
            if c is match[0]:
                if c.password is not None and request[0].password is None:
                    raise errors.SecretError(
                        f"{request[0].label}: the password ({c.password}) is "
                        "not available here; set it and try again"
                    )
                return request[0]
    if not (integration and server):
        raise errors.InputError(
            "give --tenant and --connection, or --integration and --server "
            "(with --database, --authentication, --login, --password-env)"
        )
    entry = catalog.load().get(integration)
    if entry is None:
        raise errors.InputError(
            f"--integration {integration!r} is not in the catalog; known: " + ", ".join(catalog.load().keys())
        )
    auth = (
        spec.Authentication(authentication)
        if authentication
        else spec.Authentication.SQL
        if login
        else spec.Authentication.WINDOWS
    )
    if auth == spec.Authentication.WINDOWS and (login is not None or password_env is not None):
        raise errors.InputError(
            "--authentication windows takes no --login or --password-env (the server checks the "
            "account the tool runs as); leave them out, or use --authentication sql"
        )
    password = None
    if password_env:
        from reconciler import checks

        refused = ctx.settings.check_reference(password_env, None)
        if refused or not checks.ENV_NAME.fullmatch(password_env):
            # Not repeated: what was given may be the password itself, typed by mistake.
            raise errors.SecretError(
                "--password-env takes the name of an environment variable with the tenant files' "
                f"prefix (e.g. {ctx.settings.env_prefix}NEW_SQL), never the password itself; what "
                "was given is not one (not shown: it may be the password)"
            )
        from reconciler.declared import SecretRef

        # As a tenant file's {env:} reference is read: UTF-8 text, remembered for redaction.
        password = ctx.settings.resolve(SecretRef(password_env, None))
        if password is None:
            raise errors.SecretError(f"--password-env {password_env}: the variable is not set")
    if auth == spec.Authentication.SQL and (login is None or password is None):
        raise errors.InputError("--authentication sql needs --login and --password-env")
    server, database, login = _as_in_a_file(server, database, login)
    return sources.SourceSpec(
        label=f"{server}/{database or entry.default_database}",
        integration=integration,
        server=server,
        database=database or entry.default_database,
        authentication=auth,
        login=login,
        password=password,
        encrypt=encrypt,
        trust_server_certificate=trust_server_certificate,
    )


def _as_in_a_file(server: str, database: str | None, login: str | None) -> tuple[str, str | None, str | None]:
    """The flags held to the rules of a tenant file's server, database and login: a 40,000
    character one crashed the process in the ODBC driver (psqlODBC), with no word."""
    from reconciler import checks

    def checked(flag: str, value: str, check: Callable[[str], str], longest: int) -> str:
        if len(value) > longest:
            raise errors.InputError(
                f"{flag} is {len(value):,} characters; at most {longest}, as in a tenant file"
            )
        problem = checks.refusal(check, value)
        if problem is not None:
            raise errors.InputError(f"{flag}: {problem}")
        return value

    return (
        checked("--server", server, checks.check_server, checks.MAX_SERVER),
        None if database is None else checked("--database", database, checks.check_text, checks.MAX_TEXT),
        None if login is None else checked("--login", login, checks.check_text, checks.MAX_TEXT),
    )


@click.command(
    epilog=options.examples(
        (
            "A declared connection's companies whose id or name contains 'bygg'",
            "reconciler companies --tenant acme/acme-norway --connection 'Visma Business Oslo' --search bygg",
        ),
        (
            "A server not declared yet, SQL login, password from $OSR_NEW_SQL",
            "reconciler companies --integration visma-business --server 'SQL01\\VISMA' --login osr_reader "
            "--password-env OSR_NEW_SQL",
        ),
        (
            "The same with a self-signed certificate, as JSON",
            "reconciler companies --integration visma-business --server sql01 --login osr_reader "
            "--password-env OSR_NEW_SQL --trust-server-certificate --format json",
        ),
    )
)
@click.option(
    "--tenant",
    "tenant",
    multiple=True,
    callback=options.once,
    metavar="CUSTOMER/TENANT",
    shell_complete=completion.tenants,
    help="The tenant whose file declares --connection.",
)
@click.option(
    "--connection",
    "connection",
    multiple=True,
    callback=options.once,
    metavar="NAME",
    shell_complete=completion.connections,
    help="A declared connection.",
)
@click.option("--integration", help="For a connection not declared yet: the catalog key.")
@click.option("--server", help="For a connection not declared yet: host, host\\instance, host,port.")
@click.option("--database", help="For a connection not declared yet (default: the catalog's).")
@click.option("--authentication", type=click.Choice(["sql", "windows"]), default=None)
@click.option("--login", help="SQL login (with --authentication sql).")
@click.option(
    "--password-env",
    metavar="NAME",
    help="Environment variable holding the password (never the password itself); its "
    "name starts with OSR_ (RECONCILER_SECRET_ENV_PREFIX), as in tenant files.",
)
@click.option(
    "--encrypt/--no-encrypt",
    default=True,
    show_default=True,
    help="For a connection not declared yet: encrypt the connection (tenant key encrypt).",
)
@click.option(
    "--trust-server-certificate",
    is_flag=True,
    help="For a connection not declared yet: accept the server's certificate "
    "unverified (tenant key trust_server_certificate).",
)
@click.option("--search", metavar="TEXT", help="Only companies whose id or name contains TEXT.")
@click.option(
    "--timeout",
    type=click.IntRange(min=1, max=3600),
    default=15,
    show_default=True,
    help="Login and query timeout in seconds.",
)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@options.common
def companies(
    ctx: stages.Context,
    out: options.Out,
    tenant: str | None,
    connection: str | None,
    integration: str | None,
    server: str | None,
    database: str | None,
    authentication: str | None,
    login: str | None,
    password_env: str | None,
    encrypt: bool,
    trust_server_certificate: bool,
    search: str | None,
    timeout: int,
    fmt: str,
) -> int:
    """List the companies on a connection's accounting server, like the portal's wizard."""
    from reconciler import sources

    spec_ = companies_spec(
        ctx,
        tenant=tenant,
        connection=connection,
        integration=integration,
        server=server,
        database=database,
        authentication=authentication,
        login=login,
        password_env=password_env,
        encrypt=encrypt,
        trust_server_certificate=trust_server_certificate,
    )
    found = sources.list_companies(spec_, search=search, timeout=timeout)
    if fmt == "json":
        out.result(
            json.dumps([{"id": c.id, "name": c.name} for c in found], indent=2, ensure_ascii=False) + "\n"
        )
        return options.EXIT_OK
    from reconciler import render

    # The server's text, inert: a line break, a carriage return, an escape sequence or a
    # bidirectional control in a company's id or name must not forge a row or move the cursor.
    rows = [("ID", "NAME"), *((render.inert(c.id), render.inert(c.name)) for c in found)]
    width = max(len(c_id) for c_id, _ in rows)
    out.result("".join(f"{c_id:<{width}}  {name}\n" for c_id, name in rows))
    out.info(f"{len(found)} compan{'y' if len(found) == 1 else 'ies'} on {spec_.label}.")
    return options.EXIT_OK
