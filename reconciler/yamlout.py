"""YAML the tool writes (export, import, drift --write), read back the same everywhere.

PyYAML's SafeDumper quotes what YAML 1.1 would read as something other than text, but leaves
plain what only YAML 1.2 reads so (`1e3`, `0009`, `0o17`, `+1e3`): an editor or a YAML 1.2 library
would read a number where the tool reads text. Every string either version (or the tool's own
strict reader) would take for a null, boolean, number or date is quoted here, in one place.
"""

from __future__ import annotations

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


def ambiguous(text: str) -> bool:
    """Whether some YAML reader would take this plain scalar for something other than text."""
    stripped = text.strip()
    return text == "" or text != stripped or bool(_YAML12.fullmatch(text)) or bool(_YAML11.fullmatch(text))


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
        flow = len(data) == 1 and all(isinstance(v, str) for v in data.values())
        return self.represent_mapping("tag:yaml.org,2002:map", data, flow_style=flow)

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)  # `connections:` then `  - name: ...`

    def represent_list(self, data: list[Any]) -> yaml.Node:  # type: ignore[override]
        flow = all(isinstance(item, str | int | bool) for item in data)
        return self.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


Dumper.add_representer(str, Dumper.represent_str)
Dumper.add_representer(list, Dumper.represent_list)
Dumper.add_representer(dict, Dumper.represent_dict)


def dump(body: object) -> str:
    """A document as the tool writes it: keys in the order given, Unicode as is."""
    return yaml.dump(body, Dumper=Dumper, sort_keys=False, allow_unicode=True, width=100)


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
