"""The differ is pure: desired + live -> Plan. Tables of literal cases, no store, no mocks."""

from __future__ import annotations

import dataclasses

import pytest

from reconciler import differ, errors, secrets, spec, state
from reconciler import plan as p
from reconciler.declared import DesiredConnection, DesiredTenant

BASE = spec.ConnectionSpec(
    name="Visma Oslo",
    integration="visma-business",
    server="SQL01\\VISMA",
    database="vbsys",
    authentication=spec.Authentication.SQL,
    login="osr",
    allow_others_to_edit=False,
    private=False,
    companies=("F0001", "F0002"),
    voucher=None,
    write_back=False,
    protected=False,
)
REF = secrets.SecretRef("OSR_PW", None)
FPS = {REF: "fp-1"}


def desired(
    *conns: DesiredConnection, prune: bool = False, tombstones: tuple[str, ...] = ()
) -> DesiredTenant:
    return DesiredTenant("acme", "no", "tenants/acme/no.yaml", "digest", prune, conns, tombstones)


def want(
    s: spec.ConnectionSpec = BASE, previous: tuple[str, ...] = (), ref: secrets.SecretRef | None = REF
) -> DesiredConnection:
    return DesiredConnection(s, ref, previous, True, False)


def live_conn(
    s: spec.ConnectionSpec = BASE,
    *,
    id: int = 1,
    managed: bool = True,
    deps: dict[str, list[tuple[spec.DependentKind, str]]] | None = None,
    password_fp: str | None = "fp-1",
) -> state.LiveConnection:
    deps = deps or {}
    companies = tuple(
        state.LiveCompany(c, tuple(state.Dependent(k, n) for k, n in deps.get(c, ()))) for c in s.companies
    )
    applied = spec.spec_fingerprint(s, password_fp) if managed else None
    return state.LiveConnection(id, s, companies, password_fp, managed, 3, applied)


def live(*conns: state.LiveConnection, templates: tuple[state.ReportTemplate, ...] = ()) -> state.LiveState:
    tenant = state.LiveTenant(7, "acme", "no", conns, templates)
    return state.LiveState({"acme/no": tenant}, {"acme": ("no", "se")})


def one(result: p.Plan) -> p.Action:
    (action,) = result.tenants[0].actions
    return action


R = spec.DependentKind.REPORT
B = spec.DependentKind.BUDGET_FLOW


@pytest.mark.parametrize(
    ("desired_spec", "changes"),
    [
        (BASE, None),
        (dataclasses.replace(BASE, server="sql01\\visma", database="VBSYS"), None),
        # A port given with an instance bypasses the SQL Browser: another way to reach the server.
        (
            dataclasses.replace(BASE, server="SQL01\\VISMA,1433"),
            [p.Change("server", "SQL01\\VISMA", "SQL01\\VISMA,1433")],
        ),
        (dataclasses.replace(BASE, companies=("f0002", "F0001")), None),
        # A company kept is kept as the portal spells it (apply renames no company): `after` is
        # what the store will hold, not the file's spelling of it.
        (
            dataclasses.replace(BASE, companies=("f0002", "F0003")),
            [p.Change("companies", ["F0001", "F0002"], ["F0002", "F0003"])],
        ),
        (dataclasses.replace(BASE, server="SQL02"), [p.Change("server", "SQL01\\VISMA", "SQL02")]),
        (dataclasses.replace(BASE, private=True), [p.Change("private", False, True)]),
        (dataclasses.replace(BASE, name="visma oslo"), [p.Change("name", "Visma Oslo", "visma oslo")]),
        (
            dataclasses.replace(BASE, voucher=spec.Voucher("visma-document-center", "\\\\fs\\v")),
            [
                p.Change("voucher.provider", None, "visma-document-center"),
                p.Change("voucher.document_center_path", None, "\\\\fs\\v"),
            ],
        ),
    ],
)
def test_diff_field_changes(desired_spec: spec.ConnectionSpec, changes: list[p.Change] | None) -> None:
    result = differ.diff([desired(want(desired_spec))], live(live_conn()), FPS)
    if changes is None:
        assert result.tenants[0].actions == ()
    else:
        action = one(result)
        assert (action.action, list(action.changes)) == (p.ActionKind.UPDATE, changes)


def test_diff_password_change_is_sensitive_and_valueless() -> None:
    action = one(differ.diff([desired(want())], live(live_conn()), {REF: "fp-2"}))
    assert action.changes == (p.Change("password", sensitive=True),)


def test_diff_unavailable_password_is_a_note_not_a_change() -> None:
    result = differ.diff([desired(want())], live(live_conn()), {REF: None})
    assert result.tenants[0].actions == ()
    assert result.tenants[0].notes == ("Visma Oslo: password not compared (env OSR_PW not set)",)


def test_diff_company_removal_cascades_that_company_only() -> None:
    conn = live_conn(deps={"F0001": [(R, "P&L")], "F0002": [(B, "Budget"), (R, "Bergen")]})
    action = one(
        differ.diff([desired(want(dataclasses.replace(BASE, companies=("F0001",))))], live(conn), FPS)
    )
    assert action.cascade == (p.Cascade(B, "Budget", "F0002"), p.Cascade(R, "Bergen", "F0002"))


def test_cascades_listed_after_the_diff_are_those_a_diff_with_every_dependent_lists() -> None:
    """A plan is made before dependents are read (only those it may cascade to are), then its
    cascades are listed (with_cascades, which no longer diffs the tenant again): the plan must
    be the one a diff of the live state with every dependent makes, for each kind of action
    that cascades, and for none that does not."""

    def made(name: str, id: int, *, managed: bool = True, companies: tuple[str, ...] = ("F0001", "F0002")):
        s = dataclasses.replace(BASE, name=name, companies=companies)
        deps = {c: [(R, f"{name} {c}"), (B, f"Budget {c}")] for c in companies}
        conn = live_conn(s, id=id, managed=managed, deps=deps)
        rows = tuple(dataclasses.replace(c, row_id=id * 10 + i) for i, c in enumerate(conn.companies))
        return dataclasses.replace(conn, companies=rows)

    full_conns = (
        made("Visma Oslo", 1),  # F0002 removed: its dependents
        made("Tombed", 2),  # deleted by a tombstone: all
        made("Pruned", 3),  # deleted, not declared: all
        made("Hand", 4, managed=False),  # adopted without F0001
        made("Old Name", 5, companies=("F0001", "F0002", "F0003")),  # renamed, F0003 removed
        made("Kept", 6),  # unchanged: nothing
    )
    wanted = desired(
        want(dataclasses.replace(BASE, companies=("F0001",))),
        want(dataclasses.replace(BASE, name="Hand", companies=("F0002",))),
        want(
            dataclasses.replace(BASE, name="New Name", companies=("f0002", "F0001")), previous=("Old Name",)
        ),
        want(dataclasses.replace(BASE, name="Kept")),
        want(dataclasses.replace(BASE, name="Brand New")),
        prune=True,
        tombstones=("Tombed",),
    )
    full = live(*full_conns, templates=(state.ReportTemplate("Tpl", 2),))
    bare = live(
        *(
            dataclasses.replace(
                c, companies=tuple(dataclasses.replace(x, dependents=()) for x in c.companies)
            )
            for c in full_conns
        ),
        templates=(state.ReportTemplate("Tpl", 2),),
    )
    planned = differ.diff([wanted], bare, FPS)
    assert all(a.cascade == () for _, a in planned.all_actions())
    needed = differ.cascade_companies(planned, bare)
    assert needed == {"acme/no": {11, 20, 21, 30, 31, 40, 52}}
    listed = differ.with_cascades(planned, full)
    assert listed == differ.diff([wanted], full, FPS)
    assert {a.connection: len(a.cascade) for _, a in listed.all_actions()} == {
        "Tombed": 4,
        "Pruned": 4,
        "New Name": 2,
        "Visma Oslo": 2,
        "Hand": 2,
        "Brand New": 0,
    }


def test_diff_rename_by_previous_name_keeps_id() -> None:
    renamed = dataclasses.replace(BASE, name="Visma Norway")
    action = one(differ.diff([desired(want(renamed, previous=("visma oslo",)))], live(live_conn(id=42)), FPS))
    assert (action.action, action.previous_name, action.live_id) == (p.ActionKind.RENAME, "Visma Oslo", 42)
    assert action.changes == (p.Change("name", "Visma Oslo", "Visma Norway"),)


@pytest.mark.parametrize("prune", [False, True])
def test_a_previous_name_that_is_another_live_connection_is_noted(prune: bool) -> None:
    """`name: Beta, previous_names: [Alpha]` with both in the portal: Beta (made by hand) is
    the connection, and Alpha is not renamed (with prune, it is deleted): said, not silent."""
    beta = dataclasses.replace(BASE, name="Beta")
    alpha = live_conn(dataclasses.replace(BASE, name="Alpha"), id=1)
    hand = live_conn(beta, id=2, managed=False)
    result = differ.diff([desired(want(beta, previous=("Alpha",)), prune=prune)], live(alpha, hand), FPS)
    (t,) = result.tenants
    assert [(a.action, a.connection) for a in t.actions] == [
        *([(p.ActionKind.DELETE, "Alpha")] if prune else []),
        (p.ActionKind.ADOPT, "Beta"),
    ]
    assert t.notes == (
        "Beta: previous name Alpha is another live connection, not renamed: the portal has a "
        "connection of the name itself; remove the previous name, or delete one of the two",
    )
    renamed = differ.diff([desired(want(beta, previous=("Alpha",)))], live(alpha), FPS)
    assert renamed.tenants[0].notes == ()  # the usual rename: no note


@pytest.mark.parametrize(
    ("managed", "protected", "blocked"),
    [
        (True, False, None),
        (True, True, "protected: set protected: false on the live connection first"),
        (
            False,
            False,
            "unmanaged: the tool deletes only connections it created or adopted; "
            "declare it to adopt it first, or delete it in the portal",
        ),
    ],
)
def test_diff_tombstone(managed: bool, protected: bool, blocked: str | None) -> None:
    conn = live_conn(
        dataclasses.replace(BASE, protected=protected), managed=managed, deps={"F0001": [(R, "P&L")]}
    )
    templates = (state.ReportTemplate("Tpl", 1), state.ReportTemplate("Other", None))
    result = differ.diff([desired(tombstones=("VISMA OSLO",))], live(conn, templates=templates), FPS)
    action = one(result)
    assert (action.action, action.reason) == (p.ActionKind.DELETE, p.Reason.DELETE_TOMBSTONE)
    assert action.blocked == blocked
    assert action.cascade == (p.Cascade(R, "P&L", "F0001"),)
    assert action.kept == (p.Kept("report_template", "Tpl"),)
    assert result.summary.delete == (0 if blocked else 1)
    assert result.summary.blocked == (1 if blocked else 0)


@pytest.mark.parametrize(
    ("prune", "expected"),
    [
        (False, []),
        (True, [(p.ActionKind.DELETE, "Visma Oslo", p.Reason.DELETE_PRUNED)]),
    ],
)
def test_diff_prune_deletes_only_managed(
    prune: bool, expected: list[tuple[p.ActionKind, str, p.Reason]]
) -> None:
    hand = live_conn(dataclasses.replace(BASE, name="Hand"), id=2, managed=False)
    result = differ.diff([desired(prune=prune)], live(live_conn(), hand), FPS)
    assert [(a.action, a.connection, a.reason) for a in result.tenants[0].actions] == expected
    assert result.tenants[0].unmanaged == ("Hand",)


def test_diff_adopts_unmanaged_match() -> None:
    action = one(differ.diff([desired(want())], live(live_conn(managed=False)), FPS))
    assert (action.action, action.reason) == (p.ActionKind.ADOPT, p.Reason.ADOPT_UNMANAGED)


def test_diff_orders_actions_delete_rename_update_adopt_create() -> None:
    conns = (
        live_conn(dataclasses.replace(BASE, name="Old"), id=1),
        live_conn(dataclasses.replace(BASE, name="Before"), id=2),
        live_conn(dataclasses.replace(BASE, name="Upd"), id=3),
        live_conn(dataclasses.replace(BASE, name="Hand"), id=4, managed=False),
    )
    result = differ.diff(
        [
            desired(
                want(dataclasses.replace(BASE, name="New")),
                want(dataclasses.replace(BASE, name="Hand")),
                want(dataclasses.replace(BASE, name="Upd", private=True)),
                want(dataclasses.replace(BASE, name="After"), previous=("Before",)),
                tombstones=("Old",),
            )
        ],
        live(*conns),
        FPS,
    )
    assert [a.action for a in result.tenants[0].actions] == list(p.ORDER)


def test_diff_mass_delete_breakers() -> None:
    conns = tuple(live_conn(dataclasses.replace(BASE, name=f"C{i}"), id=i) for i in range(3))
    result = differ.diff([desired(prune=True)], live(*conns), FPS, max_delete=2)
    assert result.mass_delete == (p.TooManyDeletes(3, 2), p.EveryConnectionDeleted("acme/no", 3))
    assert [str(m) for m in result.mass_delete] == [
        "3 connections would be deleted, more than --max-delete 2",
        "acme/no: every connection of the tenant would be deleted (3)",
    ]


def test_diff_drift_and_pending_are_told_apart() -> None:
    applied = spec.spec_fingerprint(BASE, "fp-1")
    by_hand = dataclasses.replace(live_conn(dataclasses.replace(BASE, login="other")), applied_fp=applied)
    assert one(differ.diff([desired(want())], live(by_hand), FPS)).status is p.Status.DRIFT
    git = want(dataclasses.replace(BASE, private=True))
    assert one(differ.diff([desired(git)], live(live_conn()), FPS)).status is p.Status.PENDING
    assert one(differ.diff([desired(git)], live(by_hand), FPS)).status is p.Status.DRIFT_AND_PENDING


def test_diff_unknown_tenant_names_known_ones() -> None:
    other = DesiredTenant("acme", "dk", "tenants/acme/dk.yaml", "d", False, (), ())
    with pytest.raises(errors.InputError) as exc:
        differ.diff([other], live(), FPS)
    assert exc.value.lines() == [
        "tenants/acme/dk.yaml: tenant acme/dk does not exist in the store "
        "(tenants are created in the portal); the store knows acme/no, acme/se"
    ]


@pytest.mark.parametrize(
    ("server", "normal"),
    [
        ("SQL01\\VISMA", "sql01\\visma"),
        ("host,1433", "host"),
        ("host,1500", "host,1500"),
        ("tcp:Host , 1433", "host"),
        ("10.0.0.1", "10.0.0.1"),
        ("[FE80:0:0::1],1433", "[fe80::1]"),
        ("0:0::1", "[::1]"),
        ("10.0.0.1\\SQL", "10.0.0.1\\sql"),
        ("1.2.3", "1.2.3"),
        ("DB-2.corp", "db-2.corp"),
    ],
)
def test_normalize_server(server: str, normal: str) -> None:
    assert spec.normalize_server(server) == normal


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Visma Oslo", "VISMA oslo"),
        ("Tromso\u0308", "TROMSÖ"),
        ("Ålesund", "A\u030alesund"),
        ("Straße", "STRASSE"),
        ("ǅ", "ǆ"),
    ],
)
def test_identity_is_one_name_in_any_case_or_composition(a: str, b: str) -> None:
    assert spec.identity(a) == spec.identity(b)
    assert spec.identity(a) != spec.identity(a + "x")


def test_diff_unavailable_password_is_noted_even_when_nothing_is_stored() -> None:
    result = differ.diff([desired(want())], live(live_conn(password_fp=None)), {REF: None})
    assert result.tenants[0].actions == ()
    assert result.tenants[0].notes == ("Visma Oslo: password not compared (env OSR_PW not set)",)


def test_kept_templates_are_in_one_order_whatever_order_the_store_gave() -> None:
    """R1 and R01 count alike: the text decides between them, not the database's collation
    (which decided the order the store read them in)."""
    kept = []
    for order in ((0, 1, 2), (2, 1, 0)):
        names = ("R01", "R1", "r1")
        templates = tuple(state.ReportTemplate(names[i], 1) for i in order)
        result = differ.diff(
            [desired(tombstones=("VISMA OSLO",))], live(live_conn(), templates=templates), FPS
        )
        kept.append([k.name for k in one(result).kept])
    assert kept[0] == kept[1] == ["R01", "R1", "r1"]


@pytest.mark.parametrize(
    ("managed", "prune"), [(False, True), (True, True), (True, False)], ids=["unmanaged", "pruned", "kept"]
)
def test_a_live_connection_that_looks_like_a_declared_one_is_noted(managed: bool, prune: bool) -> None:
    """The file declares Rapport, the portal also holds Rаpport (a Cyrillic а) that no entry
    matches: the plan listed it as unmanaged (or deleted it, with prune; or, managed without
    prune, said nothing of it) without a word, which reads as the declared connection."""
    look = dataclasses.replace(BASE, name="Visma Оslo")  # a Cyrillic О
    result = differ.diff(
        [desired(want(), prune=prune)], live(live_conn(), live_conn(look, id=2, managed=managed)), FPS
    )
    (note,) = result.tenants[0].notes
    assert note == (
        '"Visma Оslo" in the portal looks the same as "Visma Oslo" in the file and is another '
        "connection (U+041E CYRILLIC CAPITAL LETTER O where the other has U+004F LATIN CAPITAL "
        "LETTER O): rename it in the portal"
    )


def test_a_portal_name_with_a_long_s_beside_a_declared_f_is_noted() -> None:
    """`Staſſ Oslo` (the long s, which case folds to s and looks like f) beside the file's
    `Staff Oslo`: their identities (`stass oslo`, `staff oslo`) differ in ASCII alone, which
    read as two names typed apart, and the plan listed the portal's as unmanaged without a word."""
    declared = dataclasses.replace(BASE, name="Staff Oslo")
    look = dataclasses.replace(BASE, name="Sta\u017f\u017f Oslo")
    result = differ.diff([desired(want(declared))], live(live_conn(declared), live_conn(look, id=2)), FPS)
    (note,) = result.tenants[0].notes
    assert note.startswith('"Sta\u017f\u017f Oslo" in the portal looks the same as "Staff Oslo" in the file')
    assert "U+017F LATIN SMALL LETTER LONG S" in note


@pytest.mark.parametrize(
    ("portal", "character"),
    [
        ("AC\u1d0dE OSLO", "U+1D0D LATIN LETTER SMALL CAPITAL M"),  # ᴍ: Unicode's ʍ
        ("\u0432ISMA OSLO", "U+0432 CYRILLIC SMALL LETTER VE"),  # в: ʙ's shape, read as B
    ],
)
def test_a_portal_name_in_small_capitals_beside_a_declared_one_is_noted(portal: str, character: str) -> None:
    """Small capitals are read as their capitals, and so is what Unicode takes for one: the
    portal's `ACᴍE OSLO` (ᴍ, Unicode's ʍ) was another name than the file's `Acme Oslo`, and
    `вISMA OSLO` than `BISMA Oslo`, listed as unmanaged without a word."""
    declared = dataclasses.replace(BASE, name="Acme Oslo" if "\u1d0d" in portal else "BISMA Oslo")
    look = dataclasses.replace(BASE, name=portal)
    result = differ.diff([desired(want(declared))], live(live_conn(declared), live_conn(look, id=2)), FPS)
    (note,) = result.tenants[0].notes
    assert note.startswith(f'"{portal}" in the portal looks the same as "{declared.name}" in the file')
    assert character in note


def test_the_look_alike_note_is_inert_in_every_output() -> None:
    """The note quotes a portal name: one with what does not show (a line break, a bidi
    override, a zero-width space; it looks like the declared one) cannot start a line or turn
    the text around in any output."""
    from reconciler import render, render_html

    hostile = "Visma \u200bОslo\u202e\r\n"
    result = differ.diff(
        [desired(want())],
        live(live_conn(), live_conn(dataclasses.replace(BASE, name=hostile), id=2, managed=False)),
        FPS,
    )
    (note,) = result.tenants[0].notes
    assert note.startswith(f'"{hostile}" in the portal looks the same as "Visma Oslo"')
    for out in (render.text(result), render.markdown(result), render_html.plan_page(result)):
        assert "Оslo\u202e" not in out and "\u200b" not in out and "Оslo\r\n" not in out


def _renamed_in_portal(s: spec.ConnectionSpec, *, applied: str, id: int) -> state.LiveConnection:
    """A connection the tool applied as `applied`, renamed in the portal since (same id)."""
    conn = live_conn(dataclasses.replace(s, name=applied), id=id)
    return dataclasses.replace(conn, spec=s, applied_name=applied)


@pytest.mark.parametrize("managed", [False, True], ids=["made-by-hand", "managed"])
def test_a_portal_rename_beside_a_new_connection_of_the_applied_name_is_refused(managed: bool) -> None:
    """The tool applied X; the portal renamed it Q and made another X. Matched by name, the other
    X was adopted and the tool's own connection (its dependents) pruned as "Q"; matched by id,
    its rename back would take a name in use. Neither: an error that says what to settle."""
    q = _renamed_in_portal(dataclasses.replace(BASE, name="Q"), applied="Visma Oslo", id=1)
    other = live_conn(id=2, managed=managed)
    assert q.renamed_in_portal
    with pytest.raises(errors.InputError) as refused:
        differ.diff([desired(want(), prune=True)], live(q, other), FPS)
    assert 'connection "Visma Oslo": the portal renamed it to "Q" and has another connection named ' in str(
        refused.value.problems[0].message
    )
    # Portal renames that swap two names are still undone, each by its id.
    a = _renamed_in_portal(dataclasses.replace(BASE, name="B"), applied="A", id=1)
    b = _renamed_in_portal(dataclasses.replace(BASE, name="A"), applied="B", id=2)
    plan = differ.diff(
        [desired(want(dataclasses.replace(BASE, name="A")), want(dataclasses.replace(BASE, name="B")))],
        live(a, b),
        FPS,
    )
    assert {(x.action, x.previous_name, x.connection) for x in plan.tenants[0].actions} == {
        (p.ActionKind.RENAME, "B", "A"),
        (p.ActionKind.RENAME, "A", "B"),
    }


@pytest.mark.parametrize(
    "other",
    ["Visma Оslo", "Visma Oslo ", "V\u0130SMA OSLO"],
    ids=["cyrillic", "trailing-space", "turkish-dotted-capital"],
)
def test_a_rename_to_a_name_another_live_connection_looks_like_is_refused(other: str) -> None:
    """`name: Visma Oslo, previous_names: [Old]` beside the portal's `Visma Оslo` (a Cyrillic
    О): renamed, the tenant held two connections that look the same (a create of it was
    refused, the rename went through). A rename that corrects the portal's own look-alike name
    is not refused: the connection gives that name up."""
    old = live_conn(dataclasses.replace(BASE, name="Old"), id=1)
    look = live_conn(dataclasses.replace(BASE, name=other), id=2, managed=False)
    with pytest.raises(errors.InputError) as refused:
        differ.diff([desired(want(previous=("Old",)))], live(old, look), FPS)
    assert f'connection "Visma Oslo" looks the same as the portal\'s "{other}"' in str(
        refused.value.problems[0].message
    )
    fixed = differ.diff(
        [desired(want(previous=("Visma Оslo",)))],
        live(live_conn(dataclasses.replace(BASE, name="Visma Оslo"), id=2)),
        FPS,
    )
    assert (one(fixed).action, one(fixed).previous_name) == (p.ActionKind.RENAME, "Visma Оslo")


def test_a_tombstone_of_a_name_the_portal_moved_deletes_the_connection_the_tool_applied_so() -> None:
    """The tool applied A (id 1) and B (id 2); the portal renamed A to C and B to A. The file
    renames B back and tombstones A: the tombstone is the tool's A, now C, by id (DESIGN §5). It
    was dropped without a word (the name A had been taken by B's rename back)."""
    c = _renamed_in_portal(dataclasses.replace(BASE, name="C"), applied="A", id=1)
    b = _renamed_in_portal(dataclasses.replace(BASE, name="A", server="SQL02"), applied="B", id=2)
    entry_b = want(dataclasses.replace(BASE, name="B", server="SQL02"))
    plan = differ.diff([desired(entry_b, tombstones=("A",))], live(c, b), FPS)
    assert {(x.action, x.connection, x.live_id) for x in plan.tenants[0].actions} == {
        (p.ActionKind.DELETE, "C", 1),
        (p.ActionKind.RENAME, "B", 2),
    }


@pytest.mark.parametrize("managed", [False, True], ids=["made-by-hand", "managed"])
def test_a_tombstone_that_could_mean_either_of_two_connections_is_refused(managed: bool) -> None:
    """The tool applied A (id 1), which the portal renamed C; another connection is named A
    there now (made by hand, or the tool's B renamed A). `absent: true` for A deleted the one
    named A, with its dependents: not the tool's A. Refused, saying how to settle it."""
    c = _renamed_in_portal(dataclasses.replace(BASE, name="C"), applied="A", id=1)
    other = (
        _renamed_in_portal(dataclasses.replace(BASE, name="A"), applied="B", id=2)
        if managed
        else live_conn(dataclasses.replace(BASE, name="A"), id=2, managed=False)
    )
    with pytest.raises(errors.InputError) as refused:
        differ.diff([desired(tombstones=("A",))], live(c, other), FPS)
    message = refused.value.problems[0].message
    assert message.startswith(
        'tombstone "A": the portal renamed the connection the tool applied as "A" to "C" and has '
        'another connection named "A"'
    )
    assert 'write the tombstone as "C"' in message
    # Written so, the tool's own connection is the one deleted.
    plan = differ.diff([desired(tombstones=("C",))], live(c, other), FPS)
    assert [(x.action, x.live_id) for x in plan.tenants[0].actions] == [(p.ActionKind.DELETE, 1)]


def test_the_cascade_refusal_quotes_each_connection_so_a_portal_name_cannot_add_one() -> None:
    """A portal connection named `Old NAV, acme/no/Visma Oslo`, pruned with its dependents: the
    refusal listed names bare and comma-separated, as if Visma Oslo were deleted too."""
    from reconciler import applier

    odd = live_conn(
        dataclasses.replace(BASE, name="Old NAV, acme/no/Visma Oslo"), id=2, deps={"F0001": [(R, "P&L")]}
    )
    plan = differ.diff([desired(want(), prune=True)], live(live_conn(), odd), FPS)
    with pytest.raises(errors.RefusedError) as refused:
        applier.check_guards(plan, allow_cascade=False, allow_mass_delete=True)
    assert refused.value.problems[0].message == (
        'refused: the plan deletes 1 dependents ("acme/no/Old NAV, acme/no/Visma Oslo"); review the '
        "cascade and pass --allow-cascade"
    )


def test_the_cascade_refusal_names_some_connections_and_counts_the_rest() -> None:
    """A deletion of 200 tenants named all 4,600 connections in one line of the refusal; the
    plan lists them all."""
    from reconciler import applier

    pruned = [
        live_conn(dataclasses.replace(BASE, name=f"Old {i:02}"), id=i + 2, deps={"F0001": [(R, "P&L")]})
        for i in range(applier.MOST_NAMED + 5)
    ]
    plan = differ.diff([desired(want(), prune=True)], live(live_conn(), *pruned), FPS)
    with pytest.raises(errors.RefusedError) as refused:
        applier.check_guards(plan, allow_cascade=False, allow_mass_delete=True)
    named = [f'"acme/no/Old {i:02}"' for i in range(applier.MOST_NAMED)]
    assert refused.value.problems[0].message == (
        f"refused: the plan deletes {applier.MOST_NAMED + 5} dependents ({', '.join(named)} and 5 more); "
        "review the cascade and pass --allow-cascade"
    )


@pytest.mark.parametrize("portal", ["VISMA OSLO ", "VISMA OSLO\u200b", "VISMA \u041eSLO"])
def test_a_create_beside_a_portal_name_that_differs_in_case_and_what_does_not_show_is_refused(
    portal: str,
) -> None:
    """`VISMA OSLO ` in the portal is `Visma Oslo` to a person (case is no difference, the space
    does not show); the upper-case `I`, whose look is `l`, hid it: a second connection was made."""
    hand = live_conn(dataclasses.replace(BASE, name=portal), id=2, managed=False)
    with pytest.raises(errors.InputError) as refused:
        differ.diff([desired(want())], live(hand), FPS)
    assert 'connection "Visma Oslo"' in refused.value.problems[0].message


def test_two_names_a_plan_shows_that_look_the_same_are_told_apart_in_a_note() -> None:
    """A rename from `Visma Oslo` to `Visma Оslo` (a Cyrillic О), and two connections made by
    hand under those names, read as no rename and as one connection listed twice."""
    cyrillic = "Visma \u041eslo"
    renamed = differ.diff(
        [desired(want(dataclasses.replace(BASE, name=cyrillic), previous=("Visma Oslo",)))],
        live(live_conn()),
        FPS,
    )
    assert renamed.tenants[0].notes == (
        f'"{cyrillic}" and "Visma Oslo" look the same and are two names (U+041E CYRILLIC CAPITAL '
        "LETTER O where the other has U+004F LATIN CAPITAL LETTER O)",
    )
    by_hand = differ.diff(
        [desired()],
        live(
            live_conn(id=1, managed=False),
            live_conn(dataclasses.replace(BASE, name="VISMA OSLO "), id=2, managed=False),
        ),
        FPS,
    )
    assert by_hand.tenants[0].notes == (
        '"Visma Oslo" and "VISMA OSLO " look the same and are two names (the end where the other '
        "has U+0020 SPACE)",
    )


def test_a_portal_rename_onto_a_look_alike_of_another_declared_name_is_noted() -> None:
    """The portal renamed Visma Bergen to `Visma Оslo` (a Cyrillic О) beside the file's Visma
    Oslo: the plan's `rename "Visma Оslo" → "Visma Bergen"` is right, and read as a rename of
    Visma Oslo, which the plan leaves as it is. A note says which is which."""
    oslo = dataclasses.replace(BASE, name="Visma Oslo")
    bergen = dataclasses.replace(BASE, name="Visma Bergen", database="bergen")
    renamed = _renamed_in_portal(
        dataclasses.replace(bergen, name="Visma \u041eslo"), applied="Visma Bergen", id=2
    )
    result = differ.diff([desired(want(oslo), want(bergen))], live(live_conn(oslo, id=1), renamed), FPS)
    tenant = result.tenants[0]
    (action,) = tenant.actions
    assert (action.previous_name, action.connection) == ("Visma \u041eslo", "Visma Bergen")
    (note,) = tenant.notes
    assert note.startswith('"Visma \u041eslo" in the portal looks the same as "Visma Oslo" in the file')
    assert "U+041E CYRILLIC CAPITAL LETTER O" in note
    assert note.endswith('the plan renames it back, and leaves "Visma Oslo" as it is')
