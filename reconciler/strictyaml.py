"""Strict YAML reading: scalars exactly as written, positions kept for error messages.

Only `true`/`false` become booleans, `null`/`~`/empty become None and canonical decimal
integers become int (their text is unchanged by the conversion); every other plain scalar stays
the string that was written (`NO`, `on`, `0001`, `1e3`, `2026-01-01`). Duplicate keys, tags,
documents after the first, runaway alias expansion, deep nesting, oversized and non-UTF-8 files
are errors with a line and column.
"""

from __future__ import annotations

import codecs
import contextlib
import operator
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from reconciler import errors

MAX_BYTES = 1024 * 1024
MAX_NODES = 50_000
MAX_DEPTH = 40

_INT = re.compile(r"0|-?[1-9][0-9]{0,17}")
_INT_START = frozenset("-0123456789")  # what _INT can start with: the others skip the regex
_NULLS = frozenset({"", "~", "null"})
_WORDS: dict[str, Any] = {"true": True, "false": False, **dict.fromkeys(_NULLS)}
_SCALAR = yaml.ScalarNode
_TAG = "tag:yaml.org,2002:"
_STR = _TAG + "str"
# The tag of a plain scalar without an explicit tag. _Builder decides what such a value means
# (true/false, null, an int, else the text as written), so YAML 1.1's tag guessing is skipped:
# it was the largest cost of reading a fleet (`make bench`). No file can write this tag.
_PLAIN = "tag:osr-reconciler.invalid,2026:plain"
# For readers of the node tree (reconciler.quickread): the tags a node carries here, and the
# plain scalars the builder does not keep as text.
PLAIN_TAG, STR_TAG, MAP_TAG, SEQ_TAG = _PLAIN, _STR, _TAG + "map", _TAG + "seq"
WORDS, NULLS = frozenset(_WORDS), _NULLS


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """libyaml's composer with trivial tag resolution (see _PLAIN)."""

    def resolve(self, kind: type[yaml.Node], value: str, implicit: tuple[bool, bool]) -> str:
        if kind is yaml.ScalarNode:
            if not implicit[0]:
                return _TAG + "str"  # quoted, or the non-specific tag `!`
            return _TAG + "merge" if value == "<<" else _PLAIN
        return _TAG + ("seq" if kind is yaml.SequenceNode else "map")

    # libyaml's composer calls these two around every node (path-based resolvers, which this
    # loader has none of): C callables that do nothing, so that no Python frame is entered.
    descend_resolver = staticmethod(operator.is_)  # (parent, index): the answer is ignored
    ascend_resolver = staticmethod(tuple)  # (): the answer is ignored


# What YAML itself refuses inside a document (C0/C1 control characters other than tab and line
# breaks, the non-characters U+FFFE/U+FFFF), and the line breaks editors do not show as such
# (NEL, U+2028, U+2029: YAML counts them, so every line number after one would look wrong).
# Checked before parsing so that the message can say which character and where.
_BAD_CHAR = re.compile("[^\t\n\r\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_LINE_BREAK = re.compile("\r\n|\r|\n")
# libyaml's problem texts (they name no file and rarely the fix) -> what to do instead.
_HINTS = (
    ("found a tab character", "indent with spaces, not tabs"),
    (
        "mapping values are not allowed",
        "check the indentation of this line, or quote a value that contains ': '",
    ),
    (
        "did not find expected key",
        "check the indentation: keys of one mapping line up, and a "
        "quoted value cannot continue after its closing quote",
    ),
    (
        "did not find expected '-' indicator",
        "check the indentation: items of one list line up under each other",
    ),
    ("could not find expected ':'", "write `key: value`, or quote a value that spans lines"),
    ("did not find expected ',' or", "close the bracket, or separate items with ', '"),
    ("found unexpected end of stream", "close the quote or bracket that is still open"),
    (
        "found undefined alias",
        "define the anchor (&name) before using it (*name), or quote a value that starts with *",
    ),
    ("did not find expected alphabetic or numeric character", "quote a value that starts with * or &"),
    (
        "found unknown escape character",
        "inside double quotes a backslash starts an escape: "
        "write the value unquoted or in single quotes "
        "('SQL01\\VISMA')",
    ),
    ("did not find expected node content", "quote the value"),
    ("block sequence entries are not allowed", "start the list on the next line, indented under its key"),
    ("exceeded maximum nesting depth", f"flatten the document (at most {MAX_DEPTH} levels)"),
    ("found incompatible YAML document", "remove the %YAML directive"),
    ("second occurrence", "each anchor (&name) must be unique; rename one"),
    ("mapping keys are not allowed in this context", "quote the value (a '? ' or ': ' in it starts a key)"),
    (
        "did not find expected comment or line break",
        "a | or > starts a block of text on the lines below; write the text there, or quote the value",
    ),
)


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


def _line_column(text: str, index: int) -> tuple[int, int]:
    """1-based line and column of a character index, counting line breaks as YAML does."""
    line, start = 1, 0
    for match in _LINE_BREAK.finditer(text, 0, index):
        line, start = line + 1, match.end()
    return line, index - start + 1


def printable(text: str) -> str:
    """text with anything that would break a one-line message escaped."""
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


def _decode(label: str, raw: bytes) -> str:
    for bom, name in (
        (codecs.BOM_UTF32_LE, "UTF-32"),
        (codecs.BOM_UTF32_BE, "UTF-32"),
        (codecs.BOM_UTF16_LE, "UTF-16"),
        (codecs.BOM_UTF16_BE, "UTF-16"),
    ):
        if raw.startswith(bom):
            raise errors.InputError.of([errors.at(label, 1, 1, f"the file is {name}; save it as UTF-8")])
    try:
        # A UTF-8 byte-order mark is accepted: Windows editors write one.
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        start = exc.start + (3 if raw.startswith(codecs.BOM_UTF8) else 0)
        line, column = _line_column(
            raw.decode("utf-8-sig", "replace"), len(raw[:start].decode("utf-8-sig", "replace"))
        )
        raise errors.InputError.of(
            [
                errors.at(
                    label,
                    line,
                    column,
                    f"byte 0x{raw[start]:02x} is not valid UTF-8 (a Latin-1 or Windows-1252 file?); "
                    "save the file as UTF-8",
                )
            ]
        ) from None
    bad = _BAD_CHAR.search(text)
    if bad is not None:
        line, column = _line_column(text, bad.start())
        char = ord(bad.group())
        if char == 0:
            what = (
                "control character U+0000 (a NUL byte) is not allowed; is the file UTF-16 "
                "without a byte-order mark? save it as UTF-8"
            )
        elif char in (0x85, 0x2028, 0x2029):
            what = (
                f"U+{char:04X} is a line break that editors do not show; remove it or use "
                "an ordinary line break"
            )
        else:
            what = (
                f"control character U+{char:04X} is not allowed; remove it (or write it as "
                "an escape inside double quotes)"
            )
        raise errors.InputError.of([errors.at(label, line, column, what)])
    return text


def _shares_nodes(root: yaml.Node) -> bool:
    """Whether an alias makes a node appear twice: the composer shares the anchored node."""
    seen: set[int] = set()
    todo = [root]
    while todo:
        node = todo.pop()
        if id(node) in seen:
            return True
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                todo += (key, value)
        elif isinstance(node, yaml.SequenceNode):
            todo += node.value
    return False


def _short_tag(tag: str) -> str:
    return printable("!!" + tag.removeprefix(_TAG) if tag.startswith(_TAG) else tag)


class _Builder:
    def __init__(self, root: yaml.Node) -> None:
        self.root, self.count = root, 0

    def build(self, node: yaml.Node, depth: int, secret: bool = False) -> Any:
        """The value of node; secret: under a `password` key (its keys are never echoed)."""
        self.count += 1
        if self.count > MAX_NODES:
            if _shares_nodes(self.root):
                raise _Fail(
                    node,
                    f"the document expands to more than {MAX_NODES} values through its "
                    "aliases (*name); write the values out",
                )
            raise _Fail(node, f"the document has more than {MAX_NODES} values, the most a file may have")
        if depth > MAX_DEPTH:
            raise _Fail(
                node, f"nesting deeper than {MAX_DEPTH} levels (a recursive alias?); flatten the document"
            )
        if isinstance(node, yaml.ScalarNode):
            # explicit_str() and scalar() inlined for the plain scalar: most nodes of a file.
            tag = node.tag
            if tag == _PLAIN:
                value: str = node.value
                if node.style:
                    return value
                if value in _WORDS:
                    return _WORDS[value]
                if value[0] in _INT_START and _INT.fullmatch(value):
                    return int(value)
                return value
            if self.explicit_str(node, secret):
                return node.value
            return self.scalar(node)
        if isinstance(node, yaml.MappingNode):
            self.check_tag(node, _TAG + "map", secret)
            return self.mapping(node, depth, secret)
        if isinstance(node, yaml.SequenceNode):
            self.check_tag(node, _TAG + "seq", secret)
            return [self.build(child, depth + 1, secret) for child in node.value]
        raise _Fail(node, "unsupported YAML node")  # pragma: no cover - yaml has no other kinds

    @staticmethod
    def check_tag(node: yaml.Node, implicit: str, secret: bool = False) -> None:
        """secret: under a `password` key, where `!Sommer2024` is more likely a password written
        out than a tag: the tag is not shown."""
        if node.tag != implicit and secret:
            raise _Fail(
                node,
                "a YAML tag under password is not allowed (not shown: it may be the password); "
                "remove it, and write the password as {env: NAME} or {file: PATH}",
            )
        if node.tag != implicit:
            raise _Fail(
                node,
                f"YAML tag {_short_tag(node.tag)} is not allowed; remove it "
                "(values are read as written: quote a value to keep it text)",
            )

    @classmethod
    def explicit_str(cls, node: yaml.ScalarNode, secret: bool = False) -> bool:
        """True for `!!str x` or a quoted scalar (the text as written); False for a plain
        scalar; raises for any other explicit tag."""
        tag = node.tag
        if tag == _PLAIN or tag == _TAG + "merge":
            return False
        if tag == _TAG + "str":
            return True
        cls.check_tag(node, _PLAIN, secret)
        return False  # pragma: no cover - check_tag raised

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

    def mapping(self, node: yaml.MappingNode, depth: int, secret: bool) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        inline = depth + 1 <= MAX_DEPTH  # a plain scalar value is built here, not by build()
        for key_node, value_node in node.value:
            key_tag = key_node.tag
            if key_tag == "tag:yaml.org,2002:merge":
                raise _Fail(key_node, "merge keys (<<) are not allowed; write the keys out")
            if not isinstance(key_node, yaml.ScalarNode):
                raise _Fail(
                    key_node,
                    "a key must be a single word, not a list or mapping; check for a stray '?', '[' or '{'",
                )
            if key_tag != _PLAIN and key_tag != _STR:
                self.explicit_str(key_node, secret)
            key = key_node.value
            if key in result:
                first = next(k for k, _ in node.value if k.value == key and k is not key_node)
                line, column = _position(first.start_mark)
                if secret:  # the key may be the secret itself
                    raise _Fail(
                        key_node,
                        f"a key under password is written twice (first at "
                        f"line {line}, column {column}; not shown); keep one",
                    )
                raise _Fail(
                    key_node, f"duplicate key {key!r} (first at line {line}, column {column}); keep one"
                )
            if (
                inline
                and value_node.__class__ is _SCALAR
                and value_node.tag == _PLAIN
                and self.count < MAX_NODES
            ):
                # build()'s plain-scalar branch, inlined: the same count, the same value.
                self.count += 1
                value = value_node.value
                if not value_node.style:
                    if value in _WORDS:
                        value = _WORDS[value]
                    elif value[0] in _INT_START and _INT.fullmatch(value):
                        value = int(value)
                result[key] = value
            else:
                result[key] = self.build(value_node, depth + 1, secret or key == "password")
        return result


def _only_comments(text: str) -> bool:
    return any(line.strip().startswith("#") for line in text.splitlines())


def _syntax(text: str, exc: yaml.MarkedYAMLError) -> tuple[yaml.Mark | None, str]:
    """libyaml's problem, with where its context started and what to write instead."""
    problem = exc.problem or "invalid YAML"
    context = exc.context
    if problem == "second occurrence" and context:  # duplicate anchor
        problem, context = (
            "an anchor is defined twice",
            context.removeprefix("found duplicate anchor; ").replace("first occurrence", "first"),
        )
    message = f"YAML syntax: {problem}"
    if context:
        where = ""
        if (
            exc.context_mark is not None
            and exc.problem_mark is not None
            and (exc.context_mark.line, exc.context_mark.column)
            != (exc.problem_mark.line, exc.problem_mark.column)
        ):
            line, column = _position(exc.context_mark)
            where = f" at line {line}, column {column}"
        message += f" ({context}{where})"
    hint = next((h for p, h in _HINTS if (exc.problem or "").startswith(p)), None)
    if problem.startswith("found character that cannot start any token") and exc.problem_mark:
        char = text[exc.problem_mark.index : exc.problem_mark.index + 1]
        hint = (
            "indent with spaces, not tabs"
            if char == "\t"
            else f"quote a value that starts with {char!r}"
            if char.strip()
            else "quote the value"
        )
    return exc.problem_mark, message + (f"; {hint}" if hint else "")


def read_bytes(path: Path | str) -> bytes:
    """A regular file's bytes, at most one past the size limit (parse() then refuses it).

    A FIFO, device or socket named *.yaml is refused, never waited on: it is opened without
    blocking and checked before the first read.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise errors.InputError.of(
            [errors.Problem(str(path), 0, 0, f"cannot read: {exc.strerror}")]
        ) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # before fdopen, which refuses a directory
        os.close(fd)
        raise errors.InputError.of(
            [
                errors.Problem(
                    str(path),
                    0,
                    0,
                    "is not a regular file (a folder, pipe, device or socket?); give a YAML file",
                )
            ]
        )
    with os.fdopen(fd, "rb") as handle:
        try:
            return handle.read(MAX_BYTES + 1)
        except OSError as exc:
            raise errors.InputError.of(
                [errors.Problem(str(path), 0, 0, f"cannot read: {exc.strerror}")]
            ) from None


def compose(label: str, raw: bytes) -> yaml.Node:
    """The node tree of the file's one YAML document, nothing built from it yet (build): its
    size, encoding, characters, syntax and number of documents checked, else InputError with
    file:line:col."""
    if len(raw) > MAX_BYTES:
        raise errors.InputError.of(
            [
                errors.at(
                    label,
                    1,
                    1,
                    f"the file is larger than the limit of {MAX_BYTES} bytes (1 MiB); "
                    "is it the right file? Split it or remove what is not needed",
                )
            ]
        )
    text = _decode(label, raw)
    with _reported(label, text):
        documents = yaml.compose_all(text, Loader=_Loader)
        root = next(documents, None)
        if root is None:
            what = "has only comments" if _only_comments(text) else "is empty"
            raise _Fail(None, f"the file {what}; it must start with `version: 1`")
        extra = next(documents, None)
        if extra is not None:
            raise _Fail(extra, "only one YAML document per file; remove the `---` and what follows")
        return root


def build(label: str, root: yaml.Node) -> Document:
    """The values of a composed document, read strictly (tags, duplicate and merge keys, the
    number of values, nesting), else InputError with file:line:col."""
    with _reported(label, ""):
        return Document(_Builder(root).build(root, 0), root)


def parse(label: str, raw: bytes) -> Document:
    """Parse one YAML document strictly; raise InputError with file:line:col otherwise."""
    return build(label, compose(label, raw))


@contextlib.contextmanager
def _reported(label: str, text: str) -> Iterator[None]:
    """What went wrong reading the document (text), as InputError with file:line:col."""
    try:
        yield
    except yaml.MarkedYAMLError as exc:
        mark, message = _syntax(text, exc)
        line, column = _position(mark)
        raise errors.InputError.of([errors.at(label, line, column, message)]) from None
    except yaml.YAMLError as exc:  # pragma: no cover - _decode refuses what the reader would
        message = "YAML: " + " ".join(str(exc).split())
        raise errors.InputError.of([errors.at(label, 1, 1, message)]) from None
    except _Fail as exc:
        line, column = _position(exc.mark)
        raise errors.InputError.of([errors.at(label, line, column, exc.message)]) from None
    except RecursionError:
        raise errors.InputError.of(
            [
                errors.at(
                    label, 1, 1, f"the document nests too deeply; flatten it (at most {MAX_DEPTH} levels)"
                )
            ]
        ) from None


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
                found_key: yaml.Node = key
                return found_key
    return None


def position(root: yaml.Node, loc: tuple[str | int, ...], *, key: bool = False) -> tuple[int, int]:
    """1-based line and column of the value (or key) at loc."""
    if key:
        key_node = key_node_at(root, loc)
        if key_node is not None:
            return _position(key_node.start_mark)
    node, _ = node_at(root, loc)
    return _position(node.start_mark)
