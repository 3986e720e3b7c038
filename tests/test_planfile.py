"""Saved plans are untrusted input: a file that fails its schemas is refused, nothing applied."""

from __future__ import annotations

import json
import os
import re
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reconciler import planfile, secrets
from tests.inprocess import InProcess, run_fixture  # noqa: F401  (the `run` fixture)
from tests.test_cli import LIVE, TENANT

Body = dict[str, Any]


def _set(path: str, value: object) -> Callable[[Body], None]:
    def edit(body: Body) -> None:
        *parents, last = path.split("/")
        target: Any = body
        for key in parents:
            target = target[int(key)] if isinstance(target, list) else target[key]
        if value is _DELETE:
            del target[last]
        else:
            target[last] = value

    return edit


_DELETE = object()

# (what is wrong, the edit, where the error points)
BROKEN = [
    (
        "unknown action",
        _set("plan/tenants/0/actions/0/action", "explode"),
        "/plan/tenants/0/actions/0/action: 'explode' is not one of",
    ),
    ("negative max_delete", _set("saved/max_delete", -1), "/saved/max_delete: -1 is less than"),
    ("tenant without fingerprint", _set("saved/tenants/acme\x00/read_fp", _DELETE), None),
    ("no summary", _set("plan/summary", _DELETE), "/plan: 'summary' is a required property"),
    ("extra key", _set("note", "trust me"), "/: Additional properties are not allowed"),
    ("expiry as text", _set("saved/expires_at", "never"), "/saved/expires_at: 'never' is not of type"),
]


@pytest.fixture
def saved(run: InProcess) -> Path:
    """A saved plan that would delete a dependent (so a missed refusal would write)."""
    run.seed(LIVE, TENANT.replace("[F0001, F0002]", "[F0001]"))
    planned = run("plan", "--out", "plan.json")
    assert planned.code == 0, planned.err
    return run.root / "plan.json"


def _sign(run: InProcess, body: Body) -> None:
    """Sign an edited plan again with the store's own key, as a plan of this store would be."""
    body.pop("signature")
    keyring = secrets.Keyring((run.root / ".reconciler" / "store.key").read_bytes().strip())
    body["signature"] = keyring.sign(planfile._canonical(body))


def _history(run: InProcess) -> str:
    return run("history").err + run("store", "dump").out


@pytest.mark.parametrize("resign", [False, True], ids=["altered", "altered-and-signed"])
@pytest.mark.parametrize(("what", "edit", "message"), BROKEN, ids=[b[0] for b in BROKEN])
def test_plan_failing_its_schema_is_refused_and_nothing_applied(
    run: InProcess, saved: Path, what: str, edit: Callable[[Body], None], message: str | None, resign: bool
) -> None:
    body = json.loads(saved.read_text(encoding="utf-8"))
    if message is None:  # the tenant key holds a slash: edit it by hand
        (key,) = body["saved"]["tenants"]
        del body["saved"]["tenants"][key]["read_fp"]
        message = f"/saved/tenants/{key}: 'read_fp' is a required property"
    else:
        edit(body)
    if resign:  # even a file signed with the store's own key must fit the schemas
        _sign(run, body)
    saved.write_text(json.dumps(body), encoding="utf-8")
    before = _history(run)
    applied = run("apply", "--plan", "plan.json", "--auto-approve", "--allow-cascade")
    assert applied.code == 1
    first = applied.err.splitlines()[0]
    assert first.startswith("error: plan.json: ") and message in first, applied.err
    assert "make it again with `reconciler plan --out`" in first
    assert _history(run) == before


@pytest.mark.parametrize("depth", [1000, 100_000])
def test_a_file_nested_too_deep_is_no_plan(run: InProcess, saved: Path, depth: int) -> None:
    """JSON nested past the decoder's depth raised RecursionError: an internal error."""
    saved.write_text("[" * depth + "]" * depth, encoding="utf-8")
    before = _history(run)
    applied = run("apply", "--plan", "plan.json", "--auto-approve", "--allow-cascade")
    assert applied.code == 1
    assert applied.err == (
        "error: plan.json: not a saved plan (nested too deep); make one with `reconciler plan --out FILE`\n"
    )
    assert _history(run) == before


def test_a_plan_saved_by_an_earlier_version_is_made_again(run: InProcess, saved: Path) -> None:
    """Until 2026-11-26 a saved plan fingerprinted each tenant differently, as `live_fp`: such a
    plan, even signed with the store's key, is refused as one to make again, not as stale."""
    body = json.loads(saved.read_text(encoding="utf-8"))
    for entry in body["saved"]["tenants"].values():
        entry["live_fp"] = entry.pop("read_fp")
    _sign(run, body)
    saved.write_text(json.dumps(body), encoding="utf-8")
    before = _history(run)
    applied = run("apply", "--plan", "plan.json", "--auto-approve", "--allow-cascade")
    assert applied.code == 1 and "'read_fp' is a required property" in applied.err, applied.err
    assert "make it again with `reconciler plan --out`" in applied.err
    assert "changed since the plan was made" not in applied.err
    assert _history(run) == before


def test_untouched_saved_plan_still_applies(run: InProcess, saved: Path) -> None:
    applied = run("apply", "--plan", "plan.json", "--auto-approve", "--allow-cascade")
    assert applied.code == 0, applied.err


def test_schema_problems_are_few_and_short() -> None:
    body = {"kind": planfile.KIND, "signature": "x", "plan": {}, "saved": {}}
    problems = planfile.schema_problems("p.json", body)
    assert [p.message.split(":")[0] for p in problems] == ["/saved"] * 6
    huge = {
        **body,
        "saved": {
            "store_id": "s",
            "created_at": 0,
            "expires_at": 0,
            "git_commit": None,
            "max_delete": 1,
            "tenants": {},
        },
        "plan": {"format_version": 1, "tenants": [{"x": "y" * 10_000}] * 50},
    }
    lines = [str(p) for p in planfile.schema_problems("p.json", huge)]
    assert len(lines) == 11 and lines[-1] == "p.json: ... and 292 more"  # 2 + 50 tenants x 6
    assert max(len(line) for line in lines) < 250


@pytest.mark.parametrize(
    "target", [".reconciler/store.key", ".reconciler/store.db", "reconciler.yaml", "notes.txt"]
)
def test_out_replaces_no_file_that_is_not_a_saved_plan(run: InProcess, saved: Path, target: str) -> None:
    """`plan --out .reconciler/store.key` (a slip of the tab key) replaced the store's key with
    JSON: every stored password lost; the store, change windows or any other file the same."""
    path = run.root / target
    if not path.exists():
        path.write_text("version: 1\n")  # reconciler.yaml without windows; notes.txt
    before = path.read_bytes()
    refused = run("plan", "--out", target)
    assert refused.code == 1, refused.err
    assert "exists and is not a saved plan" in refused.err
    assert before.decode(errors="replace").strip() not in refused.err + refused.out  # the key: never shown
    assert path.read_bytes() == before
    assert run("store", "dump").code == 0  # the store and its key still open


def test_out_replaces_a_saved_plan_or_an_empty_file(run: InProcess, saved: Path) -> None:
    assert run("plan", "--out", "plan.json").code == 0  # the plan saved before
    (run.root / "empty.json").write_bytes(b"")  # e.g. made by mktemp
    assert run("plan", "--out", "empty.json").code == 0
    assert run("apply", "--plan", "empty.json", "--auto-approve", "--allow-cascade").code == 0


def test_out_writes_through_no_link_at_a_temporary_name(run: InProcess, saved: Path) -> None:
    """The plan was written to FILE.tmp, following a link there (planted by a pull request) to
    wherever it led, a tenant file included, then renamed."""
    victim = run.root / "tenants" / "acme" / "acme-norway.yaml"
    before = victim.read_bytes()
    (run.root / "next.json.tmp").symlink_to(victim)
    assert run("plan", "--out", "next.json").code == 0
    assert victim.read_bytes() == before
    assert json.loads((run.root / "next.json").read_text())["kind"] == planfile.KIND


def _path_with_nul(body: Body) -> None:
    (tenant,) = body["saved"]["tenants"].values()
    tenant["path"] = "tenants/acme/acme-nor\x00way.yaml"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_path_with_nul, "does not match"),
        (_set("saved/created_at", float("nan")), "NaN is not a JSON number"),
        (_set("saved/created_at", 1e300), "/saved/created_at: 1e+300 is greater than the maximum"),
        (_set("saved/expires_at", float("inf")), "Infinity is not a JSON number"),
        (_set("saved/expires_at", 95_000_000_000), "valid for longer than --plan-ttl allows"),
        (_set("saved/created_at", 95_000_000_000), "made after now"),
    ],
    ids=["nul-in-path", "nan", "huge", "infinity", "forever", "future"],
)
def test_a_signed_plan_with_impossible_values_is_refused(
    run: InProcess, saved: Path, edit: Callable[[Body], None], message: str
) -> None:
    """The plan key signs plans in the pull-request job: a file signed with it is still input.
    A NUL in a path or a NaN time was an internal error; `expires_at: Infinity` never expired."""
    body = json.loads(saved.read_text(encoding="utf-8"))
    edit(body)
    _sign(run, body)
    saved.write_text(json.dumps(body), encoding="utf-8")
    before = _history(run)
    applied = run("apply", "--plan", "plan.json", "--auto-approve", "--allow-cascade")
    assert applied.code == 1, applied.err
    assert "internal error" not in applied.err and message in applied.err, applied.err
    assert _history(run) == before


def test_out_takes_a_name_as_long_as_the_file_system_does(run: InProcess, saved: Path) -> None:
    """The temporary file was named after FILE, 14 bytes longer: a 250-byte name failed."""
    name = "p" * 250 + ".json"
    assert run("plan", "--out", name).code == 0
    assert json.loads((run.root / name).read_text())["kind"] == planfile.KIND


def _refused(run: InProcess, message: str) -> None:
    """apply --plan plan.json exits 1 with only this line, and changes nothing."""
    before = _history(run)
    applied = run("apply", "--plan", "plan.json", "--auto-approve", "--allow-cascade")
    assert (applied.code, applied.err, applied.out) == (1, f"error: plan.json: {message}\n", ""), applied.err
    assert _history(run) == before


# A plan that does nothing, as plan --out writes one
FAKE_PLAN = (
    '"plan": '
    + json.dumps(
        {
            "format_version": 1,
            "tenants": [],
            "summary": dict.fromkeys(
                ["create", "update", "rename", "adopt", "delete", "cascade", "blocked"], 0
            ),
        }
    )
    + ", "
)


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda text: text.replace('"plan": {', FAKE_PLAN + '"plan": {', 1), "plan"),
        (lambda text: text.replace('"action": "', '"action": "adopt", "action": "', 1), "action"),
        (lambda text: text.replace('"kind": "', '"kind": "x", "kind": "', 1), "kind"),
    ],
    ids=["a plan before the plan", "an action before the action", "kind"],
)
def test_a_key_twice_in_one_object_is_an_altered_plan(
    run: InProcess, saved: Path, edit: Callable[[str], str], key: str
) -> None:
    """json.loads keeps the last of two keys, and the signature covered only that one: a plan
    saying it does nothing, put before the real one, was applied (a first-wins reader, a reviewer
    of the file, saw the fake)."""
    text = saved.read_text(encoding="utf-8")
    saved.write_text(edit(text), encoding="utf-8")
    assert saved.read_text(encoding="utf-8") != text
    _refused(
        run,
        f"the plan file was altered (the key {key!r} appears twice in one object); "
        "nothing was applied. Plan again",
    )


def test_an_integer_of_many_digits_is_an_altered_plan(run: InProcess, saved: Path) -> None:
    """int() refuses more than 4,300 digits: a ValueError, told as an internal error."""
    text = saved.read_text(encoding="utf-8")
    saved.write_text(re.sub(r'"max_delete": \d+', '"max_delete": ' + "9" * 100_000, text), encoding="utf-8")
    _refused(run, "the plan file was altered (an integer of 100,000 digits); nothing was applied. Plan again")


def test_a_lone_surrogate_escape_is_an_altered_plan(run: InProcess, saved: Path) -> None:
    """JSON may write "\\ud800" alone, which json.loads takes and UTF-8 cannot encode: checking
    the signature over it was an internal error (found by mutating saved plans)."""
    text = saved.read_text(encoding="utf-8")
    saved.write_text(text.replace('"file_digest": "', '"file_digest": "\\ud800', 1), encoding="utf-8")
    assert saved.read_text(encoding="utf-8") != text
    _refused(
        run,
        "the plan file was altered (a lone surrogate escape, such as \\ud800, that no saved plan "
        "holds); nothing was applied. Plan again",
    )


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes")
@pytest.mark.parametrize("kind", ["fifo", "device"])  # a folder: click refuses it
def test_a_plan_file_that_is_not_a_regular_file_is_refused_unread(
    run: InProcess, saved: Path, kind: str
) -> None:
    """A FIFO was waited on for good (no writer comes); a link to /dev/zero was read until
    memory ran out (a link to /dev/null here: to a device all the same, and ends)."""
    saved.unlink()
    if kind == "fifo":
        os.mkfifo(saved)
    else:
        saved.symlink_to(os.devnull)

    def waited(signum: int, frame: object) -> None:
        raise TimeoutError("apply --plan waited on the plan file")

    previous = signal.signal(signal.SIGALRM, waited)  # in-process runs have no timeout of their own
    signal.alarm(60)
    try:
        _refused(
            run,
            "not a regular file (a folder, pipe, device or socket?); "
            "give the file `reconciler plan --out` saved",
        )
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_a_link_to_a_saved_plan_is_read(run: InProcess, saved: Path) -> None:
    saved.rename(run.root / "saved.json")
    saved.symlink_to("saved.json")
    assert run("apply", "--plan", "plan.json", "--auto-approve", "--allow-cascade").code == 0


def test_a_plan_over_the_size_limit_is_not_saved(
    run: InProcess, saved: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """plan --out saved a plan however big, which the apply on merge then refused: the pull
    request's plan is refused instead, naming the limit, and a plan saved before stays."""
    before = saved.read_bytes()
    limit = len(before) // 2  # the plan made again has its own time: its size may differ by a digit
    monkeypatch.setattr(planfile, "MAX_BYTES", limit)
    refused = run("plan", "--out", "plan.json")
    assert refused.code == 1, refused.both
    assert re.search(
        rf"error: --out 'plan\.json': the plan is over the {limit:,} bytes that apply --plan reads; "
        r"save the plans of fewer tenants at a time \(--tenant, or PATH\)",
        refused.err,
    ), refused.err
    assert saved.read_bytes() == before
    assert sorted(p.name for p in run.root.iterdir() if p.name.startswith(".osr-plan-")) == []


def test_a_plan_interrupted_while_written_leaves_no_file(
    run: InProcess, saved: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while plan --out writes: the plan saved before stays, and no half-written
    temporary file is left beside it (only an OSError or a plan over the limit removed it)."""
    before = saved.read_bytes()
    write = planfile._write_json

    def interrupted(*_: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(planfile, "_write_json", interrupted)
    stopped = run("plan", "--out", "plan.json")
    assert stopped.code == 1 and "error: interrupted; nothing was changed" in stopped.err, stopped.both
    assert saved.read_bytes() == before
    assert sorted(p.name for p in run.root.iterdir() if p.name.startswith(".osr-plan-")) == []
    monkeypatch.setattr(planfile, "_write_json", write)
    assert run("plan", "--out", "plan.json").code == 0


def test_a_plan_file_over_the_size_limit_is_refused_unread(
    run: InProcess, saved: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plan padded to 300 MB was read and held whole (640 MB of memory), /dev/zero's copy
    past any memory; the limit (1 GiB) is far above a real plan's size, made small here."""
    size = saved.stat().st_size
    monkeypatch.setattr(planfile, "MAX_BYTES", size - 1)
    _refused(
        run,
        f"the plan file is {size:,} bytes, over the limit of {size - 1:,} bytes; is it the right file? "
        "Make it again with `reconciler plan --out`, for fewer tenants (--tenant)",
    )
    monkeypatch.setattr(planfile, "MAX_BYTES", size)  # a plan as big as the limit is read
    assert run("apply", "--plan", "plan.json", "--auto-approve", "--allow-cascade").code == 0
