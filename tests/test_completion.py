"""Shell completion through click's protocol, as bash, zsh and fish call it (in-process), and the
bash script itself, run by bash."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from click.shell_completion import split_arg_string
from click.testing import CliRunner

from reconciler import cli
from tests.conftest import IN_CI, RECONCILER

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
    # bash inserts the text as it comes; zsh and fish quote it themselves
    expected = (
        [r"Visma\ Business\ Oslo", r"Visma\ Bergen"]
        if shell == "bash"
        else ["Visma Business Oslo", "Visma Bergen"]
    )
    assert complete(line, shell) == expected  # not the tombstone
    assert complete(line + "'visma bu", shell) == ["Visma Business Oslo"]


def test_a_name_written_as_a_number_completes_as_validate_reads_it(repo: Path) -> None:
    """`name: 2024` is the name 2024 to validate; `name: true` is refused, so never offered."""
    (repo / "tenants/acme/acme-norway.yaml").write_text(
        NORWAY
        + "  - {name: 2024, integration: dynamics-gp, server: gp, database: D, authentication: windows}\n"
        "  - {name: 0x1F, integration: dynamics-gp, server: gp, database: D, authentication: windows}\n"
        "  - {name: true, integration: dynamics-gp, server: gp, database: D, authentication: windows}\n",
        encoding="utf-8",
    )
    line = "reconciler companies --tenant acme/acme-norway --connection "
    assert complete(line, "zsh") == ["Visma Business Oslo", "Visma Bergen", "2024", "0x1F"]
    assert complete(line + "20", "zsh") == ["2024"]


ODD = r"""Bob's "Best" $HOME & Co; (AX) *#1 `x` \ end!"""  # all that bash makes something of
ODD_FILE = (
    "version: 1\ncustomer: odd\ntenant: odd\nconnections:\n  - name: '" + ODD.replace("'", "''") + "'\n"
)
ODD_LINE = "reconciler companies --tenant odd/odd --connection "
ESCAPED = r"""Bob\'s\ \"Best\"\ \$HOME\ \&\ Co\;\ \(AX\)\ \*\#1\ \`x\`\ \\\ end\!"""
IN_SINGLE = r"""Bob'\''s "Best" $HOME & Co; (AX) *#1 `x` \ end!"""
IN_DOUBLE = r'''Bob's \"Best\" \$HOME & Co; (AX) *#1 \`x\` \\ end"\!""'''  # ends in a quote: closed

# What was typed of the name; what of it readline keeps (up to the quote left open, which it
# closes after a single match); the text bash must insert after that.
TYPED = {
    "nothing": ("", "", ESCAPED),
    "prefix": ("bob", "", ESCAPED),
    "escaped": (r"Bob\'s\ \"B", "", ESCAPED),
    "quote": ("'", "'", IN_SINGLE),
    "single-quoted": ("'Bob", "'", IN_SINGLE),
    "double-quoted": ('"Bob', '"', IN_DOUBLE),
    "quote-reopened": (r"""'Bob'\''s "B""", r"'Bob'\''", IN_SINGLE.removeprefix(r"Bob'\''")),
}


@pytest.mark.parametrize(("typed", "inserted"), [(t, i) for t, _, i in TYPED.values()], ids=list(TYPED))
def test_bash_gets_a_connection_quoted_for_where_it_goes(repo: Path, typed: str, inserted: str) -> None:
    (repo / "tenants" / "odd").mkdir()
    (repo / "tenants" / "odd" / "odd.yaml").write_text(ODD_FILE, encoding="utf-8")
    assert complete(ODD_LINE + typed, "zsh") == [ODD]  # compadd quotes it, for the quote typed
    assert complete(ODD_LINE + typed, "bash") == [inserted]


@pytest.mark.parametrize(("typed", "kept", "inserted"), TYPED.values(), ids=list(TYPED))
def test_bash_script_completes_a_connection_to_exactly_its_name(
    repo: Path, tmp_path: Path, typed: str, kept: str, inserted: str
) -> None:
    """The printed script, sourced by bash and called as bash calls it on TAB: readline puts
    COMPREPLY after what it keeps of the word and closes the quote; the line then says the name."""
    bash = shutil.which("bash")
    if bash is None:
        if IN_CI:
            pytest.fail("CI=true: bash is not installed", pytrace=False)
        pytest.skip("bash is not installed")
    (repo / "tenants" / "odd").mkdir()
    (repo / "tenants" / "odd" / "odd.yaml").write_text(ODD_FILE, encoding="utf-8")
    script = CliRunner().invoke(cli.cli, ["completion", "bash"], prog_name="reconciler").output
    (tmp_path / "completion.bash").write_text(script, encoding="utf-8")
    test = r"""
        source "$SCRIPT" && shopt -s nullglob  # a value globbed would vanish
        COMP_WORDS=(reconciler companies --tenant odd/odd --connection "$TYPED") COMP_CWORD=5
        _reconciler_completion "$RECONCILER"
        (( ${#COMPREPLY[@]} == 1 )) || { declare -p COMPREPLY; exit 1; }
        line=$KEPT${COMPREPLY[0]}
        if [[ -n $QUOTE && $line != *"$QUOTE" ]]; then line+=$QUOTE; fi
        eval "set -- $line"
        printf '%s\0' "${COMPREPLY[0]}" "$@"
    """
    env = {**os.environ, "SCRIPT": str(tmp_path / "completion.bash"), "RECONCILER": RECONCILER}
    env.update(TYPED=typed, KEPT=kept, QUOTE=kept[-1:])
    env.pop("_RECONCILER_COMPLETE", None)
    done = subprocess.run([bash, "--norc", "-c", test], env=env, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout.split("\0")) == (0, [inserted, ODD, ""]), done.stderr


@pytest.mark.parametrize(
    ("shell", "offered"), [("bash", r"Visma\ Business\ Oslo"), ("zsh", "Visma Business Oslo")]
)
def test_connection_with_a_line_break_is_not_offered(repo: Path, shell: str, offered: str) -> None:
    """click answers a line per value (zsh: three), so a line break would make two."""
    text = NORWAY.replace("name: Visma Bergen", 'name: "Visma\\nBergen"')
    (repo / "tenants" / "acme" / "acme-norway.yaml").write_text(text, encoding="utf-8")
    assert complete("reconciler companies --tenant acme/acme-norway --connection V", shell) == [offered]


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


@pytest.mark.parametrize(
    ("shell", "takes", "not_"),
    [
        ("bash", 'COMPREPLY+=("$value")', "read type value"),  # read dropped backslashes
        ("bash", "local -; set -f", "COMPREPLY+=($value)"),  # nor globs a line or a value
        ("fish", 'string split -m 1 ","', 'string split ","'),  # `Comma, Inc` stays whole
    ],
)
def test_completion_script_takes_a_value_whole(shell: str, takes: str, not_: str) -> None:
    script = CliRunner().invoke(cli.cli, ["completion", shell], prog_name="reconciler").output
    assert takes in script
    assert not_ not in script
