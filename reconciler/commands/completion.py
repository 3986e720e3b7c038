"""Shell completion: `reconciler completion SHELL` prints the script; the completers it calls back.

Click's protocol: the shell runs `reconciler` with `_RECONCILER_COMPLETE=bash_complete` (or zsh_,
fish_) and the words typed so far; the completers below answer from the tenant files, never from
the store, so a TAB needs no network, no key and no password. A file that does not parse simply
completes nothing.

Most connection names hold spaces, some quotes, `$` or `&`. zsh (compadd) and fish quote what they
insert themselves, for the quote the user opened. Bash inserts a completion as it comes: after a
quote the user opened (and closes that quote for a single match), else in place of the word. So
for bash the completers answer shell text (`Hand-made\\ AX`, or `Hand-made AX` after a `'`), and
the bash script is click's taking each value verbatim (its `read` dropped the backslashes, and an
unquoted value was globbed). zsh needs nothing; fish's script split a value at every comma.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from click.shell_completion import (
    BashComplete,
    CompletionItem,
    FishComplete,
    ShellComplete,
    ZshComplete,
    split_arg_string,
)

from reconciler import errors, gitrepo, lazy

if TYPE_CHECKING:
    from reconciler import plainyaml, strictyaml
else:  # PyYAML only to complete --connection, which reads a tenant file
    plainyaml, strictyaml = lazy.module("reconciler.plainyaml"), lazy.module("reconciler.strictyaml")

PROG, COMPLETE_VAR = "reconciler", "_RECONCILER_COMPLETE"


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


def _opened_quote(line: str) -> tuple[str, str]:
    """The quote left open at the end of `line` ('' for none) and what its word says before that
    quote, found as readline finds them: bash inserts a completion right after that quote."""
    quote, word, before, escaped = "", "", "", False
    for char in line:
        if escaped:
            escaped = False
            word += char if quote != '"' or char in '$`"\\' else "\\" + char
        elif char == "\\" and quote != "'":
            escaped = True
        elif char == quote:
            quote = ""
        elif quote:
            word += char
        elif char in "'\"":
            quote, before = char, word
        elif char.isspace():
            word = ""
        else:
            word += char
    return (quote, before) if quote else ("", "")


# Not ASCII metacharacters, nor ~, nor the word breaks : = @ (readline would complete after them)
_BASH_PLAIN = re.compile(r"[A-Za-z0-9_%+,./-]|[^\x00-\x7f]")


def _bash_text(value: str, quote: str) -> str:
    """`value` as bash must insert it to make it one word: after `quote` if one was opened."""
    if quote == "'":
        text = value.replace("'", "'\\''")
    elif quote == '"':  # `!` outside the quotes: inside, `\!` keeps its backslash (history expansion)
        text = re.sub(r'(["$`\\])', r"\\\1", value).replace("!", '"\\!"')
    else:
        return "".join(c if _BASH_PLAIN.fullmatch(c) else f"\\{c}" for c in value)
    # readline closes the quote unless the text ends in that quote (here one that reopened it)
    return text + quote if text.endswith(quote) else text


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _offer(values: Iterable[str]) -> list[CompletionItem]:
    """Completion items for `values`, as the shell asking must receive them."""
    # click answers a line per value: a newline in a value would make two (or a `file` line)
    shown = [value for value in values if not _CONTROL.search(value)]
    if os.environ.get(COMPLETE_VAR) == "bash_complete":
        # Here and not in a BashComplete.format_completion: click picks the class when the
        # process starts, before any command (and so this module) is imported.
        line = os.environ.get("COMP_WORDS", "")
        last = str(len(split_arg_string(line)) - 1)  # a word with an open quote runs to the end
        quote, before = _opened_quote(line) if os.environ.get("COMP_CWORD") == last else ("", "")
        shown = [_bash_text(value[len(before) :], quote) for value in shown]
    return [CompletionItem(value) for value in shown]


def tenants(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """--tenant: customer/tenant of every tenant file."""
    return _offer(key for key in _tenant_files(ctx) if key.startswith(incomplete))


def connections(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """--connection: the connections the file of the --tenant typed before it declares."""
    path = _tenant_files(ctx).get(ctx.params.get("tenant") or "")
    if path is None:
        return []
    try:
        raw = strictyaml.read_bytes(path)
        # As validate reads it: a plainly written file (nearly all) value by value as written, so
        # that `name: 2024` is the name 2024 (the strict reader's data has the number), and a
        # plain true, false or null is no name; any other file by the strict reader.
        data: Any = plainyaml.document(raw)
        plain = data is not None
        if not plain:
            data = strictyaml.parse(str(path), raw).data
    except errors.ReconcilerError:
        return []
    entries = data.get("connections") if isinstance(data, dict) else None
    names = [
        entry["name"]
        for entry in entries or ()
        if isinstance(entry, dict)
        and isinstance(entry.get("name"), str)
        and not (plain and entry["name"].__class__ is str and entry["name"] in strictyaml.WORDS)
        and entry.get("absent") not in (True, "true")
    ]
    wanted = incomplete.casefold()
    return _offer(name for name in names if name.casefold().startswith(wanted))


# Where click's scripts mangle a value: (what it prints, what to print instead).
BASH_FIXES = (
    ("local response\n", "local response\n    local -; set -f  # no globbing of the lines or values\n"),
    # read (without -r) dropped the backslashes that quote a value, and a trailing comma
    ("IFS=',' read type value <<< \"$completion\"", "type=${completion%%,*} value=${completion#*,}"),
    ("COMPREPLY+=($value)", 'COMPREPLY+=("$value")'),
)
FISH_FIXES = (('string split "," $completion', 'string split -m 1 "," $completion'),)


def _fixed(script: str, fixes: tuple[tuple[str, str], ...]) -> str:
    for old, new in fixes:
        script = script.replace(old, new)
    return script


class _BashScript(BashComplete):
    def source(self) -> str:
        return _fixed(super().source(), BASH_FIXES)


class _FishScript(FishComplete):
    def source(self) -> str:
        return _fixed(super().source(), FISH_FIXES)


SCRIPTS: dict[str, type[ShellComplete]] = {"bash": _BashScript, "zsh": ZshComplete, "fish": _FishScript}


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
@click.argument("shell", type=click.Choice(list(SCRIPTS)), metavar="SHELL")
def completion(shell: str) -> int:
    """Print the completion script for SHELL (bash, zsh or fish): commands, options, --tenant
    names from the tenant files, --connection names from that tenant's file, --format values and
    file paths."""
    from reconciler.commands import options  # which imports this module

    root = click.get_current_context().find_root().command
    script = SCRIPTS[shell](root, {}, PROG, COMPLETE_VAR)
    options.write_result(script.source() + "\n")
    return 0
