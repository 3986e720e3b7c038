"""Secrets: references only, encrypted at rest, compared by fingerprint, never shown."""

from __future__ import annotations

import json
import os
import re
import signal
import uuid
from pathlib import Path

import hypothesis
import pytest
import sqlalchemy as sa
from hypothesis import strategies as st

from reconciler import errors, redaction, secrets, store
from reconciler.declared import SecretRef
from tests.conftest import CANARY, CANARY_ENV, TEST_KEY, Cli, run_in_process
from tests.test_cli import TENANT, dump, edit_by_hand, seeded

OTHER_KEY = secrets.Keyring.generate().decode()


def test_keyring_fingerprint_is_keyed_and_stable() -> None:
    a = secrets.Keyring(TEST_KEY.encode())
    b = secrets.Keyring(OTHER_KEY.encode())
    assert a.fingerprint(CANARY) == a.fingerprint(CANARY)
    assert a.fingerprint(CANARY) != a.fingerprint(CANARY + "x")
    assert a.fingerprint(CANARY) != b.fingerprint(CANARY)
    token = a.encrypt(CANARY)
    assert CANARY not in token and a.decrypt(token) == CANARY
    with pytest.raises(errors.SecretError, match="cannot be decrypted with this key"):
        b.decrypt(token)


def test_invalid_key_is_a_clear_error() -> None:
    with pytest.raises(errors.SecretError, match="RECONCILER_STORE_KEY is not a valid key"):
        secrets.Keyring(b"not-a-key")


@pytest.mark.parametrize(
    "text",
    [
        f"DRIVER={{ODBC Driver 18}};SERVER=x;UID=u;PWD={{{CANARY}}};",
        f"postgresql+psycopg://user:{CANARY}@db/x",
        f"login failed: password={CANARY}",
    ],
)
def test_redact_removes_passwords_from_driver_text(text: str) -> None:
    assert CANARY not in redaction.redact(text)


@pytest.mark.parametrize(
    ("password", "text", "expected"),
    [
        # A one-letter password was masked inside every word: the check's line named no
        # connection, and `role … does not exist` became `rol***` (another diagnosis).
        (
            "a",
            'acme/acme-norway/My Maria: login root was refused: PWD=a; "a"',
            'acme/acme-norway/My Maria: login root was refused: PWD=***; "***"',
        ),
        ("e", 'role "osr" does not exist (e)', 'role "osr" does not exist (***)'),
        ("*", "PWD=*; masked: ***", "PWD=***; masked: ***"),  # never inside a mask
        ("ab", "{ab};ab", "{***};***"),
    ],
)
def test_a_short_password_is_masked_where_it_stands_alone(password: str, text: str, expected: str) -> None:
    assert redaction.redact(text, [password]) == expected


def test_redact_removes_registered_values_anywhere() -> None:
    redaction.register("s3cr3t-value")
    assert redaction.redact("boom s3cr3t-value boom") == "boom *** boom"


@hypothesis.settings(max_examples=400, deadline=None)
@hypothesis.given(
    known=st.lists(st.text("abc-", min_size=1, max_size=6)),
    given=st.lists(st.text("abc-", min_size=1, max_size=4), max_size=3),
    text=st.text("abc- ", max_size=40),
)
def test_redact_leaves_no_secret_however_they_overlap(known: list[str], given: list[str], text: str) -> None:
    """Secrets that overlap, nest or share their first characters: none is left in the text,
    registered (at least 3 characters) or given to the call; one given shorter than that, none
    left as a word of its own (inside a word, one letter reveals nothing)."""
    # hypothesis: no function-scoped fixture per example. Put back after each: the secrets of
    # the last example (`acc`) masked the messages of later tests in the same process.
    before, redaction._known = redaction._known, redaction._Known()
    try:
        for secret in known:
            redaction.register(secret)
        out = redaction.redact(text, given)
    finally:
        redaction._known = before
    left = [s for s in [*known, *given] if len(s) >= 3 and s in out]
    left += [s for s in given if len(s) < 3 and re.search(rf"(?<![\w*]){re.escape(s)}(?![\w*])", out)]
    assert not left, (text, out)
    if not any(s in text for s in [*known, *given]):
        assert out == text  # nothing else is touched


def test_redact_finds_one_secret_among_a_fleets(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fleet's source checks redact every message with every password of the fleet known."""
    monkeypatch.setattr(redaction, "_known", redaction._Known())
    fleet = [f"pw-{i:05d}-{i * 7919 % 100000:05d}" for i in range(40_000)]
    for secret in fleet:
        redaction.register(secret)
    assert fleet[31_337] in redaction._known and "pw-x" not in redaction._known
    message = f"t/Books: login failed for osr (password {fleet[31_337]}, then {fleet[7]}{fleet[8]})"
    assert redaction.redact(message) == "t/Books: login failed for osr (password ***, then ******)"


def test_password_stored_encrypted_with_fingerprint(cli: Cli) -> None:
    seeded(cli)
    engine = sa.create_engine(cli.env["RECONCILER_STORE"], poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            ct, fp = conn.execute(
                sa.select(store.connections.c.password_ct, store.connections.c.password_fp)
            ).one()
    finally:
        engine.dispose()
    assert CANARY not in ct and ct.startswith("gAAAA")  # Fernet token
    assert fp == secrets.Keyring(TEST_KEY.encode()).fingerprint(CANARY)
    assert "password" not in dump(cli)


def test_wrong_store_key_is_an_error_not_a_change(cli: Cli) -> None:
    seeded(cli)
    result = cli("plan", env={"RECONCILER_STORE_KEY": OTHER_KEY})
    assert result.code == 1
    assert "RECONCILER_STORE_KEY is not the key of this store" in result.err
    missing = cli("plan", env={"RECONCILER_STORE_KEY": ""})
    assert missing.code == 1 and "RECONCILER_STORE_KEY is not set" in missing.err


def test_rotate_key_reencrypts_and_keeps_plans_clean(cli: Cli) -> None:
    seeded(cli)
    before = dump(cli)
    result = cli("store", "rotate-key", env={"RECONCILER_NEW_STORE_KEY": OTHER_KEY})
    assert result.code == 0, result.err
    assert "Re-encrypted 1 password(s)" in result.err
    assert OTHER_KEY not in result.both
    old = cli("plan", env={})
    assert old.code == 1 and "not the key of this store" in old.err
    assert "rotated" not in old.err
    told = cli("plan", env={"RECONCILER_NEW_STORE_KEY": OTHER_KEY})  # the rotation's own shell
    assert told.code == 1 and told.err.rstrip().endswith(
        "it was rotated to the key in RECONCILER_NEW_STORE_KEY: set RECONCILER_STORE_KEY to it"
    ), told.err
    assert OTHER_KEY not in told.both
    new = cli("plan", "--detailed-exitcode", env={"RECONCILER_STORE_KEY": OTHER_KEY})
    assert new.code == 0, new.out  # same password, new key: unchanged, no drift
    drift = cli("drift", env={"RECONCILER_STORE_KEY": OTHER_KEY})
    assert drift.code == 0, drift.out
    assert cli("store", "dump", env={"RECONCILER_STORE_KEY": OTHER_KEY}).out == before


def test_rotate_key_names_the_drift_it_cannot_carry_over(cli: Cli) -> None:
    """A connection changed in the portal since it was applied: what was applied is known only
    by a fingerprint holding the password's under the old key, which the rotation cannot make
    again. It said nothing, and from then on drift told that connection as drift and pending
    (drift --write: a conflict) with no word why. The warning names it and says what settles it;
    doing that settles it."""
    seeded(cli)
    edit_by_hand(cli, "Visma Oslo", database_name="vbsys_copy")
    assert (
        json.loads(cli("drift", "--format", "json").out)["tenants"][0]["connections"][0]["status"] == "drift"
    )
    result = cli("store", "rotate-key", env={"RECONCILER_NEW_STORE_KEY": OTHER_KEY})
    assert result.code == 0, result.err
    (said, warning) = result.err.rstrip("\n").split("\n")
    assert said.startswith("Re-encrypted 1 password(s)")
    assert warning.startswith(
        "warning: 1 connection(s) had changed in the portal since the tool applied them "
        '(acme/acme-norway "Visma Oslo").'
    )
    assert "drift and pending" in warning and "apply" in warning
    new_key = {"RECONCILER_STORE_KEY": OTHER_KEY}
    after = json.loads(cli("drift", "--format", "json", env=new_key).out)["tenants"][0]["connections"][0]
    assert after["status"] == "drift_and_pending"  # what the warning said
    tenant_file = cli.root / "tenants/acme/acme-norway.yaml"
    before = tenant_file.read_text()
    cli("drift", "--write", env=new_key)
    assert tenant_file.read_text() == before  # not accepted, as it said
    # What it says to do: the portal's values written into the tenant file, then apply.
    cli.write("tenants/acme/acme-norway.yaml", TENANT.replace("database: vbsys", "database: vbsys_copy"))
    applied = cli("apply", "--auto-approve", env=new_key)
    assert applied.code == 0, applied.both
    assert cli("drift", env=new_key).code == 0
    quiet = cli(
        "store", "rotate-key", env={"RECONCILER_STORE_KEY": OTHER_KEY, "RECONCILER_NEW_STORE_KEY": TEST_KEY}
    )
    assert quiet.code == 0 and "warning" not in quiet.err, quiet.err


def test_rotate_key_drift_warning_is_bounded() -> None:
    """A fleet's drift is counted, and only its first connections named."""
    from reconciler import rotate

    drifted = rotate._Drifted(
        rotate.MAX_DRIFTED_NAMED + 2, [f'acme/t{i} "Oslo"' for i in range(rotate.MAX_DRIFTED_NAMED)]
    )
    (warning,) = rotate._drift_warning(drifted)
    assert warning.startswith(f"warning: {rotate.MAX_DRIFTED_NAMED + 2} connection(s)")
    assert '(acme/t0 "Oslo", acme/t1 "Oslo"' in warning and '"Oslo" and 2 more)' in warning
    assert rotate._drift_warning(rotate._Drifted()) == []


def test_rotate_key_drift_warning_shows_a_portal_name_inert(cli: Cli) -> None:
    """The warning quotes the portal's name: a line break in it cannot start a line of its own."""
    seeded(cli)
    engine = sa.create_engine(cli.env["RECONCILER_STORE"], poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:  # renamed in the portal
            conn.execute(store.connections.update().values(name="Visma Oslo\nRe-encrypted 0 password(s)"))
    finally:
        engine.dispose()
    result = cli("store", "rotate-key", env={"RECONCILER_NEW_STORE_KEY": OTHER_KEY})
    assert result.code == 0, result.err
    (_said, warning) = result.err.rstrip("\n").split("\n")
    assert '(acme/acme-norway "Visma Oslo\\nRe-encrypted 0 password(s)")' in warning


def test_rotate_key_to_the_key_in_use_is_refused(cli: Cli) -> None:
    """It said "Re-encrypted 1 password(s) under the key in RECONCILER_NEW_STORE_KEY" and
    rewrote every ciphertext, a rotation that rotated nothing (a copy-paste of the old key)."""
    seeded(cli)
    before = dump(cli)
    result = cli("store", "rotate-key", env={"RECONCILER_NEW_STORE_KEY": cli.env["RECONCILER_STORE_KEY"]})
    assert result.code == 1
    assert result.err == (
        "error: RECONCILER_NEW_STORE_KEY holds the key in use (RECONCILER_STORE_KEY); nothing was "
        "changed: set RECONCILER_NEW_STORE_KEY to a new key\n"
    )
    assert dump(cli) == before


@pytest.mark.parametrize("embedded", [False, True])
def test_a_key_given_as_new_key_env_is_not_printed(cli: Cli, embedded_cli: Cli, embedded: bool) -> None:
    """`--new-key-env $NEW_KEY` (the key, not the variable's name) printed the key in the error,
    twice for an embedded store: into the job's log."""
    run = embedded_cli if embedded else cli
    if embedded:
        assert run("store", "init").code == 0
    else:
        seeded(run)
    result = run("store", "rotate-key", "--new-key-env", OTHER_KEY)
    assert result.code == 1
    assert OTHER_KEY not in result.both and OTHER_KEY[:12] not in result.both
    assert "--new-key-env takes the name of an environment variable" in result.err
    assert "(not shown: it may be the key)" in result.err


def test_a_key_file_others_can_read_is_warned_about(embedded_cli: Cli) -> None:
    """The embedded store's key file decrypts every stored password and is made 0600; one made
    readable by others (a copy, a restore from backup) was used without a word."""
    assert embedded_cli("store", "init").code == 0
    key = embedded_cli.root / ".reconciler" / "store.key"
    key.chmod(0o644)
    loose = embedded_cli("locks")
    assert loose.code == 0
    assert loose.err == (
        f"warning: the key file {key} can be read by others (mode 0644), and it decrypts every "
        f"stored password: run `chmod 600 {key}`\nNo locks held.\n"
    )
    key.chmod(0o600)
    assert embedded_cli("locks").err == "No locks held.\n"


def test_rotate_key_on_embedded_store_replaces_key_file(embedded_cli: Cli) -> None:
    assert embedded_cli("store", "init").code == 0
    embedded_cli.write("live.yaml", (Path(__file__).parent / "cases/normalise/live.yaml").read_text())
    assert embedded_cli("store", "seed", "live.yaml").code == 0
    key_file = embedded_cli.root / ".reconciler" / "store.key"
    old = key_file.read_bytes()
    result = embedded_cli("store", "rotate-key")
    assert result.code == 0, result.err
    assert key_file.read_bytes() != old and key_file.stat().st_mode & 0o777 == 0o600
    assert old.strip().decode() not in result.both
    assert embedded_cli("store", "dump").code == 0


def test_rotate_key_to_a_variable_replaces_the_key_file_of_an_embedded_store(embedded_cli: Cli) -> None:
    """With the key file's key also in RECONCILER_STORE_KEY (as the refusal below suggests), the
    store was rotated to the new key and the key file kept the old one: once the variable was
    unset, every command failed, blaming a RECONCILER_STORE_KEY that was not set."""
    assert embedded_cli("store", "init").code == 0
    embedded_cli.write("live.yaml", (Path(__file__).parent / "cases/normalise/live.yaml").read_text())
    assert embedded_cli("store", "seed", "live.yaml").code == 0
    key_file = embedded_cli.root / ".reconciler" / "store.key"
    current = key_file.read_bytes().strip().decode()
    env = {"RECONCILER_STORE_KEY": current, "RECONCILER_NEW_STORE_KEY": OTHER_KEY}
    result = embedded_cli("store", "rotate-key", env=env)
    assert result.code == 0, result.err
    assert f"{key_file} holds it too" in result.err
    assert key_file.read_bytes().strip().decode() == OTHER_KEY
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert OTHER_KEY not in result.both and current not in result.both
    assert embedded_cli("store", "dump").code == 0  # the key file alone
    assert embedded_cli("store", "dump", env={"RECONCILER_STORE_KEY": OTHER_KEY}).code == 0


def test_rotate_key_to_a_variable_leaves_another_stores_key_file_alone(embedded_cli: Cli) -> None:
    """Two SQLite stores in one folder share the name store.key: rotating the second (its key in
    RECONCILER_STORE_KEY) replaced the first's key file, its only key, with the new one."""
    assert embedded_cli("store", "init").code == 0
    key_file = embedded_cli.root / ".reconciler" / "store.key"
    first = key_file.read_bytes()
    second = f"sqlite:///{embedded_cli.root}/.reconciler/second.db"
    env = {"RECONCILER_STORE_KEY": TEST_KEY}
    assert embedded_cli("store", "init", "--store", second, env=env).code == 0
    rotated = embedded_cli(
        "store", "rotate-key", "--store", second, env={**env, "RECONCILER_NEW_STORE_KEY": OTHER_KEY}
    )
    assert rotated.code == 0, rotated.err
    assert "holds it too" not in rotated.err
    assert key_file.read_bytes() == first
    assert embedded_cli("store", "dump").code == 0
    assert embedded_cli("store", "dump", "--store", second, env={"RECONCILER_STORE_KEY": OTHER_KEY}).code == 0


def test_a_new_key_file_that_cannot_be_made_or_moved_is_said_not_a_crash(
    embedded_cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """store.key.new a folder: rotate-key was an internal error (IsADirectoryError); a rotation
    whose new key file could not replace store.key: every later command was one (PermissionError)."""
    assert embedded_cli("store", "init").code == 0
    folder = embedded_cli.root / ".reconciler"
    (folder / "store.key.new").mkdir()
    refused = embedded_cli("store", "rotate-key")
    assert refused.code == 1, refused.err
    assert "cannot write the new key to" in refused.err and "nothing was changed" in refused.err
    (folder / "store.key.new").rmdir()
    assert embedded_cli("store", "dump").code == 0  # the old key still opens it
    old = (folder / "store.key").read_bytes()
    new = secrets.Keyring.generate()
    (folder / "store.key.new").write_bytes(new + b"\n")
    engine = sa.create_engine(f"sqlite:///{folder / 'store.db'}", poolclass=sa.pool.NullPool)
    with engine.begin() as conn:  # a rotation that committed, its key file not yet moved
        conn.execute(
            store.store_meta.update()
            .where(store.store_meta.c.key == "key_check")
            .values(value=secrets.Keyring(new).check_value())
        )
    engine.dispose()

    def refused_replace(src: object, dst: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(store.os, "replace", refused_replace)
    stuck = embedded_cli("store", "dump")
    assert stuck.code == 1 and "internal error" not in stuck.err, stuck.err
    assert "store.key.new (a key rotation committed), which could not replace" in stuck.err
    assert (folder / "store.key").read_bytes() == old
    assert new.decode() not in stuck.both and old.strip().decode() not in stuck.both


def test_a_new_key_file_that_holds_no_key_is_not_blamed_on_the_variable(embedded_cli: Cli) -> None:
    assert embedded_cli("store", "init").code == 0
    folder = embedded_cli.root / ".reconciler"
    (folder / "store.key").write_text(OTHER_KEY + "\n")
    (folder / "store.key.new").write_text("garbled\n")
    result = embedded_cli("store", "dump")
    assert result.code == 1
    assert "RECONCILER_STORE_KEY" not in result.err
    assert result.err.startswith("error: the key file"), result.err


def test_a_key_file_that_is_not_the_stores_key_is_named(embedded_cli: Cli) -> None:
    assert embedded_cli("store", "init").code == 0
    key_file = embedded_cli.root / ".reconciler" / "store.key"
    key_file.write_text(OTHER_KEY + "\n")
    result = embedded_cli("store", "dump")
    assert result.code == 1
    assert result.err.startswith(f"error: the key file {key_file} is not the key of this store"), result.err


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (("--new-key-env", "MY_NEW_KEY"), {"MY_NEW_KEY": OTHER_KEY}),
        (("--new-key-env", "MY_NEW_KEY"), {}),
        ((), {"RECONCILER_NEW_STORE_KEY": OTHER_KEY}),
    ],
)
def test_rotate_key_on_embedded_store_refuses_a_new_key_it_would_ignore(
    embedded_cli: Cli, args: tuple[str, ...], env: dict[str, str]
) -> None:
    """An embedded store with a key file gets a new key file: a new key given to it was ignored
    without a word, and the person went on to use a key that opens nothing."""
    assert embedded_cli("store", "init").code == 0
    key_file = embedded_cli.root / ".reconciler" / "store.key"
    old = key_file.read_bytes()
    result = embedded_cli("store", "rotate-key", *args, env=env)
    assert result.code == 1, result.err
    variable = args[1] if args else "RECONCILER_NEW_STORE_KEY"
    assert "store.key, and rotate-key replaces that file with a new key it makes" in result.err
    assert f"does not take one from {variable}: unset it" in result.err
    assert OTHER_KEY not in result.both
    assert key_file.read_bytes() == old
    assert not (embedded_cli.root / ".reconciler" / "store.key.new").exists()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("RECONCILER_NEW_STORE_KEY", "bad"),
        ("RECONCILER_NEW_STORE_KEY", "\udcff"),
        ("RECONCILER_STORE_KEY", "\udcff"),
    ],
)
def test_a_bad_key_variable_is_named_and_not_a_crash(cli: Cli, variable: str, value: str) -> None:
    """The variable at fault is the one named; bytes that are not UTF-8 are not a key either."""
    seeded(cli)
    before = dump(cli)
    result = cli(
        "store",
        "rotate-key",
        env={variable: value}
        if "NEW" in variable
        else {variable: value, "RECONCILER_NEW_STORE_KEY": OTHER_KEY},
    )
    assert result.code == 1
    assert result.err.startswith(f"error: {variable} is not a valid key"), result.err
    assert dump(cli) == before


def test_rotate_key_that_cannot_replace_the_key_file_says_it_rotated(
    embedded_cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Committed is rotated: the new key waits beside the old file, and the next run takes it."""
    assert embedded_cli("store", "init").code == 0
    embedded_cli.write("live.yaml", (Path(__file__).parent / "cases/normalise/live.yaml").read_text())
    assert embedded_cli("store", "seed", "live.yaml").code == 0
    real = os.replace

    def refused(src: object, dst: object) -> None:
        if str(dst).endswith("store.key"):
            raise PermissionError(1, "Operation not permitted")
        real(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", refused)
    result = run_in_process(("store", "rotate-key"), env=embedded_cli.env, cwd=embedded_cli.root)
    monkeypatch.undo()
    assert result.code == 0, result.err
    assert "Re-encrypted" in result.err and "could not replace" in result.err
    pending = embedded_cli.root / ".reconciler" / "store.key.new"
    assert pending.exists()
    assert embedded_cli("store", "dump").code == 0  # moved into place by the next command
    assert not pending.exists()


def test_rotate_key_that_does_not_commit_leaves_no_new_key_file(
    embedded_cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing written on exit 1: the store.key.new written before the transaction goes when the
    store still holds the old key (and the old key still opens it)."""
    assert embedded_cli("store", "init").code == 0
    embedded_cli.write("live.yaml", (Path(__file__).parent / "cases/normalise/live.yaml").read_text())
    assert embedded_cli("store", "seed", "live.yaml").code == 0
    key = (embedded_cli.root / ".reconciler" / "store.key").read_bytes()

    def lost(*_: object) -> None:
        raise errors.StoreError("store: the connection was lost")

    monkeypatch.setattr(store, "set_meta", lost)
    result = run_in_process(("store", "rotate-key"), env=embedded_cli.env, cwd=embedded_cli.root)
    monkeypatch.undo()
    assert result.code == 1 and "the connection was lost" in result.err
    assert not (embedded_cli.root / ".reconciler" / "store.key.new").exists()
    assert (embedded_cli.root / ".reconciler" / "store.key").read_bytes() == key
    assert embedded_cli("store", "dump").code == 0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_as_rotate_key_commits_does_not_undo_what_it_says(
    embedded_cli: Cli, monkeypatch: pytest.MonkeyPatch, sig: signal.Signals
) -> None:
    """Ctrl-C landing just after the commit said `interrupted; nothing was changed`, yet every
    password was under the new key (in store.key.new, which the message invited deleting)."""
    assert embedded_cli("store", "init").code == 0
    embedded_cli.write("live.yaml", (Path(__file__).parent / "cases/normalise/live.yaml").read_text())
    assert embedded_cli("store", "seed", "live.yaml").code == 0
    commit = sa.engine.Connection._commit_impl

    def then_signalled(self: sa.engine.Connection) -> None:
        commit(self)
        os.kill(os.getpid(), sig)

    monkeypatch.setattr(sa.engine.Connection, "_commit_impl", then_signalled)
    result = run_in_process(("store", "rotate-key"), env=embedded_cli.env, cwd=embedded_cli.root)
    monkeypatch.undo()
    assert result.code == 0, result.err
    assert "Re-encrypted" in result.err and "nothing was changed" not in result.err
    assert not (embedded_cli.root / ".reconciler" / "store.key.new").exists()
    assert embedded_cli("store", "dump").code == 0  # the key in store.key opens it


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_as_store_seed_commits_does_not_say_nothing_was_changed(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, sig: signal.Signals
) -> None:
    """`store seed` committed, then a Ctrl-C: "interrupted; nothing was changed", exit 1, with
    every connection seeded. From its commit on, a signal is ignored, as apply's and rotate-key's."""
    cli.write("live.yaml", (Path(__file__).parent / "cases/normalise/live.yaml").read_text())
    commit = sa.engine.Connection._commit_impl

    def then_signalled(self: sa.engine.Connection) -> None:
        commit(self)
        os.kill(os.getpid(), sig)

    monkeypatch.setattr(sa.engine.Connection, "_commit_impl", then_signalled)
    result = run_in_process(("store", "seed", "live.yaml"), env=cli.env, cwd=cli.root)
    monkeypatch.undo()
    assert result.code == 0, result.err
    assert result.err.startswith("Seeded ") and "nothing was changed" not in result.err
    assert "connections:" in cli("store", "dump").out


def test_store_url_password_never_printed(embedded_cli: Cli) -> None:
    url = f"postgresql+psycopg://someone:{CANARY}@127.0.0.1:1/nothing"
    embedded_cli.write("tenants/acme/acme-norway.yaml", TENANT)
    result = embedded_cli("plan", "--store", url, env={"RECONCILER_STORE_KEY": TEST_KEY})
    assert result.code == 1
    assert "someone:***@127.0.0.1:1" in result.err


# Each password fresh (redaction remembers what an earlier in-process run registered), and the
# URLs SQLAlchemy accepts that the message patterns alone did not mask.
@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://someone:{pw} with space@127.0.0.1:1/nothing",
        "postgresql+psycopg://someone@127.0.0.1:1/nothing?password={pw},tail",
        "mysql+pymysql://root:{pw}'x y@127.0.0.1:1/nothing",
        "mssql+pyodbc:///?odbc_connect=DRIVER%3DFreeTDS%3BSERVER%3D127.0.0.1%3BUID%3Dsa%3BPWD%3D{pw}",
        "mssql+pyodbc:///?odbc_connect=DRIVER%3DFreeTDS%3BPWD%3D%7B{pw}%3B%20x%7D%3BUID%3Dsa",
        # other writers' percent-encodings: .NET's lower-case hex, encodeURIComponent's %2F and %20
        "mssql+pyodbc:///?odbc_connect=DRIVER%3DFreeTDS%3BUID%3Dsa%3BPWD%3D{pw}%2bpw%2fz",
        "mssql+pyodbc:///?odbc_connect=DRIVER%3DFreeTDS%3BUID%3Dsa%3BPWD%3D%7B{pw}%2Fpw%20x%7D",
        # an '@' not percent-encoded: the driver would name 'pw@127.0.0.1' as the host
        "postgresql+psycopg://someone:pa@{pw}@127.0.0.1:1/nothing",
        "mysql+pymysql://root:x@{pw}@127.0.0.1:1/nothing",
        "postgresql+psycopg:/someone:{pw}@127.0.0.1:1/nothing",  # one slash: no URL at all
    ],
)
def test_every_password_a_store_url_holds_is_masked(embedded_cli: Cli, url: str) -> None:
    password = f"urlpw-{uuid.uuid4().hex[:12]}"
    embedded_cli.write("tenants/acme/acme-norway.yaml", TENANT)
    result = embedded_cli("plan", "--store", url.format(pw=password), env={"RECONCILER_STORE_KEY": TEST_KEY})
    assert result.code == 1
    assert "***" in result.err or "(not shown: it may hold a password)" in result.err
    assert password not in result.both
    assert password.split("-")[1] not in result.both


def test_secret_file_reference_resolves_inside_secrets_dir(cli: Cli) -> None:
    seeded(cli, TENANT.replace("{env: OSR_CANARY}", "{file: acme/no.txt}"))
    secret = cli.root / ".secrets" / "acme" / "no.txt"
    secret.parent.mkdir(parents=True)
    secret.write_text(CANARY + "\n")  # trailing newline stripped
    assert cli("plan", "--detailed-exitcode").code == 0
    secret.write_text(CANARY + "-changed\n")
    obj = json.loads(cli("plan", "--format", "json").out)
    assert obj["tenants"][0]["actions"][0]["changes"] == [{"field": "password", "sensitive": True}]


def test_env_reference_must_use_the_tenant_prefix(cli: Cli) -> None:
    seeded(cli, TENANT.replace("{env: OSR_CANARY}", "{env: RECONCILER_STORE_KEY}"))
    result = cli("validate")
    assert result.code == 1
    assert "environment variable 'RECONCILER_STORE_KEY' is not a tenant secret" in result.err
    assert TEST_KEY not in result.both


def test_tool_prefix_cannot_be_the_secret_prefix(cli: Cli) -> None:
    seeded(cli)
    result = cli("validate", env={"RECONCILER_SECRET_ENV_PREFIX": "RECONCILER_"})
    assert result.code == 1 and "would let tenant files read the tool's own settings" in result.err


def test_plan_file_holds_no_secret_and_no_bare_fingerprint(cli: Cli) -> None:
    seeded(cli)
    assert cli("plan", "--out", "plan.json", env={CANARY_ENV: CANARY + "-new"}).code == 0
    text = (cli.root / "plan.json").read_text()
    keyring = secrets.Keyring(TEST_KEY.encode())
    for value in (CANARY, CANARY + "-new"):
        assert value not in text
        assert keyring.fingerprint(value) not in text
    plan = json.loads(text)["plan"]
    assert plan["tenants"][0]["actions"][0]["changes"] == [{"field": "password", "sensitive": True}]


def test_unexpected_error_report_is_redacted(tmp_path: Path) -> None:
    from reconciler import cli as cli_mod

    redaction.register(CANARY)
    os.environ["TMPDIR"] = str(tmp_path)
    try:
        log = cli_mod._debug_log(RuntimeError(f"driver said PWD={CANARY};"))
    finally:
        del os.environ["TMPDIR"]
    assert CANARY not in log.read_text()


def test_symlink_loop_in_secrets_dir_is_refused(embedded_cli: Cli) -> None:
    secrets_dir = embedded_cli.root / ".secrets"
    secrets_dir.mkdir()
    (secrets_dir / "loop").symlink_to("loop")
    embedded_cli.write("tenants/acme/acme-norway.yaml", TENANT.replace("{env: OSR_CANARY}", "{file: loop}"))
    result = embedded_cli("validate")
    assert result.code == 1 and "file 'loop' is outside the secrets directory" in result.err


def test_environment_secret_that_is_not_utf8_is_an_error(cli: Cli) -> None:
    seeded(cli)
    env = {**cli.env}
    env_bytes = {k.encode(): v.encode() for k, v in env.items()}
    env_bytes[b"OSR_CANARY"] = b"abc\xff"
    import subprocess

    from tests.conftest import RECONCILER

    proc = subprocess.run(
        [RECONCILER, "plan"], cwd=cli.root, env=env_bytes, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1
    assert "environment variable OSR_CANARY is not valid UTF-8" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_prose_after_password_colon_is_not_masked() -> None:
    line = "connections[0].password: a password is never written in a tenant file"
    assert redaction.redact(line) == line


def _settings(tmp_path: Path) -> secrets.Settings:
    (tmp_path / ".secrets" / "acme").mkdir(parents=True)
    (tmp_path / "outside.txt").write_text("not-a-tenant-secret\n")
    return secrets.Settings("OSR_", tmp_path / ".secrets")


def test_secret_file_read_as_text_mode_would(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    (tmp_path / ".secrets" / "acme" / "crlf.txt").write_bytes("pä\r\nss\rword\r\n\n".encode())
    (tmp_path / ".secrets" / "acme" / "latin1.txt").write_bytes(b"p\xe4ss\n")
    assert settings.resolve(SecretRef(None, "acme/crlf.txt")) == "pä\nss\nword"
    assert settings.resolve(SecretRef(None, "acme/latin1.txt")) is None  # not UTF-8
    assert settings.resolve(SecretRef(None, "acme/missing.txt")) is None


def test_links_and_dots_leading_out_of_secrets_dir_are_refused(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    base = tmp_path / ".secrets"
    (base / "acme" / "out.txt").symlink_to(tmp_path / "outside.txt")
    (base / "away").symlink_to(tmp_path)
    (base / "acme" / "in.txt").write_text(CANARY + "\n")
    (base / "acme" / "alias.txt").symlink_to(base / "acme" / "in.txt")
    for file in (
        "acme/out.txt",
        "away/outside.txt",
        "acme/../../outside.txt",
        "../outside.txt",
        str(tmp_path / "outside.txt"),
        "acme/..",
    ):
        assert settings.check_reference(None, file) is not None, file
        assert settings.resolve(SecretRef(None, file)) is None, file
    assert settings.check_reference(None, "acme/in.txt") is None
    assert settings.resolve(SecretRef(None, "acme/alias.txt")) == CANARY  # a link kept inside


def test_missing_secret_file_is_checked_again_not_remembered(tmp_path: Path) -> None:
    """Only a regular file's check is kept for the run: a link created later is still refused."""
    settings = _settings(tmp_path)
    ref = SecretRef(None, "acme/later.txt")
    assert settings.check_reference(None, ref.file) is None  # not there yet: inside, unreadable
    assert settings.resolve(ref) is None
    (tmp_path / ".secrets" / "acme" / "later.txt").symlink_to(tmp_path / "outside.txt")
    assert settings.check_reference(None, ref.file) is not None
    assert settings.resolve(ref) is None


def test_remembered_checks_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fleet's references do not all stay in memory: the run forgets them past the bound."""
    monkeypatch.setattr(secrets, "MAX_REMEMBERED", 3)
    settings = _settings(tmp_path)
    for n in range(10):
        (tmp_path / ".secrets" / "acme" / f"{n}.txt").write_text(f"secret-{n}\n")
    for _ in range(2):
        for n in range(10):
            assert settings.resolve(SecretRef(None, f"acme/{n}.txt")) == f"secret-{n}"
            assert len(settings._targets) <= 3


def test_a_file_replaced_by_a_link_after_its_check_is_not_followed(tmp_path: Path) -> None:
    """The check (a folder's listing, made once per run) and the read are apart in time: a link
    put in a checked file's place is refused when the file is read, not followed out."""
    settings = _settings(tmp_path)
    secret = tmp_path / ".secrets" / "acme" / "in.txt"
    secret.write_text(CANARY + "\n")
    assert settings.check_reference(None, "acme/in.txt") is None
    secret.unlink()
    secret.symlink_to(tmp_path / "outside.txt")
    assert settings.resolve(SecretRef(None, "acme/in.txt")) is None


@pytest.mark.parametrize(("listed", "folder"), [(1, 100), (3, 100), (100, 0), (100, 1), (100, 100)])
def test_folders_not_listed_are_checked_file_by_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, listed: int, folder: int
) -> None:
    """Past the bound of listed entries, or in a folder too large to list, each file is looked
    up alone, with the same answers."""
    monkeypatch.setattr(secrets, "MAX_LISTED", listed)
    monkeypatch.setattr(secrets, "MAX_LISTED_FOLDER", folder)
    settings = _settings(tmp_path)
    base = tmp_path / ".secrets"
    (base / "acme" / "in.txt").write_text(CANARY + "\n")
    (base / "acme" / "out.txt").symlink_to(tmp_path / "outside.txt")
    (base / "acme" / "alias.txt").symlink_to(base / "acme" / "in.txt")
    (base / "top.txt").write_text("top-secret\n")
    for _ in range(2):
        assert settings.check_reference(None, "acme/in.txt") is None
        assert settings.check_reference(None, "acme/out.txt") is not None
        assert settings.resolve(SecretRef(None, "acme/in.txt")) == CANARY
        assert settings.resolve(SecretRef(None, "acme/alias.txt")) == CANARY
        assert settings.resolve(SecretRef(None, "acme/out.txt")) is None
        assert settings.resolve(SecretRef(None, "top.txt")) == "top-secret"


def test_a_large_secret_file_is_read_whole_and_refused_as_no_password(tmp_path: Path) -> None:
    """Read whole (past the first read's 64 KiB), then refused: a SQL Server password is at
    most 128 characters (a 40,000-character one crashed psqlODBC inside --check-sources)."""
    settings = _settings(tmp_path)
    value = "x" * 65536 + "y" * 70000
    (tmp_path / ".secrets" / "acme" / "large.txt").write_text(value + "\n")
    assert settings.check_reference(None, "acme/large.txt") is None
    with pytest.raises(errors.SecretError) as caught:
        settings.resolve(SecretRef(None, "acme/large.txt"))
    assert str(caught.value) == (
        "the password in file acme/large.txt is 135,536 characters; a SQL Server login's password "
        "is at most 128: check that file acme/large.txt holds the password alone"
    )
    (tmp_path / ".secrets" / "acme" / "longest.txt").write_text("z" * 128 + "\n")
    assert settings.resolve(SecretRef(None, "acme/longest.txt")) == "z" * 128


def test_a_secret_file_with_a_nul_is_refused_in_plan(cli: Cli) -> None:
    """The ODBC driver sent the part before the NUL (a wrong password nothing named), and a
    server quoting it back printed it: the file is refused, its place said, nothing shown."""
    seeded(cli, TENANT.replace("{env: OSR_CANARY}", "{file: acme/nul.txt}"))
    (cli.root / ".secrets" / "acme").mkdir(parents=True)
    (cli.root / ".secrets" / "acme" / "nul.txt").write_bytes(b"{" + CANARY.encode() + b"\0rest\n")
    planned = cli("plan")
    assert planned.code == 1
    assert "the password in file acme/nul.txt holds a NUL character" in planned.err, planned.err
    assert CANARY not in planned.both and "rest" not in planned.both


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes")
def test_a_named_pipe_is_no_secret_and_never_waited_for(cli: Cli) -> None:
    """Opening a FIFO waits for a writer that may never come: a plan in CI hung for good.
    Only a regular file holds a secret; the rest is a password not available here."""
    seeded(cli, TENANT.replace("{env: OSR_CANARY}", "{file: acme/pipe}"))
    (cli.root / ".secrets" / "acme").mkdir(parents=True)
    os.mkfifo(cli.root / ".secrets" / "acme" / "pipe")
    assert cli("validate").code == 0

    def waited(signum: int, frame: object) -> None:
        raise TimeoutError("the plan waited for a writer")

    previous = signal.signal(signal.SIGALRM, waited)  # in-process runs have no timeout of their own
    signal.alarm(60)
    try:
        plan = cli("plan")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert plan.code == 0, plan.err
    assert "password not compared" in plan.both
    refused = cli("apply", "--auto-approve")
    assert refused.code == 1 and "nothing was applied" in refused.err


@pytest.mark.parametrize("command", [("store", "seed", "given.txt"), ("validate",)])
def test_a_key_or_password_file_given_by_mistake_is_not_shown(
    embedded_cli: Cli, command: tuple[str, ...]
) -> None:
    """store seed and RECONCILER_CATALOG read the file they are given: a key file or a secret file
    named by mistake is one value, which the error describes and never repeats."""
    value = f"keylike-{uuid.uuid4().hex}"
    embedded_cli.write("given.txt", value + "\n")
    embedded_cli.write("tenants/acme/acme-norway.yaml", TENANT)
    result = embedded_cli(*command, env={"RECONCILER_CATALOG": "given.txt"})
    assert result.code == 1
    assert value not in result.both
    assert len(result.err.splitlines()) == 1, result.err


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("{env: }", "the password needs exactly one of {env: OSR_NAME} or {file: PATH}"),
        ("{env: 123}", "password.env: expected an environment variable name such as OSR_ACME_NO_SQL"),
    ],
)
def test_a_reference_s_own_words_are_never_masked(cli: Cli, written: str, message: str) -> None:
    """Masking what may be a literal password took the word env for one: the message that says
    what to write instead read {***: OSR_NAME} and '***ironment variable'."""
    seeded(cli, TENANT.replace("{env: OSR_CANARY}", written))
    result = cli("validate")
    assert result.code == 1
    assert message in result.err, result.err


def test_an_odbc_connect_password_is_masked_as_the_driver_receives_it() -> None:
    """`PWD={pw}}x}` in a store URL's odbc_connect is `pw}x` to the driver, and to a server that
    quotes it back: only the written forms were masked."""
    import urllib.parse

    password = f"odbc-{uuid.uuid4().hex[:12]}" + "}x"
    written = "{" + password.replace("}", "}}") + "}"
    odbc = urllib.parse.quote_plus(f"Driver={{FreeTDS}};Server=h;UID=u;PWD={written};Port=1")
    store.Location.resolve(f"mssql+pyodbc:///?odbc_connect={odbc}", Path.cwd())
    said = redaction.redact(f"server said: got password '{password}'")
    assert password not in said and "***" in said
