"""The fields of a data connection as the portal knows them, shared by desired and live state.

Comparison rules live here so that the differ, fingerprints and drift all agree: SQL Server
compares server and database names case-insensitively, `host,1433` is `host`, companies are a set.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import functools
import hashlib
import ipaddress
import json
import operator
import re
import types
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar


class Authentication(enum.StrEnum):
    SQL = "sql"
    WINDOWS = "windows"


class DependentKind(enum.StrEnum):
    DATA_ACCESS_FILTER = "data_access_filter"
    BUDGET_FLOW = "budget_flow"
    PUBLISHER_JOB = "publisher_job"
    REPORT = "report"


DEFAULT_PORT = "1433"


@dataclass(frozen=True)
class ServerAddress:
    host: str
    instance: str | None = None
    port: int | None = None


_HOST = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_INSTANCE = re.compile(r"[A-Za-z0-9_$#-]{1,16}")
# Windows shorthands for the local default instance; a Linux driver reaches it over TCP.
_LOCAL = frozenset({".", "(local)"})
_IPV4_CHARS = frozenset("0123456789.")  # all an IPv4 address is written with (IPv6 has a ':')


def parse_server(text: str) -> ServerAddress:
    """Split a server as users write it: host, host\\instance, host,port, IPv4 or IPv6.

    Raises ValueError with what to write instead.
    """
    rest = text.strip()
    if rest.lower().startswith("tcp:"):
        rest = rest[4:]
    port: int | None = None
    if rest.startswith("["):
        close = rest.find("]")
        if close < 0:
            raise ValueError(f"{text!r}: an IPv6 address opened with '[' needs a closing ']'")
        host, rest = rest[1:close], rest[close + 1 :]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{text!r}: {host!r} inside [...] is not an IPv6 address") from None
    else:
        host = ""
    if "," in rest:
        rest, _, port_text = rest.rpartition(",")
        port_text = port_text.strip()
        if not (port_text.isascii() and port_text.isdigit() and 0 < int(port_text) < 65536):
            raise ValueError(f"{text!r}: the port after ',' must be a number from 1 to 65535")
        port = int(port_text)
    instance: str | None = None
    if "\\" in rest:
        rest, _, instance = rest.partition("\\")
        if not _INSTANCE.fullmatch(instance):
            raise ValueError(f"{text!r}: write a named instance as host\\INSTANCE")
    if not host:
        host = rest.strip()
        if host.lower() in _LOCAL:
            host = "localhost"
        elif ":" in host:
            try:
                ipaddress.IPv6Address(host)
            except ValueError:
                raise ValueError(
                    f"{text!r}: SQL Server takes a port after a comma (host,1433), not a colon"
                ) from None
        elif not _HOST.fullmatch(host):
            raise ValueError(f"{text!r}: expected host, host\\instance or host,port")
    elif rest:
        raise ValueError(f"{text!r}: after [IPv6] only \\instance or ,port may follow")
    return ServerAddress(host, instance, port)


@functools.lru_cache(maxsize=4096)  # a fleet's connections share their servers: drift, apply
def normalize_server(server: str) -> str:
    """Server as SQL Server reaches it: case-insensitive, one spelling per address.

    `.`, `(local)` and `localhost` are one host; IPv6 is compared as an address, with or without
    brackets; a port is a number (`01433` is `1433`); the default port 1433 is dropped only when
    no instance is named (`host\\INST,1433` bypasses the SQL Browser, `host\\INST` asks it).
    Text the parser refuses (validate reports it) is compared as written, ignoring case.
    """
    try:
        address = parse_server(server)
    except ValueError:
        return server.strip().casefold()
    host = address.host.casefold()
    if ":" in host or _IPV4_CHARS.issuperset(host):  # else no address (and no exception raised)
        with contextlib.suppress(ValueError):
            host = ipaddress.ip_address(host).compressed
    text = f"[{host}]" if ":" in host else host
    if address.instance:
        text += "\\" + address.instance.casefold()
    if address.port is not None and (address.instance or address.port != int(DEFAULT_PORT)):
        text += f",{address.port}"
    return text


def nfc(text: str) -> str:
    """The composed form: `Bjørn Ås` typed on macOS (NFD) and on Windows (NFC) alike."""
    return unicodedata.normalize("NFC", text)


def identity(text: str) -> str:
    """The one comparison of names everywhere: casefold(NFC(text)).

    Connection names, previous names, company ids and report-template links are the same name
    exactly when their identities are equal (validate, the differ, the store, every output).
    """
    if text.isascii():  # NFC leaves ASCII as it is, and casefold keeps it ASCII
        return text.casefold()
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).casefold())


def identity_key(text: str) -> str:
    """identity(text) as the store keeps it: a digest no database collation can bend.

    MariaDB's and SQL Server's default collations compare accents, widths and trailing spaces
    their own way; hex digits compare the same under every collation.
    """
    return hashlib.sha256(identity(text).encode("utf-8")).hexdigest()


# Characters that must never be part of a name: they are invisible, reorder the text around
# them, or break a line. str.isprintable() refuses all of them (categories C* and Z* but the
# space); this names the kind of character for the message.
_BIDI = frozenset({"LRE", "RLE", "LRO", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI"})
_BIDI_MARKS = frozenset("\u200e\u200f\u061c")


# What str.isprintable() lets through although it shows nothing: Unicode's printable
# default-ignorable code points (the combining grapheme joiner, Hangul fillers, Khmer and
# Mongolian marks, variation selectors) and the braille blank U+2800.
UNSEEN = re.compile(
    "[\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180d\u180f\u2800\u3164\ufe00-\ufe0f\uffa0\U000e0100-\U000e01ef]"
)


def visible(text: str) -> bool:
    """Every character of text shows: printable and none of UNSEEN (nearly every name: one pass
    in C; two when it is not ASCII)."""
    return text.isprintable() and (text.isascii() or UNSEEN.search(text) is None)


def plain_name(text: str) -> bool:
    """A name as a tenant file may write it: visible, no white space at either end, and no two
    spaces in a row (HTML shows them as one)."""
    return visible(text) and text == text.strip() and "  " not in text


def seen_identity(text: str) -> str:
    """identity() of what a person sees of a name: characters that show nothing left out, any
    run of white space as one plain space, none at either end. Two names with one seen identity
    and two identities differ only by such characters (DESIGN §2: an error, never two
    connections)."""
    return identity(text if plain_name(text) else _seen(text))


def _seen(text: str) -> str:
    """What a person sees of a name (seen_identity, before case and Unicode form)."""
    shown = "".join(
        " " if char.isspace() or char == "\u2800" else char
        for char in text
        if char.isspace() or char == "\u2800" or (char.isprintable() and not UNSEEN.match(char))
    )
    return " ".join(shown.split())


@functools.cache
def _prototypes() -> dict[int, str]:
    """Unicode's confusables (reconciler.confusables), imported on the first look_alike() (a
    create, a removed company, a file with a name that is not ASCII), and the fullwidth forms
    of ASCII (U+FF01-U+FF5E) that its table leaves out: it has `Ａ`, `Ｂ` and `Ｃ` but not `Ｆ`,
    `ｂ` or any of `０`-`９`, so the portal's `Ｆ001` was a company beside `F001` (its
    dependents deleted by the swap). Each maps as its ASCII character does (NFKC's mapping, then
    that character's own prototype: `Ｉ` as `I`, whose prototype is `l`). The Latin small
    capitals are read as their capitals (`ᴀcme` as `Acme`), and so is every character the table
    takes for one (`в` is `ʙ`, `к` is `ĸ`, as `ᴋ` is): the table leaves `ᴀ`, `ʙ` and `ᴅ` out, and
    has `ᴄ`, `ᴏ` and `ɪ` as the small letters of their shape, which stay."""
    from reconciler.confusables import PROTOTYPES

    table = dict(PROTOTYPES)
    for code in range(0xFF01, 0xFF5F):
        ascii_code = code - 0xFEE0
        table.setdefault(code, PROTOTYPES.get(ascii_code, chr(ascii_code)))
    capitals = _small_capital_shapes(PROTOTYPES)
    for code, prototype in table.items():  # Cyrillic в is ʙ, Greek τ is ᴛ: so their capitals
        if not prototype.isascii() and any(char in capitals for char in prototype):
            table[code] = "".join(capitals.get(char, char) for char in prototype)
    table.update((ord(shape), capital) for shape, capital in capitals.items())
    return table


def _small_capital_shapes(prototypes: Mapping[int, str]) -> dict[str, str]:
    """The shape of each Latin small capital in Unicode's table -> its capital's prototype: the
    small capital itself where the table has no prototype for it (`ᴀ`), or the letter the
    table takes it for (`ᴋ` is `ĸ`, as Cyrillic `к` and Greek `κ` are; `ᴍ` is `ʍ`, as `м`
    is). Not those the table takes for a small letter of their shape (`ᴄ` is `c`, `ᴏ` is `o`)."""
    shapes = {}
    for small in _SMALL_CAPITALS:  # `LATIN LETTER SMALL CAPITAL A`: its last word is its capital
        shape = prototypes.get(ord(small), small)
        if not shape.isascii():
            capital = unicodedata.name(small)[-1]
            shapes[shape] = prototypes.get(ord(capital), capital)
    return shapes


# Every `LATIN LETTER SMALL CAPITAL` of one ASCII letter (Unicode 14, as Python 3.11 has it), those
# with a prototype too (tests/test_spec.py checks the list against unicodedata).
_SMALL_CAPITALS = (
    "\u0262\u026a\u0274\u0280\u028f\u0299\u029c\u029f\u1d00\u1d04\u1d05\u1d07\u1d0a"
    "\u1d0b\u1d0d\u1d0f\u1d18\u1d1b\u1d1c\u1d20\u1d21\u1d22\ua730\ua731\ua7af"
)


@functools.lru_cache(maxsize=4096)  # a fleet repeats its names from tenant to tenant
def look_alike(text: str) -> str:
    """What a person sees of a name, as Unicode's confusable detection (UTS #39's skeleton) sees
    it, case aside: the characters that show (as seen_identity keeps them), decomposed (NFD),
    each replaced by its prototype, then case folded and replaced again. `Visma Oslo` with a
    Cyrillic О, `Ａbc` (fullwidth) and `abc` have one; so do names that differ only by what
    does not show. `Résumé` and `Resume` do not (an accent shows). A key to find candidates
    by: whether two names are taken for each other is looks_alike's to say."""
    return _skeleton(text if plain_name(text) else _seen(text))


def _skeleton(text: str) -> str:
    """look_alike of text whose every character shows."""
    # Prototypes are of upper and lower case letters (Cyrillic В is B, в is no b), and case is
    # no difference between names: the prototypes, then case folded, then their prototypes (a
    # folded `M` is an `m`, whose prototype is `rn`).
    prototypes = _prototypes()
    seen = unicodedata.normalize("NFD", text).translate(prototypes)
    return unicodedata.normalize("NFD", unicodedata.normalize("NFD", seen.casefold()).translate(prototypes))


_char_skeleton = functools.lru_cache(maxsize=4096)(_skeleton)  # foreign's, one character at a time


def _shape(text: str) -> str:
    """Unicode's skeleton (UTS #39) of text as written, case kept: each character's prototype."""
    return unicodedata.normalize("NFD", unicodedata.normalize("NFD", text).translate(_prototypes()))


@functools.lru_cache(maxsize=4096)
def _shapes(text: str) -> tuple[str, ...]:
    """A name's shape as written (first), and the shapes of its upper and lower case: the
    names a person may read it as, case aside (looks_alike)."""
    seen = text if plain_name(text) else _seen(text)
    return tuple(dict.fromkeys((_shape(seen), _shape(seen.upper()), _shape(seen.lower()))))


def _alike(a: str, b: str) -> bool:
    """One look, case aside: the same look_alike, or one name as written shaped like the other
    in upper or lower case, or letter by letter like the other's letters in either case
    (alike_by_letter). `VISMA OSLO ` (a space that does not show) is shaped like `Visma Oslo`
    in upper case, `ТINE` (a Cyrillic Т) like `Tine`: look_alike takes `I` as `l` and `i` as
    `i`, and missed both. A small letter keeps its own shape (Greek ν is v), and capitals
    theirs (Σ is no Ο, in ΣΤΕ and ΟΤΕ)."""
    if look_alike(a) == look_alike(b):
        return True
    sa, sb = _shapes(a), _shapes(b)
    return sa[0] in sb or sb[0] in sa or alike_by_letter(a, b)


def _variants(char: str) -> tuple[str, ...]:
    """A character and its upper and lower case of one identity, one character each: `I` and
    `i`, not `ı` and `I` (Turkish dotless i folds to itself: another name)."""
    folded = char.casefold()
    return tuple(
        dict.fromkeys(v for v in (char, char.upper(), char.lower()) if len(v) == 1 and v.casefold() == folded)
    )


# Turkish's dotted capital İ, whose small letter is i (Unicode folds it to i and a combining
# dot, another name): one letter in two cases to a Turkish reader, as I and ı are (ı is shaped
# like i, whose capital is I: _letters_alike says so already). İ and I stay two: a dot shows.
_DOTTED_CAPITAL = "\u0130"
_DOTTED = {_DOTTED_CAPITAL: "i", "i": _DOTTED_CAPITAL}


def _letter_shape(char: str) -> str:
    return unicodedata.normalize("NFD", _prototypes().get(ord(char), char))


@functools.lru_cache(maxsize=65536)
def _letters_alike(x: str, y: str) -> bool:
    """Two characters a person reads as one letter, case aside: one letter in two cases (`I`,
    `i`), one shape as written (`О` Cyrillic, `O`), or a letter beyond ASCII shaped like an ASCII
    letter's other case (`Е` Cyrillic, `e`: its capital is `E`). Letters beyond ASCII are not
    read in another case against each other (Greek `Σ` is no `ο`, though `σ` is shaped like it),
    nor ASCII letters (`l` is no `i`, though `I` is shaped like `l`): real words of one script
    differ so (χωρίο, ΧΩΡΊΣ; camii, camlı). Turkish `İ` and `i` are one letter too (_DOTTED)."""
    if x == y or x.casefold() == y.casefold() or _DOTTED.get(x) == y:
        return True
    shape = _letter_shape(x)
    if shape == _letter_shape(y):
        return True
    if x.isascii() == y.isascii():
        return False
    latin, other = (x, _letter_shape(y)) if x.isascii() else (y, shape)
    return any(_letter_shape(v) == other for v in _variants(latin))


def _letters(text: str) -> str:
    """What shows of a name, decomposed: one character for each the by-letter rule compares
    (but `İ`, whose dot is part of the letter: its small letter `i` is one character)."""
    letters = unicodedata.normalize("NFD", text if plain_name(text) else _seen(text))
    return letters.replace("I\u0307", _DOTTED_CAPITAL) if "\u0307" in letters else letters


def alike_by_letter(a: str, b: str) -> bool:
    """Letter by letter, each one letter to a person (_letters_alike): `NORDIC Invest` and
    `Nordic INVЕST` (a Cyrillic Е), where neither is written in one case (_shapes compares
    whole names in one case). The indexes ask it of all names at once (LetterIndex, Looks)."""
    la, lb = _letters(a), _letters(b)
    return len(la) == len(lb) and all(map(_letters_alike, la, lb))


def letter_classes() -> dict[str, str]:
    """For each character with a prototype, in one, or of one case folded with one of those,
    the character that stands for every character it is alike to letter by letter
    (_letters_alike), and those alike to them in turn (the least of them), where that is not
    its own case folded: two names alike by letter have one letter_key. reconciler.letterclasses
    keeps what this returns (it reads every code point: about a second); tests/test_spec.py
    checks that it still does."""
    prototypes = _prototypes()
    domain: set[str] = set()
    for code, prototype in prototypes.items():
        domain.add(chr(code))
        domain.update(unicodedata.normalize("NFD", prototype))
    folds = {char.casefold() for char in domain}
    for code in range(0x110000):  # and every character one of them is a case of (ẞ for ß)
        char = chr(code)
        if char.casefold() in folds and not 0xD800 <= code <= 0xDFFF:
            domain.add(char)
    parent: dict[str, str] = {}

    def root(char: str) -> str:
        while parent.get(char, char) != char:
            char = parent[char]
        return char

    def join(a: str, b: str) -> None:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    groups: dict[tuple[str, str], list[str]] = {}
    for char in sorted(domain):
        groups.setdefault(("fold", char.casefold()), []).append(char)
        groups.setdefault(("shape", _letter_shape(char)), []).append(char)
    for group in groups.values():
        for other in group[1:]:
            join(group[0], other)
    for latin in sorted(c for c in domain if c.isascii()):
        for variant in _variants(latin):
            for other in groups.get(("shape", _letter_shape(variant)), ()):
                if not other.isascii():
                    join(latin, other)
    domain.add(_DOTTED_CAPITAL)  # Turkish İ, one letter with i (_DOTTED)
    join(_DOTTED_CAPITAL, "i")
    return {char: root(char) for char in sorted(domain) if root(char) != char.casefold()}


@functools.lru_cache(maxsize=4096)  # a fleet repeats its names from tenant to tenant
def letter_key(text: str) -> str:
    """A key two names alike by letter (alike_by_letter) share: each character's class, or for
    a character without a look-alike its case folded (its cases are alike, nothing else), one
    character's apart from the next's (ß folds to two)."""
    from reconciler.letterclasses import CLASSES

    return "\x1f".join([CLASSES.get(char) or char.casefold() for char in _letters(text)])


class LetterIndex:
    """Names by letter_key, and by what each character is read as in its place (_place):
    which of them a name is alike to letter by letter (alike_by_letter), all at once, as the
    bits of their numbers. Asking each name of a key, or each character of a place, was
    quadratic: 4,000 names of one key that are not alike took validate 22 s, and as long again
    where one place held 47 characters shaped like `o`. A key's names are indexed by letter
    only when a name is asked about within them: most names meet no other."""

    def __init__(self) -> None:
        # A key's only name as (name, number): a _Letters is made when a second name meets it or
        # one is asked about (one object for nearly every name of a list cost a plan 0.9%).
        self._keys: dict[str, _Letters | tuple[str, int]] = {}

    def add(self, name: str, number: int) -> None:
        """Add name as number (its bit: 1 << number)."""
        key = letter_key(name)
        group = self._keys.get(key)
        if group is None:
            self._keys[key] = (name, number)
        else:
            self._group(key, group).add(name, number)

    def alike(self, name: str, within: int = -1) -> int:
        """The bits of the names added (of those within) that name is alike to by letter."""
        key = letter_key(name)
        group = self._keys.get(key)
        return 0 if group is None else self._group(key, group).alike(name, within)

    def may_look_like(self, name: str) -> int:
        """Those of alike() that share something else than name (apart) and are another name
        (identity: `Staſſ` and `Stass`): names that share what they are never look alike
        (ASCII names alike by letter only, `Filial Ii…` and `Filial iI…`, were each offered to
        every other: a plan beside 1,000 of them took 11 s)."""
        key = letter_key(name)
        found = self._keys.get(key)
        if found is None:
            return 0
        group = self._group(key, found)
        never = group.sharing(apart(name)) | group.sharing(("identity", identity(name)))
        return group.alike(name, ~never)

    def _group(self, key: str, found: _Letters | tuple[str, int]) -> _Letters:
        if isinstance(found, tuple):
            found = self._keys[key] = _Letters(*found)
        return found


class _Letters:
    """The names of one letter_key: what each shares (apart), asked once one is asked about
    within them, and each character in its place by what it is read as, then too."""

    __slots__ = ("apart", "members", "names", "places")  # one for each letter_key two names meet

    def __init__(self, name: str, number: int) -> None:
        self.names: list[tuple[str, int]] = [(name, number)]
        self.members = 1 << number
        self.apart: dict[object, int] | None = None  # what they share -> their bits
        self.places: list[dict[tuple[str, str], int]] | None = None  # per character: reading -> bits

    def add(self, name: str, number: int) -> None:
        self.names.append((name, number))
        self.members |= 1 << number
        if self.apart is not None:
            self._share(name, number)
        if self.places is not None:
            self._index(name, number)

    def sharing(self, group: object) -> int:
        """The bits of the names that share group (apart, or ("identity", identity))."""
        if self.apart is None:
            self.apart = {}
            for name, number in self.names:
                self._share(name, number)
        return self.apart.get(group, 0)

    def alike(self, name: str, within: int) -> int:
        found = self.members & within
        if not found:
            return 0
        letters = _letters(name)
        if self.places is None:
            self.places = [{} for _ in letters]
            for other, number in self.names:
                self._index(other, number)
        for readings, char in zip(self.places, letters, strict=True):
            if not found:
                break
            bits = 0
            for reading in _place(char)[1]:
                bits |= readings.get(reading, 0)
            found &= bits
        return found  # every name of the key where nothing shows (no character to ask)

    def _share(self, name: str, number: int) -> None:
        assert self.apart is not None
        for group in (apart(name), ("identity", identity(name))):  # `Staſſ` and `Stass` are one
            self.apart[group] = self.apart.get(group, 0) | 1 << number

    def _index(self, name: str, number: int) -> None:
        assert self.places is not None
        for readings, char in zip(self.places, _letters(name), strict=True):
            for reading in _place(char)[0]:
                readings[reading] = readings.get(reading, 0) | 1 << number


@functools.lru_cache(maxsize=4096)
def _place(char: str) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    """(what a character is found by in its place, what it asks there: LetterIndex): its case
    folded and its shape; and the shapes of an ASCII letter's cases, asked by a letter beyond
    ASCII of that shape, and the other way round (_letters_alike's rule, one way round each)."""
    shape = _letter_shape(char)
    own: tuple[tuple[str, str], ...] = (("fold", char.casefold()), ("shape", shape))
    if char in _DOTTED:  # Turkish İ and i, found by each other (and I is no İ)
        own = (*own, ("dotted", "i"))
    if char.isascii():
        cases = [_letter_shape(v) for v in _variants(char)]
        return (*own, *(("ascii", c) for c in cases)), (*own, *(("beyond", c) for c in cases))
    return (*own, ("beyond", shape)), (*own, ("ascii", shape))


class Looks:
    """Names by their looks (looks()) and by letter (LetterIndex): those a name may look the
    same as (alike_in, then looks_alike)."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        self._by_look: dict[str, list[str]] = {}
        self._names: list[str] = []
        self._letters = LetterIndex()
        for name in names:
            self.add(name)

    def __bool__(self) -> bool:
        return bool(self._names)

    def add(self, name: str) -> None:
        for look in looks(name):
            self._by_look.setdefault(look, []).append(name)
        self._letters.add(name, len(self._names))
        self._names.append(name)

    def candidates(self, name: str) -> Iterator[str]:
        """The names that share a look with name, or are alike to it letter by letter, each once."""
        met: set[str] = set()  # a name of two keys in common, asked once (looks_alike is not cheap)
        for look in looks(name):
            for other in self._by_look.get(look, ()):
                if other not in met:
                    met.add(other)
                    yield other
        bits = self._letters.may_look_like(name)
        while bits:
            other = self._names[lowest(bits)]
            bits &= bits - 1
            if other not in met:
                met.add(other)
                yield other


def lowest(bits: int) -> int:
    """The number of the lowest bit set (LetterIndex)."""
    return (bits & -bits).bit_length() - 1


@functools.lru_cache(maxsize=4096)
def looks(text: str) -> tuple[str, ...]:
    """The keys to find a name's possible look-alikes by (Looks, alike_in): its look_alike and
    its shapes (marked apart). Two names that look alike share one, or are alike by letter
    (LetterIndex); the converse is looks_alike's to say (two names shaped alike only in upper
    case, or only in lower case, do not)."""
    return (look_alike(text), *("\1" + shape for shape in _shapes(text)))


Key = tuple[str, str]


@functools.lru_cache(maxsize=4096)  # a fleet repeats its names from tenant to tenant
def look_keys(text: str) -> tuple[tuple[Key, ...], tuple[Key, ...]]:
    """(the keys to ask, the keys to be found by): for one pass over names (first_look_alike),
    two names look alike (_alike) where one asks a key the other is found by: the same
    look_alike; a later name's shapes finding an earlier one's shape as written; and a later
    name's shape as written finding any of an earlier one's shapes."""
    shapes = _shapes(text)
    look = ("look", look_alike(text))
    asked = (look, *(("written", shape) for shape in shapes), ("any", shapes[0]))
    kept = (look, ("written", shapes[0]), *(("any", shape) for shape in shapes))
    return asked, kept


def looks_alike(a: str, b: str) -> bool:
    """Two names that are two names (identities) but one to a person (DESIGN §8): an error
    wherever both would be kept, never two connections or a company swapped for another.

    What tells them apart must be a character that is not ASCII (a Cyrillic `О`, a fullwidth
    `Ａ`) or one that does not show: where two plain names differ only in ASCII characters
    (`Tromsø 1` and `Tromsø l`, `rn` and `m`: the same characters beyond ASCII, in the same
    places of the look: foreign), that is what was typed."""
    if identity(a) == identity(b) or not _alike(a, b):
        return False
    if not (plain_name(a) and plain_name(b)):
        return True
    return foreign(folded_as_seen(a)) != foreign(folded_as_seen(b))


@functools.lru_cache(maxsize=4096)  # asked of a name by each index it is in (apart)
def folded_as_seen(name: str) -> str:
    """identity(name), but a character beyond ASCII that case folds into ASCII of another look
    is kept: the long s `ſ` folds to `s` and looks like `f`, so `Staſſ` and `Staff` are two
    names told apart only beyond ASCII (looks_alike), not two typed differently in ASCII, as
    their identities `stass` and `staff` said. Kelvin's `K` folds to `k`, its own look."""
    if name.isascii():
        return name.casefold()
    folded = []
    for char in unicodedata.normalize("NFC", name):
        fold = char.casefold()
        keep = not char.isascii() and fold.isascii() and _char_skeleton(char) != _char_skeleton(fold)
        folded.append(char if keep else fold)
    return unicodedata.normalize("NFC", "".join(folded))


Placed = tuple[tuple[int, str], ...]  # foreign's: (where in the look, character)


def foreign(text: str) -> Placed:
    """The characters of an identity beyond ASCII, each with where its look starts in the look
    of the whole (look_alike): two plain names of one look with the same are told apart by
    ASCII alone (looks_alike): `Tromsø 1` and `Tromsø l`, `Tromsø m` and `Tromsø rn`; but not
    `Аsker A` and `Asker А`, or `Qaаa` and `Qаaa` (a Cyrillic а moved). Groups names that never
    look alike, so that a list is checked in one pass (first_look_alike). Where the looks of
    the characters do not add up to the look of the whole (combining marks reordered), the
    identity itself stands for them: such a name looks like every other of its look."""
    if text.isascii():
        return ()
    placed: list[tuple[int, str]] = []
    at = 0
    pieces = []
    for c in text:
        piece = _char_skeleton(c)
        if not c.isascii():
            placed.append((at, c))
        at += len(piece)
        pieces.append(piece)
    if "".join(pieces) != _skeleton(text):
        return ((-1, text),)
    return tuple(placed)


def by_look(names: Iterable[str]) -> Looks:
    """names by their looks and letters: where to find those a name may look the same as
    (alike_in, then looks_alike)."""
    return Looks(names)


def alike_in(index: Looks, name: str) -> Iterator[str]:
    """The names of index (by_look) that may look the same as name, each once: the candidates
    looks_alike decides between."""
    return index.candidates(name)


def first_look_alike(names: Sequence[str]) -> tuple[int, int] | None:
    """The first two of names (by position: earlier, later) that look alike and are two names,
    or None. For the names of a tenant file, which are plain (checks.check_name): typed in
    ASCII alone, they never look alike (looks_alike), and most lists are done in one pass in C
    (every connection's companies, every plan)."""
    if all(map(str.isascii, names)):
        return None
    return next(alike_after(names), None)


def look_alikes(names: Sequence[str]) -> Iterator[tuple[int, int]]:
    """(an earlier name it looks like, i) for each name i that looks like an earlier one and is
    another name: every such name, where first_look_alike stops at the first."""
    return iter(()) if all(map(str.isascii, names)) else alike_after(names)


def alike_after(names: Sequence[str]) -> Iterator[tuple[int, int]]:
    """(an earlier name it looks like, i) for each name i of names that looks like an earlier
    one (looks_alike), in one pass: by key (look_keys), then by what never looks alike within
    it: plain names with the same characters beyond ASCII in the same places (foreign), or one
    identity. A name looks like every earlier one of a key it asks but for those (asking every
    earlier name again took 36 s for 8,000 company ids). What a name shares is asked only of
    names whose keys meet (a plan's every name asked it: a quarter more of the plan's work).
    Names alike only letter by letter share no such key: LetterIndex finds them. Names of one
    identity are one name, whatever they share (`ØS` and `Øſ`, whose small letter looks like
    f): what each key keeps of a signature is its first name and the first of another identity.
    """
    # key -> [the first with it, {what they share: (the first, the first of another identity)}]
    groups: dict[Key, list[Any]] = {}
    signatures: dict[int, object] = {}

    def signature(j: int) -> object:
        found = signatures.get(j)
        if found is None:
            found = signatures[j] = apart(names[j])
        return found

    def shared_in(entry: list[Any]) -> dict[object, tuple[int, ...]]:
        if entry[1] is None:
            entry[1] = {signature(entry[0]): (entry[0],)}
        return entry[1]  # type: ignore[no-any-return]

    def another(firsts: tuple[int, ...], name: str) -> int | None:
        """The first of firsts that is another name than name (identity)."""
        key = identity(name)
        return next((j for j in firsts if identity(names[j]) != key), None)

    letters = LetterIndex()  # alike letter by letter (alike_by_letter), which no key says exactly
    for i, name in enumerate(names):
        asked, kept = look_keys(name)
        earlier = None
        if not groups.keys().isdisjoint(asked):  # the common case: no key met, nothing to ask
            earlier = min(  # the earliest: a message names the first name it looks like
                (
                    first
                    for look in asked
                    if look in groups
                    for theirs, firsts in shared_in(groups[look]).items()
                    if theirs != signature(i) and (first := another(firsts, name)) is not None
                ),
                default=None,
            )
        found = letters.may_look_like(name)
        if found and (earlier is None or lowest(found) < earlier):
            earlier = lowest(found)
        letters.add(name, i)
        if earlier is not None:
            yield earlier, i
        for look in kept:
            entry = groups.setdefault(look, [i, None])
            if entry[0] != i:
                shared = shared_in(entry)
                firsts = shared.setdefault(signature(i), (i,))
                if len(firsts) == 1 and firsts[0] != i and identity(names[firsts[0]]) != identity(name):
                    shared[signature(i)] = (firsts[0], i)


@functools.lru_cache(maxsize=4096)  # asked of a name by each index it is in
def apart(name: str) -> object:
    """What names of one look that never look alike (looks_alike) have in common: plain names
    with the same characters beyond ASCII in the same places (foreign, of each folded as seen),
    or one identity. Two names of one look with different ones look alike, unless they are one
    name (one identity: `Øſ` and `ØS`, which the indexes ask apart)."""
    return ("plain", foreign(folded_as_seen(name))) if plain_name(name) else ("odd", identity(name))


def look_alike_difference(a: str, b: str) -> str:
    """Where two names that look alike differ, for a message: their first characters that do."""
    a, b = unicodedata.normalize("NFC", a), unicodedata.normalize("NFC", b)
    for x, y in zip(a, b, strict=False):
        if x.casefold() != y.casefold():
            return f"{_described(x)} where the other has {_described(y)}"
    if len(a) > len(b):  # `VISMA OSLO ` and `Visma Oslo`: one ends where the other goes on
        return f"{_described(a[len(b)])} where the other ends"
    if len(b) > len(a):
        return f"the end where the other has {_described(b[len(a)])}"
    return "characters that look alike"


def _described(char: str) -> str:
    return f"U+{ord(char):04X} {unicodedata.name(char, 'unnamed')}"


def name_problem(text: str) -> str | None:
    """What is wrong with a name (or company id) as a person would see it, or None."""
    if plain_name(text):
        return None
    if text != text.strip():
        return "has white space at the start or end; remove it"
    for char in text:
        if visible(char):
            continue
        code = f"U+{ord(char):04X}"
        category = unicodedata.category(char)
        if char.isprintable():  # one of UNSEEN
            kind = "a character that shows nothing"
        elif char in "\n\r\u2028\u2029\x85":
            kind = "a line break"
        elif char == "\t":
            kind = "a tab"
        elif char in _BIDI_MARKS or (category == "Cf" and unicodedata.bidirectional(char) in _BIDI):
            kind = "a bidirectional control"
        elif category == "Cf":
            kind = "an invisible (zero-width or format) character"
        elif category.startswith("Z"):
            kind = "a space other than the plain space"
        else:
            kind = "a control character"
        return f"contains {kind} ({code}); remove it (write only visible characters and plain spaces)"
    return "has two spaces in a row, which show as one; write one space"


_DIGITS = re.compile(r"(\d+)")


def natural_key(text: str) -> tuple[object, ...]:
    """Sort S1, S2, S11 as people count, and by identity otherwise."""
    parts: list[Any] = _DIGITS.split(identity(text))  # text, digits, text, ..., text
    if len(parts) == 3:  # one number, as most names have (every live connection is sorted by it)
        return (parts[0], int(parts[1]), parts[2])
    parts[1::2] = map(int, parts[1::2])
    return tuple(parts)


def name_order(text: str) -> tuple[object, ...]:
    """The order names are shown and written in, the same on every store whatever its collation:
    natural, then by code points (R01 before R1, which are one natural key)."""
    return (natural_key(text), text)


@dataclass(frozen=True)
class Voucher:
    provider: str
    document_center_path: str


@dataclass(frozen=True)
class Field:
    """One field of a connection, described once (docs/architecture.md).

    key: its name in plans and JSON, and its place in documents (tenant files, fixtures,
    exports), dotted for a nested key; column: the store's column (None for the fields the
    store keeps apart: the name and its key, the password, the companies); kind and length:
    the column's type; compare: how SQL Server compares the value (the differ and the
    fingerprints use it).
    """

    key: str
    column: str | None
    kind: type[str] | type[bool] = str
    length: int = 200
    nullable: bool = False
    compare: Callable[[Any], Any] | None = None
    # A plain optional key of documents (a flag, default false; or a text, default null): the
    # models of tenant files and fixtures declare it from here (tenantfile.declare_simple_fields).
    simple: bool = False
    description: str | None = None

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(self.key.split("."))


def _fold(value: str | None) -> str | None:
    return value.casefold() if value is not None else None


# Every field of a connection, in the order plans and documents show them.
CONNECTION_FIELDS = (
    Field("name", None),
    Field("integration", "integration"),
    Field("server", "server", compare=normalize_server),
    Field("database", "database_name", compare=_fold),
    Field("authentication", "authentication", length=16),
    Field("login", "login", nullable=True),
    Field("password", None),
    Field("allow_others_to_edit", "allow_others_to_edit", bool, simple=True),
    Field("private", "private", bool, simple=True),
    Field("companies", None),
    Field("voucher.provider", "voucher_provider", nullable=True),
    Field("voucher.document_center_path", "document_center_path", length=400, nullable=True, compare=_fold),
    Field("write_back", "write_back", bool, simple=True, description="budgeting writes back to the ERP"),
    Field(
        "protected",
        "protected",
        bool,
        simple=True,
        description="never deleted while the live connection is protected",
    ),
)
SIMPLE = tuple(f for f in CONNECTION_FIELDS if f.simple)
# The fields kept in a column of their own, each read and written the same way.
STORED = tuple(f for f in CONNECTION_FIELDS if f.column is not None)
FIELDS = tuple(f.key for f in CONNECTION_FIELDS)
FIELD_RANK = {name: i for i, name in enumerate(FIELDS)}
# ConnectionSpec.of and from_document: the stored fields' keys and paths, worked out once. Only
# the voucher's fields are nested (checked here, so a new nested field cannot be missed there).
_PATHS = tuple((f.key, f.path) for f in STORED)
_LAYOUT = tuple((f.key, f.path[0], f.path[1] if len(f.path) > 1 else None) for f in STORED)
_COMPARE = tuple((f.key, f.compare) for f in STORED)
_TOP = tuple((f.key, f.kind is bool) for f in STORED if "." not in f.key)
_AUTHENTICATIONS = {a.value: a for a in Authentication}
# The top-level STORED fields (all but the voucher's two), in ConnectionSpec.made()'s order.
TOP_KEYS = tuple(key for key, _ in _TOP)
_TOP_ATTRS = operator.attrgetter(*TOP_KEYS)  # from_attributes: a tuple in TOP_KEYS' order
_BOOL_KEYS = tuple(key for key, is_bool in _TOP if is_bool)
assert {f.key for f in STORED if "." in f.key} == {"voucher.provider", "voucher.document_center_path"}


_T = TypeVar("_T")


class _Memo(Generic[_T]):
    """The mapping work(spec) gave, read-only, for the last specs asked about (at most MOST),
    by identity: the spec is kept with it, so that its id names no other meanwhile. A changed
    connection's comparable() is asked for by the differ, its fingerprint and the write (and by
    the differ twice in an apply, until with_cascades stopped diffing again). Kept beside each
    spec instead, a plan of 200,000 adoptions held 1.2 KB more for each connection to its end."""

    MOST = 4096

    def __init__(self, work: Callable[[ConnectionSpec], dict[str, _T]]) -> None:
        self._work = work
        self._found: dict[int, tuple[ConnectionSpec, Mapping[str, _T]]] = {}

    def __call__(self, spec: ConnectionSpec) -> Mapping[str, _T]:
        """work(spec), read-only: every caller gets the same mapping."""
        entry = self._found.get(id(spec))
        if entry is not None and entry[0] is spec:
            return entry[1]
        if len(self._found) >= self.MOST:  # more than a batch's changes: start again
            self._found.clear()
        found = types.MappingProxyType(self._work(spec))
        self._found[id(spec)] = (spec, found)
        return found


@dataclass(frozen=True)
class ConnectionSpec:
    """Every field the portal stores for a connection, except secrets and identity."""

    name: str
    integration: str
    server: str
    database: str
    authentication: Authentication
    login: str | None
    allow_others_to_edit: bool
    private: bool
    companies: tuple[str, ...]
    voucher: Voucher | None
    write_back: bool
    protected: bool

    def values(self) -> Mapping[str, Any]:
        """The STORED fields by key, as plain values (`voucher.provider`: str or None); read-only
        (the same mapping for the same spec, see _Memo)."""
        return _values(self)

    def _values(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, head, sub in _LAYOUT:
            value = getattr(self, head)
            if sub is not None:
                value = getattr(value, sub) if value is not None else None
            out[key] = value.value if isinstance(value, enum.Enum) else value
        return out

    @classmethod
    def of(cls, name: str, companies: tuple[str, ...], values: Mapping[str, Any]) -> ConnectionSpec:
        """A spec from its STORED fields by key (the inverse of values())."""
        # Read for every connection of a fleet, twice a plan (tenant files and store): the
        # fields' layout is worked out once, at import (_TOP, the voucher's two keys).
        top: dict[str, Any] = {
            key: (bool(values[key]) if is_bool else values.get(key)) for key, is_bool in _TOP
        }
        return cls._made(
            name, companies, top, values.get("voucher.provider"), values.get("voucher.document_center_path")
        )

    @classmethod
    def made(
        cls, name: str, companies: tuple[str, ...], top: Sequence[Any], provider: Any, path: Any
    ) -> ConnectionSpec:
        """A spec from its top-level STORED fields in TOP_KEYS' order and the voucher's two
        (provider, document_center_path): of() without a dict by key, for a reader that has the
        fields by position (a store row, a model's attributes)."""
        fields = dict(zip(TOP_KEYS, top, strict=True))
        for key in _BOOL_KEYS:
            fields[key] = bool(fields[key])
        return cls._made(name, companies, fields, provider, path)

    @classmethod
    def _made(
        cls, name: str, companies: tuple[str, ...], top: dict[str, Any], provider: Any, path: Any
    ) -> ConnectionSpec:
        """of() and made() from the top-level fields by key (bools made bool) and the voucher's.

        top, completed, becomes the spec's attributes in one go: a frozen dataclass's __init__
        sets each field with object.__setattr__, twice the cost, for every connection of a
        fleet, twice a plan. That these are exactly its fields is checked at import (below).
        """
        written = top["authentication"]
        try:  # a dict lookup, not Enum's call machinery: every connection, twice a plan
            top["authentication"] = _AUTHENTICATIONS[written]
        except (KeyError, TypeError):  # not one of them: Enum's own error
            top["authentication"] = Authentication(written)
        top["name"] = name
        top["companies"] = companies
        top["voucher"] = Voucher(provider, path or "") if provider else None
        made = object.__new__(cls)
        object.__setattr__(made, "__dict__", top)
        return made

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> ConnectionSpec:
        """A spec from a document (a validated tenant-file or fixture entry, nested keys)."""
        values: dict[str, Any] = {}
        for key, path in _PATHS:
            node: Any = doc
            for part in path:
                node = node.get(part) if node is not None and isinstance(node, (dict, Mapping)) else None
            values[key] = node
        companies = tuple(c if isinstance(c, str) else c["id"] for c in doc.get("companies") or ())
        return cls.of(doc["name"], companies, values)

    @classmethod
    def from_attributes(cls, obj: Any) -> ConnectionSpec:
        """A spec from a validated object with the document's keys as attributes (a tenant
        file's connection model): from_document without dumping the model first."""
        # Every connection of a fleet comes through here: the top-level fields read by one
        # attrgetter (in C), the voucher's two by hand (the only nested ones: checked at import).
        voucher = obj.voucher
        if voucher is None:
            return cls.made(obj.name, tuple(obj.companies), _TOP_ATTRS(obj), None, None)
        return cls.made(
            obj.name, tuple(obj.companies), _TOP_ATTRS(obj), voucher.provider, voucher.document_center_path
        )

    def stored_row(self) -> tuple[Any, ...]:
        """The STORED fields as written, in TOP_KEYS' order and then the voucher's two: values()
        as a tuple, read in one call (state.LiveConnection.as_read: every connection a saved
        plan fingerprints)."""
        voucher = self.voucher
        if voucher is None:
            return (*_TOP_ATTRS(self), None, None)
        return (*_TOP_ATTRS(self), voucher.provider, voucher.document_center_path)

    def document(self, password: Any = None) -> dict[str, Any]:
        """The spec as a tenant file writes it (nested keys; absent values left out), with
        the password reference, if given, in its place."""
        out: dict[str, Any] = {}
        values = self.values()
        for f in CONNECTION_FIELDS:
            if f.key == "name":
                out["name"] = self.name
            elif f.key == "password":
                if password is not None:
                    out["password"] = password
            elif f.key == "companies":
                out["companies"] = list(self.companies)
            elif f.column is not None and values[f.key] is not None:
                node = out
                for part in f.path[:-1]:
                    node = node.setdefault(part, {})
                node[f.path[-1]] = values[f.key]
        return out

    def comparable(self) -> Mapping[str, object]:
        """The normalised fields the differ compares (name excluded: it is the identity);
        read-only (the same mapping for the same spec, see _Memo)."""
        return _comparable(self)

    def _comparable(self) -> dict[str, object]:
        out: dict[str, object] = {
            key: compare(v) if compare else v
            for (key, compare), v in zip(_COMPARE, self.values().values(), strict=True)
        }
        out["companies"] = tuple(sorted({identity(c) for c in self.companies}))
        return out

    def shown(self) -> dict[str, object]:
        """The same fields as written, for before/after in a plan."""
        return {**self.values(), "companies": sorted(self.companies, key=natural_key)}


_values, _comparable = _Memo(ConnectionSpec._values), _Memo(ConnectionSpec._comparable)


# ConnectionSpec._made() sets these attributes without __init__: every field, and nothing else.
assert {f.name for f in dataclasses.fields(ConnectionSpec)} == {"name", "companies", "voucher", *TOP_KEYS}


def declares(declared: ConnectionSpec, live: ConnectionSpec) -> bool:
    """A tenant file's spec says what the live one holds, as the differ compares them (no
    change to plan): the same name (one the portal keeps decomposed, NFD, typed on a Mac, is
    the file's, which the reader composes, NFC) and the same comparable fields (companies a
    set, a server as SQL Server reaches it)."""
    return declared == live or (
        nfc(live.name) == declared.name and declared.comparable() == live.comparable()
    )


def spec_fingerprint(spec: ConnectionSpec, password_fp: str | None) -> str:
    """A digest of everything applied for a connection: drift and pending compare these.

    password_fp is already a keyed HMAC, so this digest reveals nothing brute-forceable.
    """
    body = {"name": identity(spec.name), **spec.comparable(), "password": password_fp}
    return hashlib.sha256(_SORTED_JSON.encode(body).encode()).hexdigest()


_SORTED_JSON = json.JSONEncoder(sort_keys=True)  # json.dumps(sort_keys=True), made once
