"""The HTML report (DESIGN §12): golden pages for the demo, inert hostile names, valid nesting.

Golden pages: tests/golden/demo-plan.html and demo-drift.html, normalised (the inline CSS and
script and their CSP hashes are replaced by placeholders, so a style tweak does not churn them).
Regenerate with `UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_render_html.py` and
review the diff before committing.
"""

from __future__ import annotations

import dataclasses
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from reconciler import catalog, desired, fixture, render_html, secrets, spec, stages
from reconciler import plan as p
from tests.conftest import Cli, copy_demo

REPO = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).parent / "golden"
DEMO_ENV = {
    "OSR_ACME_NO_OSLO": "demo-oslo-pw",
    "OSR_ACME_NO_BERGEN": "demo-bergen-pw",
    "OSR_ACME_SE_STOCKHOLM": "demo-stockholm-pw",
    "RECONCILER_STORE_KEY": "kGdQmJ0sJ3V0fTq1aO3iUzlzGkB4p7Vh2m3xq9l3W8E=",
}
R = spec.DependentKind.REPORT
B = spec.DependentKind.BUDGET_FLOW
VOID = frozenset({"meta", "input", "br", "hr", "img", "link", "wbr", "col", "area", "base", "source"})
HOSTILE = (
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "abc\u202edcba.exe",
    "a\nb",
    "&amp; <!-- -->",
)


def demo_plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> p.Plan:
    """The demo: examples/demo-store.yaml seeded into a SQLite store, tenants/ planned, in-process."""
    for key, value in DEMO_ENV.items():
        monkeypatch.setenv(key, value)
    ctx = stages.Context(
        tmp_path, f"sqlite:///{tmp_path / 'store.db'}", secrets.Settings("OSR_", tmp_path / ".secrets")
    )
    st = ctx.open_store(readonly=False, create=True)
    try:
        st.init()
        fixture.seed(st, fixture.load(REPO / "examples" / "demo-store.yaml"))
        files = desired.discover([str(REPO / "tenants")])
        wanted = desired.load(files, cat=catalog.load(), settings=ctx.settings)
        return stages.make_plan(ctx, st, wanted, max_delete=10, fingerprint=False)
    finally:
        st.close()


class Checker(HTMLParser):
    """Nesting, unique ids, in-page links, and every element and attribute seen (for assertions)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.ids: list[str] = []
        self.links: list[str] = []
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str]] = []
        self.text: list[str] = []
        self.in_bdi = 0
        self.bdi_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for key, value in attrs:
            self.attrs.append((key, value or ""))
            if key == "id":
                self.ids.append(value or "")
            if key == "href":
                self.links.append(value or "")
        if tag == "bdi":
            self.in_bdi += 1
            self.bdi_text.append("")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1:]}>"
        self.stack.pop()
        if tag == "bdi":
            self.in_bdi -= 1

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self.in_bdi:
            self.bdi_text[-1] += data


def nesting(fragment: str) -> Checker:
    checker = Checker()
    checker.feed(fragment)
    checker.close()
    assert checker.stack == [], f"unclosed: {checker.stack}"
    return checker


def check(page: str) -> Checker:
    """A whole page: nested properly, ids unique, links land, headings, nothing active but ours."""
    checker = nesting(page)
    assert len(checker.ids) == len(set(checker.ids)), "duplicate ids"
    for link in checker.links:
        assert link.startswith("#") and link[1:] in checker.ids, f"link {link!r} goes nowhere"
    for tag in ("h1", "h2", "h3"):
        assert tag in checker.tags
    assert [t for t in checker.tags if t == "script"] == ["script"]
    assert not {"img", "link", "iframe", "object", "embed", "form", "base"} & set(checker.tags)
    assert not [k for k, _ in checker.attrs if k.startswith("on") or k in ("src", "srcset", "style")]
    return checker


def normalised(page: str) -> str:
    page = page.replace(render_html.CSP, "CSP")
    page = page.replace(f"<style>{render_html.CSS}</style>", "<style>CSS</style>")
    return page.replace(f"<script>{render_html.SCRIPT}</script>", "<script>SCRIPT</script>")


def golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(actual, encoding="utf-8")
    assert actual == path.read_text(encoding="utf-8")


def test_demo_pages_match_golden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = demo_plan(tmp_path, monkeypatch)
    for kind, page in (("plan", render_html.plan_page(plan)), ("drift", render_html.drift_page(plan))):
        check(page)
        golden(f"demo-{kind}.html", normalised(page))


def test_page_makes_no_request_of_its_own() -> None:
    page = render_html.plan_page(hostile_plan())
    assert not re.search(r"https?:|//[a-z]|@import|url\(", page, re.IGNORECASE)
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)">', page)
    assert csp is not None
    assert "default-src 'none'" in csp.group(1)
    assert render_html._sha256(render_html.CSS) in csp.group(1)  # the inline style and script may run
    assert render_html._sha256(render_html.SCRIPT) in csp.group(1)


def hostile_plan() -> p.Plan:
    n0, n1, n2, n3, n4 = HOSTILE
    delete = p.Action(
        p.ActionKind.DELETE,
        n0,
        p.Reason.DELETE_TOMBSTONE,
        cascade=(p.Cascade(R, n1, n2), p.Cascade(B, n2, n3)),
        kept=(p.Kept("report_template", n4),),
        blocked=None,
    )
    update = p.Action(
        p.ActionKind.UPDATE,
        n1,
        p.Reason.UPDATE_CHANGED,
        changes=(p.Change("server", n2, n0), p.Change("companies", [n3], [])),
        status=p.Status.DRIFT,
    )
    rename = p.Action(
        p.ActionKind.RENAME,
        n2,
        p.Reason.RENAME_PREVIOUS_NAME,
        previous_name=n0,
        status=p.Status.DRIFT_AND_PENDING,
    )
    tenant = p.TenantPlan(
        "acme",
        "no",
        (delete, rename, update),
        (n3, n4),
        (f"{n0}: note",),
        checks=(p.SourceCheck(n1, (f"{n1}: login failed",)),),
    )
    return p.Plan((tenant,), 10, (f"acme/no: {n2}",))


@pytest.mark.parametrize("render", [render_html.plan_page, render_html.drift_page])
def test_hostile_names_are_rendered_as_text(render: object) -> None:
    assert callable(render)
    page = render(hostile_plan())
    checker = check(page)  # one script (ours), no img, no on* attribute
    text = "".join(checker.text)
    assert "<script>alert(1)</script>" in text
    assert '"><img src=x onerror=alert(1)>' in text
    assert "\u202e" not in page and "abcU+202Edcba.exe" in text  # the override shown, not obeyed
    assert "\n" not in "".join(checker.bdi_text) and "aU+000Ab" in text
    assert "&amp; <!-- -->" in text
    # Every hostile name sits in a <bdi>, isolated from the text around it.
    for hostile in ("<script>alert(1)</script>", "abcU+202Edcba.exe"):
        assert hostile in checker.bdi_text


@pytest.mark.parametrize(
    ("text", "html"),
    [
        ("Oslo", "Oslo"),
        ("<b>\"x\"</b> & 'y'", "&lt;b&gt;&quot;x&quot;&lt;/b&gt; &amp; &#x27;y&#x27;"),
        ("a\u202eb", 'a<span class="ctl" title="invisible character">U+202E</span>b'),
        (
            "a\u200bb\tc",
            'a<span class="ctl" title="invisible character">U+200B</span>b'
            '<span class="ctl" title="invisible character">U+0009</span>c',
        ),
        ("Tromsø ÆØÅ 東京 مرحبا", "Tromsø ÆØÅ 東京 مرحبا"),
    ],
)
def test_esc(text: str, html: str) -> None:
    assert render_html.esc(text) == html


def _reports(n: int, company: str = "F1") -> tuple[p.Cascade, ...]:
    return tuple(p.Cascade(R, f"Report {i:03d}", company) for i in range(n))


def test_cascade_tree_counts_every_branch_and_collapses_large_ones() -> None:
    big = p.Action(
        p.ActionKind.DELETE,
        "Big",
        p.Reason.DELETE_PRUNED,
        cascade=(*_reports(40, "F1"), p.Cascade(B, "Budget", "F2")),
        kept=(p.Kept("report_template", "Tpl"),),
    )
    tree = "\n".join(render_html.cascade_tree(big))
    nesting(tree)
    assert '<details open><summary>connection <bdi>Big</bdi> deletes <span class="count">41</span>' in tree
    # F1 holds 40 reports: beyond OPEN_LEAVES, its branches start collapsed; F2 is open.
    assert '<details><summary>company <bdi>F1</bdi> <span class="count">40</span>' in tree
    assert '<details><summary>reports <span class="count">40</span>' in tree
    assert '<details open><summary>company <bdi>F2</bdi> <span class="count">1</span>' in tree
    assert tree.count("<li><bdi>Report ") == 40  # collapsed, never cut
    assert "<h5>Kept, detached from the connection (1)</h5>" in tree
    assert "<li>report template <bdi>Tpl</bdi></li>" in tree


def test_update_tree_shows_removed_companies_even_without_dependents() -> None:
    update = p.Action(
        p.ActionKind.UPDATE,
        "Visma",
        p.Reason.UPDATE_CHANGED,
        changes=(p.Change("companies", ["F1", "F2", "F3"], ["f1"]),),
        cascade=(p.Cascade(R, "P&L", "F2"),),
    )
    tree = "\n".join(render_html.cascade_tree(update))
    assert "removed company <bdi>F2</bdi>" in tree
    assert '<li>company <bdi>F3</bdi> <span class="count">no dependents</span></li>' in tree
    assert "F1" not in tree


def test_plan_page_summary_first_and_quiet_tenants_collapsed() -> None:
    delete = p.Action(
        p.ActionKind.DELETE,
        "Old",
        p.Reason.DELETE_TOMBSTONE,
        cascade=_reports(2),
        blocked="protected: set protected: false on the live connection first",
    )
    busy = p.TenantPlan("acme", "busy", (delete,), ())
    quiet = p.TenantPlan("acme", "quiet", (), ())
    page = render_html.plan_page(p.Plan((busy, quiet), 10, ("acme/busy: every connection",)))
    check(page)
    assert page.index('id="h-summary"') < page.index('id="h-destructive"') < page.index('id="t-acme/busy"')
    assert (
        '<div class="alert caution" role="alert"><strong>Needs --allow-mass-delete</strong> '
        "acme/busy: every connection</div>"
    ) in page
    assert "<strong>1 action blocked</strong>" in page
    assert "Needs --allow-cascade" not in page  # a blocked delete cascades nothing
    assert '<tr data-ref="a-0-0">' in page and '<a href="#a-0-0"><bdi>Old</bdi></a>' in page
    assert "connection <bdi>Old</bdi> would delete" in page
    assert re.search(r'id="t-acme/busy"[^>]*>\n<details open>', page)
    assert re.search(r'id="t-acme/quiet"[^>]*>\n<details><summary>', page)
    assert '<label for="filter">Filter by tenant, connection or dependent name</label>' in page


def test_drift_page_tells_portal_changes_from_pending() -> None:
    drifted = p.Action(
        p.ActionKind.UPDATE,
        "Visma",
        p.Reason.UPDATE_CHANGED,
        changes=(p.Change("database", "vbsys_copy", "vbsys"),),
        status=p.Status.DRIFT,
    )
    renamed = p.Action(
        p.ActionKind.RENAME,
        "GP",
        p.Reason.RENAME_PREVIOUS_NAME,
        previous_name="GP (old)",
        changes=(p.Change("name", "GP (old)", "GP"),),
        status=p.Status.DRIFT,
    )
    both = p.Action(
        p.ActionKind.UPDATE,
        "NAV",
        p.Reason.UPDATE_CHANGED,
        changes=(p.Change("login", "a", "b"),),
        status=p.Status.DRIFT_AND_PENDING,
    )
    pending = p.Action(p.ActionKind.CREATE, "New", p.Reason.CREATE_DECLARED)
    tenant = p.TenantPlan("acme", "no", (renamed, both, drifted, pending), ("By hand",))
    page = render_html.drift_page(p.Plan((tenant, p.TenantPlan("acme", "se", (), ())), 10))
    check(page)
    order = [
        page.index(h)
        for h in (
            "<h4>Changed in the portal</h4>",
            "<h4>Renamed in the portal</h4>",
            "<h4>Pending in git</h4>",
            "<h4>Unmanaged in the portal</h4>",
        )
    ]
    assert order == sorted(order)
    # drift: the portal moved from what was applied (what the files say) to its value now
    assert (
        '<td><span class="v"><bdi>&quot;vbsys&quot;</bdi></span> → <span class="v"><bdi>'
        '&quot;vbsys_copy&quot;</bdi></span></td><td class="muted">files unchanged</td>'
    ) in page
    assert "renamed in the portal from <bdi>GP</bdi> to <bdi>GP (old)</bdi>" in page
    assert '<span class="badge drift_and_pending">drift and pending</span>' in page
    assert "<strong>1 conflict</strong>" in page
    assert '<span class="badge unmanaged">unmanaged</span>' in page
    assert re.search(
        r'id="t-acme/se"[^>]*>\n<details><summary><h3><bdi>acme/se</bdi></h3> '
        r'<span class="count">no differences</span>',
        page,
    )


def test_cli_writes_html_for_plan_and_drift(cli: Cli, repo_root: Path) -> None:
    copy_demo(cli.root, repo_root)
    assert cli("store", "seed", "examples/demo-store.yaml").code == 0
    env = {k: v for k, v in DEMO_ENV.items() if k.startswith("OSR_")}
    planned = cli("plan", "--format", "html", env=env)
    assert planned.code == 0, planned.err
    assert planned.out.startswith("<!DOCTYPE html>") and "<bdi>Old NAV</bdi>" in planned.out
    drifted = cli("drift", "--format", "html", env=env)
    assert drifted.code == 2, drifted.err
    assert "<h1>osr-reconciler drift</h1>" in drifted.out
    check(planned.out)
    check(drifted.out)


def test_both_pages_show_the_open_window_and_the_next() -> None:
    """The plan page dropped the next window of a tenant with an open one; the drift page showed
    no window at all (DESIGN §11: active and next, in every format)."""
    from datetime import UTC, datetime, timedelta

    from reconciler import freeze

    start = datetime(2026, 6, 10, tzinfo=UTC)
    windows = freeze.Freeze(
        freeze.Occurrence("month-end close", start, start + timedelta(days=10)),
        freeze.Occurrence("year-end audit", start + timedelta(days=7), start + timedelta(days=15)),
    )
    create = p.Action(p.ActionKind.CREATE, "Oslo", p.Reason.CREATE_DECLARED)
    plan = p.Plan((p.TenantPlan("acme", "no", (create,), (), freeze=windows),), 10)
    for page in (render_html.plan_page(plan), render_html.drift_page(plan)):
        summary, section = page.split('<section class="tenant"', 1)
        assert "Frozen: 1 tenant" in summary and "month-end close" in summary and "acme/no" in summary
        assert "Change window ahead: 1 tenant" in summary and "year-end audit" in summary
        assert "Frozen: change window &quot;month-end close&quot; until" in section
        assert "Next: change window &quot;year-end audit&quot; opens" in section
        assert '<div class="alert info"><strong>Change window ahead' in summary
    soon = dataclasses.replace(plan.tenants[0], freeze=dataclasses.replace(windows, soon=True))
    summary = render_html.plan_page(dataclasses.replace(plan, tenants=(soon,))).split(
        '<section class="tenant"'
    )[0]
    assert '<div class="alert warning"><strong>Change window within a week: 1 tenant</strong>' in summary


def test_one_alert_per_change_window_however_many_tenants_it_holds() -> None:
    """A month-end window over 500 tenants put 500 "Frozen" alerts before the destructive
    actions (DESIGN §12: the summary and the destructive actions first)."""
    from datetime import UTC, datetime, timedelta

    from reconciler import freeze

    start = datetime(2026, 6, 28, tzinfo=UTC)
    close = freeze.Freeze(freeze.Occurrence("month-end close", start, start + timedelta(days=6)), None)
    gone = p.Action(p.ActionKind.DELETE, "Old", p.Reason.DELETE_TOMBSTONE)
    tenants = tuple(
        p.TenantPlan("acme", f"t{i:03}", (gone,) if i == 499 else (), (), freeze=close) for i in range(500)
    )
    page = render_html.plan_page(p.Plan(tenants, 10))
    summary = page[: page.index('id="h-destructive"')]
    assert summary.count("Frozen:") == 1 and "Frozen: 500 tenants" in summary
    assert "and 480 more" in summary
    assert page.count("Frozen: change window &quot;month-end close&quot;") == 500  # each section says it


def test_a_portal_value_cannot_read_as_more_values_or_another_change() -> None:
    """The pages joined company ids without quotes ("F0002, F0003" read as two companies, and
    "X] → [Y" as a change of its own) and put a value's own quotes in theirs unescaped: the
    portal's server `gp02" → "gp03` read as "gp01" → "gp02" → "gp03". As the text plan shows
    them: plain ids as they are, any other in quotes it cannot close."""

    class _Text(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.parts: list[str] = []

        def handle_data(self, data: str) -> None:
            self.parts.append(data)

    update = p.Action(
        p.ActionKind.UPDATE,
        "Conn",
        p.Reason.UPDATE_CHANGED,
        changes=(
            p.Change("server", 'gp02" → "gp03', "gp01"),
            p.Change("companies", ["F0001", "F0002, F0003", "X] → [Y"], ["F0001", "X] → [Y"]),
        ),
        status=p.Status.DRIFT,
    )
    plan = p.Plan((p.TenantPlan("acme", "no", (update,), ()),), 10)
    for page in (render_html.plan_page(plan), render_html.drift_page(plan)):
        reader = _Text()
        reader.feed(page)
        shown = " ".join("".join(reader.parts).split())
        assert '"gp02\\" → \\"gp03"' in shown
        assert '[F0001, "F0002, F0003", "X] → [Y"]' in shown
        assert '"gp01" → "gp02" → "gp03"' not in shown and "F0002, F0003, X]" not in shown
