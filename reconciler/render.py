"""Plan -> text | markdown | json. Pure functions: they return strings and print nothing."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import cast

from reconciler import errors, freeze, spec, views
from reconciler import plan as p

FORMAT_VERSION = views.FORMAT_VERSION
MARKDOWN_LIMIT = 65_000

# Colours readable on dark and light backgrounds alike (no blue: dark blue on black is unreadable).
SYMBOLS = {
    p.ActionKind.CREATE: ("+", "green"),
    p.ActionKind.UPDATE: ("~", "yellow"),
    p.ActionKind.RENAME: (">", "cyan"),
    p.ActionKind.ADOPT: ("*", "magenta"),
    p.ActionKind.DELETE: ("-", "red"),
}
_ANSI = {"green": 32, "yellow": 33, "cyan": 36, "blue": 34, "red": 31, "magenta": 35, "bold": 1, "dim": 2}

Style = Callable[[str, str], str]


def ansi(text: str, style: str) -> str:
    return f"\033[{_ANSI[style]}m{text}\033[0m"


def plain(text: str, _style: str) -> str:
    return text


def inert(text: str) -> str:
    """Text from outside as a terminal line shows it: it can never break the line, move the
    cursor, reorder the text around it or hide a character (DESIGN §7).

    Every character str.isprintable() refuses (controls, line and paragraph separators,
    bidirectional and zero-width format characters, spaces other than the plain one), and each
    printable one that shows nothing (spec.UNSEEN: a Hangul filler), is shown as its escape
    (\\n, \\x1b, \\u202e, \\u3164).
    """
    if spec.visible(text):
        return text
    return "".join(c if spec.visible(c) else c.encode("unicode_escape").decode("ascii") for c in text)


def quoted(name: str) -> str:
    """A name in a plan line: inert, in double quotes that it cannot close, its own backslashes
    doubled so that none reads as an escape inert() made (a name with a line break, `\\n`, and
    one with a backslash and an n, `\\\\n`, are two names and look it)."""
    return '"' + inert(name.replace("\\", "\\\\")).replace('"', '\\"') + '"'


# After a value shown escaped: the backslashes in it are escapes, not the value's own.
ESCAPED = "(escaped: it holds characters that do not show)"


def _quoted_value(text: str) -> str:
    """A field's value in a change line (a server, SQL01\\VISMA): inert, quoted, as written.
    One that holds a character that does not show (the portal's `sql01` + line break + `ew`)
    is escaped as a name is, its own backslashes doubled, and says so: shown as written, the
    server `sql01\\new` (instance `new`) looked the same as it."""
    if spec.visible(text):
        return '"' + text.replace('"', '\\"') + '"'
    return quoted(text) + " " + ESCAPED


def value(v: object) -> str:
    if v is None:
        return "(none)"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list | tuple):  # company ids: one id with ", " or "] → [" must not read as two
        return "[" + ", ".join(_company(str(x)) for x in v) + "]"
    return _quoted_value(str(v))


_PLAIN_ID = re.compile(r"[A-Za-z0-9_.-]+")


def plain_id(company_id: str) -> bool:
    """A company id shown without quotes (F0001): none of it can read as a list's punctuation."""
    return _PLAIN_ID.fullmatch(company_id) is not None


def _company(company_id: str) -> str:
    """A company id as is when it is plain (F0001), else quoted like a name."""
    return company_id if plain_id(company_id) else quoted(company_id)


def plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else (many or one + 's')}"


def change_line(c: p.Change, *, create: bool = False) -> str:
    if c.sensitive:
        if c.note:
            return f"{c.field}: (sensitive value, {inert(c.note)})"
        return f"{c.field}: (sensitive value)" if create else f"{c.field}: (sensitive value changed)"
    if create:
        return f"{c.field}: {value(c.after)}"
    return f"{c.field}: {value(c.before)} → {value(c.after)}"


@dataclass(frozen=True)
class Allowed:
    """The guards the run was given (apply's flags): a plan says what they let through."""

    cascade: bool = False
    mass_delete: bool = False
    source_checks: bool = False
    freeze: bool = False  # --override-freeze REASON


NOTHING_ALLOWED = Allowed()


def summary_line(plan: p.Plan) -> str:
    s = plan.summary
    verb = "cascades" if s.cascade == 1 else "cascade"
    line = (
        f"Plan: {s.create} to create, {s.update} to update, {s.rename} to rename, "
        f"{s.adopt} to adopt, {s.delete} to delete; {plural(s.cascade, 'dependent')} {verb}."
    )
    if s.blocked:
        line += f" {s.blocked} blocked."
    return line


def guard_lines(plan: p.Plan, allowed: Allowed = NOTHING_ALLOWED) -> list[tuple[str, bool]]:
    """What the plan needs to be applied, each with whether the run's flags allow it."""
    lines = []
    cascade = plan.summary.cascade
    if cascade:
        what = f"{plural(cascade, 'dependent')} would be deleted"
        lines.append(
            (
                f"Allowed by --allow-cascade: {what}"
                if allowed.cascade
                else f"Needs --allow-cascade: {what}",
                allowed.cascade,
            )
        )
    for reason in plan.mass_delete:
        lines.append(
            (
                f"Allowed by --allow-mass-delete: {reason}"
                if allowed.mass_delete
                else f"Needs --allow-mass-delete: {reason}",
                allowed.mass_delete,
            )
        )
    failed = plan.failed_checks
    if failed:
        what = f"Source checks failed for {plural(len(failed), 'connection')}"
        lines.append(
            (
                f"{what}; allowed by --skip-source-checks"
                if allowed.source_checks
                else f"{what}; apply refuses without --skip-source-checks",
                allowed.source_checks,
            )
        )
    return lines


def _headline(a: p.Action) -> str:
    symbol, _ = SYMBOLS[a.action]
    if a.action is p.ActionKind.RENAME:
        text = f"{symbol} rename {quoted(a.previous_name or '')} → {quoted(a.connection)}"
    else:
        text = f"{symbol} {a.action.value} {quoted(a.connection)}"
    if a.status:
        text += f"  ({a.status.value.replace('_', ' ')})"
    if a.renamed_in_portal:
        before, after = a.renamed_in_portal
        text += f"  (renamed in the portal from {quoted(before)} to {quoted(after)})"
    return text


def action_lines(a: p.Action, style: Style = plain) -> list[str]:
    _, colour = SYMBOLS[a.action]
    head = _headline(a)
    lines = (
        [style(f"! {head[2:]}  BLOCKED: {inert(a.blocked)}", "bold")] if a.blocked else [style(head, colour)]
    )
    create = a.action is p.ActionKind.CREATE
    shown = [c for c in a.changes if not (c.field == "name" and a.action is p.ActionKind.RENAME)]
    lines += [f"    {change_line(c, create=create)}" for c in shown]
    if a.needs_secret:
        lines.append(f"    ! needs the password from {inert(a.needs_secret)} to apply")
    if a.cascade:
        count = plural(len(a.cascade), "dependent")
        lines.append(
            "    "
            + style(
                f"would cascade ({count}; none deleted while blocked):"
                if a.blocked
                else f"cascade ({count} deleted):",
                "red",
            )
        )
        lines += [
            style(f"      - {c.kind.value} {quoted(c.name)} (company {_company(c.company)})", "red")
            for c in a.cascade
        ]
    if a.kept:
        lines.append("    kept (detached from the connection):")
        lines += [f"      = {k.kind} {quoted(k.name)}" for k in a.kept]
    return lines


OVERRIDE_HINT = "apply refuses this tenant's changes without --override-freeze REASON"


def freeze_lines(t: p.TenantPlan, style: Style = plain) -> list[str]:
    """A tenant's open change window, and the next one to open (DESIGN §11)."""
    f = t.freeze
    lines = []
    if f is not None and f.active is not None:
        lines.append(style(f"  ! frozen: {freeze.until_text(f.active)}; {OVERRIDE_HINT}", "magenta"))
    if f is not None and f.upcoming is not None:
        lines.append(f"  note: {freeze.opens_text(f.upcoming)}")
    return lines


def tenant_lines(t: p.TenantPlan, style: Style = plain) -> list[str]:
    """A tenant's section: its windows, actions, unmanaged connections, notes and checks. A
    tenant with nothing but its windows to show is quiet (_QUIET): apply refuses no tenant
    without changes, and a month-end close over 2,000 tenants gave each a section that crowded
    the one with changes out of the comment; their windows are told once (quiet_windows)."""
    lines = _body_lines(t, style)
    return lines if lines == _QUIET else freeze_lines(t, style) + lines


def _body_lines(t: p.TenantPlan, style: Style) -> list[str]:
    lines: list[str] = []
    for a in t.actions:
        lines += ["  " + line for line in action_lines(a, style)]
    if not t.actions:
        lines.append("  no changes")
    for name in t.unmanaged:
        lines.append(f"  ? unmanaged {quoted(name)} (not declared, not managed: never deleted)")
    for note in t.notes:
        lines.append(f"  note: {inert(note)}")
    for check in t.checks:
        if check.ok:
            lines.append(f"  ✓ source {quoted(check.connection)}: server, login, companies and rights OK")
        else:
            lines += [style(f"  ✗ source {inert(problem)}", "red") for problem in check.problems]
    return lines


_QUIET = ["  no changes"]  # the lines of a tenant with nothing to show (tenant_lines)
MAX_QUIET_NAMED = 5  # more tenants without changes than this are counted, not named


def text(plan: p.Plan, *, color: bool = False, allowed: Allowed = NOTHING_ALLOWED) -> str:
    style: Style = ansi if color else plain
    out: list[str] = []
    quiet: list[p.TenantPlan] = []
    for t in plan.tenants:
        lines = tenant_lines(t, style)
        if lines == _QUIET:
            quiet.append(t)
            continue
        out.append(style(t.key, "bold"))
        out += lines
        out.append("")
    # The tenants with nothing to show but "no changes", in one line: a fleet's plan shows its
    # changes, not 2,000 sections saying there are none (as drift leaves out tenants in sync).
    if quiet:
        named = len(quiet) <= MAX_QUIET_NAMED
        said = ", ".join(t.key for t in quiet)
        out += [f"No changes: {said}." if named else f"No changes in {len(quiet):,} tenants."]
        out += [f"  note: {line}" for line in quiet_windows(quiet)]
        out.append("")
    out.append(style(summary_line(plan), "bold"))
    out += [line if ok else style(line, "red") for line, ok in guard_lines(plan, allowed)]
    if plan.frozen:
        out.append(
            style(
                f"Frozen: {len(plan.frozen)} tenant(s) with changes are inside a change window; "
                + (
                    "allowed by --override-freeze (audited)"
                    if allowed.freeze
                    else "apply refuses them without --override-freeze REASON"
                ),
                "magenta",
            )
        )
    used = legend(plan)
    if used:
        out.append(used)
    return "\n".join(out) + "\n"


def quiet_windows(
    quiet: Sequence[p.TenantPlan], *, windows: int = 5, most: int = MAX_QUIET_NAMED
) -> list[str]:
    """The change windows of the tenants without changes (quiet: the text plan found them so),
    one line per opening (the open ones first, then by when they open) with the tenants it
    covers (named up to `most`), the first `windows` of them."""
    held: dict[tuple[bool, freeze.Occurrence], list[str]] = {}
    for t in quiet:
        if t.freeze is not None:
            for active, o in ((True, t.freeze.active), (False, t.freeze.upcoming)):
                if o is not None:
                    held.setdefault((active, o), []).append(t.key)
    lines = []
    ordered = _by_urgency(held)
    for (active, o), keys in ordered[:windows]:
        whom = ", ".join(keys) if len(keys) <= most else f"{len(keys):,} tenants"
        lines.append(f"{(freeze.until_text if active else freeze.opens_text)(o)} for {whom}")
    if len(ordered) > windows:
        lines.append(f"… and {len(ordered) - windows:,} more change windows: `reconciler windows` lists them")
    return lines


def _by_urgency(
    held: Mapping[tuple[bool, freeze.Occurrence], list[str]],
) -> list[tuple[tuple[bool, freeze.Occurrence], list[str]]]:
    """Change windows with their tenants: the open ones first (ending last first), then by when
    they open, so that a cut list never leaves out an open window for one weeks ahead."""
    return sorted(
        held.items(),
        key=lambda item: (
            (0, -item[0][1].end.timestamp()) if item[0][0] else (1, item[0][1].start.timestamp())
        ),
    )


def legend(plan: p.Plan) -> str:
    """One line explaining the symbols of a text plan beyond + ~ -, or "" when it uses none."""
    actions = [a for _, a in plan.all_actions()]
    kinds = {a.action for a in actions}
    used = [
        (p.ActionKind.RENAME in kinds, "> rename"),
        (p.ActionKind.ADOPT in kinds, "* adopt"),
        (any(a.blocked or a.needs_secret for a in actions), "! blocked or needs a secret"),
        (any(t.unmanaged for t in plan.tenants), "? unmanaged (never deleted)"),
        (any(a.kept for a in actions), "= kept (detached, not deleted)"),
    ]
    shown = [text for present, text in used if present]
    return "Legend: " + ", ".join(shown) + "." if shown else ""


# ---------------------------------------------------------------------------------------------
# JSON: the typed views of reconciler.views, which schemas/*.schema.json are generated from


def occurrence_obj(o: freeze.Occurrence) -> views.OccurrenceJSON:
    """An opening of a change window: ISO 8601 with the zone's offset, and the zone."""
    return {
        "window": o.window,
        "start": o.start.isoformat(timespec=freeze.timespec(o.start)),
        "end": o.end.isoformat(timespec=freeze.timespec(o.end)),
        "timezone": o.zone,
    }


def freeze_obj(f: freeze.Freeze) -> views.FreezeJSON:
    return {
        "active": occurrence_obj(f.active) if f.active else None,
        "next": occurrence_obj(f.upcoming) if f.upcoming else None,
    }


def portal_rename_obj(renamed: tuple[str, str]) -> views.PortalRenameJSON:
    return {"from": renamed[0], "to": renamed[1]}


def change_obj(c: p.Change) -> views.ValueChangeJSON | views.SensitiveChangeJSON:
    if c.sensitive:
        obj: views.SensitiveChangeJSON = {"field": c.field, "sensitive": True}
        if c.note:
            obj["note"] = c.note
        return obj
    return {"field": c.field, "before": c.before, "after": c.after}


_ACTION_KEYS = tuple(views.ActionJSON.__annotations__)


def action_obj(a: p.Action) -> views.ActionJSON:
    obj: views.ActionJSON = {
        "action": a.action,
        "connection": a.connection,
        "reason": a.reason,
        "changes": [change_obj(c) for c in a.changes],
        "cascade": [{"kind": c.kind, "name": c.name, "company": c.company} for c in a.cascade],
        "kept": [{"kind": k.kind, "name": k.name} for k in a.kept],
    }
    if a.previous_name is not None:
        obj["previous_name"] = a.previous_name
    if a.status:
        obj["status"] = a.status
    if a.blocked:
        obj["blocked"] = a.blocked
    if a.needs_secret:
        obj["needs_secret"] = a.needs_secret
    if a.renamed_in_portal:
        obj["renamed_in_portal"] = portal_rename_obj(a.renamed_in_portal)
    if a.previous_name is None and not a.status:
        return obj  # already in the order the view declares (and emits) its keys
    keyed: Mapping[str, object] = obj
    return cast(views.ActionJSON, {k: keyed[k] for k in _ACTION_KEYS if k in keyed})


def summary_obj(plan: p.Plan) -> views.SummaryJSON:
    s = plan.summary
    return {
        "create": s.create,
        "update": s.update,
        "rename": s.rename,
        "adopt": s.adopt,
        "delete": s.delete,
        "cascade": s.cascade,
        "blocked": s.blocked,
    }


def tenant_obj(t: p.TenantPlan) -> views.TenantPlanJSON:
    obj: views.TenantPlanJSON = {
        "customer": t.customer,
        "tenant": t.tenant,
        "actions": [action_obj(a) for a in t.actions],
        "unmanaged": list(t.unmanaged),
        "notes": list(t.notes),
    }
    if t.checks:
        obj["checks"] = [
            {"connection": c.connection, "ok": c.ok, "problems": list(c.problems)} for c in t.checks
        ]
    if t.freeze:
        obj["freeze"] = freeze_obj(t.freeze)
    return obj


def plan_obj(plan: p.Plan) -> views.PlanJSON:
    """The plan as JSON data (schemas/plan.schema.json, generated from reconciler.views)."""
    return {
        "format_version": FORMAT_VERSION,
        "tenants": [tenant_obj(t) for t in plan.tenants],
        "summary": summary_obj(plan),
        "guards": {
            "max_delete": plan.max_delete,
            "mass_delete": [str(m) for m in plan.mass_delete],
            "needs_allow_cascade": plan.summary.cascade > 0,
            "needs_allow_mass_delete": bool(plan.mass_delete),
            "source_checks_failed": bool(plan.failed_checks),
        },
    }


def json_text(plan: p.Plan) -> str:
    return json.dumps(plan_obj(plan), indent=2, ensure_ascii=False) + "\n"


# ---------------------------------------------------------------------------------------------
# Markdown (pull-request comment)


_MD_PUNCT = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")


def md_text(text: str) -> str:
    """Our own prose in markdown, every ASCII punctuation backslash-escaped (CommonMark)."""
    return "".join("\\" + c if c in _MD_PUNCT else c for c in inert(text))


def _until(o: freeze.Occurrence) -> str:
    return inert(freeze.until_text(o))


def _md_until(o: freeze.Occurrence) -> str:
    """freeze.until_text in markdown: the window's name (anyone's text) in a code span."""
    return f"change window {md_code(o.window)} until {md_text(freeze.local_text(o.end))}"


def _md_opens(o: freeze.Occurrence) -> str:
    start, end = md_text(freeze.local_text(o.start)), md_text(freeze.local_text(o.end))
    return f"change window {md_code(o.window)} opens {start} (until {end})"


# cmark-gfm (GitHub's renderer) reads no backtick string longer than 80 as a code span's fence.
_LONGEST_FENCE = 80
_BACKTICKS = re.compile("(`+)")


def md_code(text: str) -> str:
    """A name in markdown: an inline code span it cannot close, on one line.

    Inside a code span nothing is markup: no emphasis, link, image, HTML, heading or @mention.
    The fence is one backtick longer than the longest run in the name (CommonMark 6.1). A run
    of 80 or more would need a fence GitHub does not read: such runs are written as escaped
    backticks between code spans of the rest. An empty name, which no code span can hold, is
    said in words.
    """
    body = inert(text.replace("\\", "\\\\"))  # as quoted(): no backslash of its own reads as an escape
    if not body:
        return "*(no name)*"
    if _longest_backtick_run(body) >= _LONGEST_FENCE:
        return "".join(
            "\\`" * len(part) if part[0] == "`" else _code_span(part)
            for part in _BACKTICKS.split(body)
            if part
        )
    return _code_span(body)


def _code_span(body: str) -> str:
    """body (inert) in a code span, its fence one backtick longer than its longest run."""
    fence = "`" * (_longest_backtick_run(body) + 1)
    pad = " " if body[:1] in ("`", " ") or body[-1:] in ("`", " ") else ""
    return f"{fence}{pad}{body}{pad}{fence}"


def _longest_backtick_run(text: str) -> int:
    """The longest run of backticks in text, scanned by the regex engine: a portal's names can
    make a tenant's section hundreds of megabytes (a loop over its characters took 45 s)."""
    return max(map(len, _BACKTICKS.findall(text)), default=0) if "`" in text else 0


def _fence_for(body: str) -> str:
    """A code fence longer than any backtick run in body, so no line of it can close the block."""
    return "`" * max(3, _longest_backtick_run(body) + 1)


class _Budget:
    """Pieces of a document added while they fit under a limit; what did not fit is counted."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.size = 0

    def fits(self, text: str, reserve: int = 0) -> bool:
        return self.size + len(text) + reserve <= self.limit

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text)

    def text(self) -> str:
        return "".join(self.parts)


# Room kept for the closing notes of a cut comment: the note of a cut list (at most
# _LEFT_OUT_ROOM characters of counts and some 300 of words) and the closing [!IMPORTANT] note.
_RESERVE = 4_000
_MAX_LISTED_TENANTS = 12
_LEFT_OUT_ROOM = 2_000  # a tenant's key is up to 401 characters: listed by count, not by number


def _left_out(counts: dict[str, dict[str, int]]) -> str:
    """What a cut list left out, by tenant and kind: the tenants with most first, while they fit
    in _LEFT_OUT_ROOM characters (at most _MAX_LISTED_TENANTS), then the rest by kind."""
    ordered = sorted(counts.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
    shown: list[str] = []
    size = 0
    for key, kinds in ordered[:_MAX_LISTED_TENANTS]:
        entry = f"`{key}`: " + ", ".join(f"{n:,} {kind}" for kind, n in sorted(kinds.items()))
        if size + len(entry) > _LEFT_OUT_ROOM - 300:  # 300: the line below, whatever its kinds
            break
        shown.append(entry)
        size += len(entry) + 2
    rest = ordered[len(shown) :]
    if rest:
        by_kind: dict[str, int] = {}
        for _, kinds in rest:
            for kind, n in kinds.items():
                by_kind[kind] = by_kind.get(kind, 0) + n
        what = ", ".join(f"{n:,} {kind}" for kind, n in sorted(by_kind.items()))
        shown.append(f"{len(rest):,} more {'tenant' if len(rest) == 1 else 'tenants'}: {what}")
    return "; ".join(shown)


def _destructive_items(plan: p.Plan) -> Iterable[tuple[str, str, Callable[[], str]]]:
    """(tenant key, kind counted when left out, its markdown line) for every destructive item;
    lines are made on demand, so that a cut list of a million items costs only counting."""
    for t, a in plan.all_actions():
        if not (a.action is p.ActionKind.DELETE or a.cascade or a.blocked):
            continue
        kind = (
            "blocked"
            if a.blocked
            else ("connection deletes" if a.action is p.ActionKind.DELETE else "company removals")
        )

        def head(t: p.TenantPlan = t, a: p.Action = a) -> str:
            state = " — **blocked**: " + md_code(a.blocked) if a.blocked else ""
            return f"- `{t.key}`: **{a.action.value}** {md_code(a.connection)}{state}\n"

        yield t.key, kind, head
        verb = "would delete (blocked)" if a.blocked else "deletes"
        for c in a.cascade:
            yield (
                t.key,
                f"{c.kind.value}s",
                lambda c=c, verb=verb: (  # type: ignore[misc]
                    f"  - {verb} {c.kind.value} {md_code(c.name)} (company {md_code(c.company)})\n"
                ),
            )
        for k in a.kept:
            yield (
                t.key,
                "kept templates",
                lambda k=k: (  # type: ignore[misc]
                    f"  - keeps {k.kind} {md_code(k.name)}\n"
                ),
            )


# A hint (RECONCILER_HINT_*) is a sentence: longer, it is cut to this many characters.
MAX_HINT = 300


def _let_through(flag: str, hints: Mapping[str, str]) -> str:
    """What lets a guarded apply through, in the pipeline's words when it gave them (DESIGN §10)."""
    hint = hints.get(flag)
    if hint and len(hint) > MAX_HINT:  # the pipeline's setting, but the comment's limit holds for it too
        hint = hint[: MAX_HINT - 1] + "…"
    return f" To let the apply through: {md_text(hint)}." if hint else ""


def _alerts(plan: p.Plan, allowed: Allowed, hints: Mapping[str, str]) -> list[str]:
    s = plan.summary
    out = []
    if s.cascade:
        gate = (
            "`--allow-cascade` was given: they will be deleted."
            if allowed.cascade
            else "`apply` refuses this plan without `--allow-cascade`."
            + _let_through("--allow-cascade", hints)
        )
        out.append(
            f"> [!WARNING]\n> This plan deletes {plural(s.cascade, 'dependent')} in "
            f"cascade (data access filters, budget flows, publisher jobs, reports), listed "
            f"below. {gate}\n"
        )
    if plan.mass_delete:
        gate = (
            "`--allow-mass-delete` was given."
            if allowed.mass_delete
            else "`apply` refuses it without `--allow-mass-delete`."
            + _let_through("--allow-mass-delete", hints)
        )
        reasons = [md_code(str(r)) for r in plan.mass_delete[:5]]
        if len(plan.mass_delete) > 5:
            reasons.append(f"and {len(plan.mass_delete) - 5:,} more")
        out.append("> [!CAUTION]\n> Mass delete: " + "; ".join(reasons) + f". {gate}\n")
    if s.blocked:
        out.append(
            f"> [!NOTE]\n> {plural(s.blocked, 'action')} blocked (protected or "
            "unmanaged connections): shown, never carried out.\n"
        )
    return out


_REFUSES = "`apply` refuses their changes without `--override-freeze REASON`"


def _freeze_warning(
    plan: p.Plan, hints: Mapping[str, str] | None = None, *, most: int = 10, windows: int = 5
) -> list[str]:
    """GitHub alerts naming the change windows (the first `windows` of each alert) and the
    tenants each holds (the first `most`): a warning for the open ones and those opening within
    a week, a note for those further ahead. Bounded whatever reconciler.yaml holds."""
    warn: dict[tuple[bool, freeze.Occurrence], list[str]] = {}
    later: dict[tuple[bool, freeze.Occurrence], list[str]] = {}
    # The tenants with changes first: theirs are what apply refuses, and a list cut at `most`
    # names them before those without changes.
    for t in sorted(plan.tenants, key=lambda t: not t.has_changes):
        if t.freeze is not None and t.freeze.active is not None:
            warn.setdefault((True, t.freeze.active), []).append(t.key)
        if t.freeze is not None and t.freeze.upcoming is not None:
            (warn if t.freeze.soon else later).setdefault((False, t.freeze.upcoming), []).append(t.key)
    lines: list[str] = []
    for alert, held in (("WARNING", warn), ("NOTE", later)):
        if not held:
            continue
        lines.append(f"> [!{alert}]")
        ordered = _by_urgency(held)
        for (active, o), keys in ordered[:windows]:
            names = errors.some_of([f"`{k}`" for k in keys], most)
            what = f"**{_md_until(o)}**: {names}; {_REFUSES}" if active else f"{_md_opens(o)}: {names}"
            lines.append(f"> - {what}")
        if len(ordered) > windows:
            rest = {key for _, keys in ordered[windows:] for key in keys}
            lines.append(
                f"> - … and {len(ordered) - windows:,} more windows covering {len(rest):,} tenants: "
                "`reconciler windows` lists them all"
            )
        let_through = _let_through("--override-freeze", hints or {})
        if let_through and alert == "WARNING" and plan.frozen:  # changes apply would refuse
            lines.append(">" + let_through)
        lines.append("")
    return lines


def markdown(
    plan: p.Plan,
    *,
    limit: int = MARKDOWN_LIMIT,
    allowed: Allowed = NOTHING_ALLOWED,
    hints: Mapping[str, str] | None = None,
    expires: str | None = None,
) -> str:
    """A pull-request comment, under `limit` characters for any plan.

    Summary, counts and alerts always survive; the destructive list, the source-check failures
    and the per-tenant sections are cut where they must be, and what was left out is counted by
    tenant and kind, pointing at the full plan (JSON, HTML). hints: per guard flag, the
    pipeline's words for what lets the apply through ("add the label ..."); expires: when the
    saved plan this comment shows stops being applicable.
    """
    hints = hints or {}
    s = plan.summary
    doc = _Budget(limit)
    doc.add(
        "\n".join(
            [
                "## osr-reconciler plan",
                "",
                "| create | update | rename | adopt | delete | cascading deletions | blocked |",
                "|---:|---:|---:|---:|---:|---:|---:|",
                f"| {s.create} | {s.update} | {s.rename} | {s.adopt} | {s.delete} | {s.cascade} | "
                f"{s.blocked} |",
                "",
                f"**{md_text(summary_line(plan))}**",
                "",
                "",
            ]
        )
    )
    if expires:
        doc.add(f"The saved plan is valid until {md_text(expires)}; after that, plan again.\n\n")
    for alert in _alerts(plan, allowed, hints):
        doc.add(alert + "\n")
    # After the summary and the destructive alerts (DESIGN §7: summary first): five windows of
    # ten tenants each, with 200-character names, put 44 KB of them above the counts.
    windows = "\n".join(_freeze_warning(plan, hints))
    if windows:
        doc.add(windows + "\n")
    cut_notes: list[str] = []
    failed = [(t.key, problem) for t, c in plan.failed_checks for problem in c.problems]
    if failed:
        gate = (
            "`--skip-source-checks` was given: the apply goes on."
            if allowed.source_checks
            else "`apply` refuses this plan without `--skip-source-checks`."
            + _let_through("--skip-source-checks", hints)
        )
        doc.add(f"### Source checks failed\n\n{gate}\n\n")
        for i, (key, problem) in enumerate(failed):
            line = f"- `{key}`: {md_code(problem)}\n"
            if not doc.fits(line, reserve=limit // 2):
                # counted by tenant, as the destructive list's cut is (a total named none of them)
                by_tenant: dict[str, dict[str, int]] = {}
                for left_key, _ in failed[i:]:
                    kinds = by_tenant.setdefault(left_key, {"source-check problems": 0})
                    kinds["source-check problems"] += 1
                cut_notes.append(f"{len(failed) - i:,} more source-check problems")
                doc.add(f"- … and {len(failed) - i:,} more source-check problems: {_left_out(by_tenant)}\n")
                break
            doc.add(line)
        doc.add("\n")
    items = iter(_destructive_items(plan))
    first = next(items, None)
    if first is not None:
        doc.add("### Destructive actions\n\n")
        for key, kind, make in itertools.chain([first], items):
            line = make()
            if not doc.fits(line, reserve=_RESERVE + limit // 8):
                left: dict[str, dict[str, int]] = {key: {kind: 1}}
                for key, kind, _ in items:
                    left.setdefault(key, {}).setdefault(kind, 0)
                    left[key][kind] += 1
                total = sum(sum(kinds.values()) for kinds in left.values())
                doc.add(
                    f"- … and {total:,} more, left out to stay under {limit:,} "
                    f"characters: {_left_out(left)}\n"
                )
                cut_notes.append("destructive items")
                break
            doc.add(line)
        doc.add("\n")
    listed = plan.tenants
    sections = [_section(t) for t in listed]
    if not doc.fits("".join(sections), reserve=_RESERVE):
        # Not everything fits: the tenants with nothing to show go first, so that a change in the
        # last of 2,000 tenants is not cut for 1,999 sections saying "no changes".
        shown = [(t, section) for t, section in zip(listed, sections, strict=True) if not _quiet(t)]
        quiet = len(listed) - len(shown)
        if quiet:
            doc.add(f"{quiet:,} of {len(listed):,} tenants have no changes and are not listed here.\n\n")
            cut_notes.append("tenants without changes")
            listed, sections = tuple(t for t, _ in shown), [section for _, section in shown]
    for i, (t, section) in enumerate(zip(listed, sections, strict=True)):
        if not doc.fits(section, reserve=_RESERVE):
            lines_left = doc.limit - doc.size - _RESERVE
            if i == 0 or lines_left > 2_000:
                cut = _section(t, budget=lines_left)
                doc.add(cut)
                if cut != section:
                    cut_notes.append(f"part of one tenant section, {_left_out(_kinds_of([t]))} in all")
                i += 1
            rest = len(listed) - i
            if rest:
                doc.add(
                    f"\n**{rest:,} of {len(listed):,} tenants left out to stay under "
                    f"{limit:,} characters: {_left_out(_kinds_of(listed[i:]))}.**\n"
                )
                cut_notes.append("tenant sections")
            break
        doc.add(section)
    if cut_notes:
        doc.add(
            "\n> [!IMPORTANT]\n> This comment was cut to stay under "
            f"{limit:,} characters ({', '.join(cut_notes)}); the summary above counts "
            "everything. The full plan is in the JSON and HTML artifacts of this job.\n"
        )
    return doc.text()


def _kinds_of(tenants: Sequence[p.TenantPlan]) -> dict[str, dict[str, int]]:
    """What each tenant's section shows, counted by kind (for a cut comment's note)."""
    counts: dict[str, dict[str, int]] = {}
    for t in tenants:
        kinds: dict[str, int] = {}
        for a in t.actions:
            kind = "blocked" if a.blocked else a.action.value
            kinds[kind] = kinds.get(kind, 0) + 1
        windows = bool(freeze_lines(t)) and not _quiet(t)
        more = (("unmanaged", len(t.unmanaged)), ("notes", len(t.notes)), ("source checks", len(t.checks)))
        for kind, n in (*more, ("change windows", int(windows))):
            if n:
                kinds[kind] = n
        counts[t.key] = kinds or {"no changes": 1}
    return counts


def tenant_counts(t: p.TenantPlan) -> str:
    """A tenant's actions by kind as the plan's summary counts them (blocked apart: shown, never
    carried out), its cascade and its unmanaged connections: a section's heading in every format."""
    going = [a for a in t.actions if not a.blocked]
    parts = [
        f"{sum(1 for a in going if a.action is kind):,} {kind.value}"
        for kind in p.ORDER
        if any(a.action is kind for a in going)
    ]
    cascade = sum(len(a.cascade) for a in going)
    if cascade:
        parts.append(f"{cascade:,} {'dependent' if cascade == 1 else 'dependents'} cascade")
    blocked = sum(1 for a in t.actions if a.blocked)
    if blocked:
        parts.append(f"{blocked:,} blocked")
    if t.unmanaged:
        parts.append(f"{len(t.unmanaged):,} unmanaged")
    return ", ".join(parts)


def _quiet(t: p.TenantPlan) -> bool:
    """Nothing to show for this tenant but "no changes" (no action, note, window or check)."""
    return tenant_lines(t) == _QUIET


def _section(t: p.TenantPlan, budget: int | None = None) -> str:
    """One collapsible section per tenant; with a budget, its lines cut to fit."""
    counts = tenant_counts(t)
    lines = [line.removeprefix("  ") for line in tenant_lines(t)]  # diff colours at column 0
    body = "\n".join(lines)
    # The budget holds the two fences too: a name with a run of 3,000 backticks makes each 3,001.
    if budget is not None and len(body) + 2 * len(_fence_for(body)) > budget - 400:
        kept: list[str] = []
        size, fence_size = 0, 3
        for line in lines:
            needs = max(fence_size, _longest_backtick_run(line) + 1)
            if size + len(line) + 1 + 2 * needs > budget - 400:
                break
            kept.append(line)
            size, fence_size = size + len(line) + 1, needs
        kept.append(f"… {len(lines) - len(kept):,} more lines of this tenant left out")
        body = "\n".join(kept)
    fence = _fence_for(body)
    return (
        f"<details><summary><code>{t.key}</code>: {counts or 'no changes'}</summary>\n\n"
        f"{fence}diff\n{body}\n{fence}\n\n</details>\n\n"
    )


RENDERERS: dict[str, Callable[[p.Plan], str]] = {
    "text": text,
    "json": json_text,
    "markdown": markdown,
}


# ---------------------------------------------------------------------------------------------
# Drift report (reconciler drift)


def drift_item(a: p.Action) -> views.DriftItemJSON:
    item: views.DriftItemJSON = {
        "connection": a.connection,
        "status": p.DriftStatus(a.status or p.Status.PENDING),
        "action": a.action,
        # A create lists every field it sets, the name too: the name is the item already.
        "fields": [c.field for c in a.changes if c.field != "name" or a.action is not p.ActionKind.CREATE],
    }
    if a.blocked:
        item["blocked"] = a.blocked
    if a.renamed_in_portal:
        item["renamed_in_portal"] = portal_rename_obj(a.renamed_in_portal)
    return item


def drift_items(plan: p.Plan) -> list[views.DriftTenantJSON]:
    """Per tenant, each connection that differs and why: drift, pending, both, or unmanaged."""
    tenants = []
    for t in plan.tenants:
        items = [drift_item(a) for a in t.actions]
        items += [
            {"connection": name, "status": p.DriftStatus.UNMANAGED, "action": None, "fields": []}
            for name in t.unmanaged
        ]
        tenant: views.DriftTenantJSON = {"customer": t.customer, "tenant": t.tenant, "connections": items}
        if t.freeze:
            tenant["freeze"] = freeze_obj(t.freeze)
        if t.name_notes:  # the plan's notes about names: two that look the same (DESIGN §8)
            tenant["notes"] = list(t.name_notes)
        tenants.append(tenant)
    return tenants


def drift_obj(plan: p.Plan) -> views.DriftJSON:
    """The drift report as JSON data (schemas/drift.schema.json, generated from reconciler.views)."""
    tenants = drift_items(plan)
    counts = dict.fromkeys(p.DriftStatus, 0)
    for t in tenants:
        for item in t["connections"]:
            counts[item["status"]] += 1
    S = p.DriftStatus
    return {
        "format_version": FORMAT_VERSION,
        "kind": "drift",
        "tenants": tenants,
        "summary": {
            "drift": counts[S.DRIFT],
            "pending": counts[S.PENDING],
            "drift_and_pending": counts[S.DRIFT_AND_PENDING],
            "unmanaged": counts[S.UNMANAGED],
        },
    }


_DRIFT_COLOURS = {
    p.DriftStatus.DRIFT: "red",
    p.DriftStatus.DRIFT_AND_PENDING: "red",
    p.DriftStatus.PENDING: "yellow",
    p.DriftStatus.UNMANAGED: "dim",
}


def drift_text(
    plan: p.Plan, *, color: bool = False, markdown_out: bool = False, limit: int = MARKDOWN_LIMIT
) -> str:
    """The drift report as text, or as markdown (bounded like the plan comment)."""
    style: Style = ansi if color and not markdown_out else plain
    name: Callable[[str], str] = md_code if markdown_out else quoted
    obj = drift_obj(plan)
    s = obj["summary"]
    total = (
        f"Drift: {s['drift']} drifted, {s['pending']} pending, {s['drift_and_pending']} "
        f"both, {s['unmanaged']} unmanaged."
    )
    lines = ["## osr-reconciler drift", "", md_text(total), ""] if markdown_out else []
    # Per line, the tenant and the status of the connection it shows (None: no connection), to
    # count what a cut comment leaves out.
    items: list[tuple[str, str] | None] = [None] * len(lines)
    for tp, t in zip(plan.tenants, obj["tenants"], strict=True):
        if not t["connections"] and not tp.name_notes:
            continue
        key = f"{t['customer']}/{t['tenant']}"
        lines.append(
            f"### `{t['customer']}/{t['tenant']}`"
            if markdown_out
            else style(f"{t['customer']}/{t['tenant']}", "bold")
        )
        if tp.freeze is not None and tp.freeze.active is not None:
            lines.append(
                ("- " if markdown_out else "  ")
                + style(
                    "frozen: "
                    + (_md_until if markdown_out else _until)(tp.freeze.active)
                    + "; changes made during it may "
                    "be intended: do not revert them before it ends",
                    "magenta",
                )
            )
        items += [None] * (len(lines) - len(items))
        for item in t["connections"]:
            what = item["status"].replace("_", " ")  # the status words, as the JSON has them
            detail = f"  {item['action']}" if item["action"] else ""
            fields = f": {', '.join(item['fields'])}" if item["fields"] else ""
            portal = item.get("renamed_in_portal")
            if portal:
                detail += f"  (renamed in the portal from {name(portal['from'])} to {name(portal['to'])})"
            blocked = item.get("blocked")
            if blocked:  # why the nightly report keeps showing it: apply will not carry it out
                fields += "  BLOCKED: " + (md_code(blocked) if markdown_out else inert(blocked))
            colour = _DRIFT_COLOURS[item["status"]]
            lines.append(
                ("- " if markdown_out else "  ")
                + style(f"{what:<18}", colour)
                + f"{name(item['connection'])}{detail}{fields}"
            )
            items.append((key, what))
        # What the plan notes (two names that look the same, a portal rename onto a look-alike of
        # another declared name): the nightly report is where they are read (DESIGN §8)
        lines += [(f"- note: {md_code(n)}" if markdown_out else f"  note: {inert(n)}") for n in tp.name_notes]
        lines.append("")
        items.append(None)
    if not markdown_out:
        lines.append(total)
        return "\n".join(lines) + "\n"
    doc = _Budget(limit)
    for i, line in enumerate(lines):
        if not doc.fits(line + "\n", reserve=_RESERVE):
            counts: dict[str, dict[str, int]] = {}
            for shown in items[i:]:
                if shown is not None:
                    kinds = counts.setdefault(shown[0], {})
                    kinds[shown[1]] = kinds.get(shown[1], 0) + 1
            left = sum(sum(k.values()) for k in counts.values())
            doc.add(
                f"\n**… {left:,} more connections left out to stay under {limit:,} characters "
                f"({_left_out(counts)}); the summary above counts everything. The full report is "
                "in `drift --format json` (or html).**\n"
            )
            break
        doc.add(line + "\n")
    return doc.text()
