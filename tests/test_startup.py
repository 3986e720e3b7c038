"""Start-up costs what a command uses: which libraries a fresh process has imported after it.

Behaviour, not timing (benchmarks/startup.py measures the CPU): every `reconciler` run, `--help`
and shell-completion TAB is a new process, so what it imports is what it pays. A subprocess is
the point here: the test process itself has imported everything long ago.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest
from cryptography import fernet

from benchmarks import startup
from reconciler import cli, errors, lazy, secrets
from tests.conftest import TEST_KEY

REPO = Path(__file__).resolve().parent.parent
HEAVY = ("sqlalchemy", "pydantic", "cryptography", "yaml")

# Runs `reconciler ARGV...` (each argv a JSON list: several commands in one process), each
# expected to exit with the code given first, then prints the names of the modules imported, as
# JSON, on the last line of stdout.
RUN = """\
import contextlib, io, json, sys
from reconciler import cli
expect = int(sys.argv[1])
for argv in sys.argv[2:]:
    out = io.TextIOWrapper(io.BytesIO())  # completion writes bytes to stdout's buffer
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            code = cli.main(json.loads(argv))
        except SystemExit as exc:  # click ends a completion with sys.exit
            code = exc.code
    assert code == expect, (argv, code)
print(json.dumps(sorted(sys.modules)))
"""


def modules_after(
    *argvs: list[str], cwd: Path = REPO, env: Mapping[str, str] | None = None, expect: int = 0
) -> set[str]:
    """The modules a fresh interpreter has imported after running the commands."""
    proc = subprocess.run(
        [sys.executable, "-c", RUN, str(expect), *map(json.dumps, argvs)],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(proc.stdout.splitlines()[-1]))


def imported_after(
    *argvs: list[str], cwd: Path = REPO, env: Mapping[str, str] | None = None, expect: int = 0
) -> set[str]:
    """The top-level packages of modules_after (sqlalchemy for sqlalchemy.engine, ...)."""
    return {name.split(".")[0] for name in modules_after(*argvs, cwd=cwd, env=env, expect=expect)}


def completion_env(line: str) -> dict[str, str]:
    """bash asking for the words that complete `line` (the cursor at its end)."""
    words = line.split()
    cword = len(words) if line.endswith(" ") else len(words) - 1
    return {"_RECONCILER_COMPLETE": "bash_complete", "COMP_WORDS": line, "COMP_CWORD": str(cword)}


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["-h"]], ids=" ".join)
def test_help_and_version_import_none_of_the_heavy_libraries(argv: list[str]) -> None:
    found = imported_after(argv)
    assert "reconciler" in found and "click" in found  # the probe sees the imports
    assert found.isdisjoint(HEAVY), sorted(found & set(HEAVY))


def test_command_name_completion_imports_none_of_the_heavy_libraries() -> None:
    modules = modules_after([], env=completion_env("reconciler "))
    found = {name.split(".")[0] for name in modules}
    assert found.isdisjoint(HEAVY), sorted(found & set(HEAVY))
    assert not {f"reconciler.commands.{m}" for m, _, _ in cli.COMMANDS.values()} & modules


def test_completion_answers_command_names() -> None:
    """The probe above runs a real completion: it answers every command, from the table."""
    proc = subprocess.run(
        [sys.executable, "-m", "reconciler"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **completion_env("reconciler ")},
    )
    assert proc.returncode == 0, proc.stderr
    assert [line.split(",", 1)[1] for line in proc.stdout.splitlines()] == sorted(cli.COMMANDS)


def test_every_command_help_and_flag_completion_import_none_of_the_heavy_libraries() -> None:
    """A command's module loads for its --help and its flags' completion; the store, pydantic's
    models, YAML, cryptography and deepdiff load only when the command runs."""
    heavy = {*HEAVY, "deepdiff"}
    modules = modules_after(*([name, "--help"] for name in sorted(cli.COMMANDS)), ["store", "seed", "--help"])
    assert {f"reconciler.commands.{m}" for m, _, _ in cli.COMMANDS.values()} <= modules
    found = {name.split(".")[0] for name in modules}
    assert found.isdisjoint(heavy), sorted(found & heavy)
    for line in (
        "reconciler plan --",
        "reconciler apply --",
        "reconciler store ",
        "reconciler history --f",
        "reconciler windows --",
    ):
        found = imported_after([], env=completion_env(line))
        assert found.isdisjoint(heavy), (line, sorted(found & heavy))


def test_validate_of_one_file_imports_neither_the_store_nor_cryptography(tmp_path: Path) -> None:
    """A valid file is read the quick way: not even pydantic's models are built. A file with a
    problem is read the long way, which builds them to say what is wrong."""
    (tmp_path / ".git").mkdir()
    (tmp_path / "tenants" / "acme").mkdir(parents=True)
    shutil.copy(REPO / "tenants" / "acme" / "acme-norway.yaml", tmp_path / "tenants" / "acme")
    found = imported_after(["validate", "tenants/acme/acme-norway.yaml"], cwd=tmp_path)
    assert "yaml" in found  # it did read the file
    assert found.isdisjoint({"sqlalchemy", "cryptography", "pydantic"}), sorted(found)
    bad = tmp_path / "tenants" / "acme" / "acme-norway.yaml"
    bad.write_text(bad.read_text(encoding="utf-8").replace("version: 1", "version: 2"), encoding="utf-8")
    found = imported_after(["validate", "tenants/acme/acme-norway.yaml"], cwd=tmp_path, expect=1)
    assert "pydantic" in found
    assert found.isdisjoint({"sqlalchemy", "cryptography"}), sorted(found)


def test_a_store_key_loads_cryptography_only_to_encrypt() -> None:
    code = f"""\
import json, sys
from reconciler import secrets
keyring = secrets.Keyring({TEST_KEY.encode()!r})
keyring.fingerprint("x"), keyring.sign(b"plan"), keyring.check_value()
before = "cryptography" in sys.modules
token = keyring.encrypt("x")
assert keyring.decrypt(token) == "x"
print(json.dumps([before, "cryptography" in sys.modules]))
"""
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert json.loads(proc.stdout) == [False, True]


@pytest.mark.parametrize("key", [b"not-a-key", b"", b"QUFBQQ==", b"A" * 44, b"A" * 42 + b"=="])
def test_a_key_fernet_would_refuse_is_refused_without_it(key: bytes) -> None:
    """The store key is checked as Fernet checks it, so a wrong key fails before any use."""
    with pytest.raises(ValueError):
        fernet.Fernet(key)
    with pytest.raises(errors.SecretError, match="RECONCILER_STORE_KEY is not a valid key"):
        secrets.Keyring(key)


def test_lazy_module_imports_on_first_read_and_reads_the_real_module(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    stand_in = lazy.module("colorsys")
    assert "colorsys" not in sys.modules
    assert stand_in.rgb_to_hsv(1.0, 0.0, 0.0) == (0.0, 1.0, 1.0)
    real = sys.modules["colorsys"]
    monkeypatch.setattr(real, "ONE_THIRD", 0.5)
    assert stand_in.ONE_THIRD == 0.5  # a patch of the real module is what callers see
    assert stand_in.__name__ == "colorsys" and "imported on first use" in repr(stand_in)


def test_benchmark_table_puts_cpu_ratio_and_target_side_by_side() -> None:
    rows = [
        startup.Row("floor", 0.25, 0.25, 1.0),
        startup.Row("--help", 0.05, 0.25, 0.5),
        startup.Row("validate", 0.3, 0.25, 1.0),
    ]
    assert [r.ok for r in rows[1:]] == [True, False]
    assert startup.table(rows).splitlines() == [
        "operation   CPU ms  × floor   target  result",
        "floor         250     1.00",
        "--help         50     0.20   ≤ 0.50  ok",
        "validate      300     1.20   ≤ 1.00  FAIL",
    ]


def test_benchmark_measures_a_child_and_refuses_a_failing_one() -> None:
    assert 0 < startup.child_cpu([sys.executable, "-c", "sum(range(10**6))"]) < 60
    with pytest.raises(RuntimeError, match="exited 3"):
        startup.child_cpu([sys.executable, "-c", "raise SystemExit(3)"])
