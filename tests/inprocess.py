"""Run `reconciler` in this process (its error handler included), in a fresh repository."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from reconciler import cli
from tests.conftest import CANARY, CANARY_ENV


@dataclass
class Run:
    code: int
    out: str
    err: str


class InProcess:
    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch,
                 capsys: pytest.CaptureFixture[str]) -> None:
        self.root, self._monkeypatch, self._capsys = root, monkeypatch, capsys

    def __call__(self, *args: str, env: dict[str, str] | None = None) -> Run:
        with self._monkeypatch.context() as patch:
            for name, value in (env or {}).items():
                patch.setenv(name, value)
            code = cli.main(list(args))
            captured = self._capsys.readouterr()
        run = Run(code, captured.out, captured.err)
        assert CANARY not in run.out + run.err and "Traceback" not in run.err
        return run

    def seed(self, live: str, tenant: str) -> None:
        """An embedded store holding `live`, and tenants/acme/acme-norway.yaml holding `tenant`."""
        assert self("store", "init").code == 0
        self.write("live.yaml", live)
        assert self("store", "seed", "live.yaml").code == 0
        self.write("tenants/acme/acme-norway.yaml", tenant)

    def write(self, relative: str, text: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path


@pytest.fixture(name="run")
def run_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> Iterator[InProcess]:
    """`reconciler` in-process on the embedded store of a fresh repository."""
    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    monkeypatch.chdir(root)
    for name in list(os.environ):
        if name.startswith(("RECONCILER_", "OSR_", "FORCE_COLOR", "CLICOLOR", "NO_COLOR", "CI")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("RECONCILER_ACTOR", "tester")
    monkeypatch.setenv(CANARY_ENV, CANARY)
    yield InProcess(root, monkeypatch, capsys)
    gc.enable()  # main() turns the cycle collector off for its short-lived process
