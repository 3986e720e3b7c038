"""Plainly written YAML, read line by line with regular expressions instead of libyaml (issue 15).

Nearly every tenant file of a fleet is written the same plain way: block mappings and block
sequences indented with spaces, one `key: value` per line, values that are plain or simply quoted
text, and one-line flow lists and mappings (`companies: [A, B]`, `password: {env: NAME}`). For
such a file, libyaml's composer builds a Python node (and two position marks) per scalar, and
that was the largest single cost of a plan (`make bench`). document() reads the same subset with
one regular expression over the text and a loop over its lines, and returns the values libyaml
would compose: a mapping as a dict (keys in file order), a sequence as a list, a plain scalar as
its str, a quoted scalar as a Quoted str (a reader must tell `'true'` from `true`).

Its contract is one-sided, like reconciler.quickread's. A document it returns is exactly what
libyaml composes from the same bytes, and libyaml composes it without error. Anything outside the
subset returns None, and the caller reads the file with libyaml (reconciler.strictyaml), which
says what is wrong. Outside the subset: tabs, a carriage return not followed by a line feed (a
CRLF line end is a line end), a byte-order mark or any character
YAML does not allow; keys that are not plain identifiers, or written twice; anchors, aliases,
tags, directives, document markers; block scalars (`|`, `>`); plain scalars that start with an
indicator or run over several lines; quoted scalars with escapes or over several lines; flow
collections that nest or run over several lines; a document that is not a mapping starting at
column 0. tests/test_plainyaml.py holds it to that against libyaml itself.
"""

from __future__ import annotations

import re
from typing import Any

from reconciler import strictyaml

# A plain scalar may not start with an indicator (nor with `-`, `?` or `:`, which YAML allows
# before a non-space and this reader leaves to libyaml). In a block it runs to the end of the
# line, except that `: ` (or a final `:`) would start a mapping and ` #` a comment; trailing
# spaces are not part of it. In a flow collection it also stops at `,[]{}`; here `:` and `#`
# are left to libyaml there.
_FIRST = r"[^\s\-?:,\[\]{}#&*!|>'\"%@`]"
_PLAIN = _FIRST + r"[^\s:#]*(?:(?::(?=\S)|#| +(?=[^\s#]))[^\s:#]*)*"
_QUOTED = r"'(?:[^'\n]|'')*'|\"[^\"\\\n]*\""  # one line; double-quoted without escapes
_FLOW_ITEM = "(" + _FIRST + r"[^\s:#,\[\]{}]*(?: +[^\s:#,\[\]{}]+)*|" + _QUOTED + ")"
_KEY = r"[A-Za-z_][A-Za-z0-9_]{0,63}"

# One line: indentation, `- ` of a sequence item, `key:`, a value (plain, quoted, or a one-line
# flow collection with no collection inside, checked further by _SEQ and _MAP), a comment.
# Blank and comment lines match with every group empty.
_LINE = re.compile(
    rf"^( *)(- +)?(?:({_KEY}):(?= |$) *)?"
    rf"({_PLAIN}|{_QUOTED}|\[[^\n\[\]{{}}]*\]|\{{[^\n\[\]{{}}]*\}})?"
    r"(?: +#[^\n]*| *)$|^ *#[^\n]*$",
    re.MULTILINE,
)
_SEQ = re.compile(rf" *(?:{_FLOW_ITEM}(?: *, *{_FLOW_ITEM})*)? *")
_SEQ_ITEMS = re.compile(_FLOW_ITEM)
_PAIR = rf"({_KEY}): +{_FLOW_ITEM}"
_MAP = re.compile(rf" *(?:{_PAIR}(?: *, *{_PAIR})*)? *")
_MAP_PAIRS = re.compile(_PAIR)
# What YAML allows in a document (its printable set), less tab, carriage return, U+0085,
# U+2028, U+2029 (line breaks to libyaml, not to _LINE) and the byte-order mark U+FEFF.
_OUTSIDE = re.compile("[^\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]")
_SPECIAL = frozenset("'\"[{")  # the first character of a value that is not plain
# libyaml refuses more than 1000 nested blocks; the strict reader more than MAX_DEPTH levels.
_DEEPEST = strictyaml.MAX_DEPTH


class Quoted(str):
    """The text of a quoted scalar ('…' or "…"): text, never true, false, null or a number."""

    __slots__ = ()


class _Outside(Exception):
    """Not in the subset: libyaml reads the file. Raised as a class (see quickread._Unusual)."""


def document(raw: bytes) -> dict[str, Any] | None:
    """The mapping a plainly written document composes to (see the module's text); None for
    anything else, which libyaml must read."""
    if len(raw) > strictyaml.MAX_BYTES:
        return None
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        return None
    if "\r" in text:  # Windows line ends: one line break to libyaml, as "\n" is
        text = text.replace("\r\n", "\n")  # (a carriage return left alone is refused below)
    if _OUTSIDE.search(text) is not None:
        return None
    lines = _LINE.findall(text)
    if len(lines) != text.count("\n") + 1:  # a line _LINE does not match
        return None
    try:
        return _build(lines)
    except _Outside:
        return None


def _scalar(written: str) -> str:
    first = written[0]
    if first == "'":
        return Quoted(written[1:-1].replace("''", "'"))
    if first == '"':
        return Quoted(written[1:-1])
    return written


def _value(written: str) -> Any:
    first = written[0]
    if first == "[":
        inner = written[1:-1]
        if _SEQ.fullmatch(inner) is None:
            raise _Outside
        items = _SEQ_ITEMS.findall(inner)
        return [_scalar(item) for item in items] if "'" in inner or '"' in inner else items
    if first == "{":
        inner = written[1:-1]
        if _MAP.fullmatch(inner) is None:
            raise _Outside
        pairs = _MAP_PAIRS.findall(inner)
        if "'" in inner or '"' in inner:
            pairs = [(key, _scalar(value)) for key, value in pairs]
        mapping = dict(pairs)
        if len(mapping) != len(pairs):  # a key written twice
            raise _Outside
        return mapping
    return _scalar(written)


def _build(lines: list[tuple[str, str, str, str]]) -> dict[str, Any]:
    """The document from _LINE's groups: (indentation, `- `, key, value) per line."""
    root: dict[str, Any] = {}
    # The open collections, innermost last: (column, collection, whether it is a sequence at
    # its mapping key's own column, `key:` then `- item` lines at the same indentation).
    stack: list[tuple[int, Any, bool]] = [(0, root, False)]
    column, top, indentless = stack[-1]
    waiting: tuple[dict[str, Any], str, int] | None = None  # `key:` with its value below, maybe
    for indent, dash, key, value in lines:
        if not (dash or key or value):
            continue  # a blank line or a comment
        at = len(indent)
        # Most lines are `key: value` in the open mapping; any other moves through the stack.
        if waiting is not None or at != column or dash or not key or top.__class__ is not dict:
            if waiting is not None:
                mapping, waiting_key, key_at = waiting
                waiting = None
                if at > key_at:  # the key's value is the collection below it
                    mapping[waiting_key] = [] if dash else {}
                    stack.append((at, mapping[waiting_key], False))
                elif at == key_at and dash:
                    mapping[waiting_key] = []
                    stack.append((at, mapping[waiting_key], True))
                else:
                    mapping[waiting_key] = ""  # nothing below: null, as libyaml composes it
                if len(stack) > _DEEPEST:
                    raise _Outside
                column, top, indentless = stack[-1]
            while column > at or (indentless and column == at and not dash):
                stack.pop()
                column, top, indentless = stack[-1]
            if column != at:
                raise _Outside
            if dash:
                if top.__class__ is not list:
                    raise _Outside
                if not key:
                    if not value:
                        raise _Outside  # `-` with its item on the lines below
                    if value[0] in "[{" and len(stack) >= _DEEPEST:
                        raise _Outside  # the strict reader counts a flow collection's items a level
                    top.append(_value(value))
                    continue
                item: dict[str, Any] = {}
                top.append(item)
                at += len(dash)
                stack.append((at, item, False))
                if len(stack) > _DEEPEST:
                    raise _Outside
                column, top, indentless = stack[-1]
            elif not key or top.__class__ is not dict:
                raise _Outside
        if key in top:
            raise _Outside
        if value:
            if value[0] not in _SPECIAL:
                top[key] = value
            elif value[0] in "[{" and len(stack) >= _DEEPEST:
                raise _Outside  # as above: `x: [a]` at the deepest level is one level deeper
            else:
                top[key] = _value(value)
        else:
            top[key] = None  # keeps the key's place; set when the next line is read
            waiting = (top, key, at)
    if waiting is not None:
        waiting[0][waiting[1]] = ""
    if not root:
        raise _Outside
    return root
