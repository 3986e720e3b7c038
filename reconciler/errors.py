"""One base error class; each boundary raises a subclass saying where and what to do.

Only the CLI catches these (reconciler.cli), turning them into one line per problem and exit 1.
Messages must never contain a secret value: build them from names and positions only.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with the input, located as precisely as we can."""

    file: str  # "tenants/acme/no.yaml", or "acme/acme-norway/Visma Oslo", or ""
    line: int  # 1-based; 0 when the problem has no line
    column: int
    message: str

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}:{self.column}" if self.line else self.file

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


def some_of(names: list[str], most: int) -> str:
    """The first `most` names, then how many more: `a, b and 4,598 more` (a message that named
    every connection of a fleet's deletion ran to thousands of names)."""
    shown = ", ".join(names[:most])
    return f"{shown} and {len(names) - most:,} more" if len(names) > most else shown


def at(path: str, line: int, column: int, message: str) -> Problem:
    """A problem at a 1-based line and column of a file."""
    return Problem(path, line, column, message)


class ReconcilerError(Exception):
    """Base class: an expected failure with a message fit for the user (exit 1)."""

    def __init__(self, message: str, *, problems: tuple[Problem, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems

    def lines(self) -> list[str]:
        """What the CLI prints, one line per problem."""
        if self.problems:
            return [str(p) for p in self.problems]
        return [str(self)]


class InputError(ReconcilerError):
    """A tenant file, fixture, flag or plan file is wrong: the user fixes the input."""

    @classmethod
    def of(cls, problems: list[Problem]) -> InputError:
        ordered = tuple(sorted(problems))
        return cls(f"{len(ordered)} problem(s) found", problems=ordered)


class CatalogError(ReconcilerError):
    """The integration catalog itself is invalid."""


class StoreError(ReconcilerError):
    """The live store cannot be reached, is not initialised, or holds unexpected data."""


class SecretError(ReconcilerError):
    """A secret is missing, unreadable, or the store key is wrong."""


class RefusedError(ReconcilerError):
    """A guard refused to act (cascade, mass delete, stale plan, lock held, ...)."""


class ConflictError(RefusedError):
    """The live store changed under us (optimistic version check failed)."""


class SourceError(ReconcilerError):
    """An accounting server could not be reached or queried."""


class OutputError(ReconcilerError):
    """Standard output cannot be written (a full disk, /dev/full, an I/O error)."""
