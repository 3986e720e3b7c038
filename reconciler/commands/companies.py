"""`reconciler companies`: the companies on an accounting server, like the portal wizard."""

from __future__ import annotations

import json

import click

from reconciler import workflow
from reconciler.commands import completion, options


@click.command(epilog=options.examples(
    ("A declared connection's companies whose id or name contains 'bygg'",
     "reconciler companies --tenant acme/acme-norway --connection 'Visma Business Oslo' --search bygg"),
    ("A server not declared yet, SQL login, password from $OSR_NEW_SQL",
     "reconciler companies --integration visma-business --server 'SQL01\\VISMA' --login osr_reader "
     "--password-env OSR_NEW_SQL"),
    ("The same with a self-signed certificate, as JSON",
     "reconciler companies --integration visma-business --server sql01 --login osr_reader "
     "--password-env OSR_NEW_SQL --trust-server-certificate --format json")))
@click.option("--tenant", "tenant", metavar="CUSTOMER/TENANT", shell_complete=completion.tenants,
              help="The tenant whose file declares --connection.")
@click.option("--connection", "connection", metavar="NAME", shell_complete=completion.connections,
              help="A declared connection.")
@click.option("--integration", help="For a connection not declared yet: the catalog key.")
@click.option("--server", help="For a connection not declared yet: host, host\\instance, host,port.")
@click.option("--database", help="For a connection not declared yet (default: the catalog's).")
@click.option("--authentication", type=click.Choice(["sql", "windows"]), default=None)
@click.option("--login", help="SQL login (with --authentication sql).")
@click.option("--password-env", metavar="NAME",
              help="Environment variable holding the password (never the password itself); its "
                   "name starts with OSR_ (RECONCILER_SECRET_ENV_PREFIX), as in tenant files.")
@click.option("--encrypt/--no-encrypt", default=True, show_default=True,
              help="For a connection not declared yet: encrypt the connection (tenant key encrypt).")
@click.option("--trust-server-certificate", is_flag=True,
              help="For a connection not declared yet: accept the server's certificate "
                   "unverified (tenant key trust_server_certificate).")
@click.option("--search", metavar="TEXT", help="Only companies whose id or name contains TEXT.")
@click.option("--timeout", type=click.IntRange(min=1), default=15, show_default=True,
              help="Login and query timeout in seconds.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
@options.common
def companies(ctx: workflow.Context, out: options.Out, tenant: str | None, connection: str | None,
              integration: str | None, server: str | None, database: str | None,
              authentication: str | None, login: str | None, password_env: str | None,
              encrypt: bool, trust_server_certificate: bool, search: str | None, timeout: int,
              fmt: str) -> int:
    """List the companies on a connection's accounting server, like the portal's wizard."""
    from reconciler import sources

    spec_ = workflow.companies_spec(ctx, tenant=tenant, connection=connection,
                                    integration=integration, server=server, database=database,
                                    authentication=authentication, login=login,
                                    password_env=password_env, encrypt=encrypt,
                                    trust_server_certificate=trust_server_certificate)
    found = sources.list_companies(spec_, search=search, timeout=timeout)
    if fmt == "json":
        out.result(json.dumps([{"id": c.id, "name": c.name} for c in found], indent=2,
                              ensure_ascii=False) + "\n")
        return options.EXIT_OK
    width = max([len("ID"), *(len(c.id) for c in found)])
    out.result("".join(f"{c_id:<{width}}  {name}\n" for c_id, name in
                       [("ID", "NAME"), *((c.id, c.name) for c in found)]))
    out.info(f"{len(found)} compan{'y' if len(found) == 1 else 'ies'} on {spec_.label}.")
    return options.EXIT_OK
