"""The optional database drivers: which package extra installs each, and which are installed.

The base package runs `validate` without any of them (the pre-commit hook); a store URL or a
source check that needs a missing driver says which extra to install. Imports nothing heavy,
so `reconciler --version` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from reconciler import lazy

if TYPE_CHECKING:
    from importlib import metadata
else:  # for --version and store URLs; `reconciler --help` and a TAB never read a version
    metadata = lazy.module("importlib.metadata")

PACKAGE = "osr-reconciler"


class Driver(NamedTuple):
    distribution: str  # the name pip knows
    module: str  # the name Python imports
    extra: str  # osr-reconciler[extra] installs it
    what: str


DRIVERS = (
    Driver("psycopg", "psycopg", "postgresql", "PostgreSQL stores"),
    Driver("PyMySQL", "pymysql", "mariadb", "MariaDB/MySQL stores"),
    Driver("pyodbc", "pyodbc", "sources", "accounting servers and SQL Server stores"),
)
# SQLAlchemy's default drivers for a bare postgresql:// or mysql:// URL, which we do not install.
_DEFAULTS = {"psycopg2": ("postgresql+psycopg://", "postgresql"), "MySQLdb": ("mysql+pymysql://", "mariadb")}


def install_hint(extra: str) -> str:
    return f"pip install '{PACKAGE}[{extra}]'"


def missing(error: ImportError) -> str | None:
    """For a driver that is not installed: which one and the extra to install, else None.

    Only a missing module counts: a driver that is installed but cannot load (pyodbc without
    unixODBC) needs another remedy, which the caller gives.
    """
    if not isinstance(error, ModuleNotFoundError):
        return None
    top = (error.name or "").split(".")[0]
    for driver in DRIVERS:
        if driver.module == top:
            return (
                f"{driver.distribution}, the driver for {driver.what}, is not installed; "
                f"install it with {install_hint(driver.extra)}"
            )
    if top in _DEFAULTS:
        scheme, extra = _DEFAULTS[top]
        return (
            f"the driver {top} is not installed; write the URL as {scheme}... and install "
            f"the driver with {install_hint(extra)}"
        )
    return None


def version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def versions_text() -> str:
    """`reconciler --version`: the tool, Python, SQLAlchemy and each driver found (or the extra)."""
    import platform

    lines = [
        f"reconciler {version(PACKAGE) or 'unknown'}",
        f"Python {platform.python_version()} ({platform.python_implementation()})",
        f"SQLAlchemy {version('SQLAlchemy') or 'not installed'}",
    ]
    for driver in DRIVERS:
        found = version(driver.distribution)
        lines.append(
            f"{driver.distribution} {found} ({driver.what})"
            if found
            else f"{driver.distribution} not installed ({driver.what}: {install_hint(driver.extra)})"
        )
    return "\n".join(lines) + "\n"
