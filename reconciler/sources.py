"""The accounting servers behind data connections, reached over ODBC (DESIGN §3).

Lists the companies an integration's catalog query finds on a server and checks that a login
can reach the server and has the read (and, for write-back, write) rights a connection needs.
pyodbc is imported only when a server is actually contacted, so a machine without unixODBC
still runs everything else. A password leaves this module only inside the connection string
handed to the driver: every message, the driver's included, is redacted on its way out.
"""

from __future__ import annotations

import functools
import math
import queue
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import closing, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from reconciler import catalog, drivers, errors, odbc, redaction
from reconciler import spec as spec_mod

# The connection strings are built in reconciler.odbc (no pyodbc there); callers of this module
# (workflow, the companies command, tests) name these through it.
from reconciler.odbc import DRIVER_ENV as DRIVER_ENV
from reconciler.odbc import Family as Family
from reconciler.odbc import SourceSpec as SourceSpec
from reconciler.odbc import connection_string as connection_string
from reconciler.odbc import default_driver as default_driver
from reconciler.odbc import driver_family as driver_family
from reconciler.spec import Authentication
from reconciler.spec import ServerAddress as ServerAddress
from reconciler.spec import parse_server as parse_server

if TYPE_CHECKING:
    import pyodbc

# How long past its own timeout a check may run before it is abandoned: drivers that honour
# their timeouts report first (with a better message); the rest are cut off here.
GRACE_SECONDS = 1.0
_LISTED_IN_MESSAGES = 10

_T = TypeVar("_T")


@dataclass(frozen=True)
class Company:
    id: str
    name: str


@dataclass(frozen=True)
class CheckResult:
    label: str
    problems: tuple[str, ...]  # one line each: what failed and what to check

    @property
    def ok(self) -> bool:
        return not self.problems


class CheckRequest(NamedTuple):
    """What check_many() checks for one connection; a plain 3-tuple works as well."""

    spec: SourceSpec
    companies: Sequence[str]
    write_back: bool


# --- talking to a server -----------------------------------------------------------------


def _pyodbc(label: str) -> Any:
    try:
        import pyodbc
    except ImportError as exc:
        hint = drivers.missing(exc) or (
            f"pyodbc cannot be loaded ({exc}): install unixODBC (apt-get install "
            "unixodbc) and an ODBC driver for SQL Server to reach accounting servers"
        )
        raise errors.SourceError(f"{label}: {hint}") from None
    return pyodbc


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _driver_text(exc: BaseException, spec: SourceSpec) -> str:
    """A driver exception's message, on one line, with every secret masked."""
    args = exc.args
    text = args[1] if len(args) > 1 and isinstance(args[1], str) else str(exc)
    return _one_line(redaction.redact(text, odbc.secret_forms(spec)))


def _sqlstate(exc: BaseException) -> str:
    first = exc.args[0] if exc.args else ""
    return first if isinstance(first, str) and len(first) == 5 else ""


def _who(spec: SourceSpec) -> str:
    return f"login {spec.login}" if spec.authentication == Authentication.SQL else "the Windows account"


def _connect_problem(spec: SourceSpec, driver: str, timeout: int, exc: BaseException, *, took: float) -> str:
    state, detail = _sqlstate(exc), _driver_text(exc, spec)
    lowered = detail.lower()
    where = f"{spec.server} (database {spec.database})"
    if state == "IM002" or "can't open lib" in lowered or "file not found" in lowered:
        advice = f"ODBC driver {driver!r} cannot be loaded: install it or set {DRIVER_ENV}"
    elif any(
        phrase in lowered
        for phrase in ("cannot open database", "unknown database", 'database "', "to database")
    ):
        advice = (
            f"database {spec.database} cannot be opened on {spec.server} by {_who(spec)}: check "
            "the system database name and that the login is a user in it"
        )
    elif state == "28000" or any(
        phrase in lowered for phrase in ("login failed", "authentication failed", "access denied", "role ")
    ):
        advice = (
            f"{_who(spec)} was refused by {where}: check the login name and that its password "
            "secret is current (for Windows authentication: a valid Kerberos ticket)"
        )
    elif state in ("HYT00", "HYT01") or "timeout" in lowered or took >= timeout * 0.9:
        # Drivers word a login timeout differently (MariaDB: "lost connection ... handshake"),
        # so the time the attempt took decides too.
        advice = (
            f"{spec.server} did not answer within {timeout} s: check the server name, instance "
            "or port, and that SQL Server accepts TCP connections from this machine (firewall; "
            "SQL Browser on UDP 1434 for a named instance)"
        )
    else:
        advice = (
            f"cannot connect to {where}: check the server name, instance or port, that SQL "
            "Server accepts TCP connections from this machine, and encrypt / "
            "trust_server_certificate"
        )
    return f"{spec.label}: {advice} (driver: {detail})"


def _abandoned(spec: SourceSpec, timeout: int) -> str:
    return (
        f"{spec.label}: no result from {spec.server} within {timeout} s, so the check was "
        "abandoned: check the server name, instance or port and firewalls; raise the timeout "
        "for a slow server"
    )


class _Session:
    """One open connection with a deadline that every query is held to."""

    def __init__(self, spec: SourceSpec, integration: catalog.Integration, timeout: int) -> None:
        self.spec = spec
        self.integration = integration
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.driver = default_driver()
        self._pyodbc = _pyodbc(spec.label)
        self._conn: pyodbc.Connection | None = None

    def __enter__(self) -> _Session:
        redaction.register(self.spec.password)
        name = self.driver
        # First: a driver the tool cannot speak to is refused as such, installed or not.
        text = connection_string(
            self.spec, driver=name, login_timeout=self.timeout, query_timeout=self.timeout
        )
        if "/" not in name and name not in self._pyodbc.drivers():
            installed = ", ".join(self._pyodbc.drivers()) or "none"
            raise errors.SourceError(
                f"{self.spec.label}: ODBC driver {name!r} is not installed (installed: "
                f"{installed}): install it or set {DRIVER_ENV}"
            )
        problem = None
        started = time.monotonic()
        try:
            self._conn = self._pyodbc.connect(text, timeout=self.timeout, autocommit=True)
        except self._pyodbc.Error as exc:
            took = time.monotonic() - started
            problem = _connect_problem(self.spec, name, self.timeout, exc, took=took)
        except UnicodeError:  # a value that is no text (a flag of bytes that are not UTF-8)
            problem = (
                f"{self.spec.label}: the server, database or login holds characters that are not "
                "valid text (bytes that are not UTF-8?); write them as text"
            )
        if problem is not None:
            # Raised outside the except block so that no __context__ carries the raw driver text.
            raise errors.SourceError(problem)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._conn is not None:
            # Closing a broken connection tells the user nothing new.
            with suppress(self._pyodbc.Error):
                self._conn.close()

    def rows(self, sql: str, params: Sequence[object], what: str) -> tuple[list[str], list[Any]]:
        """Run one query; its column names (lowercased) and rows. Raises SourceError."""
        assert self._conn is not None
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise errors.SourceError(_abandoned(self.spec, self.timeout))
        # psqlODBC refuses this attribute; its connection string carries a statement timeout.
        with suppress(self._pyodbc.Error):
            self._conn.timeout = math.ceil(left)
        problem = ""
        try:
            with closing(self._conn.cursor()) as cursor:
                cursor.execute(sql, *params)
                columns = [str(d[0]).lower() for d in cursor.description or ()]
                return columns, list(cursor.fetchall())
        except self._pyodbc.Error as exc:
            problem = self._query_problem(what, exc)
        except UnicodeError:  # SQL Server's nvarchar holds lone surrogates, which no text is
            problem = (
                f"{self.spec.label}: the {what} on {self.spec.server} returned a value that is not "
                "valid text (a broken character in a company's id or name?); correct it on the server"
            )
        raise errors.SourceError(problem)

    def _query_problem(self, what: str, exc: BaseException) -> str:
        spec, detail = self.spec, _driver_text(exc, self.spec)
        if _sqlstate(exc) in ("HYT00", "HYT01", "57014") or "timeout" in detail.lower():
            advice = f"{spec.server} did not finish the {what} within {self.timeout} s"
        else:
            advice = (
                f"the {what} of integration {spec.integration} failed on {spec.server}: check "
                f"that {spec.database} is the {self.integration.display_name} system database "
                f"and that {_who(spec)} may read it"
            )
        return f"{spec.label}: {advice} (driver: {detail})"


def _integration(spec: SourceSpec) -> catalog.Integration:
    found = catalog.load().get(spec.integration)
    if found is None:
        known = ", ".join(catalog.load().keys())
        raise errors.SourceError(
            f"{spec.label}: integration {spec.integration!r} is not in the catalog (known: {known})"
        )
    return found


def _companies(session: _Session) -> list[Company]:
    query = session.integration.companies
    columns, rows = session.rows(query.query, (), "companies query")
    wanted = (query.id_column.lower(), query.name_column.lower())
    missing = [c for c in wanted if c not in columns]
    if missing:
        raise errors.SourceError(
            f"{session.spec.label}: the companies query of integration "
            f"{session.spec.integration} returned no column {', '.join(missing)} "
            f"(it returned: {', '.join(columns)}): fix the integration catalog"
        )
    id_at, name_at = columns.index(wanted[0]), columns.index(wanted[1])
    # CHAR columns (Dynamics GP's INTERID) come back padded.
    return [
        Company(str(row[id_at]).strip(), "" if row[name_at] is None else str(row[name_at]).strip())
        for row in rows
        if row[id_at] is not None
    ]


def _matches(company: Company, needle: str) -> bool:
    return needle in company.id.casefold() or needle in company.name.casefold()


def list_companies(spec: SourceSpec, *, search: str | None = None, timeout: int = 15) -> list[Company]:
    """The companies on the server, as the portal's wizard lists them; raises SourceError.

    search keeps companies whose id or name contains it, ignoring case.
    """

    def work() -> list[Company] | str:
        try:
            with _Session(spec, _integration(spec), timeout) as session:
                return _companies(session)
        except errors.SourceError as exc:
            return str(exc)

    found = _bounded(work, timeout + GRACE_SECONDS)
    if found is None:
        found = _abandoned(spec, timeout)
    if isinstance(found, str):
        raise errors.SourceError(odbc.scrub(spec, found))
    needle = (search or "").strip().casefold()
    return [c for c in found if _matches(c, needle)] if needle else found


# --- checks --------------------------------------------------------------------------------


def _truth(value: object) -> bool | None:
    """A permission check's answer: None when the database is unknown to the server."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip().lower() in ("1", "t", "true", "y", "yes")
    return bool(value)


def _right(session: _Session, sql: str, database: str, what: str) -> bool | None:
    _, rows = session.rows(sql, [database] * sql.count("?"), what)
    return _truth(rows[0][0]) if rows and len(rows[0]) else None


def _preview(ids: list[str]) -> str:
    return errors.some_of(ids, _LISTED_IN_MESSAGES) or "none"


def _company_problems(
    spec: SourceSpec, declared: Sequence[str], listed: list[Company]
) -> tuple[list[str], list[str]]:
    """(problem messages, declared companies found on the server)."""
    exact = {c.id for c in listed}
    # The server's own Unicode form: the tool reads ids composed (NFC), a server may keep
    # them decomposed (`Å0010` as A and a ring): one id, found under the server's spelling.
    composed = {spec_mod.nfc(c.id): c.id for c in listed}
    folded = {spec_mod.identity(c.id): c.id for c in listed}
    problems: list[str] = []
    present: list[str] = []
    for company in dict.fromkeys(declared):
        if company in exact:
            present.append(company)
        elif spec_mod.nfc(company) in composed:
            present.append(composed[spec_mod.nfc(company)])
        elif spec_mod.identity(company) in folded:
            actual = folded[spec_mod.identity(company)]
            problems.append(
                f"company {company} is named {actual} on {spec.server}: write it as {actual} "
                "in the tenant file"
            )
        else:
            problems.append(
                f"company {company} is not on {spec.server} (the server lists "
                f"{_preview([c.id for c in listed])}): remove it from the tenant file, or check "
                f"that {spec.database} is the right system database"
            )
    return problems, present


def _rights_problems(session: _Session, present: list[str], write_back: bool) -> list[str]:
    spec, integration = session.spec, session.integration
    company_dbs = [integration.company_database_for(c, spec.database) for c in present]
    problems: list[str] = []
    for database in dict.fromkeys([spec.database, *company_dbs]):
        verdict = _right(session, integration.read_check, database, "read permission check")
        if verdict is None:
            problems.append(
                f"database {database} does not exist on {spec.server} or {_who(spec)} cannot "
                "see it: check the name and that the login is a user in it"
            )
        elif not verdict:
            problems.append(
                f"{_who(spec)} has no read rights on database {database}: grant it read access "
                f"(on SQL Server: a user in {database} with db_datareader)"
            )
    if write_back:
        for database in dict.fromkeys(company_dbs):
            verdict = _right(session, integration.write_check, database, "write permission check")
            if verdict is False:
                problems.append(
                    f"{_who(spec)} has no write rights on database {database}, which "
                    "write_back: true needs: grant it write access (on SQL Server: "
                    "db_datawriter) or set write_back: false"
                )
    return problems


def _check(request: CheckRequest, timeout: int) -> CheckResult:
    spec = request.spec
    problems: list[str] = []
    try:
        with _Session(spec, _integration(spec), timeout) as session:
            try:
                listed = _companies(session)
            except errors.SourceError as exc:
                problems.append(str(exc))
                listed = None
            present: list[str] = []
            if listed is not None:
                found, present = _company_problems(spec, request.companies, listed)
                problems += [f"{spec.label}: {p}" for p in found]
            problems += [f"{spec.label}: {p}" for p in _rights_problems(session, present, request.write_back)]
    except errors.SourceError as exc:
        problems.append(str(exc))
    return CheckResult(spec.label, tuple(problems))


def check(spec: SourceSpec, *, companies: Sequence[str], write_back: bool, timeout: int = 15) -> CheckResult:
    """Server answers, login works, companies exist, rights suffice; never raises for those."""
    request = CheckRequest(spec, companies, write_back)
    return check_many([request], max_workers=1, timeout=timeout)[0]


def check_many(
    specs_and_args: Iterable[CheckRequest | tuple[SourceSpec, Sequence[str], bool]],
    *,
    max_workers: int = 8,
    timeout: int = 15,
) -> list[CheckResult]:
    """check() for many sources at once, results in input order.

    At most max_workers checks run at a time; each is abandoned timeout + GRACE_SECONDS after
    it started, so a silent server costs its own slot that long and no longer.
    """
    if max_workers < 1:
        raise ValueError("max_workers must be at least 1")
    requests = [CheckRequest(*item) for item in specs_and_args]
    results: list[CheckResult | None] = [None] * len(requests)
    done: queue.Queue[tuple[int, CheckResult | BaseException]] = queue.Queue()
    waiting = list(reversed(range(len(requests))))
    running: dict[int, float] = {}  # index -> when it is abandoned
    while waiting or running:
        while waiting and len(running) < max_workers:
            index = waiting.pop()
            running[index] = time.monotonic() + timeout + GRACE_SECONDS
            _start(functools.partial(_check, requests[index], timeout), done, index)
        try:
            index, outcome = done.get(timeout=max(0.0, min(running.values()) - time.monotonic()))
        except queue.Empty:
            now = time.monotonic()
            for index in [i for i, until in running.items() if until <= now]:
                del running[index]
                spec = requests[index].spec
                results[index] = _scrubbed(spec, (_abandoned(spec, timeout),))
            continue
        if running.pop(index, None) is None:
            continue  # already abandoned; its late answer is dropped
        if isinstance(outcome, BaseException):
            raise outcome
        results[index] = _scrubbed(requests[index].spec, outcome.problems)
    return [r for r in results if r is not None]


def _scrubbed(spec: SourceSpec, problems: Iterable[str]) -> CheckResult:
    return CheckResult(spec.label, tuple(odbc.scrub(spec, p) for p in problems))


def _start(work: Callable[[], _T], done: queue.Queue[tuple[int, _T | BaseException]], key: int) -> None:
    """Run work on a daemon thread: one stuck inside a driver call must not block exit."""

    def run() -> None:
        try:
            done.put((key, work()))
        except BaseException as exc:  # handed to the waiting caller, who re-raises it
            done.put((key, exc))

    threading.Thread(target=run, name=f"reconciler-source-{key}", daemon=True).start()


def _bounded(work: Callable[[], _T], seconds: float) -> _T | None:
    """work()'s result, or None when it did not finish within seconds (it is left behind)."""
    done: queue.Queue[tuple[int, _T | BaseException]] = queue.Queue()
    _start(work, done, 0)
    try:
        _, outcome = done.get(timeout=seconds)
    except queue.Empty:
        return None
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome
