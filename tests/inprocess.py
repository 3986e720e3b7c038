"""Run `reconciler` in this process (its error handler included), in a fresh repository.

The run's environment is this process's, scrubbed of the tool's variables and colour hints, plus
the overrides a call passes; tests.conftest.run_in_process isolates each call (streams, cwd,
gc, signal handlers, per-process caches) as a new process would be.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import CANARY, CANARY_ENV, run_in_process


@dataclass
class Run:
    code: int
    out: str
    err: str


class InProcess:
    def __init__(
        self, root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        self.root, self._monkeypatch, self._capsys = root, monkeypatch, capsys

    def __call__(self, *args: str, env: dict[str, str] | None = None) -> Run:
        result = run_in_process(args, env={**os.environ, **(env or {})}, cwd=self.root)
        run = Run(result.code, result.out, result.err)
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
def run_fixture(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[InProcess]:
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
