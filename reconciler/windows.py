"""Change windows (DESIGN §11): read `reconciler.yaml`, decide which windows are open when.

Reading is as strict as for tenant files (reconciler.strictyaml, reconciler.tenantfile's words). The
decisions (`Window.active`, `Window.upcoming`, `freeze_of`) are pure: the current time is always
an argument, never read here.

Time semantics, precisely (docs/windows.md):

- A window's times are wall-clock times in its `timezone`. A recurring window opens at each
  time its 5-field cron `schedule` matches on that clock, and closes at the opening wall-clock
  time plus `duration` (`6d` ends 6 calendar days later at the same time on the clock, whatever
  daylight-saving change lies between: 143 or 145 hours of elapsed time around the spring and
  autumn changes).
- A wall-clock time the spring change skips (02:30 in Europe/Oslo on the last Sunday of March)
  is moved to the moment the clock jumps (03:00 summer time); a time the autumn change repeats
  is its first occurrence (summer time).
- A window is open from its start (inclusive) to its end (exclusive). Occurrences of one
  recurring window that overlap or touch are one freeze: it ends when the last of them ends.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import re
import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import cronsim
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from reconciler import checks, clock, errors, freeze, spec, strictyaml, tenantfile, validation
from reconciler.freeze import Freeze, Occurrence

FILE_NAME = "reconciler.yaml"
# How far ahead a schedule's next opening is looked for (plan, drift, `reconciler windows`): every
# schedule cron accepts opens within 8 years (29 February's: 2096, then 2104), so that the next
# window is the next to open whatever the windows are (400 days named a one-off window of 2029
# as next, before a 29 February schedule's 2028). A one-off window's is known however far ahead.
LOOKAHEAD = timedelta(days=3000)
# A next opening this close is a warning in a plan, not only a note: the apply after the merge,
# or a saved plan's, may meet it.
SOON = timedelta(days=7)
# The longest window accepted: a longer one is surely a typo (and bounds every search below).
MAX_DURATION = timedelta(days=366)
# How far merging the overlapping openings of one window goes (each way) before it stops: a
# schedule whose openings never leave a gap is reported as ending where the search stopped.
_MERGE_HORIZON = timedelta(days=400)
_MERGE_STEPS = 500
# More than any UTC offset change: a wall-clock time maps to an instant within this of itself.
_SLACK = timedelta(hours=3)

_DURATION = re.compile(r"^(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?$")
_LOCAL = re.compile(r"^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2})?)?$")
_OFFSET = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$")
# A pattern over one slug ([a-z0-9-]): its characters, * and ?, and sets such as [a-c] or
# [!x] that are closed and hold slug characters. fnmatch takes an unclosed [ or a stray ] for
# itself, which no slug holds: such a pattern would match nothing, and a window of it freeze
# nothing (issue found by use: `acme/acme-norway[`).
_GLOB_PART = re.compile(r"(?:[a-z0-9*?-]|\[!?(?:[a-z0-9]-[a-z0-9]|[a-z0-9-])+\])+")
_GLOB_SET = re.compile(r"\[!?([^\]]*)\]")
_GLOB_RANGE = re.compile(r"([a-z0-9])-([a-z0-9])")


def _fail(kind: str, message: str, **context: Any) -> PydanticCustomError:
    return PydanticCustomError(kind, message, {k: v for k, v in context.items() if v} or None)


# ---------------------------------------------------------------------------------------------
# Values


def parse_duration(text: str) -> timedelta | None:
    """`6d`, `12h`, `90m`, `1d12h` -> a timedelta; None when it is not written that way."""
    match = _DURATION.fullmatch(text)
    if not match or not text:
        return None
    try:
        return timedelta(days=int(match["d"] or 0), hours=int(match["h"] or 0), minutes=int(match["m"] or 0))
    except OverflowError:  # more days than a timedelta holds: longer than any window may be
        return timedelta.max


def _check_duration(value: str) -> str:
    length = parse_duration(value)
    if length is None:
        raise _fail(
            "duration",
            f"{validation.shown(value)} is not a duration; write days, hours "
            "and minutes such as 6d, 12h, 90m or 1d12h",
        )
    if not timedelta(0) < length <= MAX_DURATION:
        raise _fail("duration", f"must be longer than 0 and at most {MAX_DURATION.days}d")
    return value


def _check_schedule(value: str) -> str:
    fields = value.split()
    if len(fields) != 5:
        raise _fail(
            "schedule",
            f"{validation.shown(value)} has {len(fields)} field(s); write 5: "
            'minute hour day-of-month month day-of-week (e.g. "0 0 28-31 * *")',
        )
    try:
        cronsim.CronSim(value, datetime(2000, 1, 1))
    except cronsim.CronSimError as exc:
        raise _fail(
            "schedule",
            f"{validation.shown(value)} is not a cron schedule ({exc}); write "
            "minute hour day-of-month month day-of-week "
            '(e.g. "0 0 28-31 * *")',
        ) from None
    return value


# Zone database entries that are not a place: the machine's own zone, and aliases for it.
_NOT_A_PLACE = frozenset({"localtime", "Factory", "posixrules"})


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(
        z
        for z in zoneinfo.available_timezones()
        if z not in _NOT_A_PLACE and not z.startswith(("posix/", "right/"))
    )


def _check_zone(value: str) -> str:
    if value in _zones():
        return value
    if value in _NOT_A_PLACE:
        raise _fail(
            "timezone",
            f"{validation.shown(value)} is no place's zone (the machine's own, or a placeholder); write the "
            "IANA zone of the window, such as Europe/Oslo or UTC",
        )
    by_case = {z.casefold(): z for z in _zones()}
    close = (
        [by_case[value.casefold()]]
        if value.casefold() in by_case
        else difflib.get_close_matches(value, sorted(_zones()), n=1, cutoff=0.6)
    )
    hint = f"did you mean {close[0]!r}?" if close else "write an IANA zone such as Europe/Oslo or UTC"
    raise _fail("timezone", f"unknown time zone {validation.shown(value)}; {hint}")


def parse_local(text: str) -> datetime | None:
    """`2026-12-28T00:00` (or with seconds, or a date alone: midnight) -> a naive datetime."""
    if not _LOCAL.fullmatch(text):
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if clock.in_range(when) else None


def _check_local(value: str) -> str:
    if _OFFSET.search(value) and parse_local(_OFFSET.sub("", value)) is not None:
        raise _fail(
            "local_time",
            f"{validation.shown(value)} has an offset; write the local time "
            "without one (e.g. 2026-12-28T00:00): timezone says where",
        )
    if parse_local(value) is None:
        raise _fail(
            "local_time",
            f"{validation.shown(value)} is not a local date and time; write "
            f"YYYY-MM-DDTHH:MM in the years {clock.IN_RANGE[0]} to {clock.IN_RANGE[1]}, e.g. "
            "2026-12-28T00:00 (unquoted is fine)",
        )
    return value


def _check_glob(value: str) -> str:
    customer, slash, tenant = value.partition("/")
    if not slash or not all(_GLOB_PART.fullmatch(part) for part in (customer, tenant)):
        raise _fail(
            "tenants",
            f"{validation.shown(value)} is not a CUSTOMER/TENANT pattern; write "
            "e.g. acme/*, */acme-norway or acme/acme-norway (* and ? match, [a-c] a set of "
            "lower-case letters, digits or -)",
        )
    ranges = (r for inner in _GLOB_SET.findall(value) for r in _GLOB_RANGE.findall(inner))
    for low, high in ranges:
        if low > high:
            raise _fail(
                "tenants",
                f"{validation.shown(value)} has the range {low}-{high}, which holds nothing; "
                f"write {high}-{low}",
            )
    for part in (customer, tenant):
        units = _GLOB_UNIT.findall(part)
        first = units[0]
        if any(not _matches(unit, checks.SLUG_CHARS) for unit in units if unit != "*") or (
            first != "*" and not _matches(first, checks.SLUG_FIRST)
        ):
            raise _fail(
                "tenants",
                f"{validation.shown(value)} can match no tenant: customer and tenant names are "
                "lower-case letters, digits and -, and begin with a letter or a digit",
            )
    return value


_GLOB_UNIT = re.compile(r"\[!?[^\]]*\]|.")  # one character of a pattern, or a set


def _matches(unit: str, chars: str) -> bool:
    """Whether a pattern's unit (a character, ?, a set) matches one of chars."""
    return any(fnmatch.fnmatchcase(c, unit) for c in chars)


Duration = Annotated[str, AfterValidator(_check_duration)]
Schedule = Annotated[str, AfterValidator(_check_schedule)]
Zone = Annotated[str, AfterValidator(_check_zone)]
LocalTime = Annotated[str, AfterValidator(_check_local)]
Glob = Annotated[str, AfterValidator(_check_glob)]


def _check_globs(value: list[str]) -> list[str]:
    if not value:
        raise _fail(
            "tenants",
            "an empty list covers no tenant; list CUSTOMER/TENANT globs "
            "(e.g. [acme/*]), or remove the key to cover every tenant",
        )
    return value


Globs = Annotated[list[Glob], AfterValidator(_check_globs)]


# ---------------------------------------------------------------------------------------------
# The file (pydantic at the boundary; schemas/reconciler.schema.json is generated from it)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


class _WindowModel(_Model):
    name: tenantfile.Name = Field(description="what the window is called in refusals and plans")
    timezone: Zone = Field(description="IANA time zone of the window's times, e.g. Europe/Oslo")
    # Not `| None`: `tenants:` written with nothing after it is an error, as `tenants: []` is
    # (leaving the key out covers every tenant: the default, which pydantic does not validate).
    tenants: Globs = Field(
        None,  # type: ignore[arg-type]
        description="CUSTOMER/TENANT globs (acme/*, */acme-norway); default: every tenant",
    )


class RecurringModel(_WindowModel):
    """A window that opens whenever its cron schedule matches, for duration (as Argo CD)."""

    schedule: Schedule = Field(
        description="5-field cron (minute hour day month weekday), wall-clock time in timezone"
    )
    duration: Duration = Field(
        description="how long each opening lasts, in wall-clock time: 6d, 12h, 90m, 1d12h"
    )

    @model_validator(mode="before")
    @classmethod
    def _not_one_off(cls, data: Any) -> Any:
        if isinstance(data, dict):
            mixed = [k for k in ("start", "end") if k in data]
            if mixed:
                raise _fail(
                    "window_kind",
                    "a window has schedule and duration (recurring) or "
                    "start and end (one-off), not both; remove " + " and ".join(mixed),
                    at_key=mixed[0],
                )
        return data


class OneOffModel(_WindowModel):
    """A window from start to end, once."""

    start: LocalTime = Field(description="local date and time it opens (inclusive), e.g. 2026-12-28T00:00")
    end: LocalTime = Field(description="local date and time it closes (exclusive)")

    @model_validator(mode="after")
    def _ordered(self) -> OneOffModel:
        start, end = parse_local(self.start), parse_local(self.end)
        if start is not None and end is not None and end <= start:
            raise _fail(
                "end",
                f"end {self.end} is not after start {self.start}; write an end later than the start",
                at_key="end",
            )
        zone = zoneinfo.ZoneInfo(self.timezone) if self.timezone in _zones() else None
        if (
            start is not None
            and end is not None
            and zone is not None
            and to_instant(end, zone) <= to_instant(start, zone)
        ):
            raise _fail(
                "end",
                f"from {self.start} to {self.end} is no time at all in {self.timezone}: the clock skips "
                "it (a daylight-saving change); write times outside the hour it skips",
                at_key="end",
            )
        return self


def _window_kind(value: Any) -> str:
    if isinstance(value, dict) and ("schedule" in value or "duration" in value):
        return "recurring"
    return "one_off"


WindowEntry = Annotated[
    Annotated[RecurringModel, Tag("recurring")] | Annotated[OneOffModel, Tag("one_off")],
    Discriminator(_window_kind),
]


MAX_WINDOWS = 100


class SettingsFileModel(_Model):
    """reconciler.yaml at the repository root: change windows (freeze) for apply."""

    model_config = ConfigDict(title="osr-reconciler settings (reconciler.yaml)")

    version: Literal[1] = Field(description="file format version")
    freeze: list[WindowEntry] = Field(
        default_factory=list,
        max_length=MAX_WINDOWS,  # each is judged on every plan: thousands took minutes
        description="windows in which apply refuses to change a tenant",
    )


_MODELS: dict[str, type[BaseModel]] = {"recurring": RecurringModel, "one_off": OneOffModel}
_UNIONS = {"freeze": frozenset({"recurring", "one_off"})}
_WANT = {
    "freeze": "a list of windows, each starting with `- name: ...`",
    "name": "a name of 1-100 printable characters (e.g. month-end close)",
    "schedule": 'a 5-field cron schedule in quotes (e.g. "0 0 28-31 * *")',
    "duration": "a duration such as 6d, 12h or 90m",
    "timezone": "an IANA time zone (e.g. Europe/Oslo)",
    "start": "a local date and time (e.g. 2026-12-28T00:00)",
    "end": "a local date and time (e.g. 2027-01-08T00:00)",
    "tenants": "a list of CUSTOMER/TENANT globs (e.g. [acme/*])",
}
_ITEM_WANT = {
    "freeze": "a window: a mapping starting with `name: ...`",
    "tenants": "a CUSTOMER/TENANT glob (e.g. acme/*)",
}
_EXAMPLE = {
    "name": "month-end close",
    "schedule": '"0 0 28-31 * *"',
    "duration": "6d",
    "timezone": "Europe/Oslo",
    "start": "2026-12-28T00:00",
    "end": "2027-01-08T00:00",
}


# ---------------------------------------------------------------------------------------------
# Frozen results and decisions


def to_instant(local: datetime, zone: zoneinfo.ZoneInfo) -> datetime:
    """A wall-clock time in zone as an aware datetime (see the module docstring for gaps/folds)."""
    when = local.replace(tzinfo=zone, fold=0)
    if when.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == local:
        return when
    # Skipped by a spring change: the first minute that exists is the moment the clock jumps.
    when = when.replace(second=0, microsecond=0)
    while when.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != when.replace(tzinfo=None):
        when += timedelta(minutes=1)
    return when


def _wall(at: datetime, zone: zoneinfo.ZoneInfo) -> datetime:
    return at.astimezone(zone).replace(tzinfo=None)


@dataclass(frozen=True)
class Window:
    name: str
    zone: zoneinfo.ZoneInfo
    tenants: tuple[str, ...]  # globs; () is every tenant
    schedule: str | None = None
    duration: timedelta | None = None
    start: datetime | None = None  # naive wall-clock times in zone (one-off windows)
    end: datetime | None = None
    duration_text: str = ""

    def covers(self, tenant: str) -> bool:
        return not self.tenants or any(fnmatch.fnmatchcase(tenant, g) for g in self.tenants)

    def describe(self) -> str:
        if self.schedule is not None:
            what = f'every "{self.schedule}" for {self.duration_text}'
        else:
            assert self.start is not None and self.end is not None
            what = f"from {freeze.clock_text(self.start)} to {freeze.clock_text(self.end)}"
        return f"{what} ({self.zone.key}); tenants: {', '.join(self.tenants) or 'every tenant'}"

    def _occurrence(self, wall_start: datetime) -> Occurrence:
        assert self.duration is not None
        return Occurrence(
            self.name, to_instant(wall_start, self.zone), to_instant(wall_start + self.duration, self.zone)
        )

    def _once(self) -> Occurrence:
        assert self.start is not None and self.end is not None
        return Occurrence(self.name, to_instant(self.start, self.zone), to_instant(self.end, self.zone))

    def _latest_start(self, at: datetime) -> Occurrence | None:
        """The recurring opening with the latest start at or before at (instants, inclusive)."""
        assert self.schedule is not None
        local = at.astimezone(self.zone)
        top = local.replace(tzinfo=None) + timedelta(seconds=1)  # cronsim goes back from before top
        if local.fold:  # the hour an autumn change repeats: its first pass is earlier than `at`
            shift = local.replace(fold=0).utcoffset() - local.utcoffset()  # type: ignore[operator]
            top += shift
        # to_instant is monotonic, so the first opening at or before `at` found going back is
        # the latest.
        for wall in cronsim.CronSim(self.schedule, top, reverse=True):
            occurrence = self._occurrence(wall)
            if occurrence.start <= at:
                return occurrence
        return None  # pragma: no cover - cronsim searches 50 years back

    def _merged(self, found: Occurrence, *, back: bool) -> Occurrence:
        """found, joined with the openings after it (and, with back, before it) that overlap or
        touch it."""
        first, last = found, found
        for _ in range(_MERGE_STEPS if back else 0):  # each way its own horizon (docs/windows.md)
            if found.start - first.start >= _MERGE_HORIZON:
                break
            earlier = self._latest_start(first.start - timedelta(microseconds=1))
            if earlier is None or earlier.end < first.start:
                break
            first = earlier
        for _ in range(_MERGE_STEPS):
            if last.end - found.end >= _MERGE_HORIZON:
                break
            latest = self._latest_start(last.end)
            if latest is None or latest.end <= last.end:
                break
            last = latest
        return Occurrence(self.name, first.start, last.end)

    def active(self, at: datetime) -> Occurrence | None:
        """The opening that contains at (overlapping openings merged), else None."""
        if self.schedule is None:
            once = self._once()
            return once if once.contains(at) else None
        latest = self._latest_start(at)
        if latest is None or not latest.contains(at):
            return None
        return self._merged(latest, back=True)

    def upcoming(self, at: datetime, within: timedelta) -> Occurrence | None:
        """The first opening that starts after at (and after the one open at at) within `within`."""
        after = at
        current = self.active(at)
        if current is not None:
            after = current.end
            still = self._latest_start(after) if self.schedule is not None else None
            if still is not None and still.contains(after):  # merged up to the horizon, not a gap
                return None
        found = None
        if self.schedule is None:
            once = self._once()
            found = once if once.start > after else None
        else:
            for wall in cronsim.CronSim(self.schedule, _wall(after, self.zone) - _SLACK):
                candidate = self._occurrence(wall)
                if candidate.start > at + within:
                    break
                # An opening a spring change empties (02:30 for 30m: 03:00 to 03:00) is none:
                # it was announced as opening and froze nothing.
                if candidate.start > after and candidate.end > candidate.start:
                    found = self._merged(candidate, back=False)
                    break
        return found if found is not None and found.start <= at + within else None

    def next_opening(self, at: datetime) -> Occurrence | None:
        """The next opening after at: a schedule's within LOOKAHEAD, a one-off's however far."""
        if self.schedule is None:
            return self.upcoming(at, datetime.max.replace(tzinfo=UTC) - at)
        return self.upcoming(at, LOOKAHEAD)


@dataclass(frozen=True)
class Status:
    """One window at one time: open now (with its end), and its next opening (next_opening)."""

    window: Window
    active: Occurrence | None
    upcoming: Occurrence | None
    at: datetime


def status(windows: Sequence[Window], at: datetime) -> list[Status]:
    """Each window's state at `at`: decided once, then looked up per tenant by freeze_of."""
    return [Status(w, w.active(at), w.next_opening(at), at) for w in windows]


def freeze_of(statuses: Sequence[Status], tenant: str) -> Freeze | None:
    """The open window covering tenant (the one ending last) and the next one to open (of those
    opening together, the one ending last); None when there is neither."""
    covering = [s for s in statuses if s.window.covers(tenant)]
    active = [s.active for s in covering if s.active is not None]
    upcoming = [s.upcoming for s in covering if s.upcoming is not None]
    if not active and not upcoming:
        return None
    first = min(upcoming, key=lambda o: (o.start, -o.end.timestamp())) if upcoming else None
    return Freeze(
        max(active, key=lambda o: o.end) if active else None,
        first,
        soon=first is not None and first.start - covering[0].at <= SOON,
    )


# ---------------------------------------------------------------------------------------------
# Reading the file


def _freeze(model: SettingsFileModel) -> tuple[Window, ...]:
    out = []
    for entry in model.freeze:
        zone = zoneinfo.ZoneInfo(entry.timezone)
        tenants = tuple(entry.tenants or ())
        if isinstance(entry, RecurringModel):
            out.append(
                Window(
                    entry.name,
                    zone,
                    tenants,
                    schedule=entry.schedule,
                    duration=parse_duration(entry.duration),
                    duration_text=entry.duration,
                )
            )
        else:
            out.append(
                Window(entry.name, zone, tenants, start=parse_local(entry.start), end=parse_local(entry.end))
            )
    return tuple(out)


def _unique_names(label: str, doc: strictyaml.Document) -> list[errors.Problem]:
    problems = []
    seen: dict[str, int] = {}
    named: list[tuple[int, str]] = []  # (index, name) of every window with a name
    raw = doc.data.get("freeze") if isinstance(doc.data, dict) else None
    for i, item in enumerate(raw if isinstance(raw, list) else []):
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str):
            continue
        named.append((i, name))
        key = spec.identity(name)  # one name whatever its case or Unicode form, as everywhere
        if key in seen:
            problems.append(
                validation.at(
                    label,
                    doc,
                    ("freeze", i, "name"),
                    f"{validation.shown(name)} is already the name of freeze[{seen[key]}] "
                    "(compared ignoring case and Unicode form); rename one",
                )
            )
        seen.setdefault(key, i)
    for earlier, later in spec.look_alikes([name for _, name in named]):
        (j, first), (i, name) = named[earlier], named[later]
        problems.append(
            validation.at(
                label, doc, ("freeze", i, "name"), validation.looks_like(name, first, f"freeze[{j}]")
            )
        )
    return problems


def parse(label: str, raw: bytes) -> tuple[Window, ...]:
    """Read reconciler.yaml's bytes strictly; raise InputError listing every problem."""
    doc = strictyaml.parse(label, raw)
    if not isinstance(doc.data, dict):
        written = "a list" if isinstance(doc.data, list) else "a single value"
        raise errors.InputError.of(
            [
                errors.at(
                    label,
                    *strictyaml.position(doc.root, ()),
                    f"the file holds {written}; {FILE_NAME} is a mapping starting with `version: 1`",
                )
            ]
        )
    problems = _unique_names(label, doc)
    model = None
    try:
        model = SettingsFileModel.model_validate(doc.data)
    except ValidationError as exc:
        problems += validation.problems(
            label,
            doc,
            exc,
            root=SettingsFileModel,
            models=_MODELS,
            unions=_UNIONS,
            want={**tenantfile.WANT, **_WANT},
            item_want={**tenantfile.ITEM_WANT, **_ITEM_WANT},
            example={**tenantfile.EXAMPLE, **_EXAMPLE},
        )
    if problems or model is None:
        raise errors.InputError.of(problems)
    return _freeze(model)


def load(path: Path, label: str | None = None) -> tuple[Window, ...]:
    """The windows of a reconciler.yaml; none when the file does not exist. A link to nothing
    is an error: read as no file, it would turn every freeze off."""
    if not path.exists() and not path.is_symlink():
        return ()
    return parse(label or str(path), strictyaml.read_bytes(path))


def covered(window: Window, tenants: Iterable[str]) -> list[str]:
    return [t for t in tenants if window.covers(t)]


def json_schema() -> dict[str, Any]:
    """The JSON Schema of reconciler.yaml, for editors (schemas/reconciler.schema.json)."""
    schema = SettingsFileModel.model_json_schema()
    for model in schema.get("$defs", {}).values():
        props = model.get("properties", {})
        if "name" in props:  # `name: 2024` is text to the tool, a number to a YAML 1.2 editor
            props["name"]["type"] = ["string", "number"]
        if "tenants" in props:  # what _check_globs and _check_glob refuse, as far as a pattern can say
            props["tenants"]["minItems"] = 1
            part = "(?!-)" + _GLOB_PART.pattern  # a name begins with a letter or a digit
            props["tenants"]["items"]["pattern"] = "^" + part + "/" + part + "$"
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://osr-reconciler.invalid/schemas/reconciler.schema.json",
        **schema,
    }
