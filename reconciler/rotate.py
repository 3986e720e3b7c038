"""`store rotate-key`: re-encrypt every password under a new key in one transaction."""

from __future__ import annotations

import os

from reconciler import errors, redaction, secrets, spec, store


def rotate(st: store.Store, *, new_key_env: str) -> str:
    assert st.keyring is not None
    old = st.keyring
    location = st.location
    pending_file = None
    if location.key_path is not None and not os.environ.get(secrets.STORE_KEY_VAR):
        assert location.key_path is not None
        raw = secrets.Keyring.generate()
        pending_file = location.key_path.with_name(location.key_path.name + ".new")
        fd = os.open(pending_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(raw + b"\n")
    else:
        value = os.environ.get(new_key_env)
        if not value:
            raise errors.SecretError(
                f"set {new_key_env} to the new key (and keep {secrets.STORE_KEY_VAR} set to the current one)"
            )
        raw = value.encode()
    redaction.register(raw.decode())
    new = secrets.Keyring(raw)
    with st.transaction() as conn:
        live = store.read(conn, None)
        ciphertexts = dict(store.password_rows(conn))
        count = 0
        for tenant in live.tenants.values():
            for c in tenant.connections:
                token = ciphertexts.get(c.id)
                new_fp = None
                if token is not None:
                    value = old.decrypt(token)
                    redaction.register(value)
                    new_fp = new.fingerprint(value)
                    store.set_password(conn, c.id, store.Password(new.encrypt(value), new_fp))
                    count += 1
                if c.applied_fp is not None and c.applied_fp == c.live_fp:
                    store.set_applied(conn, c.id, spec.spec_fingerprint(c.spec, new_fp))
        store.set_meta(conn, "key_check", new.check_value())
    if pending_file is not None:
        assert location.key_path is not None
        os.replace(pending_file, location.key_path)
        return f"Re-encrypted {count} password(s); the new key is in {location.key_path}."
    return (
        f"Re-encrypted {count} password(s) under the key in {new_key_env}; set "
        f"{secrets.STORE_KEY_VAR} to it now."
    )
