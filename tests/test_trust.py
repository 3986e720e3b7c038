"""Trust at the edges: one identity per name, inert names in every output, bounded comments,
portal renames, unique password variables, git refs that stay refs (DESIGN §2, §5, §7, §8).

Pure functions are tested in-process with literal tables; what crosses the store or the
process boundary runs through the console script on SQLite, PostgreSQL and MariaDB.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import string
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler import envnames, freeze, render, spec, store
from reconciler import plan as p
from tests.conftest import (
    CANARY_ENV,
    TEST_KEY,
    Cli,
    base_env,
    git,
    private_database,
    require_server,
    reset_server,
)
from tests.inert import HOSTILE, assert_markdown_inert, assert_text_inert
from tests.test_cli import dump


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


# ---------------------------------------------------------------------------------------------
# One identity per name


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("Bjørn Ås", nfd("Bjørn Ås"), True),
        ("Visma Oslo", "VISMA OSLO", True),
        ("Straße", "STRASSE", True),
        ("Å1", nfd("å1"), True),
        ("Résumé", "Resume", False),  # MariaDB's default collation says equal; people do not
        ("Å1", "A1", False),
        ("F0001", "F0001 ", False),
    ],
)
def test_identity(a: str, b: str, same: bool) -> None:
    assert (spec.identity(a) == spec.identity(b)) is same
    assert (spec.identity_key(a) == spec.identity_key(b)) is same
    assert set(spec.identity_key(a)) <= set(string.hexdigits.lower())


@pytest.mark.parametrize(
    ("portal", "declared", "same"),
    [
        ("Trail ", "Trail", True),
        ("Zero\u200bWidth", "ZeroWidth", True),
        ("No\u00a0Break", "No Break", True),
        ("Oslo\u3164", "OSLO", True),
        ("Oslo\u2800GP", "Oslo GP", True),  # the braille blank shows as a space
        ("Oslo  GP", "Oslo GP", True),  # HTML, and so a pull request's page, shows two as one
        ("Oslo \u00a0\tGP", "oslo gp", True),
        ("\u202eOslo\n", "oslo", True),
        (nfd("Bjørn Ås "), "Bjørn Ås", True),
        ("Résumé ", "Resume", False),  # what shows differs
        ("Oslo 2", "Oslo", False),
    ],
)
def test_what_a_person_sees_of_a_name(portal: str, declared: str, same: bool) -> None:
    assert (spec.seen_identity(portal) == spec.seen_identity(declared)) is same
    assert spec.identity(portal) != spec.identity(declared)  # two names to the store


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("Visma Oslo", None),
        ("Bjørn Ås", None),
        (" Visma", "has white space at the start or end"),
        ("Visma\u00a0", "has white space at the start or end"),
        ("Vis\nma", "contains a line break (U+000A)"),
        ("Vis\u2028ma", "contains a line break (U+2028)"),
        ("Vis\tma", "contains a tab (U+0009)"),
        ("Vis\u202ema", "contains a bidirectional control (U+202E)"),
        ("Vis\u200fma", "contains a bidirectional control (U+200F)"),
        ("Vis\u200bma", "contains an invisible (zero-width or format) character (U+200B)"),
        ("Vis\u00a0ma", "contains a space other than the plain space (U+00A0)"),
        ("Visma  Oslo", "has two spaces in a row, which show as one; write one space"),
        ("Vis\x1bma", "contains a control character (U+001B)"),
        # printable to str.isprintable(), yet they show nothing
        ("Oslo\u034f", "contains a character that shows nothing (U+034F)"),
        ("Oslo\u3164", "contains a character that shows nothing (U+3164)"),
        ("Os\u2800lo", "contains a character that shows nothing (U+2800)"),
        ("Oslo\ufe0f", "contains a character that shows nothing (U+FE0F)"),
        ("Oslo\uffa0", "contains a character that shows nothing (U+FFA0)"),
        ("Oslo\U000e0100", "contains a character that shows nothing (U+E0100)"),
    ],
)
def test_name_problem(name: str, problem: str | None) -> None:
    found = spec.name_problem(name)
    assert (found is None) if problem is None else (found is not None and found.startswith(problem))


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("SQL01\\VISMA", "sql01\\visma", True),
        ("host,1433", "HOST", True),
        ("host,01433", "host", True),
        ("[2001:db8::5],1433", "2001:db8::5", True),
        ("[2001:DB8:0::5]", "2001:db8::5", True),
        (".\\SQLEXPRESS", "localhost\\SQLEXPRESS", True),
        ("(local)\\SQLEXPRESS", "LOCALHOST\\sqlexpress", True),
        ("tcp:host,1433", "host", True),
        ("host\\INST,1433", "host\\INST", False),  # a port bypasses the SQL Browser
        ("host,1434", "host", False),
        ("host\\A", "host\\B", False),
    ],
)
def test_servers_compare_as_sql_server_reaches_them(a: str, b: str, same: bool) -> None:
    assert (spec.normalize_server(a) == spec.normalize_server(b)) is same


def test_natural_order() -> None:
    assert sorted(["S11", "s2", "S1", "F0010", "F0002"], key=spec.natural_key) == [
        "F0002",
        "F0010",
        "S1",
        "s2",
        "S11",
    ]


def test_password_variables_are_unique_and_stable() -> None:
    names = ["Visma Oslo", "Visma-Oslo", "Øslo", "Ôslo", "東京", "Bergen"]
    first = envnames.password_variables("acme", "acme-norway", names, "OSR_")
    again = envnames.password_variables("acme", "acme-norway", list(reversed(names)), "OSR_")
    assert first == again
    assert len(set(first.values())) == len(names)
    assert first["Bergen"] == "OSR_ACME_ACME_NORWAY_BERGEN_PASSWORD"
    assert all(v.isascii() and v.replace("_", "").isalnum() for v in first.values())


# ---------------------------------------------------------------------------------------------
# Every name inert, every comment bounded

R = spec.DependentKind.REPORT


def _hostile_plan() -> p.Plan:
    cascade = tuple(p.Cascade(R, name, name) for name in HOSTILE)
    actions = (
        p.Action(
            p.ActionKind.DELETE,
            "Old",
            p.Reason.DELETE_TOMBSTONE,
            cascade=cascade,
            kept=tuple(p.Kept("report_template", n) for n in HOSTILE),
        ),
        p.Action(
            p.ActionKind.DELETE,
            HOSTILE[1],
            p.Reason.DELETE_PRUNED,
            blocked="protected: x",
            cascade=cascade[:2],
        ),
        p.Action(
            p.ActionKind.RENAME,
            "Declared",
            p.Reason.RENAME_PORTAL,
            previous_name=HOSTILE[0],
            changes=(p.Change("name", HOSTILE[0], "Declared"),),
            status=p.Status.DRIFT,
            renamed_in_portal=("Declared", HOSTILE[0]),
        ),
        p.Action(
            p.ActionKind.UPDATE,
            "Server",
            p.Reason.UPDATE_CHANGED,
            changes=(p.Change("server", HOSTILE[4], "b"), p.Change("companies", HOSTILE, [])),
        ),
    )
    return p.Plan((p.TenantPlan("acme", "no", actions, tuple(HOSTILE), tuple(HOSTILE)),), 10)


def test_hostile_names_are_inert_in_text() -> None:
    out = render.text(_hostile_plan())
    assert_text_inert(out)
    assert '"Q1\\n```\\n## Nothing is deleted by this plan"' in out
    assert '"name\\u202eexe.ssalc"' in out
    # Every line is one the renderer made: the names added none.
    assert len(out.splitlines()) == len(render.text(_hostile_plan()).splitlines())
    assert "would cascade (2 dependents; none deleted while blocked):" in out


def test_hostile_names_are_inert_in_markdown() -> None:
    out = render.markdown(_hostile_plan())
    assert_markdown_inert(out, headings={"osr-reconciler plan", "Destructive actions"}, sections=1)
    assert "Nothing is deleted by this plan" not in [
        t.content for t in __import__("tests.inert").inert.tokens(out) if t.type == "inline"
    ]


def test_hostile_names_are_inert_in_the_drift_report() -> None:
    out = render.drift_text(_hostile_plan(), markdown_out=True)
    tokens = __import__("tests.inert").inert.tokens(out)
    assert not [t for t in tokens if t.type in ("link_open", "image", "html_inline", "html_block")]
    assert {tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"} == {
        "osr-reconciler drift",
        "`acme/no`",
    }
    assert_text_inert(render.drift_text(_hostile_plan()))


def test_allowed_flags_change_what_the_plan_says() -> None:
    plan = _hostile_plan()
    assert "Needs --allow-cascade" in render.text(plan)
    allowed = render.text(plan, allowed=render.Allowed(cascade=True))
    assert "Needs --allow-cascade" not in allowed
    assert f"Allowed by --allow-cascade: {len(HOSTILE)} dependents would be deleted" in allowed


_names = st.one_of(st.sampled_from(HOSTILE), st.text(min_size=1, max_size=200))


@st.composite
def _plans(draw: st.DrawFn) -> p.Plan:
    tenants = []
    for i in range(draw(st.integers(1, 60))):
        actions = []
        for _ in range(draw(st.integers(0, 4))):
            kind = draw(st.sampled_from(list(p.ActionKind)))
            cascade = tuple(
                p.Cascade(draw(st.sampled_from(list(spec.DependentKind))), draw(_names), draw(_names))
                for _ in range(draw(st.integers(0, 40)))
            )
            actions.append(
                p.Action(
                    kind,
                    draw(_names),
                    p.Reason.DELETE_TOMBSTONE,
                    cascade=cascade,
                    blocked=draw(st.one_of(st.none(), _names)),
                )
            )
        repeat = draw(st.integers(1, 40))  # thousands of tenants without drawing each
        tenant_length = draw(st.integers(0, 190))
        tenants += [
            p.TenantPlan(
                "c" * draw(st.integers(1, 200)),
                f"t{i}-{j}" + "t" * tenant_length,  # keys of up to 401 characters
                tuple(actions),
                tuple(draw(st.lists(_names, max_size=3))),
            )
            for j in range(repeat)
        ]
    mass = tuple(draw(st.lists(st.text(max_size=300), max_size=30)))
    return p.Plan(tuple(tenants), 10, mass)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(plan=_plans())
def test_markdown_is_under_the_limit_for_any_plan(plan: p.Plan) -> None:
    out = render.markdown(plan)
    assert len(out) < render.MARKDOWN_LIMIT
    assert render.md_text(render.summary_line(plan)) in out  # the counts always survive
    sections = out.count("<details><summary>")
    assert_markdown_inert(
        out,
        headings={"osr-reconciler plan", "Destructive actions", "Source checks failed"},
        sections=sections,
    )
    if sections < len(plan.tenants) or "… and" in out:
        assert "The full plan is in the JSON and HTML artifacts" in out
    drift = render.drift_text(plan, markdown_out=True)
    assert len(drift) < render.MARKDOWN_LIMIT


def test_a_cut_drift_comment_counts_what_it_left_out_by_tenant_and_status() -> None:
    drifted = tuple(
        p.Action(
            p.ActionKind.UPDATE,
            f"Conn {i} " + "x" * 80,
            p.Reason.UPDATE_CHANGED,
            changes=(p.Change("database", "a", "b"),),
            status=p.Status.DRIFT,
        )
        for i in range(300)
    )
    tenants = tuple(p.TenantPlan("acme", f"t{j}", drifted, (f"Hand {j}",)) for j in range(20))
    out = render.drift_text(p.Plan(tenants, 10, ()), markdown_out=True)
    assert len(out) < render.MARKDOWN_LIMIT
    shown = sum(1 for line in out.splitlines() if line.startswith(("- drift", "- unmanaged")))
    left = re.search(r"… ([\d,]+) more connections left out to stay under 65,000 characters \((.*)\)", out)
    assert left is not None, out[-500:]
    assert int(left[1].replace(",", "")) == 20 * 301 - shown
    assert "`acme/t19`: 300 drift, 1 unmanaged" in left[2]


def test_a_cut_drift_comment_of_tenants_with_the_longest_names_stays_under_the_limit() -> None:
    """Keys of 401 characters (customer and tenant of 200): the note counting what was left out
    listed twelve of them, 5,336 characters, past the room kept for it (66,307 in all)."""
    tenants = tuple(
        p.TenantPlan(
            "c" * 200,
            f"{j:03}" + "t" * 197,
            (p.Action(p.ActionKind.CREATE, "New", p.Reason.CREATE_DECLARED),),
            tuple(f"Hand {k} " + "h" * 90 for k in range(8)),
        )
        for j in range(60)
    )
    out = render.drift_text(p.Plan(tenants, 10, ()), markdown_out=True)
    assert len(out) < render.MARKDOWN_LIMIT
    left = re.search(r"… ([\d,]+) more connections left out .*? \((.*)\); the summary", out)
    assert left is not None, out[-800:]
    shown = sum(1 for line in out.splitlines() if line.startswith(("- pending", "- unmanaged")))
    assert int(left[1].replace(",", "")) == 60 * 9 - shown
    # Every tenant left out is counted, the last ones by kind: the counts add up.
    counted = sum(int(n.replace(",", "")) for n in re.findall(r"([\d,]+) (?:pending|unmanaged)", left[2]))
    assert counted == 60 * 9 - shown


def test_a_cut_comment_counts_the_tenant_sections_it_left_out_by_kind() -> None:
    """2,000 tenants of an update, a create and an unmanaged connection: the sections that do not
    fit are counted by tenant and kind (DESIGN §7), not only as a number of tenants."""
    update = p.Action(
        p.ActionKind.UPDATE, "Oslo", p.Reason.UPDATE_CHANGED, changes=(p.Change("database", "a", "b"),)
    )
    create = p.Action(p.ActionKind.CREATE, "Bergen", p.Reason.CREATE_DECLARED)
    tenants = tuple(p.TenantPlan("acme", f"t{i:04}", (update, create), ("By hand",)) for i in range(2000))
    out = render.markdown(p.Plan(tenants, 10))
    assert len(out) < render.MARKDOWN_LIMIT
    left = re.search(
        r"\*\*([\d,]+) of 2,000 tenants left out to stay under 65,000 characters: "
        r"(.*)\.\*\*",
        out,
    )
    assert left is not None, out[-800:]
    rest = int(left[1].replace(",", ""))
    assert out.count("<details><summary>") == 2000 - rest
    assert re.search(r"`acme/t\d{4}`: 1 create, 1 unmanaged, 1 update", left[2])
    listed = len(re.findall(r"`acme/t\d{4}`", left[2]))
    assert (
        f"{rest - listed:,} more tenants: {rest - listed:,} create, {rest - listed:,} unmanaged, " in left[2]
    )


def test_a_section_heading_counts_a_blocked_delete_as_blocked() -> None:
    """As the summary and the HTML report count it: shown, never carried out."""
    blocked = p.Action(p.ActionKind.DELETE, "Kept", p.Reason.DELETE_TOMBSTONE, blocked="protected")
    gone = p.Action(p.ActionKind.DELETE, "Old", p.Reason.DELETE_TOMBSTONE)
    out = render.markdown(p.Plan((p.TenantPlan("acme", "t1", (gone, blocked), ()),), 10))
    assert "<summary><code>acme/t1</code>: 1 delete, 1 blocked</summary>" in out


def test_one_tombstone_cascading_1200_reports_fits() -> None:
    cascade = tuple(p.Cascade(R, f"Report {i} " + "x" * 60, "F0001") for i in range(1200))
    plan = p.Plan(
        (
            p.TenantPlan(
                "acme",
                "no",
                (p.Action(p.ActionKind.DELETE, "Old", p.Reason.DELETE_TOMBSTONE, cascade=cascade),),
                (),
            ),
        ),
        10,
    )
    out = render.markdown(plan)
    assert len(out) < render.MARKDOWN_LIMIT
    assert "1200 dependents in cascade" in out
    assert "more, left out to stay under 65,000 characters: `acme/no`:" in out
    assert "reports" in out.split("left out to stay under")[1]


def test_four_hundred_change_windows_fit() -> None:
    """reconciler.yaml may hold a window per tenant: the warning lists some, counts the rest."""
    start = datetime(2026, 3, 1, tzinfo=UTC)
    tenants = tuple(
        p.TenantPlan(
            "c",
            f"t{i:04}",
            (p.Action(p.ActionKind.CREATE, "Oslo", p.Reason.CREATE_DECLARED),),
            (),
            freeze=freeze.Freeze(
                freeze.Occurrence(f"close {i:04} " + "x" * 88, start, start + timedelta(40)), None
            ),
        )
        for i in range(400)
    )
    out = render.markdown(p.Plan(tenants, 10))
    assert len(out) < render.MARKDOWN_LIMIT
    assert "… and 395 more windows covering 395 tenants: `reconciler windows` lists them all" in out
    # 400 more opening weeks ahead, and 400 within a week: each alert lists five, counts the rest.
    ahead = tuple(
        dataclasses.replace(
            t,
            tenant=f"a{i:04}",
            freeze=freeze.Freeze(
                None, dataclasses.replace(t.freeze.active, window=f"ahead {i}"), soon=i % 2 == 0
            ),
        )
        for i, t in enumerate(tenants)
        if t.freeze is not None and t.freeze.active is not None
    )
    out = render.markdown(p.Plan(tenants + ahead, 10))
    assert len(out) < render.MARKDOWN_LIMIT
    warning, note = out.split("> [!WARNING]\n", 1)[1].split("> [!NOTE]\n", 1)
    assert "… and 595 more windows covering 595 tenants" in warning
    assert "… and 195 more windows covering 195 tenants" in note.split("\n\n", 1)[0]


def test_a_month_end_close_over_a_fleet_does_not_crowd_out_the_tenant_with_changes() -> None:
    """Inside a window (and in the week before one) every tenant without changes had a section
    of its own saying so: 3,000 of them cut the one tenant with a change out of the comment, and
    the alert named ten tenants without changes. Now they are quiet: one line in text, named
    after the tenants with changes in the alert, the open window before those further ahead."""
    start = datetime(2026, 3, 28, tzinfo=UTC)
    close = freeze.Occurrence("month-end close", start, start + timedelta(days=9))
    later = freeze.Occurrence("year-end audit", start + timedelta(days=270), start + timedelta(days=281))
    quiet = tuple(
        p.TenantPlan("fleet", f"t{i:05}", (), (), freeze=freeze.Freeze(close, later)) for i in range(3000)
    )
    create = p.Action(p.ActionKind.CREATE, "New GP", p.Reason.CREATE_DECLARED)
    changed = p.TenantPlan("fleet", "zzz-changed", (create,), (), freeze=freeze.Freeze(close, later))
    plan = p.Plan((*quiet, changed), 10)
    out = render.markdown(plan)
    assert len(out) < render.MARKDOWN_LIMIT
    assert '+ create "New GP"' in out and "3,000 of 3,001 tenants have no changes" in out
    assert out.index("| create |") < out.index("[!WARNING]") < out.index("[!NOTE]")  # summary first
    assert "until 2026\\-04\\-06 00\\:00 UTC**: `fleet/zzz-changed`, `fleet/t00000`" in out
    text = render.text(plan)
    assert text.count("\n") < 20, text
    assert (
        'No changes in 3,000 tenants.\n  note: change window "month-end close" until 2026-04-06 00:00 UTC '
        'for 3,000 tenants\n  note: change window "year-end audit" opens 2026-12-23 00:00 UTC'
    ) in text


def test_a_window_name_cannot_close_its_quotes() -> None:
    """reconciler.yaml is text from a pull request: a name with a double quote read as the end of
    the name and the start of the plan's own words."""
    at = datetime(2026, 3, 28, tzinfo=UTC)
    o = freeze.Occurrence('x" until 2099-01-01 00:00 UTC; apply is allowed. "y', at, at + timedelta(days=1))
    assert freeze.opens_text(o).startswith(
        'change window "x\\" until 2099-01-01 00:00 UTC; apply is allowed. \\"y" opens 2026-03-28'
    )


def test_a_cut_section_counts_its_fences() -> None:
    """A portal name of 3,000 backticks makes the section's fences 3,001 each: still under."""
    cascade = (
        p.Cascade(spec.DependentKind.DATA_ACCESS_FILTER, "`" * 3000, "F0001"),
        *(p.Cascade(R, f"Report {i}", "F0001") for i in range(3000)),
    )
    action = p.Action(p.ActionKind.DELETE, "Old", p.Reason.DELETE_TOMBSTONE, cascade=cascade)
    plan = p.Plan((p.TenantPlan("acme", "no", (action,), ()),), 10)
    out = render.markdown(plan)
    assert len(out) < render.MARKDOWN_LIMIT
    assert_markdown_inert(out, headings={"osr-reconciler plan", "Destructive actions"}, sections=1)


# ---------------------------------------------------------------------------------------------
# End to end, on every store of the matrix

PASSWORDS = {"OSR_ONE": "first-pw", "OSR_TWO": "second-pw"}


def _fixture(connections: list[dict[str, object]], templates: list[dict[str, object]] = ()) -> str:
    tenant: dict[str, object] = {"name": "acme-norway", "connections": connections}
    if templates:
        tenant["report_templates"] = list(templates)
    return yaml.safe_dump(
        {"version": 1, "customers": [{"name": "acme", "tenants": [tenant]}]},
        allow_unicode=True,
        sort_keys=False,
    )


def _conn(
    name: str, *, managed: bool = True, companies: list[object] | None = None, **extra: object
) -> dict[str, object]:
    return {
        "name": name,
        "managed": managed,
        "integration": "dynamics-gp",
        "server": "gp01",
        "database": "DYNAMICS",
        "authentication": "windows",
        "companies": companies if companies is not None else ["ACME1"],
        **extra,
    }


def _tenant_file(connections: list[dict[str, object]], prune: bool = False) -> str:
    return yaml.safe_dump(
        {
            "version": 1,
            "customer": "acme",
            "tenant": "acme-norway",
            "prune": prune,
            "connections": connections,
        },
        allow_unicode=True,
        sort_keys=False,
    )


def _decl(name: str, companies: list[str] | None = None, **extra: object) -> dict[str, object]:
    return {
        "name": name,
        "integration": "dynamics-gp",
        "server": "gp01",
        "database": "DYNAMICS",
        "authentication": "windows",
        "companies": companies or ["ACME1"],
        **extra,
    }


def test_names_the_database_collation_would_merge_apply_everywhere(cli: Cli) -> None:
    """Résumé/Resume and companies Å1/A1: validate and plan accept them, so apply must too."""
    cli.write("live.yaml", _fixture([]))
    assert cli("store", "seed", "live.yaml").code == 0
    cli.write(
        "tenants/acme/acme-norway.yaml",
        _tenant_file([_decl("Résumé", ["Å1", "A1"]), _decl("Resume", ["F0001", "f0002"])]),
    )
    assert cli("validate").code == 0
    applied = cli("apply", "--auto-approve")
    assert applied.code == 0, applied.err
    assert "Applied 2 action(s)" in applied.err
    again = cli("plan", "--detailed-exitcode")
    assert again.code == 0, again.out
    dump = yaml.safe_load(cli("store", "dump").out)
    conns = dump["customers"][0]["tenants"][0]["connections"]
    assert sorted(c["name"] for c in conns) == ["Resume", "Résumé"]
    assert sorted(c["id"] for c in conns[1]["companies"]) == ["A1", "Å1"]


def test_a_decomposed_name_is_the_live_composed_one(cli: Cli) -> None:
    """NFD in the file (macOS), NFC live (Windows), prune on: nothing is created or deleted."""
    cli.write(
        "live.yaml", _fixture([_conn("Bjørn Ås", companies=[{"id": "F0001", "reports": ["P&L March"]}])])
    )
    assert cli("store", "seed", "live.yaml").code == 0
    cli.write(
        "tenants/acme/acme-norway.yaml", _tenant_file([_decl(nfd("Bjørn Ås"), [nfd("F0001")])], prune=True)
    )
    result = cli("plan", "--format", "json", "--detailed-exitcode")
    assert result.code == 0, result.out
    assert json.loads(result.out)["summary"]["delete"] == 0


@pytest.mark.parametrize("managed", [True, False], ids=["update", "adopt"])
def test_an_update_keeps_the_portals_spelling_of_the_same_name(cli: Cli, managed: bool) -> None:
    """The portal has `Bjørn Ås` decomposed (typed on a Mac), the file composed: one name, so
    the plan lists no name change, and apply must not write one either (it wrote the file's
    bytes over the portal's, a change no reviewer saw)."""
    decomposed = nfd("Bjørn Ås")
    cli.write("live.yaml", _fixture([_conn(decomposed, managed=managed)]))
    assert cli("store", "seed", "live.yaml").code == 0
    cli.write("tenants/acme/acme-norway.yaml", _tenant_file([_decl("Bjørn Ås", database="DYNAMICS2")]))
    planned = json.loads(cli("plan", "--format", "json").out)
    (action,) = planned["tenants"][0]["actions"]
    assert action["action"] == ("update" if managed else "adopt")
    assert "name" not in {c["field"] for c in action["changes"]}
    assert cli("apply", "--auto-approve").code == 0
    (live,) = yaml.safe_load(cli("store", "dump").out)["customers"][0]["tenants"][0]["connections"]
    assert (live["name"], live["database"], live["managed"]) == (decomposed, "DYNAMICS2", True)
    assert cli("plan", "--detailed-exitcode").code == 0
    assert cli("drift").code == 0


def test_a_rename_in_the_portal_is_planned_back_not_duplicated(cli: Cli) -> None:
    cli.write("live.yaml", _fixture([_conn("Oslo GP", companies=[{"id": "ACME1", "reports": ["P&L"]}])]))
    assert cli("store", "seed", "live.yaml").code == 0
    cli.write("tenants/acme/acme-norway.yaml", _tenant_file([_decl("Oslo GP")], prune=True))
    assert cli("plan", "--detailed-exitcode").code == 0
    engine = sa.create_engine(cli.env["RECONCILER_STORE"])  # someone renames it in the portal
    with engine.begin() as conn:
        conn.execute(
            store.connections.update().values(
                name="Oslo GP (old)", name_key=spec.identity_key("Oslo GP (old)")
            )
        )
    engine.dispose()
    plan = cli("plan", "--format", "json")
    (action,) = json.loads(plan.out)["tenants"][0]["actions"]
    assert (action["action"], action["previous_name"], action["connection"], action["status"]) == (
        "rename",
        "Oslo GP (old)",
        "Oslo GP",
        "drift",
    )
    assert action["renamed_in_portal"] == {"from": "Oslo GP", "to": "Oslo GP (old)"}
    assert action["cascade"] == []
    drift = cli("drift")
    assert drift.code == 2
    assert 'renamed in the portal from "Oslo GP" to "Oslo GP (old)"' in drift.out
    assert cli("apply", "--auto-approve").code == 0
    assert cli("plan", "--detailed-exitcode").code == 0
    assert cli("drift").code == 0


def test_export_gives_each_connection_its_own_variable(cli: Cli) -> None:
    cli.write(
        "live.yaml",
        _fixture(
            [
                _conn(name, managed=False, authentication="sql", login="osr", password={"env": env})
                for name, env in (("Visma Oslo", "OSR_ONE"), ("Visma-Oslo", "OSR_TWO"))
            ]
        ),
    )
    assert cli("store", "seed", "live.yaml", env=PASSWORDS).code == 0
    exported = cli("export", "--tenant", "acme/acme-norway")
    assert exported.code == 0, exported.err
    doc = yaml.safe_load(exported.out)
    variables = {c["name"]: c["password"]["env"] for c in doc["connections"]}
    assert len(set(variables.values())) == 2
    cli.write("tenants/acme/acme-norway.yaml", exported.out)
    env = {variables["Visma Oslo"]: PASSWORDS["OSR_ONE"], variables["Visma-Oslo"]: PASSWORDS["OSR_TWO"]}
    plan = cli("plan", "--format", "json", env=env)
    actions = json.loads(plan.out)["tenants"][0]["actions"]
    assert [(a["action"], [c["field"] for c in a["changes"]]) for a in actions] == [
        ("adopt", []),
        ("adopt", []),
    ]


def test_portal_names_cannot_forge_the_review(cli: Cli) -> None:
    forged = "Q1\n```\n## Nothing is deleted by this plan"
    cli.write(
        "live.yaml",
        _fixture(
            [
                _conn("Old NAV", companies=[{"id": "F0001", "reports": [forged, "ok\rfine", "@octocat"]}]),
                _conn("By hand\u202e <b>x</b>", managed=False),
            ],
            [{"name": "<script>alert(1)</script>", "connection": "Old NAV"}],
        ),
    )
    assert cli("store", "seed", "live.yaml").code == 0
    cli.write("tenants/acme/acme-norway.yaml", _tenant_file([{"name": "Old NAV", "absent": True}]))
    text = cli("plan")
    assert text.code == 0
    assert_text_inert(text.out)
    assert '"Q1\\n```\\n## Nothing is deleted by this plan"' in text.out
    markdown = cli("plan", "--format", "markdown")
    assert_markdown_inert(markdown.out, headings={"osr-reconciler plan", "Destructive actions"}, sections=1)
    as_json = json.loads(cli("plan", "--format", "json").out)
    assert forged in [c["name"] for c in as_json["tenants"][0]["actions"][0]["cascade"]]


def test_apply_with_allow_cascade_does_not_say_it_needs_it(cli: Cli) -> None:
    cli.write(
        "live.yaml", _fixture([_conn("Old NAV", companies=[{"id": "F1", "reports": ["R"]}]), _conn("Keep")])
    )
    assert cli("store", "seed", "live.yaml").code == 0
    cli.write(
        "tenants/acme/acme-norway.yaml", _tenant_file([{"name": "Old NAV", "absent": True}, _decl("Keep")])
    )
    applied = cli("apply", "--auto-approve", "--allow-cascade")
    assert applied.code == 0, applied.err
    assert "Needs --allow-cascade" not in applied.both
    assert "Allowed by --allow-cascade: 1 dependent would be deleted" in applied.out


# ---------------------------------------------------------------------------------------------
# Smaller untruths (issue 8's list), each as a user meets it


def test_changed_since_is_a_revision_never_an_option(embedded_cli: Cli) -> None:
    root = embedded_cli.root
    embedded_cli.write("tenants/.keep", "")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "init")
    target = root / "written-by-git.txt"
    for ref in (f"--output={target}", "-p", "HEAD~5", "main..; rm -rf /"):
        result = embedded_cli("plan", f"--changed-since={ref}")
        assert result.code == 1, (ref, result.both)
        assert "--changed-since" in result.err and "No tenant files changed" not in result.both
    assert not target.exists()


def test_a_fifo_and_a_link_out_of_the_folder_are_refused(embedded_cli: Cli, tmp_path: Path) -> None:
    folder = embedded_cli.root / "tenants" / "acme"
    folder.mkdir(parents=True)
    os.mkfifo(folder / "pipe.yaml")
    outside = tmp_path / "secret.yaml"
    outside.write_text("version: 1\ncustomer: outside-value-7c1\n", encoding="utf-8")
    (folder / "acme-norway.yaml").symlink_to(outside)
    result = embedded_cli("validate")  # a FIFO read would hang: the Cli's timeout fails the test
    assert result.code == 1
    assert "pipe.yaml: is not a regular file" in result.err
    assert "acme-norway.yaml: is a link to a file outside" in result.err
    assert "outside-value-7c1" not in result.both


def test_history_of_a_tenant_the_store_does_not_know_is_an_error(cli: Cli) -> None:
    """'No history yet' for a misspelt tenant, while the real one had history, said what was not."""
    cli.write("live.yaml", _fixture([]))
    assert cli("store", "seed", "live.yaml").code == 0
    result = cli("history", "--tenant", "acme/acme-norwya")
    assert result.code == 1
    assert "tenant acme/acme-norwya does not exist in the store" in result.err
    assert "the store knows acme/acme-norway" in result.err
    assert cli("history", "--tenant", "acme/acme-norway").code == 0


def test_history_limit_out_of_range_is_a_clear_error(cli: Cli) -> None:
    result = cli("history", "--limit", "99999999999999999999")
    assert result.code == 1
    assert result.err.startswith("error: Invalid value for '--limit'")


def test_a_lost_key_file_is_never_replaced(embedded_cli: Cli) -> None:
    assert embedded_cli("store", "init").code == 0
    key = embedded_cli.root / ".reconciler" / "store.key"
    key.unlink()
    result = embedded_cli("store", "init")
    assert result.code == 1
    assert "the key file" in result.err and "restore the key file" in result.err
    assert "RECONCILER_STORE_KEY" not in result.err
    assert not key.exists()


def test_a_sqlite_url_uses_the_key_file_beside_it(embedded_cli: Cli) -> None:
    assert embedded_cli("store", "init").code == 0
    db = embedded_cli.root / ".reconciler" / "store.db"
    result = embedded_cli("history", "--store", f"sqlite:///{db}")
    assert result.code == 0, result.err


def test_seed_creates_the_embedded_store_on_first_use(embedded_cli: Cli) -> None:
    embedded_cli.write("live.yaml", _fixture([_conn("Oslo")]))
    result = embedded_cli("store", "seed", "live.yaml")
    assert result.code == 0, result.err
    key = embedded_cli.root / ".reconciler" / "store.key"
    assert key.stat().st_mode & 0o777 == 0o600
    plan_only = Cli(embedded_cli.root.parent / "elsewhere", base_env(embedded_cli.root.parent))
    (embedded_cli.root.parent / "elsewhere" / "tenants").mkdir(parents=True)
    refused = plan_only("plan")
    assert refused.code == 1 and "store init" in refused.err
    assert not (embedded_cli.root.parent / "elsewhere" / ".reconciler").exists()


def test_store_init_upgrades_a_version_1_store(cli: Cli) -> None:
    cli.write("live.yaml", _fixture([_conn("Bjørn", companies=["Å1", "F0001"])]))
    assert cli("store", "seed", "live.yaml").code == 0
    engine = sa.create_engine(cli.env["RECONCILER_STORE"])
    with engine.begin() as conn:  # back to what a version 1 store held
        conn.execute(store.connections.update().values(name_key="bjørn", applied_name=None))
        conn.execute(
            store.store_meta.update().where(store.store_meta.c.key == "schema_version").values(value="1")
        )
    cli.write("tenants/acme/acme-norway.yaml", _tenant_file([_decl("BJØRN", ["å1", "F0001"])]))
    refused = cli("plan")
    assert refused.code == 1 and "run `reconciler store init` to upgrade" in refused.err
    assert cli("store", "init").code == 0
    with engine.connect() as conn:
        assert conn.execute(sa.select(store.connections.c.name_key)).scalar() == spec.identity_key("Bjørn")
    engine.dispose()
    plan = cli("plan", "--format", "json")
    assert plan.code == 0, plan.err
    (action,) = json.loads(plan.out)["tenants"][0]["actions"]
    assert [c["field"] for c in action["changes"]] == ["name"]
    assert CANARY_ENV in cli.env


def test_an_update_keeps_the_portals_spelling_of_a_server_and_database(cli: Cli) -> None:
    """SQL Server compares `SQL01\\visma` and `sql01\\VISMA` alike, so the plan lists no change
    there; an update of another field rewrote both in the file's spelling all the same."""
    cli.write("live.yaml", _fixture([_conn("Oslo", server="sql01\\VISMA", database="vbsys")]))
    assert cli("store", "seed", "live.yaml").code == 0
    declared = _decl("Oslo", server="SQL01\\visma", database="VBSYS")
    cli.write("tenants/acme/acme-norway.yaml", _tenant_file([declared]))
    assert cli("plan", "--detailed-exitcode").code == 0
    cli.write("tenants/acme/acme-norway.yaml", _tenant_file([{**declared, "private": True}]))
    planned = json.loads(cli("plan", "--format", "json").out)
    (action,) = planned["tenants"][0]["actions"]
    assert [c["field"] for c in action["changes"]] == ["private"]
    assert cli("apply", "--auto-approve").code == 0
    (live,) = yaml.safe_load(cli("store", "dump").out)["customers"][0]["tenants"][0]["connections"]
    assert (live["server"], live["database"], live["private"]) == ("sql01\\VISMA", "vbsys", True)
    assert cli("plan", "--detailed-exitcode").code == 0
    assert cli("drift").code == 0


def test_drift_says_why_a_pending_action_is_blocked(cli: Cli) -> None:
    """A tombstone of a connection made by hand: the JSON said "blocked" and why, the text and
    markdown did not, and the nightly drift exited 2 for good with no hint."""
    cli.write("live.yaml", _fixture([_conn("alpha", managed=False)]))
    assert cli("store", "seed", "live.yaml").code == 0
    cli.write("tenants/acme/acme-norway.yaml", _tenant_file([{"name": "alpha", "absent": True}]))
    for fmt in ("text", "markdown"):
        drift = cli("drift", "--format", fmt)
        assert drift.code == 2
        (line,) = [line for line in drift.out.splitlines() if "alpha" in line]
        assert "delete  BLOCKED: " in line and "unmanaged: the tool deletes only" in line, line


def test_a_version_1_store_with_names_now_one_is_refused_by_name(cli: Cli) -> None:
    """v1 compared names by casefold alone, so its apply made `Bjørn Ås` beside the portal's
    decomposed one: store init failed on the unique key with the database's words."""
    cli.write("live.yaml", _fixture([_conn("Bjørn Ås", companies=["F0001"])]))
    assert cli("store", "seed", "live.yaml").code == 0
    engine = sa.create_engine(cli.env["RECONCILER_STORE"], poolclass=sa.pool.NullPool)
    with engine.begin() as conn:  # what a version 1 store could hold
        row = dict(conn.execute(sa.select(store.connections)).mappings().one())
        del row["id"]
        conn.execute(store.connections.insert().values({**row, "name": nfd("Bjørn Ås"), "name_key": "v1"}))
        conn.execute(
            store.store_meta.update().where(store.store_meta.c.key == "schema_version").values(value="1")
        )
    refused = cli("store", "init")
    assert refused.code == 1
    assert "acme/acme-norway: connections 'Bjørn Ås' and " in refused.err, refused.err
    assert "then run `reconciler store init` again (nothing was changed)" in refused.err
    assert "UNIQUE" not in refused.err.upper()
    with engine.connect() as conn:
        version = conn.execute(
            sa.select(store.store_meta.c.value).where(store.store_meta.c.key == "schema_version")
        ).scalar()
    engine.dispose()
    assert version == "1"


def test_store_init_adds_a_column_a_store_of_this_version_lacks(cli: Cli) -> None:
    """A store made between two schema numbers (a branch's) had no freeze_override: init said it
    was ready, and every apply failed."""
    cli.write("live.yaml", _fixture([_conn("Oslo")]))
    assert cli("store", "seed", "live.yaml").code == 0
    engine = sa.create_engine(cli.env["RECONCILER_STORE"], poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"ALTER TABLE {store.audit_log.name} DROP COLUMN freeze_override")
    engine.dispose()
    assert cli("store", "init").code == 0
    cli.write("tenants/acme/acme-norway.yaml", _tenant_file([_decl("Oslo", database="D2")]))
    applied = cli("apply", "--auto-approve")
    assert applied.code == 0, applied.err
    assert cli("history").code == 0


def test_store_init_converts_latin1_tables_on_mariadb(workspace: Path) -> None:
    """Tables made before the utf8mb4 fix in a latin1 database kept latin1: `Łódź` passed plan
    and failed apply with the server's 1366 error. (MariaDB's character sets only; the test
    databases are latin1, as many servers' default.)"""
    require_server("mariadb")
    url = private_database("mariadb")
    reset_server(url)
    cli = Cli(
        workspace, {**base_env(workspace.parent), "RECONCILER_STORE": url, "RECONCILER_STORE_KEY": TEST_KEY}
    )
    assert cli("store", "init").code == 0
    cli.write("live.yaml", _fixture([_conn("Oslo")]))
    assert cli("store", "seed", "live.yaml").code == 0
    engine = sa.create_engine(cli.env["RECONCILER_STORE"], poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"ALTER TABLE {store.connections.name} CONVERT TO CHARACTER SET latin1")
    assert cli("store", "init").code == 0
    with engine.connect() as conn:
        collation = conn.exec_driver_sql(
            "SELECT table_collation FROM information_schema.tables WHERE table_schema = DATABASE() "
            f"AND table_name = '{store.connections.name}'"
        ).scalar()
    engine.dispose()
    assert str(collation).startswith("utf8mb4")
    cli.write("tenants/acme/acme-norway.yaml", _tenant_file([_decl("Oslo"), _decl("Łódź")]))
    applied = cli("apply", "--auto-approve")
    assert applied.code == 0, applied.err


def test_a_latin1_version_1_store_with_companies_utf8mb4_merges_is_upgraded(workspace: Path) -> None:
    """v1's key on company codes went by the table's collation: `A1` and `Å1` are two in latin1
    and one in utf8mb4's, so converting the tables before that key was dropped failed half-way
    (MariaDB commits each table's change), the same on every retry."""
    require_server("mariadb")
    url = private_database("mariadb")
    reset_server(url)
    env = {**base_env(workspace.parent), "RECONCILER_STORE": url, "RECONCILER_STORE_KEY": TEST_KEY}
    cli = Cli(workspace, env)
    assert cli("store", "init").code == 0
    cli.write("live.yaml", _fixture([_conn("Oslo", companies=[{"id": "A1", "reports": ["R1"]}, "Å1"])]))
    assert cli("store", "seed", "live.yaml").code == 0
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:  # as version 1 made it, in a latin1 database
        for table in store.metadata.sorted_tables:
            conn.exec_driver_sql(f"ALTER TABLE {table.name} CONVERT TO CHARACTER SET latin1")
        conn.exec_driver_sql(
            f"CREATE UNIQUE INDEX uq_osr_companies_code ON {store.companies.name} (connection_id, code)"
        )
        conn.execute(
            store.store_meta.update().where(store.store_meta.c.key == "schema_version").values(value="1")
        )
    upgraded = cli("store", "init")
    assert upgraded.code == 0, upgraded.err
    engine.dispose()
    (live,) = yaml.safe_load(cli("store", "dump").out)["customers"][0]["tenants"][0]["connections"]
    assert sorted(c if isinstance(c, str) else c["id"] for c in live["companies"]) == ["A1", "Å1"]


def test_a_portal_rename_after_a_version_1_upgrade_is_planned_back_not_duplicated(cli: Cli) -> None:
    """v1 kept no applied names: after the upgrade, a rename in the portal was planned as a
    create beside the renamed connection (DESIGN §5: never a duplicate)."""
    cli.write("live.yaml", _fixture([_conn("Oslo"), _conn("Bergen")]))
    assert cli("store", "seed", "live.yaml").code == 0
    engine = sa.create_engine(cli.env["RECONCILER_STORE"], poolclass=sa.pool.NullPool)
    with engine.begin() as conn:  # what a version 1 store held; Bergen renamed before the upgrade
        conn.execute(store.connections.update().values(applied_name=None))
        bergen = conn.execute(
            sa.select(store.connections.c.id).where(store.connections.c.name == "Bergen")
        ).scalar_one()
        conn.execute(
            store.audit_log.insert().values(
                at_ms=1,
                actor="t",
                customer="acme",
                tenant="acme-norway",
                action="update",
                connection="Bergen",
                connection_id=bergen,
                reason="update_because_fields_differ",
                fields="",
                cascade_count=0,
            )
        )
        conn.execute(
            store.connections.update()
            .where(store.connections.c.id == bergen)
            .values(name="Bergen kontor", name_key=spec.identity_key("Bergen kontor"))
        )
        conn.execute(
            store.store_meta.update().where(store.store_meta.c.key == "schema_version").values(value="1")
        )
    assert cli("store", "init").code == 0
    with engine.begin() as conn:  # after the upgrade, Oslo is renamed in the portal
        conn.execute(
            store.connections.update()
            .where(store.connections.c.name == "Oslo")
            .values(name="Oslo kontor", name_key=spec.identity_key("Oslo kontor"))
        )
    engine.dispose()
    cli.write("tenants/acme/acme-norway.yaml", _tenant_file([_decl("Oslo"), _decl("Bergen")]))
    plan = cli("plan", "--format", "json")
    assert plan.code == 0, plan.err
    actions = [(a["action"], a["connection"]) for a in json.loads(plan.out)["tenants"][0]["actions"]]
    assert sorted(actions) == [("rename", "Bergen"), ("rename", "Oslo")]


def test_a_file_name_in_an_error_cannot_start_a_line(embedded_cli: Cli) -> None:
    """A pull request chooses its file names: the file:line:col prefix shows them inert too."""
    embedded_cli.write(
        "tenants/acme/t1\x1b[31m\n# All good\u202e.yaml",
        "version: 1\ncustomer: acme\ntenant: t1\nconnections: []\n",
    )
    result = embedded_cli("validate")
    assert result.code == 1
    assert_text_inert(result.err)
    assert "t1\\x1b[31m\\n# All good\\u202e.yaml" in result.err
    assert not any(line.startswith("# All good") for line in result.err.splitlines())


def test_an_actor_cannot_forge_a_history_entry(cli: Cli) -> None:
    """RECONCILER_ACTOR (or a CI display name) is free text: history shows it on its own line."""
    cli.write("live.yaml", _fixture([]))
    assert cli("store", "seed", "live.yaml").code == 0
    cli.write("tenants/acme/acme-norway.yaml", _tenant_file([_decl("Oslo")]))
    forged = 'ci-bot\n2026-01-01T00:00:00Z  admin  -  acme/acme-norway  delete "Nothing"\u202e'
    assert cli("apply", "--auto-approve", env={"RECONCILER_ACTOR": forged}).code == 0
    history = cli("history")
    assert history.code == 0, history.err
    assert_text_inert(history.out)
    (entry,) = history.out.splitlines()
    assert "ci-bot\\n2026-01-01" in entry and 'create "Oslo"' in entry


def test_drift_says_what_the_plan_notes_of_look_alike_portal_names(cli: Cli) -> None:
    """Two portal connections whose names look the same and are two: the plan noted it, the
    nightly drift report (every format) listed two unmanaged connections and said nothing."""
    cli.write(
        "live.yaml",
        _fixture(
            [_conn("Oslo"), _conn("Visma Oslo", managed=False), _conn("Visma \u041eslo", managed=False)]
        ),
    )
    assert cli("store", "seed", "live.yaml").code == 0
    cli.write("tenants/acme/acme-norway.yaml", _tenant_file([_decl("Oslo")]))
    note = '"Visma Oslo" and "Visma \u041eslo" look the same and are two names (U+004F'
    text = cli("drift")
    assert text.code == 2 and f"  note: {note}" in text.out, text.out
    (tenant,) = json.loads(cli("drift", "--format", "json").out)["tenants"]  # schema-checked by Cli
    assert tenant["notes"][0].startswith(note)
    markdown = cli("drift", "--format", "markdown").out
    assert "- note: `" + note in markdown
    assert_markdown_inert(markdown, headings={"osr-reconciler drift", "`acme/acme-norway`"}, sections=0)
    assert "look the same and are two names" in cli("drift", "--format", "html").out


def test_two_portal_connections_of_one_name_are_an_error_everywhere(cli: Cli) -> None:
    """The portal renamed "Hand-made AX" to "CONSULTANT SANDBOX" beside its "Consultant sandbox"
    (its own row, the store's name key left as it was): one name to a person. The plan listed
    both as two unmanaged connections, and planned another's values and dependents onto a
    declared one; export, import and drift --write stopped with an internal error."""
    cli.write(
        "live.yaml",
        _fixture(
            [_conn("Oslo"), _conn("Consultant sandbox", managed=False), _conn("Hand-made AX", managed=False)]
        ),
    )
    assert cli("store", "seed", "live.yaml").code == 0
    engine = sa.create_engine(cli.env["RECONCILER_STORE"], poolclass=sa.pool.NullPool)
    with engine.begin() as conn:  # renamed in the portal, its name key not kept
        conn.execute(
            store.connections.update()
            .where(store.connections.c.name == "Hand-made AX")
            .values(name="CONSULTANT SANDBOX")
        )
    engine.dispose()
    cli.write("tenants/acme/acme-norway.yaml", _tenant_file([_decl("Oslo")]))
    before = dump(cli)
    said = (
        'acme/acme-norway: the portal has two connections of one name, "CONSULTANT SANDBOX" and '
        '"Consultant sandbox" (names are one when they differ only in case or Unicode form); '
        "rename one in the portal, then "
    )
    for command in (
        ["plan"],
        ["apply", "--auto-approve"],
        ["drift"],
        ["drift", "--write"],
        ["export", "--tenant", "acme/acme-norway"],
        ["import", "imported"],
    ):
        result = cli(*command)
        assert result.code == 1, (command, result.both)
        assert said in result.err and "internal error" not in result.err, (command, result.err)
        assert result.out == "", command
    assert dump(cli) == before
    assert not (cli.root / "imported").exists()
    assert (cli.root / "tenants/acme/acme-norway.yaml").read_text(encoding="utf-8") == _tenant_file(
        [_decl("Oslo")]
    )


def test_an_audit_log_row_cannot_forge_a_history_entry(cli: Cli) -> None:
    """The audit log is in the portal's store: its tenant, action and fields were printed raw,
    and a line break there printed a forged entry of its own (an escape sequence too)."""
    cli.write("live.yaml", _fixture([]))
    assert cli("store", "seed", "live.yaml").code == 0
    cli.write("tenants/acme/acme-norway.yaml", _tenant_file([_decl("Oslo")]))
    assert cli("apply", "--auto-approve").code == 0
    forged = '\n2099-01-01T00:00:00Z  admin  deadbeef  acme/acme-norway  delete "Everything"\x1b[2K'
    engine = sa.create_engine(cli.env["RECONCILER_STORE"], poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(
            store.audit_log.update().values(
                customer="acme" + forged, action="c\x1b[2K\nX", fields="name" + forged
            )
        )
    engine.dispose()
    history = cli("history")
    assert history.code == 0, history.err
    assert_text_inert(history.out)
    (entry,) = history.out.splitlines()
    assert entry.count("\\n2099-01-01") == 2 and "c\\x1b[2K\\nX" in entry and "\x1b" not in entry


def test_a_hostile_name_a_rename_replaced_stays_text_in_history(cli: Cli) -> None:
    """Schema 4 keeps the name a rename replaced, and history shows it (`rename "old" → "new"`):
    a portal-made name, planned back to the file's, is shown there as inert as the new one."""
    names = [f"Oslo {i}" for i in range(len(HOSTILE))]
    cli.write("live.yaml", _fixture([_conn(name) for name in names]))
    assert cli("store", "seed", "live.yaml").code == 0
    engine = sa.create_engine(cli.env["RECONCILER_STORE"], poolclass=sa.pool.NullPool)
    with engine.begin() as conn:  # renamed in the portal, by anyone who can name a connection
        for name, hostile in zip(names, HOSTILE, strict=True):
            conn.execute(
                store.connections.update()
                .where(store.connections.c.name == name)
                .values(name=hostile, name_key=spec.identity_key(hostile))
            )
    engine.dispose()
    cli.write("tenants/acme/acme-norway.yaml", _tenant_file([_decl(name) for name in names]))
    applied = cli("apply", "--auto-approve")
    assert applied.code == 0, applied.err
    history = cli("history")
    assert history.code == 0, history.err
    assert_text_inert(history.out)
    lines = history.out.splitlines()
    assert len(lines) == len(HOSTILE)  # one line per entry: no name started a line of its own
    for line in lines:
        assert re.search(r'  rename ".*" → "Oslo \d+"  ', line), line
    entries = json.loads(cli("history", "--format", "json").out)
    assert sorted((e["previous_name"], e["connection"]) for e in entries) == sorted(
        zip(HOSTILE, names, strict=True)
    )


def test_a_portal_name_that_differs_only_by_what_does_not_show_is_an_error(cli: Cli) -> None:
    """ "Trail " in the portal is "Trail" to a person: never a second connection beside it, a
    company removed with its reports, or a tombstone that quietly deletes nothing (DESIGN §2)."""
    cli.write(
        "live.yaml",
        _fixture(
            [
                _conn("Trail "),
                _conn("Zero\u200bWidth", managed=False),
                _conn("No\u00a0Break"),
                _conn("Two  Spaces"),
                _conn("Oslo", companies=[{"id": "F0001 ", "reports": ["P&L March"]}]),
            ]
        ),
    )
    assert cli("store", "seed", "live.yaml").code == 0
    before = cli("store", "dump").out
    cases = {
        "Trail": _tenant_file([_decl("Trail")]),
        "ZeroWidth": _tenant_file([_decl("ZeroWidth")]),
        "No Break": _tenant_file([_decl("New name", previous_names=["No Break"])]),
        "Two Spaces": _tenant_file([_decl("Two Spaces")]),
        "F0001": _tenant_file([_decl("Oslo", ["F0001"])]),
        "tombstone": _tenant_file([{"name": "Trail", "absent": True}]),
    }
    for case, text in cases.items():
        cli.write("tenants/acme/acme-norway.yaml", text)
        assert cli("validate").code == 0, case
        for command in (("plan",), ("apply", "--auto-approve", "--allow-cascade")):
            result = cli(*command)
            assert result.code == 1, (case, command, result.both)
            assert "looks the same as the portal's" in result.err, case
            assert "correct it in the portal" in result.err
            assert_text_inert(result.err)
    assert cli("store", "dump").out == before
    cli.write("tenants/acme/acme-norway.yaml", _tenant_file([_decl("Trail 2")]))
    assert cli("plan", "--detailed-exitcode").code == 2  # a name that shows otherwise is planned


def test_a_portal_name_with_letters_that_look_the_same_is_an_error(cli: Cli) -> None:
    """A Cyrillic О or a fullwidth Ａ in a portal name (or in the file) looks like the Latin
    letter: planned by identity, a file's "Visma Oslo" was a create beside the portal's, and
    `companies: [АCME1] → [ACME1]` deleted the company's reports in a plan line that showed no
    change (DESIGN §8)."""
    cli.write(
        "live.yaml",
        _fixture(
            [
                _conn("Visma \u041eslo", managed=False),  # Cyrillic capital O
                _conn("\uff21bc"),  # fullwidth A
                _conn("Bergen"),
                _conn("GP Oslo", companies=[{"id": "\u0410CME1", "reports": ["Monthly P&L"]}]),
                _conn("Resume"),
                _conn("Oslo 1"),
                _conn("NORDIC Invest", managed=False),
                _conn("Sta\u017f\u017f", managed=False),  # a long s, which folds to s and looks like f
                _conn("\u1d00cme", managed=False),  # a small capital A
            ]
        ),
    )
    assert cli("store", "seed", "live.yaml").code == 0
    before = cli("store", "dump").out
    cases = {
        "Visma Oslo": ([_decl("Visma Oslo")], "U+004F LATIN CAPITAL LETTER O"),
        "mixed case": ([_decl("Nordic INV\u0415ST")], "U+0415 CYRILLIC CAPITAL LETTER IE"),
        "Abc": ([_decl("Abc")], "U+0041 LATIN CAPITAL LETTER A"),
        "Вergen": ([_decl("\u0412ergen")], "U+0412 CYRILLIC CAPITAL LETTER VE"),
        "ACME1": ([_decl("GP Oslo", ["ACME1"])], "U+0410 CYRILLIC CAPITAL LETTER A"),
        "previous name": ([_decl("Visma", previous_names=["Visma Oslo"])], "LATIN CAPITAL LETTER O"),
        "tombstone": ([{"name": "Visma Oslo", "absent": True}], "CYRILLIC CAPITAL LETTER O"),
        "Staff": ([_decl("Staff")], "U+017F LATIN SMALL LETTER LONG S"),
        "Acme": ([_decl("Acme")], "U+1D00 LATIN LETTER SMALL CAPITAL A"),
    }
    for case, (entries, where) in cases.items():
        cli.write("tenants/acme/acme-norway.yaml", _tenant_file(entries))
        assert cli("validate").code == 0, case
        for command in (("plan",), ("apply", "--auto-approve", "--allow-cascade")):
            result = cli(*command)
            assert result.code == 1, (case, command, result.both)
            assert "looks the same as the portal's" in result.err, (case, result.err)
            assert where in result.err, (case, result.err)
            assert_text_inert(result.err)
    assert cli("store", "dump").out == before
    # An accent shows, and ASCII is what was typed: planned, not refused.
    for name in ("R\u00e9sum\u00e9", "Oslo l"):
        cli.write("tenants/acme/acme-norway.yaml", _tenant_file([_decl(name)]))
        assert cli("plan", "--detailed-exitcode").code == 2, name


def test_a_file_with_two_names_that_look_the_same_is_refused(embedded_cli: Cli) -> None:
    """Two connections (or companies) of one file whose names look the same and are two names:
    validate says where, as for a name written twice, and nothing is planned (DESIGN §8)."""
    cases = {
        "connections": (
            [_decl("Visma Oslo"), _decl("Tromsø"), _decl("Visma \u041eslo")],
            ":20:9:",  # the third entry's name
            "looks the same as 'Visma Oslo', the name of connections[0]",
        ),
        "tombstone": (
            [_decl("\uff21bc"), {"name": "Abc", "absent": True}],
            ":13:9:",
            "looks the same as 'Ａbc', the name of connections[0]",
        ),
        "previous name": (
            [_decl("Visma Oslo"), {**_decl("Bergen"), "previous_names": ["Visma \u041eslo"]}],
            ":21:5:",
            "looks the same as 'Visma Oslo', the name of connections[0]",
        ),
        "previous names": (
            [
                {**_decl("Oslo"), "previous_names": ["\uff21bc"]},
                {**_decl("Bergen"), "previous_names": ["Abc"]},
            ],
            ":23:5:",
            "looks the same as 'Ａbc', a previous name of connections[0]",
        ),
        "companies": (
            [_decl("Oslo", ["ACME1", "\u0410CME1"])],
            ":12:3:",
            "company 'АCME1' looks the same as company 'ACME1'",
        ),
        # Neither written in one case: alike letter by letter, each letter case aside
        "mixed case": (
            [_decl("NORDIC Invest"), _decl("Nordic INV\u0415ST")],
            ":13:9:",
            "looks the same as 'NORDIC Invest', the name of connections[0]",
        ),
        "mixed case, previous name": (
            [_decl("NORDIC Invest"), {**_decl("Bergen"), "previous_names": ["Nordic INV\u0415ST"]}],
            ":21:5:",
            "looks the same as 'NORDIC Invest', the name of connections[0]",
        ),
    }
    assert embedded_cli("store", "init").code == 0
    for case, (entries, line, message) in cases.items():
        embedded_cli.write("tenants/acme/acme-norway.yaml", _tenant_file(entries))
        for command in ("validate", "plan"):
            result = embedded_cli(command)
            assert result.code == 1, (case, result.both)
            assert "tenants/acme/acme-norway.yaml" + line in result.err, (case, result.err)
            assert message in result.err, (case, result.err)
            assert_text_inert(result.err)
    # Every such name is reported at once, not the first of them (a fix, then the next error).
    embedded_cli.write(
        "tenants/acme/acme-norway.yaml",
        _tenant_file([_decl("Visma Oslo"), _decl("Visma \u041eslo"), _decl("Bergen"), _decl("\u0412ergen")]),
    )
    result = embedded_cli("validate")
    assert result.code == 1
    assert "connections[1].name: 'Visma Оslo' looks the same as 'Visma Oslo'" in result.err, result.err
    assert "connections[3].name: 'Вergen' looks the same as 'Bergen'" in result.err, result.err
    embedded_cli.write(
        "tenants/acme/acme-norway.yaml",
        _tenant_file(
            [
                _decl("R\u00e9sum\u00e9", ["F1", "Fl"]),
                _decl("Resume"),
                _decl("Oslo l"),
                _decl("Oslo 1"),
                _decl("Tromsø 1"),
                _decl("Tromsø l"),
                {**_decl("Visma Oslo"), "previous_names": ["Visma \u041eslo"]},  # its own
            ]
        ),
    )
    assert embedded_cli("validate").code == 0


def test_a_linked_customer_folder_is_reported_not_skipped(embedded_cli: Cli, tmp_path: Path) -> None:
    """validate said OK for a fleet whose linked folder it never read."""
    outside = tmp_path / "nordlys"
    outside.mkdir()
    (outside / "nordlys-main.yaml").write_text("version: 1\ncustomer: nordlys\ntenant: nordlys-main\n")
    embedded_cli.write("tenants/acme/acme-norway.yaml", _tenant_file([_decl("Oslo")]))
    (embedded_cli.root / "tenants" / "nordlys").symlink_to(outside, target_is_directory=True)
    result = embedded_cli("validate")
    assert result.code == 1
    assert result.err.startswith("error: tenants/nordlys: is a link to a folder, which is not followed")


def test_a_customer_folder_that_cannot_be_read_is_an_error_not_skipped(
    embedded_cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder the job's user cannot list (chmod 000 on a customer's folder) was skipped in
    silence: validate said OK, plan "No changes" and drift reported nothing for its tenants.
    (The tests run as root, whom no mode stops: the folder's listing fails as it would.)"""
    assert embedded_cli("store", "init").code == 0
    embedded_cli.write("tenants/acme/acme-norway.yaml", _tenant_file([_decl("Oslo")]))
    embedded_cli.write(
        "tenants/nordlys/nordlys-main.yaml", "version: 1\ncustomer: nordlys\ntenant: nordlys-main\n"
    )
    blocked = str(embedded_cli.root / "tenants" / "acme")
    listing = os.scandir

    def scandir(path: str = ".") -> Iterator[os.DirEntry[str]]:
        if os.path.abspath(path) == blocked:
            raise PermissionError(13, "Permission denied", path)
        return listing(path)

    monkeypatch.setattr(os, "scandir", scandir)
    for command in (["validate"], ["plan"], ["drift"]):
        result = embedded_cli(*command)
        assert result.code == 1, (command, result.both)
        assert result.err.startswith(
            "error: tenants/acme: is a folder that cannot be read (Permission denied)"
        )


def test_a_stray_file_beside_an_imported_tree_is_the_one_blamed(embedded_cli: Cli) -> None:
    """A notes.yaml at the top of a tree import wrote elsewhere blamed every tenant file for
    its place, and not itself."""
    for tenant in ("acme-norway", "acme-sweden"):
        embedded_cli.write(f"imported/acme/{tenant}.yaml", f"version: 1\ncustomer: acme\ntenant: {tenant}\n")
    embedded_cli.write("imported/notes.yaml", "x: 1\n")
    result = embedded_cli("validate", "imported")
    assert result.code == 1
    assert result.err == (
        "error: imported/notes.yaml:1:1: tenant files live at tenants/<customer>/<tenant>.yaml; "
        "move this file\n"
    )


def test_store_init_that_cannot_create_says_why_and_leaves_nothing(embedded_cli: Cli) -> None:
    """Without a key, in a folder that cannot hold it, or on a file that is not a database:
    one line, exit 1, no internal error, and no empty store file left behind."""
    root = embedded_cli.root
    no_key = embedded_cli("store", "init", "--store", "sqlite:///copy.db")
    assert no_key.code == 1 and "set RECONCILER_STORE_KEY to a key for this store" in no_key.err
    assert not (root / "copy.db").exists()
    (root / ".reconciler").write_text("a file where the store's folder goes\n")
    blocked = embedded_cli("store", "init")
    assert blocked.code == 1 and "cannot create the store at" in blocked.err, blocked.err
    (root / ".reconciler").unlink()
    (root / "junk.db").write_text("not a database\n")
    junk = embedded_cli(
        "store", "init", "--store", "sqlite:///junk.db", env={"RECONCILER_STORE_KEY": TEST_KEY}
    )
    assert junk.code == 1 and "file is not a database" in junk.err, junk.err
    assert (root / "junk.db").read_text() == "not a database\n"
    for result in (no_key, blocked, junk):
        assert len(result.err.splitlines()) == 1 and "internal error" not in result.err


def test_portal_names_a_tenant_file_cannot_hold_are_never_imported_and_dump_round_trips(cli: Cli) -> None:
    """import wrote files that validate then refused; store dump wrote U+0085 and bidirectional
    controls raw, and its output did not seed again (PyYAML reads U+0085 as a line break)."""
    tenant = {
        "name": "acme-norway",
        "connections": [_conn(n, managed=False) for n in ("Oslo\u202eevil", "Visma\x85Bergen")],
    }
    fixture = {"version": 1, "customers": [{"name": "acme", "tenants": [tenant]}]}
    cli.write("live.yaml", yaml.safe_dump(fixture, sort_keys=False))  # escaped: \N, \u202E
    assert cli("store", "seed", "live.yaml").code == 0
    imported = cli("import")
    assert imported.code == 1
    assert (
        'the portal\'s connection "Oslo\\u202eevil" contains a bidirectional control (U+202E)' in imported.err
    )
    assert "contains a line break (U+0085)" in imported.err
    assert not (cli.root / "tenants").exists()
    dumped = cli("store", "dump")
    assert dumped.code == 0
    assert_text_inert(dumped.out)
    assert "\x85" not in dumped.out and "\u202e" not in dumped.out
    cli.write("dump.yaml", dumped.out)
    assert cli("store", "seed", "dump.yaml").code == 0
    assert cli("store", "dump").out == dumped.out
    names = [c["name"] for c in yaml.safe_load(dumped.out)["customers"][0]["tenants"][0]["connections"]]
    assert sorted(names) == sorted(["Oslo\u202eevil", "Visma\x85Bergen"])


def test_a_portal_name_in_a_tenant_that_has_its_file_stops_no_other_import(cli: Cli) -> None:
    """import never touches an existing file, so what that tenant holds is not its business."""
    tenants = [
        {"name": "t1", "connections": [_conn("Oslo\u202eevil", managed=False)]},
        {"name": "t2", "connections": [_conn("Bergen", managed=False)]},
    ]
    fixture = {"version": 1, "customers": [{"name": "acme", "tenants": tenants}]}
    cli.write("live.yaml", yaml.safe_dump(fixture, sort_keys=False))
    assert cli("store", "seed", "live.yaml").code == 0
    mine = cli.write("tenants/acme/t1.yaml", "version: 1\ncustomer: acme\ntenant: t1\nconnections: []\n")
    imported = cli("import")
    assert imported.code == 0, imported.err
    assert "Wrote tenants/acme/t2.yaml (acme/t2)" in imported.out
    assert mine.read_text() == "version: 1\ncustomer: acme\ntenant: t1\nconnections: []\n"


def test_a_tenant_name_longer_than_the_store_holds_is_refused_by_seed(embedded_cli: Cli) -> None:
    fixture = {"version": 1, "customers": [{"name": "acme", "tenants": [{"name": "t" * 300}]}]}
    embedded_cli.write("live.yaml", yaml.safe_dump(fixture))
    result = embedded_cli("store", "seed", "live.yaml")
    assert result.code == 1
    assert "tenants[0].name: is 300 characters; the store holds at most 200" in result.err


def test_changed_since_says_what_is_wrong_outside_git_and_when_empty(embedded_cli: Cli) -> None:
    plain = embedded_cli.root.parent / "no-git"  # the workspace is a repository; its parent is not
    (plain / "tenants").mkdir(parents=True)
    ceiling = {"GIT_CEILING_DIRECTORIES": str(embedded_cli.root.parent)}
    outside = embedded_cli("plan", "--changed-since", "HEAD", cwd=plain, env=ceiling)
    assert outside.code == 1 and "is not in a git repository" in outside.err, outside.err
    embedded_cli.write("tenants/.keep", "")
    git(embedded_cli.root, "add", "-A")
    git(embedded_cli.root, "commit", "-qm", "init")
    empty = embedded_cli("plan", "--changed-since", "")
    assert empty.code == 1 and "--changed-since '' is not a git revision" in empty.err  # was: every file


def test_a_sqlite_url_naming_a_folder_and_one_file_named_twice(embedded_cli: Cli) -> None:
    (embedded_cli.root / "folder").mkdir()
    embedded_cli.write("tenants/acme/acme-norway.yaml", _tenant_file([_decl("Oslo")]))
    folder = embedded_cli("plan", "--store", f"sqlite:///{embedded_cli.root / 'folder'}")
    assert folder.code == 1 and "is a folder; name the store's file" in folder.err  # was: disk I/O error
    path = "tenants/acme/acme-norway.yaml"
    twice = embedded_cli("validate", path, f"./tenants/../{path}")
    assert twice.code == 0, twice.err  # was: "also declared by" the same file


@pytest.mark.parametrize(
    "name",
    [
        "`" * 80 + " ![x](https://e.co/p.png) @octocat [c](https://e.co)",
        "`" * 79 + "x",
        "`" * 200 + "<b>x</b>",
        "",
    ],
)
def test_a_name_that_needs_a_fence_github_does_not_read_is_still_inert(name: str) -> None:
    """GitHub's cmark-gfm reads no backtick string over 80 as a code span's fence: a name with a
    run of 80 made the span's markdown live there (an image, a link, an @mention). An empty name
    made `` ``, no span at all, which paired with the next one on the line."""
    shown = render.md_code(name)
    fences = [len(run) for run in re.findall(r"(?<!\\)`+", shown)]
    assert max(fences, default=0) <= 80
    assert shown != "``"
    line = f"- deletes report {shown} (company {render.md_code('`` ![x](https://e.co/p.png) @octocat ``')})\n"
    assert_markdown_inert(line, headings=set(), sections=0)


def test_seed_holds_dependent_names_to_the_store_s_limits(embedded_cli: Cli) -> None:
    """An empty or 5,000-character report name was seeded, past the store's 1 to 200 (on a
    server store, its column): the portal cannot make either."""
    company = {"id": "C1", "reports": ["", "x" * 5000]}
    embedded_cli.write("live.yaml", _fixture([_conn("Old", companies=[company])]))
    result = embedded_cli("store", "seed", "live.yaml")
    assert result.code == 1
    assert "companies[0].reports[0]: is empty; write a name" in result.err
    assert "companies[0].reports[1]: is 5000 characters, over the limit of 200" in result.err


def test_seed_holds_every_text_to_what_every_store_holds(cli: Cli) -> None:
    """A server, integration, login or voucher provider past its column's 200, or a name with a
    NUL character: SQLite kept them, MariaDB and PostgreSQL refused them with the driver's words
    and no place in the file (and a SQLite dump could not be seeded into PostgreSQL). Each is
    now refused with its line and column, on every store, and nothing is written."""
    conns = [
        _conn("Long", server="s" * 201, integration="i" * 201),
        _conn("Login", authentication="sql", login="l" * 201, password="pw"),
        _conn("Voucher", voucher={"provider": "p" * 201, "document_center_path": "D:\\V"}),
        _conn("Nul\0name", companies=[{"id": "C1", "reports": ["R\0"]}]),
    ]
    cli.write("live.yaml", _fixture(conns, [{"name": "T\0"}]))
    before = dump(cli)
    result = cli("store", "seed", "live.yaml")
    assert result.code == 1
    for where in (
        "connections[0].server: is 201 characters, over the limit of 200",
        "connections[0].integration: is 201 characters, over the limit of 200",
        "connections[1].login: is 201 characters, over the limit of 200",
        "connections[2].voucher.provider: is 201 characters, over the limit of 200",
        "connections[3].name: holds a NUL character (U+0000)",
        "connections[3].companies[0].reports[0]: holds a NUL character (U+0000)",
        "report_templates[0].name: holds a NUL character (U+0000)",
    ):
        assert re.search(
            rf"live\.yaml:\d+:\d+: customers\[0\]\.tenants\[0\]\.{re.escape(where)}", result.err
        ), where
    assert dump(cli) == before


def test_a_fixture_password_from_a_variable_not_set_is_refused_where_it_is_written(
    embedded_cli: Cli,
) -> None:
    """It said `acme/acme-norway/Old: environment variable ... is not set` without a place, and
    an empty variable seeded the connection without its password."""
    embedded_cli.write(
        "live.yaml",
        _fixture([_conn("Old", authentication="sql", login="x", password={"env": "OSR_SEED_PW"})]),
    )
    for env in ({}, {"OSR_SEED_PW": ""}):
        result = embedded_cli("store", "seed", "live.yaml", env=env)
        assert result.code == 1
        assert re.fullmatch(
            r"error: live\.yaml:\d+:\d+: customers\[0\]\.tenants\[0\]\.connections\[0\]\.password\.env: "
            r"environment variable OSR_SEED_PW is not set \(or empty\); set it to the connection's "
            r"password\n",
            result.err,
        ), result.err
    assert embedded_cli("store", "seed", "live.yaml", env={"OSR_SEED_PW": "pw-1"}).code == 0


def test_connections_whose_names_count_alike_are_read_in_one_order_on_every_store(cli: Cli) -> None:
    """R1, R01 and R001 are one natural key: a stable sort by it kept the order the database
    scanned the rows in (insertion order on SQLite, heap order on PostgreSQL once a row moved),
    so dump and export listed them differently from store to store (spec.name_order)."""
    cli.write("live.yaml", _fixture([_conn("R1"), _conn("R01"), _conn("R001")]))
    assert cli("store", "seed", "live.yaml").code == 0
    names = [c["name"] for c in yaml.safe_load(dump(cli))["customers"][0]["tenants"][0]["connections"]]
    assert names == ["R001", "R01", "R1"]
    exported = cli("export", "--tenant", "acme/acme-norway")
    assert [c["name"] for c in yaml.safe_load(exported.out)["connections"]] == ["R001", "R01", "R1"]


def test_a_folder_named_like_a_tenant_file_is_called_a_folder(embedded_cli: Cli) -> None:
    """It was called "not a regular file (a pipe, device or socket?)"."""
    (embedded_cli.root / "tenants" / "acme" / "acme-norway.yaml").mkdir(parents=True)
    result = embedded_cli("validate")
    assert result.code == 1
    assert result.err == (
        "error: tenants/acme/acme-norway.yaml: is a folder named like a tenant file; rename it "
        "(a tenant file is tenants/C/T.yaml)\n"
    )


def test_import_from_a_store_without_tenants_says_so(embedded_cli: Cli) -> None:
    assert embedded_cli("store", "init").code == 0
    result = embedded_cli("import")
    assert result.code == 0 and result.out == "No tenant files written: the store has no tenants.\n"


def test_seed_replaces_report_templates_by_name_identity_on_every_store(cli: Cli) -> None:
    """store seed replaced templates by the database's collation: MariaDB took `Résumé` for
    `Resume` (and deleted it) and `Blank ` for `Blank`; SQLite and PostgreSQL kept `BUDGET`
    beside `Budget`, one name. Now every store ends alike."""

    def fixture(*names: str) -> str:
        templates = "".join(f"          - name: {json.dumps(n)}\n" for n in names)
        return (
            "version: 1\ncustomers:\n  - name: rt\n    tenants:\n      - name: t\n"
            f"        report_templates:\n{templates}"
        )

    cli.write("f1.yaml", fixture("Resume", "Blank", "Budget"))
    cli.write("f2.yaml", fixture("Résumé", "Blank ", "BUDGET"))
    assert cli("store", "seed", "f1.yaml").code == 0
    assert cli("store", "seed", "f2.yaml").code == 0
    dumped = yaml.safe_load(cli("store", "dump").out)
    (tenant,) = dumped["customers"][0]["tenants"]
    assert sorted(r["name"] for r in tenant["report_templates"]) == [
        "BUDGET",
        "Blank",
        "Blank ",
        "Resume",
        "Résumé",
    ]
    cli.write("f3.yaml", fixture("Budget", "BUDGET"))
    twice = cli("store", "seed", "f3.yaml")
    assert twice.code == 1 and "report template 'BUDGET' is listed twice" in twice.err, twice.err


def test_a_key_file_that_holds_no_key_is_named_with_what_to_do(embedded_cli: Cli) -> None:
    """Bytes that are not UTF-8 in .reconciler/store.key were an internal error; garbage was
    blamed on RECONCILER_STORE_KEY (never set), an empty or missing file too, and a folder there
    on the store's own file. Each now names the key file and says to restore it."""
    assert embedded_cli("store", "init").code == 0
    key = embedded_cli.root / ".reconciler" / "store.key"
    kept = key.read_bytes()
    restore = "; restore the key file from your backup (a new key cannot read the stored passwords)"
    cases = {
        "not text": (b"\xff\xfe\n", f"the key file {key} does not hold a store key{restore}"),
        "garbage": (b"not-a-key\n", f"the key file {key} does not hold a store key{restore}"),
        "empty": (b"", f"the key file {key} is empty{restore}"),
        "missing": (None, f"the key file {key} is missing, but the store"),
        "a folder": ("folder", f"the key file {key} cannot be read (Is a directory){restore}"),
    }
    for case, (content, message) in cases.items():
        if key.is_dir():
            key.rmdir()
        else:
            key.unlink(missing_ok=True)
        if content == "folder":
            key.mkdir()
        elif content is not None:
            key.write_bytes(content)
        for command in (["locks"], ["store", "dump"], ["history"]):
            result = embedded_cli(*command)
            assert result.code == 1 and message in result.err, (case, command, result.err)
            assert "internal error" not in result.err and "RECONCILER_STORE_KEY" not in result.err
    key.rmdir()
    key.write_bytes(kept)
    assert embedded_cli("store", "dump").code == 0


@given(st.text(alphabet="`a \n", min_size=1, max_size=60))
def test_a_fence_is_longer_than_every_backtick_run_of_its_body(body: str) -> None:
    """No line of a section can close its code block, nor a name end its code span: the fence is
    one backtick longer than the longest run (found by the regex engine since a 100-million
    character section of a portal's 10,000-character company ids took 45 s to scan)."""
    longest = max((len(run) for run in re.findall("`+", body)), default=0)
    assert render._fence_for(body) == "`" * max(3, longest + 1)
    span = render._code_span(body)
    opening = re.match("`+", span)
    assert opening is not None and len(opening.group()) == longest + 1 and span.endswith(opening.group())


def test_a_name_with_a_run_of_eighty_backticks_keeps_every_one() -> None:
    """A run GitHub cannot fence is written as escaped backticks between code spans: two window
    names that differ in that run stay two names on the page (a regression dropped the run)."""
    assert render.md_code("close" + "`" * 80 + "2026") == "`close`" + "\\`" * 80 + "`2026`"
    assert render.md_code("close" + "`" * 81 + "2026") != render.md_code("close" + "`" * 80 + "2026")


def test_a_link_loop_given_as_path_is_an_input_error(embedded_cli: Cli) -> None:
    """Path.resolve raises for a loop: every command given one as PATH stopped with an
    internal error (validate, plan, drift, apply, import, plan --changed-since)."""
    assert embedded_cli("store", "init").code == 0
    root = embedded_cli.root
    (root / "tenants" / "acme").mkdir(parents=True)
    (root / "tenants" / "acme" / "l2.yaml").symlink_to("l1")
    (root / "tenants" / "acme" / "l1").symlink_to("l2.yaml")
    (root / "la").symlink_to("lb")
    (root / "lb").symlink_to("la")
    for args in (
        ["validate", "tenants/acme/l2.yaml"],
        ["plan", "tenants/acme/l2.yaml"],
        ["drift", "la"],
        ["apply", "la"],
        ["plan", "--changed-since", "HEAD", "la"],
        ["import", "la"],
    ):
        result = embedded_cli(*args)
        assert result.code == 1 and "internal error" not in result.err, (args, result.err)
        assert "a broken link or a link loop" in result.err, (args, result.err)


def test_cut_source_check_problems_are_counted_by_tenant() -> None:
    """Thousands of failing source checks: the comment listed some and said only a total of the
    rest ("… and 5,668 more source-check problems"), where the destructive list's cut names
    its tenants and kinds."""
    check = p.SourceCheck("Oslo", ("login failed for osr_reader on sql01: " + "x" * 60,))
    create = p.Action(p.ActionKind.CREATE, "Oslo", p.Reason.CREATE_DECLARED)
    tenants = tuple(p.TenantPlan("c", f"t{i:04}", (create,), (), checks=(check,) * 3) for i in range(2000))
    out = render.markdown(p.Plan(tenants, 10))
    assert len(out) < render.MARKDOWN_LIMIT
    cut = re.search(r"- … and ([\d,]+) more source-check problems: (.*)\n", out)
    assert cut is not None, out[:2000]
    assert re.match(r"`c/t\d{4}`: 3 source-check problems; ", cut.group(2)), cut.group(2)[:300]
    assert cut.group(2).endswith(" source-check problems")
