"""`store rotate-key`: re-encrypt every password under a new key in one transaction."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from reconciler import errors, locks, redaction, render, secrets, spec, stages, store

# rotate-key's warning names this many drifted connections, and counts the rest.
MAX_DRIFTED_NAMED = 10


def rotate(st: store.Store, *, new_key_env: str, named: bool = False) -> list[str]:
    """What rotate-key says, a line each: what it did, and a warning where it found drift it
    could not carry over (_drift_warning).

    named: --new-key-env was given. A store whose key is in its key file gets a new key file,
    made here: a new key given to it (the variable named, or set) is refused, not ignored. With
    the current key in RECONCILER_STORE_KEY the new key is the variable's, and a key file there
    is replaced with it too (left holding the old key, it opened nothing once the variable was
    unset, and the message blamed the variable)."""
    assert st.keyring is not None
    old = st.keyring
    location = st.location
    key_file = location.key_path if location.key_path is not None and location.key_path.exists() else None
    if key_file is not None and os.environ.get(secrets.STORE_KEY_VAR) and not _holds(key_file, old):
        key_file = None  # another store's key (two stores in one folder share the name): not ours
    if location.key_path is not None and not os.environ.get(secrets.STORE_KEY_VAR):
        if named or os.environ.get(new_key_env):
            raise errors.InputError(
                f"this store's key is in {location.key_path}, and rotate-key replaces that file with "
                f"a new key it makes; it does not take one from {new_key_env}: unset it (and leave "
                f"out --new-key-env), or set {secrets.STORE_KEY_VAR} to the current key to rotate "
                f"to the key in {new_key_env}"
            )
        raw = secrets.Keyring.generate()
    else:
        value = os.environ.get(new_key_env)
        if not value:
            raise errors.SecretError(
                f"set {new_key_env} to the new key (and keep {secrets.STORE_KEY_VAR} set to the current one)"
            )
        raw = secrets.key_bytes(value, new_key_env)
        if secrets.Keyring(raw, variable=new_key_env).check_value() == old.check_value():
            raise errors.InputError(
                f"{new_key_env} holds the key in use ({secrets.STORE_KEY_VAR}); nothing was "
                f"changed: set {new_key_env} to a new key"
            )
    redaction.register(raw.decode())
    new = secrets.Keyring(raw, variable=new_key_env)
    pending_file = None
    if key_file is not None:  # written before the commit: after it, the only copy of the new key
        pending_file = key_file.with_name(key_file.name + ".new")
        try:
            # Left by a rotation that never committed (one that did was finished when the store
            # opened); made anew, never written through a link planted there.
            pending_file.unlink(missing_ok=True)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
            with os.fdopen(os.open(pending_file, flags, 0o600), "wb") as handle:
                handle.write(raw + b"\n")
        except OSError as error:
            raise errors.StoreError(
                f"cannot write the new key to {pending_file} ({error.strerror}); nothing was changed: "
                "make room for it there and run rotate-key again"
            ) from None
    done: list[tuple[int, int | None]] = []  # re-encrypted, its session: once the commit begins
    drifted = _Drifted()
    lost = ""
    try:
        with locks.until_commit() as commit_begins:

            def committing(n: int, session: int | None) -> None:
                done.append((n, session))
                commit_begins()

            count = _reencrypt(st, old, new, committing, drifted)
    except errors.StoreError as error:
        # The connection failed: before the commit nothing was written; during it the store
        # may have committed before its reply was lost (a server store). Which it was is read,
        # never guessed: it said "error" and exit 1 with every password under the new key.
        if not done or not _rotated(st, new, error, done[0][1]):
            if pending_file is not None and _still_under(st, old):
                pending_file.unlink(missing_ok=True)
            raise
        count, lost = (
            done[0][0],
            f" (the connection failed as the commit ended: {error}; the store shows it committed)",
        )
    except BaseException:
        # Nothing committed, nothing left behind; but a commit whose reply was lost may have
        # happened: then the new key file is the only key to the passwords, and stays.
        if pending_file is not None and _still_under(st, old):
            pending_file.unlink(missing_ok=True)
        raise
    return [_rotated_message(location, pending_file, count, lost, new_key_env), *_drift_warning(drifted)]


def _rotated_message(
    location: store.Location, pending_file: Path | None, count: int, lost: str, new_key_env: str
) -> str:
    """What rotate-key says once it committed: where the new key is, and what to do with it."""
    if pending_file is not None:
        assert location.key_path is not None
        try:
            os.replace(pending_file, location.key_path)
        except OSError as error:  # committed: the store reads with the new key from now on
            return (
                f"Re-encrypted {count} password(s); the new key is in {pending_file}, which could "
                f"not replace {location.key_path} ({error.strerror}): the next command moves it "
                "into place, or move it yourself"
            )
        if os.environ.get(secrets.STORE_KEY_VAR):
            return (
                f"Re-encrypted {count} password(s) under the key in {new_key_env}{lost}; set "
                f"{secrets.STORE_KEY_VAR} to it now ({location.key_path} holds it too)."
            )
        return f"Re-encrypted {count} password(s); the new key is in {location.key_path}{lost}."
    return (
        f"Re-encrypted {count} password(s) under the key in {new_key_env}{lost}; set "
        f"{secrets.STORE_KEY_VAR} to it now."
    )


@dataclass
class _Drifted:
    """The connections whose drift a rotation could not carry over (_reencrypt)."""

    count: int = 0
    named: list[str] = field(default_factory=list)


def _drift_warning(drifted: _Drifted) -> list[str]:
    """A warning naming the connections whose drift rotate-key could not carry
    over (_reencrypt): until an apply, drift tells them as drift and pending, and drift --write
    takes them for conflicts."""
    if not drifted.count:
        return []
    more = drifted.count - len(drifted.named)
    listed = ", ".join(drifted.named) + (f" and {more} more" if more else "")
    return [
        f"warning: {drifted.count} connection(s) had changed in the portal since the tool "
        f"applied them ({listed}). What was applied is kept as a fingerprint holding the "
        "password's under the old key, which cannot be made again under the new one: until each "
        "is applied again, `drift` reports it as drift and pending and `drift --write` does not "
        "accept it. Write the portal's values into its tenant file, or keep git's, and apply. "
        "(Accepting drift and applying before a rotation avoids this.)"
    ]


def _holds(key_file: Path, keyring: secrets.Keyring) -> bool:
    """Whether key_file holds keyring's key (the store's own key file, not another's)."""
    try:
        return secrets.Keyring(key_file.read_bytes().strip()).check_value() == keyring.check_value()
    except (OSError, errors.SecretError):
        return False


def _rotated(st: store.Store, new: secrets.Keyring, error: errors.StoreError, session: int | None) -> bool:
    """After the connection failed during the commit: whether the store's key check is the new
    key's (so the rotation committed), asked as an apply asks for its audit row
    (store.asked_again, store.OUTCOME_WAIT_S), once the transaction's session has left the
    server (while a server still runs the COMMIT, the old key check is read, as an apply read
    "nothing was applied"). When the store cannot say by then, a StoreError saying the outcome
    is unknown and to keep both keys (never that nothing changed)."""

    wait_s = store.OUTCOME_WAIT_S
    try:
        return store.asked_again(lambda: store.meta_is(st, "key_check", new.check_value(), session), wait_s)
    except errors.StoreError:
        raise errors.StoreError(
            f"{error}; the connection failed while the rotation was being committed, and the "
            f"store could not be read for {wait_s:g}s to tell whether it was. It may "
            "have been rotated: keep both keys until a command with the new one "
            f"({secrets.STORE_KEY_VAR}) reads the store"
        ) from None


def _still_under(st: store.Store, keyring: secrets.Keyring) -> bool:
    """Whether the store says its passwords are still under keyring (False when it cannot say)."""
    try:
        return store.meta_is(st, "key_check", keyring.check_value())
    except errors.StoreError:
        return False


def _reencrypt(
    st: store.Store,
    old: secrets.Keyring,
    new: secrets.Keyring,
    commit_begins: Callable[[int, int | None], None],
    drifted: _Drifted,
) -> int:
    """Every password under the new key, in one transaction; how many there were. The fleet is
    read and written a batch of tenants at a time (plan's batches), one statement per table and
    batch: it read the whole fleet and wrote row by row (209 MiB and 32 s at 2,000 tenants).

    drifted: counts each connection changed outside the tool since it applied it, and names
    the first MAX_DRIFTED_NAMED (`customer/tenant "name"`). What the tool applied
    is known only by its fingerprint, which holds the password's under the old key: it cannot be
    made again under the new one, and stays the old key's."""
    with st.transaction() as conn:
        store.hold_key(conn, old, rotating=True)  # applies and seeds wait, or are refused after
        rows = store.tenant_rows(conn)
        keys = sorted(rows.by_key)
        count = 0
        for start in range(0, len(keys), stages.BATCH_TENANTS):
            live = store.read(conn, keys[start : start + stages.BATCH_TENANTS], tenants_read=rows)
            batch = [(tenant, c) for tenant in live.tenants.values() for c in tenant.connections]
            ciphertexts = dict(store.password_rows(conn, [c.id for _, c in batch]))
            passwords: list[tuple[int, store.Password]] = []
            applied: list[tuple[int, str | None]] = []
            for tenant, c in batch:
                token = ciphertexts.get(c.id)
                new_fp = None
                if token is not None:
                    value = old.decrypt(token)
                    redaction.register(value)
                    new_fp = new.fingerprint(value)
                    passwords.append((c.id, store.Password(new.encrypt(value), new_fp)))
                if c.applied_fp is not None and c.applied_fp == c.live_fp:
                    applied.append((c.id, spec.spec_fingerprint(c.spec, new_fp)))
                elif c.applied_fp is not None:  # drifted: its applied fingerprint stays the old key's
                    drifted.count += 1
                    if len(drifted.named) < MAX_DRIFTED_NAMED:
                        drifted.named.append(f"{tenant.key} {render.quoted(c.spec.name)}")
            store.set_passwords(conn, passwords)
            store.set_applied_fps(conn, applied)
            count += len(passwords)
            del live, batch, ciphertexts  # not alive while the next batch is read
        store.set_meta(conn, "key_check", new.check_value())
        commit_begins(count, store.session_of(conn))
    return count
