"""ODBC connection strings for accounting servers: pure text building, no driver loaded.

Which dialect a driver speaks (Microsoft's, FreeTDS, and the stand-ins the tests run against),
how each value is quoted, and the one way a password is masked in messages about them. No pyodbc
here: reconciler.sources connects with these strings. A string holds the password: never print
it.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from reconciler import errors, redaction
from reconciler.spec import Authentication, ServerAddress, parse_server

DRIVER_ENV = "RECONCILER_ODBC_DRIVER"
DEFAULT_DRIVER = "ODBC Driver 18 for SQL Server"
APP_NAME = "osr-reconciler"
# TDS 7.4 is SQL Server 2012 and later; FreeTDS cannot negotiate it down on every version.
TDS_VERSION = "7.4"


@dataclass(frozen=True)
class SourceSpec:
    """One data connection's way to its accounting server."""

    label: str  # "customer/tenant/connection name" used in messages
    integration: str  # catalog key
    server: str  # host, host\instance, host,port, IPv4, [IPv6]
    database: str  # system database (for SQLite: the database file)
    authentication: Authentication
    login: str | None
    password: str | None = field(repr=False)  # resolved secret value; never printed
    encrypt: bool = True
    trust_server_certificate: bool = False


class Family(enum.StrEnum):
    """The dialects of connection string this module writes."""

    MSSQL = "mssql"  # Microsoft ODBC Driver 17/18 for SQL Server
    FREETDS = "freetds"
    POSTGRESQL = "postgresql"  # test stand-in (odbc-postgresql)
    MARIADB = "mariadb"  # test stand-in (odbc-mariadb)
    SQLITE = "sqlite"  # test stand-in (libsqliteodbc)


_FAMILY_MARKERS: tuple[tuple[str, Family], ...] = (
    ("freetds", Family.FREETDS),
    ("tdsodbc", Family.FREETDS),
    ("sql server", Family.MSSQL),
    ("msodbcsql", Family.MSSQL),
    ("postgres", Family.POSTGRESQL),
    ("psqlodbc", Family.POSTGRESQL),
    ("mariadb", Family.MARIADB),
    ("mysql", Family.MARIADB),
    ("maodbc", Family.MARIADB),
    ("sqlite", Family.SQLITE),
)


def default_driver() -> str:
    """The ODBC driver to use: RECONCILER_ODBC_DRIVER, else Microsoft's driver 18."""
    return os.environ.get(DRIVER_ENV) or DEFAULT_DRIVER


def driver_family(driver: str) -> Family | None:
    """Which connection-string dialect a driver name (or driver library path) speaks."""
    lowered = driver.lower()
    for marker, family in _FAMILY_MARKERS:
        if marker in lowered:
            return family
    return None


def _braced(value: str) -> str:
    """An ODBC attribute value in braces: any character allowed, '}' doubled."""
    return "{" + value.replace("}", "}}") + "}"


def _value(value: str) -> str:
    if value == "" or value != value.strip() or any(c in value for c in ";{}="):
        return _braced(value)
    return value


def _join(pairs: Sequence[tuple[str, str]]) -> str:
    return "".join(f"{key}={text};" for key, text in pairs)


def connection_string(
    spec: SourceSpec,
    *,
    driver: str | None = None,
    login_timeout: int = 15,
    query_timeout: int | None = None,
) -> str:
    """The ODBC connection string for a source. It holds the password: never print it.

    The login timeout is also set as the ODBC attribute on connecting; it appears here only
    for drivers that need their own keyword for it (MariaDB). Raises SourceError for a server,
    authentication or driver this module cannot express.
    """
    try:
        return _connection_string(spec, driver or default_driver(), login_timeout, query_timeout)
    except errors.SourceError as exc:
        problem = scrub(spec, str(exc))
    raise errors.SourceError(problem)  # outside the except: no __context__ to leak


def _connection_string(spec: SourceSpec, name: str, login_timeout: int, query_timeout: int | None) -> str:
    family = driver_family(name)
    if family is None:
        raise errors.SourceError(
            f"{spec.label}: ODBC driver {name!r} is not one this tool writes connection strings "
            f"for: set {DRIVER_ENV} to '{DEFAULT_DRIVER}', 'ODBC Driver 17 for SQL Server' or "
            "'FreeTDS'"
        )
    if spec.authentication not in (Authentication.SQL, Authentication.WINDOWS):
        raise errors.SourceError(
            f"{spec.label}: authentication {spec.authentication!r} is neither 'sql' nor 'windows'"
        )
    try:
        address = parse_server(spec.server)
    except ValueError as exc:
        raise errors.SourceError(f"{spec.label}: server {exc}") from None
    query_seconds = login_timeout if query_timeout is None else query_timeout
    pairs: list[tuple[str, str]] = [("Driver", _braced(name))]
    if family in (Family.MSSQL, Family.FREETDS):
        pairs += _tds_pairs(spec, address, family)
    else:
        if spec.authentication == Authentication.WINDOWS:
            raise errors.SourceError(
                f"{spec.label}: Windows authentication needs a SQL Server driver, not {name!r}"
            )
        if address.instance is not None and family is not Family.SQLITE:
            raise errors.SourceError(
                f"{spec.label}: named instances ({spec.server}) are a SQL Server feature; "
                f"driver {name!r} takes host or host,port"
            )
        pairs += _stand_in_pairs(spec, address, family, login_timeout, query_seconds)
    return _join(pairs)


def _plain(spec: SourceSpec, what: str, value: str) -> str:
    """A value for drivers that keep braces as part of it (psqlODBC's UID, SQLite's file)."""
    if ";" in value or value.startswith("{") or value != value.strip():
        raise errors.SourceError(
            f"{spec.label}: the {what} {value!r} cannot be passed to this ODBC driver "
            "(';', a leading '{' or surrounding spaces): rename it"
        )
    return value


def _credentials(spec: SourceSpec, *, braced_login: bool = True) -> list[tuple[str, str]]:
    if spec.authentication == Authentication.WINDOWS:
        # Kerberos on Linux (a ticket from kinit or a keytab); no UID/PWD.
        return [("Trusted_Connection", "yes")]
    if spec.login is None or spec.password is None:
        raise errors.SourceError(f"{spec.label}: SQL authentication needs a login and a resolved password")
    login = _braced(spec.login) if braced_login else _plain(spec, "login", spec.login)
    # Every driver here takes a braced PWD; psqlODBC would URL-decode an unbraced one.
    return [("UID", login), ("PWD", _braced(spec.password))]


def _freetds_can_take(spec: SourceSpec) -> None:
    """FreeTDS ends a braced value at its first '};' and keeps a doubled '}}' as two (Microsoft's
    drivers undo it): a value holding '}' would be sent wrong, and '};' could add keywords."""
    for what, value in (
        ("login", spec.login),
        ("password", spec.password),
        ("database", spec.database),
        ("server", spec.server),
    ):
        if value is not None and "}" in value:
            raise errors.SourceError(
                f"{spec.label}: the {what} holds a '}}', which the FreeTDS driver cannot be "
                f"given: use Microsoft's driver ({DRIVER_ENV}='{DEFAULT_DRIVER}') or change the {what}"
            )


def _tds_pairs(spec: SourceSpec, address: ServerAddress, family: Family) -> list[tuple[str, str]]:
    if family is Family.MSSQL:
        server = address.host
        if address.instance:
            server += "\\" + address.instance
        if address.port:
            server += f",{address.port}"
        pairs = [("Server", _value("tcp:" + server)), ("Database", _value(spec.database))]
        pairs.append(("Encrypt", "yes" if spec.encrypt else "no"))
        if spec.trust_server_certificate:
            pairs.append(("TrustServerCertificate", "yes"))
    else:
        _freetds_can_take(spec)
        # FreeTDS reads an instance from host\instance; it has no certificate-trust keyword
        # (it verifies only with `ca file` in freetds.conf), and says Encryption, not Encrypt.
        server = address.host + (f"\\{address.instance}" if address.instance else "")
        pairs = [("Server", _value(server))]
        if address.port:
            pairs.append(("Port", str(address.port)))
        pairs += [
            ("Database", _value(spec.database)),
            ("TDS_Version", TDS_VERSION),
            ("ClientCharset", "UTF-8"),
            ("Encryption", "require" if spec.encrypt else "request"),
        ]
    return [*pairs, *_credentials(spec), ("APP", APP_NAME)]


def _stand_in_pairs(
    spec: SourceSpec, address: ServerAddress, family: Family, login_timeout: int, query: int
) -> list[tuple[str, str]]:
    if family is Family.SQLITE:
        # The database is a file; NoCreat keeps a mistyped path from creating an empty one.
        database = _plain(spec, "database file", spec.database)
        return [("Database", database), ("NoCreat", "1"), ("Timeout", "1000")]
    pairs = [("Server", _plain(spec, "server", address.host))]
    if address.port:
        pairs.append(("Port", str(address.port)))
    if family is Family.POSTGRESQL:
        # psqlODBC strips braces from PWD and pqopt only.
        pairs += [
            ("Database", _plain(spec, "database", spec.database)),
            *_credentials(spec, braced_login=False),
        ]
        mode = "prefer"
        if spec.encrypt:
            mode = "require" if spec.trust_server_certificate else "verify-full"
        # psqlODBC refuses the ODBC query-timeout attribute; the server enforces this instead.
        pairs += [
            ("SSLmode", mode),
            ("pqopt", _braced(f"options=-cstatement_timeout={query * 1000}")),
        ]
    else:
        pairs += [("Database", _value(spec.database)), *_credentials(spec)]
        # Without READ_TIMEOUT, Connector/ODBC waits forever for a silent server's greeting.
        pairs += [
            ("CONN_TIMEOUT", str(login_timeout)),
            ("READ_TIMEOUT", str(max(login_timeout, query))),
        ]
        if spec.encrypt:
            pairs.append(("FORCETLS", "1"))
            if not spec.trust_server_certificate:
                pairs.append(("SSLVERIFY", "1"))
    return pairs


def secret_forms(spec: SourceSpec) -> list[str]:
    """The forms the password takes in a connection string, and so in a driver's messages."""
    if not spec.password:
        return []
    return [spec.password, _braced(spec.password), spec.password.replace("}", "}}")]


def scrub(spec: SourceSpec, text: str) -> str:
    """A message about a source with its password masked (as written, braced, or escaped), even
    where the login is the password."""
    return redaction.redact(text, secret_forms(spec))
