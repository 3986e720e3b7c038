"""Writing files as a careful person would: all or nothing, never over a file by surprise."""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

from reconciler import errors


def not_a_file(path: Path) -> str | None:
    """Why path cannot be written as a file, or None: a folder, a pipe or a device there would
    be replaced by the rename (--out /dev/stdout as root replaced the device)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"cannot be looked at ({exc.strerror})"
    return None if stat.S_ISREG(mode) else "is not a regular file (a folder, a pipe or a device)"


def _refuse_special(path: Path) -> None:
    why = not_a_file(path)
    if why is not None:
        raise errors.InputError(f"{path}: {why}; nothing was written")


def write(path: Path, text: str, *, exclusive: bool) -> bool:
    """Write text to path through a temporary file in the same directory and a rename, so that
    a reader sees the old file or the new one, never half of one.

    exclusive: never replace a file that exists (checked by the link itself, so a file created
    meanwhile is not overwritten either); returns False, writing nothing, when one does.
    Refuses (InputError, writing nothing) where something other than a file is (not_a_file).
    """
    _refuse_special(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    temp = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if path.exists():
            with contextlib.suppress(OSError):
                os.chmod(temp, path.stat().st_mode & 0o777)
        else:
            os.chmod(temp, new_file_mode())
        if exclusive:
            try:
                os.link(temp, path)
            except FileExistsError:
                return False
        else:
            os.replace(temp, path)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()


def new_file_mode() -> int:
    """The mode open() gives a new file under this process's umask (mkstemp's is 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def writes_begin() -> None:
    """From here until the process ends, SIGINT and SIGTERM are ignored, as after an apply's
    commit: the files are renamed into place one by one and the run then says what it wrote.
    A Ctrl-C among the renames stopped import and drift --write halfway, and one after them
    made the run say "nothing was changed" with exit 1 (DESIGN §8); a SIGTERM killed it halfway.
    Called just before the first write, so that an interrupt until then changes nothing."""
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)


def replace_all(changes: Sequence[tuple[Path, str]]) -> None:
    """Replace each file with its text, all or none (as far as a file system allows): every
    target is checked and every new text written beside its file before the first rename, and
    the files renamed before a rename fails get their old text back. InputError, naming the
    file and why, when one cannot be written."""
    for path, _ in changes:
        _refuse_special(path)
    old = {path: path.read_bytes() for path, _ in changes if path.exists()}
    done: list[Path] = []
    try:
        for path, text in changes:
            write(path, text, exclusive=False)
            done.append(path)
    except BaseException as exc:  # an OSError, or an interrupt where writes_begin() could not
        failed = path
        for path in reversed(done):  # best effort: the one that failed was never changed
            with contextlib.suppress(OSError):
                if path in old:
                    write(path, old[path].decode("utf-8"), exclusive=False)
                else:
                    path.unlink()
        if not isinstance(exc, OSError):
            raise
        why = exc.strerror
        raise errors.InputError(f"{failed}: cannot be written ({why}); no file was changed") from None
