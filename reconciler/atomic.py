"""Writing files as a careful person would: all or nothing, never over a file by surprise."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write(path: Path, text: str, *, exclusive: bool) -> bool:
    """Write text to path through a temporary file in the same directory and a rename, so that
    a reader sees the old file or the new one, never half of one.

    exclusive: never replace a file that exists (checked by the link itself, so a file created
    meanwhile is not overwritten either); returns False, writing nothing, when one does.
    """
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
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(temp, 0o666 & ~umask)
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
