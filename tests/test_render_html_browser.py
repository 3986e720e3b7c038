"""The HTML report in a real browser: Debian's Chromium driven by Playwright, nothing downloaded.

The page is opened from file://; every request the browser makes is recorded (only the page
itself may be fetched). Screenshots are kept in tests/artifacts/ (git-ignored) for a look.
Without /usr/bin/chromium or the playwright package these tests skip with the reason; under
CI=true they fail instead (.ci/run installs both).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler import plan as p
from reconciler import render_html, spec
from tests.conftest import IN_CI
from tests.test_render_html import demo_plan, hostile_plan

R = spec.DependentKind.REPORT

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # the browser fixture skips (or fails under CI) with the reason
    expect = sync_playwright = None  # type: ignore[assignment]

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} not installed (apt-get install chromium)"
    if sync_playwright is None:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    missing = _missing()
    if missing:
        if IN_CI:
            pytest.fail(f"CI=true and {missing}")
        pytest.skip(missing)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


class Opened:
    """A page loaded from a file, with every request, console error and dialog it caused."""

    def __init__(self, browser: Any, path: Path, *, scripts: bool = True) -> None:
        self.url = path.as_uri()
        self.context = browser.new_context(
            java_script_enabled=scripts, viewport={"width": 1100, "height": 900}
        )
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.page = self.context.new_page()
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", self._dialog)
        self.page.goto(self.url, wait_until="load")

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def close(self) -> None:
        self.context.close()
        assert self.requests == [self.url], "the page made a request of its own"
        assert self.errors == [], self.errors  # a CSP violation would show here
        assert self.dialogs == []

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / name
        self.page.screenshot(path=str(path), full_page=True)
        print(f"screenshot: {path}")
        return path


def _write(tmp_path: Path, name: str, page: str) -> Path:
    path = tmp_path / name
    path.write_text(page, encoding="utf-8")
    return path


def _section(opened: Opened, key: str) -> Any:
    return opened.page.locator(f'section[data-key="{key}"]')


def test_filter_expand_and_screenshot(browser: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, "plan.html", render_html.plan_page(demo_plan(tmp_path, monkeypatch)))
    opened = Opened(browser, path)
    page = opened.page
    norway, sweden = _section(opened, "acme/acme-norway"), _section(opened, "acme/acme-sweden")
    nordlys = _section(opened, "nordlys/nordlys-main")
    filter_box = page.get_by_label("Filter by tenant, connection or dependent name")
    assert filter_box.is_visible()
    assert norway.locator("details").first.get_attribute("open") is not None  # changes: open
    assert not sweden.get_by_text("No changes.").is_visible()  # none: collapsed

    filter_box.fill("forecast 2026")  # a dependent's name, any case
    expect(page.locator("#filter-status")).to_have_text("1 of 3 tenants match")
    assert norway.is_visible() and not sweden.is_visible() and not nordlys.is_visible()
    assert norway.get_by_role("heading", name="delete Old NAV").is_visible()
    assert not norway.get_by_role("heading", name="create Visma Business Bergen").is_visible()
    destructive = page.locator("tr[data-ref]")
    assert [row.is_visible() for row in destructive.all()] == [False, True, False]
    assert page.get_by_role("link", name="acme/acme-norway").is_visible()
    assert not page.get_by_role("link", name="acme/acme-sweden").is_visible()

    filter_box.fill("nordlys")  # a tenant: shown whole and opened
    expect(norway).to_be_hidden()
    assert nordlys.is_visible()
    assert nordlys.get_by_text("No changes.").is_visible()

    filter_box.fill("")
    expect(page.locator("#filter-status")).to_have_text("")
    assert norway.is_visible() and sweden.is_visible() and nordlys.is_visible()
    assert not sweden.get_by_text("No changes.").is_visible()  # back to its own state
    sweden.locator("summary").first.click()  # expand a tenant by hand
    assert sweden.get_by_text("No changes.").is_visible()

    shot = opened.screenshot("plan.png")
    assert shot.stat().st_size > 10_000
    opened.close()


def test_readable_without_scripts_and_printed(
    browser: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path, "plan.html", render_html.plan_page(demo_plan(tmp_path, monkeypatch)))
    opened = Opened(browser, path, scripts=False)
    page = opened.page
    assert not page.locator("#filter-box").is_visible()  # useless without scripts: not shown
    norway, sweden = _section(opened, "acme/acme-norway"), _section(opened, "acme/acme-sweden")
    assert norway.get_by_text("Forecast 2026").is_visible()
    sweden.locator("summary").first.click()  # details/summary needs no script
    assert sweden.get_by_text("No changes.").is_visible()
    sweden.locator("summary").first.click()
    page.emulate_media(media="print")  # printing shows collapsed sections too
    assert _section(opened, "nordlys/nordlys-main").get_by_text("No changes.").is_visible()
    opened.screenshot("plan-print.png")
    opened.close()


def test_hostile_names_stay_text_in_the_browser(browser: Any, tmp_path: Path) -> None:
    for kind, render in (("plan", render_html.plan_page), ("drift", render_html.drift_page)):
        opened = Opened(browser, _write(tmp_path, f"hostile-{kind}.html", render(hostile_plan())))
        page = opened.page
        assert page.locator("img").count() == 0
        assert page.locator("script").count() == 1
        assert page.get_by_text("<script>alert(1)</script>").first.is_visible()
        assert page.get_by_text("abcU+202Edcba.exe").first.is_visible()
        opened.screenshot(f"hostile-{kind}.png")
        opened.close()  # no dialog, no request, no error


def test_a_portal_name_with_two_spaces_shows_both(browser: Any, tmp_path: Path) -> None:
    """HTML shows a run of spaces as one: "Two  Spaces" and "Two Spaces" would look alike."""
    tenant = p.TenantPlan("acme", "no", (), ("Two  Spaces",), ())
    opened = Opened(browser, _write(tmp_path, "spaces.html", render_html.plan_page(p.Plan((tenant,), 1, ()))))
    _section(opened, "acme/no").locator("summary").click()  # the tenant's section opens
    assert opened.page.locator("bdi", has_text="Two").first.inner_text() == "Two  Spaces"
    opened.close()


def test_drift_page_in_the_browser(browser: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, "drift.html", render_html.drift_page(demo_plan(tmp_path, monkeypatch)))
    opened = Opened(browser, path)
    page = opened.page
    page.get_by_label("Filter by tenant or connection name").fill("consultant")
    expect(page.locator("#filter-status")).to_have_text("1 of 3 tenants match")
    norway = _section(opened, "acme/acme-norway")
    assert norway.get_by_text("Consultant sandbox").is_visible()
    assert not norway.get_by_text("Old NAV").is_visible()
    opened.screenshot("drift.png")
    opened.close()


def test_the_filter_finds_names_as_the_tool_compares_them_and_shows_the_match(
    browser: Any, tmp_path: Path
) -> None:
    """The filter lower-cased only: `Björn` did not find the portal's decomposed `Bjo\u0308rn Ås`,
    nor `straße` `STRASSE` (one identity each: casefold of NFC). A dependent found in a branch
    of more than OPEN_LEAVES stayed in the closed branch: the tenant matched, nothing showed."""
    many = tuple(p.Cascade(R, f"Report {i:02}", "F0001") for i in range(render_html.OPEN_LEAVES + 10))
    needle = p.Cascade(R, "Quarterly Needle", "F0001")
    delete = p.Action(p.ActionKind.DELETE, "Old", p.Reason.DELETE_TOMBSTONE, cascade=(*many, needle))
    tenants = (
        p.TenantPlan(
            "acme", "bjorn", (p.Action(p.ActionKind.CREATE, "Bjo\u0308rn Ås", p.Reason.CREATE_DECLARED),), ()
        ),
        p.TenantPlan(
            "acme", "strasse", (p.Action(p.ActionKind.CREATE, "STRASSE 1", p.Reason.CREATE_DECLARED),), ()
        ),
        p.TenantPlan("acme", "reports", (delete,), ()),
    )
    opened = Opened(browser, _write(tmp_path, "fold.html", render_html.plan_page(p.Plan(tenants, 10))))
    page = opened.page
    box = page.get_by_label("Filter by tenant, connection or dependent name")
    for query, key, other in (
        ("BJÖRN", "acme/bjorn", "acme/strasse"),
        ("straße", "acme/strasse", "acme/bjorn"),
        ("björn ås", "acme/bjorn", "acme/strasse"),
    ):
        box.fill(query)
        expect(_section(opened, other)).to_be_hidden()
        expect(page.locator("#filter-status")).to_have_text("1 of 3 tenants match")
        assert _section(opened, key).is_visible(), query
    box.fill("quarterly needle")
    expect(_section(opened, "acme/bjorn")).to_be_hidden()
    expect(page.locator("#filter-status")).to_have_text("1 of 3 tenants match")
    assert _section(opened, "acme/reports").get_by_text("Quarterly Needle").is_visible()
    opened.close()


def test_a_long_name_wraps_inside_its_section_and_a_link_lands_below_the_filter_box(
    browser: Any, tmp_path: Path
) -> None:
    """A 161-character portal name without spaces ran past its section (content-visibility clips
    it: not drawn); a link into the page put its target under the sticky filter box."""
    long = "X" * 161
    delete = p.Action(p.ActionKind.DELETE, long, p.Reason.DELETE_TOMBSTONE)
    tenants = (
        *(p.TenantPlan("acme", f"t{i:02}", (), ()) for i in range(40)),
        p.TenantPlan("acme", "zz", (delete,), ()),
    )
    opened = Opened(browser, _write(tmp_path, "long.html", render_html.plan_page(p.Plan(tenants, 10))))
    page = opened.page
    section = _section(opened, "acme/zz").bounding_box()
    name = _section(opened, "acme/zz").locator("bdi", has_text="XXXX").first.bounding_box()
    assert name["x"] + name["width"] <= section["x"] + section["width"]
    link = page.locator("table.destructive a").first
    link.click()
    target = page.locator(f"[id='{link.get_attribute('href')[1:]}']").bounding_box()
    box = page.locator("#filter-box").bounding_box()
    assert target["y"] >= box["y"] + box["height"] - 1  # below the sticky box, not under it
    opened.close()
