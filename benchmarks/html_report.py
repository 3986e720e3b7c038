"""How big the HTML report of a large plan is, and how fast Chromium shows it (docs/html.md).

The plans are built from the benchmark fleet's own tenants (benchmarks.fleet: names, companies,
dependents, templates), rendered by reconciler.render_html, written to files and opened from
file:// in Debian's Chromium through Playwright. Two plans of the fleet (2,000 tenants by default):

- typical: 2% of tenants with one update each, as `make bench`'s "plan, ~2% changed";
- every tenant changed: per tenant a delete (all its companies' dependents cascade, a template
  kept), an update that removes a company (its dependents cascade), a rename and a create.

    .venv/bin/python -m benchmarks.html_report [--tenants 2000] [--repeat 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import fleet, scenario
from reconciler import plan as p
from reconciler import render_html

CHROMIUM = "/usr/bin/chromium"
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


def _cascade(shape: fleet.Shape, companies: list[str]) -> tuple[p.Cascade, ...]:
    return tuple(
        p.Cascade(kind, name, company)
        for company in companies
        for kind, name in fleet.dependents(shape, company)
    )


def _busy_tenant(shape: fleet.Shape, t: int) -> p.TenantPlan:
    conns = fleet.connections(shape, t)
    gone, trimmed, renamed = conns[0], conns[1], conns[2]
    delete = p.Action(
        p.ActionKind.DELETE,
        gone.name,
        p.Reason.DELETE_PRUNED,
        cascade=_cascade(shape, gone.companies),
        kept=(p.Kept(p.KeptKind.REPORT_TEMPLATE, "Template 1"),),
    )
    update = p.Action(
        p.ActionKind.UPDATE,
        trimmed.name,
        p.Reason.UPDATE_CHANGED,
        changes=(p.Change("companies", trimmed.companies, trimmed.companies[1:]),),
        cascade=_cascade(shape, trimmed.companies[:1]),
        status=p.Status.PENDING,
    )
    rename = p.Action(
        p.ActionKind.RENAME,
        renamed.name + " (renamed)",
        p.Reason.RENAME_PREVIOUS_NAME,
        previous_name=renamed.name,
        status=p.Status.PENDING,
    )
    new = scenario._new_connection(t, "new")
    create = p.Action(
        p.ActionKind.CREATE,
        new.name,
        p.Reason.CREATE_DECLARED,
        changes=tuple(
            p.Change(field, None, value)
            for field, value in new.spec().shown().items()
            if value not in (None, False, [])
        ),
    )
    return p.TenantPlan(shape.customer(t), shape.tenant(t), (delete, rename, update, create), ())


def _typical_tenant(shape: fleet.Shape, t: int, busy: set[int]) -> p.TenantPlan:
    if t not in busy:
        return p.TenantPlan(shape.customer(t), shape.tenant(t), (), ())
    conn = fleet.connections(shape, t)[0]
    update = p.Action(
        p.ActionKind.UPDATE,
        conn.name,
        p.Reason.UPDATE_CHANGED,
        status=p.Status.PENDING,
        changes=(p.Change("allow_others_to_edit", conn.allow_others_to_edit, not conn.allow_others_to_edit),),
    )
    return p.TenantPlan(shape.customer(t), shape.tenant(t), (update,), ())


def plans(shape: fleet.Shape) -> dict[str, p.Plan]:
    busy = set(scenario.spread(max(1, round(shape.tenants * scenario.EDIT_SHARE)), 0, shape.tenants))
    return {
        "typical (2% changed)": p.Plan(
            tuple(_typical_tenant(shape, t, busy) for t in range(shape.tenants)), 10
        ),
        "every tenant changed": p.Plan(
            tuple(_busy_tenant(shape, t) for t in range(shape.tenants)),
            10,
            (p.TooManyDeletes(shape.tenants, 10),),
        ),
    }


def _timings(browser: Any, path: Path, tenants: int) -> dict[str, float]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    start = time.perf_counter()
    page.goto(path.as_uri(), wait_until="load")
    wall = time.perf_counter() - start
    marks = page.evaluate("""() => {
        const nav = performance.getEntriesByType('navigation')[0];
        const fcp = performance.getEntriesByName('first-contentful-paint')[0];
        return {fcp: fcp ? fcp.startTime : -1, dcl: nav.domContentLoadedEventEnd,
                load: nav.loadEventEnd};
    }""")
    start = time.perf_counter()
    page.get_by_label("Filter", exact=False).fill(f"tenant-{tenants - 1:05d}")
    status = page.locator("#filter-status")
    while not status.text_content():  # polled from here: the page's CSP forbids eval'd predicates
        if time.perf_counter() - start > 120:
            raise SystemExit("the filter did not answer within 120 s")
        time.sleep(0.02)
    filtered = time.perf_counter() - start
    context.close()
    if requests != [path.as_uri()]:
        raise SystemExit(f"the page made requests of its own: {requests}")
    return {
        "fcp_ms": marks["fcp"],
        "dcl_ms": marks["dcl"],
        "load_ms": marks["load"],
        "goto_s": wall,
        "filter_s": filtered,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="write the pages here and keep them")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    shape = fleet.Shape(tenants=args.tenants)
    out = args.keep or Path(tempfile.mkdtemp(prefix="html-report-"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"fleet: {shape.describe()}")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for label, plan in plans(shape).items():
            start = time.perf_counter()
            page = render_html.plan_page(plan)
            rendered = time.perf_counter() - start
            path = out / (label.split()[0] + ".html")
            path.write_text(page, encoding="utf-8")
            data = page.encode()
            runs = [_timings(browser, path, shape.tenants) for _ in range(args.repeat)]
            med = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
            s = plan.summary
            print(f"\n{label}: {s.changes:,} actions, {s.cascade:,} dependents cascade")
            print(
                f"  page: {len(data) / 2**20:.1f} MiB ({len(data):,} bytes), gzip "
                f"{len(gzip.compress(data)) / 2**20:.2f} MiB; rendered in {rendered:.2f} s"
            )
            print(
                f"  chromium (median of {args.repeat}): first contentful paint {med['fcp_ms']:.0f} ms, "
                f"DOMContentLoaded {med['dcl_ms']:.0f} ms, load {med['load_ms']:.0f} ms; "
                f"filter to one tenant {med['filter_s'] * 1000:.0f} ms (120 ms of it the input debounce)"
            )
        browser.close()
    print(f"\npages in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
