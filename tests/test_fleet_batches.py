"""drift --write, import and store rotate-key read the fleet in batches, as plan and drift do
(issue 15: drift --write held the whole fleet, 276 MiB at 2,000 tenants; import 678 MiB at 8,000
tenants that all had files; rotate-key 209 MiB at 2,000): over several batches they do what one
batch does, and a variable given out in one batch is taken in the next, on SQLite, PostgreSQL
and MariaDB."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import sqlalchemy as sa

from reconciler import importer, secrets, stages, store
from tests import test_statements
from tests.test_statements import Run

run = test_statements.run  # the fixture: the CLI in this process, on an initialised matrix store

HAND = "managed: false, integration: dynamics-gp, server: gp01, database: D, authentication: sql, login: u"
# Tenant x's "Y Z" and tenant x-y's "Z" are both OSR_DW_X_Y_Z_PASSWORD by name.
LIVE = f"""\
version: 1
customers:
  - name: dw
    tenants:
      - name: x
        connections:
          - {{name: Y Z, {HAND}, password: {{env: OSR_CANARY}}}}
      - name: x-y
        connections:
          - {{name: Z, {HAND}, password: {{env: OSR_CANARY}}}}
      - name: y
        connections: []
"""
FILES = {name: f"version: 1\ncustomer: dw\ntenant: {name}\nconnections: []\n" for name in ("x", "x-y", "y")}


def _drift_write(run: Run, root: Path) -> tuple[int, str, dict[str, str]]:
    for name, text in FILES.items():
        (root / "tenants" / "dw" / f"{name}.yaml").write_text(text, encoding="utf-8")
    code, out, err = run("drift", "--write")
    assert code == 2, err
    return code, out, {n: (root / "tenants" / "dw" / f"{n}.yaml").read_text(encoding="utf-8") for n in FILES}


def test_drift_write_over_batches_writes_what_one_batch_writes(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OSR_CANARY", "not-shown")
    (tmp_path / "live.yaml").write_text(LIVE, encoding="utf-8")
    assert run("store", "seed", str(tmp_path / "live.yaml"))[0] == 0
    (tmp_path / "tenants" / "dw").mkdir(parents=True)
    whole = _drift_write(run, tmp_path)
    monkeypatch.setattr(stages, "BATCH_TENANTS", 1)
    read = store.read
    asked: list[int] = []
    monkeypatch.setattr(
        store, "read", lambda conn, keys, **kw: asked.append(len(keys)) or read(conn, keys, **kw)
    )
    batched = _drift_write(run, tmp_path)
    assert asked == [1, 1, 1]  # a tenant at a time: never the fleet at once
    assert batched == whole
    variables = [line.strip() for line in whole[1].splitlines() if line.startswith("    OSR_")]
    assert len(variables) == len(set(variables)) == 2, whole[1]
    assert "OSR_DW_X_Y_Z_PASSWORD" in variables  # the first keeps its name, the second has a suffix
    assert whole[2]["y"] == FILES["y"]


def test_drift_write_writes_nothing_when_a_later_batch_is_bad(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first batches are accepted before the last is read: a bad file in it still leaves
    every file as it was (validate's errors, exit 1)."""
    monkeypatch.setenv("OSR_CANARY", "not-shown")
    (tmp_path / "live.yaml").write_text(LIVE.replace("name: dw", "name: dv"), encoding="utf-8")
    assert run("store", "seed", str(tmp_path / "live.yaml"))[0] == 0
    folder = tmp_path / "tenants" / "dv"
    folder.mkdir(parents=True)
    for name, text in FILES.items():
        (folder / f"{name}.yaml").write_text(text.replace("dw", "dv"), encoding="utf-8")
    (folder / "y.yaml").write_text("version: 1\ncustomer: dv\ntenant: y\nconnections: {}\n", encoding="utf-8")
    monkeypatch.setattr(stages, "BATCH_TENANTS", 1)
    code, out, err = run("drift", "--write")
    assert code == 1 and out == "" and "tenants/dv/y.yaml:4:" in err, err
    assert (folder / "x.yaml").read_text(encoding="utf-8") == FILES["x"].replace("dw", "dv")


def test_import_reads_only_tenants_without_a_file_a_batch_at_a_time(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OSR_CANARY", "not-shown")
    (tmp_path / "live.yaml").write_text(LIVE.replace("name: dw", "name: di"), encoding="utf-8")
    assert run("store", "seed", str(tmp_path / "live.yaml"))[0] == 0
    for root in ("whole", "batched"):
        (tmp_path / root / "di").mkdir(parents=True)
        (tmp_path / root / "di" / "y.yaml").write_text(FILES["y"].replace("dw", "di"), encoding="utf-8")
    keys = ("--tenant", "di/x", "--tenant", "di/x-y", "--tenant", "di/y")
    code, whole, err = run("import", "whole", *keys)
    assert code == 0, err
    monkeypatch.setattr(importer, "run", functools.partial(importer.run, batch=1))
    read = store.read
    asked: list[list[str]] = []
    monkeypatch.setattr(store, "read", lambda conn, k, **kw: asked.append(list(k)) or read(conn, k, **kw))
    code, batched, err = run("import", "batched", *keys)
    assert code == 0, err
    assert asked == [["di/x"], ["di/x-y"]]  # y has its file: never read
    assert batched.replace("batched/", "whole/") == whole
    for name in ("x", "x-y"):
        written = (tmp_path / "batched" / "di" / f"{name}.yaml").read_text(encoding="utf-8")
        assert written == (tmp_path / "whole" / "di" / f"{name}.yaml").read_text(encoding="utf-8")
    assert (
        'OSR_DI_X_Y_Z_PASSWORD  # di/x "Y Z"\n' in whole and whole.count("OSR_DI_X_Y_Z_") == 2
    )  # one has a suffix


def test_rotate_key_over_batches_reencrypts_every_tenant_and_keeps_it_in_sync(
    run: Run, tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "live.yaml").write_text(test_statements._live("rk", 3), encoding="utf-8")
    assert run("store", "seed", str(tmp_path / "live.yaml"))[0] == 0
    new_key = secrets.Keyring.generate().decode()
    monkeypatch.setenv("RECONCILER_NEW_STORE_KEY", new_key)
    monkeypatch.setattr(stages, "BATCH_TENANTS", 1)
    read = store.read
    asked: list[list[str]] = []
    monkeypatch.setattr(store, "read", lambda conn, k, **kw: asked.append(list(k)) or read(conn, k, **kw))
    code, _, err = run("store", "rotate-key")
    assert code == 0 and "Re-encrypted 3 password(s)" in err, err
    rk = [k for k in asked if k[0].startswith("rk/")]
    assert rk == [["rk/t000"], ["rk/t001"], ["rk/t002"]]  # among any other tenants of the store
    assert all(len(k) == 1 for k in asked)
    monkeypatch.setenv("RECONCILER_STORE_KEY", new_key)
    keyring = secrets.Keyring(new_key.encode())
    engine = sa.create_engine(store_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            live = read(conn, ["rk/t000", "rk/t001", "rk/t002"])
            conns = [c for t in live.tenants.values() for c in t.connections]
            tokens = dict(store.password_rows(conn, [c.id for c in conns]))
    finally:
        engine.dispose()
    assert [keyring.decrypt(t) for t in tokens.values()] == [test_statements.OLD_PW[1]] * 3
    assert len(conns) == 9 and all(c.applied_fp == c.live_fp for c in conns)  # no drift made
