"""--help of every command (golden texts ending in examples that parse), --version, start-up.

`UPDATE_GOLDEN=1 pytest tests/test_help.py` rewrites tests/help/*.txt; review the diff.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from reconciler import cli

GOLDEN = Path(__file__).parent / "help"


def _commands() -> list[tuple[str, ...]]:
    """Every command path: (), ("plan",), ("store", "init"), ..."""
    ctx = click.Context(cli.cli, info_name="reconciler")
    found: list[tuple[str, ...]] = [()]
    for name in cli.cli.list_commands(ctx):
        command = cli.cli.get_command(ctx, name)
        found.append((name,))
        if isinstance(command, click.Group):
            found += [(name, sub) for sub in command.list_commands(ctx)]
    return found


COMMANDS = _commands()


def _help(path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(cli.cli, [*path, "--help"], prog_name="reconciler", env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    return result.output


def _examples(text: str) -> list[str]:
    """The command lines of the Examples section that ends a --help text."""
    _, sep, tail = text.rpartition("\n  Examples:\n")
    assert sep, "no Examples section"
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    assert all(
        line.startswith(("#", "reconciler ", "source <(reconciler ", "RECONCILER_")) for line in lines
    ), lines  # nothing follows the examples
    return [line for line in lines if not line.startswith("#")]


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) or "reconciler" for p in COMMANDS])
def test_help_matches_golden_and_ends_with_examples(path: tuple[str, ...]) -> None:
    text = _help(path)
    golden = GOLDEN / f"{'-'.join(('reconciler', *path))}.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")
    examples = _examples(text)
    assert 2 <= len(examples) <= 3


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) or "reconciler" for p in COMMANDS])
def test_every_example_parses(path: tuple[str, ...]) -> None:
    """An example names only commands, options and values that exist (it is parsed, not run)."""
    for example in _examples(_help(path)):
        words = shlex.split(example.removeprefix("source <(").removesuffix(")"))
        words = [w for w in words if "=" not in w or w.startswith("-")]  # VAR=value prefixes
        words = words[: words.index(">")] if ">" in words else words
        assert words[0] == "reconciler", example
        command, rest = cli.cli, words[1:]
        ctx = click.Context(cli.cli, info_name="reconciler")
        while isinstance(command, click.Group):
            sub = command.get_command(ctx, rest[0])
            assert sub is not None, example
            command, rest = sub, rest[1:]
        command.make_context(command.name, rest)  # a UsageError for an option or value that is not


def test_group_lists_each_command_with_the_short_help_it_shows_itself() -> None:
    ctx = click.Context(cli.cli, info_name="reconciler")
    for name, (_module, _attribute, short_help) in cli.COMMANDS.items():
        command = cli.cli.get_command(ctx, name)
        assert command is not None and command.get_short_help_str(limit=200) == short_help


def test_version_names_python_sqlalchemy_and_each_driver() -> None:
    result = CliRunner().invoke(cli.cli, ["--version"], prog_name="reconciler")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].startswith("reconciler ")
    assert lines[1].startswith("Python 3.")
    assert lines[2].startswith("SQLAlchemy 2.")
    # make test installs every extra, so every driver is found with its version
    assert [line.split()[0] for line in lines[3:]] == ["psycopg", "PyMySQL", "pyodbc"]
    assert "not installed" not in result.output


def test_help_and_command_names_load_no_command_module() -> None:
    """`reconciler --help` and a TAB on a command name start without SQLAlchemy or pydantic.

    A subprocess: what a fresh process imports is the point.
    """
    probe = (
        "import sys\nfrom reconciler import cli\nrc = cli.main(['--help'])\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('sqlalchemy', 'pydantic', 'deepdiff', 'rich') or m.startswith('reconciler.commands.'))\n"
        "print(rc, heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "_RECONCILER_COMPLETE": ""},
    )
    assert out.stdout.splitlines()[-1] == "0 []"


@pytest.mark.parametrize(
    ("typed", "meant"), [(["aply"], "apply"), (["histroy"], "history"), (["store", "plankey"], "plan-key")]
)
def test_a_mistyped_command_gets_a_did_you_mean_at_every_level(typed: list[str], meant: str) -> None:
    """The top level loads a command's module only when it runs: click offered the commands
    loaded (none, in a fresh process), so `reconciler aply` got no suggestion where `store
    plankey` did."""
    done = subprocess.run([sys.executable, "-m", "reconciler", *typed], capture_output=True, text=True)
    assert done.returncode == 1
    assert f"No such command '{typed[-1]}'. Did you mean '{meant}'?" in done.stderr
