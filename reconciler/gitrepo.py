"""The git repository the tenant files live in: its root, its commit, files changed since a ref.

No other module runs git.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path

from reconciler import errors


def repo_root(start: Path | None = None) -> Path:
    """The git work tree containing start (default: cwd), else start itself."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / ".git").exists():
            return candidate
    return here


def git_commit(root: Path) -> str | None:
    for var in ("GITHUB_SHA", "CI_COMMIT_SHA", "BUILD_SOURCEVERSION"):
        if os.environ.get(var):
            return os.environ[var]
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _revision(root: Path, ref: str) -> str:
    """The commit ref names; anything that is not a revision is refused, never given to git as
    an option (`--changed-since=--output=FILE` would make git write a file)."""
    hint = "give a commit, branch or tag (e.g. origin/main; fetch it first in CI)"
    if not ref or ref.startswith("-") or not ref.isprintable() or any(c.isspace() for c in ref):
        raise errors.InputError(f"--changed-since {ref!r} is not a git revision; {hint}")
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise errors.InputError(f"--changed-since {ref}: git failed ({exc})") from None
    commit = out.stdout.strip()
    if out.returncode != 0 and "not a git repository" in out.stderr.lower():
        raise errors.InputError(
            f"--changed-since {ref!r}: {root} is not in a git repository; run in the clone of the "
            "tenant files, or plan without --changed-since"
        )
    if out.returncode != 0 or not re.fullmatch(r"[0-9a-f]{40,64}", commit):
        raise errors.InputError(f"--changed-since {ref!r}: no such commit in this repository; {hint}")
    return commit


def changed_files(root: Path, ref: str, paths: Sequence[str]) -> tuple[list[Path], list[str]]:
    """Tenant files changed since ref: (files to plan, lines about deleted/renamed ones)."""
    commit = _revision(root, ref)
    try:
        out = subprocess.run(
            ["git", "diff", "--name-status", "-M", f"{commit}...HEAD", "--", *paths],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        untracked = subprocess.run(
            ["git", "ls-files", "--others", "--exclude-standard", "--", *paths],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise errors.InputError(f"--changed-since {ref}: git failed ({exc})") from None
    if out.returncode != 0:
        raise errors.InputError(
            f"--changed-since {ref}: {out.stderr.strip() or 'git diff failed'}; "
            "give a commit, branch or tag that exists (fetch it first in CI)"
        )
    files: list[Path] = []
    notes: list[str] = []
    for line in out.stdout.splitlines():
        parts = line.split("\t")
        status = parts[0]
        if not parts[-1].endswith((".yaml", ".yml")):
            continue
        if status.startswith("D"):
            notes.append(f"{parts[1]}: deleted since {ref}; a missing tenant file deletes nothing")
        elif status.startswith("R"):
            notes.append(
                f"{parts[1]} renamed to {parts[2]} since {ref}; not planned here (a "
                "rename changes which tenant the file declares): plan it by path"
            )
        else:
            files.append(root / parts[-1])
    files += [root / name for name in untracked.stdout.splitlines() if name.endswith((".yaml", ".yml"))]
    return sorted(set(files)), notes
