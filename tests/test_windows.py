"""Change windows (DESIGN §11): reading reconciler.yaml, deciding by time, and the commands.

Time is an input everywhere: the decisions take it as an argument, `reconciler windows` takes
`--at`, and plan/apply/drift read RECONCILER_NOW. No test sleeps or reads the clock.
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest
import yaml

from reconciler import cli as cli_mod
from reconciler import errors, freeze, render, stages, windows
from reconciler.commands import apply as apply_command
from tests.conftest import ALWAYS_PROCESS, Cli
from tests.inert import assert_markdown_inert
from tests.test_cli import TENANT, dump, seeded

CASES = Path(__file__).resolve().parent / "windows_cases"
REPO = Path(__file__).resolve().parent.parent
OSLO = windows.zoneinfo.ZoneInfo("Europe/Oslo")

# The example of DESIGN §11.
DESIGN_FILE = """\
version: 1
freeze:
  - name: month-end close
    schedule: "0 0 28-31 * *"     # cron (5 fields), as Argo CD sync windows
    duration: 6d
    timezone: Europe/Oslo
    tenants: ["acme/*"]           # customer/tenant globs; default every tenant
  - name: year-end audit
    start: 2026-12-28T00:00
    end: 2027-01-08T00:00
    timezone: Europe/Oslo
"""


def parse(text: str) -> tuple[windows.Window, ...]:
    return windows.parse("reconciler.yaml", text.encode())


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def oslo(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=OSLO)


MONTH_END, YEAR_END = parse(DESIGN_FILE)


def recurring(schedule: str, duration: str, zone: str = "Europe/Oslo") -> windows.Window:
    (window,) = parse(
        f'version: 1\nfreeze:\n  - name: w\n    schedule: "{schedule}"\n'
        f"    duration: {duration}\n    timezone: {zone}\n"
    )
    return window


# ---------------------------------------------------------------------------------------------
# Deciding: inside, outside, boundaries (start inclusive, end exclusive)


@pytest.mark.parametrize(
    ("at", "open_"),
    [
        ("2026-03-27T23:59:59+01:00", False),  # the minute before the 28th in Oslo
        ("2026-03-28T00:00:00+01:00", True),  # start: inclusive
        ("2026-03-31T12:00:00+02:00", True),
        ("2026-04-05T23:59:59+02:00", True),
        ("2026-04-06T00:00:00+02:00", False),  # end of the opening on the 31st: exclusive
        ("2026-04-15T12:00:00+02:00", False),
        ("2026-02-28T00:00:00+01:00", True),  # February has a 28th only: open until 6 March
        ("2026-03-05T23:59:00+01:00", True),
        ("2026-03-06T00:00:00+01:00", False),
    ],
)
def test_active_recurring_boundaries(at: str, open_: bool) -> None:
    assert (MONTH_END.active(utc(at)) is not None) is open_


def test_active_recurring_merges_overlapping_openings() -> None:
    # The openings of the 28th to the 31st overlap: one freeze, from the first to the last end.
    found = MONTH_END.active(utc("2026-03-30T12:00Z"))
    assert found == windows.Occurrence("month-end close", oslo("2026-03-28T00:00"), oslo("2026-04-06T00:00"))


@pytest.mark.parametrize(
    ("at", "open_"),
    [
        ("2026-12-27T23:59:59+01:00", False),
        ("2026-12-28T00:00:00+01:00", True),  # start: inclusive
        ("2027-01-07T23:59:59+01:00", True),
        ("2027-01-08T00:00:00+01:00", False),  # end: exclusive
        ("2027-12-28T00:00:00+01:00", False),  # once, not every year
    ],
)
def test_active_one_off_boundaries(at: str, open_: bool) -> None:
    assert (YEAR_END.active(utc(at)) is not None) is open_


def test_active_one_off_occurrence() -> None:
    assert YEAR_END.active(utc("2027-01-01T12:00Z")) == windows.Occurrence(
        "year-end audit", oslo("2026-12-28T00:00"), oslo("2027-01-08T00:00")
    )


def test_boundaries_are_instants_not_clock_readings() -> None:
    # 00:00 in Oslo is 23:00 UTC the day before in winter: the same instant, written in UTC.
    assert YEAR_END.active(utc("2026-12-27T23:00Z")) is not None
    assert YEAR_END.active(utc("2026-12-27T22:59Z")) is None


# ---------------------------------------------------------------------------------------------
# Daylight saving: wall-clock durations in the window's zone


def test_six_days_across_the_spring_change_is_six_calendar_days() -> None:
    # Summer time starts in Oslo on Sunday 29 March 2026 at 02:00 (clocks go to 03:00).
    window = recurring("0 0 27 3 *", "6d")
    found = window.active(utc("2026-03-30T12:00Z"))
    assert found is not None
    assert (found.start, found.end) == (oslo("2026-03-27T00:00"), oslo("2026-04-02T00:00"))
    assert found.end.utcoffset() == timedelta(hours=2) and found.start.utcoffset() == timedelta(hours=1)
    assert found.end.astimezone(UTC) - found.start.astimezone(UTC) == timedelta(hours=143)
    assert window.active(utc("2026-04-01T21:59:59Z")) is not None  # 23:59:59 summer time
    assert window.active(utc("2026-04-01T22:00Z")) is None  # 00:00 on 2 April on the clock


def test_six_days_across_the_autumn_change_is_six_calendar_days() -> None:
    # Summer time ends in Oslo on Sunday 25 October 2026 at 03:00 (clocks go back to 02:00).
    window = recurring("0 0 24 10 *", "6d")
    found = window.active(utc("2026-10-29T12:00Z"))
    assert found is not None
    assert (found.start, found.end) == (oslo("2026-10-24T00:00"), oslo("2026-10-30T00:00"))
    assert found.end.astimezone(UTC) - found.start.astimezone(UTC) == timedelta(hours=145)
    assert window.active(utc("2026-10-29T22:59:59Z")) is not None  # 23:59:59 winter time
    assert window.active(utc("2026-10-29T23:00Z")) is None


def test_hours_are_wall_clock_too() -> None:
    # 24h means the same clock time the next day, as 1d does, even over the spring change.
    window = recurring("0 12 28 3 *", "24h")
    assert window.active(utc("2026-03-29T09:59Z")) is not None  # 11:59 summer time
    assert window.active(utc("2026-03-29T10:00Z")) is None  # 12:00 summer time: 23h elapsed


def test_a_start_the_spring_change_skips_opens_when_the_clock_jumps() -> None:
    window = recurring("30 2 * * *", "1h")
    found = window.active(utc("2026-03-29T01:00Z"))  # 03:00 summer time, the jump
    assert found is not None
    assert (found.start, found.end) == (oslo("2026-03-29T03:00"), oslo("2026-03-29T03:30"))
    assert window.active(utc("2026-03-29T00:59Z")) is None  # 01:59 winter time


def test_a_start_the_autumn_change_repeats_is_its_first_pass() -> None:
    window = recurring("30 2 * * *", "1h")
    first_pass = utc("2026-10-25T00:30+00:00")  # 02:30 summer time
    found = window.active(first_pass)
    assert found is not None and found.start.astimezone(UTC) == first_pass
    assert window.active(utc("2026-10-25T00:29Z")) is None
    # 02:30 + 1h on the clock is 03:30 winter time: two hours of elapsed time that night.
    assert found.end == oslo("2026-10-25T03:30") and found.end.utcoffset() == timedelta(hours=1)
    assert window.active(utc("2026-10-25T02:29Z")) is not None
    assert window.active(utc("2026-10-25T02:30Z")) is None


# ---------------------------------------------------------------------------------------------
# Upcoming windows (within 7 days) and tenant globs


@pytest.mark.parametrize(
    ("at", "opens"),
    [
        ("2026-03-21T00:00+01:00", "2026-03-28T00:00+01:00"),  # exactly 7 days ahead: shown
        ("2026-03-20T23:59+01:00", None),  # a minute more than 7 days: not yet
        ("2026-03-30T12:00Z", None),  # open now; the next (28 April) is more than 7 days away
        ("2026-04-21T00:00+02:00", "2026-04-28T00:00+02:00"),
    ],
)
def test_upcoming_within_seven_days(at: str, opens: str | None) -> None:
    found = MONTH_END.upcoming(utc(at), timedelta(days=7))
    assert (found.start.isoformat(timespec="minutes") if found else None) == opens


@pytest.mark.parametrize(
    ("globs", "tenant", "covered"),
    [
        ('["acme/*"]', "acme/acme-norway", True),
        ('["acme/*"]', "nordlys/nordlys-main", False),
        ('["*/acme-norway"]', "acme/acme-norway", True),
        ('["*/acme-norway"]', "acme/acme-sweden", False),
        ('["acme/acme-s*", "nordlys/*"]', "nordlys/nordlys-main", True),
        (None, "anyone/at-all", True),  # no tenants key: every tenant
    ],
)
def test_covers_tenant_globs(globs: str | None, tenant: str, covered: bool) -> None:
    (window,) = parse(
        "version: 1\nfreeze:\n  - name: w\n    start: 2026-12-28\n"
        "    end: 2027-01-08\n    timezone: UTC\n" + (f"    tenants: {globs}\n" if globs else "")
    )
    assert window.covers(tenant) is covered


def test_freeze_of_per_tenant() -> None:
    statuses = windows.status((MONTH_END, YEAR_END), utc("2026-12-22T12:00Z"))
    acme = windows.freeze_of(statuses, "acme/acme-norway")
    nordlys = windows.freeze_of(statuses, "nordlys/nordlys-main")
    assert acme is not None and acme.active is None and acme.upcoming is not None
    # Both open on 28 December at midnight: the one that ends last is named.
    assert acme.upcoming.window == "year-end audit"
    assert nordlys == windows.Freeze(None, YEAR_END.active(utc("2026-12-28T12:00Z")), soon=True)
    assert (
        windows.freeze_of(windows.status((MONTH_END,), utc("2026-12-22T12:00Z")), "nordlys/nordlys-main")
        is None
    )


def test_the_next_window_is_told_however_far_ahead() -> None:
    """DESIGN §11: a plan shows the next window to open, not only one within a week; within a
    week it is `soon` (a warning in plans), further ahead a note."""
    far = windows.freeze_of(windows.status((MONTH_END, YEAR_END), utc("2026-05-01T12:00Z")), "nordlys/x")
    assert far == windows.Freeze(None, YEAR_END.next_opening(utc("2026-05-01T12:00Z")), soon=False)
    assert far.upcoming is not None and far.upcoming.start == datetime(2026, 12, 28, tzinfo=OSLO)
    # A schedule's next opening however far ahead: 29 February's is four years away (it was
    # looked for 400 days ahead, and a one-off window of 2029 was named as next before it).
    (leap, migration) = parse(
        'version: 1\nfreeze:\n  - name: leap\n    schedule: "0 0 29 2 *"\n    duration: 1d\n'
        "    timezone: UTC\n  - name: migration\n    start: 2029-06-01T00:00\n"
        "    end: 2029-06-08T00:00\n    timezone: UTC\n"
    )
    assert leap.next_opening(utc("2028-03-01T00:00Z")) == windows.Occurrence(
        "leap", datetime(2032, 2, 29, tzinfo=UTC), datetime(2032, 3, 1, tzinfo=UTC)
    )
    found = windows.freeze_of(windows.status((migration, leap), utc("2026-03-30T12:00Z")), "a/b")
    assert found is not None and found.upcoming is not None
    assert (found.upcoming.window, found.upcoming.start) == ("leap", datetime(2028, 2, 29, tzinfo=UTC))


# ---------------------------------------------------------------------------------------------
# Reading the file: the malformed corpus, each with its file:line:col message

MALFORMED = [
    ("unknown-key", "7:5", "freeze[0]: unknown key 'tenant'; did you mean 'tenants'?"),
    ("duplicate-key", "6:5", "duplicate key 'duration' (first at line 5, column 5); keep one"),
    (
        "bad-cron",
        "4:15",
        "freeze[0].schedule: '0 0 28-32 * *' is not a cron schedule (Bad day-of-month); write minute hour",
    ),
    ("cron-six-fields", "4:15", "has 6 field(s); write 5: minute hour day-of-month month"),
    (
        "unknown-zone",
        "6:15",
        "freeze[0].timezone: unknown time zone 'Europe/Olso'; did you mean 'Europe/Oslo'?",
    ),
    ("zone-case", "6:15", "unknown time zone 'europe/oslo'; did you mean 'Europe/Oslo'?"),
    (
        "end-before-start",
        "5:5",
        "freeze[0]: end 2026-12-28T00:00 is not after start "
        "2027-01-08T00:00; write an end later than the start",
    ),
    ("start-with-offset", "4:12", "has an offset; write the local time without one"),
    ("not-a-date", "4:12", "'2026-13-28T00:00' is not a local date and time; write YYYY-MM-DDTHH:MM"),
    ("bad-duration", "5:15", "'6 days' is not a duration; write days, hours and minutes such as 6d"),
    ("missing-timezone", "3:5", "freeze[0]: missing key 'timezone'; add `timezone: Europe/Oslo`"),
    ("bad-glob", "7:15", "'acme' is not a CUSTOMER/TENANT pattern; write e.g. acme/*"),
    # An unclosed [ is itself to fnmatch, which no slug holds: a window that freezes nothing.
    ("unclosed-glob-set", "7:25", "'acme/acme-norway[' is not a CUSTOMER/TENANT pattern"),
    ("empty-glob-range", "7:15", "'acme/[z-a]*' has the range z-a, which holds nothing; write a-z"),
    ("empty-tenants", "7:14", "an empty list covers no tenant"),
    ("tenants-left-empty", "7:13", "freeze[0].tenants: is empty; write a list of CUSTOMER/TENANT globs"),
    ("machine-zone", "6:15", "'localtime' is no place's zone (the machine's own, or a placeholder)"),
    ("schedule-and-start", "6:5", "not both; remove start"),
    ("duplicate-name", "7:11", "freeze[1].name: 'close' is already the name of freeze[0]"),
    (  # a Cyrillic С: plans, refusals and the audit log showed two windows as one
        "look-alike-name",
        "7:11",
        "freeze[1].name: 'Сlose' looks the same as 'Close', the name of freeze[0], and is another name",
    ),
    ("unquoted-star", "4:16", "quote a value that starts with * or &"),
    ("version-2", "1:10", "version 2 is not a format this reconciler reads; write `version: 1`"),
]


def test_corpus_has_a_case_per_file() -> None:
    assert sorted(p.stem for p in CASES.glob("*.yaml")) == sorted(name for name, _, _ in MALFORMED)


@pytest.mark.parametrize(("name", "at", "message"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_load_malformed_file(name: str, at: str, message: str) -> None:
    path = CASES / f"{name}.yaml"
    with pytest.raises(errors.InputError) as caught:
        windows.load(path)
    lines = caught.value.lines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{path}:{at}: ") and message in lines[0], lines[0]


def test_a_window_with_seconds_shows_them_everywhere() -> None:
    """start: ...T00:00:45 was shown as 00:00: a refusal then named an end already past."""
    (window,) = parse(
        "version: 1\nfreeze:\n  - name: w\n    start: 2026-12-28T00:00:45\n"
        "    end: 2027-01-08T00:00:45\n    timezone: Europe/Oslo\n"
    )
    status = windows.status((window,), utc("2027-01-07T23:00:30Z"))
    found = windows.freeze_of(status, "acme/acme-norway")
    assert found is not None and found.active is not None
    assert freeze.until_text(found.active) == 'change window "w" until 2027-01-08 00:00:45 Europe/Oslo'
    assert render.occurrence_obj(found.active)["end"] == "2027-01-08T00:00:45+01:00"
    assert "from 2026-12-28 00:00:45 to 2027-01-08 00:00:45" in window.describe()


def test_a_one_off_window_the_clock_skips_is_an_error() -> None:
    """02:00 to 02:59 on the spring change is no time at all in Oslo: announced, it froze nothing."""
    with pytest.raises(errors.InputError) as refused:
        parse(
            "version: 1\nfreeze:\n  - name: gap\n    start: 2026-03-29T02:00\n"
            "    end: 2026-03-29T02:59\n    timezone: Europe/Oslo\n"
        )
    assert "is no time at all in Europe/Oslo: the clock skips it" in refused.value.problems[0].message


def test_a_freeze_that_never_closes_is_followed_400_days_each_way_without_a_gap() -> None:
    """Daily openings of two days never leave a gap: the backward merge used up the forward
    one's horizon (the end moved by a day each day) and a next opening was invented after it."""
    (window,) = parse(
        'version: 1\nfreeze:\n  - {name: always, schedule: "0 0 * * *", duration: 2d, timezone: UTC}\n'
    )
    at = utc("2026-12-29T12:00Z")
    active = window.active(at)
    assert active is not None
    assert at - active.start >= timedelta(days=400) and active.end - at >= timedelta(days=400)
    assert window.upcoming(at, timedelta(days=7)) is None


def test_a_file_holds_at_most_max_windows() -> None:
    """Each window is judged on every plan: 5,500 made a one-tenant plan take minutes."""
    entry = '  - {name: w%d, schedule: "* * * * *", duration: 1m, timezone: UTC}\n'
    text = "version: 1\nfreeze:\n" + "".join(entry % i for i in range(windows.MAX_WINDOWS))
    assert len(parse(text)) == windows.MAX_WINDOWS
    with pytest.raises(errors.InputError) as refused:
        parse(text + entry % windows.MAX_WINDOWS)
    assert refused.value.problems[0].message == (
        f"freeze: has {windows.MAX_WINDOWS + 1} items, over the limit of {windows.MAX_WINDOWS}; keep fewer"
    )


def test_example_file_reads_as_the_design_example() -> None:
    assert windows.load(REPO / "examples" / "reconciler.yaml") == (MONTH_END, YEAR_END)


def test_load_missing_file_means_no_windows(tmp_path: Path) -> None:
    assert windows.load(tmp_path / "reconciler.yaml") == ()


def test_editor_schema_accepts_the_design_example_and_rejects_typos() -> None:
    schema = json.loads((REPO / "schemas" / "reconciler.schema.json").read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    assert not list(
        validator.iter_errors(
            yaml.safe_load(
                DESIGN_FILE.replace("2026-12-28T00:00", '"2026-12-28T00:00"').replace(
                    "2027-01-08T00:00", '"2027-01-08T00:00"'
                )
            )
        )
    )
    typo = {
        "version": 1,
        "freeze": [
            {"name": "x", "schedule": "0 0 * * *", "duration": "1d", "timezone": "UTC", "tenant": ["acme/*"]}
        ],
    }
    assert list(validator.iter_errors(typo))


# ---------------------------------------------------------------------------------------------
# `reconciler windows [--at TIME]` (in-process)


def run(
    root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    monkeypatch.chdir(root)
    code = cli_mod.main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / ".git").mkdir()
    for key in ("acme/acme-norway", "acme/acme-sweden", "nordlys/nordlys-main"):
        (tmp_path / "tenants" / key).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "tenants" / f"{key}.yaml").write_text("version: 1\n")
    (tmp_path / "reconciler.yaml").write_text(DESIGN_FILE)
    return tmp_path


def test_windows_lists_windows_and_the_tenants_covered(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(repo, monkeypatch, capsys, "windows", "--at", "2026-03-30T12:00Z")
    assert code == 0
    assert out == (
        "Change windows at 2026-03-30 12:00 UTC:\n"
        '"month-end close": every "0 0 28-31 * *" for 6d (Europe/Oslo); tenants: acme/*\n'
        "  OPEN since 2026-03-28 00:00 Europe/Oslo until 2026-04-06 00:00 Europe/Oslo: apply "
        "refuses the tenants below\n"
        "  next opens 2026-04-28 00:00 Europe/Oslo until 2026-05-06 00:00 Europe/Oslo\n"
        "  frozen now: acme/acme-norway, acme/acme-sweden\n"
        '"year-end audit": from 2026-12-28 00:00 to 2027-01-08 00:00 (Europe/Oslo); tenants: '
        "every tenant\n"
        "  next opens 2026-12-28 00:00 Europe/Oslo until 2027-01-08 00:00 Europe/Oslo\n"
        "  covers: acme/acme-norway, acme/acme-sweden, nordlys/nordlys-main\n"
    )
    code, out, _ = run(repo, monkeypatch, capsys, "windows", "--at", "2027-01-10T00:00+01:00")
    assert "  does not open again\n" in out and "OPEN" not in out


def test_windows_reads_reconciler_now(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RECONCILER_NOW", "2027-01-01T12:00+01:00")
    code, out, _ = run(repo, monkeypatch, capsys, "windows")
    assert code == 0 and "Change windows at 2027-01-01 11:00 UTC:" in out
    assert "frozen now: acme/acme-norway, acme/acme-sweden, nordlys/nordlys-main" in out


@pytest.mark.parametrize(
    "args",
    [
        ("windows", "--at", "2026-03-30T12:00"),
        ("windows", "--at", "tomorrow"),
        ("windows", "--at", ""),  # an empty $VAR in a script: not the system clock
    ],
)
def test_windows_at_needs_an_offset(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: tuple[str, ...]
) -> None:
    code, _, err = run(repo, monkeypatch, capsys, *args)
    assert code == 1
    assert err.startswith(f"error: --at {args[-1]!r}: write a time with its UTC offset")


@pytest.mark.parametrize(
    ("at", "said"),
    [
        ("2026-03-30t12:00z", "Change windows at 2026-03-30 12:00 UTC:"),  # RFC 3339 allows lowercase
        ("2026-02-29T12:00Z", "error: --at '2026-02-29T12:00Z': no such time (day is out of range"),
        ("2026-03-30T24:00Z", "error: --at '2026-03-30T24:00Z': no such time (hour must be in 0..23)"),
        # an offset no clock has: it was told to write an offset, which it had
        ("2026-03-30T12:00+25:00", "error: --at '2026-03-30T12:00+25:00': no such UTC offset; write one"),
    ],
)
def test_windows_at_reads_rfc_3339_and_names_an_impossible_time(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], at: str, said: str
) -> None:
    (repo / "reconciler.yaml").write_text(DESIGN_FILE, encoding="utf-8")
    code, out, err = run(repo, monkeypatch, capsys, "windows", "--at", at)
    assert said in out + err and code == (1 if said.startswith("error") else 0)


def test_a_reconciler_yaml_linked_to_nothing_is_an_error_not_no_windows(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Read as no file, a broken link would turn every freeze off."""
    (repo / "reconciler.yaml").unlink(missing_ok=True)
    (repo / "reconciler.yaml").symlink_to(repo / "gone.yaml")
    code, _, err = run(repo, monkeypatch, capsys, "windows")
    assert code == 1 and "reconciler.yaml: cannot read" in err


def test_windows_says_how_far_it_looked(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Both windows open again, however far ahead: `does not open again` was said of the 29
    February schedule (a 400-day look-ahead), whose next opening is 15 months away."""
    (repo / "reconciler.yaml").write_text(
        "version: 1\nfreeze:\n"
        "  - {name: far, start: 2028-12-28T00:00, end: 2029-01-08T00:00, timezone: UTC}\n"
        '  - {name: leap, schedule: "0 0 29 2 *", duration: 1d, timezone: UTC}\n',
        encoding="utf-8",
    )
    code, out, _ = run(repo, monkeypatch, capsys, "windows", "--at", "2026-11-26T12:00Z")
    assert code == 0
    assert "next opens 2028-12-28 00:00 UTC until 2029-01-08 00:00 UTC" in out
    assert "next opens 2028-02-29 00:00 UTC until 2028-03-01 00:00 UTC" in out
    assert "does not open" not in out


def test_windows_without_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / ".git").mkdir()
    code, out, err = run(tmp_path, monkeypatch, capsys, "windows", "--at", "2026-03-30T12:00Z")
    assert (code, out) == (0, "") and "reconciler.yaml does not exist" in err


def test_malformed_file_is_found_at_the_repository_root(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / "reconciler.yaml").write_bytes((CASES / "unknown-zone.yaml").read_bytes())
    (repo / "tenants").mkdir(exist_ok=True)
    code, _, err = run(repo / "tenants", monkeypatch, capsys, "windows")
    assert code == 1
    assert err == (
        f"error: {repo / 'reconciler.yaml'}:6:15: freeze[0].timezone: unknown time "
        "zone 'Europe/Olso'; did you mean 'Europe/Oslo'?\n"
    )


# ---------------------------------------------------------------------------------------------
# plan, drift, apply on the store matrix (the console script, as CI runs it)

CHANGED = TENANT.replace("[F0001, F0002]", "[F0001, F0002, F0003]")  # one update, no cascade
INSIDE = {"RECONCILER_NOW": "2026-03-30T12:00Z"}
BEFORE = {"RECONCILER_NOW": "2026-03-27T22:00Z"}  # 23:00 in Oslo, an hour before the close


def frozen_repo(cli: Cli) -> None:
    seeded(cli, CHANGED)
    cli.write("reconciler.yaml", DESIGN_FILE)


def test_apply_refuses_inside_a_window_and_override_is_audited(cli: Cli) -> None:
    frozen_repo(cli)
    before = dump(cli)
    refused = cli("apply", "--auto-approve", env=INSIDE)
    assert refused.code == 1
    assert refused.err.splitlines()[-1] == (
        'error: refused: acme/acme-norway is inside change window "month-end close" until '
        "2026-04-06 00:00 Europe/Oslo (2026-04-05 22:00 UTC); nothing was applied. Apply after "
        "it ends, or pass --override-freeze REASON"
    )
    assert dump(cli) == before
    assert json.loads(cli("history", "--format", "json").out) == []

    done = cli("apply", "--auto-approve", "--override-freeze", "INC-7: auditor's fix", env=INSIDE)
    assert done.code == 0, done.err
    assert done.out.rstrip().splitlines()[-1] == (
        "Frozen: 1 tenant(s) with changes are inside a change window; allowed by --override-freeze (audited)"
    )  # it said apply refuses them, as it let them through
    (entry,) = json.loads(cli("history", "--format", "json").out)
    assert entry["action"] == "update" and entry["freeze_override"] == (
        'window "month-end close" until 2026-04-06 00:00 Europe/Oslo: INC-7: auditor\'s fix'
    )
    assert (
        'override-freeze: "window \\"month-end close\\" until 2026-04-06 00:00 Europe/Oslo: INC-7: '
        "auditor's fix\"\n"
    ) in cli("history").out  # in quotes a reason cannot close (its `]` ended a bracket)


def test_tenant_files_of_another_work_tree_are_refused_not_applied_past_their_freeze(
    cli: Cli, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Run from outside the repository with its tenants/ as PATH, apply found no reconciler.yaml
    where it ran, and applied inside the freeze (exit 0): every command now refuses tenant files
    of another git work tree than its own."""
    frozen_repo(cli)
    before = dump(cli)
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    tenants = str(cli.root / "tenants")
    for args in (["apply", tenants, "--auto-approve"], ["plan", tenants], ["validate", tenants]):
        refused = cli(*args, env=INSIDE, cwd=elsewhere)
        assert refused.code == 1, (args, refused.both)
        assert refused.err == (
            f"error: {tenants}: the tenant files are in the git work tree {cli.root.resolve()}, and this "
            f"command runs in {elsewhere.resolve()}; run it from {cli.root.resolve()} (its change "
            "windows, secrets folder and store are found from there)\n"
        ), args
    assert dump(cli) == before
    assert cli("validate", "tenants/acme/acme-norway.yaml").code == 0  # from the root: as before
    # A saved plan names its tenant files: `apply --plan` from elsewhere skipped the freeze too
    # (the on-merge job of docs/ci.md), and applied (exit 0, no override recorded).
    saved = cli("plan", tenants, "--out", str(elsewhere / "saved.plan"), env=INSIDE)
    assert saved.code == 0, saved.err
    refused = cli(
        "apply", "--plan", str(elsewhere / "saved.plan"), "--auto-approve", env=INSIDE, cwd=elsewhere
    )
    # The plan names its files from the repository's root: from a folder outside any
    # repository, they are not found there (and were refused as another work tree's before)
    assert refused.code == 1 and "tenants: no such file or directory" in refused.err, refused.both
    assert dump(cli) == before
    assert json.loads(cli("history", "--format", "json").out) == []


def test_a_tenants_folder_linked_into_another_work_tree_is_refused_without_a_path(
    cli: Cli, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """tenants/ as a link into another work tree, and no PATH given: apply read the other
    tree's files with this root's (no) reconciler.yaml and applied inside their freeze, while
    the same folder given as PATH was refused."""
    frozen_repo(cli)
    before = dump(cli)
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    subprocess.run(["git", "init", "-q", str(elsewhere)], check=True)
    (elsewhere / "tenants").symlink_to(cli.root / "tenants")
    store_args = ["--store", cli.env["RECONCILER_STORE"]]
    for args in (["apply", "--auto-approve"], ["plan"]):
        refused = cli(*args, *store_args, env=INSIDE, cwd=elsewhere)
        assert refused.code == 1, (args, refused.both)
        assert "the tenant files are in the git work tree " in refused.err, refused.both
    assert dump(cli) == before


def test_tenant_files_in_a_repository_inside_the_root_s_are_the_root_s(cli: Cli) -> None:
    """tenants/ as a git submodule (a work tree inside the root's): `plan --out` then
    `apply --plan` from the root, the on-merge job, was refused ("run it from .../tenants",
    the wrong root: no reconciler.yaml there). Its files are the root's, windows and all."""
    frozen_repo(cli)
    subprocess.run(["git", "init", "-q", str(cli.root / "tenants")], check=True)
    saved = cli("plan", "--out", "saved.plan", env=INSIDE)
    assert saved.code == 0 and "frozen" in saved.out, saved.both
    refused = cli("apply", "--plan", "saved.plan", "--auto-approve", env=INSIDE)  # the root's windows hold
    assert refused.code == 1 and "is inside change window" in refused.err, refused.both
    assert cli("apply", "--plan", "saved.plan", "--auto-approve", env=BEFORE).code == 0
    assert cli("validate", "tenants/acme/acme-norway.yaml").code == 0


def test_apply_outside_a_window_records_no_override(cli: Cli) -> None:
    frozen_repo(cli)
    done = cli("apply", "--auto-approve", "--override-freeze", "not needed", env=BEFORE)
    assert done.code == 0, done.err
    (entry,) = json.loads(cli("history", "--format", "json").out)
    assert entry["freeze_override"] is None


@pytest.mark.skipif(ALWAYS_PROCESS, reason="the prompt is answered by this process")
def test_a_window_that_opens_while_the_prompt_waits_is_judged_at_the_answer(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plan is shown before the window; the person answers `yes` once it has opened."""
    frozen_repo(cli)
    before = dump(cli)

    def answered_inside_the_window(*_: object) -> None:
        os.environ.update(INSIDE)  # the run's environment: put back when it ends

    monkeypatch.setattr(apply_command, "_confirm", answered_inside_the_window)
    refused = cli("apply", env=BEFORE)
    assert refused.code == 1
    assert 'refused: acme/acme-norway is inside change window "month-end close"' in refused.err
    assert dump(cli) == before
    done = cli("apply", "--override-freeze", "INC-8", env=BEFORE)
    assert done.code == 0, done.err
    assert done.err.count("Overriding the freeze of acme/acme-norway") == 1
    (entry,) = json.loads(cli("history", "--format", "json").out)
    assert entry["freeze_override"].endswith(": INC-8")


def test_saved_plan_made_before_a_window_is_refused_inside_it(cli: Cli) -> None:
    frozen_repo(cli)
    made = cli("plan", "--out", "plan.json", env=BEFORE)
    assert made.code == 0, made.err
    assert 'note: change window "month-end close" opens 2026-03-28 00:00 Europe/Oslo' in made.out
    before = dump(cli)
    refused = cli("apply", "--plan", "plan.json", "--auto-approve", env=INSIDE)
    assert refused.code == 1 and 'inside change window "month-end close"' in refused.err
    assert dump(cli) == before
    done = cli("apply", "--plan", "plan.json", "--auto-approve", "--override-freeze", "INC-9", env=INSIDE)
    assert done.code == 0, done.err


def test_plan_shows_the_window_in_every_format(cli: Cli) -> None:
    frozen_repo(cli)
    text = cli("plan", env=INSIDE)
    assert text.code == 0
    assert (
        '  ! frozen: change window "month-end close" until 2026-04-06 00:00 Europe/Oslo; '
        "apply refuses this tenant's changes without --override-freeze REASON"
    ) in text.out
    assert text.out.rstrip().endswith("apply refuses them without --override-freeze REASON")

    markdown = cli("plan", "--format", "markdown", env=INSIDE).out
    window = "change window `month-end close` until " + render.md_text("2026-04-06 00:00 Europe/Oslo")
    # after the summary (DESIGN §7: summary first), before the tenants' sections
    summary, rest = markdown.split("**\n\n", 1)
    assert summary.startswith("## osr-reconciler plan\n\n| create |")
    assert rest.startswith(f"> [!WARNING]\n> - **{window}**: `acme/acme-norway`;"), rest

    obj = json.loads(cli("plan", "--format", "json", env=INSIDE).out)  # schema-checked by Cli
    assert obj["tenants"][0]["freeze"] == {
        "active": {
            "window": "month-end close",
            "start": "2026-03-28T00:00+01:00",
            "end": "2026-04-06T00:00+02:00",
            "timezone": "Europe/Oslo",
        },
        "next": {  # the next opening, weeks ahead (DESIGN §11: not only one within a week)
            "window": "month-end close",
            "start": "2026-04-28T00:00+02:00",
            "end": "2026-05-06T00:00+02:00",
            "timezone": "Europe/Oslo",
        },
    }
    outside = json.loads(cli("plan", "--format", "json", env=OUTSIDE).out)
    assert outside["tenants"][0]["freeze"] == {
        "active": None,
        "next": {
            "window": "month-end close",
            "start": "2026-06-28T00:00+02:00",
            "end": "2026-07-06T00:00+02:00",
            "timezone": "Europe/Oslo",
        },
    }


OUTSIDE = {"RECONCILER_NOW": "2026-06-15T00:00Z"}  # 13 days before the June close opens


def test_a_window_weeks_ahead_is_a_note_and_a_quiet_tenant_stays_quiet(cli: Cli) -> None:
    """Every tenant is told its next window, however far ahead: a tenant with changes under its
    name, the tenants without changes in one line (a fleet's plan does not grow a section per
    tenant for a close weeks away); in markdown a note, within a week a warning."""
    frozen_repo(cli)
    opens = (
        'change window "month-end close" opens 2026-06-28 00:00 Europe/Oslo '
        "(until 2026-07-06 00:00 Europe/Oslo)"
    )
    text = cli("plan", env=OUTSIDE)
    assert text.code == 0, text.err
    assert f"acme/acme-norway\n  note: {opens}\n  ~ update" in text.out
    markdown = cli("plan", "--format", "markdown", env=OUTSIDE).out
    assert markdown.split("**\n\n", 1)[1].startswith("> [!NOTE]\n> - change window `month-end close` opens")
    soon = cli("plan", "--format", "markdown", env={"RECONCILER_NOW": "2026-06-25T00:00Z"}).out
    assert soon.split("**\n\n", 1)[1].startswith("> [!WARNING]\n> - change window `month-end close` opens")

    cli.write("tenants/acme/acme-norway.yaml", TENANT)
    quiet = cli("plan", env=OUTSIDE)
    assert quiet.out.startswith(f"No changes: acme/acme-norway.\n  note: {opens} for acme/acme-norway\n\n")


def test_the_comment_says_in_the_pipeline_s_words_what_lets_a_frozen_apply_through(cli: Cli) -> None:
    """DESIGN §10: the comment tells the reviewer, in the pipeline's terms, what lets a guarded
    apply through; a window's refusal was the one guard without a hint (and no example had a
    way to pass --override-freeze)."""
    frozen_repo(cli)
    hint = {
        **INSIDE,
        "RECONCILER_HINT_OVERRIDE_FREEZE": "add the label reconciler:override-freeze before merging",
    }
    markdown = cli("plan", "--format", "markdown", env=hint).out
    warning = markdown.split("> [!WARNING]\n", 1)[1].split("\n\n", 1)[0]
    assert warning.endswith(
        "> To let the apply through: add the label reconciler\\:override\\-freeze before merging."
    ), warning
    # Only where a tenant with changes is frozen: a window weeks ahead refuses nothing yet.
    assert "To let the apply through" not in cli("plan", "--format", "markdown", env={**hint, **OUTSIDE}).out


def test_drift_mentions_the_open_window(cli: Cli) -> None:
    frozen_repo(cli)
    drift = cli("drift", env=INSIDE)
    assert drift.code == 2
    assert (
        '  frozen: change window "month-end close" until 2026-04-06 00:00 Europe/Oslo; changes '
        "made during it may be intended: do not revert them before it ends"
    ) in drift.out
    obj = json.loads(cli("drift", "--format", "json", env=INSIDE).out)  # schema-checked by Cli
    assert obj["tenants"][0]["freeze"]["active"]["window"] == "month-end close"


def test_a_window_name_is_inert_in_markdown(cli: Cli) -> None:
    """reconciler.yaml comes from a pull request too: its window names stay text on GitHub."""
    frozen_repo(cli)
    hostile = "@octocat [click](https://evil.example) <img src=x onerror=alert(1)> ```"
    cli.write("reconciler.yaml", DESIGN_FILE.replace("month-end close", f"'{hostile}'"))
    drift = cli("drift", "--format", "markdown", env=INSIDE)
    assert drift.code == 2, drift.err
    assert "frozen: change window ```` @octocat" in drift.out, drift.out
    assert_markdown_inert(drift.out, headings={"osr-reconciler drift", "`acme/acme-norway`"}, sections=0)
    plan = cli("plan", "--format", "markdown", env=INSIDE)
    assert plan.code == 0, plan.err
    assert_markdown_inert(
        plan.out, headings={"osr-reconciler plan"}, sections=plan.out.count("<details><summary>")
    )


def test_bad_reconciler_now_and_reason_are_input_errors(cli: Cli) -> None:
    frozen_repo(cli)
    bad_now = cli("plan", env={"RECONCILER_NOW": "2026-03-30 noon"})
    assert bad_now.code == 1 and "RECONCILER_NOW '2026-03-30 noon': write a time" in bad_now.err
    blank = cli("apply", "--auto-approve", "--override-freeze", "  ", env=INSIDE)
    assert blank.code == 1 and "--override-freeze: write why" in blank.err


def test_the_stages_look_for_the_file_windows_reads() -> None:
    """stages names reconciler.yaml itself, so that a repository without one never imports
    windows: the two names must agree."""
    assert stages.WINDOWS_FILE == windows.FILE_NAME


def test_a_window_name_in_two_unicode_forms_is_one_name(tmp_path: Path) -> None:
    """Björn typed on macOS (NFD) and on Windows (NFC) is one name, as it is for connections."""
    text = (CASES / "duplicate-name.yaml").read_text(encoding="utf-8")
    text = text.replace("name: Close", "name: Bj\u00f6rn close").replace(
        "name: close", "name: BJO\u0308RN CLOSE"
    )
    path = tmp_path / "reconciler.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(errors.InputError) as caught:
        windows.load(path)
    (line,) = caught.value.lines()
    assert "is already the name of freeze[0] (compared ignoring case and Unicode form)" in line


@pytest.mark.parametrize(
    ("glob", "refused"),
    [
        ("acme/-norway", True),  # a name begins with a letter or a digit
        ("-acme/*", True),
        ("acme/[--]", True),
        ("acme/[!a-z0-9]*", True),
        ("acme/a[!a-z0-9-]*", True),  # a set that holds no character a name has
        ("acme/*-norway", False),
        ("acme/?cme-*", False),
        ("acme/a[!-]me-norway", False),
        ("acme/[a-c0]*", False),
        ("*/*", False),
    ],
)
def test_a_glob_no_tenant_name_can_match_is_an_error(glob: str, refused: bool) -> None:
    """docs/windows.md: a pattern no tenant could match is an error, not a window that
    freezes nothing; `acme/-norway` was accepted (a name begins with a letter or a digit)."""
    text = (
        "version: 1\nfreeze:\n  - name: w\n    start: 2026-12-28\n    end: 2027-01-08\n"
        f'    timezone: UTC\n    tenants: ["{glob}"]\n'
    )
    if not refused:
        parse(text)
        return
    with pytest.raises(errors.InputError) as caught:
        parse(text)
    assert f"'{glob}' can match no tenant: customer and tenant names are" in caught.value.lines()[0]


def test_the_characters_a_glob_is_held_to_are_those_of_a_tenant_name() -> None:
    """The pattern check asks of checks.SLUG_CHARS and SLUG_FIRST what checks.SLUG_RE asks of a
    name: if the two ever part, a window could freeze nothing or refuse a real tenant."""
    from reconciler import checks

    ascii_ = [chr(i) for i in range(32, 127)]
    assert {c for c in ascii_ if checks.SLUG_RE.fullmatch(c)} == set(checks.SLUG_FIRST)
    assert {c for c in ascii_ if checks.SLUG_RE.fullmatch("a" + c)} == set(checks.SLUG_CHARS)


def test_a_nightly_opening_the_spring_change_empties_is_not_announced() -> None:
    """02:30 for 30m in Oslo on the spring change is 03:00 to 03:00: `windows` announced it as
    the next opening ("opens 03:00 until 03:00"), which freezes nothing; the next is a night later."""
    (window,) = parse(
        'version: 1\nfreeze:\n  - name: nightly\n    schedule: "30 2 * * *"\n    duration: 30m\n'
        "    timezone: Europe/Oslo\n"
    )
    found = window.upcoming(utc("2026-03-29T00:59Z"), timedelta(days=7))
    assert found is not None
    assert (found.start.isoformat(), found.end.isoformat()) == (
        "2026-03-30T02:30:00+02:00",
        "2026-03-30T03:00:00+02:00",
    )
    assert window.active(utc("2026-03-29T01:00Z")) is None  # 03:00 summer time: nothing open
