"""reconciler.plainyaml reads a plainly written tenant file exactly as libyaml does.

What users rely on: a tenant file read the fast way (plainyaml.document) means exactly what
libyaml reads from the same bytes. The same keys in the same order, the same values, a quoted
value still quoted (`'true'` is text, `true` is a flag), and nothing read that libyaml refuses.
Whatever plainyaml is unsure of, it returns None and libyaml reads the file (and says what is
wrong), so a refusal is always safe and an acceptance must be exact.

These tests hold it to that one-sided contract against libyaml itself, through the project's
own composer (strictyaml.compose): on generated hostile documents (most of them near a plain
tenant file, so that many are accepted and the comparison means something), on a table of edge
cases, on plainly written documents that must be accepted, and on every YAML file of the
repository.
"""

from __future__ import annotations

import os
import reprlib
from collections import Counter
from pathlib import Path
from random import Random
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from reconciler import errors, plainyaml, strictyaml
from tests import test_fuzz

LABEL = "t.yaml"
ROOT = Path(__file__).resolve().parent.parent
MERGE_TAG = "tag:yaml.org,2002:merge"
Quoted = plainyaml.Quoted


# ---------------------------------------------------------------------------------------------
# The oracle: libyaml's node tree as the values document() returns


class Refused(Exception):
    """libyaml composed something document() must not return (a tag, an alias's target, a block
    scalar, a key written twice...): document() should have returned None."""


def libyaml_reads(raw: bytes) -> Any:
    """What document(raw) must return if it returns anything: libyaml's tree as dicts, lists,
    str (plain) and Quoted (quoted). Raises errors.InputError where libyaml refuses raw, and
    Refused where libyaml composes something outside plainyaml's subset."""
    return _values(strictyaml.compose(LABEL, raw), set())


def _values(node: yaml.Node, seen: set[int], *, key: bool = False) -> Any:
    if id(node) in seen:  # an alias: its anchored node again (or a node inside itself)
        raise Refused("an alias")
    seen.add(id(node))
    if isinstance(node, yaml.ScalarNode):
        if node.style in ("'", '"'):
            if node.tag != strictyaml.STR_TAG:
                raise Refused(f"a quoted scalar tagged {node.tag}")
            return Quoted(node.value)
        if node.style not in ("", None):
            raise Refused(f"a {node.style} block scalar")
        if node.tag == strictyaml.PLAIN_TAG:
            return node.value
        # `<<` as a value: libyaml's composer tags it merge, and the strict reader builds it as the
        # text "<<" (only a merge *key* is refused).
        if node.tag == MERGE_TAG and node.value == "<<" and not key:
            return node.value
        raise Refused(f"a plain scalar tagged {node.tag} (an explicit tag such as !!str)")
    if isinstance(node, yaml.SequenceNode):
        if node.tag != strictyaml.SEQ_TAG:
            raise Refused(f"a sequence tagged {node.tag}")
        return [_values(child, seen) for child in node.value]
    if isinstance(node, yaml.MappingNode):
        if node.tag != strictyaml.MAP_TAG:
            raise Refused(f"a mapping tagged {node.tag}")
        mapping: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise Refused("a list or mapping as a key")
            name = _values(key_node, seen, key=True)
            if name in mapping:
                raise Refused(f"the key {name!r} written twice")
            mapping[name] = _values(value_node, seen)
        return mapping
    raise Refused(f"a {type(node).__name__}")  # pragma: no cover - yaml has no other kinds


def assert_exact(got: Any, want: Any, where: str = "document") -> None:
    """got == want, with the same types all the way down (Quoted is not str, a dict is not a
    list) and the same key order."""
    assert type(got) is type(want), (
        f"{where}: plainyaml {type(got).__name__} {got!r}, libyaml {type(want).__name__} {want!r}"
    )
    if isinstance(want, dict):
        assert [(type(k), k) for k in got] == [(type(k), k) for k in want], (
            f"{where}: plainyaml keys {list(got)!r}, libyaml keys {list(want)!r}"
        )
        for name, value in want.items():
            assert_exact(got[name], value, f"{where}.{name}")
    elif isinstance(want, list):
        assert len(got) == len(want), f"{where}: plainyaml {got!r}, libyaml {want!r}"
        for index, (item, wanted) in enumerate(zip(got, want, strict=True)):
            assert_exact(item, wanted, f"{where}[{index}]")
    else:
        assert got == want, f"{where}: plainyaml {got!r}, libyaml {want!r}"


def violation(raw: bytes) -> tuple[bool, str | None]:
    """Whether document() accepts raw, and how that breaks the contract (None: it does not)."""
    got = plainyaml.document(raw)
    if got is None:
        return False, None
    try:
        assert_exact(got, libyaml_reads(raw))
    except errors.InputError as exc:
        return True, f"document() returned {reprlib.repr(got)}; libyaml refuses the bytes: {exc}"
    except Refused as exc:
        return True, f"document() returned {reprlib.repr(got)}; libyaml composes {exc}"
    except AssertionError as exc:
        return True, str(exc)
    return True, None


def smallest(raw: bytes) -> bytes:
    """raw with lines, then bytes, left out for as long as the contract is still broken."""
    while True:
        parts = raw.splitlines(keepends=True)
        smaller = (b"".join(parts[:i] + parts[i + 1 :]) for i in range(len(parts)))
        found = next((c for c in smaller if violation(c)[1] is not None), None)
        if found is None:
            smaller = (raw[:i] + raw[i + 1 :] for i in range(len(raw)))
            found = next((c for c in smaller if violation(c)[1] is not None), None)
        if found is None:
            return raw
        raw = found


def check(raw: bytes) -> bool:
    """The one-sided contract for raw; True when document() accepted it. A failure names the
    smallest input found that still fails."""
    accepted, problem = violation(raw)
    if problem is not None:
        small = smallest(raw)
        pytest.fail(f"document({raw!r}): {problem}\nsmallest such input: {small!r}: {violation(small)[1]}")
    return accepted


# ---------------------------------------------------------------------------------------------
# Generated documents

# Values plainyaml must read (any of them, plain or quoted); FLOW_WORDS also inside [ ] and { }.
FLOW_WORDS = [
    "acme",
    "acme-norway",
    "Visma Oslo",
    "B 002",
    "a  b",
    "SQL01\\VISMA",
    "\\\\files\\docs",
    "D\\x",
    "vbsys",
    "osr_reader",
    "F0001",
    "1",
    "0",
    "10",
    "1.5",
    "0x1F",
    "1e3",
    "NO",
    "true",
    "false",
    "null",
    "Null",
    "~",
    "2026-01-01",
    "x",
    "a.b",
    "a'b",
    'a"b',
    "a&b",
    "a*b",
    "a!b",
    "a|b",
    "a>b",
    "a%b",
    "a@b",
    "a`b",
    "a?b",
    "a-b",
    "=",
    "<<",
    "Björn",
    "Bjo\u0308rn",
    "ø",
    "é",
    "e\u0301",
    "аcme",  # a Cyrillic а
    "🎉",
    "日本語",
    "\u200b",
    "x" * 70,
]
WORDS = [
    *FLOW_WORDS,
    "12:30",
    "http://h:80/p",
    "a:b",
    "a#b",
    "a# b",
    "a:#b",
    "a [b]",
    "a, b",
    "a]",
    "a}",
    "a{b}",
    "a ,b",
    "a :b",
    "a - b",
    "a --- b",
    "...",
    "a'",
]
# Pieces that stress an edge: indicators, quotes, line breaks YAML counts, characters YAML refuses.
HOSTILE = [
    "#",
    " #",
    "# ",
    ": ",
    ":",
    "'",
    "''",
    '"',
    "\\",
    '\\"',
    "[",
    "]",
    "{",
    "}",
    ",",
    ", ",
    "&a",
    "&a ",
    "*a",
    "!tag ",
    "!!str ",
    "! ",
    "|",
    ">",
    "|-",
    "%",
    "@",
    "`",
    "?",
    "? ",
    "-",
    "- ",
    "-1",
    "---",
    "...",
    "~",
    "  ",
    " ",
    "\t",
    "\r",
    "\r\n",
    "\n",
    "\n  ",
    "\x85",
    "\u2028",
    "\u2029",
    "\ufeff",
    "\x00",
    "\x7f",
    "\x1f",
    "\x0b",
    "\xa0",
    "\u3000",
    "\u2000",
    "\ufffe",
    "[a, b]",
    "[ ]",
    "[]",
    "[a, [b]]",
    "[a,]",
    "[a, ]",
    "['a, b', c]",
    "[\"x\", 'y''z']",
    "[a: b]",
    "[a #b]",
    "['a]', b]",
    "{env: X}",
    "{env:X}",
    "{env: X,}",
    "{a: 1, a: 2}",
    "{a: [b]}",
    "{}",
    "{ }",
    "{'a': b}",
    "{a}",
    "<<",
    "'x' y",
    '"a\\tb"',
]
KEYS = [
    "version",
    "customer",
    "tenant",
    "connections",
    "name",
    "server",
    "password",
    "companies",
    "voucher",
    "provider",
    "env",
    "a",
    "b",
    "_x",
    "K9",
    "null",
    "true",
    "x" * 64,
]
HOSTILE_KEYS = [
    "key ",
    "'q'",
    '"q"',
    "<<",
    "ø",
    "é",
    "аcme",
    "x" * 65,
    "a b",
    "1",
    "-a",
    "a-b",
    "a.b",
    "a:b",
    "? a",
    "&k a",
    "!!str a",
    "*a",
    "[a]",
    "{a: b}",
    "",
    "a\t",
    "\ufeffa",
]
SEPARATORS = [": ", ": ", ": ", ":  "]
HOSTILE_SEPARATORS = [":", ":\t", " : ", ":   ", "::", ": \t", ":\u3000"]
COMMENTS = ["", "", "", "", " # c", "  # a: b, [x] 'q", " #", " #: #"]
HOSTILE_COMMENTS = ["#c", "\t# c", " # c\r", " # \u2028"]
DASHES = ["- ", "- ", "- ", "-  ", "-   "]
HOSTILE_DASHES = ["-", "- - ", "-\t", "? ", "-- "]
STEPS = [2, 2, 2, 4, 1, 3]
HOSTILE_STEPS = [0, 5, 6, -1]
LINE_ENDS = ["\r\n", "\r", "\x85", "\u2028", "\u2029", "\n\n"]
# The chance, per choice of a document, that the choice is hostile: some documents are plainly
# written throughout, the others have a few hostile choices (a document with many is refused).
RATES = [0, 0, 0, 0.005, 0.01, 0.02, 0.04, 0.1]


class _Writer:
    """Choices for one document: seeded (hypothesis.strategies.randoms), each one hostile at
    the document's rate."""

    def __init__(self, rnd: Random, rate: float) -> None:
        self.rnd, self.rate = rnd, rate

    def hostile(self) -> bool:
        return self.rate > 0 and self.rnd.random() < self.rate

    def pick(self, plain: list[str], hostile: list[str]) -> str:
        return self.rnd.choice(hostile if self.hostile() else plain)

    def text(self, words: list[str]) -> str:
        pieces = [self.pick(words, HOSTILE) for _ in range(self.rnd.randint(1, 3))]
        return self.rnd.choice([" ", "", " - "]).join(pieces)

    def scalar(self, words: list[str] = WORDS) -> str:
        """A scalar as written: plain, single-quoted or double-quoted."""
        text = self.text(words)
        style = self.rnd.choice("ppppppsd")
        if style == "s":
            return "'" + (text if self.hostile() else text.replace("'", "''")) + "'"
        if style == "d" and (('"' not in text and "\\" not in text) or self.hostile()):
            return '"' + text + '"'
        return text

    def flow(self) -> str:
        """A one-line flow list or mapping of scalars."""
        count = self.rnd.randint(0, 3)
        comma = self.pick([", ", ", ", ",", " , ", ",  "], [",,", " ,", ", ,", ""])
        if self.rnd.random() < 0.5:
            items = [self.scalar(FLOW_WORDS) for _ in range(count)]
            return "[" + self.rnd.choice(["", " "]) + comma.join(items) + "]"
        pairs = [
            self.pick([key], HOSTILE_KEYS)
            + self.pick(SEPARATORS, HOSTILE_SEPARATORS)
            + self.scalar(FLOW_WORDS)
            for key in self.rnd.sample(KEYS, count)
        ]
        return "{" + comma.join(pairs) + "}"

    def comment(self) -> str:
        return self.pick(COMMENTS, HOSTILE_COMMENTS)

    def step(self) -> int:
        return self.rnd.choice(HOSTILE_STEPS if self.hostile() else STEPS)

    def mapping(self, column: int, depth: int) -> list[str]:
        """The lines of a block mapping whose keys are at column."""
        lines: list[str] = []
        pad = " " * column
        for plain_key in self.rnd.sample(KEYS, self.rnd.randint(1, 5 if depth else 7)):
            key = self.pick([plain_key], HOSTILE_KEYS)
            kind = self.rnd.choice("sssffnmq" if depth < 3 else "sssffn")
            if kind in "sf":
                value = self.scalar() if kind == "s" else self.flow()
                sep = self.pick(SEPARATORS, HOSTILE_SEPARATORS)
                trailing = self.rnd.choice(["", "", "", "  "])
                lines.append(f"{pad}{key}{sep}{value}{trailing}{self.comment()}")
                continue
            lines.append(f"{pad}{key}:{self.rnd.choice(['', '', ' '])}{self.comment()}")
            if kind == "m":
                lines += self.mapping(max(column + self.step(), 0), depth + 1)
            elif kind == "q":
                indentless = self.rnd.random() < 0.4
                lines += self.sequence(column if indentless else max(column + self.step(), 0), depth + 1)
        return lines

    def sequence(self, column: int, depth: int) -> list[str]:
        """The lines of a block sequence whose dashes are at column."""
        lines: list[str] = []
        pad = " " * column
        for _ in range(self.rnd.randint(1, 3)):
            dash = self.pick(DASHES, HOSTILE_DASHES)
            kind = self.rnd.choice("smmf" if depth < 3 else "sf")
            if kind == "m":
                item = self.mapping(column + len(dash), depth + 1)
                lines.append(pad + dash + item[0][column + len(dash) :])
                lines += item[1:]
            elif self.hostile():  # the item on the lines below its dash, or none
                lines.append(pad + dash.rstrip())
                if self.rnd.random() < 0.5:
                    lines += self.mapping(column + 2, depth + 1)
            else:
                value = self.scalar() if kind == "s" else self.flow()
                lines.append(pad + dash + value + self.comment())
        return lines

    def piece_line(self) -> str:
        """A line put together from pieces with no structure in mind."""
        indent = " " * self.rnd.choice([0, 0, 0, 2, 2, 4, 1, 3, 5, 6])
        prefix = self.rnd.choice(["", "", "", *DASHES, *HOSTILE_DASHES])
        body = self.rnd.choice("kkkknvcb")
        if body == "k":
            text = self.pick(KEYS, HOSTILE_KEYS) + self.pick(SEPARATORS, HOSTILE_SEPARATORS)
            text += self.flow() if self.rnd.random() < 0.2 else self.scalar()
        elif body == "n":
            text = self.pick(KEYS, HOSTILE_KEYS) + ":"
        elif body == "v":
            text = self.scalar()
        elif body == "c":
            text = "# " + self.text(WORDS)
        else:
            text = ""
        return indent + prefix + text + self.comment()

    def decorate(self, lines: list[str]) -> list[str]:
        """Comment lines and blank lines at random places and indentations (plain YAML too)."""
        lines = list(lines)
        for _ in range(self.rnd.randint(0, 3)):
            indent = " " * self.rnd.randint(0, 6)
            comment = self.rnd.choice(["", "# a comment", "#", "# - x: [", "#'"])
            lines.insert(self.rnd.randint(0, len(lines)), indent + comment)
        return lines

    def mutate(self, lines: list[str], count: int) -> list[str]:
        """count line-level mutations: indentation shifted, lines duplicated, dropped, swapped,
        cut, replaced, continued on a deeper line, or a hostile piece inserted."""
        lines = list(lines)
        for _ in range(count):
            if not lines:
                break
            at = self.rnd.randrange(len(lines))
            line = lines[at]
            op = self.rnd.choice("idxswpcl")
            if op == "i":
                delta = self.rnd.choice([-2, -1, 1, 2])
                indent = len(line) - len(line.lstrip(" "))
                lines[at] = " " * delta + line if delta > 0 else line[min(-delta, indent) :]
            elif op == "d":
                lines.insert(at, line)  # often a key written twice
            elif op == "x":
                del lines[at]
            elif op == "s" and at + 1 < len(lines):
                lines[at], lines[at + 1] = lines[at + 1], line
            elif op == "w":
                lines[at] = self.piece_line()
            elif op == "p":
                cut = self.rnd.randint(0, len(line))
                lines[at] = line[:cut] + self.rnd.choice(HOSTILE) + line[cut:]
            elif op == "c":  # a plain or quoted scalar continued on the next line
                deeper = len(line) - len(line.lstrip(" ")) + self.rnd.choice([1, 2, 4])
                lines.insert(at + 1, " " * deeper + self.rnd.choice(["bar", "b: c", "- x", "'", "x'"]))
            elif op == "l":
                lines[at] = line[: self.rnd.randint(0, len(line))]
        return lines

    def join(self, lines: list[str]) -> bytes:
        """The lines as a file: line ends, a final line break or not, a byte-order mark, a
        document marker, bytes that are not UTF-8."""
        end = self.pick(["\n"], LINE_ENDS)
        text = end.join(lines)
        if self.hostile() and lines:  # one other line end
            at = self.rnd.randrange(len(lines))
            text = end.join(lines[:at]) + self.rnd.choice(LINE_ENDS) + end.join(lines[at:])
        if self.rnd.random() < 0.9:
            text += end
        if self.hostile():
            text = self.rnd.choice(["\ufeff", "---\n", "--- ", "%YAML 1.1\n---\n", " ", "\n"]) + text
        if self.hostile():
            text += self.rnd.choice(["...\n", "---\n", "---\nb: 1\n", "# end", "\n\n", "  "])
        raw = text.encode("utf-8", "surrogatepass")
        if self.hostile():
            at = self.rnd.randint(0, len(raw))
            raw = raw[:at] + self.rnd.choice([b"\xff", b"\xc3", b"\xc3(", b"\xed\xa0\x80"]) + raw[at:]
        return raw


EXAMPLE = """\
version: 1
customer: acme
tenant: acme-norway
connections:
  - name: Visma Oslo
    integration: visma-business
    server: SQL01\\VISMA
    database: vbsys
    authentication: sql
    login: osr_reader
    password: {env: OSR_PW}
    companies: [A001, 'B 002']
    voucher:
      provider: x
      document_center_path: \\\\files\\docs
"""
TEMPLATES = [EXAMPLE, test_fuzz._plain(test_fuzz._valid())]


def _writer(rnd: Random) -> _Writer:
    return _Writer(rnd, rnd.choice(RATES))


def plain_document(rnd: Random) -> bytes:
    """A block mapping built as a tree and written plainly, some of its choices hostile (keys,
    separators, values, dashes, indentation steps), with comments and blank lines, maybe
    mutated."""
    writer = _writer(rnd)
    lines = writer.decorate(writer.mapping(0, 0))
    if writer.rate:
        lines = writer.mutate(lines, rnd.randint(0, 2))
    return writer.join(lines)


def piece_document(rnd: Random) -> bytes:
    """Lines put together from pieces (indentation 0-6, dashes, keys, separators, values,
    comments) with no structure in mind."""
    writer = _Writer(rnd, 0.3)
    return writer.join([writer.piece_line() for _ in range(rnd.randint(0, 8))])


def mutated_tenant_file(rnd: Random) -> bytes:
    """A realistic tenant file (the example above, or the fuzzer's template), mutated."""
    writer = _writer(rnd)
    lines = writer.decorate(rnd.choice(TEMPLATES).splitlines())
    return writer.join(writer.mutate(lines, rnd.randint(0, 3)))


# One seeded Random per document (as tests/test_fuzz.py does): cheap choices, so thousands of
# documents fit in a few seconds. Hypothesis cannot shrink them; check() shrinks a failing one.
_RANDOMS = st.randoms(use_true_random=True)
DOCUMENTS = st.one_of(
    _RANDOMS.map(plain_document),
    _RANDOMS.map(plain_document),
    _RANDOMS.map(plain_document),
    _RANDOMS.map(piece_document),
    _RANDOMS.map(mutated_tenant_file),
    test_fuzz.document(),
)
EXAMPLES = 4000
ACCEPTED_AT_LEAST = 0.3  # of the generated documents, or the comparison proves little


@pytest.mark.slow
def test_a_generated_document_plainyaml_reads_is_what_libyaml_reads() -> None:
    """The one-sided contract on generated hostile documents: whenever document() returns a
    document, libyaml composes the same bytes without error into exactly that document. And a
    good part of the documents are accepted, so that the comparison is not vacuous."""
    counts: Counter[bool] = Counter()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(DOCUMENTS)
    @example(EXAMPLE.encode())
    @example(test_fuzz._plain(test_fuzz._valid()).encode())
    def one(raw: bytes) -> None:
        accepted = check(raw)
        event("accepted" if accepted else "refused")
        counts[accepted] += 1

    one()
    total = counts[True] + counts[False]
    print(f"\nplainyaml: {counts[True]} of {total} generated documents accepted, {counts[False]} refused")
    assert counts[True] >= ACCEPTED_AT_LEAST * total, counts


# ---------------------------------------------------------------------------------------------
# Plainly written documents: accepted, and read as libyaml reads them

PLAIN = {
    "the tenant file of the example": EXAMPLE,
    "the fuzzer's template": test_fuzz._plain(test_fuzz._valid()),
    "an indentless sequence": "key:\n- a\n- b\nnext: 1\n",
    "an indentless sequence of mappings": "key:\n- a: 1\n  b: 2\n- c: 3\nnext: x\n",
    "an indentless sequence in a sequence item": "key:\n- a:\n  - x\n  - y\n  b: 1\n- z\n",
    "an indentless sequence in an item, then the next item": "k:\n- a:\n  - x\n- b\n",
    "a nested voucher mapping in an item": (
        "connections:\n  - voucher:\n      provider: x\n    name: a\n"
        "  - name: b\n    voucher:\n      provider: y\n"
    ),
    "extra spaces after the dash": "connections:\n  -   name: a\n      server: b\n  -  name: c\n     x: d\n",
    "flow items with spaces": "companies: [ A001 ,  'B 002' , \"C 3\",D  4 ]\n",
    "flow items of every quoting": "a: ['a, b', c]\nb: [\"x\", 'y''z']\nc: [ ]\nd: []\ne: {}\nf: { }\n",
    "a flow mapping": "password: {env: OSR_PW}\nvoucher: { provider: x ,  path: 'a, b' }\n",
    "quoted values with # and ': ' inside": "a: 'x # y'\nb: \"x: y\"\nc: '#'\nd: ': '\ne: 'it''s'\n",
    "brackets, commas, quotes and # after a non-space": "a: x[1]\nb: a, b\nc: it's\nd: a#b\ne: x]\nf: x}\n",
    "keys with empty values": "a:\nb:\nc:\n  d:\n  e: 1\nf:\n",
    "an empty value before a dash at a lower column": "k:\n- a:\n- b\n",
    "comments and blank lines everywhere": (
        "# head\n\nversion: 1  # one\n   # odd\nconnections:   # list\n\n  # before\n"
        "  - name: a # the name\n\n    # inside\n    companies: [A]   # c\n#\n  -  name: b\n\n"
    ),
    "a comment between a key and its value": "a:\n# c\n  b: 1\n",
    "no final line break": "a: b\nc: d",
    "trailing spaces": "a: b   \nc:   \nd: [x]  \n",
    "plain values libyaml keeps as text": "a: ~\nb: null\nc: true\nd: 1\ne: 0x1F\nf: 12:30\ng: <<\nh: =\n",
    "quoted words": "a: 'true'\nb: \"null\"\nc: ''\nd: \"\"\ne: ' x '\n",
    "backslashes": "server: SQL01\\VISMA\npath: \\\\fs01\\vdc\nq: 'D:\\x'\n",
    "unicode values": "a: Björn\nb: Bjo\u0308rn\nc: аcme\nd: 🎉 x\ne: 日本語\n",
    "a value with ' - ' and ' :x'": "a: x - y\nb: x :y\nc: a:b\nd: http://h:80/p\n",
    "a comment right after a value": "a: x #\nb: 'y' # c\nc: [z] # d\nd: {e: f} # g\n",
    "a key of 64 characters": "x" * 64 + ": 1\n",
    "two spaces after the colon": "a:  b\nc:  [d]\n",
    "one item mapping per dash": "k:\n  - a: 1\n  - b: 2\n",
    "nesting under nesting": "a:\n  b:\n    c:\n      - d:\n          e: [f]\n        g: h\n",
}


@pytest.mark.parametrize("text", list(PLAIN.values()), ids=list(PLAIN))
def test_a_plainly_written_document_is_read_as_libyaml_reads_it(text: str) -> None:
    """Not vacuous: plainly written documents, tenant files among them, take the fast way, and
    mean there exactly what they mean to libyaml."""
    raw = text.encode()
    got = plainyaml.document(raw)
    assert got is not None, "refused"
    assert_exact(got, libyaml_reads(raw))


# ---------------------------------------------------------------------------------------------
# Edge cases: accepted (and then exactly libyaml's reading) or refused


def _nested(levels: int) -> bytes:
    """A mapping in a mapping... levels deep, each one column deeper: `k:` / ` k:` / `  k:`..."""
    return "".join(" " * level + "k:\n" for level in range(levels)).encode()


def _nested_items(items: int) -> bytes:
    """A sequence item's mapping in a sequence item's mapping... (two levels an item)."""
    return ("k:\n" + "".join(" " * (3 * item + 1) + "- k:\n" for item in range(items))).encode()


DEEP = (
    "".join(" " * depth + f"k{depth}:\n" for depth in range(strictyaml.MAX_DEPTH + 2)) + " " * 42 + "x: 1\n"
)
EDGES: dict[str, tuple[bytes, bool]] = {
    # Characters and encodings plainyaml leaves to libyaml.
    "a tab after the colon": (b"a:\tb\n", False),
    "a tab before a key": (b"\ta: b\n", False),
    "a tab at the end of a value": (b"a: b\t\n", False),
    "a tab inside a value": (b"a: b\tc\n", False),
    "CRLF line ends": (b"a: b\r\nc: d\r\n", True),  # Windows editors: read the fast way
    "CRLF and LF mixed": (b"a: b\r\nc:\n  - d\r\n  - 'e f'\r\n", True),
    "CR before CRLF": (b"a: b\r\r\nc: d\n", False),
    "a lone CR": (b"a: b\rc: d\n", False),
    "a byte-order mark": (b"\xef\xbb\xbfa: b\n", False),
    "a byte-order mark inside a value": ("a: b\ufeffc\n".encode(), False),
    "U+2028 inside a value": ("a: b\u2028c\n".encode(), False),
    "U+2029 inside a value": ("a: b\u2029c\n".encode(), False),
    "U+0085 inside a value": ("a: b\x85c\n".encode(), False),
    "NUL": (b"a: b\x00\n", False),
    "U+007F": (b"a: b\x7f\n", False),
    "a no-break space inside a value": ("a: b\xa0c\n".encode(), False),
    "invalid UTF-8": (b"a: \xff\n", False),
    "Latin-1": (b"a: \xf8\n", False),
    "a surrogate": (b"a: \xed\xa0\x80\n", False),
    "a file larger than strictyaml.MAX_BYTES": (b"a: b\n" + b"#" * strictyaml.MAX_BYTES, False),
    "a file of exactly strictyaml.MAX_BYTES": (b"a: b\n#" + b"x" * (strictyaml.MAX_BYTES - 6), True),
    # Documents and directives.
    "a --- start": (b"---\na: b\n", False),
    "a ... end": (b"a: b\n...\n", False),
    "two documents": (b"a: b\n---\nc: d\n", False),
    "a directive": (b"%YAML 1.1\n---\na: b\n", False),
    "an empty file": (b"", False),
    "a file of blank lines": (b"\n  \n\n", False),
    "a comment-only file": (b"# only\n  # a comment\n", False),
    "a top-level list": (b"- a\n- b\n", False),
    "a top-level scalar": (b"a\n", False),
    "a top-level quoted scalar": (b"'a'\n", False),
    "a top-level flow mapping": (b"{a: b}\n", False),
    "a document indented at column 2": (b"  a: b\n  c: d\n", False),
    # Anchors, aliases, tags, block scalars, complex keys.
    "an anchor and an alias": (b"a: &x b\nc: *x\n", False),
    "an anchored mapping": (b"a: &x\n  b: 1\n", False),
    "a !!str tag": (b"a: !!str b\n", False),
    "a local tag": (b"a: !x b\n", False),
    "the non-specific tag": (b"a: ! b\n", False),
    "a literal block scalar": (b"a: |\n  x\n", False),
    "a folded block scalar": (b"a: >-\n  x\n", False),
    "a complex key": (b"? a\n: b\n", False),
    "a merge key": (b"<<: {a: b}\n", False),
    "<< as a value": (b"a: <<\n", True),
    # Scalars.
    "a plain scalar continued on the next line": (b"name: foo\n  bar\n", False),
    "a plain item continued on the next line": (b"k:\n- foo\n  bar\n", False),
    "a plain item continued by a dash": (b"k:\n- foo\n  - bar\n", False),
    "a single-quoted scalar over two lines": (b"a: 'x\n  y'\n", False),
    "a double-quoted scalar over two lines": (b'a: "x\n  y"\n', False),
    "a double-quoted escape": (b'a: "x\\ty"\n', False),
    "text after a closing quote": (b"a: 'x' y\n", False),
    "a comment right after a closing quote": (b"a: 'x'#c\n", False),
    "key: value: x": (b"key: value: x\n", False),
    "a value ending in a colon": (b"key: value:\n", False),
    "key: a #c": (b"key: a #c\n", True),
    "key: a#c": (b"key: a#c\n", True),
    "key: a:#c": (b"key: a:#c\n", True),
    "a value starting with -": (b"a: -1\n", False),
    "a value starting with - and a space": (b"a: - x\n", False),
    "a value starting with ?": (b"a: ?x\n", False),
    "a value starting with :": (b"a: :x\n", False),
    "a value starting with @": (b"a: @x\n", False),
    "a value starting with %": (b"a: %x\n", False),
    "a value starting with a backtick": (b"a: `x`\n", False),
    "a value starting with ]": (b"a: ]x\n", False),
    "a value starting with ,": (b"a: ,x\n", False),
    "a value of ---": (b"a: ---\n", False),
    "a value of ...": (b"a: ...\n", True),
    # Keys.
    "a key written twice": (b"a: 1\na: 2\n", False),
    "a key written twice, the first empty": (b"a:\na: 1\n", False),
    "a key written twice in a connection": (
        b"connections:\n  - name: a\n    server: b\n    name: c\n",
        False,
    ),
    "a key written twice in a nested mapping": (b"a:\n  b: 1\n  b:\n", False),
    "a key written twice in a flow mapping": (b"password: {a: 1, a: 2}\n", False),
    "a key with a space before the colon": (b"key : v\n", False),
    "a key without a space after the colon": (b"key:v\n", False),
    "a quoted key": (b"'a': b\n", False),
    "a double-quoted key": (b'"a": b\n', False),
    "a non-ASCII key": ("ø: x\n".encode(), False),
    "a look-alike key": ("аcme: x\n".encode(), False),
    "a key of 65 characters": (b"x" * 65 + b": 1\n", False),
    "a key that is a number": (b"1: x\n", False),
    # Indentation.
    "a key line deeper than its siblings": (b"a: 1\n  b: 2\n", False),
    "a key line deeper than its siblings in a mapping": (b"a:\n  b: 1\n   c: 2\n", False),
    "a key line between two columns": (b"a:\n  b: 1\n c: 2\n", False),
    "a dash at a mapping's column without a waiting key": (b"a: 1\n- b\n", False),
    "a dash at an item mapping's column": (b"k:\n  - a: 1\n    - b\n", False),
    "items at two columns": (b"a:\n  - x\n   - y\n", False),
    "items at a lower column": (b"a:\n    - x\n  - y\n", False),
    "a dash with nothing after it": (b"a:\n- \n", False),
    "a dash alone": (b"a:\n-\n", False),
    "a dash alone, its item below": (b"a:\n-\n  b: 1\n", False),
    "a dash and a comment": (b"a:\n-  # c\n", False),
    "a nested sequence on one line": (b"a:\n- - x\n", False),
    "a scalar below a key": (b"a:\n  x\n", False),
    "a key below an item's scalar": (b"a:\n- x\n  b: 1\n", False),
    "an item mapping's key at the dash's column": (b"a:\n-   b: 1\n  c: 2\n", False),
    "an empty value then deeper under an item": (b"k:\n-   a:\n     b: 1\n", True),
    # Flow collections.
    "a flow list": (b"a: [x, y]\n", True),
    "an empty flow list with a space": (b"a: [ ]\n", True),
    "a nested flow list": (b"a: [x, [y]]\n", False),
    "a flow list with a trailing comma": (b"a: [x,]\n", False),
    "a flow list with a comma and a space at the end": (b"a: [x, ]\n", False),
    "a flow list with a quoted comma": (b"a: ['x, y', z]\n", True),
    "a flow list with '' inside single quotes": (b"a: [\"x\", 'y''z']\n", True),
    "a flow list with a quoted ]": (b"a: ['x]', y]\n", False),
    "a flow list with a colon": (b"a: [x: y]\n", False),
    "a flow list with a comment inside": (b"a: [x #c]\n", False),
    "a flow list over two lines": (b"a: [x,\n  y]\n", False),
    "a flow list and more text": (b"a: [x] y\n", False),
    "a flow mapping": (b"a: {env: X}\n", True),
    "a flow mapping without a space": (b"a: {env:X}\n", False),
    "an empty flow mapping": (b"a: {}\n", True),
    "a flow mapping of a list": (b"a: {b: [c]}\n", False),
    "a flow mapping with a quoted key": (b"a: {'b': c}\n", False),
    "a flow mapping with a key and no value": (b"a: {b}\n", False),
    "a flow mapping with a trailing comma": (b"a: {b: c,}\n", False),
    "a flow list as an item": (b"a:\n- [x, y]\n- {b: c}\n", True),
    # Limits. libyaml refuses more than 1000 block levels ("exceeded maximum nesting depth"), the
    # strict reader more than strictyaml.MAX_DEPTH: plainyaml leaves a document nested deeper than
    # MAX_DEPTH to libyaml (its caller, reconciler.quickread, knows a tenant file's three levels).
    "nesting deeper than strictyaml.MAX_DEPTH": (DEEP.encode(), False),
    "nesting deeper than libyaml allows (1000 levels)": (_nested(1000), False),
    "nesting of 1000 levels, in sequence items": (_nested_items(500), False),
    # The strict reader counts the items of a flow collection a level deeper: `x: [a]` under
    # 39 mappings is 41 levels to it (refused), 40 to plainyaml's stack (it read the file).
    "a flow list at the strict reader's deepest level": (
        _nested(strictyaml.MAX_DEPTH - 1) + b" " * (strictyaml.MAX_DEPTH - 1) + b"x: [a]\n",
        False,
    ),
    "a flow mapping item at the strict reader's deepest level": (
        _nested(strictyaml.MAX_DEPTH - 1) + b" " * (strictyaml.MAX_DEPTH - 1) + b"- {a: b}\n",
        False,
    ),
    "a flow list one level above it": (
        _nested(strictyaml.MAX_DEPTH - 2) + b" " * (strictyaml.MAX_DEPTH - 2) + b"x: [a]\n",
        True,
    ),
}


@pytest.mark.parametrize(("raw", "accepted"), list(EDGES.values()), ids=list(EDGES))
def test_an_edge_case_is_read_as_libyaml_reads_it_or_left_to_libyaml(raw: bytes, accepted: bool) -> None:
    """Each edge case is accepted (and then read exactly as libyaml reads it) or refused, as the
    table says: refusing what is in the subset costs speed, accepting what is not costs meaning."""
    got = plainyaml.document(raw)
    if not accepted:
        assert got is None, f"document() read {reprlib.repr(got)}; the file must be left to libyaml"
        return
    assert got is not None, "refused"
    assert_exact(got, libyaml_reads(raw))


# ---------------------------------------------------------------------------------------------
# The repository's own YAML files


def _yaml_files(*folders: str) -> list[Path]:
    found: list[Path] = []
    for folder in folders:
        for dirpath, _, names in os.walk(ROOT / folder):
            found += [Path(dirpath, n) for n in names if n.endswith((".yaml", ".yml"))]
    return sorted(found)


REPOSITORY_FILES = _yaml_files("tenants", "tests")
TENANT_FILES = _yaml_files("tenants")


@pytest.mark.parametrize("path", REPOSITORY_FILES, ids=[str(p.relative_to(ROOT)) for p in REPOSITORY_FILES])
def test_a_yaml_file_of_the_repository_is_read_as_libyaml_reads_it(path: Path) -> None:
    """Every YAML file under tenants/ and tests/ (fixtures, cases, bad input) that plainyaml
    accepts is read as libyaml reads it, and those libyaml cannot compose (bad input cases) are
    refused."""
    raw = path.read_bytes()
    got = plainyaml.document(raw)
    try:
        want = libyaml_reads(raw)
    except errors.InputError:
        assert got is None, f"document() read {reprlib.repr(got)}; libyaml refuses the file"
        return
    except Refused as exc:
        assert got is None, f"document() read {reprlib.repr(got)}; libyaml composes {exc}"
        return
    if got is not None:
        assert_exact(got, want)


def test_the_repository_has_yaml_files_to_compare() -> None:
    assert len(REPOSITORY_FILES) > 50 and TENANT_FILES


@pytest.mark.parametrize("path", TENANT_FILES, ids=[str(p.relative_to(ROOT)) for p in TENANT_FILES])
def test_a_tenant_file_of_the_repository_takes_the_fast_way(path: Path) -> None:
    """The tenant files under tenants/ are plainly written: all of them are read by plainyaml."""
    raw = path.read_bytes()
    got = plainyaml.document(raw)
    assert got is not None, "refused"
    assert_exact(got, libyaml_reads(raw))
