"""LiveConnection.read(): the store's connections, their companies made on first use."""

from __future__ import annotations

import copy
import dataclasses

import pytest

from reconciler import spec, state

SPEC = spec.ConnectionSpec.of(
    "Visma Oslo",
    ("C2", "C10"),
    {
        "integration": "visma_business",
        "server": "sql01",
        "database": "F0001",
        "authentication": "sql",
        **{f.key: False for f in spec.SIMPLE},
    },
)
ROWS = [(11, 5, "C10"), (12, 5, "C2")]  # (row id, connection id, code) in code order


def read() -> state.LiveConnection:
    return state.LiveConnection.read(5, SPEC, ROWS, "fp", True, 3, "applied", "Visma Oslo")


def eager() -> state.LiveConnection:
    companies = (state.LiveCompany("C10", (), 11), state.LiveCompany("C2", (), 12))
    return state.LiveConnection(5, SPEC, companies, "fp", True, 3, "applied", "Visma Oslo")


def test_read_is_the_connection_made_eagerly() -> None:
    lazy, made = read(), eager()
    assert lazy == made and hash(lazy) == hash(made) and repr(lazy) == repr(made)
    assert [(c.id, c.row_id, c.dependents) for c in read().companies] == [("C10", 11, ()), ("C2", 12, ())]
    assert lazy.as_read() == made.as_read() and lazy.live_fp == made.live_fp


def test_companies_are_made_once_and_kept() -> None:
    lazy = read()
    assert lazy.companies is lazy.companies
    assert dataclasses.asdict(lazy) == dataclasses.asdict(eager())


def test_replace_copy_and_with_dependents_see_the_companies() -> None:
    lazy = read()
    assert dataclasses.replace(lazy, version=4).companies == eager().companies
    assert copy.deepcopy(read()) == eager()
    deps = {11: (state.Dependent(spec.DependentKind.REPORT, "r", 1),)}
    other = read()
    live = state.LiveState(
        {
            "a/b": state.LiveTenant(1, "a", "b", (read(),), ()),
            "a/c": state.LiveTenant(2, "a", "c", (other,), ()),
        },
        {"a": ("b", "c")},
    )
    with_them = live.with_dependents(deps, {"a/b"})
    [conn] = with_them.tenants["a/b"].connections
    assert conn.companies[0].dependents == deps[11] and conn.companies[1].dependents == ()
    # A tenant it is not given is not looked at: its connections' companies are not made (a plan
    # with 2% of its tenants changed made every connection's; 5% of its work).
    assert with_them.tenants["a/c"].connections[0] is other and "companies" not in vars(other)


def test_other_missing_attributes_are_attribute_errors() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        read().nothing  # type: ignore[attr-defined]  # noqa: B018


def _tenant(*connections: state.LiveConnection, templates: tuple[state.ReportTemplate, ...] = ()) -> str:
    return state.LiveTenant(1, "a", "b", connections, templates).object_fp()


def _changed_spec(key: str) -> spec.ConnectionSpec:
    values = dict(SPEC.values())
    if key == "authentication":  # windows: no login
        values.update(authentication="windows", login=None)
    elif key.startswith("voucher."):
        values.update({"voucher.provider": "docs", "voucher.document_center_path": "\\\\dc\\vouchers"})
        if key == "voucher.document_center_path":
            return spec.ConnectionSpec.of(SPEC.name, SPEC.companies, {**values, key: "\\\\dc\\other"})
    elif isinstance(values[key], bool):
        values[key] = not values[key]
    else:
        values[key] = (values[key] or "x") + "2"
    return spec.ConnectionSpec.of(SPEC.name, SPEC.companies, values)


def test_a_tenants_fingerprint_changes_with_everything_read() -> None:
    """What a saved plan and the apply's transaction compare: any column of any connection, a
    company or a dependent read under it, or a report template changes it; how it was made
    (lazily or eagerly, in any order) does not."""
    base = _tenant(read(), dataclasses.replace(eager(), id=6))
    assert _tenant(dataclasses.replace(eager(), id=6), read()) == base
    variants = {
        "id": dataclasses.replace(eager(), id=7),
        "version": dataclasses.replace(eager(), version=4),
        "managed": dataclasses.replace(eager(), managed=False),
        "applied_fp": dataclasses.replace(eager(), applied_fp="other"),
        "applied_name": dataclasses.replace(eager(), applied_name="Visma Bergen"),
        "password_fp": dataclasses.replace(eager(), password_fp=None),
        "name": dataclasses.replace(eager(), spec=dataclasses.replace(SPEC, name="Visma Bergen")),
        "server case": dataclasses.replace(eager(), spec=dataclasses.replace(SPEC, server="SQL01")),
        "company": dataclasses.replace(eager(), companies=eager().companies[:1]),
        "company row": dataclasses.replace(eager(), companies=(state.LiveCompany("C10", (), 99),)),
        "dependent": dataclasses.replace(
            eager(),
            companies=(state.LiveCompany("C10", (state.Dependent(spec.DependentKind.REPORT, "r", 1),), 11),),
        ),
        **{
            f"stored {f.key}": dataclasses.replace(eager(), spec=_changed_spec(f.key))
            for f in spec.STORED
            if f.key != "voucher.provider"  # changed with the path: a provider needs one
        },
    }
    assert all(c.as_read() != eager().as_read() for c in variants.values())
    for what, changed in variants.items():
        assert _tenant(read(), dataclasses.replace(changed, id=6 if what != "id" else 8)) != base, what
    template = state.ReportTemplate("Tpl", 6)
    assert _tenant(read(), dataclasses.replace(eager(), id=6), templates=(template,)) != base
