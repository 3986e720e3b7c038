"""The current time: the one place `RECONCILER_NOW` is read (tests set the clock with it).

Everything that decides by time (reconciler.windows) takes the time as an argument; the commands
get it from now().
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from reconciler import errors

NOW_VAR = "RECONCILER_NOW"
# The years a time may be in: a window's occurrences and a plan's expiry are counted from it
# without reaching the ends of what datetime holds (year 1 and 9999 overflowed).
IN_RANGE = (1971, 9000)


def in_range(when: datetime) -> bool:
    """when is in the years IN_RANGE."""
    return IN_RANGE[0] <= when.year <= IN_RANGE[1]


def parse(text: str, *, source: str) -> datetime:
    """An ISO 8601 time with its offset (2026-03-30T12:00+02:00, 2026-03-30T10:00Z), as UTC."""
    written = text.strip()
    if written[-1:] == "z":  # RFC 3339 allows it; fromisoformat does not
        written = written[:-1] + "Z"
    try:
        when = datetime.fromisoformat(written)
    except ValueError as e:
        if "out of range" in str(e) or "must be in" in str(e):  # 2026-02-29, T24:00
            raise errors.InputError(f"{source} {text!r}: no such time ({e})") from None
        if str(e).startswith("offset must be"):  # +25:00: an offset, but none a clock has
            raise errors.InputError(
                f"{source} {text!r}: no such UTC offset; write one between -12:00 and +14:00, "
                "such as 2026-03-30T12:00+02:00 or 2026-03-30T10:00Z"
            ) from None
        when = None
    if when is not None and not in_range(when):
        raise errors.InputError(
            f"{source} {text!r}: write a time between the years {IN_RANGE[0]} and {IN_RANGE[1]}"
        )
    if when is None or when.tzinfo is None:
        raise errors.InputError(
            f"{source} {text!r}: write a time with its UTC offset, such as "
            "2026-03-30T12:00+02:00 or 2026-03-30T10:00Z"
        )
    return when.astimezone(UTC)


def now() -> datetime:
    """RECONCILER_NOW when set (for tests and rehearsals), else the system clock, in UTC."""
    text = os.environ.get(NOW_VAR)
    if text:
        return parse(text, source=NOW_VAR)
    return datetime.now(UTC)
