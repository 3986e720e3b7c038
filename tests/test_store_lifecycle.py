"""`with ctx.open_store(...) as st:` closes the store however the block ends."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from reconciler import errors, store


class _Spied(store.Store):
    closed = 0

    def close(self) -> None:
        self.closed += 1
        super().close()


def _store(tmp_path: Path) -> _Spied:
    location = store.Location.resolve(f"sqlite:///{tmp_path / 's.db'}", tmp_path)
    return _Spied(location, sa.create_engine(location.url), None, readonly=True)


def test_the_block_gets_the_store_and_leaving_it_closes_it(tmp_path: Path) -> None:
    st = _store(tmp_path)
    with st as inside:
        assert inside is st and st.closed == 0
    assert st.closed == 1


@pytest.mark.parametrize("error", [errors.StoreError("lost"), KeyboardInterrupt()])
def test_a_failing_block_closes_the_store_and_the_error_goes_on(tmp_path: Path, error: BaseException) -> None:
    st = _store(tmp_path)
    with pytest.raises(type(error)), st:
        raise error
    assert st.closed == 1


@pytest.mark.parametrize("committed", [True, False])
def test_after_a_commit_a_late_signal_is_ignored_to_the_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, committed: bool
) -> None:
    """The leases restored Python's default handlers on the way out, so SIGTERM or SIGINT in the
    moment between 'Applied' and the process's end killed a committed apply (exit 143, 130)."""
    import signal

    from reconciler import locks, secrets

    monkeypatch.setenv(secrets.STORE_KEY_VAR, secrets.Keyring.generate().decode())
    location = store.Location.resolve(f"sqlite:///{tmp_path / 's.db'}", tmp_path)
    st = store.Store.open(location, readonly=False, create=True)
    st.init()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with locks.leases(st, ["acme/no"], timeout_s=0) as held:
            if committed:
                held.commit_begins()
        after = {sig: signal.getsignal(sig) for sig in previous}
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        st.close()
    assert after == ({sig: signal.SIG_IGN for sig in previous} if committed else previous)
