"""What the tool writes reads back as the same text in YAML 1.1, YAML 1.2 and the tool (§9)."""

from __future__ import annotations

import pytest
import yaml

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
