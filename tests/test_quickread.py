"""reconciler.quickread reads the common case of a tenant file exactly as the long way does.

Its contract is one-sided: what it returns is what desired.load_file's long way (strict reader,
pydantic models, rules) returns for the same bytes; whatever it is unsure of, it returns None
and the long way reads the file. These tests hold it to that on the fuzzer's documents (valid
and not), on hand-picked edge cases, and check that it is really used for plain valid files.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings

from reconciler import declared, desired, errors, quickread, strictyaml, tenantfile
from tests import test_fuzz

PATH, LABEL = test_fuzz.PATH, test_fuzz.LABEL
CATALOG, SETTINGS = test_fuzz.CATALOG, test_fuzz.SETTINGS


def _long(raw: bytes) -> declared.DesiredTenant | errors.InputError:
    """What load_file returns (or raises) for raw without the quick reader."""
    with pytest.MonkeyPatch.context() as m:
        m.setattr(quickread, "tenant", lambda *args, **kwargs: None)
        try:
            return desired.load_file(PATH, cat=CATALOG, settings=SETTINGS, raw=raw)
        except errors.InputError as exc:
            return exc


def _quick(raw: bytes) -> declared.DesiredTenant | None:
    """What the quick reader makes of raw (None: not the common case)."""
    return quickread.tenant(raw, str(PATH), hashlib.sha256(raw).hexdigest(), cat=CATALOG, settings=SETTINGS)


def _same(raw: bytes) -> declared.DesiredTenant | None:
    """The quick reader's answer, checked against the long way's: equal, or None."""
    long = _long(raw)
    quick = _quick(raw)
    if quick is not None:
        assert not isinstance(long, errors.InputError), f"quick accepted what the long way refuses: {long}"
        assert quick == long
    return quick


def test_it_knows_exactly_the_models_keys() -> None:
    """A key added to a model and not here sends every file using it the long way; a key known
    here and not by the models would accept what the models refuse."""
    assert set(tenantfile.TenantFileModel.model_fields) == quickread.TOP_KEYS
    assert set(tenantfile.ConnectionModel.model_fields) == quickread.CONNECTION_KEYS
    assert set(tenantfile.TombstoneModel.model_fields) == quickread.TOMBSTONE_KEYS


@pytest.mark.slow
@settings(
    max_examples=3000,
    deadline=2000,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(test_fuzz.document())
@example(test_fuzz._plain(test_fuzz._valid()).encode())
def test_a_fuzzed_file_reads_the_same_both_ways(raw: bytes) -> None:
    _same(raw)


HEAD = "version: 1\ncustomer: acme\ntenant: acme-norway\nconnections:\n"
CONNECTION = (
    "  - name: {name}\n    integration: {integration}\n    server: SQL01\\VISMA\n    database: vbsys\n"
    "    authentication: windows\n"
)


def _file(*connections: str, head: str = HEAD) -> bytes:
    return (head + "".join(connections)).encode()


def _conn(name: str = "Visma Oslo", integration: str = "visma-business", extra: str = "") -> str:
    return CONNECTION.format(name=name, integration=integration) + extra


# (document, whether the quick reader takes it): every one reads the same both ways.
CASES = {
    "the fuzzer's template": (test_fuzz._plain(test_fuzz._valid()).encode(), True),
    "company ids written as numbers": (_file(_conn(extra="    companies: [1, 2, 10]\n")), True),
    "a name written as a number": (_file(_conn(name="2024")), True),
    "a name in NFD": (_file(_conn(name="Bjo\u0308rn")), True),
    "a name in NFD, escaped": (_file(_conn(name='"Bjo\\u0308rn"')), False),  # escapes: libyaml reads it
    "a name twice, once as a number": (_file(_conn(name="2024"), _conn(name="'2024'")), False),
    "a name twice, as NFC and NFD": (_file(_conn(name="Björn"), _conn(name='"Bjo\\u0308rn"')), False),
    "a tombstone with a connection's name": (_file(_conn(), "  - {name: visma oslo, absent: true}\n"), False),
    "a tombstone": (_file(_conn(), "  - {name: Old, absent: true}\n"), True),
    "absent: false on a connection": (_file(_conn(extra="    absent: false\n")), True),
    "absent: null": (_file(_conn(extra="    absent: null\n")), False),
    "an integration written as a number": (_file(_conn(integration="123")), False),
    "an unknown integration": (_file(_conn(integration="visma")), False),
    "a quoted flag": (_file(_conn(extra="    private: 'true'\n")), False),
    "a !!str tag on text": (_file(_conn().replace("vbsys", "!!str 7")), False),  # tags: libyaml
    "a !!str tag on a flag": (_file(_conn(extra="    private: !!str true\n")), False),
    "a !!int tag": (_file(_conn().replace("vbsys", "!!int 7")), False),
    "a flag written True": (_file(_conn(extra="    private: True\n")), False),
    "an alias": (
        _file(_conn(extra="    companies: &c [A, B]\n"), _conn(name="Other", extra="    companies: *c\n")),
        False,  # anchors and aliases: libyaml reads the file
    ),
    "a merge key": (_file("  - &base {name: A, integration: visma-business}\n  - <<: *base\n"), False),
    "an unknown key": (_file(_conn(extra="    colour: blue\n")), False),
    "a key written twice": (_file(_conn(extra="    private: true\n    private: false\n")), False),
    "a previous name that is another's name": (
        _file(_conn(extra="    previous_names: [Other]\n"), _conn(name="Other")),
        False,
    ),
    "a previous name on two connections": (
        _file(
            _conn(extra="    previous_names: [Old]\n"),
            _conn(name="Other", extra="    previous_names: [old]\n"),
        ),
        False,
    ),
    "a previous name": (_file(_conn(extra="    previous_names: [Old, 'Older 2']\n")), True),
    # The long way compares previous names with every entry's name, a tombstone's too: the
    # quick one left tombstones out, and validate took `previous_names: [Оslo]` (a Cyrillic О)
    # beside `- {name: Oslo, absent: true}` that it refused the long way.
    "a previous name that looks like a tombstone's name": (
        _file(_conn(extra="    previous_names: [\u041eslo]\n"), "  - {name: Oslo, absent: true}\n"),
        False,
    ),
    "a company twice": (_file(_conn(extra="    companies: [A, a]\n")), False),
    "a voucher": (
        _file(
            _conn(
                extra="    voucher:\n      provider: visma-document-center\n"
                "      document_center_path: \\\\fs01\\vdc\n"
            )
        ),
        True,
    ),
    "a voucher the integration has no step for": (
        _file(
            _conn(
                integration="dynamics-gp",
                extra="    voucher: {provider: visma-document-center, document_center_path: 'D:\\V'}\n",
            )
        ),
        False,
    ),
    "sql without a password": (_file(_conn(extra="    login: x\n").replace("windows", "sql")), False),
    "sql with an env password": (
        _file(_conn(extra="    login: x\n    password: {env: OSR_X}\n").replace("windows", "sql")),
        True,
    ),
    "a password from a variable that is not a tenant secret": (
        _file(_conn(extra="    login: x\n    password: {env: HOME}\n").replace("windows", "sql")),
        False,
    ),
    "a password file outside the secrets folder": (
        _file(_conn(extra="    login: x\n    password: {file: ../x}\n").replace("windows", "sql")),
        False,
    ),
    "a literal password": (
        _file(_conn(extra="    login: x\n    password: hunter2\n").replace("windows", "sql")),
        False,
    ),
    "the customer of another folder": (_file(_conn(), head=HEAD.replace("acme\n", "other\n")), False),
    "version 2": (_file(_conn(), head=HEAD.replace("1", "2", 1)), False),
    "a null connection list": (HEAD.replace("connections:\n", "connections: null\n").encode(), False),
    "no connections": (HEAD.replace("connections:\n", "").encode(), True),
    "a name too long": (_file(_conn(name="x" * 101)), False),
    "a name of 100 characters": (_file(_conn(name="x" * 100)), True),
    "a name with a line separator": (_file(_conn(name='"a\\u2028b"')), False),
    # Spaces only are no value: the long way refuses them (checks.check_text), and the quick
    # way took `login: "   "` and `database: '  '` as a login and a database.
    "a database of spaces only": (_file(_conn().replace("vbsys", "'  '")), False),
    "a login of spaces only": (
        _file(_conn(extra='    login: "   "\n    password: {env: OSR_X}\n').replace("windows", "sql")),
        False,
    ),
    "a login with spaces inside": (
        _file(_conn(extra="    login: ' x '\n    password: {env: OSR_X}\n").replace("windows", "sql")),
        True,
    ),
}


@pytest.mark.parametrize("raw", [raw for raw, _ in CASES.values()], ids=list(CASES))
def test_an_edge_case_reads_the_same_both_ways(raw: bytes) -> None:
    taken = CASES[next(k for k, (r, _) in CASES.items() if r == raw)][1]
    quick = _same(raw)
    assert (quick is not None) == taken


def test_the_count_of_values_is_the_strict_readers() -> None:
    """strictyaml.MAX_NODES values at most: one company more than fits is refused both ways."""
    fixed = 12  # the document's values but the companies (the root, 4 top-level, 1 entry, 6 fields)
    for extra in (0, 1):
        ids = ", ".join(f"C{i}" for i in range(strictyaml.MAX_NODES - fixed + extra))
        raw = _file(_conn(extra=f"    companies: [{ids}]\n"))
        long = _long(raw)
        assert isinstance(long, errors.InputError) == bool(extra)
        assert (_same(raw) is None) == bool(extra)


def test_load_file_uses_it_for_a_plain_valid_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Not dead code: a valid file is read without building the values the models validate."""
    monkeypatch.setattr(strictyaml, "build", lambda *args: pytest.fail("read the long way"))
    raw = test_fuzz._plain(test_fuzz._valid()).encode()
    tenant = desired.load_file(PATH, cat=CATALOG, settings=SETTINGS, raw=raw)
    assert [c.spec.name for c in tenant.connections] == ["Visma Business Oslo", "Dynamics GP Oslo"]
