"""Property: whatever the live store and the tenant file, plan -> apply -> plan has nothing left to do.

On SQLite, PostgreSQL and MariaDB alike, hypothesis generates a live tenant (managed, unmanaged
and protected connections with companies and dependents) and a tenant file (edits, renames by
previous name, tombstones, prune), then runs the real loader, store, differ and applier
in-process, and checks the guarantees a user relies on: the second plan is empty but for what is
blocked, unmanaged and protected connections survive, and exactly the dependents the plan listed
are gone.
"""

from __future__ import annotations

import tempfile
import unicodedata
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from reconciler import applier, catalog, desired, fixture, render, secrets, spec, stages
from tests.conftest import reset_server
from tests.inert import assert_markdown_inert, assert_text_inert


def _nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


# Hostile classes: NFC/NFD pairs, case pairs, accent pairs (one name to people, or two), and
# markup in what the portal names (dependents): every output must stay inert.
NAMES = [
    "Oslo",
    "OSLO",
    "Tromsø",
    "Old NAV",
    "Résumé",
    "Resume",
    _nfd("Résumé"),
    "Bjørn Ås",
    _nfd("bjørn ås"),
    "Sandbox",
]
COMPANIES = ["F0001", "f0001", "F0002", "Å1", "A1", _nfd("Å1"), "S2", "S11"]
DEPENDENTS = ["", " @octocat", "\n```\n## Nothing is deleted", " <script>x</script>", "\u202e[x](y)"]
KINDS = ["data_access_filters", "budget_flows", "publisher_jobs", "reports"]
PASSWORDS = {"OSR_P1": "first-password", "OSR_P2": "second-password"}
KEY = "kGdQmJ0sJ3V0fTq1aO3iUzlzGkB4p7Vh2m3xq9l3W8E="


@st.composite
def fields(draw: st.DrawFn) -> dict[str, object]:
    auth = draw(st.sampled_from(["sql", "windows"]))
    out: dict[str, object] = {
        "integration": draw(st.sampled_from(["dynamics-nav", "dynamics-gp", "visma-business"])),
        "server": draw(st.sampled_from(["SQL01\\VISMA", "sql01\\visma", "gp01,1433", "gp01", "10.0.0.5"])),
        "database": draw(st.sampled_from(["vbsys", "VBSYS", "NAV"])),
        "authentication": auth,
        "allow_others_to_edit": draw(st.booleans()),
        "private": draw(st.booleans()),
        "write_back": draw(st.booleans()),
    }
    if auth == "sql":
        out["login"] = draw(st.sampled_from(["osr", "reader"]))
    return out


@st.composite
def live_tenant(draw: st.DrawFn) -> dict[str, object]:
    conns = []
    for name in draw(st.lists(st.sampled_from(NAMES), unique_by=spec.identity, max_size=5)):
        f = draw(fields())
        if f["authentication"] == "sql":
            f["password"] = PASSWORDS[draw(st.sampled_from(sorted(PASSWORDS)))]
        companies = [
            {
                "id": c,
                **{
                    k: [
                        f"{k} {c} {i}{draw(st.sampled_from(DEPENDENTS))}"
                        for i in range(draw(st.integers(0, 2)))
                    ]
                    for k in draw(st.lists(st.sampled_from(KINDS), unique=True))
                },
            }
            for c in draw(st.lists(st.sampled_from(COMPANIES), unique_by=spec.identity, max_size=3))
        ]
        conns.append(
            {
                "name": name,
                "managed": draw(st.booleans()),
                "protected": draw(st.booleans()),
                **f,
                "companies": companies,
            }
        )
    templates = [{"name": f"Template {c['name']}", "connection": c["name"]} for c in conns[:2]]
    return {"name": "t", "connections": conns, "report_templates": templates}


@st.composite
def tenant_file(draw: st.DrawFn, live: dict[str, object]) -> str:
    live_names = [c["name"] for c in live["connections"]]  # type: ignore[index]
    declared: list[dict[str, object]] = []
    used: set[str] = set()
    for name in draw(st.lists(st.sampled_from(NAMES), unique_by=spec.identity, max_size=5)):
        if draw(st.integers(0, 4)) == 0:
            declared.append({"name": name, "absent": True})
            used.add(spec.identity(name))
            continue
        f = draw(fields())
        if f["authentication"] == "sql":
            f["password"] = {"env": draw(st.sampled_from(sorted(PASSWORDS)))}
        entry = {
            "name": name,
            **f,
            "companies": draw(st.lists(st.sampled_from(COMPANIES), unique_by=spec.identity, max_size=3)),
        }
        declared.append(entry)
        used.add(spec.identity(name))
    for entry in declared:  # a rename: point at a live name nobody else uses
        free = [n for n in live_names if spec.identity(n) not in used]
        if "absent" not in entry and free and draw(st.booleans()):
            entry["previous_names"] = [free[0]]
            used.add(spec.identity(free[0]))
    doc = {
        "version": 1,
        "customer": "acme",
        "tenant": "t",
        "prune": draw(st.booleans()),
        "connections": declared,
    }
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


def _counts(live: dict[str, object]) -> int:
    return sum(
        len(v)
        for c in live["connections"]
        for comp in c["companies"]  # type: ignore[index]
        for k, v in comp.items()
        if k in KINDS
    )


def test_plan_apply_plan_converges(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """On every store of the matrix: many examples on SQLite, fewer on the (slower) servers."""
    on_sqlite = store_url.startswith("sqlite")

    @settings(
        max_examples=150 if on_sqlite else 60,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(data=st.data())
    def converges(data: st.DataObject) -> None:
        live_doc = data.draw(live_tenant())
        _check(store_url, live_doc, data.draw(tenant_file(live_doc)), monkeypatch)

    converges()


def _check(store_url: str, live_doc: dict[str, object], text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with tempfile.TemporaryDirectory() as tmp, monkeypatch.context() as env:
        root = Path(tmp)
        for name, value in {**PASSWORDS, "RECONCILER_STORE_KEY": KEY}.items():
            env.setenv(name, value)
        (root / "fixture.yaml").write_text(
            yaml.safe_dump(
                {"version": 1, "customers": [{"name": "acme", "tenants": [live_doc]}]}, allow_unicode=True
            )
        )
        path = root / "tenants" / "acme" / "t.yaml"
        path.parent.mkdir(parents=True)
        path.write_text(text, encoding="utf-8")
        url = f"sqlite:///{root / 'store.db'}" if store_url.startswith("sqlite") else store_url
        if url == store_url:
            reset_server(url)  # a fresh schema for every example
        ctx = stages.Context(root, url, secrets.Settings("OSR_", root / ".secrets"))
        st_ = ctx.open_store(readonly=False, create=True)
        try:
            st_.init()
            fixture.seed(st_, fixture.load(root / "fixture.yaml"))
            wanted = [desired.load_file(path, cat=catalog.load(), settings=ctx.settings)]
            before = st_.snapshot(dependents=True).tenants["acme/t"]
            first = stages.make_plan(ctx, st_, wanted, max_delete=1000)
            applier.apply(st_, first, settings=ctx.settings, commit=None)
            second = stages.make_plan(ctx, st_, wanted, max_delete=1000)
            after = st_.snapshot(dependents=True).tenants["acme/t"]
        finally:
            st_.close()
    assert_text_inert(render.text(first))
    assert_markdown_inert(
        render.markdown(first), sections=1, headings={"osr-reconciler plan", "Destructive actions"}
    )
    for _, action in first.all_actions():
        event(
            f"{action.action.value}{' blocked' if action.blocked else ''}"
            f"{' with cascade' if action.cascade else ''}"
        )
    assert second.summary.changes == 0, [a for _, a in second.all_actions()]
    assert second.summary.blocked == first.summary.blocked
    kept = {c.id for c in after.connections}
    for conn in before.connections:
        if not conn.managed or conn.spec.protected:
            assert conn.id in kept, f"{conn.spec.name} (unmanaged or protected) was deleted"
    listed = sum(len(a.cascade) for _, a in first.all_actions() if not a.blocked)
    deps = lambda t: sum(len(c.dependents) for conn in t.connections for c in conn.companies)  # noqa: E731
    assert deps(before) - deps(after) == listed, "dependents deleted differ from those the plan listed"
    assert _counts(live_doc) == deps(before)
