"""Shell completion through click's protocol, as bash, zsh and fish call it (in-process)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.shell_completion import split_arg_string
from click.testing import CliRunner

from reconciler import cli

NORWAY = """\
version: 1
customer: acme
tenant: acme-norway
connections:
  - name: Visma Business Oslo
    integration: visma-business
    server: SQL01\\VISMA
    database: vbsys
    authentication: windows
  - name: Visma Bergen
    integration: visma-business
    server: SQL02
    database: vbsys
    authentication: windows
  - name: Old NAV
    absent: true
"""


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / ".git").mkdir()
    files = {
        "tenants/acme/acme-norway.yaml": NORWAY,
        "tenants/acme/acme-sweden.yaml": NORWAY.replace("acme-norway", "acme-sweden"),
        "tenants/nordlys/nordlys-main.yml": "version: 1\ncustomer: nordlys\n",
        "tenants/broken/broken.yaml": "connections: [\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    (tmp_path / "tenants" / "acme" / "notes.txt").write_text("not a tenant file")
    monkeypatch.chdir(tmp_path / "tenants")  # completion finds the repository root from below
    return tmp_path


def complete(line: str, shell: str = "bash") -> list[str]:
    """What the shell would offer for `line` (the cursor at its end), as click answers it."""
    words = split_arg_string(line)
    cword = len(words) if line.endswith(" ") else len(words) - 1
    env = {"_RECONCILER_COMPLETE": f"{shell}_complete", "COMP_WORDS": line}
    # fish passes the word under the cursor as typed (`commandline -ct`), the others its index
    typed = line[line.rindex("'") :] if line.count("'") % 2 else line.split(" ")[-1]
    env["COMP_CWORD"] = typed if shell == "fish" else str(cword)
    result = CliRunner().invoke(cli.cli, env=env, prog_name="reconciler")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line]
    if shell == "bash":  # "type,value" per line
        return [item.split(",", 1)[1] for item in lines]
    if shell == "zsh":  # type, value, help per item
        return lines[1::3]
    return [item.split("\t")[0].split(",", 1)[1] for item in lines]  # "type,value\thelp"


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_tenant_completes_from_tenant_files(repo: Path, shell: str) -> None:
    assert complete("reconciler plan --tenant ", shell) == [
        "acme/acme-norway",
        "acme/acme-sweden",
        "broken/broken",
        "nordlys/nordlys-main",
    ]
    assert complete("reconciler apply --tenant acme/", shell) == ["acme/acme-norway", "acme/acme-sweden"]


def test_tenant_completes_under_the_paths_typed_before(repo: Path) -> None:
    assert complete("reconciler drift ../tenants/acme --tenant ") == ["acme/acme-norway", "acme/acme-sweden"]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_connection_completes_from_the_chosen_tenants_file(repo: Path, shell: str) -> None:
    line = "reconciler companies --tenant acme/acme-norway --connection "
    assert complete(line, shell) == ["Visma Business Oslo", "Visma Bergen"]  # not the tombstone
    assert complete(line + "'visma bu", shell) == ["Visma Business Oslo"]


@pytest.mark.parametrize(
    "line",
    [
        "reconciler companies --connection ",  # no tenant typed yet
        "reconciler companies --tenant acme/nowhere --connection ",
        "reconciler companies --tenant broken/broken --connection ",  # does not parse
        "reconciler companies --tenant nordlys/nordlys-main --connection ",  # declares none
    ],
)
def test_connection_completes_nothing_without_a_readable_tenant(repo: Path, line: str) -> None:
    assert complete(line) == []


def test_export_tenant_and_format_values_complete(repo: Path) -> None:
    assert complete("reconciler export --tenant nord") == ["nordlys/nordlys-main"]
    assert complete("reconciler plan --format ") == ["text", "markdown", "json", "html"]
    assert complete("reconciler history --format j") == ["json"]


def test_paths_complete_as_files(repo: Path) -> None:
    result = CliRunner().invoke(
        cli.cli,
        prog_name="reconciler",
        env={
            "_RECONCILER_COMPLETE": "bash_complete",
            "COMP_WORDS": "reconciler validate ac",
            "COMP_CWORD": "2",
        },
    )
    assert result.output.splitlines() == ["file,ac"]  # the shell lists the files itself


def test_command_names_complete_with_their_help(repo: Path) -> None:
    assert complete("reconciler st") == ["store"]
    assert complete("reconciler ", "zsh")[:3] == ["apply", "companies", "completion"]
    assert complete("reconciler store r") == ["rotate-key"]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_command_prints_the_script(shell: str) -> None:
    result = CliRunner().invoke(cli.cli, ["completion", shell], prog_name="reconciler")
    assert result.exit_code == 0
    assert "_RECONCILER_COMPLETE" in result.output
    assert f"{shell}_complete" in result.output
