"""Strict YAML reading: scalars exactly as written, positions kept for error messages.

Only `true`/`false` become booleans, `null`/`~`/empty become None and canonical decimal
integers become int (their text is unchanged by the conversion); every other plain scalar stays
the string that was written (`NO`, `on`, `0001`, `1e3`, `2026-01-01`). Duplicate keys, tags,
documents after the first, runaway alias expansion, deep nesting, oversized and non-UTF-8 files
are errors with a line and column.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from typing import Any

import yaml

from reconciler import errors

MAX_BYTES = 1024 * 1024
MAX_NODES = 50_000
MAX_DEPTH = 40

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_INT = re.compile(r"0|-?[1-9][0-9]{0,17}")
_NULLS = frozenset({"", "~", "null"})
_STD_TAGS = frozenset(
    "tag:yaml.org,2002:" + t for t in ("str", "map", "seq", "bool", "int", "null", "float",
                                       "timestamp", "binary", "merge", "omap", "pairs", "set")
)
_HINTS = {
    "found character '\\t' that cannot start any token": "indent with spaces, not tabs",
    "found character that cannot start any token": "indent with spaces, not tabs (and check stray characters)",
    "mapping values are not allowed here": "check the indentation, or quote a value that contains ': '",
    "found undefined alias": "define the anchor (&name) before using it (*name)",
}


@dataclass(frozen=True)
class Document:
    """A parsed YAML document and the node tree it came from (for positions)."""

    data: Any
    root: yaml.Node


class _Fail(Exception):
    def __init__(self, node: yaml.Node | yaml.Mark | None, message: str) -> None:
        super().__init__(message)
        self.mark = node.start_mark if isinstance(node, yaml.Node) else node
        self.message = message


def _position(mark: yaml.Mark | None) -> tuple[int, int]:
    return (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)


def _decode(label: str, raw: bytes) -> str:
    for bom, name in ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
                      (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16")):
        if raw.startswith(bom):
            raise errors.InputError.of([errors.at(
                label, 1, 1, f"the file is {name}; save it as UTF-8")])
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        column = len(before) - (before.rfind(b"\n") + 1) + 1
        raise errors.InputError.of([errors.at(
            label, line, column,
            f"byte 0x{raw[exc.start]:02x} is not valid UTF-8; save the file as UTF-8")]) from None


class _Builder:
    def __init__(self) -> None:
        self.count = 0

    def build(self, node: yaml.Node, depth: int) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise _Fail(node, f"the document expands to more than {MAX_NODES} values "
                              "(aliases expanding too far?); write the values out")
        if depth > MAX_DEPTH:
            raise _Fail(node, f"nesting deeper than {MAX_DEPTH} levels (a recursive alias?)")
        if node.tag not in _STD_TAGS:
            raise _Fail(node, f"YAML tag {node.tag!r} is not allowed; remove it")
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(child, depth + 1) for child in node.value]
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node, depth)
        raise _Fail(node, "unsupported YAML node")  # pragma: no cover - yaml has no other kinds

    @staticmethod
    def scalar(node: yaml.ScalarNode) -> Any:
        value: str = node.value
        if node.style:  # quoted or block scalar: always a string ("" or None is plain)
            return value
        if value in ("true", "false"):
            return value == "true"
        if value in _NULLS:
            return None
        if _INT.fullmatch(value):
            return int(value)
        return value

    def mapping(self, node: yaml.MappingNode, depth: int) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise _Fail(key_node, "merge keys (<<) are not allowed; write the keys out")
            if not isinstance(key_node, yaml.ScalarNode):
                raise _Fail(key_node, "a key must be a plain word")
            key = key_node.value
            if key in result:
                first = next(k for k, _ in node.value if k.value == key)
                line, column = _position(first.start_mark)
                raise _Fail(key_node, f"duplicate key {key!r} (first at line {line}, column "
                                      f"{column}); keep one")
            result[key] = self.build(value_node, depth + 1)
        return result


def parse(label: str, raw: bytes) -> Document:
    """Parse one YAML document strictly; raise InputError with file:line:col otherwise."""
    if len(raw) > MAX_BYTES:
        raise errors.InputError.of([errors.at(
            label, 1, 1, f"the file is {len(raw)} bytes; the limit is {MAX_BYTES} bytes")])
    text = _decode(label, raw)
    try:
        documents = yaml.compose_all(text, Loader=_Loader)
        root = next(documents, None)
        if root is None:
            raise _Fail(None, "the file is empty; it must start with `version: 1`")
        extra = next(documents, None)
        if extra is not None:
            raise _Fail(extra, "only one YAML document per file; remove the `---` and what follows")
        return Document(_Builder().build(root, 0), root)
    except yaml.MarkedYAMLError as exc:
        message = exc.problem or str(exc)
        hint = next((h for p, h in _HINTS.items() if message.startswith(p)), None)
        if exc.context:
            message = f"{message} ({exc.context})"
        line, column = _position(exc.problem_mark)
        text_out = f"YAML syntax: {message}" + (f"; {hint}" if hint else "")
        raise errors.InputError.of([errors.at(label, line, column, text_out)]) from None
    except _Fail as exc:
        line, column = _position(exc.mark)
        raise errors.InputError.of([errors.at(label, line, column, exc.message)]) from None
    except RecursionError:
        raise errors.InputError.of([errors.at(label, 1, 1, "the document nests too deeply")]) from None


def node_at(root: yaml.Node, loc: tuple[str | int, ...]) -> tuple[yaml.Node, bool]:
    """The node at a path of keys and indexes, and whether the full path was found.

    For a missing key the enclosing mapping is returned, so that "missing field" errors
    point at the mapping that lacks it.
    """
    node = root
    for part in loc:
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            found = [(k, v) for k, v in node.value if k.value == part]
            if not found:
                return node, False
            node = found[0][1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return node, False
            node = node.value[part]
        else:
            return node, False
    return node, True


def key_node_at(root: yaml.Node, loc: tuple[str | int, ...]) -> yaml.Node | None:
    """The key node of the last part of loc (for "unknown key" errors)."""
    parent, found = node_at(root, loc[:-1])
    if found and isinstance(parent, yaml.MappingNode):
        for key, _ in parent.value:
            if key.value == loc[-1]:
                return key
    return None


def position(root: yaml.Node, loc: tuple[str | int, ...], *, key: bool = False) -> tuple[int, int]:
    """1-based line and column of the value (or key) at loc."""
    if key:
        key_node = key_node_at(root, loc)
        if key_node is not None:
            return _position(key_node.start_mark)
    node, _ = node_at(root, loc)
    return _position(node.start_mark)
