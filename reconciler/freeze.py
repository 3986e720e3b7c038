"""What change windows say about a tenant at one time: frozen data and its words.

No pydantic and no YAML (reconciler.windows reads reconciler.yaml): plans and renderers
depend on these types only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Occurrence:
    """One opening of a window: from start (inclusive) to end (exclusive), in its zone."""

    window: str
    start: datetime  # aware, in the window's zone
    end: datetime

    @property
    def zone(self) -> str:
        return str(self.start.tzinfo)

    def contains(self, at: datetime) -> bool:
        return self.start <= at < self.end


@dataclass(frozen=True)
class Freeze:
    """What a tenant's windows say at one time: the open one, and the next to open (soon: within
    a week, a warning in plans; further ahead, a note)."""

    active: Occurrence | None
    upcoming: Occurrence | None
    soon: bool = False


# ---------------------------------------------------------------------------------------------
# Words: the same wording in refusals, plans and `reconciler windows`


def clock_text(when: datetime) -> str:
    """2026-04-06 00:00, with the seconds where a window's time has them (00:00:45)."""
    return f"{when:%Y-%m-%d %H:%M:%S}" if when.second else f"{when:%Y-%m-%d %H:%M}"


def timespec(when: datetime) -> str:
    """datetime.isoformat's timespec that keeps what clock_text shows."""
    return "seconds" if when.second else "minutes"


def local_text(when: datetime) -> str:
    return f"{clock_text(when)} {when.tzinfo}"


def quoted(name: str) -> str:
    """A window's name in double quotes it cannot close (as render.quoted: its backslashes
    doubled, its quotes escaped); the name itself is printable (windows: tenantfile.Name)."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def until_text(o: Occurrence) -> str:
    return f"change window {quoted(o.window)} until {local_text(o.end)}"


def opens_text(o: Occurrence) -> str:
    return f"change window {quoted(o.window)} opens {local_text(o.start)} (until {local_text(o.end)})"
