"""Edit a YAML file in place as a person would: change the few bytes that change.

ruamel.yaml composes the file (round-trip mode keeps every node's position); the edits are
made on the text at those positions, so that comments, key order, quoting, flow or block
style and blank lines elsewhere stay byte for byte (re-emitting the whole file would not keep
the indentation of sequences, flow spacing or quotes).
"""

from __future__ import annotations

import bisect
import json
import re
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from reconciler import spec, yamlout

__all__ = [
    "Editor",
    "MappingNode",
    "Node",
    "ScalarNode",
    "SequenceNode",
    "Unreadable",
    "compose",
    "get",
    "plain",
    "scalar",
]

_INT = re.compile(r"0|-?[1-9][0-9]{0,17}")
# What may follow an item of a flow sequence written an item a line: a comma, a comment.
_AFTER_ITEM = re.compile(r"[ \t]*,?[ \t]*(?:#.*)?\r?\n?")


class Unreadable(ValueError):
    """What the round-trip parser refuses although the tool's reader (libyaml) read it: a tab
    before a comment, for one."""

    def __init__(self, problem: str, line: int | None, column: int | None) -> None:
        super().__init__(problem)
        self.problem, self.line, self.column = problem, line, column


def compose(text: str) -> Node:
    try:
        node = YAML(typ="rt").compose(text)
    except YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None) or "not read"
        raise Unreadable(problem, mark and mark.line + 1, mark and mark.column + 1) from None
    if node is None:
        raise ValueError("empty document")
    return node  # type: ignore[no-any-return]


_STR = "tag:yaml.org,2002:str"


def plain(node: Node) -> Any:
    """The value of a node as the tool's strict reader takes it (reconciler.strictyaml): a
    folded block scalar's text without the fold marks ruamel keeps in it (`name: >-` over two
    lines was `Visma\x07 Oslo`, no entry's name), and a plain scalar tagged `!!str` as text
    (`!!str null`, `!!str 123`: ruamel resolves an untagged one to null, int or bool)."""
    if isinstance(node, ScalarNode):
        if node.style == ">":
            return node.value.replace("\x07", "")
        if node.style is not None or node.tag == _STR:
            return node.value
        if node.value in ("true", "false"):
            return node.value == "true"
        if node.value in ("", "~", "null"):
            return None
        return int(node.value) if _INT.fullmatch(node.value) else node.value
    if isinstance(node, SequenceNode):
        return [plain(n) for n in node.value]
    return {plain(k): plain(v) for k, v in node.value}


def get(mapping: Node, key: str) -> tuple[ScalarNode, Node] | None:
    if isinstance(mapping, MappingNode):
        for k, v in mapping.value:
            if isinstance(k, ScalarNode) and k.value == key:
                return k, v
    return None


def scalar(value: object, like: Node | None = None) -> str:
    """A scalar as YAML, in the quoting style of the scalar it replaces where it can."""
    if isinstance(value, str) and isinstance(like, ScalarNode) and value.isprintable():
        if like.style == "'":
            return "'" + value.replace("'", "''") + "'"
        if like.style == '"':
            return json.dumps(value, ensure_ascii=False)
    return yamlout.flow(value)


_LINE_END = re.compile(r"\r\n?|\n")


@dataclass
class Editor:
    """Edits on one text, by character offsets, applied together (they must not overlap)."""

    text: str
    edits: list[tuple[int, int, str]] = field(default_factory=list)
    deleted: set[int] = field(default_factory=set)  # lines delete_lines removes
    _gone: dict[int, set[int]] = field(default_factory=dict)  # by sequence: ids of items removed
    _made: dict[int, list[tuple[int, int, str]]] = field(default_factory=dict)  # their edits

    def __post_init__(self) -> None:
        # Lines end as YAML (and the composer's marks) count them: CRLF, LF or a CR alone (a
        # file of CR line ends, or one `CR CR LF`, had its edits put on the wrong lines).
        self._starts = [0] + [m.end() for m in _LINE_END.finditer(self.text)]
        first = _LINE_END.search(self.text)
        self.newline = first.group() if first else "\n"  # what the file's lines end with

    def line_start(self, line: int) -> int:
        return self._starts[line] if line < len(self._starts) else len(self.text)

    def line_of(self, index: int) -> int:
        return bisect.bisect_right(self._starts, index) - 1

    def last_line(self, node: Node) -> int:
        """The last line holding a part of the node (a block collection's end mark lies at the
        next token, possibly after blank lines and comments that belong to what follows)."""
        if isinstance(node, ScalarNode) or getattr(node, "flow_style", False):
            end = node.end_mark
            return int(end.line - 1 if end.column == 0 and end.line > node.start_mark.line else end.line)
        children: list[Node] = (
            list(node.value) if isinstance(node, SequenceNode) else [n for pair in node.value for n in pair]
        )
        return max((self.last_line(c) for c in children), default=int(node.start_mark.line))

    def replace(self, node: Node, text: str) -> None:
        end = node.end_mark.index
        if isinstance(node, ScalarNode) and node.style in ("|", ">"):
            # A block scalar ends at the next line's start: its line break (and blank lines
            # after it) stay, or the key after it would join the new value's line.
            while end > node.start_mark.index and self.text[end - 1] in " \t\r\n":
                end -= 1
        self.edits.append((node.start_mark.index, end, text))

    def delete_lines(self, first: int, last: int) -> None:
        self.edits.append((self.line_start(first), self.line_start(last + 1), ""))
        self.deleted.update(range(first, last + 1))

    def insert_after_line(self, line: int, lines: str) -> None:
        at = self.line_start(line + 1)
        if at == len(self.text) and self.text and not self.text.endswith(("\n", "\r")):
            lines = "\n" + lines
        self.edits.append((at, at, lines))

    def result(self) -> str:
        """The text with every edit made; what two edits insert at one place comes in the order
        they were asked for (a key added to the last entry, then an entry appended after it)."""
        out = self.text
        ordered = sorted(enumerate(self.edits), key=lambda e: (e[1][0], e[1][1], e[0]), reverse=True)
        for _, (start, end, text) in ordered:
            if self.newline != "\n":  # new lines end as the file's do (CRLF, CR)
                text = text.replace("\r\n", "\n").replace("\n", self.newline)
            out = out[:start] + text + out[end:]
        return out

    def indent(self, node: Node) -> int:
        return int(node.start_mark.column)

    def dash(self, item: Node) -> int:
        """The column of the `-` that starts a block sequence item."""
        start = self.line_start(self.line_of(item.start_mark.index))
        return self.text.rindex("-", start, item.start_mark.index) - start

    def lines_of(self, body: str, column: int) -> str:
        return "".join(
            " " * column + line if line.strip() else line for line in body.splitlines(keepends=True)
        )

    # -- mappings --------------------------------------------------------------------------

    def set_key(self, mapping: MappingNode, key: str, value: object) -> None:
        """key: value in a mapping (None removes the key); nested mappings by their own keys.

        A value that exists is replaced where it is written (in its quoting style); a key
        added to a flow mapping goes after its last value; one removed from it rewrites that
        mapping in flow style.
        """
        found = get(mapping, key)
        if found is None and value is None:
            return
        if mapping.flow_style and found is None and mapping.value:
            # After its last value, as written: the rest of the mapping (its comments, quotes
            # and lines) stays (it was written again on one line, without them).
            end = mapping.value[-1][1].end_mark.index
            self.edits.append((end, end, ", " + yamlout.flow({key: value})[1:-1]))
            return
        if mapping.flow_style and (found is None or value is None):
            self.rewrite_flow(mapping, {key: value})
            return
        if found is None:
            last = self.last_line(mapping)
            self.insert_after_line(last, self.lines_of(_block(key, value), self.indent(mapping)))
            return
        key_node, value_node = found
        if plain(value_node) == value:
            return
        if value is None:
            following = [k for k, _ in mapping.value[mapping.value.index(found) + 1 :]]
            start = key_node.start_mark.index
            if following and self.text[self.line_start(self.line_of(start)) : start].strip().endswith("-"):
                # The entry's first key, on its `- ` line: the next key moves up onto the dash
                # (its lines went with the key's, and the entry with them)
                self.edits.append((start, following[0].start_mark.index, ""))
            else:
                self.delete_lines(int(key_node.start_mark.line), self.last_line(value_node))
        elif (
            isinstance(value, dict)
            and isinstance(value_node, MappingNode)
            and (not value_node.flow_style or set(plain(value_node)) == set(value))
        ):
            for sub, sub_value in value.items():
                self.set_key(value_node, sub, sub_value)
            for sub in plain(value_node):
                if sub not in value:
                    self.set_key(value_node, sub, None)
        elif isinstance(value, list) and isinstance(value_node, SequenceNode):
            self.set_list(value_node, value, key_node)
        elif isinstance(value, dict | list):
            self.replace(value_node, yamlout.flow(value))
        else:
            self.replace(value_node, self._block_scalar(value, value_node) or scalar(value, value_node))

    def rewrite_flow(self, mapping: MappingNode, changes: dict[str, object]) -> None:
        """A flow mapping written again on one line, for keys removed (None) or added to it: the
        pairs that stay as written (quotes, `!!str`; a comment between pairs goes), the changed
        values and the added keys (after the others) as yamlout writes them. Written again from
        its values, `database: !!str 123` became `database: 123`, a number to other readers."""
        parts = []
        for k, v in mapping.value:
            name = plain(k)
            if name not in changes:
                parts.append(self.text[k.start_mark.index : v.end_mark.index])
            elif changes[name] is not None:
                parts.append(yamlout.flow({name: changes[name]})[1:-1])
        have = {plain(k) for k, _ in mapping.value}
        parts += [yamlout.flow({k: v})[1:-1] for k, v in changes.items() if v is not None and k not in have]
        self.replace(mapping, "{" + ", ".join(parts) + "}")

    def _block_scalar(self, value: object, node: Node) -> str | None:
        """value in the block style of the scalar it replaces (`login: >-` and the value on the
        next line), where it reads back the same: one line, a strip (-) header; else None."""
        if not (isinstance(node, ScalarNode) and node.style in ("|", ">") and isinstance(value, str)):
            return None
        start = node.start_mark.index
        header = self.text[start : self.line_start(self.line_of(start) + 1)].rstrip("\r\n")
        indicators = header.partition(" #")[0].rstrip()  # `>- # the login`: its comment stays
        if not indicators.endswith("-") or not value or not value.isprintable() or value != value.strip():
            return None
        content = self._line(self.line_of(start) + 1)
        return f"{header}\n{content[: len(content) - len(content.lstrip(' '))]}{value}"

    def set_list(self, seq: SequenceNode, items: list[Any], key: Node | None = None) -> None:
        """A list of names (companies): the ones gone removed, the new ones added at the end;
        the others and their comments kept. Names are compared by identity. key: the list's
        key, where a block list that loses every item becomes `key: []`."""
        wanted = {spec.identity(str(i)) for i in items}
        have = [(n, spec.identity(str(plain(n)))) for n in seq.value]
        added = [i for i in items if spec.identity(str(i)) not in {h for _, h in have}]
        keep = [n for n, h in have if h in wanted]
        if not seq.flow_style and seq.value and not (keep or added) and key is not None:
            # A block sequence's end mark lies at the next token: `[]` written over its span
            # joined what follows (an invalid file, refused as "correct it in the portal").
            # Its items' lines go, with the comments directly above them; `[]` goes after the
            # key's colon (a comment after it stays).
            colon = self.text.index(":", key.end_mark.index)
            first = self._comments_above(self.line_of(seq.value[0].start_mark.index), self.dash(seq.value[0]))
            self.edits.append((colon + 1, colon + 1, " []"))
            self.delete_lines(first, self.last_line(seq))
            return
        if seq.flow_style and self._one_per_line(seq):
            # A flow list written an item a line: each line goes or comes alone, so that the
            # comments after the others stay (`F0001,  # Oslo head office`).
            for n, h in have:
                if h not in wanted:
                    self.delete_lines(self.line_of(n.start_mark.index), self.line_of(n.start_mark.index))
            self._append_lines(seq, [yamlout.flow([i])[1:-1] for i in added])
            return
        if seq.flow_style or not (keep or added):
            # The kept items as written (their quotes too), the new ones as yamlout writes them.
            items = [self.text[n.start_mark.index : n.end_mark.index] for n in keep]
            items += [yamlout.flow([i])[1:-1] for i in added]
            written = self.text[seq.start_mark.index : seq.end_mark.index]
            pad = " " if written.startswith("[ ") and items else ""  # `[ a, b ]` keeps its spaces
            self.replace(seq, f"[{pad}{', '.join(items)}{pad}]")
            return
        for n, h in have:
            if h not in wanted:
                first = self.line_of(n.start_mark.index)
                self.delete_lines(first, self.last_line(n))
        if added:  # in the column of the first item, kept or not (the portal may replace them all)
            column = self.dash(seq.value[0])
            body = "".join(f"- {yamlout.flow(i)}\n" for i in added)
            self.insert_after_line(self.last_line(seq), self.lines_of(body, column))

    # -- sequences of mappings (connections) -----------------------------------------------

    def _one_per_line(self, seq: SequenceNode) -> bool:
        """A flow sequence over several lines with each item on lines of its own: nothing but
        white space before it, after it at most a comma and a comment."""
        if not seq.value or self.line_of(seq.start_mark.index) == self.line_of(seq.end_mark.index):
            return False
        previous = self.line_of(seq.start_mark.index)
        for n in seq.value:
            first, last = self.line_of(n.start_mark.index), self.line_of(n.end_mark.index)
            if first <= previous or self.text[self.line_start(first) : n.start_mark.index].strip():
                return False
            if not _AFTER_ITEM.fullmatch(self._line(last)[n.end_mark.index - self.line_start(last) :]):
                return False
            previous = last
        return previous < self.line_of(seq.end_mark.index)

    def _append_lines(self, seq: SequenceNode, items: list[str], comment: str | None = None) -> None:
        """Items (as YAML text) appended to a flow sequence written an item a line, each on a
        line of its own in the column of the last, after it (and after the lines of the items
        removed before it), with commas as the last item has them."""
        if not items:
            return
        last = seq.value[-1]
        line = self.line_of(last.end_mark.index)
        rest = self._line(line)[last.end_mark.index - self.line_start(line) :]
        trailing = rest.lstrip(" \t").startswith(",")  # `F0002,` before the `]`
        if not trailing and line not in self.deleted:  # the last item stays: it needs a comma now
            self.edits.append((last.end_mark.index, last.end_mark.index, ","))
        column = " " * self.indent(last)
        note = f"{column}# {comment}\n" if comment else ""
        body = "".join(
            f"{note}{column}{item}{',' if i < len(items) - 1 or trailing else ''}\n"
            for i, item in enumerate(items)
        )
        self.insert_after_line(line, body)

    def remove_item(self, seq: SequenceNode, item: Node) -> None:
        """Remove one item of seq; items of one sequence may be removed one call each, and
        when every item goes the sequence becomes `[]` (its key left without a value would
        read as null: the portal deleting all of a tenant's connections made an invalid file)."""
        gone = self._gone.setdefault(id(seq), set())
        gone.add(id(item))
        left = [n for n in seq.value if id(n) not in gone]
        if not left or (seq.flow_style and not self._one_per_line(seq)):
            self._undo(seq)  # the sequence is written again
        made = len(self.edits)
        if not left:
            if seq.flow_style:
                self.replace(seq, "[]")
            else:  # the items' lines become `[]`; the comments after the last stay
                dash = self.dash(seq.value[0])
                first = self._comments_above(self.line_of(seq.value[0].start_mark.index), dash)
                last = self.last_line(seq.value[-1])
                self.edits.append((self.line_start(first), self.line_start(last + 1), " " * dash + "[]\n"))
        elif seq.flow_style and self._one_per_line(seq):
            first = self._comments_above(self.line_of(item.start_mark.index), self.indent(item))
            self.delete_lines(first, self.line_of(item.end_mark.index))
        elif seq.flow_style:
            self.replace(seq, yamlout.flow([plain(n) for n in left]))
        else:
            # Its comment lines go with it: those directly above it, at its dash's column or
            # deeper (the first entry's too: left, they would describe the entry after it).
            first, last = self.line_of(item.start_mark.index), self.last_line(item)
            first = self._comments_above(first, self.dash(item))
            if first > 0 and not self._line(first - 1).strip() and not self._line(last + 1).strip():
                last += 1  # one blank line between entries stays one
            self.delete_lines(first, last)
        self._made.setdefault(id(seq), []).extend(self.edits[made:])

    def _undo(self, seq: SequenceNode) -> None:
        """Drop the edits earlier removals from seq made (its whole text is replaced)."""
        undone = {id(e) for e in self._made.pop(id(seq), [])}
        self.edits = [e for e in self.edits if id(e) not in undone]

    def _comments_above(self, line: int, column: int) -> int:
        """The first of the comment lines directly above line, at column or deeper (line if
        there are none)."""
        while (
            line > 0
            and self._line(line - 1).lstrip().startswith("#")
            and (len(self._line(line - 1)) - len(self._line(line - 1).lstrip()) >= column)
        ):
            line -= 1
        return line

    def _line(self, line: int) -> str:
        return self.text[self.line_start(line) : self.line_start(line + 1)]

    def append_items(
        self, seq: SequenceNode, docs: list[dict[str, Any]], comment: str, key: Node | None = None
    ) -> None:
        """Append mappings to a sequence, each after a comment line; `key: []` (key given)
        becomes a block sequence."""
        if not docs:
            return
        body = "".join(f"# {comment}\n" + yamlout.dump([doc]) for doc in docs)
        gone = self._gone.get(id(seq), set())
        left = [n for n in seq.value if id(n) not in gone]
        if gone and (not left or (seq.flow_style and not self._one_per_line(seq))):
            # Entries removed (remove_item): the new ones take the place of what was written
            # for them (`[]`, or the list written again), not after it.
            self._undo(seq)
            if seq.flow_style:
                self.replace(seq, yamlout.flow([*(plain(n) for n in left), *docs]))
                return
            column = self.dash(seq.value[0])
            first = self._comments_above(self.line_of(seq.value[0].start_mark.index), column)
            last = self.last_line(seq.value[-1])
            self.edits.append(
                (self.line_start(first), self.line_start(last + 1), self.lines_of(body, column))
            )
            return
        if (
            not seq.value
            and key is not None
            and (self.line_of(key.start_mark.index) == self.line_of(seq.start_mark.index))
        ):
            self.edits.append((key.end_mark.index, seq.end_mark.index, ":"))  # comments stay
            self.insert_after_line(
                self.line_of(key.start_mark.index), self.lines_of(body, self.indent(key) + 2)
            )
            return
        if seq.flow_style and self._one_per_line(seq):
            self._append_lines(seq, [yamlout.flow(doc) for doc in docs], comment)
            return
        if seq.flow_style or not seq.value:
            self.replace(seq, yamlout.flow([*(plain(n) for n in seq.value), *docs]))
            return
        column = self.dash(seq.value[0])
        previous = self.line_of(seq.value[-1].start_mark.index) - 1
        blank = previous >= 0 and not self._line(previous).strip()
        if blank:  # entries separated by a blank line: so are the new ones
            body = "".join("\n" + f"# {comment}\n" + yamlout.dump([doc]) for doc in docs)
        self.insert_after_line(self.last_line(seq), self.lines_of(body, column))


def _block(key: str, value: object) -> str:
    if isinstance(value, dict):
        return yamlout.dump({key: value}) if len(value) > 1 else f"{key}: {yamlout.flow(value)}\n"
    return f"{key}: {yamlout.flow(value)}\n"
