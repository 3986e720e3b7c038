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
    assert lazy.object_fp() == made.object_fp() and lazy.live_fp == made.live_fp


def test_companies_are_made_once_and_kept() -> None:
    lazy = read()
    assert lazy.companies is lazy.companies
    assert dataclasses.asdict(lazy) == dataclasses.asdict(eager())


def test_replace_copy_and_with_dependents_see_the_companies() -> None:
    lazy = read()
    assert dataclasses.replace(lazy, version=4).companies == eager().companies
    assert copy.deepcopy(read()) == eager()
    deps = {11: (state.Dependent(spec.DependentKind.REPORT, "r", 1),)}
    live = state.LiveState({"a/b": state.LiveTenant(1, "a", "b", (read(),), ())}, {"a": ("b",)})
    [conn] = live.with_dependents(deps).tenants["a/b"].connections
    assert conn.companies[0].dependents == deps[11] and conn.companies[1].dependents == ()


def test_other_missing_attributes_are_attribute_errors() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        read().nothing  # type: ignore[attr-defined]  # noqa: B018
