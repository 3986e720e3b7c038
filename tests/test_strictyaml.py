"""Unit tests of the strict YAML reader (reconciler/strictyaml.py), without the CLI.

What a tenant-file author relies on: a value means what was written (`NO` stays "NO", `0001`
stays "0001"), and every refusal names the line and column to fix, with what to do instead.
"""

from __future__ import annotations

import codecs
import os
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler import errors, strictyaml


def data(text: str | bytes) -> Any:
    raw = text.encode("utf-8") if isinstance(text, str) else text
    return strictyaml.parse("t.yaml", raw).data


def refusal(text: str | bytes, label: str = "t.yaml") -> errors.Problem:
    """The one problem parse() raises for text."""
    raw = text.encode("utf-8") if isinstance(text, str) else text
    with pytest.raises(errors.InputError) as caught:
        strictyaml.parse(label, raw)
    (problem,) = caught.value.problems
    assert problem.file == label
    return problem


# ---------------------------------------------------------------------------------------------
# Values as written


@pytest.mark.parametrize(
    ("written", "value"),
    [
        ("true", True),
        ("false", False),
        ("null", None),
        ("~", None),
        ("", None),
        ("0", 0),
        ("42", 42),
        ("-7", -7),
        ("123456789012345678", 123456789012345678),  # 18 digits: still an int
        # YAML 1.1 would turn these into booleans, numbers, dates or None; here they stay text.
        ("NO", "NO"),
        ("no", "no"),
        ("yes", "yes"),
        ("on", "on"),
        ("off", "off"),
        ("True", "True"),
        ("FALSE", "FALSE"),
        ("Null", "Null"),
        ("0001", "0001"),
        ("-0", "-0"),
        ("+1", "+1"),
        ("1_000", "1_000"),
        ("1e3", "1e3"),
        ("1.50", "1.50"),
        ("0x1F", "0x1F"),
        ("0o17", "0o17"),
        ("12:30", "12:30"),
        (".inf", ".inf"),
        ("2026-01-01", "2026-01-01"),
        ("1234567890123456789", "1234567890123456789"),  # 19 digits: kept as written
    ],
)
def test_plain_scalar_means_what_was_written(written: str, value: Any) -> None:
    got = data(f"key: {written}\n")["key"]
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize(
    ("written", "value"),
    [
        ('"true"', "true"),
        ("'42'", "42"),
        ('""', ""),
        ("''", ""),
        ('"null"', "null"),
        ("!!str 42", "42"),
        ("!!str true", "true"),
        ('"SQL01\\\\VISMA"', "SQL01\\VISMA"),
        ("'SQL01\\VISMA'", "SQL01\\VISMA"),
    ],
)
def test_quoted_or_str_tagged_scalar_is_text(written: str, value: str) -> None:
    assert data(f"key: {written}\n") == {"key": value}


def test_block_scalars_are_text() -> None:
    assert data("a: |\n  line one\n  42\nb: >\n  folded\n  text\n") == {
        "a": "line one\n42\n",
        "b": "folded text\n",
    }


def test_nested_document() -> None:
    text = (
        "version: 1\ncustomer: acme\nconnections:\n"
        "  - {name: Visma Oslo, companies: [F0001, 0002], enabled: true}\n"
        "  - name: Old\n    absent: true\n    notes:\n"
    )
    assert data(text) == {
        "version": 1,
        "customer": "acme",
        "connections": [
            {"name": "Visma Oslo", "companies": ["F0001", "0002"], "enabled": True},
            {"name": "Old", "absent": True, "notes": None},
        ],
    }


def test_keys_are_text_as_written() -> None:
    assert data("1: a\ntrue: b\nnull: c\n") == {"1": "a", "true": "b", "null": "c"}


def test_aliases_within_limits_are_expanded() -> None:
    assert data("base: &b [F0001, F0002]\nother: *b\n") == {
        "base": ["F0001", "F0002"],
        "other": ["F0001", "F0002"],
    }


def test_utf8_byte_order_mark_is_accepted() -> None:
    assert data(codecs.BOM_UTF8 + "name: Tromsø\n".encode()) == {"name": "Tromsø"}


def test_crlf_line_endings_are_read() -> None:
    assert data(b"a: 1\r\nb: x\r\n") == {"a": 1, "b": "x"}


def test_document_keeps_the_node_tree_for_positions() -> None:
    doc = strictyaml.parse("t.yaml", b"version: 1\nconnections:\n  - name: a\n    server: s\n")
    assert isinstance(doc.root, yaml.MappingNode)
    assert strictyaml.position(doc.root, ("connections", 0, "server")) == (4, 13)
    assert strictyaml.position(doc.root, ("connections", 0, "server"), key=True) == (4, 5)


# ---------------------------------------------------------------------------------------------
# Refusals: where, and what to do


def test_duplicate_key_names_both_places() -> None:
    problem = refusal("a: 1\nb: 2\n  # c\na: 3\n")
    assert (problem.line, problem.column) == (4, 1)
    assert problem.message == "duplicate key 'a' (first at line 1, column 1); keep one"


def test_duplicate_key_under_password_is_not_shown() -> None:
    problem = refusal("name: x\npassword:\n  s3cr3t-value: 1\n  s3cr3t-value: 2\n")
    assert (problem.line, problem.column) == (4, 3)
    assert "s3cr3t-value" not in problem.message
    assert "first at line 3, column 3; not shown" in problem.message


def test_duplicate_key_in_a_nested_list_item() -> None:
    problem = refusal("connections:\n  - name: a\n    name: b\n")
    assert (problem.line, problem.column) == (3, 5)
    assert "duplicate key 'name' (first at line 2, column 5)" in problem.message


@pytest.mark.parametrize(
    ("text", "tag", "where"),
    [
        ("a: !!int 3\n", "!!int", (1, 4)),
        ("a: !!float 1.5\n", "!!float", (1, 4)),
        ("a: !!bool yes\n", "!!bool", (1, 4)),
        ("a:\n  b: !custom x\n", "!custom", (2, 6)),
        ("a: !!set {x, y}\n", "!!set", (1, 4)),
        ("a: !!python/object:os.system x\n", "!!python/object:os.system", (1, 4)),
        ("a: !!map [1]\n", "!!map", (1, 4)),
    ],
)
def test_tags_are_refused_where_written(text: str, tag: str, where: tuple[int, int]) -> None:
    problem = refusal(text)
    assert (problem.line, problem.column) == where
    assert problem.message.startswith(f"YAML tag {tag} is not allowed; remove it")


def test_a_second_document_is_refused() -> None:
    problem = refusal("a: 1\n---\nb: 2\n")
    assert problem.line == 3
    assert problem.message.startswith("only one YAML document per file")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty; it must start with `version: 1`"),
        ("\n\n", "the file is empty; it must start with `version: 1`"),
        ("# just a comment\n", "the file has only comments; it must start with `version: 1`"),
    ],
)
def test_empty_file_is_refused(text: str, message: str) -> None:
    problem = refusal(text)
    assert (problem.line, problem.column, problem.message) == (1, 1, message)


def test_merge_key_is_refused() -> None:
    problem = refusal("base: &b {server: s}\nconn:\n  <<: *b\n  name: x\n")
    assert (problem.line, problem.column) == (3, 3)
    assert problem.message == "merge keys (<<) are not allowed; write the keys out"


def test_quoted_merge_key_is_an_ordinary_key() -> None:
    assert data('"<<": x\n') == {"<<": "x"}


def test_complex_key_is_refused() -> None:
    problem = refusal("? [a, b]\n: 1\n")
    assert problem.line == 1 and problem.message.startswith("a key must be a single word")


def test_alias_bomb_is_refused_before_it_expands() -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i, name in enumerate("bcdefg"):
        prev = "abcdefg"[i]
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    problem = refusal("\n".join(lines) + "\n")
    assert "expands to more than 50000 values through its aliases" in problem.message


def test_too_many_plain_values_do_not_blame_aliases() -> None:
    problem = refusal("a: [" + ", ".join(["x"] * 60_000) + "]\n")
    assert problem.message == "the document has more than 50000 values, the most a file may have"


def test_recursive_alias_is_refused() -> None:
    problem = refusal("a: &x [1, *x]\n")
    assert "nesting deeper than 40 levels (a recursive alias?)" in problem.message


def test_nesting_up_to_the_limit_is_read_and_deeper_is_refused() -> None:
    def nested(levels: int) -> str:
        return "a: " + "[" * levels + "1" + "]" * levels + "\n"

    value = data(nested(strictyaml.MAX_DEPTH - 2))["a"]
    for _ in range(strictyaml.MAX_DEPTH - 2):
        (value,) = value
    assert value == 1
    problem = refusal(nested(strictyaml.MAX_DEPTH + 5))
    assert "nest" in problem.message and str(strictyaml.MAX_DEPTH) in problem.message


@pytest.mark.parametrize(
    ("text", "where", "hint"),
    [
        ("a:\n\tb: 1\n", (2, 1), "indent with spaces, not tabs"),
        ("a: [1, 2\nb: 3\n", None, "close the bracket, or separate items with ', '"),
        ('a: "open\n', None, "close the quote or bracket that is still open"),
        ('a: "SQL01\\VISMA"\n', (1, 10), "inside double quotes a backslash starts an escape"),
        ("a: *nowhere\n", (1, 4), "define the anchor (&name) before using it"),
        ("a: @home\n", (1, 4), "quote a value that starts with '@'"),
        ("a: `x`\n", (1, 4), "quote a value that starts with '`'"),
        ("a: b: c\n", (1, 5), "quote a value that contains ': '"),
        ("a: 1\n b: 2\n", None, "check the indentation"),
        ("a: &x 1\nb: &x 2\n", None, "each anchor (&name) must be unique"),
        ("%YAML 2.0\n---\na: 1\n", None, "remove the %YAML directive"),
        ("a: ? b\n", (1, 4), "quote the value (a '? ' or ': ' in it starts a key)"),
        ("a: |b\n", (1, 5), "a | or > starts a block of text on the lines below"),
    ],
)
def test_syntax_error_has_its_place_and_a_hint(text: str, where: tuple[int, int] | None, hint: str) -> None:
    problem = refusal(text)
    assert problem.message.startswith("YAML syntax: ")
    assert hint in problem.message
    if where is not None:
        assert (problem.line, problem.column) == where
    assert problem.line >= 1 and problem.column >= 1


def test_duplicate_anchor_says_so_and_where_the_first_is() -> None:
    problem = refusal("a: &x 1\nb: &x 2\n")
    assert problem.line == 2
    assert "an anchor is defined twice" in problem.message and "line 1" in problem.message


# ---------------------------------------------------------------------------------------------
# Bytes: encodings, characters, size


@pytest.mark.parametrize(
    ("bom", "name"),
    [
        (codecs.BOM_UTF16_LE, "UTF-16"),
        (codecs.BOM_UTF16_BE, "UTF-16"),
        (codecs.BOM_UTF32_LE, "UTF-32"),
        (codecs.BOM_UTF32_BE, "UTF-32"),
    ],
)
def test_utf16_and_utf32_files_are_named(bom: bytes, name: str) -> None:
    codec = {"UTF-16": "utf-16", "UTF-32": "utf-32"}[name]
    raw = bom + "a: 1\n".encode(codec + ("-le" if bom.endswith(b"\x00") or bom[0] == 0xFF else "-be"))
    problem = refusal(raw)
    assert (problem.line, problem.column) == (1, 1)
    assert problem.message == f"the file is {name}; save it as UTF-8"


@pytest.mark.parametrize("bom", [b"", codecs.BOM_UTF8])
def test_latin1_byte_is_located(bom: bytes) -> None:
    problem = refusal(bom + b"a: 1\nb: caf\xe9\n")
    assert (problem.line, problem.column) == (2, 7)
    assert problem.message.startswith("byte 0xe9 is not valid UTF-8 (a Latin-1")


@pytest.mark.parametrize(
    ("char", "where", "fragment"),
    [
        ("\x00", (2, 6), "U+0000 (a NUL byte) is not allowed"),
        ("\x07", (2, 6), "control character U+0007 is not allowed"),
        ("\x7f", (2, 6), "control character U+007F is not allowed"),
        ("\x85", (2, 6), "U+0085 is a line break that editors do not show"),
        ("\u2028", (2, 6), "U+2028 is a line break that editors do not show"),
        ("\u2029", (2, 6), "U+2029 is a line break that editors do not show"),
        ("\ufffe", (2, 6), "control character U+FFFE is not allowed"),
    ],
)
def test_bad_character_is_located(char: str, where: tuple[int, int], fragment: str) -> None:
    problem = refusal(f"a: 1\nb: ab{char}c\n")
    assert (problem.line, problem.column) == where
    assert fragment in problem.message


def test_bad_character_after_a_crlf_and_a_cr_counts_lines_as_yaml_does() -> None:
    problem = refusal("a: 1\r\nb: 2\rc: \x01\n")
    assert (problem.line, problem.column) == (3, 4)


def test_tab_and_unicode_text_are_fine() -> None:
    assert data('a: "x\ty"\nb: Ærøskøbing ✓ 😀\n') == {"a": "x\ty", "b": "Ærøskøbing ✓ 😀"}


def test_size_limit() -> None:
    head = b"a: "
    at_limit = head + b"x" * (strictyaml.MAX_BYTES - len(head) - 1) + b"\n"
    assert len(at_limit) == strictyaml.MAX_BYTES
    assert data(at_limit) == {"a": "x" * (strictyaml.MAX_BYTES - len(head) - 1)}
    problem = refusal(at_limit + b"\n")
    assert (problem.line, problem.column) == (1, 1)
    assert problem.message.startswith("the file is larger than the limit of 1048576 bytes")


# ---------------------------------------------------------------------------------------------
# read_bytes: regular files only, never more than the limit


def test_read_bytes_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_bytes(b"a: 1\n")
    assert strictyaml.read_bytes(path) == b"a: 1\n"


def test_read_bytes_stops_one_past_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"#" * (strictyaml.MAX_BYTES * 2))
    assert len(strictyaml.read_bytes(path)) == strictyaml.MAX_BYTES + 1


def test_read_bytes_of_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(errors.InputError) as caught:
        strictyaml.read_bytes(tmp_path / "gone.yaml")
    (problem,) = caught.value.problems
    assert problem.file == str(tmp_path / "gone.yaml") and problem.line == 0
    assert problem.message == "cannot read: No such file or directory"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_read_bytes_refuses_a_fifo_without_waiting(tmp_path: Path) -> None:
    fifo = tmp_path / "t.yaml"
    os.mkfifo(fifo)
    outcome: list[BaseException | bytes] = []

    def read() -> None:
        try:
            outcome.append(strictyaml.read_bytes(fifo))
        except BaseException as exc:  # handed to the test thread
            outcome.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=10)
    if reader.is_alive():  # unblock the reader before failing
        with open(fifo, "wb"):
            pass
        pytest.fail("read_bytes waited on a FIFO")
    (result,) = outcome
    assert isinstance(result, errors.InputError)
    assert "is not a regular file" in result.problems[0].message


# ---------------------------------------------------------------------------------------------
# Positions of values and keys


DOC = """\
version: 1
connections:
  - name: Visma Oslo
    server: SQL01
    companies: [F0001, F0002]
  - {name: Old, absent: true}
"""


@pytest.fixture(name="root")
def root_fixture() -> yaml.Node:
    return strictyaml.parse("t.yaml", DOC.encode()).root


@pytest.mark.parametrize(
    ("loc", "key", "where"),
    [
        (("version",), False, (1, 10)),
        (("version",), True, (1, 1)),
        (("connections", 0, "server"), False, (4, 13)),
        (("connections", 0, "server"), True, (4, 5)),
        (("connections", 0, "companies", 1), False, (5, 24)),
        (("connections", 1, "absent"), False, (6, 25)),
        (("connections", 1, "absent"), True, (6, 17)),
        # a missing key points at the mapping that lacks it; a missing index at the list
        (("connections", 0, "database"), False, (3, 5)),
        (("connections", 0, "database"), True, (3, 5)),
        (("connections", 5), False, (3, 3)),
        (("version", "x"), False, (1, 10)),
    ],
)
def test_position(root: yaml.Node, loc: tuple[str | int, ...], key: bool, where: tuple[int, int]) -> None:
    assert strictyaml.position(root, loc, key=key) == where


def test_node_at_says_whether_the_path_was_found(root: yaml.Node) -> None:
    node, found = strictyaml.node_at(root, ("connections", 0, "name"))
    assert found and node.value == "Visma Oslo"
    node, found = strictyaml.node_at(root, ("connections", 0, "database"))
    assert not found and isinstance(node, yaml.MappingNode)
    _, found = strictyaml.node_at(root, ("connections", "name"))
    assert not found


def test_key_node_at(root: yaml.Node) -> None:
    key = strictyaml.key_node_at(root, ("connections", 1, "absent"))
    assert key is not None and key.value == "absent"
    assert strictyaml.key_node_at(root, ("connections", 1, "missing")) is None
    assert strictyaml.key_node_at(root, ("nowhere", "x")) is None


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain text", "plain text"),
        ("Tromsø", "Tromsø"),
        ("a\tb", "a\\tb"),
        ("a\nb", "a\\nb"),
        ("\x1b[31m", "\\x1b[31m"),
    ],
)
def test_printable(text: str, shown: str) -> None:
    assert strictyaml.printable(text) == shown


def test_read_bytes_refuses_a_folder_named_yaml(tmp_path: Path) -> None:
    folder = tmp_path / "t.yaml"
    folder.mkdir()
    with pytest.raises(errors.InputError) as caught:
        strictyaml.read_bytes(folder)
    assert "is not a regular file (a folder" in caught.value.problems[0].message
