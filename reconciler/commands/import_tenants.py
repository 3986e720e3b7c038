"""`reconciler import`: tenant files for live tenants that have none yet (DESIGN §9)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from reconciler import differ, errors, lazy, redaction, stages
from reconciler.commands import options

if TYPE_CHECKING:
    from reconciler import importer, store
else:  # PyYAML and SQLAlchemy when files are written, not for --help or a TAB
    importer = lazy.module("reconciler.importer")
    store = lazy.module("reconciler.store")


@click.command(
    "import",
    epilog=options.examples(
        ("Write a file for every live tenant that has none", "reconciler import"),
        ("One tenant, into another folder", "reconciler import imported --tenant acme/acme-norway"),
    ),
)
@click.argument("path", required=False, metavar="[PATH]")
@options.tenant_option
@options.common
def import_tenants(ctx: stages.Context, out: options.Out, path: str | None, tenants: tuple[str, ...]) -> int:
    """Write PATH/<customer>/<tenant>.yaml (PATH: tenants/) for every live tenant without a file.

    \b
    Existing files are never touched (accept the portal's changes into them with
    `drift --write`). Passwords become {env: NAME} references; the variables to set are
    printed. Read-only on the store.
    """
    keys = options.parse_tenants(tenants)
    stages.refuse_urls([path] if path else [])
    root = Path(path) if path else Path(ctx.default_paths(())[0])
    if root.is_symlink() and not root.exists():
        raise errors.InputError(
            f"{root}: a broken link or a link loop; give the directory of tenant files (default tenants/)"
        )
    if root.exists() and not root.is_dir():
        raise errors.InputError(
            f"{root}: not a directory; give the directory of tenant files (default tenants/)"
        )
    with ctx.open_store(readonly=True) as st, st.reading() as conn:
        rows = store.tenant_rows(conn)
        problems = differ.unknown_tenants_named(keys, rows.by_key, rows.known)
        if problems:
            raise errors.InputError.of(problems)
        # Only the tenants without a file are read, a batch at a time (a fleet that has its
        # files held the whole store: 678 MiB at 8,000 tenants), and a portal name in a tenant
        # that has its file stops nothing.
        outcome = importer.run(
            lambda batch: store.read(conn, batch, tenants_read=rows),
            root,
            keys or sorted(rows.by_key),
            fleet=Path(ctx.default_paths(())[0]),
            settings=ctx.settings,
        )
    for key, existing in outcome.existing:
        out.info(
            f"{existing}: exists, not touched ({key}); to accept the portal's changes "
            "into it, run `reconciler drift --write`"
        )
    # Redacted too, though a PATH with '://' is refused (stages.refuse_urls): a password in a
    # folder's name is not shown
    lines = [f"Wrote {redaction.redact(str(w.path))} ({w.key})\n" for w in outcome.written]
    variables = [v for w in outcome.written for v in w.variables]
    if variables:
        lines.append(
            "\nSet these password variables (the connections' current passwords) before `reconciler plan`:\n"
        )
        from reconciler import render

        # Each with its tenant and connection: a name's digest (`_EE965F_`) tells a person nothing
        lines += [
            f"  {v}  # {w.key} {render.quoted(name)}\n"
            for w in outcome.written
            for v, name in zip(w.variables, w.owners, strict=True)
        ]
    if not outcome.written:
        why = "every tenant has one" if outcome.existing else "the store has no tenants"
        lines.append(f"No tenant files written: {why}.\n")
    if outcome.written:
        written = f"{len(outcome.written)} tenant file(s) were written under {redaction.redact(str(root))}"
        options.result_after_writing(out, "".join(lines), written)
    else:
        out.result("".join(lines))
    return options.EXIT_OK
