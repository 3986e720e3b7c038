"""The live store: the only SQLAlchemy code. Reads live state, writes changes, locks, audit.

Portable across SQLite (embedded default), PostgreSQL, MariaDB/MySQL and SQL Server: Core
only, explicit deletes instead of ON DELETE CASCADE, times as integer epoch milliseconds.
Read-only commands open the store so that the database itself refuses writes.
"""

from __future__ import annotations

import contextlib
import logging
import operator
import os
import re
import time
import urllib.parse
import uuid
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import Connection, Engine

from reconciler import audit, drivers, errors, redaction, secrets, spec, state

# psycopg logs "error ignored terminating <psycopg.Pipeline [INERROR] ...>" when a batched
# statement fails; with no handler, Python's last resort printed it on stderr beside the
# tool's own one-line message for the same failure.
logging.getLogger("psycopg").addHandler(logging.NullHandler())
# The pool logs a connection it could not reset (MariaDB closed it while apply waited for `yes`)
# with its traceback, on stderr by logging's last resort: the StoreError that follows says it.
logging.getLogger("sqlalchemy.pool").addHandler(logging.NullHandler())

SCHEMA_VERSION = "4"
# v1 -> v2: names and company ids keyed by spec.identity_key (was casefold), company keys,
# the name last applied (portal renames), the freeze override reason in the audit log.
# v2 -> v3: a lock holder's machine and process start (see reconciler.locks).
# v3 -> v4: a rename's name before it in the audit log.
# `store init` upgrades a v1, v2 or v3 store.
_UPGRADABLE = ("1", "2", "3")
DEFAULT_DIR = Path(".reconciler")
DEFAULT_DB = DEFAULT_DIR / "store.db"
DEFAULT_KEY = DEFAULT_DIR / "store.key"

# What writers outside this module hold while they write (store seed): an open transaction.
Transaction = Connection

metadata = sa.MetaData()
NAME = 200
CI_JOB = 400  # a CI job's URL, as locks show it
KEY = 64  # spec.identity_key: a hex digest, compared alike under every collation

store_meta = sa.Table(
    "osr_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(512), nullable=False),
)
customers = sa.Table(
    "osr_customers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(NAME), nullable=False, unique=True),
)
tenants = sa.Table(
    "osr_tenants",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("customer_id", sa.Integer, sa.ForeignKey("osr_customers.id"), nullable=False),
    sa.Column("name", sa.String(NAME), nullable=False),
    sa.UniqueConstraint("customer_id", "name", name="uq_osr_tenants_name"),
)
connections = sa.Table(
    "osr_connections",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("osr_tenants.id"), nullable=False),
    sa.Column("name", sa.Unicode(NAME), nullable=False),
    sa.Column("name_key", sa.String(KEY), nullable=False),  # spec.identity_key: unique per tenant
    *(
        sa.Column(f.column, sa.Boolean if f.kind is bool else sa.Unicode(f.length), nullable=f.nullable)
        for f in spec.STORED
        if f.column is not None
    ),
    sa.Column("password_ct", sa.Text),  # Fernet ciphertext
    sa.Column("password_fp", sa.String(64)),  # keyed HMAC of the password
    sa.Column("managed", sa.Boolean, nullable=False, default=False),
    sa.Column("version", sa.Integer, nullable=False, default=1),
    sa.Column("applied_fp", sa.String(64)),
    sa.Column("applied_name", sa.Unicode(NAME)),  # the name last applied: portal renames
    sa.Column("updated_ms", sa.BigInteger, nullable=False, default=0),
    sa.UniqueConstraint("tenant_id", "name_key", name="uq_osr_connections_name"),
)
companies = sa.Table(
    "osr_companies",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("connection_id", sa.Integer, sa.ForeignKey("osr_connections.id"), nullable=False, index=True),
    sa.Column("code", sa.Unicode(NAME), nullable=False),
    sa.Column("code_key", sa.String(KEY), nullable=False),  # spec.identity_key of code
    sa.UniqueConstraint("connection_id", "code_key", name="uq_osr_companies_key"),
)
osr_dependents = sa.Table(
    "osr_dependents",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("company_id", sa.Integer, sa.ForeignKey("osr_companies.id"), nullable=False, index=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("name", sa.Unicode(NAME), nullable=False),
)
report_templates = sa.Table(
    "osr_report_templates",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("osr_tenants.id"), nullable=False, index=True),
    sa.Column("name", sa.Unicode(NAME), nullable=False),
    sa.Column("connection_id", sa.Integer, sa.ForeignKey("osr_connections.id"), nullable=True),
)
audit_log = sa.Table(
    "osr_audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at_ms", sa.BigInteger, nullable=False),
    sa.Column("actor", sa.Unicode(NAME), nullable=False),  # a person's name: national text
    sa.Column("git_commit", sa.String(64)),
    sa.Column("customer", sa.String(NAME), nullable=False),
    sa.Column("tenant", sa.String(NAME), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("connection", sa.Unicode(NAME), nullable=False),
    sa.Column("connection_id", sa.Integer),
    sa.Column("reason", sa.String(64), nullable=False),
    sa.Column("fields", sa.Text, nullable=False),  # comma-separated changed field names
    sa.Column("cascade_count", sa.Integer, nullable=False, default=0),
    sa.Column("freeze_override", sa.UnicodeText),  # apply --override-freeze: the window and the reason
    sa.Column("previous_name", sa.Unicode(NAME)),  # a rename's name before it (v4; null before)
)
locks = sa.Table(
    "osr_locks",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("scope", sa.String(2 * NAME + 1), nullable=False, unique=True),  # customer/tenant
    sa.Column("actor", sa.Unicode(NAME), nullable=False),
    sa.Column("host", sa.Unicode(NAME), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("ci_job", sa.Unicode(CI_JOB)),
    sa.Column("acquired_ms", sa.BigInteger, nullable=False),
    sa.Column("expires_ms", sa.BigInteger, nullable=False),
    sa.Column("machine", sa.String(128)),  # boot id and pid namespace: see reconciler.locks
    sa.Column("started", sa.BigInteger),  # the holder process's start time (clock ticks)
)
# SQLite gives a new row the id of the newest row deleted unless the table says AUTOINCREMENT:
# a connection the portal made took the id of one it had deleted, which the audit log names,
# and drift took the deleted connection for one never applied ("pending"). Other databases'
# sequences never reuse an id. Tables made before 2026-11-27 keep reusing (store init does
# not rebuild them).
for _table in (customers, tenants, connections, companies, osr_dependents, report_templates, audit_log):
    _table.dialect_kwargs["sqlite_autoincrement"] = True

# MariaDB and MySQL: every table in utf8mb4, whatever the database's default (latin1 on many
# servers refused `Sales 📊` at store seed, and would store what it cannot hold as '?').
for _table in metadata.tables.values():
    for _dialect in ("mysql", "mariadb"):
        _table.dialect_options[_dialect]["charset"] = "utf8mb4"


# An execution option: this connection only reads (SQLite: a deferred BEGIN).
READ = "osr_read"


def now_ms() -> int:
    return int(time.time() * 1000)


def _scrub(error: BaseException) -> str:
    cause = getattr(error, "orig", None) or error
    if isinstance(cause, UnicodeError):
        # Its text quotes the character and its position: of the URL's password, when the driver
        # sends it in an encoding that lacks a letter of it (PyMySQL: Latin-1), the secret itself.
        return (
            f"the driver could not encode what it sends the server ({type(cause).__name__}; not "
            "shown: it may be the password): write the URL's user name and password in characters "
            "its encoding has"
        )
    return redaction.redact(str(cause).splitlines()[0])


# ---------------------------------------------------------------------------------------------
# Opening


# The password of scheme://user:password@host as written (SQLAlchemy's own pattern), and a
# password among an ODBC string's keys.
_URL_PASSWORD = re.compile(r"[\w+]+://[^:/]*:(?P<password>[^@]*)@")
# An odbc_connect password as the URL writes it, percent-encoded: `PWD%3D...` up to the next
# `%3B` (or `;`, `&`, the end), a braced one up to its closing `%7D`.
_ODBC_PASSWORD_WRITTEN = re.compile(
    r"(?i)(?:pwd|password)\s*(?:%3d|=)\s*(%7b.*?%7d(?=%3b|;|&|$)|\{.*?\}(?=%3b|;|&|$)|.*?(?=%3b|;|&|$))"
)
_ODBC_PASSWORD = re.compile(r"(?i)(?:^|;)\s*(?:pwd|password)\s*=\s*(\{(?:[^}]|\}\})*\}|[^;]*)")


def _without_userinfo(url: str) -> str:
    """A store URL to show in an error: nothing between its scheme and its last '@' (a user or
    password holding an '@' or a '/' would fool any narrower mask)."""
    at = url.rfind("@")
    colon = url.find(":")
    return url if at < 0 or colon < 0 or colon > at else url[: colon + 1] + "//***" + url[at:]


def _register_url_secrets(url: str, sa_url: sa.URL | None) -> None:
    """Remember every password a store URL holds, as written and decoded, so that no message
    shows it (redaction's patterns alone miss one with a space, a comma or in odbc_connect)."""
    written = _URL_PASSWORD.match(url)
    found = [written.group("password")] if written else []
    if sa_url is not None:
        found.append(sa_url.password if isinstance(sa_url.password, str) else "")
        for key, values in sa_url.query.items():
            for value in (values,) if isinstance(values, str) else values:
                if key.lower() in ("password", "pwd", "passwd"):
                    found.append(value)
                elif key.lower() == "odbc_connect":  # a whole ODBC string, percent-encoded
                    found += [m.group(1) for m in _ODBC_PASSWORD.finditer(value)]
    # As written in the URL, in whatever percent-encoding the writer chose (`%2b`, `%2F`, `%20`):
    # messages show the URL as written, and quote() spells only one of them.
    found += [m.group(1) for m in _ODBC_PASSWORD_WRITTEN.finditer(url)]
    for value in found:
        # A braced ODBC value doubles each `}`: the driver (and a server quoting it back) has it once.
        said = value[1:-1].replace("}}", "}") if value.startswith("{") and value.endswith("}") else value
        for form in {
            value,
            value.strip("{}"),
            said,
            urllib.parse.quote(value),
            urllib.parse.quote_plus(value),
        }:
            redaction.register(form)


@dataclass(frozen=True)
class Location:
    """Where the store is and where its key comes from."""

    url: str
    embedded: bool  # the default SQLite file, with its key file beside it
    db_path: Path | None
    key_path: Path | None

    @classmethod
    def resolve(cls, url: str | None, root: Path) -> Location:
        if url:
            try:
                sa_url = sa.make_url(url) if "://" in url else None
            except (exc.ArgumentError, ValueError):
                sa_url = None
            _register_url_secrets(url, sa_url)
            if sa_url is None:
                # Its scheme alone: without a parse, nothing tells a password from the rest
                # (`postgresql+psycopg://user:secret` has no '@' to mask up to).
                scheme, sep, _ = url.partition("://")
                shown = f" ({scheme}{sep}…)" if sep and re.fullmatch(r"[\w+.-]{1,40}", scheme) else ""
                raise errors.StoreError(
                    f"the store URL (--store or RECONCILER_STORE){shown} is not a SQLAlchemy URL "
                    "(not shown: it may hold a password); write e.g. postgresql+psycopg://user@host/db "
                    "or sqlite:///path/store.db"
                )
            if sa_url.host is not None and "@" in sa_url.host:
                raise errors.StoreError(
                    f"the store URL (--store or RECONCILER_STORE) {_without_userinfo(url)!r} has more "
                    "than one '@' before its host; write an '@' in the user name or password as %40"
                )
            sqlite = sa_url.get_backend_name() == "sqlite" and sa_url.database
            path = Path(sa_url.database) if sqlite and sa_url.database else None
            # The embedded layout named by URL: its key file beside it is its key.
            beside = path.with_name(DEFAULT_KEY.name) if path is not None else None
            return cls(url, False, path, beside if beside is not None and beside.exists() else None)
        db = root / DEFAULT_DB
        return cls(f"sqlite:///{db}", True, db, root / DEFAULT_KEY)

    def describe(self) -> str:
        return redaction.redact(self.url)


def _cannot_create(location: Location, error: OSError) -> errors.StoreError:
    return errors.StoreError(
        f"cannot create the store at {location.db_path} ({error.strerror}); run where "
        "you can write, or give --store URL"
    )


def _rotated_hint(check: str) -> str:
    """When the store was rotated to the key RECONCILER_NEW_STORE_KEY holds: say so."""
    value = os.environ.get(secrets.NEW_STORE_KEY_VAR)
    try:
        rotated = bool(value) and secrets.Keyring(secrets.key_bytes(value or "", "")).check_value() == check
    except (errors.ReconcilerError, ValueError):  # not a key at all
        rotated = False
    return (
        f"; it was rotated to the key in {secrets.NEW_STORE_KEY_VAR}: set {secrets.STORE_KEY_VAR} to it"
        if rotated
        else ""
    )


_NO_KEY = f"set {secrets.STORE_KEY_VAR} to a key for this store (a Fernet key: 32 url-safe base64 bytes)"


def _env_keyring() -> secrets.Keyring | None:
    """The keyring the environment names: the store key, else the plan key (plan-only)."""
    for var in (secrets.STORE_KEY_VAR, secrets.PLAN_KEY_VAR):
        value = os.environ.get(var)
        if value:
            redaction.register(value)
            if var == secrets.PLAN_KEY_VAR:
                return secrets.Keyring.for_plans(value)
            return secrets.Keyring(secrets.key_bytes(value, var))
    return None


def loose_key_file(location: Location) -> str | None:
    """What is wrong with the embedded store's key file's mode, when others may read it (it is
    made 0600: whoever reads it decrypts every stored password); None when it is private, or
    not used (RECONCILER_STORE_KEY set, a server store)."""
    path = location.key_path
    if path is None or os.environ.get(secrets.STORE_KEY_VAR):
        return None
    try:
        mode = path.stat().st_mode
    except OSError:
        return None  # missing or unreadable: _file_key says so when the store is opened
    if not mode & 0o077:
        return None
    return (
        f"the key file {path} can be read by others (mode {mode & 0o777:04o}), and it decrypts every "
        f"stored password: run `chmod 600 {path}`"
    )


def _file_key(location: Location, *, create: bool) -> bytes | None:
    """The embedded store's key from its key file (RECONCILER_STORE_KEY unset); made with the
    store (create). A key file that cannot be read, or holds no key, is named as such: the
    message blamed RECONCILER_STORE_KEY, which was never set, or the store's own file."""
    path = location.key_path
    if path is None:
        return None
    restore = "restore the key file from your backup (a new key cannot read the stored passwords)"
    try:
        key = path.read_bytes().strip() if path.exists() else None
    except OSError as error:
        raise errors.SecretError(
            f"the key file {path} cannot be read ({error.strerror}); {restore}"
        ) from None
    if key is not None:
        try:
            key.decode("ascii")
            secrets.Keyring(key)
        except (UnicodeDecodeError, errors.SecretError):
            what = "is empty" if not key else "does not hold a store key"
            raise errors.SecretError(f"the key file {path} {what}; {restore}") from None
        redaction.register(key.decode())
        return key
    if location.db_path is not None and location.db_path.exists() and location.db_path.stat().st_size:
        # A new key would not open the passwords stored with the lost one.
        raise errors.SecretError(
            f"the key file {path} is missing, but the store {location.db_path} "
            "exists and was created with it; restore the key file from your backup (a new key "
            "cannot read the stored passwords)"
        )
    if not create:
        return None
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = secrets.Keyring.generate()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key + b"\n")
    redaction.register(key.decode())
    return key


CONNECT_TIMEOUT_S = 10  # a PostgreSQL store's, unless its URL sets ?connect_timeout=


def _engine(location: Location, *, readonly: bool) -> Engine:
    url = sa.make_url(location.url)
    backend = url.get_backend_name()
    kwargs: dict[str, Any] = {}
    if backend == "sqlite":
        if location.db_path is not None and readonly:
            kwargs["creator"] = _sqlite_readonly(location.db_path)
        kwargs["connect_args"] = {"timeout": 30}
        kwargs["poolclass"] = sa.pool.NullPool
    elif backend == "postgresql" and readonly:
        # Beside the URL's own options (?options=-csearch_path%3Dosr), which connect_args would
        # replace: plan and drift then read another schema's store than apply writes.
        given = url.query.get("options")
        own = " ".join(given) if isinstance(given, tuple) else (given or "")
        kwargs["connect_args"] = {"options": f"{own} -c default_transaction_read_only=on".strip()}
    if backend == "postgresql" and "connect_timeout" not in url.query:
        # libpq waits on a server that does not answer as long as TCP does (minutes): the check
        # of a commit whose reply was lost, "up to 30 seconds", took 181 s (PyMySQL's default 10)
        kwargs.setdefault("connect_args", {})["connect_timeout"] = CONNECT_TIMEOUT_S
    charset = url.query.get("charset")
    if backend in ("mysql", "mariadb") and charset is not None and str(charset).lower() != "utf8mb4":
        # utf8 (utf8mb3) and latin1 store what they cannot hold as '?': `Sales 📊` came back as
        # `Sales ?`, and a rename from it was planned as a create beside it (PyMySQL's default,
        # without ?charset=, is utf8mb4).
        raise errors.StoreError(
            f"store {location.describe()}: the charset {str(charset)!r} cannot hold every name "
            "(characters beyond U+FFFF, such as emoji, would be stored as '?'); write ?charset=utf8mb4"
        )
    engine = sa.create_engine(url, **kwargs)
    if backend == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi: Any, _record: Any) -> None:
            dbapi.isolation_level = None  # let SQLAlchemy emit BEGIN: real transactions
            cursor = dbapi.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:
            # Reads (READ option) begin deferred: under WAL they neither wait for nor block a writer.
            read = readonly or conn.get_execution_options().get(READ, False)
            conn.exec_driver_sql("BEGIN" if read else "BEGIN IMMEDIATE")
    elif backend in ("mysql", "mariadb") and readonly:

        @event.listens_for(engine, "connect")
        def _mysql_connect(dbapi: Any, _record: Any) -> None:
            cursor = dbapi.cursor()
            cursor.execute("SET SESSION TRANSACTION READ ONLY")
            cursor.close()

    return engine


def _sqlite_readonly(path: Path) -> Any:
    import sqlite3

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30, check_same_thread=False)

    return connect


class Store:
    """An open store: a SQLAlchemy engine and the keyring for its passwords."""

    def __init__(
        self, location: Location, engine: Engine, keyring: secrets.Keyring | None, readonly: bool
    ) -> None:
        self.location = location
        self.engine = engine
        self.keyring = keyring
        self.readonly = readonly

    @classmethod
    def open(
        cls,
        location: Location,
        *,
        readonly: bool,
        create: bool = False,
        command: str = "this command",
        store_key: bool | None = None,
    ) -> Store:
        """Open an initialised store (or, with create, one that init will initialise).

        store_key: the command needs the store key, not a plan key (default: when it writes).
        Checked before anything is created, connected or written.
        """
        keyring = _env_keyring()
        if keyring is not None and not keyring.full and (not readonly if store_key is None else store_key):
            raise errors.SecretError(f"{command} {secrets.PLAN_ONLY}")
        if location.db_path is not None and location.db_path.is_dir():
            raise errors.StoreError(
                f"store {location.describe()}: {location.db_path} is a folder; name the store's file, "
                "e.g. sqlite:///path/store.db"
            )
        if location.db_path is not None and not location.db_path.exists() and not create:
            raise errors.StoreError(
                f"no store at {location.db_path}; create it with "
                + (
                    "`reconciler store init` (or give --store URL)"
                    if location.embedded
                    else "`reconciler store init --store URL`"
                )
            )
        try:
            if keyring is None:
                raw_key = _file_key(location, create=create)
                keyring = secrets.Keyring(raw_key) if raw_key else None
            if create and keyring is None:  # checked before anything is created
                raise errors.SecretError(_NO_KEY)
            if location.db_path is not None and create:
                location.db_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as error:
            raise _cannot_create(location, error) from None
        try:
            engine = _engine(location, readonly=readonly)
        except ImportError as error:
            hint = drivers.missing(error) or f"{_scrub(error)}; install the database driver"
            raise errors.StoreError(f"store {location.describe()}: {hint}") from None
        except (exc.SQLAlchemyError, ValueError) as error:
            raise errors.StoreError(
                f"store {location.describe()}: {_scrub(error)}; write a "
                "SQLAlchemy URL such as postgresql+psycopg://user@host/db"
            ) from None
        store = cls(location, engine, keyring, readonly)
        if location.db_path is not None and create:
            try:
                location.db_path.touch(mode=0o600, exist_ok=True)
            except OSError as error:
                raise _cannot_create(location, error) from None
        if not create:
            store._check()
        return store

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        """`with ctx.open_store(...) as st:` closes the store however the block ends."""
        self.close()

    def _open(self) -> Connection:
        """A new connection. A driver raises plain Python errors for some URL options it will
        not take (PyMySQL: TypeError for an unknown one, OSError for an ssl_ca file it cannot
        read; a charset other than utf8mb4 is refused before, by _engine): each is a
        StoreError here, as the driver's own errors are, never an internal error."""
        import configparser

        try:
            return self.engine.connect()
        except (TypeError, ValueError, AttributeError, LookupError, OSError, configparser.Error) as error:
            raise self._refused(error) from None

    def _refused(self, error: Exception) -> errors.StoreError:
        where = f"store {self.location.describe()}"
        unknown = re.search(r"unexpected keyword argument '(\w+)'", str(error))
        if isinstance(error, TypeError) and unknown:
            return errors.StoreError(
                f"{where}: the driver takes no option {unknown.group(1)!r}; remove it from the URL"
            )
        import configparser

        if isinstance(error, configparser.Error):
            # PyMySQL's read_default_file: the error quotes the file's lines, which may hold the
            # password (an option file's `password=`); its kind and line number say enough.
            line = getattr(error, "lineno", None)
            return errors.StoreError(
                f"{where}: the option file the URL names (read_default_file) is not one PyMySQL "
                f"reads ({type(error).__name__}{f' at line {line}' if line else ''}; its text not "
                "shown: it may hold the password); correct the file or remove the option"
            )
        files = [f"{k}={v}" for k, v in self.engine.url.query.items() if k.startswith("ssl")]
        if isinstance(error, OSError) and error.filename is None and files:
            return errors.StoreError(
                f"{where}: {redaction.redact(error.strerror or str(error))}: a file the URL "
                f"names ({redaction.redact(', '.join(files))}); correct the path"
            )
        return errors.StoreError(f"{where}: {_scrub(error)}")

    @contextlib.contextmanager
    def _connect(self, *, read: bool = True) -> Iterator[Connection]:
        try:
            with self._open() as conn:
                if read:
                    conn.execution_options(**{READ: True})
                yield conn
        except (exc.SQLAlchemyError, ValueError, AttributeError, LookupError) as error:
            raise self._refused(error) from None

    def _check(self) -> None:
        with self._connect() as conn:
            if not sa.inspect(conn).has_table(store_meta.name):
                raise errors.StoreError(
                    f"store {self.location.describe()} is not initialised; run `reconciler store init`"
                )
            meta = dict(conn.execute(sa.select(store_meta.c.key, store_meta.c.value)).all())
        if meta.get("schema_version") in _UPGRADABLE:
            raise errors.StoreError(
                f"store {self.location.describe()} has schema version "
                f"{meta.get('schema_version')}; run `reconciler store init` "
                f"to upgrade it to {SCHEMA_VERSION} (back it up first)"
            )
        if "schema_version" not in meta:
            raise errors.StoreError(
                f"store {self.location.describe()} is not initialised (its tables are there, its "
                "version is not: a `reconciler store init` cut short?); run `reconciler store init`"
            )
        if meta.get("schema_version") != SCHEMA_VERSION:
            raise errors.StoreError(
                f"store schema version {meta.get('schema_version')!r}; this reconciler needs {SCHEMA_VERSION}"
            )
        if not meta.get("store_id"):
            raise errors.StoreError(
                f"store {self.location.describe()} has no store id in {store_meta.name} (changed by "
                "hand?); restore that table from a backup of the store"
            )
        self.store_id = meta["store_id"]
        check = meta.get("key_check")
        if self.keyring is None:
            raise errors.SecretError(
                f"{secrets.STORE_KEY_VAR} is not set; the store's passwords "
                f"and fingerprints need its key (or {secrets.PLAN_KEY_VAR} "
                "to plan only)"
            )
        if (
            check
            and check != self.keyring.check_value()
            and not (self.keyring.full and self._finish_rotation(check))
        ):
            from_file = self.keyring.full and self.location.key_path is not None
            from_file = from_file and not os.environ.get(secrets.STORE_KEY_VAR)
            raise errors.SecretError(
                (f"the key file {self.location.key_path}" if from_file else self.keyring.variable)
                + f" is not the key of this store ({self.location.describe()}); use the key it was "
                "created with"
                + ("" if self.keyring.full else ", or print it again with `reconciler store plan-key`")
                + _rotated_hint(check)
            )

    def _finish_rotation(self, check: str) -> bool:
        """A rotate-key that committed but died before renaming store.key.new: finish it."""
        key_path = self.location.key_path
        if key_path is None or os.environ.get(secrets.STORE_KEY_VAR):
            return False
        pending = key_path.with_name(key_path.name + ".new")
        try:
            keyring = secrets.Keyring(pending.read_bytes().strip(), variable=f"the key file {pending}")
        except (OSError, errors.SecretError):  # none there, or no key in it: not a rotation's
            return False
        if keyring.check_value() != check:
            return False
        try:
            os.replace(pending, key_path)
        except OSError as error:
            raise errors.SecretError(
                f"the store's key is in {pending} (a key rotation committed), which could not "
                f"replace {key_path} ({error.strerror}): move it there yourself"
            ) from None
        self.keyring = keyring
        return True

    def init(self) -> bool:
        """Create the schema if missing; True when it was created now."""
        if self.keyring is None:
            raise errors.SecretError(_NO_KEY)
        dbapi: Any = getattr(self.engine.dialect, "loaded_dbapi", None) or self.engine.dialect.dbapi
        dbapi_error: Any = dbapi.Error
        try:
            if self.engine.dialect.name == "sqlite":
                # Persistent in the file; set here, not on connect, so that opening a file that
                # is not a store writes nothing into it. WAL lets readers see past a writer.
                with self._open() as conn:
                    conn.connection.driver_connection.execute(  # type: ignore[union-attr]
                        "PRAGMA journal_mode=WAL"
                    )
        except dbapi_error as error:  # the driver's own: a file that is not a database
            raise errors.StoreError(f"store {self.location.describe()}: {_scrub(error)}") from None
        try:
            with self._open() as conn, conn.begin():
                existed = sa.inspect(conn).has_table(store_meta.name) and not _cut_short(conn, self.location)
                if existed:
                    _upgrade(conn, self.location)
                metadata.create_all(conn)
                if not existed:
                    conn.execute(store_meta.delete())
                    conn.execute(
                        store_meta.insert(),
                        [
                            {"key": "schema_version", "value": SCHEMA_VERSION},
                            {"key": "store_id", "value": str(uuid.uuid4())},
                            {"key": "key_check", "value": self.keyring.check_value()},
                        ],
                    )
        except exc.SQLAlchemyError as error:
            raise errors.StoreError(f"store {self.location.describe()}: {_scrub(error)}") from None
        self._check()
        return not existed

    # -----------------------------------------------------------------------------------------
    # Reading

    def snapshot(self, keys: Sequence[str] | None = None, *, dependents: bool = False) -> state.LiveState:
        """Live state of the given tenants ("customer/tenant"), or of all; one query per table."""
        with self._connect() as conn:
            return read(conn, keys, dependents=dependents)

    def history(self, keys: Sequence[str] | None, limit: int) -> list[audit.AuditEntry]:
        """The audit log, newest first (read_audit), with the store's error translation."""
        with self._connect() as conn:
            return read_audit(conn, keys, limit)

    @contextlib.contextmanager
    def reading(self) -> Iterator[Connection]:
        """One connection for several reads that belong together (e.g. a plan's)."""
        with self._connect() as conn, conn.begin():
            yield conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One transaction: committed when the block ends, rolled back on any exception."""
        if self.readonly:
            raise errors.StoreError("internal: a read-only command asked to write")
        try:
            with self._open() as conn:
                if conn.dialect.name in ("mysql", "mariadb"):
                    # READ COMMITTED, as PostgreSQL's default: InnoDB's REPEATABLE READ also locks
                    # the gaps beside the rows an apply locks (_lock_tenant_rows), where the
                    # inserts of an apply of a neighbouring tenant then wait: deadlocks.
                    conn.execution_options(isolation_level="READ COMMITTED")
                with conn.begin():
                    yield conn
        except exc.SQLAlchemyError as error:
            raise errors.StoreError(f"store {self.location.describe()}: {_scrub(error)}") from None
        except Exception as error:
            # The driver's own error, which SQLAlchemy passes on unwrapped where it calls the
            # driver outside a statement: PyMySQL's, setting the isolation level on a connection
            # MariaDB closed while apply waited for `yes`, and resetting it as the connection
            # went back to the pool after the commit (the apply then said "internal error").
            if isinstance(error, self.engine.dialect.loaded_dbapi.Error):
                raise errors.StoreError(f"store {self.location.describe()}: {_scrub(error)}") from None
            raise


def _cut_short(conn: Connection, location: Location) -> bool:
    """A store whose init was cut short: its tables (some or all: MariaDB commits each CREATE
    TABLE) and no schema version. Its init is finished when its tables hold nothing; a store
    with rows and no version is not one init made, and is refused (nothing is written)."""
    if conn.execute(sa.select(store_meta.c.value).where(store_meta.c.key == "schema_version")).first():
        return False
    present = set(sa.inspect(conn).get_table_names())
    held = [
        t.name
        for t in metadata.sorted_tables
        if t.name in present and conn.execute(sa.select(sa.literal(1)).select_from(t).limit(1)).first()
    ]
    if held:
        raise errors.StoreError(
            f"store {location.describe()} has no schema version in {store_meta.name} but holds "
            f"rows ({', '.join(held)}): it was not made by `reconciler store init`, or its "
            "version was removed by hand; restore it from a backup (nothing was changed)"
        )
    return True


def _upgrade(conn: Connection, location: Location) -> None:
    """Upgrade a v1, v2 or v3 store in place (v1: identity keys for names and company ids,
    applied names; v1 and v2: the lock holder's identity columns; all: the audit log's previous
    names, null in the entries already there). A store of this version gets what it
    lacks too: a column (made by a version between two schema numbers, whose applies then all
    failed), utf8mb4 tables on MariaDB (made before 2026-11-26 in a latin1 database).

    Idempotent, so that a run cut short (MariaDB commits each DDL statement) can be repeated.
    """
    version = conn.execute(sa.select(store_meta.c.value).where(store_meta.c.key == "schema_version")).scalar()
    if version == "1":
        _refuse_merged_names(conn, location)  # before anything is changed
    inspector = sa.inspect(conn)
    dialect = conn.dialect
    # Every step adds only what is missing, so one loop serves v1 and v2 stores alike.
    added = [
        (locks, locks.c.machine),
        (locks, locks.c.started),
        (connections, connections.c.applied_name),
        (companies, companies.c.code_key),
        (audit_log, audit_log.c.freeze_override),
        (audit_log, audit_log.c.previous_name),
    ]
    for table, column in added:
        if column.name not in {c["name"] for c in inspector.get_columns(table.name)}:
            spec_sql = sa.schema.CreateColumn(column.copy()).compile(dialect=dialect)
            conn.exec_driver_sql(f"ALTER TABLE {table.name} ADD {str(spec_sql).replace(' NOT NULL', '')}")
    if version == "1":
        _upgrade_names(conn, inspector)
        _upgrade_applied_names(conn)
    if dialect.name in ("mysql", "mariadb"):
        # After v1's key on company codes by collation is gone (_upgrade_names): utf8mb4's
        # collation takes `A1` and `Å1` for one, and the conversion failed half-way, for good.
        _convert_to_utf8mb4(conn)
    if version in _UPGRADABLE:
        conn.execute(
            store_meta.update().where(store_meta.c.key == "schema_version").values(value=SCHEMA_VERSION)
        )


def _convert_to_utf8mb4(conn: Connection) -> None:
    """MariaDB: the store's tables in utf8mb4 (their rows converted), as this version makes them."""
    odd = conn.execute(
        sa.text(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() "
            "AND table_name IN :names AND table_collation NOT LIKE 'utf8mb4%'"
        ).bindparams(sa.bindparam("names", expanding=True)),
        {"names": sorted(metadata.tables)},
    ).scalars()
    for name in list(odd):
        conn.exec_driver_sql(f"ALTER TABLE {name} CONVERT TO CHARACTER SET utf8mb4")


def _refuse_merged_names(conn: Connection, location: Location) -> None:
    """v1 compared names by casefold alone: a v1 store may hold two connections of a tenant (or
    two companies of a connection) that this version takes for one name (`Bjørn` typed on a
    Mac and on Windows). The unique keys would refuse them with the database's words; this names
    them, and nothing is changed."""
    connection_names = conn.execute(
        sa.select(customers.c.name, tenants.c.name, connections.c.name)
        .join(tenants, connections.c.tenant_id == tenants.c.id)
        .join(customers, tenants.c.customer_id == customers.c.id)
        .order_by(connections.c.id)
    ).all()
    company_codes = conn.execute(
        sa.select(companies.c.connection_id, connections.c.name, companies.c.code)
        .join(connections, companies.c.connection_id == connections.c.id)
        .order_by(companies.c.id)
    ).all()
    clashes = [
        *(f"{c}/{t}: connections {a!r} and {b!r}" for (c, t), a, b in _merged(connection_names)),
        *(f"connection {n!r}: companies {a!r} and {b!r}" for (_, n), a, b in _merged(company_codes)),
    ]
    if clashes:
        raise errors.StoreError(
            f"store {location.describe()} holds names that this version takes for one (they differ "
            "only in Unicode form): "
            + "; ".join(clashes[:10])  # each name as repr() writes it: nothing in it acts
            + (f"; and {len(clashes) - 10} more" if len(clashes) > 10 else "")
            + ". Rename or delete one of each in the portal, then run `reconciler store init` "
            "again (nothing was changed)"
        )


def _merged(rows: Iterable[Any]) -> Iterator[tuple[tuple[Any, Any], str, str]]:
    """For rows (owner, owner, name): (the owner's two, the first name, another) for each name
    whose identity an earlier name of its owner has."""
    seen: dict[tuple[Any, Any, str], str] = {}
    for first_part, second_part, name in rows:
        first = seen.setdefault((first_part, second_part, spec.identity(name)), name)
        if first != name:
            yield (first_part, second_part), first, name


def _upgrade_applied_names(conn: Connection) -> None:
    """v1 -> v2: the name each connection the tool applied was applied under (v1 kept none, so
    a rename in the portal after the upgrade was planned as a create beside it): the last name
    the audit log has for its id, else its name now."""
    audited = dict(
        conn.execute(
            sa.select(audit_log.c.connection_id, audit_log.c.connection)
            .where(audit_log.c.connection_id.is_not(None))
            .order_by(audit_log.c.id)
        ).all()
    )  # the last entry of each id wins
    applied = conn.execute(
        sa.select(connections.c.id, connections.c.name).where(
            connections.c.applied_fp.is_not(None), connections.c.applied_name.is_(None)
        )
    ).all()
    for row in applied:
        conn.execute(
            connections.update()
            .where(connections.c.id == row.id)
            .values(applied_name=audited.get(row.id, row.name))
        )


def _upgrade_names(conn: Connection, inspector: Any) -> None:
    """v1 -> v2: identity keys for names and company ids."""
    dialect = conn.dialect
    for row in conn.execute(sa.select(connections.c.id, connections.c.name)).all():
        conn.execute(
            connections.update()
            .where(connections.c.id == row.id)
            .values(name_key=spec.identity_key(row.name))
        )
    for row in conn.execute(sa.select(companies.c.id, companies.c.code)).all():
        conn.execute(
            companies.update().where(companies.c.id == row.id).values(code_key=spec.identity_key(row.code))
        )
    names = {i["name"] for i in inspector.get_unique_constraints(companies.name)} | {
        i["name"] for i in inspector.get_indexes(companies.name) if i.get("unique")
    }
    if "uq_osr_companies_code" in names and dialect.name != "sqlite":
        # The v1 key compared codes by the database's collation; SQLite's is binary and its
        # constraints cannot be dropped, so there it stays (identity keys are stricter).
        drop = "DROP INDEX" if dialect.name in ("mysql", "mariadb") else "DROP CONSTRAINT"
        conn.exec_driver_sql(f"ALTER TABLE {companies.name} {drop} uq_osr_companies_code")
    if "uq_osr_companies_key" not in names:
        sa.Index("uq_osr_companies_key", companies.c.connection_id, companies.c.code_key, unique=True).create(
            conn
        )


def _tenant_rows(conn: Connection) -> list[Any]:  # Row's type parameters differ in SQLAlchemy 2.0/2.1
    query = sa.select(tenants.c.id, customers.c.name.label("customer"), tenants.c.name).join(
        customers, tenants.c.customer_id == customers.c.id
    )
    return list(conn.execute(query).all())


class _TenantRows(list[Any]):
    """tenant_rows(): the rows, with what every batch's read needs from all of them worked out
    once (a read per batch walking every tenant would make a fleet's plan quadratic)."""

    def __init__(self, rows: list[Any]) -> None:
        super().__init__(rows)
        self.by_key = {f"{row.customer}/{row.name}": (i, row) for i, row in enumerate(rows)}
        self.known = _known(rows)


def _known(rows: Iterable[Any]) -> dict[str, tuple[str, ...]]:
    known: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        known[row.customer].append(row.name)
    return {c: tuple(sorted(t)) for c, t in known.items()}


def tenant_rows(conn: Connection) -> _TenantRows:
    """Every tenant's (id, customer, name): read once, then given to each read of a batch."""
    return _TenantRows(_tenant_rows(conn))


def read(
    conn: Connection,
    keys: Sequence[str] | None,
    *,
    dependents: bool = False,
    tenants_read: list[Any] | None = None,
    lock: bool = False,
) -> state.LiveState:
    """Live state; dependents of every company only with dependents=True (dump).

    Plans read dependents only for the companies they may cascade to (read_dependents): a
    fleet has far more dependents than anything else, and most are never looked at.
    tenants_read: the rows of tenant_rows(conn), when a plan reads the fleet in batches.
    lock: an apply's read in its transaction: the rows it reads are locked first, to its end
    (_lock_tenant_rows).
    """
    rows = tenants_read if tenants_read is not None else _tenant_rows(conn)
    wanted = {k for k in keys} if keys is not None else None
    if isinstance(rows, _TenantRows) and wanted is not None:  # a batch: its keys looked up
        found = sorted(hit for hit in map(rows.by_key.get, wanted) if hit is not None)
        selected = {row.id: row for _, row in found}  # in the rows' order, as below
        known = rows.known
    else:
        selected = {row.id: row for row in rows if wanted is None or f"{row.customer}/{row.name}" in wanted}
        known = _known(rows)
    ids = list(selected) if wanted is not None else None

    if lock and ids:
        _lock_tenant_rows(conn, ids)

    def scoped(query: sa.Select[Any], column: sa.ColumnElement[Any]) -> sa.Select[Any]:
        if ids is None:
            return query
        if len(ids) <= 500:
            return query.where(column.in_(ids))
        return query  # large scopes: one full read beats a huge IN list; filtered below

    conn_rows = conn.execute(scoped(sa.select(*LIVE_COLUMNS), connections.c.tenant_id)).all()
    company_rows = conn.execute(
        scoped(
            sa.select(companies.c.id, companies.c.connection_id, companies.c.code).join(
                connections, companies.c.connection_id == connections.c.id
            ),
            connections.c.tenant_id,
        )
    ).all()
    dep_rows = (
        conn.execute(
            scoped(
                sa.select(
                    osr_dependents.c.company_id,
                    osr_dependents.c.kind,
                    osr_dependents.c.name,
                    osr_dependents.c.id,
                )
                .join(companies, osr_dependents.c.company_id == companies.c.id)
                .join(connections, companies.c.connection_id == connections.c.id)
                .order_by(osr_dependents.c.id),
                connections.c.tenant_id,
            )
        ).all()
        if dependents
        else []
    )
    template_rows = conn.execute(
        scoped(
            sa.select(
                report_templates.c.tenant_id, report_templates.c.name, report_templates.c.connection_id
            ).order_by(report_templates.c.name),
            report_templates.c.tenant_id,
        )
    ).all()

    deps_by_company = _group_dependents(dep_rows)
    # Each connection's company rows in the order read, sorted by code beside it (a stable sort
    # of its few rows: ties as read). One sort of all a batch's rows by code costs more: the
    # connections' rows are then picked out one connection after another at random.
    company_rows_by_conn: dict[int, list[Any]] = defaultdict(list)
    for company_row in company_rows:  # (id, connection_id, code)
        company_rows_by_conn[company_row[1]].append(company_row)
    conns_by_tenant: dict[int, list[state.LiveConnection]] = defaultdict(list)
    tenant_at, id_at = _AT["tenant_id"], _AT["id"]
    for row in conn_rows:
        tenant_id = row[tenant_at]
        if tenant_id not in selected:
            continue
        rows_of = sorted(company_rows_by_conn.get(row[id_at], ()), key=_CODE)
        conns_by_tenant[tenant_id].append(_live_connection(row, rows_of, deps_by_company))
    templates_by_tenant: dict[int, list[state.ReportTemplate]] = defaultdict(list)
    for tenant_id, name, connection_id in template_rows:
        templates_by_tenant[tenant_id].append(state.ReportTemplate(name, connection_id))
    live = {}
    for tenant_id, row in selected.items():
        key = f"{row.customer}/{row.name}"
        live[key] = state.LiveTenant(
            tenant_id,
            row.customer,
            row.name,
            # name_order, not natural_key alone: R01 and R1 tie there, and the rows came in the
            # order each database scanned them (dump and export differed between stores)
            tuple(sorted(conns_by_tenant.get(tenant_id, ()), key=lambda c: spec.name_order(c.spec.name))),
            tuple(templates_by_tenant.get(tenant_id, ())),
        )
    return state.LiveState(live, known)


_KINDS = {k.value: k for k in spec.DependentKind}
_CODE = operator.itemgetter(2)  # (id, connection_id, code): the company's code (LiveCompany.id)


def _group_dependents(rows: Iterable[Any]) -> dict[int, tuple[state.Dependent, ...]]:
    grouped: dict[int, list[state.Dependent]] = defaultdict(list)
    for company_id, kind, name, key in rows:
        grouped[company_id].append(state.Dependent(_KINDS[kind], name, key))
    return {k: tuple(v) for k, v in grouped.items()}


# SQL Server has no FOR UPDATE (SQLAlchemy's dialect renders nothing for it): a locking read
# there takes table hints, held to the end of the transaction (HOLDLOCK). UPDLOCK is what FOR
# UPDATE is elsewhere; the store key's rotation takes XLOCK, as UPDLOCK lets shared readers in.
_MSSQL_LOCKS = {
    "update": "WITH (UPDLOCK, ROWLOCK, HOLDLOCK)",
    "share": "WITH (HOLDLOCK, ROWLOCK)",
    "exclusive": "WITH (XLOCK, ROWLOCK, HOLDLOCK)",
}


def _locked(query: sa.Select[Any], table: sa.Table, mode: str = "update") -> sa.Select[Any]:
    """query, of table's rows by primary key, as a locking read (FOR UPDATE, FOR SHARE with
    mode "share") that uses that key: on MariaDB a locking read that scans (a small table, or an
    index its optimiser passed over) waits on every row it meets, other tenants' too, and two
    applies deadlocked."""
    hint = "FORCE INDEX (PRIMARY)"
    return (
        query.with_for_update(read=mode == "share")
        .with_hint(table, hint, "mysql")
        .with_hint(table, hint, "mariadb")
        .with_hint(table, _MSSQL_LOCKS[mode], "mssql")
    )


def _pairs_in(
    first: sa.ColumnElement[Any],
    second: sa.ColumnElement[Any],
    pairs: Sequence[tuple[Any, Any]],
    dialect: str,
) -> sa.ColumnElement[bool]:
    """(first, second) IN pairs. SQL Server has no row values (its IN takes one expression):
    there, an OR of pairs (a chunk of 500 pairs is 1,000 parameters, under its 2,100)."""
    if dialect in _NO_ROW_VALUES:
        return sa.or_(*(sa.and_(first == a, second == b) for a, b in pairs))
    return sa.tuple_(first, second).in_(pairs)


_NO_ROW_VALUES = frozenset({"mssql"})


def _lock_where(
    conn: Connection, table: sa.Table, column: sa.ColumnElement[Any], values: Iterable[int]
) -> list[int]:
    """Lock table's rows whose column is one of values (an apply's read: _lock_tenant_rows,
    read_dependents); their ids. Found by an ordinary read, locked by primary key (_locked):
    one added between the two is read and compared all the same. SQLite locks nothing here:
    its apply is the one writer already (BEGIN IMMEDIATE)."""
    if conn.dialect.name == "sqlite":
        return []
    ids = sorted(
        row_id
        for part in _chunks(sorted(set(values)))
        for row_id in conn.execute(sa.select(table.c.id).where(column.in_(part))).scalars()
    )
    for part in _chunks(ids):
        conn.execute(
            _locked(sa.select(table.c.id).where(table.c.id.in_(part)).order_by(table.c.id), table)
        ).all()
    return ids


def _lock_tenant_rows(conn: Connection, tenant_ids: Sequence[int]) -> None:
    """Lock, for an apply's read in its transaction (read(lock=True)), the tenants'
    connections, their companies and the tenants' report templates, before they are read: on
    PostgreSQL and MariaDB a writer outside the tool (the portal) that would change one of
    them, or add a row under one (a foreign key waits on the row it names: a company or a
    dependent under a connection being deleted, a template linked to it), then waits for the
    apply's commit. Without it, a portal change committed between the apply's comparison of
    what it read with its plan and its writes was written over (a connection made protected
    while an update was written), and MariaDB's read of its snapshot missed rows its deletes
    then met."""
    conn_ids = _lock_where(conn, connections, connections.c.tenant_id, tenant_ids)
    _lock_where(conn, companies, companies.c.connection_id, conn_ids)
    _lock_where(conn, report_templates, report_templates.c.tenant_id, tenant_ids)


def read_dependents(
    conn: Connection, company_keys: Iterable[int], *, lock: bool = False
) -> dict[int, tuple[state.Dependent, ...]]:
    """Dependents of these companies (by row id); every requested company gets an entry.
    lock: as read()'s."""
    keys = sorted(set(company_keys))
    found: dict[int, tuple[state.Dependent, ...]] = {k: () for k in keys}
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        query = (
            sa.select(
                osr_dependents.c.company_id, osr_dependents.c.kind, osr_dependents.c.name, osr_dependents.c.id
            )
            .where(osr_dependents.c.company_id.in_(chunk))
            .order_by(osr_dependents.c.id)
        )
        if lock:
            _lock_where(conn, osr_dependents, osr_dependents.c.company_id, chunk)
        rows = conn.execute(query).all()
        found.update(_group_dependents(rows))
    return found


def _live_connection(
    row: sa.Row[Any], company_rows: list[Any], deps_by_company: dict[int, tuple[state.Dependent, ...]]
) -> state.LiveConnection:
    """A row of `SELECT <LIVE_COLUMNS> FROM osr_connections` (read by position, _AT: every connection
    of a fleet is read through here) and its company rows (id, connection_id, code) in code order.

    Without dependents read, its companies are made on first use (LiveConnection.read): a plan
    looks at those of the few connections it deletes or changes."""
    row_id, password_fp, managed, version, applied_fp, applied_name = _LIVE_AT(row)
    made = spec.ConnectionSpec.made(
        row[_NAME_AT], tuple([c[2] for c in company_rows]), _TOP_AT(row), row[_PROVIDER_AT], row[_DOC_PATH_AT]
    )
    if not deps_by_company:
        return state.LiveConnection.read(
            row_id, made, company_rows, password_fp, bool(managed), version, applied_fp, applied_name
        )
    return state.LiveConnection(
        id=row_id,
        spec=made,
        companies=tuple(
            [state.LiveCompany(code, deps_by_company.get(key, ()), key) for key, _, code in company_rows]
        ),
        password_fp=password_fp,
        managed=bool(managed),
        version=version,
        applied_fp=applied_fp,
        applied_name=applied_name,
    )


# ---------------------------------------------------------------------------------------------
# Writing (inside Store.transaction())


@dataclass(frozen=True)
class Password:
    ciphertext: str
    fingerprint: str


# What an update does to a connection's stored password: one of three, so that no write can
# both set and clear it.
@dataclass(frozen=True)
class Keep:
    """Keep the stored password (or its absence)."""


@dataclass(frozen=True)
class Clear:
    """Remove the stored password."""


@dataclass(frozen=True)
class SetTo:
    """Store this password (encrypted) instead."""

    password: Password


PasswordChange = Keep | Clear | SetTo
KEEP, CLEAR = Keep(), Clear()


_STORED = [(f.key, f.column) for f in spec.STORED if f.column is not None]
# The connection columns read for live state (_live_connection; the benchmark's floor reads the
# same): all but the password's ciphertext (a plan compares fingerprints; apply reads it where it
# needs it), the name's key and the write time; and their positions in such a row.
LIVE_COLUMNS = tuple(c for c in connections.c if c.name not in ("password_ct", "name_key", "updated_ms"))
_AT = {c.name: i for i, c in enumerate(LIVE_COLUMNS)}
_COLUMN_OF = dict(_STORED)
_TOP_AT = operator.itemgetter(*(_AT[_COLUMN_OF[key]] for key in spec.TOP_KEYS))  # in made()'s order
_PROVIDER_AT = _AT[_COLUMN_OF["voucher.provider"]]
_DOC_PATH_AT = _AT[_COLUMN_OF["voucher.document_center_path"]]
_NAME_AT = _AT["name"]
_LIVE_AT = operator.itemgetter(
    *(_AT[c] for c in ("id", "password_fp", "managed", "version", "applied_fp", "applied_name"))
)


def spec_columns(s: spec.ConnectionSpec) -> dict[str, Any]:
    """The connection columns of a spec (also the benchmark's bulk load)."""
    values = s.values()
    return {
        "name": s.name,
        "name_key": spec.identity_key(s.name),
        **{column: values[key] for key, column in _STORED},
    }


def ensure_tenant(conn: Connection, customer: str, tenant: str) -> int:
    """The id of customer/tenant, created if missing (store seed only: tenants come from the portal)."""
    customer_id = conn.execute(sa.select(customers.c.id).where(customers.c.name == customer)).scalar()
    if customer_id is None:
        customer_id = _inserted(conn.execute(customers.insert().values(name=customer)))
    tenant_id = conn.execute(
        sa.select(tenants.c.id).where(tenants.c.customer_id == customer_id, tenants.c.name == tenant)
    ).scalar()
    if tenant_id is None:
        tenant_id = _inserted(conn.execute(tenants.insert().values(customer_id=customer_id, name=tenant)))
    return int(tenant_id)


def _inserted(result: sa.CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


# Batched writes: statements grow with batches, not actions (issue 14). Each kind of write is one
# executemany or one set-based statement per CHUNK rows; versions are read (and their rows
# locked where the database can) in one query, and every executemany's rowcount total is checked.
CHUNK = 500


@dataclass(frozen=True)
class Create:
    tenant_id: int
    spec: spec.ConnectionSpec
    password: Password | None
    managed: bool
    applied_fp: str | None


@dataclass(frozen=True)
class Update:
    connection_id: int
    version: int  # as read: the write is refused if it moved
    spec: spec.ConnectionSpec
    password: PasswordChange
    managed: bool
    applied_fp: str | None
    label: str  # tenant/connection, for messages
    renamed: bool = False  # a rename: its name may be one another row of the batch gives up


@dataclass(frozen=True)
class Delete:
    connection_id: int
    version: int
    label: str


# The dependent row ids a plan listed, all together or by the company it read them under (then
# a dependent is deleted only with that company); None: all (store seed only).
Listed = Collection[int] | Mapping[int, Collection[int]] | None


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def _conflict(label: str) -> errors.ConflictError:
    return errors.ConflictError(
        f"{label}: the live connection changed while applying "
        "(version mismatch); nothing was applied, plan again"
    )


def _check_versions(
    conn: Connection, expected: Sequence[tuple[int, int, str]], deleting: Collection[int] = ()
) -> None:
    """(id, version, label): refuse unless every row is there at that version; the rows stay
    locked until the transaction ends (SELECT ... FOR UPDATE; SQLite holds the one write lock).
    deleting: the ids to delete, refused unless, as locked, managed and not protected (a writer
    that changes those without a new version, the portal's own on a server store, may have
    committed since the plan read them in this transaction)."""
    for chunk in _chunks(expected):
        found = {
            row.id: row
            for row in conn.execute(
                _locked(
                    sa.select(
                        connections.c.id,
                        connections.c.version,
                        connections.c.protected,
                        connections.c.managed,
                    ).where(connections.c.id.in_([i for i, _, _ in chunk])),
                    connections,
                )
            )
        }
        for connection_id, version, label in chunk:
            row = found.get(connection_id)
            if row is None or row.version != version:
                raise _conflict(label)
            if connection_id in deleting and (row.protected or not row.managed):
                raise errors.ConflictError(
                    f"{label}: the live connection became protected or unmanaged while applying; "
                    "nothing was applied, plan again"
                )


def _check_rowcount(
    conn: Connection,
    result: sa.CursorResult[Any],
    expected: Sequence[tuple[int, tuple[int, int] | None, str]],
) -> None:
    """The rows a write matched, a second check after _check_versions: expected holds (id,
    (version, updated_ms) as written, or None once deleted, label). An executemany's rowcount
    is the total over its rows on SQLite, psycopg and PyMySQL (tests/test_statements.py); a
    driver that cannot tell reports -1 (pyodbc: SQL Server's), and then the rows are read back
    (the write's time as well as its version: another writer's would also add one)."""
    if result.rowcount == -1:
        for chunk in _chunks(expected):
            now = {
                row.id: (row.version, row.updated_ms)
                for row in conn.execute(
                    sa.select(connections.c.id, connections.c.version, connections.c.updated_ms).where(
                        connections.c.id.in_([i for i, _, _ in chunk])
                    )
                )
            }
            for connection_id, written, label in chunk:
                if now.get(connection_id) != written:
                    raise _conflict(label)
    elif result.rowcount != len(expected):
        labels = [label for _, _, label in expected]
        raise _conflict(
            ", ".join(labels) if len(labels) <= 3 else f"{labels[0]} (or another of {len(labels)})"
        )


def write(
    conn: Connection,
    *,
    deletes: Sequence[Delete] = (),
    updates: Sequence[Update] = (),
    creates: Sequence[Create] = (),
    listed: Listed = None,
) -> list[int]:
    """Carry out one batch: deletes (they free names), then updates, then creates, each with the
    companies they declare; the ids of the created connections, in order.

    listed: the dependents that may be deleted with a company (read and fingerprinted by the
    plan); one that is not listed stops the transaction. None: all (store seed only).
    """
    _check_versions(
        conn,
        [(d.connection_id, d.version, d.label) for d in deletes]
        + [(u.connection_id, u.version, u.label) for u in updates],
        deleting={d.connection_id for d in deletes},
    )
    try:
        if deletes:
            _delete(conn, deletes, listed)
        if updates:
            _update(conn, updates)
            _sync_companies(conn, {u.connection_id: (u.spec.companies, u.label) for u in updates}, listed)
        return _create(conn, creates) if creates else []
    except exc.IntegrityError as error:
        # The rows written are locked, but a new row is not: the portal can add a connection
        # under a name this batch creates or renames to after the plan read the tenant.
        if "uq_osr_connections_name" not in str(error.orig):
            raise
        raise errors.ConflictError(
            "the live store changed while applying: a connection name this apply writes was taken "
            "meanwhile (by the portal or another writer); nothing was applied, plan again"
        ) from None


def _delete(conn: Connection, deletes: Sequence[Delete], listed: Listed) -> None:
    """Delete connections with their companies and dependents; detach (keep) report templates."""
    label_of = {d.connection_id: d.label for d in deletes}
    owned: dict[int, str] = {}
    for chunk in _chunks(list(label_of)):
        owned.update(
            {
                company_id: label_of[connection_id]
                for company_id, connection_id in conn.execute(
                    sa.select(companies.c.id, companies.c.connection_id).where(
                        companies.c.connection_id.in_(chunk)
                    )
                )
            }
        )
    _refuse_unread(owned, listed)
    _delete_dependents_of(conn, owned, listed)
    for chunk in _chunks(list(owned)):
        conn.execute(companies.delete().where(companies.c.id.in_(chunk)))
    for chunk in _chunks(list(label_of)):
        conn.execute(
            report_templates.update()
            .where(report_templates.c.connection_id.in_(chunk))
            .values(connection_id=None)
        )
    for part in _chunks(deletes):  # set-based, still by (id, version): one round trip per chunk
        result = conn.execute(
            connections.delete().where(
                _pairs_in(
                    connections.c.id,
                    connections.c.version,
                    [(d.connection_id, d.version) for d in part],
                    conn.dialect.name,
                )
            )
        )
        _check_rowcount(conn, result, [(d.connection_id, None, d.label) for d in part])


def _update(conn: Connection, updates: Sequence[Update]) -> None:
    """One UPDATE for the batch. Renames first give up their names: portal renames undone by
    a plan can form a chain (A → Z, then B → A: B is renamed back to the name A holds) or a
    swap, which no order of single renames gets past the unique name (DESIGN §5)."""
    renamed = [u for u in updates if u.renamed]
    if len(renamed) > 1:
        # A placeholder per row: unique, and never an identity key (those are hex digests).
        conn.execute(
            connections.update()
            .where(connections.c.id == sa.bindparam("b_id"))
            .values(name_key=sa.bindparam("b_placeholder")),
            [{"b_id": u.connection_id, "b_placeholder": f"renaming {u.connection_id}"} for u in renamed],
        )
    keep = sa.bindparam("b_keep", type_=sa.Integer) == 1
    values: dict[str, Any] = {column: sa.bindparam(f"b_{column}") for column in spec_columns(updates[0].spec)}
    values.update(
        managed=sa.bindparam("b_managed"),
        applied_fp=sa.bindparam("b_applied_fp"),
        applied_name=sa.bindparam("b_applied_name"),
        version=sa.bindparam("b_version") + 1,
        updated_ms=sa.bindparam("b_updated_ms"),
        password_ct=sa.case((keep, connections.c.password_ct), else_=sa.bindparam("b_ct", type_=sa.Text)),
        password_fp=sa.case(
            (keep, connections.c.password_fp), else_=sa.bindparam("b_fp", type_=sa.String(64))
        ),
    )
    stamp = now_ms()
    rows = []
    for u in updates:
        ct: str | None = None
        fp: str | None = None
        match u.password:
            case SetTo(password):
                kept, ct, fp = 0, password.ciphertext, password.fingerprint
            case Clear():
                kept = 0
            case Keep():
                kept = 1
        rows.append(
            {
                **{f"b_{k}": v for k, v in spec_columns(u.spec).items()},
                "b_id": u.connection_id,
                "b_version": u.version,
                "b_managed": u.managed,
                "b_applied_fp": u.applied_fp,
                "b_applied_name": u.spec.name if u.applied_fp else None,
                "b_updated_ms": stamp,
                "b_keep": kept,
                "b_ct": ct,
                "b_fp": fp,
            }
        )
    result = conn.execute(
        connections.update()
        .where(connections.c.id == sa.bindparam("b_id"), connections.c.version == sa.bindparam("b_version"))
        .values(values),
        rows,
    )
    _check_rowcount(conn, result, [(u.connection_id, (u.version + 1, stamp), u.label) for u in updates])


def _sync_companies(conn: Connection, wanted: dict[int, tuple[Iterable[str], str]], listed: Listed) -> None:
    """Make each connection's companies the wanted ones: (codes, label) by connection id."""
    current: dict[int, dict[str, int]] = defaultdict(dict)  # connection -> code_key -> row id
    for chunk in _chunks(list(wanted)):
        for company_id, connection_id, code_key in conn.execute(
            sa.select(companies.c.id, companies.c.connection_id, companies.c.code_key).where(
                companies.c.connection_id.in_(chunk)
            )
        ):
            current[connection_id][code_key] = company_id
    gone: dict[int, str] = {}
    new: list[dict[str, Any]] = []
    for connection_id, (codes, label) in wanted.items():
        keys = {spec.identity_key(code): code for code in codes}
        have = current.get(connection_id, {})
        gone.update({have[k]: label for k in have.keys() - keys.keys()})
        new += [
            {"connection_id": connection_id, "code": keys[k], "code_key": k}
            for k in sorted(keys.keys() - have.keys())
        ]
    if gone:
        _refuse_unread(gone, listed)
        _delete_dependents_of(conn, gone, listed)
        for chunk in _chunks(list(gone)):
            conn.execute(companies.delete().where(companies.c.id.in_(chunk)))
    if new:
        conn.execute(companies.insert(), new)


def _create(conn: Connection, creates: Sequence[Create]) -> list[int]:
    """One INSERT for the batch; the new ids are read back by (tenant, name) in one query per
    chunk (portable: no RETURNING with executemany needed)."""
    stamp = now_ms()
    conn.execute(
        connections.insert(),
        [
            {
                **spec_columns(c.spec),
                "tenant_id": c.tenant_id,
                "managed": c.managed,
                "version": 1,
                "applied_fp": c.applied_fp,
                "applied_name": c.spec.name if c.applied_fp else None,
                "updated_ms": stamp,
                "password_ct": c.password.ciphertext if c.password else None,
                "password_fp": c.password.fingerprint if c.password else None,
            }
            for c in creates
        ],
    )
    ids: dict[tuple[int, str], int] = {}
    for chunk in _chunks(creates):
        ids.update(
            {
                (tenant_id, name_key): connection_id
                for connection_id, tenant_id, name_key in conn.execute(
                    sa.select(connections.c.id, connections.c.tenant_id, connections.c.name_key).where(
                        connections.c.tenant_id.in_({c.tenant_id for c in chunk}),
                        connections.c.name_key.in_({spec.identity_key(c.spec.name) for c in chunk}),
                    )
                )
            }
        )
    created = [ids[(c.tenant_id, spec.identity_key(c.spec.name))] for c in creates]
    rows = [
        {"connection_id": connection_id, "code": code, "code_key": spec.identity_key(code)}
        for connection_id, c in zip(created, creates, strict=True)
        for code in c.spec.companies
    ]
    if rows:
        conn.execute(companies.insert(), rows)
    return created


def _refuse_unread(label_of: Mapping[int, str], listed: Listed) -> None:
    """Refuse to delete a company the plan did not read (listed by company: the apply's); one
    added since, by a writer that gave the connection no new version, was never shown."""
    if isinstance(listed, Mapping):
        for company_id, label in label_of.items():
            if company_id not in listed:
                raise errors.ConflictError(
                    f"{label}: a company was added to the live connection while applying; "
                    "nothing was applied, plan again"
                )


def _delete_dependents_of(conn: Connection, label_of: dict[int, str], listed: Listed) -> None:
    """Delete the dependents of these companies (label by company id), refusing any the plan
    did not list: only listed rows are deleted, and any left over stops the transaction."""
    for chunk in _chunks(list(label_of)):
        if listed is None:
            conn.execute(osr_dependents.delete().where(osr_dependents.c.company_id.in_(chunk)))
            continue
        if isinstance(listed, Mapping):  # each under the company it was read under: (company, id)
            pairs = sorted((c, d) for c in chunk for d in listed.get(c, ()))
            for part in _chunks(pairs):
                conn.execute(
                    osr_dependents.delete().where(
                        osr_dependents.c.company_id.in_(chunk),
                        _pairs_in(osr_dependents.c.company_id, osr_dependents.c.id, part, conn.dialect.name),
                    )
                )
        else:
            for ids in _chunks(sorted(listed)):
                conn.execute(
                    osr_dependents.delete().where(
                        osr_dependents.c.company_id.in_(chunk), osr_dependents.c.id.in_(ids)
                    )
                )
        left = conn.execute(
            sa.select(osr_dependents.c.company_id, sa.func.count())
            .where(osr_dependents.c.company_id.in_(chunk))
            .group_by(osr_dependents.c.company_id)
            .order_by(osr_dependents.c.company_id)
        ).all()
        if left:
            label = label_of[left[0][0]]
            count = sum(n for company_id, n in left if label_of[company_id] == label)
            raise errors.ConflictError(
                f"{label}: {count} dependent(s) appeared that the plan did not list; nothing "
                "was applied, plan again"
            )


# One action at a time (store seed, and the guard tests): batches of one.


def create_connection(
    conn: Connection,
    tenant_id: int,
    s: spec.ConnectionSpec,
    *,
    password: Password | None,
    managed: bool,
    applied_fp: str | None,
) -> int:
    return write(conn, creates=[Create(tenant_id, s, password, managed, applied_fp)])[0]


def update_connection(
    conn: Connection,
    connection_id: int,
    version: int,
    s: spec.ConnectionSpec,
    *,
    password: PasswordChange,
    managed: bool,
    applied_fp: str | None,
    label: str,
    listed: Listed = None,
) -> None:
    """Update fields and companies; raise ConflictError if the version moved (someone else wrote)."""
    write(
        conn, updates=[Update(connection_id, version, s, password, managed, applied_fp, label)], listed=listed
    )


def set_companies(
    conn: Connection, connection_id: int, wanted: Iterable[str], *, listed: Listed = None, label: str = ""
) -> None:
    _sync_companies(conn, {connection_id: (list(wanted), label)}, listed)


def delete_connection(
    conn: Connection, connection_id: int, version: int, *, label: str, listed: Listed = None
) -> None:
    """Delete a connection and its dependents; detach (keep) its report templates."""
    write(conn, deletes=[Delete(connection_id, version, label)], listed=listed)


def add_dependents(
    conn: Connection, connection_id: int, company: str, items: Iterable[tuple[spec.DependentKind, str]]
) -> None:
    company_id = conn.execute(
        sa.select(companies.c.id).where(
            companies.c.connection_id == connection_id, companies.c.code_key == spec.identity_key(company)
        )
    ).scalar_one()
    rows = [{"company_id": company_id, "kind": kind.value, "name": name} for kind, name in items]
    if rows:
        conn.execute(osr_dependents.insert(), rows)


def replace_templates(conn: Connection, tenant_id: int, items: Iterable[tuple[str, int | None]]) -> None:
    """The tenant's report templates of these names replaced (store seed): names compared as
    identities here, not by the database's collation (MariaDB's took `Resume` for `Résumé`)."""
    items = list(items)
    if items:
        wanted = {spec.identity(name) for name, _ in items}
        gone = [
            row.id
            for row in conn.execute(
                sa.select(report_templates.c.id, report_templates.c.name).where(
                    report_templates.c.tenant_id == tenant_id
                )
            )
            if spec.identity(row.name) in wanted
        ]
        for chunk in _chunks(gone):
            conn.execute(report_templates.delete().where(report_templates.c.id.in_(chunk)))
        conn.execute(
            report_templates.insert(),
            [{"tenant_id": tenant_id, "name": name, "connection_id": cid} for name, cid in items],
        )


def connection_id_by_name(conn: Connection, tenant_id: int, name: str) -> tuple[int, int] | None:
    row = conn.execute(
        sa.select(connections.c.id, connections.c.version).where(
            connections.c.tenant_id == tenant_id, connections.c.name_key == spec.identity_key(name)
        )
    ).first()
    return (row.id, row.version) if row else None


# The columns that find one audit row again (audit_has): under the tenant's lease no other apply
# writes a row with the same time, actor, tenant, action and connection.
_AUDIT_IDENTITY = ("at_ms", "actor", "customer", "tenant", "action", "connection")


def _audit_row(e: audit.AuditEntry) -> dict[str, Any]:
    """An entry as its audit_log row holds it."""
    return {
        "at_ms": e.at_ms,
        "actor": e.actor[:NAME],
        "git_commit": e.git_commit,
        "customer": e.customer,
        "tenant": e.tenant,
        "action": e.action,
        "connection": e.connection,
        "connection_id": e.connection_id,
        "reason": e.reason,
        "fields": ",".join(e.fields),
        "cascade_count": e.cascade_count,
        "freeze_override": e.freeze_override,
        "previous_name": e.previous_name,
    }


# A connection's session on the server, and whether it is still there: see session_of.
# MariaDB's queries are MySQL's (SQLAlchemy names the dialect either way).
_SESSION_ID = {
    "postgresql": "SELECT pg_backend_pid()",
    "mysql": "SELECT CONNECTION_ID()",
    "mssql": "SELECT @@SPID",
}
# Whether that session is still on the server, but for the one asking (the pool may give the
# reader that very session). Still there, it may yet commit: running its COMMIT (a slow disk, a
# synchronous standby), or idle in its transaction with the COMMIT still on its way (through a
# proxy that held it after the client's side failed).
_SESSION_THERE = {
    "postgresql": "SELECT 1 FROM pg_stat_activity WHERE pid = :session AND pid <> pg_backend_pid()",
    "mysql": "SELECT 1 FROM information_schema.PROCESSLIST WHERE ID = :session AND ID <> CONNECTION_ID()",
    "mssql": "SELECT 1 FROM sys.dm_exec_sessions WHERE session_id = :session AND session_id <> @@SPID",
}
_SESSION_ID["mariadb"], _SESSION_THERE["mariadb"] = _SESSION_ID["mysql"], _SESSION_THERE["mysql"]


def session_of(conn: Connection) -> int | None:
    """This connection's session on the database server (PostgreSQL's backend, MariaDB's
    connection id), or None (SQLite: in this process, whose commit has ended when it returns).
    When the connection fails during a commit, the server may still be committing (a slow
    disk, a synchronous standby): what it committed is read once that session is gone."""
    query = _SESSION_ID.get(conn.dialect.name)
    return None if query is None else int(conn.execute(sa.text(query)).scalar_one())


def audit_has(store: Store, entry: audit.AuditEntry, session: int | None = None) -> bool:
    """Whether the audit log holds this entry, as write_audit wrote it (_AUDIT_IDENTITY).
    session: of the transaction that wrote it (session_of); while that session is still on the
    server, its commit may not have ended: a StoreError, so that asked_again asks again. Asked
    before the entry is read: read first, a commit that ended between the two reads was
    "nothing was applied"."""
    row = _audit_row(entry)
    with store.reading() as conn:
        _committer_gone(conn, store, session)
        found = conn.execute(
            sa.select(audit_log.c.id)
            .where(*(audit_log.c[name] == row[name] for name in _AUDIT_IDENTITY))
            .limit(1)
        ).first()
    return found is not None


def meta_is(store: Store, key: str, value: str, session: int | None = None) -> bool:
    """Whether the store's meta value for key is value now (rotate-key's key check, a seed's
    mark), read as audit_has reads an apply's row: a StoreError while the session that was
    committing (session_of) is still on the server, or when the store does not answer."""
    with store.reading() as conn:
        _committer_gone(conn, store, session)
        now = conn.execute(sa.select(store_meta.c.value).where(store_meta.c.key == key)).scalar()
    return bool(now == value)


def _committer_gone(conn: Connection, store: Store, session: int | None) -> None:
    """A StoreError while that session is still on the server: its commit may not have ended
    (asked before what it wrote is read: a commit that ended between the two reads was read
    as not made)."""
    if session is None:
        return
    if conn.execute(sa.text(_SESSION_THERE[conn.dialect.name]), {"session": session}).first():
        raise errors.StoreError(
            f"store {store.location.describe()}: the session that was committing is still there"
        )


def write_audit(conn: Connection, entries: Sequence[audit.AuditEntry]) -> None:
    """The entries in one INSERT (executemany)."""
    if entries:
        conn.execute(audit_log.insert(), [_audit_row(e) for e in entries])


def read_audit(conn: Connection, keys: Sequence[str] | None, limit: int) -> list[audit.AuditEntry]:
    """The newest entries first, of these tenants ("customer/tenant") or of all.

    The tenants are asked for a chunk at a time (one OR of a pair per tenant made SQLite refuse
    1,000 tenants: "Expression tree is too large"), each chunk's newest `limit` merged."""
    query = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    if keys:
        rows: list[Any] = []
        for chunk in _chunks(sorted(set(keys))):
            rows += conn.execute(query.where(_of_tenants(chunk))).all()
        rows = sorted(rows, key=lambda r: r.id, reverse=True)[:limit]
    else:
        rows = list(conn.execute(query).all())
    return [
        audit.AuditEntry(
            at_ms=r.at_ms,
            actor=r.actor,
            git_commit=r.git_commit,
            customer=r.customer,
            tenant=r.tenant,
            action=r.action,
            connection=r.connection,
            connection_id=r.connection_id,
            reason=r.reason,
            fields=tuple(f for f in r.fields.split(",") if f),
            cascade_count=r.cascade_count,
            freeze_override=r.freeze_override,
            previous_name=r.previous_name,
        )
        for r in rows
    ]


def _of_tenants(keys: Sequence[str]) -> sa.ColumnElement[bool]:
    """The audit log's entries of these tenants ("customer/tenant"), a chunk of them."""
    pairs = [k.split("/", 1) for k in keys]
    return sa.or_(*[sa.and_(audit_log.c.customer == c, audit_log.c.tenant == t) for c, t in pairs])


def audit_names(conn: Connection, keys: Sequence[str], limit: int) -> Iterator[audit.Named]:
    """These tenants' entries as deleted_in_portal reads them, newest first within each tenant
    (at most limit a chunk of tenants), streamed: drift kept every entry whole (550 MB for
    400,000 entries, by the scale hunt); what it keeps now is a name per tenant and name."""
    columns = (
        audit_log.c.customer,
        audit_log.c.tenant,
        audit_log.c.action,
        audit_log.c.connection,
        audit_log.c.connection_id,
    )
    for chunk in _chunks(sorted(set(keys))):
        query = (
            sa.select(*columns)
            .where(_of_tenants(chunk))
            .order_by(audit_log.c.id.desc())
            .limit(limit)
            .execution_options(yield_per=10_000)
        )
        for r in conn.execute(query):
            yield audit.Named(f"{r.customer}/{r.tenant}", r.action, r.connection, r.connection_id)


def password_rows(conn: Connection, ids: Sequence[int]) -> list[tuple[int, str]]:
    """(id, ciphertext) of these connections that have a password, a chunk of ids per query."""
    found = []
    for chunk in _chunks(ids):
        query = sa.select(connections.c.id, connections.c.password_ct).where(
            connections.c.id.in_(list(chunk)), connections.c.password_ct.is_not(None)
        )
        found += [(row.id, row.password_ct) for row in conn.execute(query)]
    return found


def set_passwords(conn: Connection, passwords: Sequence[tuple[int, Password]]) -> None:
    """Each connection's password (id, Password), in one statement (executemany)."""
    if passwords:
        conn.execute(
            connections.update()
            .where(connections.c.id == sa.bindparam("b_id"))
            .values(password_ct=sa.bindparam("b_ct"), password_fp=sa.bindparam("b_fp")),
            [{"b_id": i, "b_ct": p.ciphertext, "b_fp": p.fingerprint} for i, p in passwords],
        )


def set_applied_fps(conn: Connection, applied: Sequence[tuple[int, str | None]]) -> None:
    """Each connection's applied fingerprint (id, fingerprint), in one statement (executemany)."""
    if applied:
        conn.execute(
            connections.update()
            .where(connections.c.id == sa.bindparam("b_id"))
            .values(applied_fp=sa.bindparam("b_fp")),
            [{"b_id": i, "b_fp": fp} for i, fp in applied],
        )


T = TypeVar("T")
# How long the outcome of a commit whose reply was lost is read for (the store may be back in
# moments) before the run says it cannot tell: apply, rotate-key and seed (asked_again).
OUTCOME_WAIT_S = 30.0


def asked_again(ask: Callable[[], T], wait_s: float) -> T:
    """ask()'s answer, asked again on new connections while the store does not answer (a
    StoreError), for up to wait_s: after a connection failed during a commit, whether the
    commit happened is read, never guessed (an apply's audit row, rotate-key's key check).
    The last StoreError when the store never answered."""
    deadline, pause = time.monotonic() + wait_s, 0.25
    while True:
        try:
            return ask()
        except errors.StoreError:
            if time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(2 * pause, 5.0)


def hold_key(conn: Connection, keyring: secrets.Keyring, *, rotating: bool = False) -> None:
    """The store's key held for this transaction, and checked to be keyring's: every write of a
    ciphertext or a (keyed) fingerprint holds it shared, `store rotate-key` exclusively, so that
    neither commits under a key the other just replaced (passwords under two keys). SQLite has
    one writer at a time (BEGIN IMMEDIATE): its transaction is the lock."""
    query = sa.select(store_meta.c.value).where(store_meta.c.key == "key_check")
    if conn.dialect.name != "sqlite":
        query = _locked(query, store_meta, "exclusive" if rotating else "share")
    if conn.execute(query).scalar() != keyring.check_value():
        raise errors.ConflictError(
            "the store's key was rotated (store rotate-key) since this run read it; nothing was "
            f"changed: run it again with the new key in {secrets.STORE_KEY_VAR}"
        )


def set_meta(conn: Connection, key: str, value: str) -> None:
    """The meta value for key, made when the store has none yet (a seed's mark)."""
    if not conn.execute(store_meta.update().where(store_meta.c.key == key).values(value=value)).rowcount:
        conn.execute(store_meta.insert().values(key=key, value=value))


# ---------------------------------------------------------------------------------------------
# Locks: one lease per tenant, each taken in its own short transaction. Policy (who may take a
# lease over, renewal) is reconciler.locks'; this is its SQL.


@dataclass(frozen=True)
class Holder:
    actor: str
    host: str
    pid: int
    ci_job: str | None
    machine: str | None = None  # boot id and pid namespace (reconciler.locks.machine)
    started: int | None = None  # process start time in clock ticks since boot


@dataclass(frozen=True)
class LockRow:
    id: str
    scope: str
    holder: Holder
    acquired_ms: int
    expires_ms: int

    def describe(self) -> str:
        job = f", CI job {self.holder.ci_job}" if self.holder.ci_job else ""
        return (
            f"lock {self.id} on {self.scope} held by {self.holder.actor} on {self.holder.host} "
            f"(pid {self.holder.pid}{job}) since {utc(self.acquired_ms)}"
        )


def utc(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ms / 1000))


def _lock_row(row: sa.Row[Any]) -> LockRow:
    return LockRow(
        row.id,
        row.scope,
        Holder(row.actor, row.host, row.pid, row.ci_job, row.machine, row.started),
        row.acquired_ms,
        row.expires_ms,
    )


class Busy(Exception):
    """The store is busy with another writer for longer than we were willing to wait."""


# How each database says so: SQLite, PostgreSQL (lock_timeout), SQL Server (error 1222).
_BUSY = (
    "database is locked",
    "lock timeout",
    "lock_timeout",
    "lock request time out",
    "lock wait timeout exceeded",
)


@contextlib.contextmanager
def _writing(store: Store, busy_ms: int) -> Iterator[Connection]:
    """A short write transaction that waits at most busy_ms for another writer (SQLite),
    so that a waiting apply stays responsive to its timeout and to Ctrl-C."""
    try:
        with store._open() as conn:
            if conn.dialect.name == "sqlite":
                conn.connection.driver_connection.execute(  # type: ignore[union-attr]
                    f"PRAGMA busy_timeout={int(busy_ms)}"
                )
            try:
                with conn.begin():
                    if conn.dialect.name == "postgresql":
                        conn.exec_driver_sql(f"SET LOCAL lock_timeout = {int(busy_ms)}")
                    elif conn.dialect.name == "mssql":  # the session's: reset below (pooled)
                        conn.exec_driver_sql(f"SET LOCK_TIMEOUT {int(busy_ms)}")
                    elif conn.dialect.name in ("mysql", "mariadb"):
                        # InnoDB waits 50 s for a row lock by default: a takeover of a lease
                        # whose apply is still in its transaction waited past --lock-timeout
                        # and Ctrl-C. Whole seconds (its unit; 0: no wait, a busy store that
                        # the caller asks again); the session's: reset below.
                        wait_s = int(busy_ms) // 1000
                        conn.exec_driver_sql(f"SET SESSION innodb_lock_wait_timeout = {wait_s}")
                    yield conn
            finally:
                if conn.dialect.name == "mssql":
                    with contextlib.suppress(exc.SQLAlchemyError):
                        conn.exec_driver_sql("SET LOCK_TIMEOUT -1")
                elif conn.dialect.name in ("mysql", "mariadb"):
                    with contextlib.suppress(exc.SQLAlchemyError):
                        conn.exec_driver_sql("SET SESSION innodb_lock_wait_timeout = DEFAULT")
    except exc.IntegrityError:
        raise
    except exc.DBAPIError as error:
        if any(busy in str(error.orig).lower() for busy in _BUSY):
            raise Busy(_scrub(error)) from None
        raise errors.StoreError(f"store {store.location.describe()}: {_scrub(error)}") from None
    except exc.SQLAlchemyError as error:
        raise errors.StoreError(f"store {store.location.describe()}: {_scrub(error)}") from None


def try_locks(
    store: Store,
    scopes: Sequence[str],
    holder: Holder,
    lease_ms: int,
    may_take: Callable[[LockRow, int], bool],
    *,
    busy_ms: int = 200,
) -> tuple[list[str], LockRow | None]:
    """Take the leases on all scopes in one transaction: (lock ids, None), or ([], a holder),
    or ([], None) when another process was busy taking locks (the caller retries).

    may_take(row, now_ms): whether this lease may be taken over (expired, or its holder dead).
    """
    now = now_ms()
    base = {
        "actor": holder.actor[:NAME],
        "host": holder.host[:NAME],
        "pid": holder.pid,
        "ci_job": holder.ci_job[:CI_JOB] if holder.ci_job else None,  # as actor and host: cut, not refused
        "machine": holder.machine,
        "started": holder.started,
        "acquired_ms": now,
        "expires_ms": now + lease_ms,
    }
    try:
        current = _held(store, scopes)
        for row in current:
            if not may_take(row, now):
                return [], row
        with _writing(store, busy_ms) as conn:
            current = _lock_rows(conn, scopes)
            for row in current:
                if not may_take(row, now):
                    return [], row
            for row in current:
                taken = conn.execute(
                    locks.delete().where(locks.c.id == row.id, locks.c.expires_ms == row.expires_ms)
                )
                if taken.rowcount != 1:
                    raise exc.IntegrityError("lease taken over by another process", None, Exception("race"))
            ids = [str(uuid.uuid4()) for _ in scopes]
            for chunk in _chunks(list(zip(ids, scopes, strict=True))):  # not a dict per tenant at once
                conn.execute(locks.insert(), [{**base, "id": i, "scope": scope} for i, scope in chunk])
            return ids, None
    except exc.IntegrityError:
        return [], None  # somebody was faster; the caller retries
    except Busy:  # a lease that may be taken is no holder to name: the store was busy
        now = now_ms()
        live = [row for row in _held(store, scopes) if not may_take(row, now)]
        return [], (live[0] if live else None)


def _held(store: Store, scopes: Sequence[str]) -> list[LockRow]:
    """The current leases on these scopes (a read: it waits for no writer)."""
    with store._connect() as conn:
        return _lock_rows(conn, scopes)


def _lock_rows(conn: Connection, scopes: Sequence[str]) -> list[LockRow]:
    """The lease rows of these scopes, a chunk of scopes per query (in scope order when the
    scopes are sorted, as locks._acquire gives them)."""
    return [
        _lock_row(r)
        for chunk in _chunks(scopes)
        for r in conn.execute(sa.select(locks).where(locks.c.scope.in_(list(chunk))).order_by(locks.c.scope))
    ]


def renew_locks(store: Store, lock_ids: Sequence[str], expires_ms: int, *, busy_ms: int = 200) -> int | None:
    """Extend these leases; how many are still ours, or None when the store was busy."""
    try:
        with _writing(store, busy_ms) as conn:
            return sum(
                conn.execute(
                    locks.update().where(locks.c.id.in_(list(chunk))).values(expires_ms=expires_ms)
                ).rowcount
                for chunk in _chunks(lock_ids)
            )
    except Busy:
        return None


def locks_still_held(conn: Connection, lock_ids: Sequence[str]) -> int:
    """Inside a write transaction: how many of these leases are still ours, locking their rows
    (where the database can) so that none can be taken over until the transaction ends."""
    return sum(
        len(conn.execute(_locked(sa.select(locks.c.id).where(locks.c.id.in_(list(chunk))), locks)).all())
        for chunk in _chunks(lock_ids)
    )


def release_locks(store: Store, lock_ids: Sequence[str], *, busy_ms: int = 10_000) -> int:
    """release_lock_ids, every failure a StoreError (an apply after its commit names the leases
    it could not release: a constraint of the portal's on osr_locks was an internal error)."""
    try:
        return release_lock_ids(store, lock_ids, busy_ms=busy_ms)
    except Busy as error:
        raise errors.StoreError(f"store {store.location.describe()}: {error}") from None


def release_lock_ids(store: Store, lock_ids: Sequence[str], *, busy_ms: int = 10_000) -> int:
    """Release these leases; Busy when another writer holds the store longer than busy_ms,
    StoreError for any other failure (a constraint of the portal's on osr_locks)."""
    try:
        with _writing(store, busy_ms) as conn:
            return sum(
                conn.execute(locks.delete().where(locks.c.id.in_(list(chunk)))).rowcount
                for chunk in _chunks(lock_ids)
            )
    except exc.IntegrityError as error:
        raise errors.StoreError(f"store {store.location.describe()}: {_scrub(error)}") from None


def release_where(
    store: Store,
    *,
    holder: str | None = None,
    shown: Callable[[str], str] | None = None,
    expired_before: int | None = None,
) -> list[LockRow]:
    """Release the leases of a holder (actor) or those expired before a time; the rows released.

    holder: the actor exactly, as the store holds it (cut to NAME characters, as it was
    stored), compared here and not by the database, whose collation may fold case, accents and
    trailing spaces (MariaDB's: `--holder CI-BOT` released ci-bot's leases); when no actor is
    exactly that, the actors shown(actor) gives it (the escaped form `locks` prints)."""
    try:
        return _release_where(store, holder, shown, expired_before)
    except exc.IntegrityError as error:
        raise errors.StoreError(f"store {store.location.describe()}: {_scrub(error)}") from None


def _release_where(
    store: Store, holder: str | None, shown: Callable[[str], str] | None, expired_before: int | None
) -> list[LockRow]:
    with _writing(store, 10_000) as conn:
        query = sa.select(locks)
        if expired_before is not None:
            query = query.where(locks.c.expires_ms < expired_before)
        rows = [_lock_row(r) for r in conn.execute(query.order_by(locks.c.scope))]
        if holder is not None:
            wanted = holder[:NAME]
            exact = [r for r in rows if r.holder.actor == wanted]
            rows = exact or [r for r in rows if shown is not None and shown(r.holder.actor) == holder]
        for chunk in _chunks(rows):
            conn.execute(locks.delete().where(locks.c.id.in_([r.id for r in chunk])))
        return rows


def list_locks(store: Store) -> list[LockRow]:
    with store._connect() as conn:
        return [_lock_row(r) for r in conn.execute(sa.select(locks).order_by(locks.c.scope))]


def set_applied(
    conn: Connection, connection_id: int, applied_fp: str | None, *, name: str | None = None
) -> None:
    """Record what was applied; name: also the name applied (settle)."""
    values: dict[str, Any] = {"applied_fp": applied_fp}
    if name is not None:
        values["applied_name"] = name
    conn.execute(connections.update().where(connections.c.id == connection_id).values(**values))
