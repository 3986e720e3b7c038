"""Tenant-file rules that the source checks rely on: a server that validates can be connected to."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler import catalog, declared, desired, errors, secrets, spec, strictyaml, tenantfile

FILE = """\
version: 1
customer: acme
tenant: acme-norway
connections:
  - name: A
    integration: dynamics-nav
    server: '{server}'
    database: NAV
    authentication: windows
"""


def _load(server: str) -> declared.DesiredTenant:
    path = Path("tenants/acme/acme-norway.yaml")
    settings = secrets.Settings("OSR_", Path(".secrets"))
    return desired.load_file(
        path, cat=catalog.load(), settings=settings, raw=FILE.format(server=server).encode()
    )


@pytest.mark.parametrize(
    "server",
    [
        "SQL01\\VISMA",
        "sql01.corp.local,1433",
        "10.0.0.5",
        "[fe80::1],1500",
        "::1",
        "(local)",
        "tcp:host,1500",
    ],
)
def test_server_accepted_is_one_the_sources_can_parse(server: str) -> None:
    (conn,) = _load(server).connections
    assert spec.parse_server(conn.spec.server).host


@pytest.mark.parametrize(
    ("server", "fragment"),
    [
        ("db:1433", "write host,port with a comma, as SQL Server does: db,1433"),
        ("[1:2]", "'1:2' inside [...] is not an IPv6 address"),
        ("host,99999", "port 99999 is out of range"),
        ("host\\", "write the server as host, host\\instance, host,port"),
    ],
)
def test_server_rejected_with_what_to_write(server: str, fragment: str) -> None:
    with pytest.raises(errors.InputError) as exc:
        _load(server)
    (line,) = exc.value.lines()
    assert line.startswith("tenants/acme/acme-norway.yaml:7:13: ") and fragment in line


VOUCHER_FILE = r"""version: 1
customer: acme
tenant: acme-norway
connections:
  - name: Visma Tromsø
    integration: visma-business
    server: SQL01\VISMA
    database: F0001
    authentication: windows
    allow_others_to_edit: true
    companies: [1001, '0002', Ålesund]
    voucher:
      provider: visma-document-center
      document_center_path: \\fs01\vdc\acme
    protected: true
  - name: NAV
    integration: dynamics-nav
    server: 10.0.0.5,1500
    database: NAV
    authentication: windows
"""


def test_frozen_spec_is_the_spec_of_the_validated_document() -> None:
    """_freeze reads the model's attributes: the same spec as from the dumped document."""
    path = Path("tenants/acme/acme-norway.yaml")
    raw = VOUCHER_FILE.encode()
    settings = secrets.Settings("OSR_", Path(".secrets"))
    tenant = desired.load_file(path, cat=catalog.load(), settings=settings, raw=raw)
    model = tenantfile.TenantFileModel.model_validate(strictyaml.parse(str(path), raw).data)
    dumped = [spec.ConnectionSpec.from_document(c.model_dump()) for c in model.connections]
    assert [c.spec for c in tenant.connections] == dumped
    assert dumped[0].voucher is not None and dumped[0].companies == ("1001", "0002", "Ålesund")
    assert dumped[1].voucher is None and dumped[1].protected is False


def test_a_simple_field_is_declared_from_the_description(monkeypatch: pytest.MonkeyPatch) -> None:
    """A plain optional field added to spec.CONNECTION_FIELDS reaches the document models without
    an edit there (docs/architecture.md, "Adding a field"); removed, it is gone again."""

    def model() -> type[tenantfile._Model]:
        class Probe(tenantfile._Model):
            name: str
            tenantfile.declare_simple_fields(locals())

        return Probe

    added = spec.Field("needs_vpn", "needs_vpn", bool, simple=True, description="reach it over VPN")
    monkeypatch.setattr(spec, "SIMPLE", (*spec.SIMPLE, added))
    probe = model()
    assert probe.model_validate({"name": "x"}).needs_vpn is False  # type: ignore[attr-defined]
    assert probe.model_validate({"name": "x", "needs_vpn": True}).needs_vpn is True  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="needs_vpn"):
        probe.model_validate({"name": "x", "needs_vpn": "yes"})  # flags are strict, as in tenant files
    assert probe.model_json_schema()["properties"]["needs_vpn"]["description"] == "reach it over VPN"
    monkeypatch.setattr(spec, "SIMPLE", tuple(f for f in spec.SIMPLE if f is not added))
    assert "needs_vpn" not in model().model_fields
    assert {f.key for f in spec.SIMPLE} <= set(tenantfile.ConnectionModel.model_fields)


NUMBERS = """\
version: 1
customer: acme
tenant: acme-norway
connections:
  - name: 2024
    integration: {integration}
    server: SQL01
    database: vbsys
    authentication: windows
  - name: {second}
    integration: visma-business
    server: SQL01
    database: vbsys
    authentication: windows
    previous_names: [{previous}]
"""


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"integration": "123", "second": "B", "previous": "Old"},
            "connections[0].integration: unknown integration '123'",
        ),
        (
            {"integration": "visma-business", "second": "'2024'", "previous": "Old"},
            "connections[1].name: '2024' is already the name of connections[0]",
        ),
        (
            {"integration": "visma-business", "second": "B", "previous": "2024"},
            "connections[1].previous_names[0]: '2024' is the name of connections[0]",
        ),
    ],
    ids=["unknown integration", "a name twice", "a previous name in use"],
)
def test_a_number_is_checked_as_the_text_the_models_read(values: dict[str, str], message: str) -> None:
    """`name: 2024` is the name "2024" (the models take a number as its text): the rules that
    need the whole file see the same text, so a number cannot slip past them."""
    settings = secrets.Settings("OSR_", Path(".secrets"))
    with pytest.raises(errors.InputError) as caught:
        desired.load_file(
            Path("tenants/acme/acme-norway.yaml"),
            cat=catalog.load(),
            settings=settings,
            raw=NUMBERS.format(**values).encode(),
        )
    assert any(message in line for line in caught.value.lines()), caught.value.lines()


# Tenant files are found as path strings, not Paths (a Path per file of a large fleet costs
# memory for the whole run): what the tool reads off a path must be what the Path said.
_SEGMENT = st.text(alphabet=st.sampled_from("ab-._øÅ 1"), min_size=1, max_size=6).filter(
    lambda s: s not in (".", "..")
)


@given(st.lists(st.lists(_SEGMENT, min_size=1, max_size=4), min_size=1, max_size=8))
def test_found_paths_name_and_sort_as_paths_did(segments: list[list[str]]) -> None:
    paths = [os.fspath(Path(*parts)) for parts in segments]  # as discover makes them
    for path in paths:
        # a file named alone is in the current folder, which names its customer
        folder = Path(path).parent.name or Path(os.path.abspath(path)).parent.name
        assert declared.path_parts(path) == (folder, Path(path).stem)
    assert sorted(paths, key=lambda f: f.split(os.sep)) == [os.fspath(p) for p in sorted(map(Path, paths))]


def test_discover_finds_path_strings_in_path_order(tmp_path: Path) -> None:
    root = tmp_path / "tenants"
    for rel in ("a-b/x.yaml", "a/y.yml", "a/x.yaml", "b/z.yaml"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("version: 1\n")
    found = desired.discover([str(root)])
    assert found == [str(root / rel) for rel in ("a/x.yaml", "a/y.yml", "a-b/x.yaml", "b/z.yaml")]
    assert [declared.path_key(f) for f in found] == ["a/x", "a/y", "a-b/x", "b/z"]


def test_paths_as_typed_in_a_customer_folder_name_its_tenants(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In tenants/acme, `validate acme-norway.yaml` was told the file is in folder '' and
    `validate .` to move every file: the customer was read off the PATH as typed."""
    customer = tmp_path / "repo" / "tenants" / "acme"
    customer.mkdir(parents=True)
    (customer / "acme-norway.yaml").write_text("version: 1\n")
    monkeypatch.chdir(customer)
    for typed in (["acme-norway.yaml"], ["."], [".", "acme-norway.yaml"], ["./"]):
        assert [declared.path_key(f) for f in desired.discover(typed)] == ["acme/acme-norway"], typed
    monkeypatch.chdir(tmp_path / "repo")
    for typed, said in (
        ([""], "PATH: is empty; give a tenant file or folder, or leave PATH out for tenants/"),
        (["."], ".: holds tenants/; give ./tenants as PATH, or leave PATH out"),
    ):
        with pytest.raises(errors.InputError) as caught:
            desired.discover(typed)
        assert caught.value.lines() == [said], typed


def test_a_voucher_of_the_wrong_type_is_told_once() -> None:
    """`voucher: yes` on an integration without a voucher step was told twice: its type, and
    "has no voucher step" (a rule between values, which waits until each value has its type)."""
    raw = (
        FILE.format(server="nav01").replace("integration: dynamics-nav", "integration: dynamics-gp")
        + "    voucher: yes\n"
    )
    with pytest.raises(errors.InputError) as caught:
        desired.load_file(
            Path("tenants/acme/acme-norway.yaml"),
            cat=catalog.load(),
            settings=secrets.Settings("OSR_", Path(".secrets")),
            raw=raw.encode(),
        )
    (line,) = caught.value.lines()
    assert "voucher: expected a mapping of provider and document_center_path, not the text 'yes'" in line


def test_a_name_typed_decomposed_is_as_long_as_its_composed_form() -> None:
    """`Région` and 60 × `é` typed on a Mac (NFD, 128 code points) is the name of 67 characters
    its composed form is, and one name with it (DESIGN §2): it was refused as over 100."""
    import unicodedata

    composed = "Région " + "é" * 60
    settings = secrets.Settings("OSR_", Path(".secrets"))
    for written in (composed, unicodedata.normalize("NFD", composed)):
        raw = NUMBERS.format(integration="visma-business", second=f'"{written}"', previous="Old").encode()
        tenant = desired.load_file(
            Path("tenants/acme/acme-norway.yaml"), cat=catalog.load(), settings=settings, raw=raw
        )
        assert tenant.connections[1].spec.name == composed
    too_long = unicodedata.normalize("NFD", "Région " + "é" * 94)  # 101 composed
    raw = NUMBERS.format(integration="visma-business", second=f'"{too_long}"', previous="Old").encode()
    with pytest.raises(errors.InputError) as caught:
        desired.load_file(
            Path("tenants/acme/acme-norway.yaml"), cat=catalog.load(), settings=settings, raw=raw
        )
    assert any("is 101 characters, over the limit of 100" in line for line in caught.value.lines()), (
        caught.value.lines()
    )


def test_a_name_that_composing_lengthens_is_counted_composed_however_the_file_is_written() -> None:
    """Devanagari ज़ (U+095B) composes (NFC) into two characters: a name of 70 typed, 102
    composed, was valid written plainly (the quick reader counted what was typed) and refused
    with an anchor on it (the models count it composed); applied, export then refused it."""
    name = "Dilli " + "\u095b" * 32 + "x" * 32
    settings = secrets.Settings("OSR_", Path(".secrets"))
    for written in (f'"{name}"', f'&n "{name}"'):
        raw = NUMBERS.format(integration="visma-business", second=written, previous="Old").encode()
        with pytest.raises(errors.InputError) as caught:
            desired.load_file(
                Path("tenants/acme/acme-norway.yaml"), cat=catalog.load(), settings=settings, raw=raw
            )
        assert any("is 102 characters, over the limit of 100" in line for line in caught.value.lines()), (
            written,
            caught.value.lines(),
        )


_CASES_AND_SCRIPTS = [*"IilLОоOoΣσΟοВвBbЕеEeНнHhΝνvVгуГУrR ı", "rn", "m", "\u200b"]
_LOOK_NAME = st.lists(st.sampled_from(_CASES_AND_SCRIPTS), min_size=1, max_size=3).map(
    lambda parts: "Ø" + "".join(parts)
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_LOOK_NAME, st.lists(_LOOK_NAME, max_size=2)), min_size=1, max_size=4))
def test_previous_names_that_look_alike_are_found_in_one_pass_as_pair_by_pair(
    entries: list[tuple[str, list[str]]],
) -> None:
    """validate's one pass over names and previous names (by key, then by what never looks
    alike within a key) flags an entry exactly where asking it of every earlier entry of another
    connection would: one of the two a previous name, the two looking alike (spec.looks_alike)."""
    written = [(i, name) for i, (name, _) in enumerate(entries)]
    connections = [(i, {"name": name, "previous_names": olds}) for i, (name, olds) in enumerate(entries)]
    marked = [(i, "name", name) for i, name in written]
    marked += [(i, "previous_names", old) for i, (_, olds) in enumerate(entries) for old in olds]
    flagged: list[tuple[object, ...]] = []
    desired._previous_look_alikes(written, connections, lambda loc, _message: flagged.append(loc))
    expected = [
        (i, kind)
        for at, (i, kind, text) in enumerate(marked)
        if any(
            j != i and "previous_names" in (kind, other_kind) and spec.looks_alike(other, text)
            for j, other_kind, other in marked[:at]
        )
    ]
    assert [(loc[1], loc[2]) for loc in flagged] == expected
