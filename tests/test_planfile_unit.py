"""Unit tests of small pieces, without the CLI: durations of --plan-ttl and --lock-timeout
(commands/options.py), the readable differences between a saved plan and a new one, and what
apply --plan refuses when a tenant file is not as the saved plan read it (planfile.verified).
"""

from __future__ import annotations

import dataclasses
import json
import os
import stat
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from reconciler import errors, planfile, render, secrets
from reconciler import plan as p
from reconciler.commands import options
from tests.conftest import TEST_KEY


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90.0),
        ("90s", 90.0),
        ("250ms", 0.25),
        ("15m", 900.0),
        ("24h", 86400.0),
        ("2d", 172800.0),
        ("1.5h", 5400.0),
        (" 30 s ", 30.0),
        ("0s", 0.0),
    ],
)
def test_duration(text: str, seconds: float) -> None:
    assert options.duration(text, flag="--plan-ttl") == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "s", "-5s", "5 min", "5w", "1e3", "5S", "1:30", "5s5"])
def test_bad_duration_names_the_flag_and_the_form(text: str) -> None:
    with pytest.raises(errors.InputError) as caught:
        options.duration(text, flag="--lock-timeout")
    assert str(caught.value) == (f"--lock-timeout {text!r}: write a duration such as 30s, 15m, 24h or 2d")


def _update(connection: str, **fields: Any) -> p.Action:
    return p.Action(p.ActionKind.UPDATE, connection, p.Reason.UPDATE_CHANGED, **fields)


def _now(**actions: tuple[p.Action, ...]) -> p.Plan:
    """The plan made again at apply time: tenants `acme_no` (acme/no) with their actions."""
    return p.Plan(tuple(p.TenantPlan(*key.split("_"), a, ()) for key, a in actions.items()), 10)


def _as_saved(plan: p.Plan) -> planfile.Saved:
    """`plan` as apply reads it back from the file plan --out wrote: JSON text, enum members as
    words, tuples as lists."""
    tenants = {f"{t['customer']}/{t['tenant']}": t for t in json.loads(render.json_text(plan))["tenants"]}
    return planfile.Saved(
        {key: planfile.actions_text(t["actions"]) for key, t in tenants.items() if t["actions"]},
        {},
        {key: planfile.SavedTenant("p", "d", "fp") for key in tenants},
        0.0,
        1e12,
        None,
        "s",
        10,
    )


def test_a_saved_plan_read_back_does_not_differ_from_the_plan_it_was_made_from() -> None:
    """The plan made again holds enum members and tuples, the saved one words and lists."""
    change = p.Change("server", "a", "b")
    made = _now(acme_no=(_update("Bjørn Ås", status=p.Status.DRIFT, changes=(change,)),), acme_se=())
    assert planfile.differences(_as_saved(made), made) == []


def test_differences_are_paths_under_the_tenant() -> None:
    saved = _as_saved(_now(acme_no=(_update("Oslo", status=p.Status.DRIFT),)))
    now = _now(acme_no=(_update("Oslo", status=p.Status.PENDING),))
    assert planfile.differences(saved, now) == ["['acme/no'][0]['status']"]


def test_a_tenant_only_in_one_plan_is_a_difference() -> None:
    saved = _as_saved(_now(acme_no=(), acme_dk=()))
    now = _now(acme_no=(), acme_se=(_update("Stockholm"),))
    assert planfile.differences(saved, now) == ["['acme/dk']", "['acme/se']"]


def test_differences_are_capped_with_a_count_of_the_rest() -> None:
    saved = _as_saved(_now(**{f"acme_t{i}": () for i in range(8)}))
    now = _now(**{f"acme_t{i}": (_update("x"),) for i in range(8)})
    shown = planfile.differences(saved, now, most=3)
    assert len(shown) == 4 and shown[-1] == "... and 5 more"
    assert shown[:3] == ["['acme/t0'][0]", "['acme/t1'][0]", "['acme/t2'][0]"]


class _Read(NamedTuple):
    key: str
    path: str
    digest: str


def _saved(**tenants: planfile.SavedTenant) -> planfile.Saved:
    return planfile.Saved(
        {}, {}, {k.replace("_", "/"): t for k, t in tenants.items()}, 0.0, 1e12, None, "s", 10
    )


def _verified(saved: planfile.Saved, wanted: list[_Read]) -> p.Plan:
    """verified() over tenants read now as the saved plan read them (no actions)."""
    now = p.Plan(
        tuple(
            p.TenantPlan(*key.split("/"), (), (), path=t.path, digest=t.file_digest, tenant_fp=t.read_fp)
            for key, t in saved.tenants.items()
        ),
        10,
    )
    return planfile.verified(saved, Path("plan.json"), wanted, lambda _hidden: now, lambda _: None)


def test_a_saved_plan_is_applied_when_every_file_is_as_it_was() -> None:
    saved = _saved(acme_no=planfile.SavedTenant("tenants/acme/no.yaml", "d1", "fp1"))
    plan = _verified(saved, [_Read("acme/no", "tenants/acme/no.yaml", "d1")])
    assert [t.key for t in plan.tenants] == ["acme/no"]


@pytest.mark.parametrize(
    ("read", "why"),
    [
        (_Read("acme/no", "tenants/acme/no.yaml", "d2"), "acme/no: tenants/acme/no.yaml changed"),
        # a tenant the saved plan never read (its files are the saved plan's own: a guard)
        (_Read("acme/se", "tenants/acme/se.yaml", "d1"), "acme/se: tenants/acme/se.yaml changed"),
    ],
)
def test_a_saved_plan_is_refused_for_a_file_it_did_not_read_as_it_is(read: _Read, why: str) -> None:
    saved = _saved(acme_no=planfile.SavedTenant("tenants/acme/no.yaml", "d1", "fp1"))
    with pytest.raises(errors.RefusedError) as caught:
        _verified(saved, [read])
    assert [pr.message for pr in caught.value.problems] == [
        f"refused: {why} since the plan was made; nothing was applied, plan again"
    ]


def test_a_saved_plan_is_written_a_part_at_a_time_as_json_dumps_writes_it() -> None:
    """The plan file of a whole-fleet change is tens of MB: written a part at a time, never held
    whole, and byte for byte what json.dumps wrote (the signature covers the body, not the
    layout, but people diff these files)."""
    import io
    import json

    body: dict[str, Any] = {
        "kind": planfile.KIND,
        "plan": {
            "tenants": [
                {"customer": "c", "tenant": f"t{i}", "actions": [{"connection": f"Bjørn Ås {i}", "n": i}]}
                for i in range(2_000)  # far more parts than one write holds
            ]
        },
        "saved": {"uncompared_passwords": [], "empty": {}, "float": 1.5, "none": None},
        "signature": "x",
    }
    whole_file = (json.dumps(body, indent=2, ensure_ascii=False) + "\n").encode()
    written = io.BytesIO()
    planfile._write_json(written, body, len(whole_file))  # as big as the limit: written
    assert written.getvalue() == whole_file
    # One byte over: refused before the part that would pass the limit is written, never after
    # the whole plan is on disk.
    cut = io.BytesIO()
    with pytest.raises(planfile._TooBig):
        planfile._write_json(cut, body, len(whole_file) - 1)
    assert 0 < len(cut.getvalue()) < len(whole_file) and whole_file.startswith(cut.getvalue())
    small = io.BytesIO()
    with pytest.raises(planfile._TooBig):
        planfile._write_json(small, body, 1_000)
    assert len(small.getvalue()) <= 1_000
    # The signature is made over the same bytes as before, a part at a time: plans saved by an
    # earlier version still verify.
    whole = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    parts = list(planfile._canonical(body))
    assert len(parts) > 1 and b"".join(parts) == whole
    keyring = secrets.Keyring(TEST_KEY.encode())
    assert keyring.sign(iter(parts)) == keyring.sign(whole)


def _applied_with_passwords(saved_plan: p.Plan, with_passwords: p.Plan) -> p.Plan:
    """verified() of a plan saved without the password of OSR_PW, made again now with it."""
    saved = dataclasses.replace(_as_saved(saved_plan), uncompared=("env:OSR_PW",))
    saved.tenants.update({"acme/no": planfile.SavedTenant("tenants/acme/no.yaml", "d1", "")})
    return planfile.verified(
        saved,
        Path("plan.json"),
        [_Read("acme/no", "tenants/acme/no.yaml", "d1")],
        lambda hidden: saved_plan if hidden else with_passwords,
        lambda _: None,
    )


def test_a_saved_plan_is_applied_when_the_passwords_it_could_not_see_are_all_that_differ() -> None:
    password = p.Change("password", sensitive=True)
    oslo = _update("Oslo", changes=(p.Change("server", "a", "b"),), live_id=1)
    saved_plan = _now(acme_no=(oslo,))
    now = _now(
        acme_no=(
            dataclasses.replace(oslo, changes=(password, *oslo.changes), status=p.Status.PENDING),
            _update("Bergen", changes=(password,), live_id=2),
        )
    )
    assert _applied_with_passwords(saved_plan, now) is not None


@pytest.mark.parametrize(
    "extra",
    [
        p.Action(p.ActionKind.DELETE, "Bergen", p.Reason.DELETE_TOMBSTONE, live_id=2),
        _update("Bergen", changes=(p.Change("password", sensitive=True), p.Change("server", "a", "b"))),
        p.Action(
            p.ActionKind.RENAME, "Bergen", p.Reason.RENAME_PREVIOUS_NAME, previous_name="Oslo", live_id=1
        ),
    ],
    ids=["delete", "update-beyond-the-password", "rename"],
)
def test_a_saved_plan_is_refused_where_the_passwords_change_more_than_the_passwords(extra: p.Action) -> None:
    """apply --plan checks the plan made as the saved plan was (without the passwords it could
    not compare) against the saved one; the plan it then carries out, made with them, may
    differ only in those passwords. Were matching ever to ask a password, the reviewed plan
    would not be the one applied: refused."""
    saved_plan = _now(acme_no=())
    with pytest.raises(errors.RefusedError) as caught:
        _applied_with_passwords(saved_plan, _now(acme_no=(extra,)))
    assert [pr.message for pr in caught.value.problems] == [
        "refused: acme/no: the plan made with the passwords differs from the saved plan in more than "
        "the passwords; nothing was applied, plan again"
    ]


def test_a_plan_file_that_grew_past_the_limit_is_read_no_further(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fstat gave the size before the read; a file that grew since is read to the limit and one
    byte more, then refused, never to its end."""
    path = tmp_path / "plan.json"
    path.write_bytes(b" " * 5_000_000)
    fstat, reads = os.fstat, []

    def small(fd: int) -> os.stat_result:
        found = list(fstat(fd))
        found[stat.ST_SIZE] = 10
        return os.stat_result(found)

    def read(fd: int, n: int) -> bytes:
        reads.append(n)
        return os.pread(fd, n, sum(reads) - n)

    monkeypatch.setattr(planfile, "MAX_BYTES", 2_000_000)
    monkeypatch.setattr(planfile.os, "fstat", small)
    monkeypatch.setattr(planfile.os, "read", read)
    with pytest.raises(errors.InputError) as caught:
        planfile.read(path, keyring=secrets.Keyring(TEST_KEY.encode()), store_id="s")
    assert str(caught.value) == (
        f"{path}: the plan file is larger than the limit of 2,000,000 bytes; is it the right file? "
        "Make it again with `reconciler plan --out`, for fewer tenants (--tenant)"
    )
    assert sum(reads) == 2_000_001
