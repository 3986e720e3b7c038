"""What the tool writes reads back as the same text in YAML 1.1, YAML 1.2 and the tool (§9)."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import event, given, settings
from hypothesis import strategies as st

from reconciler import strictyaml, yamlout
from tests import roundtrip_support as rs

AMBIGUOUS = [
    "0001",
    "0009",
    "1e3",
    "+1e3",
    "NO",
    "on",
    "Off",
    "y",
    "2026-01-01",
    "null",
    "~",
    "true",
    "1_000",
    "0x1F",
    "0o17",
    ".inf",
    "-.INF",
    ".nan",
    "12:30",
    "=",
    "<<",
    "",
    " lead",
    "trail ",
    "1.5",
    # ruamel.yaml's YAML 1.2 reads these as numbers too (or refuses them plain):
    "-0o17",
    "+0o17",
    "0o1_7",
    "._5",
    "+_1",
    "_",
    "-0b1_0",
    "1_0.5",
]


@pytest.mark.parametrize("text", AMBIGUOUS)
def test_ambiguous_scalars_are_quoted_and_read_back_as_text(text: str) -> None:
    written = yamlout.dump({"companies": [text], "database": text})
    expected = {"companies": [text], "database": text}
    assert yaml.safe_load(written) == expected  # YAML 1.1 (PyYAML)
    assert rs.yaml12(written) == expected  # YAML 1.2 (ruamel, pure)
    assert strictyaml.parse("t", written.encode()).data == expected  # the tool
    assert yamlout.flow(text).startswith("'")


def test_plain_text_stays_plain() -> None:
    assert yamlout.dump({"server": "SQL01\\VISMA", "companies": ["F0001", "Bjørn Ås"]}) == (
        "server: SQL01\\VISMA\ncompanies: [F0001, Bjørn Ås]\n"
    )


# ---------------------------------------------------------------------------------------------
# Plain documents are written directly (import, store dump, drift --write): the same bytes.

# Text a portal holds: plain names, and every kind PyYAML must quote, escape or fold.
TEXTS = [
    "AX Bergen 023",
    "SQL01\\VISMA",
    "\\\\fs01\\docs",
    "sql01.corp.local,1433",
    "Bjørn Ås",
    "10.0.0.24",
    "a: b",
    "a #b",
    "- x",
    "? x",
    "x:",
    "[x]",
    "{x}",
    "&x",
    "*x",
    "!x",
    "|",
    ">",
    "%x",
    "@x",
    "`x",
    "'x'",
    '"x"',
    "x\ny",
    "x\u2028y",
    "x\u202ey",
    "\u00a0x",
    "x\u0085",
    "x\t",
    "~",
    "x" * 99,
    " ".join(["word"] * 30),
    *AMBIGUOUS,
]
# Mostly plain text, with the characters on the edge of plain: indicators inside a word, one
# space before a '#' or after a ':', a leading '-', Unicode, backslashes.
_near_plain = st.from_regex(r"[A-Za-zØæ0-9_\\-][A-Za-zØæ0-9 ._\\,:#?!&*'\"\[\]{}-]{0,24}", fullmatch=True)


# Plain words, a space between them: documents that take the direct way.
_words = st.from_regex(r"[A-Za-zØ][A-Za-z0-9Ø._\\-]{0,9}( [A-Za-z0-9Ø._,\\-]{1,9}){0,3}", fullmatch=True)


def _documents(text: st.SearchStrategy[str]) -> st.SearchStrategy[object]:
    scalar = text | st.integers(-10, 10**6) | st.booleans() | st.none()
    key = st.sampled_from(["name", "server", "companies", "password", "voucher", "env", "path"]) | text
    document = st.recursive(
        st.dictionaries(key, scalar, min_size=1, max_size=4),
        lambda inner: st.dictionaries(
            key,
            scalar
            | st.lists(text | st.integers(0, 99) | st.booleans(), max_size=4)
            | st.lists(inner, min_size=1, max_size=3)
            | st.dictionaries(key, text, min_size=1, max_size=1)
            | inner,
            min_size=1,
            max_size=5,
        ),
        max_leaves=20,
    )
    return document | st.lists(document, min_size=1, max_size=3)


def _pyyaml(body: object) -> str:
    return yaml.dump(body, Dumper=yamlout.Dumper, sort_keys=False, allow_unicode=True, width=yamlout.WIDTH)


@settings(max_examples=600, deadline=None)
@given(_documents(st.sampled_from(TEXTS) | st.text(max_size=12) | _near_plain) | _documents(_words))
def test_a_document_written_directly_is_what_pyyaml_writes(body: object) -> None:
    written = yamlout._written_plainly(body)
    event("written directly" if written is not None else "left to PyYAML")
    assert written is None or written == _pyyaml(body)
    assert yamlout.dump(body) == _pyyaml(body)


def test_an_imported_tenant_file_is_written_directly() -> None:
    """The speed of import rests on its files taking the direct way: a tenant of plain names."""
    body = {
        "version": 1,
        "customer": "acme",
        "tenant": "acme-norway",
        "prune": False,
        "connections": [
            {
                "name": "Visma Bergen 01",
                "integration": "visma-business",
                "server": "SQL01\\VISMA",
                "database": "F0001",
                "authentication": "sql",
                "login": "osr_reader",
                "password": {"env": "OSR_ACME_ACME_NORWAY_VISMA_BERGEN_01_PASSWORD"},
                "allow_others_to_edit": True,
                "companies": ["F0001", "F0002", "F0011"],
                "voucher": {"provider": "visma-document-center", "path": "\\\\fs01\\docs"},
            }
        ],
    }
    assert yamlout._written_plainly(body) == _pyyaml(body)
    for odd in ("Bergen: 01", "x\u202ey", "0009", "x" * 120):  # quoted, escaped, or folded
        assert yamlout._written_plainly({**body, "tenant": odd}) is None
