"""Renderers are pure: Plan -> text | markdown | json, checked with literal expectations."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from markdown_it import MarkdownIt

from reconciler import plan as p
from reconciler import render, spec

SCHEMA = json.loads((Path(__file__).resolve().parent.parent / "schemas" / "plan.schema.json").read_text())
R = spec.DependentKind.REPORT


def tenant(name: str, actions: tuple[p.Action, ...]) -> p.TenantPlan:
    return p.TenantPlan("acme", name, actions, ("By hand",))


DELETE = p.Action(
    p.ActionKind.DELETE,
    "Old NAV",
    p.Reason.DELETE_TOMBSTONE,
    cascade=(p.Cascade(R, "Sales <Q1> | draft", "F0001"),),
    kept=(p.Kept(p.KeptKind.REPORT_TEMPLATE, "Tpl"),),
)
UPDATE = p.Action(
    p.ActionKind.UPDATE,
    "Visma",
    p.Reason.UPDATE_CHANGED,
    changes=(p.Change("server", "a", "b"), p.Change("password", sensitive=True)),
    status=p.Status.DRIFT,
)
PLAN = p.Plan((tenant("no", (DELETE, UPDATE)),), 10)


@pytest.mark.parametrize(
    ("change", "create", "line"),
    [
        (p.Change("server", "a", "b"), False, 'server: "a" → "b"'),
        (p.Change("companies", ["F1"], ["F1", "F2"]), False, "companies: [F1] → [F1, F2]"),
        # One portal-made id that reads like two, or like the arrow: quoted, so it reads as one.
        (
            p.Change("companies", ["C1", "C2] → [C3"], ["C1", "F0001, F0002"]),
            False,
            'companies: [C1, "C2] → [C3"] → [C1, "F0001, F0002"]',
        ),
        (p.Change("login", "x", None), False, 'login: "x" → (none)'),
        (p.Change("private", False, True), False, "private: false → true"),
        (p.Change("password", sensitive=True), False, "password: (sensitive value changed)"),
        (p.Change("password", sensitive=True), True, "password: (sensitive value)"),
        (p.Change("server", None, "s"), True, 'server: "s"'),
    ],
)
def test_change_line(change: p.Change, create: bool, line: str) -> None:
    assert render.change_line(change, create=create) == line


def test_text_plan() -> None:
    assert (
        render.text(PLAN)
        == """\
acme/no
  - delete "Old NAV"
      cascade (1 dependent deleted):
        - report "Sales <Q1> | draft" (company F0001)
      kept (detached from the connection):
        = report_template "Tpl"
  ~ update "Visma"  (drift)
      server: "a" → "b"
      password: (sensitive value changed)
  ? unmanaged "By hand" (not declared, not managed: never deleted)

Plan: 0 to create, 1 to update, 0 to rename, 0 to adopt, 1 to delete; 1 dependent cascades.
Needs --allow-cascade: 1 dependent would be deleted
Legend: ? unmanaged (never deleted), = kept (detached, not deleted).
"""
    )


def test_text_colour_only_when_asked() -> None:
    assert "\033[" not in render.text(PLAN)
    assert "\033[31m- delete" in render.text(PLAN, color=True)


ADOPT = p.Action(p.ActionKind.ADOPT, "By hand", p.Reason.ADOPT_UNMANAGED)
RENAME = p.Action(p.ActionKind.RENAME, "New", p.Reason.RENAME_PREVIOUS_NAME, previous_name="Old")
CREATE = p.Action(p.ActionKind.CREATE, "Fresh", p.Reason.CREATE_DECLARED)
BLOCKED = p.Action(p.ActionKind.DELETE, "Kept safe", p.Reason.DELETE_TOMBSTONE, blocked="protected")


@pytest.mark.parametrize(
    ("actions", "unmanaged", "legend"),
    [
        ((CREATE, UPDATE), (), ""),  # + ~ - need no legend
        ((), (), ""),
        ((RENAME,), (), "Legend: > rename."),
        ((ADOPT, CREATE), (), "Legend: * adopt."),
        ((BLOCKED,), (), "Legend: ! blocked or needs a secret."),
        ((CREATE,), ("By hand",), "Legend: ? unmanaged (never deleted)."),
        (
            (RENAME, ADOPT, DELETE),
            ("x",),
            "Legend: > rename, * adopt, ? unmanaged (never deleted), = kept (detached, not deleted).",
        ),
    ],
)
def test_legend_only_for_symbols_beyond_create_update_delete(
    actions: tuple[p.Action, ...], unmanaged: tuple[str, ...], legend: str
) -> None:
    plan = p.Plan((p.TenantPlan("acme", "no", actions, unmanaged),), 10)
    text = render.text(plan)
    assert render.legend(plan) == legend
    assert text.endswith(legend + "\n") if legend else "Legend" not in text


def test_colours_are_readable_on_dark_and_light_terminals() -> None:
    """No dark blue (34), the one that vanishes on black; adopt has a colour of its own."""
    colours = [colour for _, colour in render.SYMBOLS.values()]
    assert "blue" not in colours and len(set(colours)) == len(colours)
    assert "\033[35m* adopt" in render.text(p.Plan((tenant("no", (ADOPT,)),), 10), color=True)


def test_json_plan_matches_schema_and_hides_secrets() -> None:
    obj = render.plan_obj(PLAN)
    jsonschema.validate(obj, SCHEMA)
    assert obj["tenants"][0]["actions"][1]["changes"] == [
        {"field": "server", "before": "a", "after": "b"},
        {"field": "password", "sensitive": True},
    ]
    assert obj["summary"] == {
        "create": 0,
        "update": 1,
        "rename": 0,
        "adopt": 0,
        "delete": 1,
        "cascade": 1,
        "blocked": 0,
    }


def _tokens(markdown: str) -> list[str]:
    return [t.type for t in MarkdownIt("commonmark").enable(["table", "strikethrough"]).parse(markdown)]


def test_markdown_structure_summary_first_then_sections() -> None:
    out = render.markdown(PLAN)
    md = MarkdownIt("commonmark").enable(["table", "strikethrough"])
    tokens = md.parse(out)
    types = [t.type for t in tokens]
    assert types[0] == "heading_open" and tokens[1].content == "osr-reconciler plan"
    assert "table_open" in types
    first_table = types.index("table_open")
    html = [t.content for t in tokens if t.type == "html_block"]
    assert html and html[0].startswith("<details><summary><code>acme/no</code>: 1 delete, 1 update")
    assert types.index("html_block") > first_table
    # The destructive action and its cascade come before the per-tenant sections.
    destructive = out.index("### Destructive actions")
    assert destructive < out.index("<details>")
    assert "deletes report `Sales <Q1> | draft` (company `F0001`)" in out
    rendered = md.render(out)
    assert "<table>" in rendered and "<script" not in rendered


def test_markdown_is_cut_under_the_limit_with_a_note() -> None:
    many = p.Plan(tuple(tenant(f"t{i:04d}", (UPDATE,) * 20) for i in range(400)), 10)
    out = render.markdown(many)
    assert len(out) < render.MARKDOWN_LIMIT
    assert "tenants left out to stay under 65,000 characters" in out
    assert "The full plan is in the JSON and HTML artifacts of this job." in out
    assert out.count("<details>") == out.count("</details>")
    small = render.markdown(PLAN)
    assert "left out" not in small


def test_markdown_of_a_large_fleet_shows_the_tenants_that_change_first() -> None:
    """2,000 tenants without changes and one change in the last: the comment cannot hold every
    section, so the ones saying only "no changes" give way and the change is shown."""
    quiet = tuple(p.TenantPlan("acme", f"t{i:04d}", (), ()) for i in range(2000))
    out = render.markdown(p.Plan((*quiet, tenant("zz-last", (UPDATE,))), 10))
    assert len(out) < render.MARKDOWN_LIMIT
    assert "<code>acme/zz-last</code>: 1 update" in out
    assert "2,000 of 2,001 tenants have no changes and are not listed here." in out
    assert "tenants without changes" in out  # named in the note that points at the artifacts
    assert "<code>acme/t0000</code>" not in out
    few = render.markdown(p.Plan((*quiet[:3], tenant("zz-last", (UPDATE,))), 10))
    assert "<code>acme/t0000</code>: no changes" in few and "not listed" not in few  # all fit


def test_text_of_a_large_fleet_shows_its_changes_and_counts_the_rest() -> None:
    """A 2,000-tenant plan with one change prints that change and one line for the tenants
    without changes, not 2,000 sections saying "no changes"; a few are named. A tenant with a
    note is shown even without changes."""
    quiet = tuple(p.TenantPlan("acme", f"t{i:04d}", (), ()) for i in range(2000))
    noted = p.TenantPlan("acme", "noted", (), (), ("GP: password not compared",))
    out = render.text(p.Plan((*quiet, noted, tenant("zz-last", (UPDATE,))), 10))
    assert "acme/zz-last\n  ~ update" in out
    assert "acme/noted\n  no changes\n  note: GP: password not compared" in out
    assert "No changes in 2,000 tenants.\n" in out
    assert "acme/t0000" not in out and out.count("\n") < 20
    few = render.text(p.Plan((*quiet[:2], tenant("zz-last", (UPDATE,))), 10))
    assert "No changes: acme/t0000, acme/t0001.\n" in few and few.count("no changes") == 0


def test_summary_line() -> None:
    assert render.summary_line(PLAN) == (
        "Plan: 0 to create, 1 to update, 0 to rename, 0 to adopt, 1 to delete; 1 dependent cascades."
    )


FULL = p.Action(
    p.ActionKind.RENAME,
    "New",
    p.Reason.RENAME_PORTAL,
    previous_name="Old",
    status=p.Status.DRIFT,
    changes=(p.Change("password", sensitive=True, note="n"),),
    blocked="protected",
    needs_secret="env OSR_X",
    renamed_in_portal=("A", "B"),
)


def test_json_action_keys_keep_their_order_whatever_is_set() -> None:
    """Optional keys sit where the view declares them, so a plan's JSON never reorders."""
    action = json.loads(render.json_text(p.Plan((tenant("no", (FULL,)),), 10)))["tenants"][0]["actions"][0]
    assert list(action) == [
        "action",
        "connection",
        "previous_name",
        "reason",
        "status",
        "changes",
        "cascade",
        "kept",
        "blocked",
        "needs_secret",
        "renamed_in_portal",
    ]
    assert list(json.loads(render.json_text(PLAN))["tenants"][0]["actions"][1]) == [
        "action",
        "connection",
        "reason",
        "status",
        "changes",
        "cascade",
        "kept",
    ]


def test_json_enum_members_are_written_as_their_words() -> None:
    text = render.json_text(p.Plan((tenant("no", (FULL,)),), 10))
    jsonschema.validate(json.loads(text), SCHEMA)
    assert '"action": "rename"' in text and '"reason": "rename_because_renamed_in_portal"' in text
    assert '"status": "drift"' in text and "ActionKind" not in text and "Status." not in text


def test_drift_json_counts_each_status_and_unmanaged() -> None:
    plan = p.Plan((p.TenantPlan("acme", "no", (FULL, CREATE, UPDATE), ("By hand", "Other")),), 10)
    obj = json.loads(json.dumps(render.drift_obj(plan)))
    assert obj["summary"] == {"drift": 2, "pending": 1, "drift_and_pending": 0, "unmanaged": 2}
    assert [(i["connection"], i["status"], i["action"]) for i in obj["tenants"][0]["connections"]] == [
        ("New", "drift", "rename"),
        ("Fresh", "pending", "create"),
        ("Visma", "drift", "update"),
        ("By hand", "unmanaged", None),
        ("Other", "unmanaged", None),
    ]


def test_drift_names_a_name_changed_in_case_only_and_not_the_name_of_a_create() -> None:
    """`Visma Oslo` made `VISMA OSLO` in the portal is one identity, so not a rename: an update of
    the name, which drift lists as the plan does (it listed no field at all)."""
    recased = p.Action(
        p.ActionKind.UPDATE,
        "Visma Oslo",
        p.Reason.UPDATE_CHANGED,
        changes=(p.Change("name", "VISMA OSLO", "Visma Oslo"),),
        status=p.Status.DRIFT,
    )
    made = p.Action(
        p.ActionKind.CREATE, "Fresh", p.Reason.CREATE_DECLARED, changes=(p.Change("name", None, "Fresh"),)
    )
    obj = render.drift_obj(p.Plan((p.TenantPlan("acme", "no", (recased, made), ()),), 10))
    assert [i["fields"] for i in obj["tenants"][0]["connections"]] == [["name"], []]
    plan = p.Plan((p.TenantPlan("acme", "no", (recased,), ()),), 10)
    assert '"Visma Oslo"  update: name\n' in render.drift_text(plan)


def test_a_line_break_and_a_backslash_n_are_two_names_in_text_and_markdown() -> None:
    """inert() shows a line break as \\n; a name holding a backslash and an n printed the same.
    Names double their own backslashes; a server value keeps its own (SQL01\\VISMA)."""
    real, typed = "Sales\nEU", "Sales\\nEU"
    assert render.quoted(real) == '"Sales\\nEU"'
    assert render.quoted(typed) == '"Sales\\\\nEU"'
    assert render.md_code(real) != render.md_code(typed)
    assert render.value("SQL01\\VISMA") == '"SQL01\\VISMA"'


def test_a_value_with_a_line_break_and_one_with_a_backslash_n_are_two_values_in_every_format() -> None:
    """The server `sql01\\new` (host sql01, instance new), set in the portal to `sql01` + line
    break + `ew`: the change's two sides printed the same in text, markdown and HTML. A value
    that holds what does not show is escaped with its own backslashes doubled, and says so."""
    from reconciler import render_html

    typed, real = "sql01\\new", "sql01\new"
    change = p.Change("server", typed, real)
    assert render.change_line(change) == (
        'server: "sql01\\new" → "sql01\\new" (escaped: it holds characters that do not show)'
    )
    assert render.value("sq\\l01\n") == '"sq\\\\l01\\n" (escaped: it holds characters that do not show)'
    plan = p.Plan(
        (
            tenant(
                "no", (p.Action(p.ActionKind.UPDATE, "Visma", p.Reason.UPDATE_CHANGED, changes=(change,)),)
            ),
        ),
        10,
    )
    assert "(escaped: it holds characters that do not show)" in render.markdown(plan)
    page = render_html.plan_page(plan)
    assert "&quot;sql01\\new&quot;" in page
    assert '&quot;sql01<span class="ctl" title="invisible character">U+000A</span>ew&quot;' in page


def test_markdown_that_cuts_a_tenant_section_says_so_with_what_the_section_holds() -> None:
    """One tenant with 400 connections made by hand under long names: its section was cut to
    `… 143 more lines of this tenant left out` with no note that the comment was cut, no count
    by kind and no pointer to the full plan."""
    hand = tuple(f"Made by hand {i:03d} " + "x" * 170 for i in range(400))
    out = render.markdown(p.Plan((p.TenantPlan("acme", "no", (), hand, ()),), 10))
    assert len(out) < render.MARKDOWN_LIMIT
    assert "more lines of this tenant left out" in out
    assert (
        "> This comment was cut to stay under 65,000 characters (part of one tenant section, "
        "`acme/no`: 400 unmanaged in all)" in out
    )
    assert "The full plan is in the JSON and HTML artifacts of this job." in out


def test_a_hint_of_any_length_keeps_the_comment_under_its_limit() -> None:
    """RECONCILER_HINT_ALLOW_CASCADE of 76,000 characters made the comment 83,388."""
    delete = p.Action(
        p.ActionKind.DELETE, "Old", p.Reason.DELETE_TOMBSTONE, cascade=(p.Cascade(R, "P&L", "F1"),)
    )
    hint = "add the label reconciler:allow-cascade " * 2_000
    out = render.markdown(p.Plan((tenant("no", (delete,)),), 10), hints={"--allow-cascade": hint})
    assert len(out) < render.MARKDOWN_LIMIT
    assert f"To let the apply through: {render.md_text(hint[:299])}…." in out
