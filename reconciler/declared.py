"""Desired state as tenant files declare it, once validated: frozen dataclasses.

No pydantic and no YAML here: the differ and the plan depend on these types, not on how files
are read (reconciler.desired reads and validates them).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from reconciler import spec

# Why a {file:} reference gave no password: a missing file, and a folder, a pipe, a file the
# run may not read or one that is not UTF-8 text alike (secrets.Settings.resolve).
UNREADABLE = "missing, empty or unreadable (a regular file of UTF-8 text)"


@dataclass(frozen=True)
class SecretRef:
    """{env: NAME} or {file: PATH} from a tenant file."""

    env: str | None
    file: str | None

    def __str__(self) -> str:
        return f"env {self.env}" if self.env else f"file {self.file}"


@dataclass(frozen=True)
class DesiredConnection:
    spec: spec.ConnectionSpec
    password: SecretRef | None
    previous_names: tuple[str, ...]
    encrypt: bool
    trust_server_certificate: bool


@dataclass(frozen=True)
class DesiredTenant:
    customer: str
    tenant: str
    path: str
    digest: str  # sha256 of the file's bytes
    prune: bool
    connections: tuple[DesiredConnection, ...]
    tombstones: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"{self.customer}/{self.tenant}"


# How a tenant file's name ends, as written: .yaml (DESIGN §2), or .yml.
SUFFIXES = (".yaml", ".yml")


def misnamed(name: str) -> bool:
    """Named like a tenant file in another case (x.YAML, x.Yml): not a tenant file, and never
    read as one (reconciler.desired refuses it rather than skip it)."""
    return name.lower().endswith(SUFFIXES) and not name.endswith(SUFFIXES)


class Places:
    """Where a file is: its folders resolved (not the file: a link beside its target is another
    file), each folder once (a fleet's files share a few)."""

    def __init__(self) -> None:
        self.folders: dict[str, str] = {}

    def of(self, file: str) -> str:
        head, tail = os.path.split(file)
        real = self.folders.get(head)
        if real is None:
            real = self.folders[head] = os.path.realpath(head or os.curdir)
        return os.path.join(real, tail)


def path_parts(path: str | os.PathLike[str]) -> tuple[str, str]:
    """The customer and tenant a file's path names (tenants/<customer>/<tenant>.yaml): Path's
    parent.name and stem, without making a Path (see desired.discover)."""
    parent, name = os.path.split(path)
    folder = os.path.basename(parent)
    if folder in ("", ".", ".."):  # `validate acme-norway.yaml` in tenants/acme: the folder it is in
        folder = os.path.basename(os.path.dirname(os.path.abspath(path)))
    dot = name.rfind(".")
    return folder, name[:dot] if 0 < dot < len(name) - 1 else name


def path_key(path: str | os.PathLike[str]) -> str:
    """customer/tenant of the tenant a file's path names (path_parts)."""
    return "/".join(path_parts(path))
