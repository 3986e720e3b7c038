"""Scrub secret values out of text before anything is printed, logged or raised."""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "***"

# PWD=...; Password=...; password='...' in ODBC strings, URLs and driver messages.
# Only `name=value` (ODBC strings, DSNs, URLs' queries): `password: ...` is ordinary prose in
# this tool's own messages ("connections[0].password: a password is never written ...").
_KEYED = re.compile(
    r"(?i)\b(pwd|password|passwd|secret|token)(\s*=\s*)('[^']*'|\"[^\"]*\"|\{[^}]*\}|[^;\s,)]+)"
)
# scheme://user:password@host in SQLAlchemy URLs.
_URL_USERINFO = re.compile(r"(\w[\w+.-]*://[^:/@\s]*:)([^@\s]+)(@)")

_known: set[str] = set()


def register(secret: str | None) -> None:
    """Remember a secret value of this process so that every later redact() removes it."""
    if secret and len(secret) >= 3:
        _known.add(secret)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Return text with every known secret, keyed password and URL password masked."""
    for value in sorted({*_known, *(s for s in secrets if s)}, key=len, reverse=True):
        text = text.replace(value, MASK)
    text = _URL_USERINFO.sub(lambda m: m.group(1) + MASK + m.group(3), text)
    return _KEYED.sub(lambda m: m.group(1) + m.group(2) + MASK, text)
