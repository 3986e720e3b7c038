"""Plan and drift read the fleet in bounded batches (issue 15): the result is the same plan as
one read of every tenant, whatever the batch size, guards and problems included."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler import catalog, desired, errors, fixture, secrets, stages, store
from reconciler import plan as p

REPO = Path(__file__).resolve().parent.parent
DEMO_ENV = {
    "OSR_ACME_NO_OSLO": "demo-oslo-pw",
    "OSR_ACME_NO_BERGEN": "demo-bergen-pw",
    "OSR_ACME_SE_STOCKHOLM": "demo-stockholm-pw",
    "RECONCILER_STORE_KEY": "kGdQmJ0sJ3V0fTq1aO3iUzlzGkB4p7Vh2m3xq9l3W8E=",
}
EMPTIED = """version: 1
customer: {customer}
tenant: {tenant}
prune: true
connections: []
"""


@pytest.fixture
def demo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store_url: str
) -> Iterator[tuple[stages.Context, store.Store]]:
    """The demo store seeded on each database of the matrix, its tenant files copied (tests
    edit the copies)."""
    for key, value in DEMO_ENV.items():
        monkeypatch.setenv(key, value)
    shutil.copytree(REPO / "tenants", tmp_path / "tenants")
    ctx = stages.Context(tmp_path, store_url, secrets.Settings("OSR_", tmp_path / ".secrets"))
    st = ctx.open_store(readonly=False, create=True)
    try:
        st.init()
        fixture.seed(st, fixture.load(REPO / "examples" / "demo-store.yaml"))
        yield ctx, st
    finally:
        st.close()


def _files(ctx: stages.Context) -> list[Path]:
    return desired.discover([str(ctx.root / "tenants")])


def _whole(ctx: stages.Context, st: store.Store, *, max_delete: int, fingerprint: bool) -> p.Plan:
    wanted = desired.load(_files(ctx), cat=catalog.load(), settings=ctx.settings)
    return stages.make_plan(ctx, st, wanted, max_delete=max_delete, fingerprint=fingerprint)


@pytest.mark.parametrize("size", [1, 2, 250])
@pytest.mark.parametrize("fingerprint", [False, True])
def test_plan_in_batches_is_the_plan_of_one_read(
    demo: tuple[stages.Context, store.Store], size: int, fingerprint: bool
) -> None:
    ctx, st = demo
    whole = _whole(ctx, st, max_delete=10, fingerprint=fingerprint)
    assert whole.has_changes and len(whole.tenants) == 3  # the demo plans changes in every tenant
    batched, _ = stages.plan_files(ctx, st, _files(ctx), max_delete=10, fingerprint=fingerprint, size=size)
    assert batched == whole


def test_guards_span_batches(demo: tuple[stages.Context, store.Store]) -> None:
    """--max-delete counts the deletes of every batch; each emptied tenant is named."""
    ctx, st = demo
    for key in ("acme/acme-norway", "nordlys/nordlys-main"):
        customer, tenant = key.split("/")
        (ctx.root / "tenants" / customer / f"{tenant}.yaml").write_text(
            EMPTIED.format(customer=customer, tenant=tenant), encoding="utf-8"
        )
    whole = _whole(ctx, st, max_delete=1, fingerprint=False)
    batched, _ = stages.plan_files(ctx, st, _files(ctx), max_delete=1, fingerprint=False, size=1)
    assert batched.mass_delete == whole.mass_delete
    assert any("more than --max-delete 1" in str(m) for m in batched.mass_delete)
    assert sum("every connection of the tenant" in str(m) for m in batched.mass_delete) >= 1


def test_problems_of_every_batch_are_reported_together(demo: tuple[stages.Context, store.Store]) -> None:
    ctx, st = demo
    tenants = ctx.root / "tenants"
    (tenants / "acme" / "acme-sweden.yaml").write_text("version: 1\ncustomer: acme\n", encoding="utf-8")
    (tenants / "nordlys" / "nordlys-main.yaml").write_text("connections: 7\n", encoding="utf-8")
    with pytest.raises(errors.InputError) as batched:
        stages.plan_files(ctx, st, _files(ctx), max_delete=10, size=1)
    with pytest.raises(errors.InputError) as whole:
        desired.load(_files(ctx), cat=catalog.load(), settings=ctx.settings)
    assert batched.value.problems == whole.value.problems
    assert {pr.file for pr in batched.value.problems} >= {
        str(tenants / "acme" / "acme-sweden.yaml"),
        str(tenants / "nordlys" / "nordlys-main.yaml"),
    }


def test_a_tenant_declared_twice_in_different_batches_is_refused(
    demo: tuple[stages.Context, store.Store],
) -> None:
    ctx, st = demo
    twin = ctx.root / "tenants" / "acme" / "acme-norway.yml"  # the one way to declare it twice
    shutil.copy(ctx.root / "tenants" / "acme" / "acme-norway.yaml", twin)
    with pytest.raises(errors.InputError) as caught:
        stages.plan_files(ctx, st, _files(ctx), max_delete=10, size=1)
    assert any("acme/acme-norway is also declared by" in pr.message for pr in caught.value.problems)


def test_unknown_tenants_of_every_batch_are_named(demo: tuple[stages.Context, store.Store]) -> None:
    ctx, st = demo
    for customer, tenant in (("acme", "acme-atlantis"), ("zz", "zz-nowhere")):
        path = ctx.root / "tenants" / customer / f"{tenant}.yaml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(EMPTIED.format(customer=customer, tenant=tenant), encoding="utf-8")
    with pytest.raises(errors.InputError) as caught:
        stages.plan_files(ctx, st, _files(ctx), max_delete=10, size=1)
    text = " ".join(pr.message for pr in caught.value.problems)
    assert "tenant acme/acme-atlantis does not exist" in text and "tenant zz/zz-nowhere" in text


@pytest.mark.parametrize("size", [1, 250])
def test_drift_in_batches_lists_what_one_read_lists(
    demo: tuple[stages.Context, store.Store], size: int
) -> None:
    ctx, st = demo
    whole = _whole(ctx, st, max_delete=10**9, fingerprint=False)
    drift = stages.drift_files(ctx, st, _files(ctx), size=size)
    assert drift.tenants == whole.tenants
    assert drift.mass_delete == ()  # drift applies nothing: no deletion guards


def test_checking_that_passwords_are_there_keeps_none_of_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """apply asks of every password whether it is there before it takes its leases: the values
    are not kept for redaction (a fleet's tens of thousands would grow its memory with the
    fleet); the applier registers the ones it writes."""
    from types import SimpleNamespace

    from reconciler import redaction
    from reconciler.declared import DesiredConnection, DesiredTenant, SecretRef

    monkeypatch.setenv("OSR_STAGES_PW", "Qz-stages-password-value")
    monkeypatch.setattr(redaction, "_known", redaction._Known())
    base = desired.load_file(
        Path("tenants/acme/acme-norway.yaml"),
        cat=catalog.load(),
        settings=secrets.Settings("OSR_", tmp_path),
        raw=b"version: 1\ncustomer: acme\ntenant: acme-norway\nconnections:\n"
        b"  - {name: A, integration: visma-business, server: s, database: d, authentication: windows}\n",
    )
    conn = DesiredConnection(base.connections[0].spec, SecretRef("OSR_STAGES_PW", None), (), True, False)
    missing = DesiredConnection(base.connections[0].spec, SecretRef("OSR_STAGES_NONE", None), (), True, False)
    tenant = DesiredTenant("acme", "acme-norway", "t.yaml", "d", False, (conn, missing), ())
    ctx = SimpleNamespace(settings=secrets.Settings("OSR_", tmp_path))
    found = stages.unavailable_passwords(ctx, [tenant])  # type: ignore[arg-type]
    assert [(name, str(ref)) for _, name, ref in found] == [("A", "env OSR_STAGES_NONE")]
    assert "Qz-stages-password-value" not in redaction._known
