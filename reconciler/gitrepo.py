"""The git repository the tenant files live in: its root, its commit, files changed since a ref.

No other module runs git.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

from reconciler import declared, errors


def repo_root(start: Path | None = None) -> Path:
    """The git work tree containing start (default: cwd), else start itself."""
    here = (start or Path.cwd()).resolve()
    return work_tree(here) or here


def work_tree(start: Path) -> Path | None:
    """The git work tree containing start (a folder or a file), or None."""
    here = Path(os.path.realpath(start))  # Path.resolve raises for a link loop (RuntimeError)
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
    git at all (git ignores it, or it lies outside the work tree of root's commit), or changed
    where `git status` does not look (skip-worktree, assume-unchanged). 0 when git cannot say
    (no git, no repository)."""
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
    paths = [os.path.normpath(os.path.realpath(Path(root, f))) for f in files]  # a loop: no raise
    inside = [path for path in paths if path.startswith(os.path.join(base, ""))]
    changed |= _hidden(base, [path for path in inside if path not in changed])
    return len(paths) - len(inside) + sum(path in changed for path in inside) + _ignored(base, inside)


def _hidden(base: Path, paths: Sequence[str]) -> set[str]:
    """Those of paths (inside base's work tree, not changed) that git was told not to look at
    (`update-index --skip-worktree` or `--assume-unchanged`; `git status` trusts the index for
    them) and whose content is not their index entry's: applied under a clean commit that does
    not hold them. A flagged file left as committed stays clean. One `git ls-files` for the
    index, one `git hash-object` for the flagged files only; when git cannot hash them, they
    count as changed (the record says `-dirty` rather than a commit that may not hold them)."""
    if not paths:
        return set()
    try:
        out = subprocess.run(["git", "ls-files", "-v", "-s", "-z"], cwd=base, capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return set()
    if out.returncode != 0:
        return set()
    wanted = set(paths)
    blobs: dict[str, str] = {}
    for entry in out.stdout.split(b"\0"):  # `T mode blob stage\tpath`, T: `S` or lower case when flagged
        meta, _, name = entry.partition(b"\t")
        fields = meta.split()
        if len(fields) == 4 and (fields[0] == b"S" or fields[0].islower()):
            path = os.path.normpath(base / os.fsdecode(name))
            if path in wanted:
                blobs[path] = fields[2].decode()
    if not blobs:
        return set()
    flagged = sorted(blobs)
    if any("\n" in path for path in flagged):  # --stdin-paths reads one path a line
        return set(flagged)
    try:
        hashed = subprocess.run(
            ["git", "hash-object", "--stdin-paths"],
            cwd=base,
            input=b"".join(os.fsencode(path) + b"\n" for path in flagged),
            capture_output=True,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError):
        return set(flagged)
    found = hashed.stdout.decode(errors="replace").split()
    if hashed.returncode != 0 or len(found) != len(flagged):
        return set(flagged)
    return {path for path, blob in zip(flagged, found, strict=True) if blob != blobs[path]}


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


def changed_files(
    root: Path, ref: str, files: Sequence[str], paths: Sequence[str]
) -> tuple[list[str], list[str]]:
    """Of files (the tenant files found under paths, as desired.discover gives them), those
    changed since ref, in the order given; and lines about tenant files deleted since.

    Changed since the commit where HEAD's branch left ref (its merge base with HEAD, as a pull
    request's diff), up to the files as they are now: committed, staged and not yet staged
    changes. Which files are tenant files is discovery's answer, as without --changed-since; git
    only says which changed, and when it cannot say, the file is planned (safe by default):

    - a rename is a deletion and an addition (it changes which tenant a file declares: it was
      left out of the plan, and apply on merge did what no reviewed plan showed);
    - a link counts as changed when it or the file it leads to did (tenants/ a link included);
    - a file git does not track (new, or ignored) is planned, as the plan reads it;
    - a file in a submodule is planned: the repository's diff does not see into one;
    - a file git is told not to look at (skip-worktree, assume-unchanged) is planned when it is
      not its index entry (git diff trusts the index for it).
    """
    commit = _revision(root, ref)
    base = _git(root, ref, "merge-base", commit, "HEAD").strip()
    top = os.path.realpath(_git(root, ref, "rev-parse", "--show-toplevel").strip())
    fields = _git(root, ref, "diff", "--raw", "-z", "--no-renames", "--no-ext-diff", base).split("\0")
    changed: set[str] = set()
    deleted: list[str] = []
    for meta, name in zip(fields[0::2], fields[1::2], strict=False):  # `:mode mode sha sha S` NUL path
        where = os.path.join(top, name)
        changed.add(where)
        if meta.endswith("D") and name.endswith((".yaml", ".yml")):
            deleted.append(where)
    # The repository's own files (a submodule's are not among them: planned, as untracked ones)
    listed = _git(root, ref, "ls-files", "-z", "--cached", "--full-name").split("\0")
    tracked = {os.path.join(top, name) for name in listed}
    places = declared.Places()

    def place(file: str) -> tuple[str, str]:
        """Where the file is (its folders' links resolved, as git's top is) and what it is."""
        at = places.of(file)
        return at, os.path.realpath(file) if os.path.islink(file) else at

    placed = [place(file) for file in files]
    # Edited under skip-worktree or assume-unchanged: git diff trusts the index for them.
    changed |= _hidden(Path(top), [target for _, target in placed if target in tracked])
    planned = []
    for file, (at, target) in zip(files, placed, strict=True):
        if at in changed or target in changed or target not in tracked:
            planned.append(file)
    roots = [os.path.join(os.path.realpath(path), "") for path in paths]
    notes = [
        f"{os.path.relpath(where)}: deleted since {ref}; a missing tenant file deletes nothing"
        for where in deleted
        if any(where.startswith(r) for r in roots)
    ]
    return planned, notes


def _git(root: Path, ref: str, *args: str) -> str:
    """git's output for --changed-since ref; InputError when git fails."""
    try:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise errors.InputError(f"--changed-since {ref}: git failed ({exc})") from None
    if out.returncode != 0:
        said = out.stderr.decode(errors="replace").strip()
        raise errors.InputError(
            f"--changed-since {ref}: {said or f'git {args[0]} failed'}; "
            "give a commit, branch or tag that shares history with HEAD (fetch it first in CI)"
        )
    return os.fsdecode(out.stdout)  # file names as the file system gives them (not all are UTF-8)
