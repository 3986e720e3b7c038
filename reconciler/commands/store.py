"""`reconciler store init | seed | dump | rotate-key | plan-key`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click
from click.core import ParameterSource

from reconciler import errors, lazy, stages
from reconciler.commands import options

if TYPE_CHECKING:
    from reconciler import fixture, locks
else:  # its models and the store when a fixture is seeded or dumped, not for --help or a TAB
    fixture, locks = lazy.module("reconciler.fixture"), lazy.module("reconciler.locks")


@click.group(
    "store",
    epilog=options.examples(
        ("Create the embedded store, then load the demo portal", "reconciler store init"),
        ("", "reconciler store seed examples/demo-store.yaml"),
    ),
)
def store_group() -> None:
    """Create, seed, dump the live store; rotate its key; print its plan key."""


@store_group.command(
    "init",
    epilog=options.examples(
        ("The embedded store (.reconciler/store.db and its key file)", "reconciler store init"),
        (
            "A PostgreSQL store (RECONCILER_STORE_KEY set)",
            "reconciler store init --store postgresql+psycopg://admin@portal-db/portal",
        ),
    ),
)
@options.common
def store_init(ctx: stages.Context, out: options.Out) -> int:
    """Create the store's tables (and, for the embedded default, its key file)."""
    with ctx.open_store(readonly=False, create=True) as st:
        created = st.init()
    where = ctx.location.describe()
    out.info(f"Initialised the store at {where}." if created else f"The store at {where} is ready.")
    return options.EXIT_OK


@store_group.command(
    "seed",
    epilog=options.examples(
        ("The demo portal", "reconciler store seed examples/demo-store.yaml"),
        (
            "A test store shaped like another (RECONCILER_STORE_KEY set; no passwords or history: no backup)",
            "reconciler store init --store sqlite:///copy.db",
        ),
        ("then load the other's dump into it", "reconciler store seed dump.yaml --store sqlite:///copy.db"),
    ),
)
@click.argument("fixture_path", metavar="FIXTURE.yaml", type=click.Path(dir_okay=False, path_type=Path))
@options.common
def store_seed(ctx: stages.Context, out: options.Out, fixture_path: Path) -> int:
    """Load live state from a fixture, replacing what exists under the same names.

    \b
    What it replaces is replaced whole: a connection's password is the fixture's (none when the
    fixture has none, as a dump never does), and the tool's record of what it applied is reset.
    A dump and a seed make a store shaped like another, not a backup of it: copy the database
    for that.
    """
    data = fixture.load(fixture_path)
    with ctx.open_store(readonly=False, first_use=True) as st, locks.until_commit() as commit_begins:
        seeded = fixture.seed(st, data, commit_begins)
    lost = f" (the connection failed as the commit ended: {seeded.lost}; the store shows it committed)"
    out.info(f"Seeded {seeded.connections} connection(s) from {fixture_path}{lost if seeded.lost else ''}.")
    return options.EXIT_OK


@store_group.command(
    "dump",
    epilog=options.examples(
        ("Everything, as a fixture (never passwords)", "reconciler store dump > dump.yaml"),
        ("One tenant", "reconciler store dump --tenant acme/acme-norway"),
    ),
)
@options.tenant_option
@options.common
def store_dump(ctx: stages.Context, out: options.Out, tenants: tuple[str, ...]) -> int:
    """Write live state in the fixture format (never passwords)."""
    keys = options.parse_tenants(tenants) or None
    with ctx.open_store(readonly=True) as st, st.reading() as conn:
        for text in fixture.dump_text(conn, keys):
            out.result(text)
    return options.EXIT_OK


@store_group.command(
    "rotate-key",
    epilog=options.examples(
        ("The embedded store: a new key file", "reconciler store rotate-key"),
        (
            "A server store: the new key from the environment",
            "RECONCILER_NEW_STORE_KEY=... reconciler store rotate-key --store postgresql+psycopg://admin@portal-db/portal",
        ),
    ),
)
@click.option(
    "--new-key-env",
    default="RECONCILER_NEW_STORE_KEY",  # secrets.NEW_STORE_KEY_VAR (not imported for --help)
    show_default=True,
    metavar="NAME",
    help="Environment variable holding the new key (server stores, or an embedded store whose key "
    "is in RECONCILER_STORE_KEY: its key file, if it holds that key, gets the new key too; with "
    "the key in the key file alone, rotate-key makes a new key file).",
)
@options.common
def store_rotate_key(ctx: stages.Context, out: options.Out, new_key_env: str) -> int:
    """Re-encrypt every password under a new key, in one transaction."""
    from reconciler import checks, rotate

    if not checks.ENV_NAME.fullmatch(new_key_env):
        # Not repeated: what was given may be the key itself (`--new-key-env $NEW_KEY`), and
        # every message below names the variable: the key would be in the job's log.
        raise errors.SecretError(
            "--new-key-env takes the name of an environment variable (e.g. RECONCILER_NEW_STORE_KEY), "
            "never the key itself; what was given is not one (not shown: it may be the key)"
        )
    named = click.get_current_context().get_parameter_source("new_key_env") is ParameterSource.COMMANDLINE
    with ctx.open_store(readonly=False) as st:
        said = rotate.rotate(st, new_key_env=new_key_env, named=named)
    for line in said:
        out.info(line)
    return options.EXIT_OK


@store_group.command(
    "plan-key",
    epilog=options.examples(
        ("Print the plan key for the pull-request job's secret store", "reconciler store plan-key"),
        ("From a server store's key", "RECONCILER_STORE_KEY=... reconciler store plan-key --store URL"),
    ),
)
@options.common
def store_plan_key(ctx: stages.Context, out: options.Out) -> int:
    """Print the plan key: the read-only commands run with it; it never decrypts or writes.

    \b
    Derived one way from the store key: give it to pull-request jobs as RECONCILER_PLAN_KEY,
    with a read-only store login, and keep RECONCILER_STORE_KEY for the apply job. plan (and
    plan --out), drift (and drift --write), export, import, history, locks and store dump
    run with it; apply, store seed, init, rotate-key, plan-key and unlock need the store key.
    """
    with ctx.open_store(readonly=True, store_key=True) as st:
        assert st.keyring is not None
        key = st.keyring.plan_key()
    out.result(key + "\n")
    return options.EXIT_OK
