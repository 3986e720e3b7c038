"""`reconciler apply`: carry out a fresh or saved plan under every guard."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import click

from reconciler import clock, declared, errors, gitrepo, lazy, render, stages
from reconciler import plan as p
from reconciler.commands import options

if TYPE_CHECKING:
    from reconciler import applier, differ, locks, planfile, settle, state, store, windows
else:  # SQLAlchemy and deepdiff when apply runs, not for its --help or a TAB
    applier, differ, locks, planfile, settle, state, store = map(
        lazy.module,
        (
            "reconciler.applier",
            "reconciler.differ",
            "reconciler.locks",
            "reconciler.planfile",
            "reconciler.settle",
            "reconciler.state",
            "reconciler.store",
        ),
    )

MAX_REASON = 500


def _confirm(result: p.Plan, auto_approve: bool, out: options.Out) -> None:
    if auto_approve:
        return
    if not sys.stdin.isatty():
        raise errors.RefusedError(
            "refused: not on a terminal; review the plan and pass --auto-approve to apply without a prompt"
        )
    answer = click.prompt("Apply this plan? Only 'yes' is accepted", default="", show_default=False, err=True)
    if answer.strip() != "yes":
        raise errors.RefusedError("apply cancelled; nothing was changed")


def _refuse_missing(missing: Sequence[tuple[str, str, str, declared.SecretRef]]) -> None:
    """missing: (tenant file, tenant key, connection name, reference) of unset passwords."""
    if missing:
        raise errors.RefusedError(
            "passwords missing",
            problems=tuple(
                errors.Problem(
                    path,
                    0,
                    0,
                    f"refused: {key}/{name} needs the password from {ref}, "
                    f"which is {'not set' if ref.env else declared.UNREADABLE}; apply needs every "
                    "password its tenant files reference; nothing was applied",
                )
                for path, key, name, ref in missing
            ),
        )


class Checked(NamedTuple):
    """What apply keeps of a tenant file it validated before the leases (planfile.Read)."""

    key: str
    path: str
    digest: str


def _refuse_files_outside(ctx: stages.Context, saved: Sequence[str], paths: Sequence[str]) -> None:
    """Refuse a saved plan of files that are not tenant files of PATH (default tenants/). The
    plan is signed by a pull request's job, which runs code its author controls (DESIGN §10):
    a plan of `tests/fixtures/acme/acme-norway.yaml`, or of any file the apply job can read,
    applied that file's connections under a clean commit, and quoted its values in errors."""
    found = {os.path.realpath(f) for f in stages.desired_files(ctx, paths)}
    outside = [path for path in saved if os.path.realpath(path) not in found]
    if outside:
        where = " ".join(ctx.default_paths(paths))
        raise errors.InputError.of(
            [
                errors.Problem(
                    path,
                    0,
                    0,
                    f"the saved plan applies this file, which is not a tenant file under {where} "
                    "(the files an apply may change): make the plan from the tenant files there, "
                    "or give their folder as PATH",
                )
                for path in outside
            ]
        )


def _checked(
    ctx: stages.Context, st: store.Store, files: Sequence[Path | str]
) -> tuple[list[Checked], dict[str, declared.DesiredTenant]]:
    """Validate every tenant file, one at a time (as desired.load reports them), refuse a
    tenant the store does not know and any password not available here: each tenant's key,
    file and digest, all that is kept before the leases (or any server is checked), and the
    tenants of the first batch, by path, which the batches then plan without reading their
    files again (stages.each_valid's keep)."""
    checked: list[Checked] = []
    first: dict[str, declared.DesiredTenant] = {}
    missing: list[tuple[str, str, str, declared.SecretRef]] = []
    for tenant in stages.each_valid(ctx, files, keep=first):
        checked.append(Checked(tenant.key, tenant.path, tenant.digest))
        missing += [
            (tenant.path, tenant.key, name, ref)
            for _, name, ref in stages.unavailable_passwords(ctx, [tenant])
        ]
    stages.refuse_unknown(st, [c.key for c in checked], [c.path for c in checked])
    _refuse_missing(missing)
    return checked, first


def _settle(
    st: store.Store,
    pending: settle.Pending,
    out: options.Out,
    *,
    held: locks.Held | None = None,
    timeout: float = 0.0,
    written: Collection[int] = (),
    commit: str | None = None,
) -> None:
    """Record as applied the connections the files already declare as they are live (§9);
    written, commit: see settle.record. Recorded is committed: a stderr that cannot be written
    then cannot make the run exit 1 (DESIGN §6)."""
    for s in settle.record(
        st,
        pending.tenants,
        pending.fps,
        held=held,
        lock_timeout_s=timeout,
        seen=pending.seen,
        written=written,
        commit=commit,
    ):
        with contextlib.suppress(OSError):
            out.info(f"{s.key}/{s.connection}: recorded as applied (the files accept the portal's state)")


def _override_reason(text: str | None) -> str | None:
    """--override-freeze REASON: one printable line for the audit log."""
    if text is None:
        return None
    reason = text.strip()
    if not reason or not reason.isprintable() or len(reason) > MAX_REASON:
        raise errors.InputError(
            f"--override-freeze: write why, in one line of 1-{MAX_REASON} "
            'printable characters (e.g. --override-freeze "INC-123: fix the '
            'broken Oslo connection")'
        )
    return reason


@click.command(
    epilog=options.examples(
        ("Apply exactly the plan that was reviewed", "reconciler apply --plan plan.json"),
        (
            "In CI on merge: no prompt, deletions of dependents allowed as planned",
            "reconciler apply --auto-approve --allow-cascade",
        ),
        (
            "One tenant, waiting up to 5 minutes for another apply's lock",
            "reconciler apply --tenant acme/acme-norway --lock-timeout 5m",
        ),
    )
)
@options.paths_argument
@options.tenant_option
@click.option(
    "--plan",
    "plan_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Apply this saved plan (from `plan --out`) instead of planning now; its tenant files "
    "must be among PATH's (default tenants/).",
)
@click.option("--auto-approve", is_flag=True, help="Do not ask; required when not on a terminal.")
@click.option("--allow-cascade", is_flag=True, help="Allow deleting dependents (listed in the plan).")
@click.option(
    "--allow-mass-delete",
    is_flag=True,
    help="Allow deleting more than --max-delete connections or all of a tenant's.",
)
@options.max_delete_option
@click.option(
    "--lock-timeout",
    default="0s",
    show_default=True,
    metavar="DURATION",
    help="How long to wait for another apply's lock on a tenant (at most 3650d).",
)
@click.option(
    "--check-sources",
    is_flag=True,
    help="Check each accounting server before applying (a saved plan keeps its checks).",
)
@click.option("--skip-source-checks", is_flag=True, help="Apply even if the source checks found problems.")
@options.format_option
@click.option(
    "--override-freeze",
    "override_freeze",
    metavar="REASON",
    help="Apply inside an open change window (reconciler.yaml); REASON goes to the audit log.",
)
@options.common
def apply(
    ctx: stages.Context,
    out: options.Out,
    paths: tuple[str, ...],
    tenants: tuple[str, ...],
    plan_file: Path | None,
    auto_approve: bool,
    allow_cascade: bool,
    allow_mass_delete: bool,
    max_delete: int,
    lock_timeout: str,
    check_sources: bool,
    skip_source_checks: bool,
    fmt: str,
    override_freeze: str | None,
) -> int:
    """Plan (or load a saved plan), show it, and apply it in one transaction."""
    timeout = options.duration(lock_timeout, flag="--lock-timeout")
    reason = _override_reason(override_freeze)
    found = stages.load_windows(ctx)
    if plan_file is not None and tenants:
        raise errors.InputError(
            "--plan applies the saved plan's own tenants, which --tenant cannot narrow; leave "
            "out --tenant, or plan again with it (PATH with --plan says where its files may be)"
        )
    flags = Flags(
        auto_approve,
        allow_cascade,
        allow_mass_delete,
        max_delete,
        check_sources,
        skip_source_checks,
        fmt,
        found,
        reason,
    )
    with ctx.open_store(readonly=False) as st:  # a fresh store has no tenant to apply to: never made here
        assert st.keyring is not None
        if plan_file is not None:
            saved = planfile.read(plan_file, keyring=st.keyring, store_id=st.store_id, root=ctx.root)
            saved_paths = [t.path for t in saved.tenants.values()]
            ctx.own_work_tree(saved_paths)  # its change windows, as for PATH
            _refuse_files_outside(ctx, saved_paths, paths)
            checked, first = _checked(ctx, st, saved_paths)
            verify: Verify | None = Verify(saved, plan_file, checked, [])
        else:
            checked, first = _checked(
                ctx, st, stages.desired_files(ctx, paths, options.parse_tenants(tenants))
            )
            verify = None
        # The batches read the files by the strings checked keeps: no Path (~0.4 KB) per tenant kept.
        files, keys = [c.path for c in checked], [c.key for c in checked]
        # Locked before reading: an apply that waited plans against what the last one left.
        commit = gitrepo.git_commit(ctx.root)  # for the audit log: the apply's and the record's
        dirty = gitrepo.uncommitted(ctx.root, files) if commit else 0
        if commit and dirty:  # the commit does not hold what is applied: the audit log says so
            commit = f"{commit[:40]}-dirty"
            out.info(
                f"warning: {dirty} tenant file(s) differ from the commit checked out (not committed); "
                f"the audit log records the commit as {commit}"
            )
        with locks.leases(st, keys, timeout_s=timeout) as held:
            done, pending = _plan_and_apply_batched(
                ctx, out, st, files, {c.key: c.digest for c in checked}, held, flags, commit, verify, first
            )
        if done is not None:  # the apply released its leases: the record takes its own
            try:
                _settle(
                    st,
                    pending,
                    out,
                    timeout=timeout,
                    written=done.written,
                    commit=commit,
                )
            except (errors.ReconcilerError, OSError, KeyboardInterrupt, SystemExit) as exc:
                # The apply has committed: nothing here (not even a signal) may make the run
                # say otherwise.
                why = str(exc) if isinstance(exc, errors.ReconcilerError) else "interrupted"
                with contextlib.suppress(OSError):
                    out.info(
                        f"warning: the accepted state was not recorded ({why}); the next apply records it"
                    )
    if done is not None:
        # Committed: a stderr that cannot be written (a closed pipe, a full disk) cannot make
        # the run say otherwise either. The exit code still tells it.
        with contextlib.suppress(OSError):
            accepted = verify.accepted if verify is not None else []
            for note in dict.fromkeys(accepted):  # once, if it was planned twice
                out.info(note)
            _say_applied(out, done)
    return options.EXIT_OK


def _say_applied(out: options.Out, done: applier.Applied) -> None:
    out.info(f"Applied {done.actions} action(s); {done.cascade} dependent(s) deleted.")
    if done.lost_at_commit is not None:
        out.info(
            f"warning: the connection to the store failed as the commit ended ({done.lost_at_commit}); "
            "the store shows the changes were committed"
        )
    if done.signal is not None:
        out.info(
            f"{signal.Signals(done.signal).name} arrived after the changes were committed; they stay applied."
        )
    for lock in done.unreleased:
        out.info(f"warning: {lock.describe()}")


class Flags(NamedTuple):
    auto_approve: bool
    allow_cascade: bool
    allow_mass_delete: bool
    max_delete: int
    check_sources: bool
    skip_source_checks: bool
    fmt: str
    windows: Sequence[windows.Window]
    override_freeze: str | None


class Ready(NamedTuple):
    """A plan that passed every guard, and the change windows it overrides."""

    plan: p.Plan
    freeze_overrides: dict[str, str]


def _apply_read_before(
    ctx: stages.Context, st: store.Store, ready: Ready, *, commit: str | None, held: locks.Held
) -> applier.Applied | None:
    """Apply a plan read before the transaction (it reads and compares again); None if empty."""
    if not ready.plan.has_changes:
        return None
    return applier.apply(
        st,
        ready.plan,
        settings=ctx.settings,
        commit=commit,
        held=held,
        freeze_overrides=ready.freeze_overrides,
    )


def _show_and_guard(out: options.Out, result: p.Plan, flags: Flags) -> Ready:
    """Show the plan, then guard and confirm it (one without changes is shown, not guarded)."""
    result = stages.with_freeze(result, flags.windows, clock.now())  # now: after any wait for locks
    allowed = render.Allowed(
        cascade=flags.allow_cascade,
        mass_delete=flags.allow_mass_delete,
        source_checks=flags.skip_source_checks,
        freeze=flags.override_freeze is not None,
    )
    out.result(options.render_plan(result, flags.fmt, out, allowed))
    if not result.has_changes:
        out.info("No changes to apply.")
        return Ready(result, {})
    overrides = _check_freeze(result, flags, out, {})
    applier.check_guards(
        result,
        allow_cascade=flags.allow_cascade,
        allow_mass_delete=flags.allow_mass_delete,
        skip_source_checks=flags.skip_source_checks,
    )
    _confirm(result, flags.auto_approve, out)
    if not flags.auto_approve:  # a person may answer minutes later: a window may have opened
        result = stages.with_freeze(result, flags.windows, clock.now())
        overrides = _check_freeze(result, flags, out, overrides)
    return Ready(result, overrides)


def _check_freeze(result: p.Plan, flags: Flags, out: options.Out, said: dict[str, str]) -> dict[str, str]:
    """applier.check_freeze, saying each override not said before."""
    overrides = applier.check_freeze(result, override=flags.override_freeze)
    for key, text in overrides.items():
        if key not in said:
            out.info(f"Overriding the freeze of {key}: {text}")
    return overrides


class Batched(NamedTuple):
    """What apply keeps of a fleet read in batches: every tenant's plan (what rendering needs;
    the guards that span tenants computed over all batches) and what the record of settle needs
    (the tenants it may record). No live state: the write reads the tenants that change again,
    a batch at a time (applier._write)."""

    plan: p.Plan
    pending: settle.Pending


def _plan_batched(
    ctx: stages.Context,
    st: store.Store,
    files: Sequence[str],
    conn: store.Transaction | None,
    *,
    leased: Mapping[str, str],
    max_delete: int,
    hidden: Collection[str] = (),
    every_fingerprint: bool = False,
    check_sources: bool = False,
    read_before: Mapping[str, declared.DesiredTenant] | None = None,
) -> Batched:
    """The plan of the tenant files, read and diffed in batches (stages.read_batches, on conn:
    the apply's transaction, or on a read of its own): memory holds a batch and the plans; each
    batch's live state goes with it.

    The plan is the one stages.plan_files makes (so it renders the same). leased: the keys
    the files declared when they were checked (and leased), with the digests of the files then:
    a file changed since is refused (what was checked, and for a saved plan compared with it, is
    what is planned).
    hidden: see stages.password_fingerprints. every_fingerprint: every tenant's live state
    fingerprinted (a saved plan is checked against each), not only the changing tenants'.
    check_sources: each batch's servers checked (stages.source_checks) once it is planned.
    read_before: tenants _checked validated and kept, by path (stages.read_batches).
    """
    tenants: list[p.TenantPlan] = []
    counts: dict[str, int] = {}
    unknown: list[errors.Problem] = []
    known: dict[str, tuple[str, ...]] = {}
    stale_desired: list[declared.DesiredTenant] = []
    stale_live: dict[str, state.LiveTenant] = {}
    stale_fps: dict[declared.SecretRef, str | None] = {}
    for batch in stages.read_batches(ctx, st, files, hidden=hidden, conn=conn, read_before=read_before):
        moved = [d for d in batch.desired if leased.get(d.key) != d.digest]
        if moved:
            locked = "" if moved[0].key in leased else f" ({moved[0].key} is not locked)"
            raise errors.ConflictError(
                f"{moved[0].path}: the file changed while apply read it{locked}; nothing was "
                "applied, run again"
            )
        try:
            found = differ.diff_tenants(batch.desired, batch.live, batch.fps)
        except errors.InputError as exc:
            unknown.extend(exc.problems)
            continue
        if unknown:
            continue
        known = batch.live.known
        result, live = stages.batch_plan(
            batch, p.Plan(found, max_delete), fingerprint=True, changing_only=not every_fingerprint
        )
        result = stages.deleted_by_hand(st, result, live, conn)
        if check_sources:
            result = result.with_checks(stages.source_checks(ctx, batch.desired))
        tenants.extend(result.tenants)
        counts.update(differ.live_counts(live, result.tenants))
        stale = {s.key for s in settle.stale(batch.desired, live, batch.fps)}
        for d in batch.desired:
            if d.key in stale:
                stale_desired.append(d)
                stale_live[d.key] = live.tenants[d.key]
                stale_fps.update(
                    (c.password, batch.fps[c.password]) for c in d.connections if c.password is not None
                )
        del batch, found, result, live  # freed before the next batch is read
    if unknown:
        raise errors.InputError.of(unknown)
    tenants.sort(key=lambda t: t.key)
    plan = p.Plan(tuple(tenants), max_delete, differ.mass_deletes(tenants, counts, max_delete))
    return Batched(
        plan,
        settle.Pending(tuple(stale_desired), stale_fps, state.LiveState(stale_live, known)),
    )


class Verify(NamedTuple):
    """apply --plan FILE: the saved plan, its file, and the tenant files as checked now."""

    saved: planfile.Saved
    plan_file: Path
    checked: Sequence[Checked]
    # What apply accepts that the saved plan could not compare (planfile.verified): said once
    # the changes are committed (said before the guards, a refused apply told of a create).
    accepted: list[str]


def _read_batched(
    ctx: stages.Context,
    out: options.Out,
    st: store.Store,
    files: Sequence[str],
    conn: store.Transaction | None,
    keys: Mapping[str, str],
    flags: Flags,
    verify: Verify | None,
    read_before: Mapping[str, declared.DesiredTenant] | None = None,
) -> Batched:
    """The fresh plan of the files (_plan_batched), or the saved plan verified against the files
    and the store as they are now (planfile.verified: each tenant's file digest, live state and
    plan; the plan made as if the passwords it could not compare were not set must be it).
    With --check-sources the servers are checked now, and those checks replace the saved ones."""
    # apply's own limit, not the one the plan was made with (plan --max-delete 50 let an apply
    # delete 50 without --allow-mass-delete); mass deletes are not compared
    plan = functools.partial(
        _plan_batched, ctx, st, files, conn, leased=keys, max_delete=flags.max_delete, read_before=read_before
    )
    if verify is None:
        return plan(check_sources=flags.check_sources)
    planfile.check_fresh(verify.saved, str(verify.plan_file))  # now, under the locks
    first: list[Batched] = []

    def make(hidden: Collection[str]) -> p.Plan:
        read = plan(
            hidden=hidden,
            every_fingerprint=True,
            check_sources=flags.check_sources and not hidden,  # once: the servers, not the plan
        )
        if not hidden:
            first.append(read)
        return read.plan

    result = planfile.verified(verify.saved, verify.plan_file, verify.checked, make, verify.accepted.append)
    if flags.check_sources:  # verified() attached the saved plan's checks; these are today's
        result = result.with_checks({t.key: t.checks for t in first[0].plan.tenants})
    return first[0]._replace(plan=result)


def _plan_and_apply_batched(
    ctx: stages.Context,
    out: options.Out,
    st: store.Store,
    files: Sequence[str],
    keys: Mapping[str, str],
    held: locks.Held,
    flags: Flags,
    commit: str | None,
    verify: Verify | None = None,
    read_before: Mapping[str, declared.DesiredTenant] | None = None,
) -> tuple[applier.Applied | None, settle.Pending]:
    """Under the leases: plan (or verify the saved plan), show, guard, confirm, apply, the fleet
    read in batches (docs/architecture.md, "Applying: planned in batches, written in batches").

    When nothing waits between planning and writing (--auto-approve, no --check-sources) the
    plan is read inside the apply's transaction. A prompt (a person may take minutes) or source
    checks (the network) must not hold a write transaction open, so there the plan is read
    first (applier.apply opens the transaction). Either way the write reads the tenants that
    change again, a batch at a time, and compares their fingerprints. verify: a saved plan to
    apply (apply --plan FILE), checked against the batches first. commit: the files' git
    commit, audited. read_before: the tenants _checked kept (read_batches)."""
    reads: list[Batched] = []
    if flags.auto_approve and not flags.check_sources:

        def planned(conn: store.Transaction) -> applier.Planned | None:
            read = _read_batched(ctx, out, st, files, conn, keys, flags, verify, read_before)
            reads.append(read)
            ready = _show_and_guard(out, read.plan, flags)
            if not ready.plan.has_changes:
                return None
            return applier.Planned(ready.plan, ready.freeze_overrides)

        done = applier.apply_planned(st, planned, settings=ctx.settings, commit=commit, held=held)
        pending = reads[0].pending
    else:
        read = _read_batched(ctx, out, st, files, None, keys, flags, verify, read_before)
        pending = read.pending
        ready = _show_and_guard(out, read.plan, flags)
        if verify is not None and ready.plan.has_changes:  # it may have expired while the prompt waited
            planfile.check_fresh(verify.saved, str(verify.plan_file))
        del read  # the transaction reads the tenants that change again
        done = _apply_read_before(ctx, st, ready, commit=commit, held=held)
    if done is None:
        _settle(st, pending, out, held=held, commit=commit)
    return done, pending
