"""When results are coloured: one pure decision, as a table, and what the CLI then prints."""

from __future__ import annotations

import pytest

from reconciler.commands import options
from tests.inprocess import InProcess, run_fixture  # noqa: F401  (the `run` fixture)
from tests.test_cli import LIVE, TENANT


@pytest.mark.parametrize(
    ("isatty", "env", "no_color", "colour"),
    [
        (True, {}, False, True),
        (False, {}, False, False),  # a pipe, a file, a CI log
        (True, {}, True, False),  # --no-color
        (True, {"NO_COLOR": "1"}, False, False),
        (True, {"NO_COLOR": ""}, False, True),  # no-color.org: set and not empty
        (False, {"FORCE_COLOR": "1"}, False, True),
        (False, {"FORCE_COLOR": "true"}, False, True),
        (False, {"FORCE_COLOR": "0"}, False, False),
        (False, {"FORCE_COLOR": ""}, False, False),
        (False, {"CLICOLOR_FORCE": "1"}, False, True),
        (False, {"CLICOLOR_FORCE": "0"}, False, False),
        (False, {"FORCE_COLOR": "1"}, True, False),  # the flag wins
        (False, {"FORCE_COLOR": "1", "NO_COLOR": "1"}, False, False),  # NO_COLOR wins
        (True, {"TERM": "dumb"}, False, False),
        (False, {"TERM": "dumb", "CLICOLOR_FORCE": "1"}, False, True),
        (True, {"CLICOLOR": "0"}, False, False),
        (True, {"CLICOLOR": "1"}, False, True),
    ],
)
def test_use_color(isatty: bool, env: dict[str, str], no_color: bool, colour: bool) -> None:
    assert options.use_color(isatty=isatty, env=env, no_color=no_color) is colour


@pytest.mark.parametrize(
    ("args", "env", "colour"),
    [
        ((), {}, False),
        ((), {"FORCE_COLOR": "1"}, True),
        ((), {"CLICOLOR_FORCE": "1"}, True),
        (("--no-color",), {"FORCE_COLOR": "1"}, False),
        ((), {"FORCE_COLOR": "1", "NO_COLOR": "1"}, False),
    ],
)
def test_plan_to_a_pipe_is_coloured_only_when_forced(
    run: InProcess, args: tuple[str, ...], env: dict[str, str], colour: bool
) -> None:
    run.seed(LIVE, TENANT.replace("[F0001, F0002]", "[F0001]"))
    planned = run("plan", *args, env=env)
    assert planned.code == 0, planned.err
    assert ("\033[33m~ update" in planned.out) is colour
    assert ("\033[" in planned.out) is colour


@pytest.mark.parametrize(
    ("written", "said"),
    [("10", "10s"), (" 5 m ", "5m"), ("36h", "1d 12h"), ("7d", "7d"), ("90m", "1h 30m"), ("0.5", "0.5s")],
)
def test_a_saved_plan_s_lifetime_is_said_back_in_one_form(written: str, said: str) -> None:
    """`--plan-ttl 10` said "valid for 10" (seconds, not said) and ' 5 m ' was echoed as written."""
    assert options.spoken(options.duration(written, flag="--plan-ttl")) == said
