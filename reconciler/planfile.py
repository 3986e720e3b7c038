"""Saved plans: `plan --out FILE` and `apply --plan FILE`.

A saved plan holds the rendered plan, the digest of every tenant file and the fingerprint of
every live tenant it read, the git commit, an expiry, the store's id, the password references
it could not compare (a pull-request job has none), and a MAC made with the key's MAC key (the
plan key) over all of it. It holds no secret and no unkeyed fingerprint of one.

A plan file is untrusted input: before anything in it is used, the envelope is checked against
ENVELOPE_SCHEMA and the plan it carries against the published plan schema.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import tempfile
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple, Protocol

from deepdiff import DeepDiff

from reconciler import atomic, errors, render, schemas, secrets
from reconciler import plan as p

KIND = "osr-reconciler-saved-plan"


class SavedTenant(NamedTuple):
    """What a saved plan recorded of a tenant it read. read_fp is the tenant's
    TenantPlan.tenant_fp (state.LiveTenant.object_fp; until 2026-11-26 a digest of other bytes,
    named live_fp: a plan saved before is refused by the schema, "make it again")."""

    path: str
    file_digest: str
    read_fp: str


@dataclass(frozen=True)
class Saved:
    """A saved plan as apply uses it, by customer/tenant. Of the plan itself only what apply
    compares and attaches is kept, and only for the tenants that have any: a fleet's plan is
    mostly tenants without actions or checks, and apply holds this to the end."""

    actions: dict[str, str]  # the actions of the tenants that have any, as actions_text() writes them
    checks: dict[str, tuple[p.SourceCheck, ...]]  # the source checks of those that have any
    tenants: dict[str, SavedTenant]  # every tenant of the plan
    created_at: float
    expires_at: float
    git_commit: str | None
    store_id: str
    max_delete: int
    uncompared: tuple[str, ...] = ()  # password references not available when it was made


_STR = {"type": "string"}
# Epoch seconds, finite and before the year 5000; a path holds no NUL (os calls refuse one). A
# plan file is input, and the plan key that signs it is in the pull-request job's hands.
_TIME: dict[str, Any] = {"type": "number", "minimum": 0, "maximum": 95_617_584_000}
_PATH: dict[str, Any] = {"type": "string", "minLength": 1, "pattern": "^[^\\x00]*$"}
# A saved plan lives at most --plan-ttl's longest, and is not made after it is read.
_LONGEST_S = 3650 * 86400
_CLOCK_SKEW_S = 86400

ENVELOPE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "osr-reconciler saved plan (reconciler plan --out); `plan` is plan.schema.json",
    "type": "object",
    "additionalProperties": False,
    "required": ["kind", "plan", "saved", "signature"],
    "properties": {
        "kind": {"const": KIND},
        "plan": {"type": "object"},
        "signature": {"type": "string", "minLength": 1},
        "saved": {
            "type": "object",
            "additionalProperties": False,
            "required": ["store_id", "created_at", "expires_at", "git_commit", "max_delete", "tenants"],
            "properties": {
                "store_id": _STR,
                "created_at": _TIME,
                "expires_at": _TIME,
                "git_commit": {"type": ["string", "null"]},
                "max_delete": {"type": "integer", "minimum": 0},
                "uncompared_passwords": {"type": "array", "items": _STR},
                "tenants": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["path", "file_digest", "read_fp"],
                        "properties": {"path": _PATH, "file_digest": _STR, "read_fp": _STR},
                    },
                },
            },
        },
    },
}
_MOST_PROBLEMS = 10


def schema_problems(label: str, body: Any) -> list[errors.Problem]:
    """Where a saved plan departs from its schemas: one problem per place, at most a few."""
    import jsonschema

    found = [
        (f"/{'/'.join(map(str, e.absolute_path))}", e.message)
        for e in jsonschema.Draft202012Validator(ENVELOPE_SCHEMA).iter_errors(body)
    ]
    if not found and isinstance(body, dict):
        found = [
            (f"/plan/{'/'.join(map(str, e.absolute_path))}".rstrip("/"), e.message)
            for e in jsonschema.Draft202012Validator(schemas.plan_schema()).iter_errors(body["plan"])
        ]
    problems = [
        errors.Problem(
            label,
            0,
            0,
            f"{where}: {_shortened(message)}; not a plan "
            "this version wrote: make it again with `reconciler plan --out`",
        )
        for where, message in sorted(found)[:_MOST_PROBLEMS]
    ]
    if len(found) > _MOST_PROBLEMS:
        problems.append(errors.Problem(label, 0, 0, f"... and {len(found) - _MOST_PROBLEMS} more"))
    return problems


def _shortened(message: str, limit: int = 120) -> str:
    """A schema message, short: it quotes values from the file, which may be long."""
    return message if len(message) <= limit else message[: limit - 1] + "…"


def _canonical(body: dict[str, Any]) -> Iterator[bytes]:
    """What the signature covers: body as compact JSON, keys sorted, UTF-8, a part at a time."""
    for text in _chunks(json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False), body):
        yield text.encode()


class _TooBig(Exception):
    """The plan's file would pass MAX_BYTES (_write_json)."""


def _write_json(out: BinaryIO, body: dict[str, Any], most: int) -> None:
    """body as indented JSON, UTF-8, written a part at a time: a plan that changes a whole fleet
    makes a file of tens of MB, which json.dumps held whole (and twice, with its final line
    break). Raises _TooBig before the file would pass most bytes: a plan over the limit was
    written whole (a disk's worth for a moment) before it was refused."""
    written = 0
    for text in (*_chunks(json.JSONEncoder(indent=2, ensure_ascii=False), body), "\n"):
        data = text.encode()
        written += len(data)
        if written > most:
            raise _TooBig
        out.write(data)


def _chunks(encoder: json.JSONEncoder, body: dict[str, Any]) -> Iterator[str]:
    """encoder.encode(body) in pieces of a few thousand parts, never whole: the signature and the
    file of a plan that changes a whole fleet are tens of MB each."""
    parts: list[str] = []
    for part in encoder.iterencode(body):
        parts.append(part)
        if len(parts) >= 4096:
            yield "".join(parts)
            parts.clear()
    yield "".join(parts)


@contextlib.contextmanager
def saving(
    path: Path,
    plan: p.Plan,
    *,
    keyring: secrets.Keyring,
    store_id: str,
    git_commit: str | None,
    ttl_s: float,
    uncompared: Collection[str] = (),
    root: Path | None = None,
) -> Iterator[float]:
    """Save the plan: written beside path, yielding when it expires (epoch seconds), and put
    in place only when the block ends without an exception (the run showed the plan it saved:
    a run that exits 1 leaves no plan for apply --plan, and whatever was at path before)."""
    why = atomic.not_a_file(path) or _not_a_plan(path)
    if why is not None:
        raise errors.InputError(f"--out {str(path)!r} {why}; give the name of a file to save the plan in")
    now = time.time()
    body = {
        "kind": KIND,
        "plan": render.plan_obj(plan),
        "saved": {
            "store_id": store_id,
            "created_at": now,
            "expires_at": now + ttl_s,
            "git_commit": git_commit,
            "max_delete": plan.max_delete,
            "uncompared_passwords": sorted(set(uncompared)),
            "tenants": {
                t.key: {"path": _from_root(t.path, root), "file_digest": t.digest, "read_fp": t.tenant_fp}
                for t in plan.tenants
            },
        },
    }
    body["signature"] = keyring.sign(_canonical(body))
    try:  # a name of its own (O_EXCL): a link planted at a fixed FILE.tmp was written through
        fd, name = tempfile.mkstemp(prefix=".osr-plan-", suffix=".tmp", dir=path.parent)  # any FILE's length
    except OSError as exc:
        raise _cannot_write(path, exc) from None
    tmp = Path(name)
    try:
        os.fchmod(fd, atomic.new_file_mode())
        with os.fdopen(fd, "wb") as out:
            _write_json(out, body, MAX_BYTES)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _cannot_write(path, exc) from None
    except _TooBig:  # saved, it would be refused by the apply on merge that reads it
        tmp.unlink(missing_ok=True)
        raise errors.InputError(
            f"--out {str(path)!r}: the plan is over the {MAX_BYTES:,} bytes that apply --plan "
            "reads; save the plans of fewer tenants at a time (--tenant, or PATH)"
        ) from None
    except BaseException:  # Ctrl-C while writing: no half-written plan beside path
        tmp.unlink(missing_ok=True)
        raise
    try:
        yield now + ttl_s
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    # From the rename on the plan is saved: a Ctrl-C after it made the run say "nothing was
    # changed" (exit 1) with a plan apply --plan took. Ignored until the process ends.
    atomic.writes_begin()
    try:
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _cannot_write(path, exc) from None


# A saved plan begins so (_write_json); the start is enough to tell one from any other file.
_PLAN_START = re.compile(rb'\A\s*\{\s*"kind"\s*:\s*"' + KIND.encode() + rb'"')


def _not_a_plan(path: Path) -> str | None:
    """Why --out must not replace the file at path: one there that is neither empty nor a saved
    plan (`--out .reconciler/store.key` replaced the store's key, and every password with it;
    a store, reconciler.yaml, a secret...). None when nothing is there."""
    try:
        with path.open("rb") as existing:
            start = existing.read(256)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"cannot be read ({exc.strerror}) to tell whether it is a saved plan"
    if not start or _PLAN_START.match(start):
        return None
    return "exists and is not a saved plan (plan --out replaces only a plan it saved, or an empty file)"


def _cannot_write(path: Path, exc: OSError) -> errors.InputError:
    return errors.InputError(
        f"--out {path}: cannot write the plan ({exc.strerror}); give a path in a folder that "
        "exists and is writable"
    )


def _from_root(path: str, root: Path | None) -> str:
    """A tenant file's path as a saved plan keeps it: from the repository's root, in '/' form,
    so that apply finds it from any folder and any checkout (tenants/acme/x.yaml, made in the
    root; ../../tenants/acme/x.yaml, or /builds/x/tenants/acme/x.yaml, made elsewhere, were
    refused where the apply job ran)."""
    if root is None:
        return path
    return Path(os.path.relpath(os.path.abspath(path), os.path.abspath(root))).as_posix()


def _to_here(path: str, root: Path | None) -> str:
    """A saved plan's path (from the root) as this run names files: from the current folder
    where the file is inside it (as messages name files), else in full."""
    if root is None:
        return path
    full = os.path.normpath(os.path.join(os.path.abspath(root), path))
    here = os.path.relpath(full)
    return full if here.startswith(os.pardir) else here


def read(path: Path, *, keyring: secrets.Keyring, store_id: str, root: Path | None = None) -> Saved:
    """Read and authenticate a saved plan; refuse anything truncated, altered or foreign."""
    label = str(path)
    try:
        body = json.loads(
            _read_text(path, label),
            parse_constant=_no_constant,
            parse_int=_integer,
            object_pairs_hook=_object,
        )
    except _Altered as exc:
        raise _altered(label, str(exc)) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise errors.InputError(
            f"{label}: not a saved plan (invalid JSON: {exc}); was it "
            "truncated? Make it again with `reconciler plan --out`"
        ) from None
    except RecursionError:  # nested deeper than the decoder goes: no plan is
        raise _too_deep(label) from None
    if not isinstance(body, dict) or body.get("kind") != KIND or "signature" not in body:
        raise errors.InputError(
            f"{label}: not a saved plan of osr-reconciler; make one with `reconciler plan --out FILE`"
        )
    try:
        problems = schema_problems(label, body)
    except RecursionError:
        raise _too_deep(label) from None
    if problems:
        raise errors.InputError("the saved plan does not match its schema", problems=tuple(problems))
    signature = body.pop("signature")
    try:
        authentic = isinstance(signature, str) and signature == keyring.sign(_canonical(body))
    except UnicodeEncodeError:  # json.loads takes "\ud800", which UTF-8 cannot hold: an internal error
        raise _altered(label, "a lone surrogate escape, such as \\ud800, that no saved plan holds") from None
    if not authentic:
        raise _altered(label, None)
    saved = body["saved"]
    if saved["store_id"] != store_id:
        raise errors.RefusedError(f"{label}: the plan was made for another store; plan again")
    actions: dict[str, str] = {}
    checks: dict[str, tuple[p.SourceCheck, ...]] = {}
    for t in body["plan"]["tenants"]:
        key = f"{t['customer']}/{t['tenant']}"
        if t["actions"]:
            actions[key] = actions_text(t["actions"])
        if t.get("checks"):
            checks[key] = tuple(p.SourceCheck(c["connection"], tuple(c["problems"])) for c in t["checks"])
    result = Saved(
        actions,
        checks,
        {
            key: SavedTenant(_to_here(t["path"], root), t["file_digest"], t["read_fp"])
            for key, t in saved["tenants"].items()
        },
        saved["created_at"],
        saved["expires_at"],
        saved.get("git_commit"),
        saved["store_id"],
        saved["max_delete"],
        tuple(saved.get("uncompared_passwords", ())),
    )
    check_fresh(result, label)
    return result


# The largest saved plan, by hand (2026-11-28): one deleting every connection of the benchmark
# fleet, 17.7 MB measured at 200 tenants, so about 707 MB at 8,000 (200,000 connections, 4.2
# million dependents cascading; a tenant's share does not grow with the fleet: 40 times, not
# measured). Adopting all 200,000 makes about 52 MB, updating every one about 232 MB (the same
# way, from 200 tenants). apply --plan holds the file's JSON data, several
# times its size: a bigger file is no plan to apply in one go. Unbounded, /dev/zero was read until
# memory ran out.
MAX_BYTES = 1 << 30
# A plan's integers are counts and a format version; int() refuses past 4,300 digits (ValueError).
_MOST_DIGITS = 30


class _Altered(Exception):
    """The file holds what no plan --out writes, so its signature does not cover what is read."""


def _read_text(path: Path, label: str) -> str:
    """The plan file's text, read at most MAX_BYTES + 1 of it: a regular file (a link to one is
    fine), refused before the first read otherwise. O_NONBLOCK: opening a FIFO waited for a
    writer forever; /dev/zero was read until memory ran out."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise _unreadable(label, exc) from None
    try:
        found = os.fstat(fd)
        if not stat.S_ISREG(found.st_mode):
            raise errors.InputError(
                f"{label}: not a regular file (a folder, pipe, device or socket?); "
                "give the file `reconciler plan --out` saved"
            )
        if found.st_size > MAX_BYTES:
            raise _too_big(label, found.st_size)
        # One read of a file of the size fstat gave, more only if it grew since.
        chunks: list[bytes] = []
        left = MAX_BYTES + 1
        while left and (chunk := os.read(fd, min(left, max(found.st_size + 1, 1 << 20)))):
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as exc:
        raise _unreadable(label, exc) from None
    finally:
        os.close(fd)
    data = b"".join(chunks)  # the one chunk itself, no copy, when there is one
    del chunks
    if len(data) > MAX_BYTES:
        raise _too_big(label, None)
    return data.decode("utf-8")


def _unreadable(label: str, exc: OSError) -> errors.InputError:
    return errors.InputError(f"{label}: cannot read the plan file ({exc.strerror})")


def _too_big(label: str, size: int | None) -> errors.InputError:
    how_big = "larger than" if size is None else f"{size:,} bytes, over"
    return errors.InputError(
        f"{label}: the plan file is {how_big} the limit of {MAX_BYTES:,} bytes; is it the right "
        "file? Make it again with `reconciler plan --out`, for fewer tenants (--tenant)"
    )


def _altered(label: str, what: str | None) -> errors.RefusedError:
    return errors.RefusedError(
        f"{label}: the plan file was altered"
        + (f" ({what})" if what else ", or made for another store or store key")
        + "; nothing was applied. Plan again"
    )


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are all different: json.loads kept the last of two, which the
    signature then covered, while a reader of the file (a reviewer, another parser) saw the first."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Altered(f"the key {_shortened(repr(key), 60)} appears twice in one object")
            seen.add(key)
    return obj


def _integer(text: str) -> int:
    """A JSON integer of a few digits (a 100,000-digit one was int()'s ValueError: an internal error)."""
    if len(text.lstrip("-")) > _MOST_DIGITS:
        raise _Altered(f"an integer of {len(text.lstrip('-')):,} digits")
    return int(text)


def _too_deep(label: str) -> errors.InputError:
    """JSON nested past what the decoder or the schema check goes: no plan is."""
    return errors.InputError(
        f"{label}: not a saved plan (nested too deep); make one with `reconciler plan --out FILE`"
    )


def _no_constant(word: str) -> float:
    """json.loads takes NaN and Infinity, which no saved plan holds (`expires_at: Infinity`
    made a plan that never expired)."""
    raise json.JSONDecodeError(f"{word} is not a JSON number", word, 0)


def check_fresh(saved: Saved, label: str) -> None:
    """RefusedError once the saved plan has expired: when it is read, and again when apply holds
    its locks (an apply that waited for another's locks was past the expiry by then). A plan
    said to live longer than --plan-ttl can make it live, or made in the future, is refused."""
    now = time.time()
    if saved.expires_at - saved.created_at > _LONGEST_S or saved.created_at > now + _CLOCK_SKEW_S:
        raise errors.RefusedError(
            f"{label}: the plan's times are not a saved plan's (made after now, or valid for longer "
            "than --plan-ttl allows); plan again"
        )
    if now > saved.expires_at:
        made = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(saved.created_at))
        raise errors.RefusedError(f"{label}: the plan expired (made {made}; --plan-ttl); plan again")


def with_saved_checks(plan: p.Plan, saved: Saved) -> p.Plan:
    """The plan made again at apply time, with the source checks the saved plan recorded."""
    return plan.with_checks(saved.checks)  # a tenant without saved checks gets none


def accepted_passwords(plan: p.Plan, saved: Saved) -> list[tuple[str, bool]]:
    """Password changes the saved plan could not compare, which apply accepts (DESIGN §10):
    (tenant/connection, whether the action creates the connection)."""
    return [
        (f"{t.key}/{a.connection}", a.action is p.ActionKind.CREATE)
        for t, a in plan.all_actions()
        if a.desired is not None
        and a.desired.password is not None
        and str(a.desired.password) in saved.uncompared
        and "password" in a.changed_fields
    ]


def beyond_passwords(result: p.Plan, as_saved: p.Plan) -> list[str]:
    """The tenants whose plan made with the passwords (result) differs from the plan made as the
    saved plan was, without those it could not compare (as_saved, which must equal the saved
    plan), in more than those passwords: a password change, an update that changes only the
    password, a create's note that its password is missing, and the statuses and notes those
    passwords decide. None should: matching by name, id and previous names never asks a
    password. A guard, so that what apply carries out is what was reviewed, password aside."""
    before = {t.key: t.actions for t in as_saved.tenants}
    return [
        t.key
        for t in result.tenants
        if t.key not in before or _without_passwords(t.actions) != _without_passwords(before[t.key])
    ]


def _without_passwords(actions: Sequence[p.Action]) -> list[tuple[object, ...]]:
    kept: list[tuple[object, ...]] = []
    for a in actions:
        changes = tuple(c for c in a.changes if c.field != "password")
        if a.action is p.ActionKind.UPDATE and not changes:
            continue  # only the password changed: the saved plan could not see it
        kept.append(
            (a.action, a.connection, a.previous_name, a.live_id, changes, a.cascade, a.kept, a.blocked)
        )
    return kept


def actions_text(actions: Sequence[Any]) -> str:
    """A tenant's actions as JSON text, keys sorted: what must be equal between the saved plan
    (read from JSON) and the plan made again at apply time (enum members, tuples). Kept as text,
    a whole-fleet adoption's saved actions take about a quarter of their memory as JSON data."""
    return json.dumps(actions, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def differences(saved: Saved, plan: p.Plan, *, most: int = 5) -> list[str]:
    """Where the plan made again differs from the saved one, as readable paths under the tenant
    (`['acme/no'][0]['action']`; a tenant only in one of them: `['acme/se']`), at most `most`.

    Compared a tenant at a time, as text: the plan made now is never JSON data all at once, and
    DeepDiff (Python, slow) walks only the tenants that differ."""
    paths: list[str] = []
    made: set[str] = set()
    for t in plan.tenants:
        key = t.key
        made.add(key)
        now, was = actions_text([render.action_obj(a) for a in t.actions]), saved.actions.get(key, "[]")
        if key not in saved.tenants:
            paths.append(f"root[{key!r}]")
        elif now != was:
            moved = DeepDiff(json.loads(was), json.loads(now)).affected_paths
            paths += (f"root[{key!r}]" + path.removeprefix("root") for path in moved)
    paths += (f"root[{key!r}]" for key in saved.tenants.keys() - made)
    paths.sort()
    readable = [path.removeprefix("root") for path in paths[:most]]
    if len(paths) > most:
        readable.append(f"... and {len(paths) - most} more")
    return readable


class Read(Protocol):
    """What verified() needs of a tenant file read now: a DesiredTenant, or only these three
    (apply reads the fleet in batches and keeps no more of each file)."""

    @property
    def key(self) -> str: ...

    @property
    def path(self) -> str: ...

    @property
    def digest(self) -> str: ...


def verified(
    saved: Saved,
    plan_file: Path,
    wanted: Sequence[Read],
    make_plan: Callable[[Collection[str]], p.Plan],
    info: Callable[[str], None],
) -> p.Plan:
    """The saved plan, checked against what is there now: the plan to apply, or RefusedError.

    make_plan(hidden) plans the wanted tenants now, as if the password references in hidden
    were not set; info is given the sentence for each password change apply accepts unseen
    (apply says them once it has committed: before the guards, a refused run told of a create).
    """
    changed = [
        f"{t.key}: {t.path} changed since the plan was made"
        for t in wanted
        if t.key not in saved.tenants or t.digest != saved.tenants[t.key].file_digest
    ]
    # The plan as the saved plan saw it (without the passwords it could not compare)
    # must be the saved plan; the plan with them may differ only in those passwords.
    result = make_plan(())
    as_saved = make_plan(saved.uncompared) if saved.uncompared else result
    changed += [
        f"{t.key}: the live store changed since the plan was made"
        for made in (result, as_saved)
        for t in made.tenants
        if t.key in saved.tenants and t.tenant_fp != saved.tenants[t.key].read_fp
    ]
    moved = differences(saved, as_saved)
    if result is not as_saved:
        changed += (
            f"{key}: the plan made with the passwords differs from the saved plan in more than the passwords"
            for key in beyond_passwords(result, as_saved)
        )
    if not changed and moved:
        changed.append(
            "the plan made now differs from the saved plan at "
            + ", ".join(moved)
            + " (were secrets unavailable when it was saved?)"
        )
    if changed:
        raise errors.RefusedError(
            "stale plan",
            problems=tuple(
                errors.Problem(str(plan_file), 0, 0, f"refused: {c}; nothing was applied, plan again")
                for c in dict.fromkeys(changed)
            ),
        )
    result = with_saved_checks(result, saved)
    for label, created in accepted_passwords(result, saved):
        info(
            f"{label}: created with the password its reference holds now (the saved plan was "
            "made without the password)."
            if created
            else f"{label}: the password changed; the saved plan could not compare it "
            "(made without the password), so apply accepts that change."
        )
    return result
