"""Properties of the round trip, for generated live tenants and hand changes (DESIGN §9):
import then plan shows only adoptions; drift --write then plan is empty for what it accepted,
and a second drift --write writes nothing. Every file written reads back the same in a YAML 1.2
client and validates against the tenant schema.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path

import jsonschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler import accept, differ, envnames, importer, secrets, spec, state, strictyaml
from reconciler import plan as p
from tests import roundtrip_support as rs

SCHEMA = json.loads((Path(__file__).parent.parent / "schemas" / "tenant.schema.json").read_text())
# What another YAML reader would take for something other than text, and some plain words.
WORDS = [
    "0001",
    "1e3",
    "NO",
    "on",
    "2026-01-01",
    "null",
    "~",
    "true",
    "1_000",
    "0x1F",
    ".inf",
    "F0001",
    "Oslo",
    "Bjørn Ås",
    "a: b",
    "#x",
    "- y",
    "'q'",
    'x"y',
    "[z]",
]
texts = st.sampled_from(WORDS)
hosts = st.sampled_from(["sql01", "SQL01\\VISMA", "sql02.acme.local,1444", "1e3", "10.0.0.1"])
INTEGRATIONS = ["visma-business", "dynamics-gp", "dynamics-ax"]


@st.composite
def connection_specs(draw: st.DrawFn, name: str) -> spec.ConnectionSpec:
    integration = draw(st.sampled_from(INTEGRATIONS))
    sql = draw(st.booleans())
    voucher = (
        spec.Voucher("visma-document-center", draw(st.sampled_from(["\\\\fs01\\vdc", "D:\\Vouchers"])))
        if integration == "visma-business" and draw(st.booleans())
        else None
    )
    return spec.ConnectionSpec(
        name=name,
        integration=integration,
        server=draw(hosts),
        database=draw(texts),
        authentication=spec.Authentication.SQL if sql else spec.Authentication.WINDOWS,
        login=draw(texts) if sql else None,
        allow_others_to_edit=draw(st.booleans()),
        private=draw(st.booleans()),
        companies=tuple(draw(st.lists(texts, max_size=3, unique_by=spec.identity))),
        voucher=voucher,
        write_back=draw(st.booleans()),
        protected=draw(st.booleans()),
    )


@st.composite
def live_tenants(draw: st.DrawFn) -> state.LiveTenant:
    names = draw(st.lists(texts, min_size=1, max_size=4, unique_by=spec.identity))
    conns = []
    for i, name in enumerate(names, 1):
        s = draw(connection_specs(name))
        managed = draw(st.booleans())
        password = "fp:x" if s.authentication is spec.Authentication.SQL else None
        conns.append(
            state.LiveConnection(
                i,
                s,
                tuple(state.LiveCompany(c, ()) for c in s.companies),
                password,
                managed,
                1,
                spec.spec_fingerprint(s, password) if managed else None,
                name if managed else None,
            )
        )
    return state.LiveTenant(1, "acme", "acme-norway", tuple(conns), ())


def _with_passwords(live: state.LiveTenant) -> state.LiveTenant:
    """The live passwords are what the file's references resolve to (roundtrip_support.fp)."""
    names = envnames.password_variables(
        live.customer, live.tenant, [c.spec.name for c in live.connections], "OSR_"
    )
    conns = []
    for c in live.connections:
        if c.password_fp is None:
            conns.append(c)
            continue
        fp = f"fp:{names[c.spec.name]}"
        applied = spec.spec_fingerprint(c.spec, fp) if c.managed else None
        conns.append(dataclasses.replace(c, password_fp=fp, applied_fp=applied))
    return dataclasses.replace(live, connections=tuple(conns))


def _check_written(text: str) -> None:
    data = rs.yaml12(text)
    assert data == strictyaml.parse("written", text.encode()).data
    jsonschema.validate(data, SCHEMA)


def _imported(live: state.LiveTenant, root: Path) -> tuple[Path, state.LiveState]:
    text, _ = importer.tenant_text(live, "OSR_")
    _check_written(text)
    path = root / rs.TENANT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    lt = _with_passwords(live)
    return path, state.LiveState({lt.key: lt}, {"acme": ("acme-norway",)})


SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(live_tenants())
def test_import_then_plan_shows_only_adoptions(live: state.LiveTenant) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path, ls = _imported(live, Path(tmp))
        d = rs.load(path)
        result = differ.diff([d], ls, rs.fingerprints(d))
        assert [(a.action, a.connection) for _, a in result.all_actions()] == [
            (p.ActionKind.ADOPT, c.spec.name)
            for c in sorted(
                (c for c in live.connections if not c.managed),
                key=lambda c: (spec.natural_key(c.spec.name), c.spec.name),
            )
        ]


@SETTINGS
@given(live_tenants(), st.data())
def test_drift_write_then_plan_is_empty_and_a_second_run_writes_nothing(
    live: state.LiveTenant, data: st.DataObject
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        # Everything imported and applied (managed), then changed by hand in the portal.
        managed = dataclasses.replace(
            live,
            connections=tuple(
                dataclasses.replace(c, managed=True, applied_fp=c.live_fp, applied_name=c.spec.name)
                for c in live.connections
            ),
        )
        path, ls = _imported(managed, Path(tmp))
        lt = ls.tenants["acme/acme-norway"]
        changed = []
        for c in lt.connections:
            if data.draw(st.booleans()):
                new = data.draw(connection_specs(c.spec.name))
                new = dataclasses.replace(
                    new,
                    authentication=c.spec.authentication,
                    login=new.login
                    if c.spec.login is None
                    else (c.spec.login if new.login is None else new.login),
                )
                if c.spec.authentication is spec.Authentication.WINDOWS:
                    new = dataclasses.replace(new, login=None)
                c = dataclasses.replace(c, spec=new)
            changed.append(c)
        lt = dataclasses.replace(lt, connections=tuple(changed))
        ls = state.LiveState({lt.key: lt}, ls.known)
        d = rs.load(path)
        fps = rs.fingerprints(d)
        first = accept.accept(
            [d], ls, differ.diff([d], ls, fps), fps, deleted={}, settings=secrets.Settings.from_env(Path(tmp))
        )
        for f in first.files:
            _check_written(f.text)
            path.write_text(f.text, encoding="utf-8")
        after = rs.load(path)
        result = differ.diff([after], ls, fps)
        assert [a for _, a in result.all_actions()] == []
        second = accept.accept(
            [after], ls, result, fps, deleted={}, settings=secrets.Settings.from_env(Path(tmp))
        )
        assert second.files == ()
