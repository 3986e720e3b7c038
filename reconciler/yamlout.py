"""YAML the tool writes (export, import, drift --write), read back the same everywhere.

PyYAML's SafeDumper quotes what YAML 1.1 would read as something other than text, but leaves
plain what only YAML 1.2 reads so (`1e3`, `0009`, `0o17`, `+1e3`): an editor or a YAML 1.2 library
would read a number where the tool reads text. Every string either version (or the tool's own
strict reader) would take for a null, boolean, number or date is quoted here, in one place.
"""

from __future__ import annotations

import functools
import io
import re
from typing import Any

import yaml

from reconciler import spec

# YAML 1.2 core and JSON schema scalars that are not strings (yaml.org/spec/1.2.2 §10.3).
_YAML12 = re.compile(
    r"""~|null|Null|NULL|true|True|TRUE|false|False|FALSE
    |[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+
    |[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)""",
    re.VERBOSE,
)
# YAML 1.1 spellings a reader of that version takes for booleans, numbers or dates; PyYAML
# quotes most of them itself, this catches the rest (`0x1F`, `1_000`, `2026-01-01`, `NO`, `on`).
_YAML11 = re.compile(
    r"""y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF
    |[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)?|[-+]?0b[01_]+|[-+]?0x[0-9a-fA-F_]+
    |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?
    |[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt\s].*)?|=|<<""",
    re.VERBOSE,
)


# What YAML 1.2 libraries read as numbers beyond the core schema: ruamel.yaml (its resolver's
# 1.2 int and float) takes `_` within digits, signed octals and binaries, `._5` (`-0o17`,
# `0o1_7`, `+_1` were written plain and read back as numbers, or refused).
_LENIENT = re.compile(
    r"""[-+]?0b[01_]+|[-+]?0o?[0-7_]+|[-+]?[0-9_]+|[-+]?0x[0-9a-fA-F_]+
    |[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
    |[-+]?\.[0-9_]+(?:[eE][-+][0-9]+)?""",
    re.VERBOSE,
)


def ambiguous(text: str) -> bool:
    """Whether some YAML reader would take this plain scalar for something other than text."""
    stripped = text.strip()
    return (
        text == ""
        or text != stripped
        or any(pattern.fullmatch(text) for pattern in (_YAML12, _YAML11, _LENIENT))
    )


class Dumper(yaml.SafeDumper):
    """Strings quoted wherever any reader could disagree; lists of plain values in flow style
    (`companies: [F0001, F0002]`), as people write them."""

    def represent_str(self, data: str) -> yaml.ScalarNode:
        node = super().represent_str(data)
        if not spec.visible(data):  # escaped, so that every character shows (write_double_quoted)
            node.style = '"'
        elif node.style is None and ambiguous(data):
            node.style = "'"
        return node

    def write_double_quoted(self, text: str, split: bool = True) -> None:
        """Text that does not all show, escaped to ASCII (\\N, \\u202E): PyYAML writes U+0085,
        bidirectional controls and invisible characters as they are, which the tool's own reader
        refuses in a file (a portal name in `store dump` did not seed again)."""
        if spec.visible(text):
            super().write_double_quoted(text, split)
            return
        unicode, self.allow_unicode = self.allow_unicode, False
        try:
            super().write_double_quoted(text, split)
        finally:
            self.allow_unicode = unicode

    def represent_dict(self, data: dict[Any, Any]) -> yaml.Node:  # type: ignore[override]
        # `password: {env: NAME}` as people write it; larger mappings in block style.
        return self.represent_mapping("tag:yaml.org,2002:map", data, flow_style=_flow(data))

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)  # `connections:` then `  - name: ...`

    def represent_list(self, data: list[Any]) -> yaml.Node:  # type: ignore[override]
        flow = all(isinstance(item, str | int | bool) for item in data)
        return self.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


Dumper.add_representer(str, Dumper.represent_str)
Dumper.add_representer(list, Dumper.represent_list)
Dumper.add_representer(dict, Dumper.represent_dict)


WIDTH = 100


def dump(body: object) -> str:
    """A document as the tool writes it: keys in the order given, Unicode as is.

    A document of plain text only (every tenant file of a portal whose names need no quotes)
    is written directly (_written_plainly): PyYAML's pure-Python emitter took 30 ms a tenant
    file, most of an import's time. The text is the one PyYAML writes, byte for byte
    (tests/test_yamlout.py checks it over generated documents); anything else is left to it.
    """
    plain = _written_plainly(body)
    if plain is not None:
        return plain
    return yaml.dump(body, Dumper=Dumper, sort_keys=False, allow_unicode=True, width=WIDTH)


class _NotPlain(Exception):
    """Some part of the document is not one _written_plainly writes as PyYAML does."""


def _written_plainly(body: object) -> str | None:
    """The document as Dumper writes it, when it is made of mappings with text keys, lists of
    mappings, lists of scalars (flow), one-entry mappings of text (flow), and scalars that
    Dumper writes as they are (_plain); every line at most WIDTH long (longer ones PyYAML may
    fold). None for anything else."""
    lines: list[str] = []
    try:
        if type(body) is dict and _flow(body):
            lines.append(_flow_mapping(body))
        elif type(body) is dict and body:
            _block_mapping(body, 0, "", lines)
        elif type(body) is list and body:
            _block_sequence(body, 0, lines)
        else:
            raise _NotPlain
    except _NotPlain:
        return None
    if any(len(line) > WIDTH for line in lines):
        return None
    lines.append("")
    return "\n".join(lines)


def _block_mapping(data: dict[Any, Any], indent: int, first: str, lines: list[str]) -> None:
    """Each entry `key: value` at indent; the first line starts with first (a sequence's "- ")."""
    lead = first or " " * indent
    for key, value in data.items():
        head = f"{lead}{_plain(key, flow=False)}:"  # a key that is not text is not plain
        lead = " " * indent
        if type(value) is dict:
            if _flow(value):
                lines.append(f"{head} {_flow_mapping(value)}")
            elif value:
                lines.append(head)
                _block_mapping(value, indent + 2, "", lines)
            else:
                raise _NotPlain
        elif type(value) is list:
            if all(isinstance(item, str | int | bool) for item in value):  # represent_list
                lines.append(f"{head} [{', '.join(_scalar(item, flow=True) for item in value)}]")
            else:
                lines.append(head)
                _block_sequence(value, indent + 2, lines)
        else:
            lines.append(f"{head} {_scalar(value, flow=False)}")


def _block_sequence(items: list[Any], indent: int, lines: list[str]) -> None:
    """Mappings, each after "- " at indent (increase_indent: never indentless)."""
    for item in items:
        if type(item) is not dict or not item:
            raise _NotPlain
        if _flow(item):
            lines.append(f"{' ' * indent}- {_flow_mapping(item)}")
        else:
            _block_mapping(item, indent + 2, " " * indent + "- ", lines)


def _flow(data: dict[Any, Any]) -> bool:
    """Dumper.represent_dict writes this mapping in flow style."""
    return len(data) == 1 and all(isinstance(v, str) for v in data.values())


def _flow_mapping(data: dict[Any, Any]) -> str:
    ((key, value),) = data.items()
    return f"{{{_plain(key, flow=True)}: {_plain(value, flow=True)}}}"


def _scalar(value: object, *, flow: bool) -> str:
    """A scalar as Dumper writes it (exact types only: PyYAML picks representers by type), in a
    flow collection or in block context."""
    if type(value) is str:
        return _plain(value, flow=flow)
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if type(value) is int:
        return str(value)
    raise _NotPlain


def _plain(text: object, *, flow: bool) -> str:
    if type(text) is not str or not _writes_as_is(text, flow):
        raise _NotPlain
    return text


@functools.lru_cache(maxsize=4_096)
def _writes_as_is(text: str, flow: bool) -> bool:
    """Dumper writes this text plain, as it is, as a key or a value, in a flow collection or in
    block context: every character shows, no reader takes it for anything but text, and
    PyYAML's emitter finds it plain there (Emitter.analyze_scalar, as choose_scalar_style asks:
    `a,b` is plain in block context only)."""
    if not spec.visible(text) or ambiguous(text):
        return False
    resolved = _PROBE.resolve(yaml.ScalarNode, text, (True, False))  # type: ignore[no-untyped-call]
    if resolved != "tag:yaml.org,2002:str":
        return False
    found = _PROBE.analyze_scalar(text)
    plain: bool = found.allow_flow_plain if flow else found.allow_block_plain
    return plain and not (found.empty or found.multiline)


class _FlowDumper(Dumper):
    def represent_list(self, data: list[Any]) -> yaml.Node:  # type: ignore[override]
        return self.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)

    def represent_dict(self, data: dict[Any, Any]) -> yaml.Node:  # type: ignore[override]
        return self.represent_mapping("tag:yaml.org,2002:map", data, flow_style=True)


_FlowDumper.add_representer(list, _FlowDumper.represent_list)
_FlowDumper.add_representer(dict, _FlowDumper.represent_dict)


def flow(value: object) -> str:
    """One value (scalar, list or mapping) as flow YAML, safe in block and flow context alike."""
    text = yaml.dump([value], Dumper=_FlowDumper, sort_keys=False, allow_unicode=True, width=10**6).strip()
    return text[1:-1]


_PROBE = Dumper(io.StringIO(), allow_unicode=True)  # asks PyYAML how it would write a scalar
