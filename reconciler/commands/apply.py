"""`reconciler apply`: carry out a fresh or saved plan under every guard."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import click

from reconciler import applier, declared, errors, planfile, render, settle, store, workflow
from reconciler import plan as p
from reconciler.commands import options


def _confirm(result: p.Plan, auto_approve: bool, out: options.Out) -> None:
    if auto_approve:
        return
    if not sys.stdin.isatty():
        raise errors.RefusedError("refused: not on a terminal; review the plan and pass "
                                  "--auto-approve to apply without a prompt")
    answer = click.prompt("Apply this plan? Only 'yes' is accepted", default="", show_default=False,
                          err=True)
    if answer.strip() != "yes":
        raise errors.RefusedError("apply cancelled; nothing was changed")


def _require_passwords(ctx: workflow.Context, wanted: Sequence[declared.DesiredTenant]) -> None:
    """Refuse up front, before planning, naming every password the files need that is not set."""
    missing = workflow.unavailable_passwords(ctx, wanted)
    if missing:
        raise errors.RefusedError("passwords missing", problems=tuple(
            errors.Problem(t.path, 0, 0, f"refused: {t.key}/{name} needs the password from {ref}, "
                           f"which is {'not set' if ref.env else 'not found'}; apply needs every "
                           "password its tenant files reference; nothing was applied")
            for t, name, ref in missing))


def _settle(ctx: workflow.Context, st: store.Store, wanted: Sequence[declared.DesiredTenant],
            timeout: float, out: options.Out) -> None:
    """Record as applied the connections the files already declare as they are live (§9)."""
    assert st.keyring is not None
    fps = workflow.password_fingerprints(ctx, st.keyring, wanted)
    for s in settle.record(st, wanted, fps, lock_timeout_s=timeout):
        out.info(f"{s.key}/{s.connection}: recorded as applied (the files accept the portal's state)")


@click.command()
@click.argument("paths", nargs=-1, metavar="[PATH]...")
@options.tenant_option
@click.option("--plan", "plan_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Apply this saved plan (from `plan --out`) instead of planning now.")
@click.option("--auto-approve", is_flag=True, help="Do not ask; required when not on a terminal.")
@click.option("--allow-cascade", is_flag=True, help="Allow deleting dependents (listed in the plan).")
@click.option("--allow-mass-delete", is_flag=True,
              help="Allow deleting more than --max-delete connections or all of a tenant's.")
@options.max_delete_option
@click.option("--lock-timeout", default="0s", show_default=True, metavar="DURATION",
              help="How long to wait for another apply's lock on a tenant.")
@click.option("--check-sources", is_flag=True,
              help="Check each accounting server before applying (a saved plan keeps its checks).")
@click.option("--skip-source-checks", is_flag=True,
              help="Apply even if the source checks found problems.")
@options.format_option
@options.common
def apply(ctx: workflow.Context, out: options.Out, paths: tuple[str, ...], tenants: tuple[str, ...],
          plan_file: Path | None, auto_approve: bool, allow_cascade: bool,
          allow_mass_delete: bool, max_delete: int, lock_timeout: str, check_sources: bool,
          skip_source_checks: bool, fmt: str) -> int:
    """Plan (or load a saved plan), show it, and apply it in one transaction."""
    timeout = planfile.duration(lock_timeout, flag="--lock-timeout")
    if plan_file is not None and (paths or tenants):
        raise errors.InputError("--plan applies the saved plan's own tenant files; give either "
                                "--plan FILE, or PATH and --tenant, not both")
    st = ctx.open_store(readonly=False, first_use=True)
    try:
        assert st.keyring is not None
        if plan_file is not None:
            saved = planfile.read(plan_file, keyring=st.keyring, store_id=st.store_id)
            files = [Path(v["path"]) for v in saved.tenants.values()]
            wanted = workflow.load_desired(ctx, (), (), only_files=files)
            _require_passwords(ctx, wanted)
            changed = [f"{t.key}: {t.path} changed since the plan was made"
                       for t in wanted if t.digest != saved.tenants[t.key]["file_digest"]]
            # The plan as the saved plan saw it (without the passwords it could not compare)
            # must be the saved plan; the plan with them may differ only in those passwords.
            result = workflow.make_plan(ctx, st, wanted, max_delete=saved.max_delete)
            as_saved = workflow.make_plan(ctx, st, wanted, max_delete=saved.max_delete,
                                          hidden=saved.uncompared) if saved.uncompared else result
            changed += [f"{t.key}: the live store changed since the plan was made"
                        for made in (result, as_saved)
                        for t in made.tenants if t.live_fp != saved.tenants[t.key]["live_fp"]]
            moved = planfile.differences(saved.plan, render.plan_obj(as_saved))
            if not changed and moved:
                changed.append("the plan made now differs from the saved plan at "
                               + ", ".join(moved) + " (were secrets unavailable when it was saved?)")
            if changed:
                raise errors.RefusedError("stale plan", problems=tuple(
                    errors.Problem(str(plan_file), 0, 0, f"refused: {c}; nothing was applied, "
                                   "plan again") for c in dict.fromkeys(changed)))
            result = planfile.with_saved_checks(result, saved)
            for label in planfile.accepted_passwords(result, saved):
                out.info(f"{label}: the password changed; the saved plan could not compare it "
                         "(made without the password), so apply accepts that change.")
        else:
            wanted = workflow.load_desired(ctx, paths, workflow.parse_tenants(tenants))
            _require_passwords(ctx, wanted)
            result = workflow.make_plan(ctx, st, wanted, max_delete=max_delete)
        if check_sources:
            result = workflow.check_sources(ctx, result, wanted)
        allowed = render.Allowed(cascade=allow_cascade, mass_delete=allow_mass_delete,
                                 source_checks=skip_source_checks)
        out.result(options.render_plan(result, fmt, out, allowed))
        if not result.has_changes:
            out.info("No changes to apply.")
            _settle(ctx, st, wanted, timeout, out)
            return options.EXIT_OK
        applier.check_guards(result, allow_cascade=allow_cascade,
                             allow_mass_delete=allow_mass_delete,
                             skip_source_checks=skip_source_checks)
        _confirm(result, auto_approve, out)
        done = applier.apply(st, result, settings=ctx.settings,
                             commit=workflow.git_commit(ctx.root), lock_timeout_s=timeout)
        _settle(ctx, st, wanted, timeout, out)
    finally:
        st.close()
    out.info(f"Applied {done.actions} action(s); {done.cascade} dependent(s) deleted.")
    return options.EXIT_OK
