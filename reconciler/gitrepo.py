"""The git repository the tenant files live in: its root, its commit, files changed since a ref.

No other module runs git.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

from reconciler import errors


def repo_root(start: Path | None = None) -> Path:
    """The git work tree containing start (default: cwd), else start itself."""
    here = (start or Path.cwd()).resolve()
    return work_tree(here) or here


def work_tree(start: Path) -> Path | None:
    """The git work tree containing start (a folder or a file), or None."""
    here = start.resolve()
    for candidate in (here, *here.parents):
        if (candidate / ".git").exists():
            return candidate
    return None


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


def uncommitted(root: Path, files: Iterable[str]) -> int:
    """How many of files (paths as given, from root) differ from HEAD: changed, staged, not in
    git at all (git ignores it, or it lies outside the work tree of root's commit). 0 when git
    cannot say (no git, no repository)."""
    try:
        top = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"], cwd=root, capture_output=True, text=True, timeout=10
        )
        status = subprocess.run(
            ["git", "status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames"],
            cwd=root,
            capture_output=True,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError):
        return 0
    if top.returncode != 0 or status.returncode != 0:
        return 0
    base = Path(top.stdout.strip()).resolve()
    entries = status.stdout.split(b"\0")  # `XY path`: the path from the top of the work tree
    changed = {os.path.normpath(base / os.fsdecode(entry[3:])) for entry in entries if len(entry) > 3}
    paths = [os.path.normpath(Path(root, f).resolve()) for f in files]
    inside = [path for path in paths if path.startswith(os.path.join(base, ""))]
    return len(paths) - len(inside) + sum(path in changed for path in inside) + _ignored(base, inside)


def _ignored(base: Path, paths: Sequence[str]) -> int:
    """How many of paths (inside base's work tree, not changed) git ignores: untracked, so not
    in the commit, and left out of `git status` (a .gitignore'd tenant file was applied and
    recorded under a clean commit). Tracked files are never ignored."""
    if not paths:
        return 0
    try:
        out = subprocess.run(
            ["git", "check-ignore", "-z", "--stdin"],
            cwd=base,
            input=b"".join(os.fsencode(path) + b"\0" for path in paths),
            capture_output=True,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError):
        return 0
    return len([entry for entry in out.stdout.split(b"\0") if entry]) if out.returncode == 0 else 0


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
    """Tenant files changed since ref: (files to plan, lines about deleted/renamed ones).

    Changed since the commit where HEAD's branch left ref (its merge base with HEAD, as a pull
    request's diff), up to the files as they are now: committed, staged and not yet staged
    changes, and files git does not track yet. The plan reads the files as they are, so a file
    edited and not committed is planned too (it was left out, and a new file was not)."""
    commit = _revision(root, ref)
    base = _git(root, ref, "merge-base", commit, "HEAD").strip()
    listed = _git(root, ref, "diff", "--name-status", "-z", "-M", base, "--", *paths).split("\0")
    untracked = _git(root, ref, "ls-files", "-z", "--others", "--exclude-standard", "--", *paths)
    files: list[Path] = []
    notes: list[str] = []
    at = 0
    while at < len(listed) - 1:  # status NUL path NUL (a rename: status NUL old NUL new NUL)
        status = listed[at]
        count = 2 if status[:1] in ("R", "C") else 1
        names, at = listed[at + 1 : at + 1 + count], at + 1 + count
        if not names[-1].endswith((".yaml", ".yml")):
            continue
        if status.startswith("D"):
            notes.append(f"{names[0]}: deleted since {ref}; a missing tenant file deletes nothing")
        elif status.startswith("R"):
            notes.append(
                f"{names[0]} renamed to {names[1]} since {ref}; not planned here (a "
                "rename changes which tenant the file declares): plan it by path"
            )
        else:
            files.append(root / names[-1])
    files += [root / name for name in untracked.split("\0") if name.endswith((".yaml", ".yml"))]
    return sorted(set(files)), notes


def _git(root: Path, ref: str, *args: str) -> str:
    """git's output for --changed-since ref; InputError when git fails."""
    try:
        out = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise errors.InputError(f"--changed-since {ref}: git failed ({exc})") from None
    if out.returncode != 0:
        raise errors.InputError(
            f"--changed-since {ref}: {out.stderr.strip() or f'git {args[0]} failed'}; "
            "give a commit, branch or tag that shares history with HEAD (fetch it first in CI)"
        )
    return out.stdout
