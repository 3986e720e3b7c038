"""Shell completion: `reconciler completion SHELL` prints the script; the completers it calls back.

Click's protocol: the shell runs `reconciler` with `_RECONCILER_COMPLETE=bash_complete` (or zsh_,
fish_) and the words typed so far; the completers below answer from the tenant files, never from
the store, so a TAB needs no network, no key and no password. A file that does not parse simply
completes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click
from click.shell_completion import CompletionItem, get_completion_class

from reconciler import errors, gitrepo, lazy

if TYPE_CHECKING:
    from reconciler import strictyaml
else:  # PyYAML only to complete --connection, which reads a tenant file
    strictyaml = lazy.module("reconciler.strictyaml")

PROG, COMPLETE_VAR = "reconciler", "_RECONCILER_COMPLETE"
SHELLS = ("bash", "zsh", "fish")


def _tenant_files(ctx: click.Context) -> dict[str, Path]:
    """customer/tenant -> file, under the PATH arguments typed so far (default: tenants/)."""
    # While an option's value is completed, click leaves the arguments before it in ctx.args.
    given = [Path(p) for p in (*(ctx.params.get("paths") or ()), *ctx.args)]
    roots = given or [gitrepo.repo_root() / "tenants"]
    files: list[Path] = []
    for root in roots:
        if root.is_file():
            files.append(root)
        elif root.is_dir():
            pattern = "*/*.y*ml" if root.name == "tenants" else "*.y*ml"
            files += root.glob(pattern)
    return {f"{f.parent.name}/{f.stem}": f for f in sorted(files) if f.suffix in (".yaml", ".yml")}


def tenants(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """--tenant: customer/tenant of every tenant file."""
    return [CompletionItem(key) for key in _tenant_files(ctx) if key.startswith(incomplete)]


def connections(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """--connection: the connections the file of the --tenant typed before it declares."""
    path = _tenant_files(ctx).get(ctx.params.get("tenant") or "")
    if path is None:
        return []
    try:
        data = strictyaml.parse(str(path), strictyaml.read_bytes(path)).data
    except errors.ReconcilerError:
        return []
    entries = data.get("connections") if isinstance(data, dict) else None
    names = [
        entry["name"]
        for entry in entries or ()
        if isinstance(entry, dict) and isinstance(entry.get("name"), str) and entry.get("absent") is not True
    ]
    wanted = incomplete.casefold()
    return [CompletionItem(name) for name in names if name.casefold().startswith(wanted)]


EXAMPLES = """\b
Examples:
  # bash: load now, or add this line to ~/.bashrc
  source <(reconciler completion bash)
  # zsh: add to ~/.zshrc (after compinit)
  source <(reconciler completion zsh)
  # fish
  reconciler completion fish > ~/.config/fish/completions/reconciler.fish
"""


@click.command(epilog=EXAMPLES)
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> int:
    """Print the completion script for SHELL: commands, options, --tenant names from the tenant
    files, --connection names from that tenant's file, --format values and file paths."""
    root = click.get_current_context().find_root().command
    script = get_completion_class(shell)(root, {}, PROG, COMPLETE_VAR)  # type: ignore[misc]
    click.echo(script.source())
    return 0
