"""Scrub secret values out of text before anything is printed, logged or raised."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

MASK = "***"

# PWD=...; Password=...; password='...' in ODBC strings, URLs and driver messages.
# Only `name=value` (ODBC strings, DSNs, URLs' queries): `password: ...` is ordinary prose in
# this tool's own messages ("connections[0].password: a password is never written ...").
_KEYED = re.compile(
    r"(?i)\b(pwd|password|passwd|secret|token)(\s*=\s*)('[^']*'|\"[^\"]*\"|\{[^}]*\}|[^;\s,)]+)"
)
# scheme://user:password@host in SQLAlchemy URLs, and as a path shows one given where a path
# goes (`plan URL`, `import URL`): its // made one /.
_URL_USERINFO = re.compile(r"(\w[\w+.-]*:/+[^:/@\s]*:)([^@\s]+)(@)")


class _Known:
    """The secret values of this process, each of at least HEAD characters, indexed by their
    first HEAD: redact() finds the ones in a text with one lookup per position, not one search
    per secret (a fleet's source checks redact a message per connection, with every password
    of the fleet known)."""

    HEAD = 3

    def __init__(self) -> None:
        self._by_head: dict[str, set[str]] = {}

    def add(self, secret: str) -> None:
        self._by_head.setdefault(secret[: self.HEAD], set()).add(secret)

    def update(self, secrets: Iterable[str]) -> None:
        for secret in secrets:
            self.add(secret)

    def clear(self) -> None:
        self._by_head.clear()

    def __iter__(self) -> Iterator[str]:
        for values in self._by_head.values():
            yield from values

    def __contains__(self, secret: object) -> bool:
        return isinstance(secret, str) and secret in self._by_head.get(secret[: self.HEAD], ())

    def within(self, text: str) -> set[str]:
        """The known secrets that occur in text."""
        found: set[str] = set()
        heads, size = self._by_head, self.HEAD
        if heads:
            for at in range(len(text) - size + 1):
                hits = heads.get(text[at : at + size])
                if hits:
                    found.update(value for value in hits if text.startswith(value, at))
        return found


_known = _Known()


def register(secret: str | None) -> None:
    """Remember a secret value of this process so that every later redact() removes it."""
    if secret and len(secret) >= _Known.HEAD:
        _known.add(secret)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Return text with every known secret, keyed password and URL password masked.

    Longest first, and again while masking changes the text: a mask may complete another.
    A secret given here shorter than _Known.HEAD (a password `a`) is masked where it stands as
    a word of its own (`PWD=a;`), not inside every word that holds the letter: a source check
    said `***cme/***cme-norw***y: login root w***s refused`, and a driver's `role … does not
    exist` read as `rol***`, which the check then took for another problem."""
    extra = [s for s in secrets if s and len(s) >= _Known.HEAD]
    short = [s for s in secrets if s and len(s) < _Known.HEAD]
    while True:
        found = _known.within(text).union(s for s in extra if s in text)
        masked = text
        for value in sorted(found, key=len, reverse=True):
            masked = masked.replace(value, MASK)
        if masked == text:
            break
        text = masked
    for value in short:  # once, and never inside a mask: a password `*` is in every MASK
        if value in text:
            text = re.sub(rf"(?<![\w*]){re.escape(value)}(?![\w*])", MASK, text)
    text = _URL_USERINFO.sub(lambda m: m.group(1) + MASK + m.group(3), text)
    return _KEYED.sub(lambda m: m.group(1) + m.group(2) + MASK, text)
