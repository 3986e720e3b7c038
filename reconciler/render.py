"""Plan -> text | markdown | json. Pure functions: they return strings and print nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from reconciler import plan as p

FORMAT_VERSION = 1
MARKDOWN_LIMIT = 65_000

# Colours readable on dark and light backgrounds alike (no blue: dark blue on black is unreadable).
SYMBOLS = {
    p.ActionKind.CREATE: ("+", "green"),
    p.ActionKind.UPDATE: ("~", "yellow"),
    p.ActionKind.RENAME: (">", "cyan"),
    p.ActionKind.ADOPT: ("*", "magenta"),
    p.ActionKind.DELETE: ("-", "red"),
}
_ANSI = {"green": 32, "yellow": 33, "cyan": 36, "blue": 34, "red": 31, "magenta": 35, "bold": 1,
         "dim": 2}

Style = Callable[[str, str], str]


def ansi(text: str, style: str) -> str:
    return f"\033[{_ANSI[style]}m{text}\033[0m"


def plain(text: str, _style: str) -> str:
    return text


def value(v: object) -> str:
    if v is None:
        return "(none)"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list | tuple):
        return "[" + ", ".join(str(x) for x in v) + "]"
    return f'"{v}"'


def change_line(c: p.Change, *, create: bool = False) -> str:
    if c.sensitive:
        if c.note:
            return f"{c.field}: (sensitive value, {c.note})"
        return f"{c.field}: (sensitive value)" if create else f"{c.field}: (sensitive value changed)"
    if create:
        return f"{c.field}: {value(c.after)}"
    return f"{c.field}: {value(c.before)} → {value(c.after)}"


def summary_line(plan: p.Plan) -> str:
    s = plan.summary
    line = (f"Plan: {s.create} to create, {s.update} to update, {s.rename} to rename, "
            f"{s.adopt} to adopt, {s.delete} to delete; {s.cascade} dependents cascade.")
    if s.blocked:
        line += f" {s.blocked} blocked."
    return line


def _headline(a: p.Action) -> str:
    symbol, _ = SYMBOLS[a.action]
    if a.action is p.ActionKind.RENAME:
        text = f'{symbol} rename "{a.previous_name}" → "{a.connection}"'
    else:
        text = f'{symbol} {a.action.value} "{a.connection}"'
    if a.status:
        text += f"  ({a.status.value.replace('_', ' ')})"
    return text


def action_lines(a: p.Action, style: Style = plain) -> list[str]:
    _, colour = SYMBOLS[a.action]
    head = _headline(a)
    lines = ([style(f"! {head[2:]}  BLOCKED: {a.blocked}", "bold")] if a.blocked
             else [style(head, colour)])
    create = a.action is p.ActionKind.CREATE
    shown = [c for c in a.changes if not (c.field == "name" and a.action is p.ActionKind.RENAME)]
    lines += [f"    {change_line(c, create=create)}" for c in shown]
    if a.needs_secret:
        lines.append(f"    ! needs the password from {a.needs_secret} to apply")
    if a.cascade:
        lines.append("    " + style(f"cascade ({len(a.cascade)} deleted):", "red"))
        lines += [style(f'      - {c.kind.value} "{c.name}" (company {c.company})', "red")
                  for c in a.cascade]
    if a.kept:
        lines.append("    kept (detached from the connection):")
        lines += [f'      = {k.kind} "{k.name}"' for k in a.kept]
    return lines


def tenant_lines(t: p.TenantPlan, style: Style = plain) -> list[str]:
    lines = []
    for a in t.actions:
        lines += ["  " + line for line in action_lines(a, style)]
    if not t.actions:
        lines.append("  no changes")
    for name in t.unmanaged:
        lines.append(f'  ? unmanaged "{name}" (not declared, not managed: never deleted)')
    for note in t.notes:
        lines.append(f"  note: {note}")
    for check in t.checks:
        if check.ok:
            lines.append(f'  ✓ source "{check.connection}": server, login, companies and rights OK')
        else:
            lines += [style(f"  ✗ source {problem}", "red") for problem in check.problems]
    return lines


def text(plan: p.Plan, *, color: bool = False) -> str:
    style: Style = ansi if color else plain
    out: list[str] = []
    for t in plan.tenants:
        out.append(style(t.key, "bold"))
        out += tenant_lines(t, style)
        out.append("")
    out.append(style(summary_line(plan), "bold"))
    for reason in plan.mass_delete:
        out.append(style(f"Needs --allow-mass-delete: {reason}", "red"))
    if plan.summary.cascade:
        out.append(style(f"Needs --allow-cascade: {plan.summary.cascade} dependents would be deleted",
                         "red"))
    failed = plan.failed_checks
    if failed:
        out.append(style(f"Source checks failed for {len(failed)} connection(s); apply refuses "
                         "without --skip-source-checks", "red"))
    used = legend(plan)
    if used:
        out.append(used)
    return "\n".join(out) + "\n"


def legend(plan: p.Plan) -> str:
    """One line explaining the symbols of a text plan beyond + ~ -, or "" when it uses none."""
    actions = [a for _, a in plan.actions()]
    kinds = {a.action for a in actions}
    used = [(p.ActionKind.RENAME in kinds, "> rename"), (p.ActionKind.ADOPT in kinds, "* adopt"),
            (any(a.blocked or a.needs_secret for a in actions), "! blocked or needs a secret"),
            (any(t.unmanaged for t in plan.tenants), "? unmanaged (never deleted)"),
            (any(a.kept for a in actions), "= kept (detached, not deleted)")]
    shown = [text for present, text in used if present]
    return "Legend: " + ", ".join(shown) + "." if shown else ""


# ---------------------------------------------------------------------------------------------
# JSON (schemas/plan.schema.json)


def change_obj(c: p.Change) -> dict[str, Any]:
    if c.sensitive:
        obj: dict[str, Any] = {"field": c.field, "sensitive": True}
        if c.note:
            obj["note"] = c.note
        return obj
    return {"field": c.field, "before": c.before, "after": c.after}


def action_obj(a: p.Action) -> dict[str, Any]:
    obj: dict[str, Any] = {"action": a.action.value, "connection": a.connection}
    if a.previous_name is not None:
        obj["previous_name"] = a.previous_name
    obj["reason"] = a.reason.value
    if a.status:
        obj["status"] = a.status.value
    obj["changes"] = [change_obj(c) for c in a.changes]
    obj["cascade"] = [{"kind": c.kind.value, "name": c.name, "company": c.company} for c in a.cascade]
    obj["kept"] = [{"kind": k.kind, "name": k.name} for k in a.kept]
    if a.blocked:
        obj["blocked"] = a.blocked
    if a.needs_secret:
        obj["needs_secret"] = a.needs_secret
    return obj


def summary_obj(plan: p.Plan) -> dict[str, int]:
    s = plan.summary
    return {"create": s.create, "update": s.update, "rename": s.rename, "adopt": s.adopt,
            "delete": s.delete, "cascade": s.cascade, "blocked": s.blocked}


def plan_obj(plan: p.Plan) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "tenants": [{"customer": t.customer, "tenant": t.tenant,
                     "actions": [action_obj(a) for a in t.actions],
                     "unmanaged": list(t.unmanaged), "notes": list(t.notes),
                     **({"checks": [{"connection": c.connection, "ok": c.ok,
                                     "problems": list(c.problems)} for c in t.checks]}
                        if t.checks else {})}
                    for t in plan.tenants],
        "summary": summary_obj(plan),
        "guards": {"max_delete": plan.max_delete, "mass_delete": list(plan.mass_delete),
                   "needs_allow_cascade": plan.summary.cascade > 0,
                   "needs_allow_mass_delete": bool(plan.mass_delete),
                   "source_checks_failed": bool(plan.failed_checks)},
    }


def json_text(plan: p.Plan) -> str:
    return json.dumps(plan_obj(plan), indent=2, ensure_ascii=False) + "\n"


# ---------------------------------------------------------------------------------------------
# Markdown (pull-request comment)


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def markdown(plan: p.Plan, *, limit: int = MARKDOWN_LIMIT) -> str:
    s = plan.summary
    head = ["## osr-reconciler plan", "",
            "| create | update | rename | adopt | delete | cascading deletions | blocked |",
            "|---:|---:|---:|---:|---:|---:|---:|",
            f"| {s.create} | {s.update} | {s.rename} | {s.adopt} | {s.delete} | {s.cascade} | {s.blocked} |",
            "", f"**{summary_line(plan)}**", ""]
    for reason in plan.mass_delete:
        head.append(f"> [!CAUTION]\n> Needs `--allow-mass-delete`: {_md_escape(reason)}\n")
    failed = plan.failed_checks
    if failed:
        head += ["### Source checks failed", ""]
        head += [f"- `{t.key}`: {_md_escape(problem)}" for t, c in failed for problem in c.problems]
        head.append("")
    destructive = [(t, a) for t, a in plan.actions()
                   if a.action is p.ActionKind.DELETE or a.cascade or a.blocked]
    if destructive:
        head += ["### Destructive actions", ""]
        for t, a in destructive:
            state = " — **blocked**: " + _md_escape(a.blocked) if a.blocked else ""
            head.append(f"- `{t.key}`: **{a.action.value}** {_md_escape(a.connection)}{state}")
            for c in a.cascade:
                head.append(f"  - deletes {c.kind.value} *{_md_escape(c.name)}* "
                            f"(company {_md_escape(c.company)})")
            for k in a.kept:
                head.append(f"  - keeps {k.kind} *{_md_escape(k.name)}*")
        head.append("")
    sections = []
    for t in plan.tenants:
        counts = ", ".join(f"{sum(1 for a in t.actions if a.action is kind)} {kind.value}"
                           for kind in p.ORDER if any(a.action is kind for a in t.actions))
        body = "\n".join(line.removeprefix("  ") for line in tenant_lines(t))  # diff colours at column 0
        sections.append(f"<details><summary><code>{t.key}</code>: {counts or 'no changes'}"
                        f"</summary>\n\n```diff\n{body}\n```\n\n</details>\n")
    out = "\n".join(head) + "\n"
    for i, section in enumerate(sections):
        remaining = len(sections) - i
        note = (f"\n**{remaining} of {len(sections)} tenants left out to stay under {limit} "
                "characters; the full plan is in the JSON artifact.**\n")
        if len(out) + len(section) + len(note) > limit:
            out += note
            break
        out += section
    return out


RENDERERS: dict[str, Callable[[p.Plan], str]] = {
    "text": text,
    "json": json_text,
    "markdown": markdown,
}


# ---------------------------------------------------------------------------------------------
# Drift report (reconciler drift)


def drift_items(plan: p.Plan) -> list[dict[str, Any]]:
    """Per tenant, each connection that differs and why: drift, pending, both, or unmanaged."""
    tenants = []
    for t in plan.tenants:
        items: list[dict[str, Any]] = []
        for a in t.actions:
            status = a.status.value if a.status else p.Status.PENDING.value
            items.append({"connection": a.connection, "status": status, "action": a.action.value,
                          "fields": [c.field for c in a.changes if c.field != "name" or a.previous_name],
                          **({"blocked": a.blocked} if a.blocked else {})})
        items += [{"connection": name, "status": "unmanaged", "action": None, "fields": []}
                  for name in t.unmanaged]
        tenants.append({"customer": t.customer, "tenant": t.tenant, "connections": items})
    return tenants


def drift_obj(plan: p.Plan) -> dict[str, Any]:
    tenants = drift_items(plan)
    counts = {"drift": 0, "pending": 0, "drift_and_pending": 0, "unmanaged": 0}
    for t in tenants:
        for item in t["connections"]:
            counts[item["status"]] += 1
    return {"format_version": FORMAT_VERSION, "kind": "drift", "tenants": tenants, "summary": counts}


def drift_text(plan: p.Plan, *, color: bool = False, markdown_out: bool = False) -> str:
    style: Style = ansi if color and not markdown_out else plain
    obj = drift_obj(plan)
    lines = ["## osr-reconciler drift", ""] if markdown_out else []
    for t in obj["tenants"]:
        if not t["connections"]:
            continue
        lines.append(style(f"{t['customer']}/{t['tenant']}", "bold"))
        for item in t["connections"]:
            what = item["status"].replace("_", " ")
            detail = f"  {item['action']}" if item["action"] else ""
            fields = f": {', '.join(item['fields'])}" if item["fields"] else ""
            colour = {"drift": "red", "drift and pending": "red", "pending": "yellow"}.get(what, "dim")
            lines.append(("- " if markdown_out else "  ")
                         + style(f"{what:<18}", colour) + f'"{item["connection"]}"{detail}{fields}')
        lines.append("")
    s = obj["summary"]
    lines.append(f"Drift: {s['drift']} drifted, {s['pending']} pending, {s['drift_and_pending']} both, "
                 f"{s['unmanaged']} unmanaged.")
    return "\n".join(lines) + "\n"
