"""Tenant locks: lease policy, holder identity, renewal and the signals an apply defers.

An apply holds one lease (a row in the store, see store.try_locks) per tenant from before it
reads the live state until after its transaction. The SQL is in store; the policy is here:

- a lease lasts DEFAULT_LEASE_S and is renewed by a background thread with its own connection;
  an apply whose lease was lost anyway stops before it commits (Held.verify, Held.check);
- a lease is taken over when it has expired, or at once when its holder is provably dead: the
  same host, machine (boot id and pid namespace) and a pid that is gone or now belongs to a
  process that started at another time. A hostname shared by containers is not enough;
- SIGINT and SIGTERM interrupt the run until the transaction commits; from then on they are
  recorded and the run finishes truthfully (Held.committed): it releases its leases and reports
  what it applied. A lease it cannot release is named with its expiry.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler import errors, store

DEFAULT_LEASE_S = 15 * 60
# Testing knobs: a short lease (to see renewal), and a pause between commit and release (to land
# a signal or a lost connection there), both in milliseconds.
LEASE_VAR = "RECONCILER_TEST_LEASE_MS"
RELEASE_DELAY_VAR = "RECONCILER_DEBUG_RELEASE_DELAY_MS"


def text(value: str) -> str:
    """An environment variable's or argument's value as text the store can hold: bytes that are
    not UTF-8 (which Python keeps as surrogates) become U+FFFD."""
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def actor() -> str:
    """RECONCILER_ACTOR, else the CI's user, else user@host."""
    for var in ("RECONCILER_ACTOR", "GITHUB_ACTOR", "GITLAB_USER_LOGIN", "BUILD_REQUESTEDFOR"):
        if os.environ.get(var):
            return text(os.environ[var])
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def ci_job() -> str | None:
    if os.environ.get("GITHUB_RUN_ID"):
        server = os.environ.get("GITHUB_SERVER_URL", "https://github.com")
        repository = os.environ.get("GITHUB_REPOSITORY", "")
        return text(f"{server}/{repository}/actions/runs/{os.environ['GITHUB_RUN_ID']}")
    job = os.environ.get("CI_JOB_URL") or os.environ.get("BUILD_BUILDURI")
    return text(job) if job else None


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="ascii").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def machine() -> str | None:
    """Which kernel boot and pid namespace a pid belongs to; None where /proc cannot say."""
    boot = _read("/proc/sys/kernel/random/boot_id") or _read("/etc/machine-id")
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = None
    return f"{boot} {namespace}" if boot and namespace else None


def started(pid: int) -> int | None:
    """The start time of a process (clock ticks since boot, /proc/<pid>/stat field 22)."""
    stat = _read(f"/proc/{pid}/stat")
    if stat is None:
        return None
    try:
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (IndexError, ValueError):
        return None


def holder() -> store.Holder:
    pid = os.getpid()
    return store.Holder(actor(), socket.gethostname(), pid, ci_job(), machine(), started(pid))


def holder_is_dead(h: store.Holder) -> bool:
    """True only when the lease's process is provably gone: same host, boot and pid namespace,
    and its pid is free or now names a process that started at another time."""
    if h.host != socket.gethostname() or h.machine is None or h.started is None:
        return False
    if h.machine != machine():
        return False
    now = started(h.pid)
    return now is None or now != h.started


def holder_is_alive(h: store.Holder) -> bool:
    """True only when the lease's process provably still runs: on this machine (host, boot and
    pid namespace), its pid naming the process that started when the lease was taken."""
    if h.host != socket.gethostname() or h.machine is None or h.started is None or h.machine != machine():
        return False
    return started(h.pid) == h.started


def _holding(st: store.Store, scopes: Sequence[str]) -> store.LockRow | None:
    """The lease of one of scopes, read without waiting (a busy store: another apply writes)."""
    try:
        wanted = set(scopes)
        return next((lock for lock in store.list_locks(st) if lock.scope in wanted), None)
    except errors.StoreError:
        return None


def _writers(st: store.Store, me: store.Holder, most: int = 3) -> str:
    """Who holds leases now, when no lease of the tenants waited for is held: on SQLite the
    whole store waits for one writer, another tenant's apply (DESIGN §6: giving up names the
    holder on every backend). "" when none can be read."""
    try:
        others = [lock for lock in store.list_locks(st) if lock.holder != me]
    except errors.StoreError:
        return ""
    if not others:
        return ""
    named = "; ".join(lock.describe() for lock in others[:most])
    more = f"; and {len(others) - most:,} more (reconciler locks)" if len(others) > most else ""
    return f" (leases held now: {named}{more})"


def _left_behind(
    st: store.Store, me: store.Holder, scopes: Sequence[str], error: errors.StoreError
) -> errors.StoreError:
    """error, once the leases this run may have taken are dealt with: a connection lost as the
    leases' commit ended (its reply lost) committed them, and the run said only the driver's
    error, exit 1, with its leases held for 15 minutes. They are looked for (by this process's
    identity) and released; those that cannot be are named."""
    wanted = set(scopes)
    try:
        mine = [
            lock
            for lock in store.list_locks(st)
            if lock.scope in wanted
            and (lock.holder.host, lock.holder.pid, lock.holder.machine) == (me.host, me.pid, me.machine)
        ]
    except errors.StoreError:
        return errors.StoreError(
            f"{error}; any lease it took on {', '.join(sorted(wanted))} expires within "
            f"{lease_ms() // 60_000 or 1} minute(s) (`reconciler locks` lists them)"
        )
    if not mine:
        return error
    try:
        store.release_locks(st, [lock.id for lock in mine])
    except errors.StoreError:
        return errors.StoreError(
            f"{error}; it could not release the leases it took: "
            + ", ".join(f"{lock.id} on {lock.scope} (until {store.utc(lock.expires_ms)})" for lock in mine)
            + f"; run `reconciler unlock {' '.join(lock.id for lock in mine)}`"
        )
    return errors.StoreError(f"{error}; the leases it had taken were released, nothing else was changed")


def may_take(row: store.LockRow, now_ms: int) -> bool:
    return row.expires_ms < now_ms or holder_is_dead(row.holder)


def lease_ms() -> int:
    return int(os.environ.get(LEASE_VAR) or DEFAULT_LEASE_S * 1000)


@dataclass(frozen=True)
class Unreleased:
    """A lease this run could not release (it holds until its expiry)."""

    id: str
    scope: str
    expires_ms: int
    why: str

    def describe(self) -> str:
        return (
            f"could not release lock {self.id} on {self.scope} ({self.why}); it expires at "
            f"{store.utc(self.expires_ms)}, or run `reconciler unlock {self.id}`"
        )


class Held:
    """The leases one run holds: renewed in the background, checked before commit."""

    def __init__(self, st: store.Store, ids: dict[str, str], length_ms: int) -> None:
        self.st = st
        self.ids = ids  # scope -> lock id
        self.length_ms = length_ms
        self.expires_ms = store.now_ms() + length_ms
        self.lost = threading.Event()
        self.deferring = False  # signals are recorded, not raised (commit, release)
        self.committing = False  # the commit began and did not fail: the run ends as applied
        self.signalled: int | None = None
        self.released = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name="lease-renewal", daemon=True)
        if ids:
            self._thread.start()

    def _renew(self) -> None:
        interval = max(self.length_ms / 3000, 0.05)
        while not self._stop.wait(interval):
            expires = store.now_ms() + self.length_ms
            try:
                count = store.renew_locks(self.st, list(self.ids.values()), expires)
            except errors.StoreError:
                continue  # the store is unreachable for now: try again; the expiry still holds
            if count is None:
                continue  # another writer is busy (SQLite: maybe our own transaction)
            if count < len(self.ids):
                self.lost.set()
                return
            self.expires_ms = expires

    def _lost_error(self) -> errors.ConflictError:
        return errors.ConflictError(
            f"{', '.join(sorted(self.ids))}: this apply's lock is no longer held (released by "
            "`reconciler unlock`, or taken over by another apply once its lease looked run out "
            "by that machine's clock); nothing was applied, plan again"
        )

    def check(self) -> None:
        """Between writes: stop (the transaction rolls back) if the lease was lost."""
        if self.lost.is_set():
            raise self._lost_error()

    def verify(self, conn: store.Transaction) -> None:
        """Inside the apply's transaction: every lease is still ours, and stays so until the end."""
        if self.ids and store.locks_still_held(conn, list(self.ids.values())) != len(self.ids):
            self.lost.set()
        self.check()

    def commit_begins(self) -> None:
        """Called just before the commit: a signal from now on is recorded, not raised."""
        self.check()
        self.deferring = self.committing = True

    def commit_failed(self) -> None:
        self.deferring = self.committing = False

    def release(self) -> tuple[Unreleased, ...]:
        """Release every lease; the ones that could not be released, named with their expiry."""
        if self.released:
            return ()
        self.released = True
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        if not self.ids:
            return ()
        try:
            store.release_locks(self.st, list(self.ids.values()))
        except errors.StoreError:
            # Once more, on a new connection: the pool's may have been cut while it was idle
            # (the apply's transaction ran on another), with the store there to answer.
            try:
                store.release_locks(self.st, list(self.ids.values()))
            except errors.StoreError as error:
                return tuple(
                    Unreleased(lock_id, scope, self.expires_ms, str(error))
                    for scope, lock_id in sorted(self.ids.items())
                )
        return ()

    def release_after_commit(self) -> tuple[Unreleased, ...]:
        delay = int(os.environ.get(RELEASE_DELAY_VAR) or 0) / 1000
        if delay:
            time.sleep(delay)
        return self.release()


class _Deferral:
    """SIGINT and SIGTERM held back while leases are taken: a signal between the commit of the
    leases and their handing to Held left them behind (until their expiry, 15 minutes) with
    "nothing was changed". Obeyed once nothing was taken, or once Held will release them."""

    def __init__(self) -> None:
        self.active = False
        self.pending: int | None = None

    @contextlib.contextmanager
    def section(self) -> Iterator[None]:
        self.active = True
        try:
            yield
        finally:
            self.active = False

    def take(self, signum: int) -> bool:
        if self.active:
            self.pending = signum
        return self.active

    def obey(self) -> None:
        """The signal held back, raised now (KeyboardInterrupt, Terminated)."""
        signum, self.pending = self.pending, None
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        if signum is not None:
            raise Terminated(128 + signum)


def _acquire(
    st: store.Store, scopes: Sequence[str], *, timeout_s: float, length_ms: int, deferral: _Deferral
) -> dict[str, str]:
    me = holder()
    wanted = sorted(set(scopes))
    deadline = time.monotonic() + timeout_s
    current: store.LockRow | None = None
    try:
        while wanted:
            try:
                taken, current = store.try_locks(st, wanted, me, length_ms, may_take)
            except errors.StoreError as error:
                raise _left_behind(st, me, wanted, error) from None
            if taken:
                return dict(zip(wanted, taken, strict=True))
            deferral.obey()  # nothing taken: a signal interrupts the wait
            if time.monotonic() >= deadline:
                if current is None:
                    current = _holding(st, wanted)  # busy: whose lease, if a lease is there
                if current is None:
                    writing = _writers(st, me)
                    raise errors.RefusedError(
                        f"{', '.join(wanted)}: another apply is taking the "
                        f"locks or writing{writing}; waited {timeout_s:g}s "
                        "(--lock-timeout)"
                    )
                if current.expires_ms < store.now_ms():
                    raise errors.RefusedError(
                        f"{current.scope}: {current.describe()}, lease run out at "
                        f"{store.utc(current.expires_ms)} but its apply is still writing; waited "
                        f"{timeout_s:g}s (--lock-timeout). Apply again once it has finished"
                    )
                raise errors.RefusedError(
                    f"{current.scope}: {current.describe()}, lease until "
                    f"{store.utc(current.expires_ms)}; waited {timeout_s:g}s (--lock-timeout). If "
                    f"that apply is gone, run `reconciler unlock {current.id}`"
                )
            time.sleep(min(0.5, max(0.05, deadline - time.monotonic())))
            deferral.obey()
    except KeyboardInterrupt:
        # Ctrl-C while waiting: nothing was read or written yet. One line naming what we waited
        # for; exit 1 like every run that changed nothing (DESIGN §6, exit codes).
        waited = (
            current.describe()
            if current is not None
            else (f"{', '.join(wanted)} (another apply was taking the locks or writing{_writers(st, me)})")
        )
        raise errors.RefusedError(
            f"aborted; nothing was changed: interrupted while waiting for {waited}"
        ) from None
    return {}


class Terminated(SystemExit):
    """SIGTERM before the commit began (a CI job cancelled): nothing was changed. A SystemExit,
    so that no `except Exception` on the way out takes it for an error of its own; the CLI says
    so and exits 1 (DESIGN §6: 0, 1 and 2 are the exit codes)."""


@contextlib.contextmanager
def _interruptible(deferred: Callable[[int], bool], committed: Callable[[], bool]) -> Iterator[None]:
    """SIGINT and SIGTERM interrupt the block (KeyboardInterrupt, Terminated: nothing changed)
    unless deferred(signum) takes them. On the way out the previous handlers come back, or,
    once committed(), SIG_IGN: after a commit the run is applied, whatever comes, and a signal
    between here and the process's end (printing what it applied, exiting) is ignored, not
    obeyed (it made a committed apply exit 143 or 130)."""

    def handler(signum: int, _frame: Any) -> None:
        if deferred(signum):
            return
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise Terminated(128 + signum)

    main = threading.current_thread() is threading.main_thread()
    # SIGHUP too: a terminal closed at apply's `yes` prompt (an ssh session dropped) killed the
    # process by default and left its leases for 15 minutes
    previous = {
        sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP) if main
    }
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, signal.SIG_IGN if committed() else old)


@contextlib.contextmanager
def until_commit() -> Iterator[Callable[[], None]]:
    """SIGINT and SIGTERM interrupt the block until the function it gives is called, just
    before a commit; from then on they are ignored until the process ends, as after an apply's
    commit (store rotate-key: a Ctrl-C at its commit said nothing was changed after it
    committed)."""
    committing = False

    def commit_begins() -> None:
        nonlocal committing
        committing = True

    with _interruptible(lambda _signum: committing, lambda: committing):
        yield commit_begins


@contextlib.contextmanager
def leases(st: store.Store, scopes: Sequence[str], *, timeout_s: float) -> Iterator[Held]:
    """Hold a lease on every scope for the block; SIGINT and SIGTERM interrupt it until the
    commit begins (Held.commit_begins), and are recorded after."""
    held: Held | None = None
    deferral = _Deferral()

    def deferred(signum: int) -> bool:
        if held is not None and held.deferring:
            held.signalled = signum
            return True
        return deferral.take(signum)

    with _interruptible(deferred, lambda: held is not None and held.committing):
        with deferral.section():  # until Held has the leases (and releases them in any case)
            held = Held(
                st,
                _acquire(st, scopes, timeout_s=timeout_s, length_ms=lease_ms(), deferral=deferral),
                lease_ms(),
            )
        try:
            deferral.obey()  # a signal while the leases were taken: they are released below
            yield held
        finally:
            held.deferring = True  # a second Ctrl-C must not leave the leases behind
            left = held.release()
            failed = sys.exc_info()[1]
            if left and isinstance(failed, errors.ReconcilerError):
                # The run fails (the store went away before the commit): the leases it could
                # not release are named, with their expiry and the unlock that frees them, as
                # after a commit; they were left for 15 minutes unsaid.
                said = failed.problems or (errors.Problem("", 0, 0, str(failed)),)
                named = tuple(errors.Problem("", 0, 0, u.describe()) for u in left)
                raise type(failed)(str(failed), problems=(*said, *named)) from None
            if left:
                # An apply with nothing to do, or one interrupted (Ctrl-C, SIGTERM, SIGHUP) before its
                # commit: the leases it could not release were left for 15 minutes unsaid.
                from reconciler import redaction

                with contextlib.suppress(OSError):  # a closed terminal (SIGHUP): said to none
                    for u in left:
                        sys.stderr.write(redaction.redact(f"warning: {u.describe()}") + "\n")
