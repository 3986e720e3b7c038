"""A property-based fuzzer over the tenant-file loader and validator (desired.load_file).

Documents are mutations of a valid tenant file: keys dropped, duplicated or renamed, values
replaced by awkward scalars (`NO`, `0001`, `1e3`, dates, `~`, quotes, unicode, tags, anchors and
aliases), indentation changed or tabbed, bytes inserted, flipped or cut. Whatever the document,
load_file either succeeds or raises errors.InputError whose lines are one problem each:
`file:line:col: message` or `file: message`, never another exception, never a line break inside a
line, and never the text of a literal password.
"""

from __future__ import annotations

import re
from pathlib import Path
from random import Random
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from reconciler import catalog, desired, errors, secrets

EXAMPLES = 10_000
PATH = Path("tenants/acme/acme-norway.yaml")
LABEL = str(PATH)
LINE = re.compile(rf"^{re.escape(LABEL)}(?::[1-9][0-9]*:[1-9][0-9]*)?: \S")
SECRET = "Zq9-fuzz-secret"  # a literal password: must never appear in a message

CATALOG = catalog.load()
SETTINGS = secrets.Settings("OSR_", Path(__file__).resolve().parent / "bad_input" / "no-secrets")

Pairs = list[tuple[str, Any]]


def _connection(
    name: str, integration: str = "visma-business", auth: str = "sql", previous: str = "Oslo VB"
) -> Pairs:
    pairs: Pairs = [
        ("name", name),
        ("integration", integration),
        ("server", "SQL01\\VISMA"),
        ("database", "vbsys"),
        ("authentication", auth),
    ]
    if auth == "sql":
        pairs += [("login", "osr_reader"), ("password", [("env", "OSR_ACME_NO_SQL")])]
    pairs += [
        ("allow_others_to_edit", "false"),
        ("private", "false"),
        ("companies", ["F0001", "F0002"]),
        ("write_back", "false"),
        ("protected", "false"),
    ]
    if integration == "visma-business":
        pairs.append(
            (
                "voucher",
                [("provider", "visma-document-center"), ("document_center_path", "\\\\fs01\\vdc\\vouchers")],
            )
        )
    pairs.append(("previous_names", [previous]))
    return pairs


def _valid() -> Pairs:
    return [
        ("version", "1"),
        ("customer", "acme"),
        ("tenant", "acme-norway"),
        ("prune", "false"),
        (
            "connections",
            [
                _connection("Visma Business Oslo"),
                _connection("Dynamics GP Oslo", "dynamics-gp", "windows", "Oslo GP"),
                [("name", "Old NAV"), ("absent", "true")],
            ],
        ),
    ]


KEYS = sorted(
    {k for k, _ in _valid()}
    | {k for k, _ in _connection("x")}
    | {"env", "file", "provider", "document_center_path", "absent", "encrypt", "trust_server_certificate"}
)
AWKWARD = [
    "NO",
    "no",
    "No",
    "on",
    "off",
    "yes",
    "y",
    "True",
    "FALSE",
    "true",
    "false",
    "0001",
    "1e3",
    "1.0",
    "-1",
    "0x1F",
    "0o17",
    ".inf",
    ".nan",
    "2026-01-01",
    "2026-01-01T10:00:00Z",
    "12:30",
    "~",
    "null",
    "Null",
    "",
    "''",
    '""',
    "' x '",
    "'   '",  # spaces only: no value
    '"a\\tb"',
    '"\\q"',
    '"\\u2028"',
    "'it''s'",
    "ünïcödé",
    "日本語",
    "emoji 🎉",
    "\u200b",
    "a: b",
    "- x",
    "# c",
    "%x",
    "@x",
    "`x`",
    "[a, b]",
    "[]",
    "{}",
    "{a: 1}",
    "{env: OSR_X}",
    "{env: GITHUB_TOKEN}",
    "{env: RECONCILER_STORE_KEY}",
    "{file: ../../etc/passwd}",
    "{file: /etc/passwd}",
    "{env: OSR_X, file: x}",
    "*a",
    "&a x",
    "&a [x, x]",
    "!!str true",
    "!!int 1",
    "!!float 1",
    "!!binary aGk=",
    "!custom x",
    "! true",
    "!!set {a, b}",
    "!!omap [a: 1]",
    "<<: *a",
    "|\n  block\n",
    ">-\n  folded\n",
    "SQL01\\VISMA",
    "\\\\fs01\\vdc",
    "D:\\Vouchers",
    "sql01,1433",
    "sql01,99999",
    "[::1]",
    "x" * 130,
    "? a",
    "visma-business",
    "visma-document-center",
    "windows",
    "sql",
]
# Ways to write a literal password (each must be refused without echoing SECRET).
LITERALS = [
    SECRET,
    f"{SECRET}-" + "x" * 70,
    f"'{SECRET}\\\\b'",
    f"'{SECRET}'",
    f"[{SECRET}]",
    f"{{{SECRET}}}",
    f"{{{SECRET}: x}}",
    f"{{env: OSR_X, value: {SECRET}}}",
    f"{{value: {SECRET}}}",
    f"|\n  {SECRET}\n",
    f"{SECRET} and more",
    f"!!str {SECRET}",
    f"{{env: [{SECRET}]}}",
    f"{{file: x, {SECRET}: 1}}",
]
# Where an anchored literal password is also used (`*pw`): each of these echoes some values.
ALIASED_INTO = ["name", "login", "database", "server", "private", "integration", "customer"]
INDENTS = ["  "] * 12 + [" ", "   ", "    ", "\t", " \t"]
# Characters for random text: mostly letters and YAML punctuation, some unicode and controls.
CHARS = (
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -_.,:;#&*!|>'\"%@`"
    "?[]{}\\/~=+" + "øæåÆØÅüéß日本🎉\u00a0\u200b\u2028\t\r\x00\x07\x7f\x85"
)


def _text(rnd: Random) -> str:
    return "".join(rnd.choice(CHARS) for _ in range(rnd.randint(0, 12)))


def _scalar(rnd: Random) -> str:
    return _text(rnd) if rnd.random() < 0.2 else rnd.choice(AWKWARD)


def _mutate(pairs: Pairs, rnd: Random, rate: float, depth: int = 0) -> Pairs:
    """Drop, duplicate, rename or replace some keys of a mapping (recursively)."""
    out: Pairs = []
    for key, value in pairs:
        if rnd.random() < rate:
            op = rnd.randrange(5)
            if op == 0:
                continue  # dropped
            if op == 1:
                key = rnd.choice(KEYS)  # renamed to another real key
            elif op == 2:
                key = key[:-1] if len(key) > 1 else key + "x"  # a typo
            elif op == 3:
                value = _scalar(rnd)
            else:
                out.append((key, _scalar(rnd)))  # duplicated
        if isinstance(value, list) and depth < 4:
            value = [
                _mutate(v, rnd, rate, depth + 1)
                if _is_pairs(v)
                else (_scalar(rnd) if rnd.random() < rate else v)
                for v in value
            ]
            if value and rnd.random() < rate:
                value = [*value, value[0]]  # a duplicated item (same name twice)
        out.append((key, value))
    if rnd.random() < rate:
        out.insert(rnd.randint(0, len(out)), (rnd.choice(KEYS), _scalar(rnd)))
    return out


def _is_pairs(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(p, tuple) for p in value) and bool(value)


def _emit(pairs: Pairs, rnd: Random) -> str:
    """YAML-ish text for pairs, with random indentation, flow style, anchors and comments."""
    lines: list[str] = []
    anchors = rnd.random() < 0.15
    state = {"anchored": False}

    def value_text(value: str, prefix: str) -> str:
        if anchors and rnd.random() < 0.05:
            if state["anchored"]:
                return "*a"
            state["anchored"] = True
            return f"&a {value}"
        return value.replace("\n", "\n" + prefix + "  ") if "\n" in value else value

    def block(items: Pairs, prefix: str) -> None:
        indent = rnd.choice(INDENTS) if rnd.random() < 0.1 else "  "
        for key, value in items:
            if isinstance(value, str):
                lines.append(f"{prefix}{key}: {value_text(value, prefix)}")
            elif _is_pairs(value):
                if rnd.random() < 0.15:
                    flow = ", ".join(f"{k}: {v}" for k, v in value if isinstance(v, str))
                    lines.append(f"{prefix}{key}: {{{flow}}}")
                else:
                    lines.append(f"{prefix}{key}:")
                    block(value, prefix + indent)
            elif isinstance(value, list):
                if all(isinstance(v, str) for v in value) and rnd.random() < 0.5:
                    lines.append(f"{prefix}{key}: [{', '.join(value)}]")
                    continue
                lines.append(f"{prefix}{key}:")
                for item in value:
                    if _is_pairs(item):
                        (first_key, first), *rest = item
                        sub = prefix + indent
                        lines.append(
                            f"{sub}- {first_key}: "
                            + (value_text(first, sub) if isinstance(first, str) else "x")
                        )
                        block(rest, sub + "  ")
                    else:
                        lines.append(f"{prefix}{indent}- {item}")
            if rnd.random() < 0.02:
                lines.append(f"{prefix}# a comment")

    block(pairs, "")
    return "\n".join(lines) + "\n"


SPLICES = [
    b"\t",
    b"\x00",
    b"\xef\xbb\xbf",
    b"\xff\xfe",
    b"\r",
    b"\n---\n",
    b": ",
    b"- ",
    b"&a ",
    b"*a",
    b"!!",
    b"'",
    b'"',
    b"[",
    b"{",
    b"\xe2\x80\xa8",
    b"\xc3",
    b"\n  ",
]


def _damage(raw: bytes, rnd: Random) -> bytes:
    """Byte-level damage: insert, flip, delete or cut."""
    data = bytearray(raw)
    for _ in range(rnd.randint(1, 3)):
        if not data:
            break
        at = rnd.randrange(len(data))
        op = rnd.randrange(5)
        if op == 0:
            data[at:at] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 3)))
        elif op == 1:
            data[at] = rnd.randrange(256)
        elif op == 2:
            del data[at : at + rnd.randint(1, 20)]
        elif op == 3:
            del data[at:]
        else:
            data[at:at] = rnd.choice(SPLICES)
    return bytes(data)


@st.composite
def document(draw: st.DrawFn) -> bytes:
    # One seeded Random per document: cheap choices, so 10,000 documents fit the time budget.
    rnd = draw(st.randoms(use_true_random=True))
    rate = rnd.choice([0.0, 0.01, 0.03, 0.06, 0.12, 0.25])
    text = _emit(_mutate(_valid(), rnd, rate), rnd)
    if rnd.random() < 0.05:
        lines = text.splitlines()
        rnd.shuffle(lines)
        text = "\n".join(lines) + "\n"
    raw = text.encode("utf-8", "surrogatepass")
    if rnd.random() < 0.15:
        raw = _damage(raw, rnd)
    return raw


@st.composite
def with_literal_password(draw: st.DrawFn) -> bytes:
    """A mutated document whose first connection's password is a literal (SECRET)."""
    rnd = draw(st.randoms(use_true_random=True))
    pairs = _mutate(_valid(), rnd, rnd.choice([0.0, 0.02, 0.06]))
    literal = rnd.choice(LITERALS)
    aliased = rnd.random() < 0.3  # the literal anchored, and used again elsewhere
    for key, value in pairs:
        if key == "connections" and isinstance(value, list) and value and _is_pairs(value[0]):
            value[0] = [(k, v) for k, v in value[0] if k != "password"] + [
                ("password", f"&pw {literal}" if aliased else literal)
            ]
            if aliased:
                target = rnd.choice(ALIASED_INTO)
                later = value[1] if len(value) > 1 and _is_pairs(value[1]) else None
                if later is not None:
                    later[:] = [(k, v) for k, v in later if k != target] + [(target, "*pw")]
            break
    else:
        pairs.append(("connections", [[("name", "A"), ("password", literal)]]))
    return _emit(pairs, rnd).encode("utf-8", "surrogatepass")


def _check(raw: bytes) -> list[str]:
    """The lines of the InputError (none when the file is valid); fails on anything else."""
    try:
        desired.load_file(PATH, cat=CATALOG, settings=SETTINGS, raw=raw)
    except errors.InputError as exc:
        lines = exc.lines()
        assert lines, "an InputError without a problem"
        for line in lines:
            assert "\n" not in line and "\r" not in line, repr(line)
            assert LINE.match(line), repr(line)
        return lines
    return []


@pytest.mark.slow
@settings(
    max_examples=EXAMPLES,
    deadline=2000,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(document())
@example(b"")
@example(b"\xef\xbb\xbfversion: 1\n")
@example(b"\xff\xfev\x00")
@example(
    b"a: &a [x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    b"c: [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c]\n"
)
@example(b"version: 1\nconnections:\n  - &c {name: x, absent: true}\n  - *c\n")
@example(
    f"version: 1\ncustomer: acme\ntenant: acme-norway\nconnections:\n  - name: A\n"
    f"    integration: visma-business\n    server: s\n    database: d\n"
    f"    authentication: sql\n    login: l\n    password: {SECRET}\n".encode()
)
def test_load_file_fuzz(raw: bytes) -> None:
    _check(raw)


@pytest.mark.slow
@settings(
    max_examples=EXAMPLES,
    deadline=2000,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(with_literal_password())
@example(
    f"version: 1\ncustomer: acme\ntenant: acme-norway\nconnections:\n  - name: A\n"
    f"    integration: visma-business\n    server: s\n    database: d\n"
    f"    authentication: sql\n    login: l\n    password: &a {SECRET} and more\n"
    f"  - name: B\n    integration: dynamics-gp\n    server: s\n    database: d\n"
    f"    authentication: windows\n    private: *a\n    login: *a\n".encode()
)
@example(
    f"version: 1\ncustomer: acme\ntenant: acme-norway\nconnections:\n  - name: A\n"
    f"    integration: visma-business\n    server: s\n    database: d\n"
    f"    authentication: sql\n    login: l\n    password: !{SECRET}\n".encode()
)
@example(
    f"version: 1\ncustomer: acme\ntenant: acme-norway\nconnections:\n  - name: A\n"
    f"    integration: visma-business\n    server: s\n    database: d\n"
    f"    authentication: sql\n    login: l\n    password: !{SECRET} {{env: OSR_A}}\n".encode()
)
@example(
    f"version: 1\ncustomer: acme\ntenant: acme-norway\nconnections:\n  - name: A\n"
    f"    absent: true\n    password: [!{SECRET} x]\n".encode()
)
@example(
    f"version: 1\ncustomer: acme\ntenant: acme-norway\nconnections:\n  - name: A\n"
    f"    integration: visma-business\n    server: s\n    database: d\n"
    f"    authentication: sql\n    login: l\n    password: {{!{SECRET} env: OSR_A}}\n".encode()
)
def test_load_file_fuzz_never_echoes_a_literal_password(raw: bytes) -> None:
    lines = _check(raw)
    assert lines, "a literal password was accepted"
    assert not any(SECRET in line for line in lines), lines


def test_fuzz_valid_template_loads() -> None:
    """The template the fuzzer mutates is itself valid, so mutations explore near it."""
    raw = _plain(_valid()).encode()
    tenant = desired.load_file(PATH, cat=CATALOG, settings=SETTINGS, raw=raw)
    assert [c.spec.name for c in tenant.connections] == ["Visma Business Oslo", "Dynamics GP Oslo"]
    assert tenant.tombstones == ("Old NAV",)


def _plain(pairs: Pairs, prefix: str = "") -> str:
    out = ""
    for key, value in pairs:
        if isinstance(value, str):
            out += f"{prefix}{key}: {value}\n"
        elif _is_pairs(value):
            out += f"{prefix}{key}:\n" + _plain(value, prefix + "  ")
        elif all(isinstance(v, str) for v in value):
            out += f"{prefix}{key}: [{', '.join(value)}]\n"
        else:
            out += f"{prefix}{key}:\n"
            for item in value:
                body = _plain(item, prefix + "    ")
                out += prefix + "  - " + body[len(prefix) + 4 :]
    return out
