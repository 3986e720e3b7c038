"""Plan -> one self-contained HTML page (plan or drift report). Pure: returns a string.

The page makes no request of its own: CSS and a small filter script are inline and pinned by a
Content-Security-Policy of their hashes, so nothing else can load or run even if a name slipped
through. Every name from a tenant file or the portal goes through `name()`: HTML-escaped,
isolated in <bdi> so that bidirectional text cannot reorder what surrounds it, and control or
format characters (U+202E, zero-width joiners, line breaks) shown visibly as U+XXXX.
Without scripts the page reads the same (details/summary); printing opens every section.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import json
import unicodedata
from collections.abc import Iterable, Sequence

from reconciler import errors, freeze, render, spec, views
from reconciler import plan as p

# A branch of a cascade tree with more leaves than this starts collapsed.
OPEN_LEAVES = 30
# A tenant index longer than this starts collapsed.
OPEN_INDEX = 50
# Sections of tenants with changes start open, the first this many of them: a page of thousands
# of open sections takes a browser many times longer to lay out (docs/html.md); the filter and
# printing open the rest.
OPEN_TENANTS = 100

KIND_LABELS = {
    spec.DependentKind.DATA_ACCESS_FILTER: "data access filter",
    spec.DependentKind.BUDGET_FLOW: "budget flow",
    spec.DependentKind.PUBLISHER_JOB: "publisher job",
    spec.DependentKind.REPORT: "report",
}
_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})

CSS = """\
:root{color-scheme:light;--fg:#1b1f24;--muted:#57606a;--line:#d0d7de;--bg2:#f6f8fa;
--red:#b42318;--green:#1a7f37;--amber:#9a6700;--cyan:#0e7490;--blue:#0b5cad;--magenta:#8250df}
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);
margin:0 auto;max-width:72rem;padding:1rem 1.5rem 3rem}
h1{font-size:1.6rem;margin:.2rem 0 .6rem}h2{font-size:1.25rem;margin:1.6rem 0 .6rem;
border-bottom:1px solid var(--line);padding-bottom:.2rem}h3{font-size:1.05rem;display:inline;margin:0}
h4{font-size:1rem;margin:.2rem 0 .4rem;font-weight:600}h5{font-size:.9rem;margin:.6rem 0 .2rem}
table{border-collapse:collapse;margin:.3rem 0 .8rem}th,td{border:1px solid var(--line);
padding:.25rem .55rem;text-align:left;vertical-align:top}th{background:var(--bg2)}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
code,.v{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.9em}
bdi{unicode-bidi:isolate;white-space:pre-wrap;overflow-wrap:anywhere}[id]{scroll-margin-top:4rem}
.ctl{font:.75em ui-monospace,monospace;color:var(--magenta);
border:1px solid currentColor;border-radius:3px;padding:0 2px;margin:0 1px}
.alert{border-left:4px solid var(--amber);background:#fff8c5;padding:.5rem .8rem;margin:.5rem 0}
.alert.caution{border-color:var(--red);background:#ffebe9}.alert.info{border-color:var(--blue);
background:#ddf4ff}.alert strong{display:block}
.verb{display:inline-block;min-width:4.2rem;font-weight:700;text-transform:uppercase;font-size:.8rem;
letter-spacing:.03em}
.delete .verb{color:var(--red)}.create .verb{color:var(--green)}.update .verb{color:var(--amber)}
.rename .verb{color:var(--cyan)}.adopt .verb{color:var(--blue)}
.badge{display:inline-block;font-size:.75rem;border:1px solid var(--line);border-radius:1rem;
padding:0 .5rem;margin-left:.3rem;color:var(--muted);white-space:nowrap}
.badge.drift,.badge.drift_and_pending,.badge.blocked{color:var(--red);border-color:var(--red)}
.badge.pending{color:var(--amber);border-color:var(--amber)}
.badge.unmanaged{color:var(--blue);border-color:var(--blue)}
section.tenant{border:1px solid var(--line);border-radius:6px;margin:.6rem 0;
content-visibility:auto;contain-intrinsic-size:auto 3rem}
table.destructive{table-layout:fixed;width:100%}table.destructive td{overflow-wrap:anywhere}
table.destructive th:nth-child(1){width:22%}table.destructive th:nth-child(2){width:11%}
table.destructive th:nth-child(3){width:24%}table.destructive th:nth-child(4),
table.destructive th:nth-child(6){width:7%}
section.tenant>details>summary{padding:.5rem .8rem;background:var(--bg2);border-radius:6px}
section.tenant>details>div{padding:.2rem 1rem .6rem}
summary{cursor:pointer}
.action{border-top:1px solid var(--line);padding:.5rem 0}.action:first-child{border-top:0}
.action>h5{font-size:.95rem;margin:.2rem 0 .4rem}.action.blocked{opacity:.85}.blocked-why{color:var(--red)}
ul.tree,ul.tree ul{list-style:none;margin:0;padding-left:1.1rem;border-left:1px dashed var(--line)}
ul.tree{margin:.3rem 0 .3rem .3rem}ul.tree li{margin:.1rem 0}
.count{color:var(--muted);font-size:.85rem;margin-left:.3rem}
.kept{border-left:3px solid var(--green);padding:.1rem .7rem;margin:.4rem 0 .2rem;background:#f0fff4}
.kept ul{margin:.2rem 0;padding-left:1.1rem}
#filter-box{position:sticky;top:0;background:#fff;padding:.5rem 0;z-index:1;
border-bottom:1px solid var(--line)}#filter{font:inherit;padding:.3rem .5rem;width:min(30rem,100%)}
#filter-status{color:var(--muted);margin-left:.6rem}
ul.index{columns:18rem;padding-left:1.2rem}ul.index li{break-inside:avoid}
dl.legend{display:grid;grid-template-columns:max-content 1fr;gap:.2rem .6rem}dl.legend dd{margin:0}
.muted{color:var(--muted)}
[hidden]{display:none!important}
@media print{#filter-box,nav{display:none}body{max-width:none;font-size:11pt}
details::details-content{content-visibility:visible;display:contents}
.action,li{break-inside:avoid}a{color:inherit;text-decoration:none}}
"""

SCRIPT = """\
(function(){
var box=document.getElementById('filter-box');if(!box)return;box.hidden=false;
var input=document.getElementById('filter'),status=document.getElementById('filter-status');
var sections=[].slice.call(document.querySelectorAll('section.tenant')),index=null;
var F=JSON.parse(box.getAttribute('data-fold'));
function fold(s){s=s.normalize('NFC');var o='';for(var c of s)o+=F[c]||c.toLowerCase();
return o.normalize('NFC')}
function names(el){var t=[];el.querySelectorAll('bdi').forEach(function(b){t.push(b.textContent)});
return fold(t.join('\\n'))}
function build(){index=sections.map(function(s){var d=s.querySelector('details');
return{s:s,d:d,open:d.open,key:fold(s.getAttribute('data-key')),
units:[].slice.call(s.querySelectorAll('.f')).map(function(u){return{u:u,t:names(u),
b:[].slice.call(u.querySelectorAll('details')).map(function(b){return{b:b,open:b.open}})}})}})}
function apply(){var q=fold(input.value.trim());if(!index)build();var shown=0;
index.forEach(function(e){var all=!q||e.key.indexOf(q)>=0,any=all;
e.units.forEach(function(x){var hit=all||x.t.indexOf(q)>=0;x.u.hidden=!hit;any=any||hit;
x.b.forEach(function(y){y.b.open=y.open||(hit&&!all&&names(y.b).indexOf(q)>=0)})});
e.s.hidden=!any;if(any)shown++;e.d.open=q?any:e.open});
document.querySelectorAll('[data-ref]').forEach(function(r){var t=document.getElementById(
r.getAttribute('data-ref'));r.hidden=!!(t&&t.closest('[hidden]'))});
status.textContent=q?shown+' of '+index.length+' tenants match':''}
var timer=0;input.addEventListener('input',function(){clearTimeout(timer);timer=setTimeout(apply,120)});
var opened=[];window.addEventListener('beforeprint',function(){
document.querySelectorAll('details:not([open])').forEach(function(d){d.open=true;opened.push(d)})});
window.addEventListener('afterprint',function(){opened.forEach(function(d){d.open=false});opened=[]});
})();
"""


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


CSP = (
    f"default-src 'none'; style-src '{_sha256(CSS)}'; script-src '{_sha256(SCRIPT)}'; "
    "img-src 'none'; base-uri 'none'; form-action 'none'"
)


# ---------------------------------------------------------------------------------------------
# Inert text


def esc(text: str) -> str:
    """Escape text for HTML content or a quoted attribute; control characters shown as U+XXXX."""
    if spec.visible(text):
        return html.escape(text, quote=True)
    out = []
    for ch in text:
        if ch != " " and (unicodedata.category(ch) in _INVISIBLE or spec.UNSEEN.match(ch)):
            out.append(f'<span class="ctl" title="invisible character">U+{ord(ch):04X}</span>')
        else:
            out.append(html.escape(ch, quote=True))
    return "".join(out)


def name(text: str) -> str:
    """A name from a tenant file or the portal: escaped and isolated from the text around it."""
    return f"<bdi>{esc(text)}</bdi>"


def _value(v: object) -> str:
    if isinstance(v, list | tuple) and v:  # company ids: one id with ", " or "] → [" must not read as two
        return "[" + ", ".join(_company(str(x)) for x in v) + "]"
    if isinstance(v, str):  # as written, what does not show as U+XXXX (render.value's \\n is two characters)
        return f'<span class="v">{_in_quotes(v)}</span>'
    return f'<span class="v">{name(render.value(v))}</span>'


def _in_quotes(text: str) -> str:
    """text in double quotes it cannot close, as the text plan quotes a value: a portal's server
    `gp02" → "gp03` read as a change of its own ("gp01" → "gp02" → "gp03")."""
    return f"<bdi>&quot;{esc(text.replace(chr(34), chr(92) + chr(34)))}&quot;</bdi>"


def _company(company_id: str) -> str:
    """A company id as is when it is plain (F0001), else in quotes (render._company)."""
    return name(company_id) if render.plain_id(company_id) else _in_quotes(company_id)


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def _badge(text: str, cls: str = "") -> str:
    return f'<span class="badge {cls}">{esc(text)}</span>'


def _status(status: p.Status | None) -> str:
    return _badge(status.value.replace("_", " "), status.value) if status else ""


def _tenant_id(t: p.TenantPlan) -> str:
    return "t-" + t.key


def _action_id(ti: int, ai: int) -> str:
    return f"a-{ti}-{ai}"


# ---------------------------------------------------------------------------------------------
# The page


@functools.cache
def _fold_table() -> str:
    """What the filter's fold() needs beyond toLowerCase() to compare names as the tool does
    (spec.identity: casefold of NFC): the characters whose case folding is not their lower
    case (`ß` is `ss`, `ς` is `σ`, `ﬁ` is `fi`), all in the BMP: JSON (every character beyond
    ASCII escaped), the filter box's data-fold attribute."""
    fold = {
        chr(code): chr(code).casefold()
        for code in range(0x80, 0x10000)
        if not 0xD800 <= code < 0xE000 and chr(code).casefold() != chr(code).lower()
    }
    return json.dumps(fold, separators=(",", ":"))


def _page(title: str, body: Sequence[str]) -> str:
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            '<meta name="referrer" content="no-referrer">',
            f"<title>{esc(title)}</title>",
            f"<style>{CSS}</style>",
            "</head>",
            "<body>",
            "<main>",
            f"<h1>{esc(title)}</h1>",
            *body,
            "</main>",
            f"<script>{SCRIPT}</script>",
            "</body>",
            "</html>",
            "",
        ]
    )


def _filter_box(what: str) -> list[str]:
    return [
        f'<div id="filter-box" role="search" data-fold="{esc(_fold_table())}" hidden>',
        f'<label for="filter">Filter by {esc(what)}</label> ',
        '<input id="filter" type="search" autocomplete="off" spellcheck="false">',
        '<span id="filter-status" aria-live="polite"></span>',
        "</div>",
    ]


def _alert(kind: str, head: str, text: str = "") -> str:
    role = ' role="alert"' if kind == "caution" else ""
    body = f" {text}" if text else ""
    return f'<div class="alert {kind}"{role}><strong>{head}</strong>{body}</div>'


def _index(tenants: Sequence[p.TenantPlan], counts: Sequence[str]) -> list[str]:
    opened = " open" if len(tenants) <= OPEN_INDEX else ""
    busy = sum(1 for c in counts if c)
    lines = [
        '<nav aria-labelledby="h-index">',
        '<h2 id="h-index">Tenants</h2>',
        f"<details{opened}><summary>{_plural(len(tenants), 'tenant')}, {busy:,} with differences</summary>",
        '<ul class="index">',
    ]
    for t, count in zip(tenants, counts, strict=True):
        lines.append(
            f'<li data-ref="{esc(_tenant_id(t))}"><a href="#{esc(_tenant_id(t))}">'
            f'{name(t.key)}</a> <span class="muted">{esc(count or "no differences")}'
            "</span></li>"
        )
    lines += ["</ul>", "</details>"]
    if busy > OPEN_TENANTS:
        lines.append(
            f"<p>The sections of the first {OPEN_TENANTS} tenants with differences start "
            "open, the others closed: the filter, a click or printing opens them.</p>"
        )
    lines.append("</nav>")
    return lines


def _tenant_section(t: p.TenantPlan, summary: str, busy: bool, body: Sequence[str]) -> list[str]:
    opened = " open" if busy else ""
    return [
        f'<section class="tenant" id="{esc(_tenant_id(t))}" data-key="{esc(t.key)}" '
        f'aria-label="{esc(t.key)}">',
        f"<details{opened}><summary><h3>{name(t.key)}</h3> "
        f'<span class="count">{esc(summary)}</span></summary>',
        "<div>",
        *_freeze_lines(t),
        *body,
        "</div>",
        "</details>",
        "</section>",
    ]


# ---------------------------------------------------------------------------------------------
# Cascade trees


def _branch(label: str, leaves: int, children: Sequence[str], *, force_open: bool = False) -> str:
    opened = " open" if force_open or leaves <= OPEN_LEAVES else ""
    inner = "".join(children)
    return (
        f'<li><details{opened}><summary>{label} <span class="count">{leaves:,}</span></summary>'
        f"<ul>{inner}</ul></details></li>"
    )


def _company_branch(company: str, items: Sequence[p.Cascade], *, removed: bool) -> str:
    if not items:
        return f'<li>company {name(company)} <span class="count">no dependents</span></li>'
    kinds = []
    for kind in spec.DependentKind:
        names = [c.name for c in items if c.kind is kind]
        if names:
            kinds.append(
                _branch(esc(KIND_LABELS[kind] + "s"), len(names), [f"<li>{name(n)}</li>" for n in names])
            )
    label = ("removed company " if removed else "company ") + name(company)
    return _branch(label, len(items), kinds)


def removed_companies(a: p.Action) -> list[str]:
    """Companies an update, rename or adopt takes off the connection (from its companies change)."""
    if a.action is p.ActionKind.DELETE:
        return []
    for c in a.changes:
        if (
            c.field == "companies"
            and isinstance(c.before, list | tuple)
            and isinstance(c.after, list | tuple)
        ):
            after = {str(x).casefold() for x in c.after}
            return [str(x) for x in c.before if str(x).casefold() not in after]
    return []


def cascade_tree(a: p.Action) -> list[str]:
    """connection → company → dependents by kind, counts on every branch; kept templates apart."""
    deleting = a.action is p.ActionKind.DELETE
    companies: dict[str, list[p.Cascade]] = {}
    for company in removed_companies(a):
        companies.setdefault(company, [])
    for c in a.cascade:
        companies.setdefault(c.company, []).append(c)
    lines: list[str] = []
    if companies:
        branches = [
            _company_branch(company, items, removed=not deleting)
            for company, items in sorted(companies.items(), key=lambda kv: kv[0].casefold())
        ]
        verb = "would delete" if a.blocked else "deletes"
        label = f"connection {name(a.connection)} {verb}"
        lines.append(
            f'<ul class="tree" aria-label="What {esc(a.action.value)} takes with it">'
            + _branch(label, len(a.cascade), branches, force_open=True)
            + "</ul>"
        )
    if a.kept:
        lines += [
            '<div class="kept">',
            f"<h5>Kept, detached from the connection ({len(a.kept):,})</h5>",
            "<ul>",
        ]
        lines += [f"<li>{esc(k.kind.replace('_', ' '))} {name(k.name)}</li>" for k in a.kept]
        lines += ["</ul>", "</div>"]
    return lines


# ---------------------------------------------------------------------------------------------
# Plan


def _changes_table(a: p.Action) -> list[str]:
    create = a.action is p.ActionKind.CREATE
    shown = [c for c in a.changes if not (c.field == "name" and a.previous_name is not None)]
    if not shown:
        return []
    head = (
        "<tr><th>field</th><th>value</th></tr>"
        if create
        else "<tr><th>field</th><th>now (portal)</th><th>after apply</th></tr>"
    )
    rows = []
    for c in shown:
        if c.sensitive:
            what = c.note or ("sensitive value" if create else "sensitive value changed")
            span = "" if create else ' colspan="2"'
            rows.append(f"<tr><td><code>{esc(c.field)}</code></td><td{span}><em>{esc(what)}</em></td></tr>")
        elif create:
            rows.append(f"<tr><td><code>{esc(c.field)}</code></td><td>{_value(c.after)}</td></tr>")
        else:
            rows.append(
                f"<tr><td><code>{esc(c.field)}</code></td><td>{_value(c.before)}</td>"
                f"<td>{_value(c.after)}</td></tr>"
            )
    return ['<table class="changes">', f"<thead>{head}</thead>", "<tbody>", *rows, "</tbody>", "</table>"]


def _headline(a: p.Action) -> str:
    if a.action is p.ActionKind.RENAME:
        what = f"{name(a.previous_name or '')} → {name(a.connection)}"
    else:
        what = name(a.connection)
    blocked = _badge("blocked", "blocked") if a.blocked else ""
    return f'<span class="verb">{esc(a.action.value)}</span> {what}{_status(a.status)}{blocked}'


def action_html(a: p.Action, anchor: str) -> list[str]:
    cls = f"action f {a.action.value}" + (" blocked" if a.blocked else "")
    lines = [f'<article class="{cls}" id="{anchor}">', f"<h4>{_headline(a)}</h4>"]
    if a.blocked:
        lines.append(f'<p class="blocked-why">Blocked, never carried out: {esc(a.blocked)}</p>')
    lines += _changes_table(a)
    if a.needs_secret:
        lines.append(f"<p>Needs the password from <code>{esc(a.needs_secret)}</code> to apply.</p>")
    lines += cascade_tree(a)
    lines.append("</article>")
    return lines


def _tenant_extras(t: p.TenantPlan) -> list[str]:
    lines = []
    if t.unmanaged:
        lines += ["<h4>Unmanaged</h4>", "<ul>"]
        lines += [
            f'<li class="f">{name(n)} <span class="muted">not declared, not managed: never '
            "deleted</span></li>"
            for n in t.unmanaged
        ]
        lines.append("</ul>")
    if t.notes:
        lines += ["<h4>Notes</h4>", "<ul>", *[f"<li>{esc(note)}</li>" for note in t.notes], "</ul>"]
    if t.checks:
        lines += ["<h4>Source checks</h4>", "<ul>"]
        for check in t.checks:
            if check.ok:
                lines.append(
                    f'<li class="f">{name(check.connection)}: server, login, companies and rights OK</li>'
                )
            else:
                lines += [f'<li class="f blocked-why">{esc(problem)}</li>' for problem in check.problems]
        lines.append("</ul>")
    return lines


def _destructive(plan: p.Plan) -> list[str]:
    rows = []
    for ti, t in enumerate(plan.tenants):
        for ai, a in enumerate(t.actions):
            if not (a.action is p.ActionKind.DELETE or a.cascade or a.blocked):
                continue
            by_kind = ", ".join(
                _plural(sum(1 for c in a.cascade if c.kind is kind), KIND_LABELS[kind])
                for kind in spec.DependentKind
                if any(c.kind is kind for c in a.cascade)
            )
            state = _badge("blocked", "blocked") if a.blocked else ""
            if a.blocked and by_kind:  # shown, never done: it deletes nothing (the summary's count)
                by_kind = f"would delete {by_kind}"
            rows.append(
                f'<tr data-ref="{_action_id(ti, ai)}"><td>{name(t.key)}</td>'
                f'<td class="{esc(a.action.value)}"><span class="verb">{esc(a.action.value)}'
                f'</span>{state}</td><td><a href="#{_action_id(ti, ai)}">{name(a.connection)}'
                f'</a></td><td class="num">{0 if a.blocked else len(a.cascade):,}</td><td>{esc(by_kind)}</td>'
                f'<td class="num">{len(a.kept):,}</td></tr>'
            )
    if not rows:
        return ['<h2 id="h-destructive">Destructive actions</h2>', "<p>None.</p>"]
    return [
        '<section aria-labelledby="h-destructive">',
        '<h2 id="h-destructive">Destructive actions</h2>',
        "<p>Each links to its tree of what it takes with it.</p>",
        '<table class="destructive">',
        "<thead><tr><th>tenant</th><th>action</th><th>connection</th>"
        '<th class="num">deletes</th><th>by kind</th><th class="num">kept</th></tr></thead>',
        "<tbody>",
        *rows,
        "</tbody>",
        "</table>",
        "</section>",
    ]


def _plan_summary(plan: p.Plan) -> list[str]:
    s = plan.summary
    cells = [
        ("create", s.create),
        ("update", s.update),
        ("rename", s.rename),
        ("adopt", s.adopt),
        ("delete", s.delete),
        ("cascading deletions", s.cascade),
        ("blocked", s.blocked),
    ]
    lines = [
        '<section aria-labelledby="h-summary">',
        '<h2 id="h-summary">Summary</h2>',
        "<table>",
        "<thead><tr>" + "".join(f'<th class="num">{esc(k)}</th>' for k, _ in cells) + "</tr></thead>",
        "<tbody><tr>" + "".join(f'<td class="num">{n:,}</td>' for _, n in cells) + "</tr></tbody>",
        "</table>",
        f"<p><strong>{esc(render.summary_line(plan))}</strong></p>",
    ]
    for reason in plan.mass_delete:
        lines.append(_alert("caution", "Needs --allow-mass-delete", esc(str(reason))))
    if s.cascade:
        lines.append(
            _alert("warning", "Needs --allow-cascade", f"{_plural(s.cascade, 'dependent')} would be deleted.")
        )
    if s.blocked:
        lines.append(_alert("info", f"{_plural(s.blocked, 'action')} blocked", "shown, never carried out."))
    lines += _freeze_alerts(plan)
    failed = plan.failed_checks
    if failed:
        problems = "".join(
            f"<li>{name(t.key)}: {esc(problem)}</li>" for t, c in failed for problem in c.problems
        )
        lines.append(
            _alert(
                "caution",
                f"Source checks failed for {_plural(len(failed), 'connection')}",
                f"apply refuses without --skip-source-checks.<ul>{problems}</ul>",
            )
        )
    lines.append("</section>")
    return lines


MOST_FROZEN_NAMED = 20  # tenants a change window's alert names; each tenant's section says the rest


def _freeze_alerts(plan: p.Plan) -> list[str]:
    """The change windows open now and next (DESIGN §11), one alert each with the tenants it
    holds: an alert per tenant put 500 "Frozen" alerts of one month-end window before the
    destructive actions. Each tenant's own windows are in its section (_freeze_lines)."""
    held: dict[tuple[bool, freeze.Occurrence], list[str]] = {}
    soon: set[freeze.Occurrence] = set()
    for t in plan.tenants:
        if t.freeze is not None and t.freeze.active is not None:
            held.setdefault((True, t.freeze.active), []).append(t.key)
        if t.freeze is not None and t.freeze.upcoming is not None:
            held.setdefault((False, t.freeze.upcoming), []).append(t.key)
            if t.freeze.soon:
                soon.add(t.freeze.upcoming)
    lines = []
    for (active, o), keys in held.items():
        named = errors.some_of([name(k) for k in keys], MOST_FROZEN_NAMED)
        if active:
            text = (
                f"{esc(freeze.until_text(o))}; apply refuses their changes without "
                f"--override-freeze REASON: {named}."
            )
            lines.append(_alert("warning", f"Frozen: {_plural(len(keys), 'tenant')}", text))
        else:
            lines.append(
                _alert(
                    "warning" if o in soon else "info",
                    f"Change window {'within a week' if o in soon else 'ahead'}: "
                    + _plural(len(keys), "tenant"),
                    f"{esc(freeze.opens_text(o))}: {named}.",
                )
            )
    return lines


def _freeze_lines(t: p.TenantPlan) -> list[str]:
    """A tenant's own change windows, in its section."""
    f = t.freeze
    lines = []
    if f is not None and f.active is not None:
        lines.append(
            f'<p class="blocked-why">Frozen: {esc(freeze.until_text(f.active))}; apply refuses this '
            "tenant's changes without --override-freeze REASON.</p>"
        )
    if f is not None and f.upcoming is not None:
        lines.append(f'<p class="muted">Next: {esc(freeze.opens_text(f.upcoming))}.</p>')
    return lines


def plan_page(plan: p.Plan) -> str:
    """The plan as one page: summary and destructive actions first, then a section per tenant."""
    counts = [render.tenant_counts(t) for t in plan.tenants]
    body = [
        *_plan_summary(plan),
        *_destructive(plan),
        *_index(plan.tenants, counts),
        '<section aria-labelledby="h-tenants">',
        '<h2 id="h-tenants">Per tenant</h2>',
        *_filter_box("tenant, connection or dependent name"),
    ]
    opened = 0
    for ti, (t, count) in enumerate(zip(plan.tenants, counts, strict=True)):
        opened += bool(t.actions)
        inner: list[str] = []
        for ai, a in enumerate(t.actions):
            inner += action_html(a, _action_id(ti, ai))
        if not t.actions:
            inner.append("<p>No changes.</p>")
        inner += _tenant_extras(t)
        body += _tenant_section(t, count or "no changes", bool(t.actions) and opened <= OPEN_TENANTS, inner)
    body.append("</section>")
    return _page("osr-reconciler plan", body)


# ---------------------------------------------------------------------------------------------
# Drift


_DRIFT_WORDS = {
    p.DriftStatus.DRIFT: "changed in the portal since the last apply",
    p.DriftStatus.PENDING: "changed in git, not applied yet",
    p.DriftStatus.DRIFT_AND_PENDING: "changed in the portal and in git: a conflict",
    p.DriftStatus.UNMANAGED: "in the portal, not declared and not managed",
}


def _drift_fields(a: p.Action, status: p.DriftStatus) -> list[str]:
    """Each differing field: in the portal, and in the files, and which way it moved."""
    shown = [c for c in a.changes if c.field != "name" or a.previous_name is None]
    if not shown or a.action in (p.ActionKind.CREATE, p.ActionKind.DELETE):
        return []
    rows = []
    for c in shown:
        if c.sensitive:
            rows.append(
                f'<tr><td><code>{esc(c.field)}</code></td><td colspan="2"><em>'
                f"{esc(c.note or 'sensitive value differs')}</em></td></tr>"
            )
        elif status is p.DriftStatus.DRIFT:  # what was applied is what the files still say
            rows.append(
                f"<tr><td><code>{esc(c.field)}</code></td><td>{_value(c.after)} → "
                f'{_value(c.before)}</td><td class="muted">files unchanged</td></tr>'
            )
        else:
            rows.append(
                f"<tr><td><code>{esc(c.field)}</code></td><td>{_value(c.before)}</td>"
                f"<td>{_value(c.after)}</td></tr>"
            )
    head = (
        "<tr><th>field</th><th>in the portal (applied → now)</th><th>in git</th></tr>"
        if status is p.DriftStatus.DRIFT
        else "<tr><th>field</th><th>in the portal now</th><th>in git</th></tr>"
    )
    return ['<table class="changes">', f"<thead>{head}</thead>", "<tbody>", *rows, "</tbody>", "</table>"]


def _drift_headline(a: p.Action, status: p.DriftStatus) -> str:
    if a.action is p.ActionKind.RENAME and status is p.DriftStatus.DRIFT:
        return (
            f"renamed in the portal from {name(a.connection)} to {name(a.previous_name or '')}"
            ' <span class="muted">(the plan renames it back)</span>'
        )
    if a.action is p.ActionKind.RENAME:
        return f"rename {name(a.previous_name or '')} → {name(a.connection)}"
    words = {
        p.ActionKind.CREATE: "declared in git, missing in the portal: create",
        p.ActionKind.DELETE: "git deletes it",
        p.ActionKind.ADOPT: "declared in git, unmanaged: adopt",
        p.ActionKind.UPDATE: "fields differ",
    }
    return f'{name(a.connection)} <span class="muted">{esc(words[a.action])}</span>'


def drift_page(plan: p.Plan) -> str:
    """The drift report as one page: what changed in the portal, in git, or both, per tenant."""
    obj = render.drift_obj(plan)
    s = obj["summary"]
    body = [
        '<section aria-labelledby="h-summary">',
        '<h2 id="h-summary">Summary</h2>',
        "<table>",
        "<thead><tr>"
        + "".join(f'<th class="num">{esc(k.replace("_", " "))}</th>' for k in s)
        + "</tr></thead>",
        "<tbody><tr>" + "".join(f'<td class="num">{n:,}</td>' for n in s.values()) + "</tr></tbody>",
        "</table>",
        '<dl class="legend">',
    ]
    body += [f"<dt>{_badge(k.replace('_', ' '), k)}</dt><dd>{esc(v)}</dd>" for k, v in _DRIFT_WORDS.items()]
    body.append("</dl>")
    if s["drift_and_pending"]:
        body.append(
            _alert(
                "caution",
                f"{_plural(s['drift_and_pending'], 'conflict')}",
                "changed on both sides: decide which to keep before apply or drift --write.",
            )
        )
    body += _freeze_alerts(plan)
    body.append("</section>")
    counts = []
    for tenant in obj["tenants"]:
        by: dict[str, int] = {}
        for item in tenant["connections"]:
            by[item["status"]] = by.get(item["status"], 0) + 1
        counts.append(", ".join(f"{n:,} {k.replace('_', ' ')}" for k, n in by.items()))
    body += [
        *_index(plan.tenants, counts),
        '<section aria-labelledby="h-tenants">',
        '<h2 id="h-tenants">Per tenant</h2>',
        *_filter_box("tenant or connection name"),
    ]
    opened = 0
    for t, items, count in zip(plan.tenants, obj["tenants"], counts, strict=True):
        opened += bool(count)
        body += _tenant_section(
            t,
            count or "no differences",
            bool(count) and opened <= OPEN_TENANTS,
            _drift_tenant(t, items["connections"]),
        )
    body.append("</section>")
    return _page("osr-reconciler drift", body)


_DRIFT_GROUPS = (
    ("portal", "Changed in the portal"),
    ("renamed", "Renamed in the portal"),
    ("pending", "Pending in git"),
    ("unmanaged", "Unmanaged in the portal"),
)


def _drift_group(a: p.Action | None, status: p.DriftStatus) -> str:
    if a is None:
        return "unmanaged"
    if status is p.DriftStatus.PENDING:
        return "pending"
    return "renamed" if a.action is p.ActionKind.RENAME else "portal"


def _drift_tenant(t: p.TenantPlan, items: Iterable[views.DriftItemJSON]) -> list[str]:
    """The tenant's differences grouped: portal changes, portal renames, pending, unmanaged."""
    groups: dict[str, list[str]] = {key: [] for key, _ in _DRIFT_GROUPS}
    actions = list(t.actions)
    for i, item in enumerate(items):  # render.drift_items: one per action, then the unmanaged
        status = item["status"]
        a = actions[i] if i < len(actions) else None
        badge = _badge(status.replace("_", " "), status)
        if a is None:
            words = esc(_DRIFT_WORDS[p.DriftStatus.UNMANAGED])
            entry = [
                f'<article class="action f"><h5>{name(item["connection"])}{badge}</h5>'
                f'<p class="muted">{words}: never deleted.</p></article>'
            ]
        else:
            entry = [
                f'<article class="action f {esc(a.action.value)}">',
                f"<h5>{_drift_headline(a, status)}{badge}</h5>",
                *_drift_fields(a, status),
                "</article>",
            ]
        groups[_drift_group(a, status)] += entry
    lines: list[str] = []
    for key, title in _DRIFT_GROUPS:
        if groups[key]:
            lines += [f"<h4>{esc(title)}</h4>", *groups[key]]
    if t.name_notes:  # two names that look the same, a rename onto a look-alike (DESIGN §8)
        lines += ["<h4>Notes</h4>", "<ul>", *[f"<li>{esc(note)}</li>" for note in t.name_notes], "</ul>"]
    return lines or ["<p>No differences.</p>"]
