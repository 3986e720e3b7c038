"""The checks of single values in tenant files (and fixtures and change windows): pure
functions of the text, each raising a pydantic error with the message a person reads.

The pydantic models of reconciler.desired run them as validators; reconciler.quickread runs the
same functions on the common case of a file without building the models.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from reconciler import spec

if TYPE_CHECKING:
    from pydantic_core import PydanticCustomError

SLUG = r"^[a-z0-9][a-z0-9-]*$"
# The characters of SLUG, as sets: a change window's tenant pattern must be able to match them
# (reconciler.windows).
SLUG_FIRST = "abcdefghijklmnopqrstuvwxyz0123456789"
SLUG_CHARS = SLUG_FIRST + "-"

_SERVER = re.compile(
    r"""^(?:tcp:)?
    (?P<host>[A-Za-z0-9_][A-Za-z0-9._-]*|\[[0-9A-Fa-f:.]+\]|[0-9A-Fa-f]*:[0-9A-Fa-f:.]+|\.|\(local\))
    (?:\\(?P<instance>[A-Za-z0-9_$#-]{1,16}))?
    (?:,(?P<port>[0-9]{1,5}))?$""",
    re.VERBOSE,
)
DOC_PATH = re.compile(
    r'^(?:\\\\[^\\/:*?"<>|]+\\[^\\/:*?"<>|]+(?:\\[^\\/:*?"<>|]*)*|[A-Za-z]:\\[^/:*?"<>|]*)$'
)


# The longest value the store's columns hold (reconciler.store), so that a file valid here is
# valid on every database and not only on SQLite, which ignores column lengths.
MAX_SERVER = 200
MAX_SLUG = 200
MAX_DOC_PATH = 400


def fail(kind: str, message: str, **context: Any) -> PydanticCustomError:
    """A validation error; context `at_key` points the message at that key of the mapping.
    (pydantic_core is imported here, on the first value refused: a valid fleet never needs it.)"""
    from pydantic_core import PydanticCustomError

    return PydanticCustomError(kind, message, {k: v for k, v in context.items() if v} or None)


def refusal(check: Callable[[str], str], value: str) -> str | None:
    """What check says of value when it refuses it (a command-line flag held to a tenant file's
    rule), or None when it takes it."""
    from pydantic_core import PydanticCustomError

    try:
        check(value)
    except PydanticCustomError as exc:
        return exc.message()
    return None


# Values found valid, remembered (a fleet repeats company ids and servers across its files):
# each check is a pure function of the text, and only a value that passed is remembered, so
# every problem is still found and worded by the check itself. Bounded: cleared when full.
_MAX_REMEMBERED = 20_000
_VALID_NAMES: dict[str, str] = {}
_VALID_SERVERS: set[str] = set()


def check_name(value: str) -> str:
    """A name is an identity (spec.identity): only what a person sees, nothing invisible."""
    known = _VALID_NAMES.get(value)
    if known is not None:
        return known
    problem = spec.name_problem(value)
    if problem:
        raise fail("name", problem)
    if len(_VALID_NAMES) >= _MAX_REMEMBERED:
        _VALID_NAMES.clear()
    _VALID_NAMES[value] = composed = spec.nfc(value)
    return composed


# What a text must hold beyond printable characters: one that is not a space (a login of spaces
# only is no login); the tenant schema's pattern says the same to editors.
NOT_BLANK = r"[^ ]"


def check_text(value: str) -> str:
    if not value.isprintable():
        raise fail(
            "text",
            "only printable characters: no tabs, line breaks or control "
            "characters (a double-quoted escape such as \\t?)",
        )
    if value.isspace() or not value:  # printable: the plain space is the only white space left
        what = "is only spaces" if value else "is empty"
        # `what`: reconciler.validation says it with what to write for the key (a value, here)
        raise fail("blank", f"{what}; write a value", what=what)
    return value


def not_bool(value: Any) -> Any:
    # Literal[1] alone takes true (a bool is an int in Python): a version is a number.
    if isinstance(value, bool):
        raise fail("version", f"write `version: 1`, not the boolean {str(value).lower()}")
    return value


def check_slug(value: str) -> str:
    if len(value) > MAX_SLUG:
        raise fail("slug", f"is {len(value)} characters; the store holds at most {MAX_SLUG}")
    return value


def check_server(value: str) -> str:
    if value in _VALID_SERVERS:
        return value
    match = _SERVER.fullmatch(value)
    host, colon, port = value.rpartition(":")
    if colon and port.isdigit() and ":" not in host and _SERVER.fullmatch(host):
        raise fail("server", f"write host,port with a comma, as SQL Server does: {host},{port}")
    if match and match["port"] and not 0 < int(match["port"]) < 65536:
        raise fail("server", f"port {match['port']} is out of range; write a port from 1 to 65535")
    if not match:
        raise fail(
            "server",
            "write the server as host, host\\instance, host,port or an IP "
            "address (e.g. SQL01\\VISMA or sql01.corp.local,1433)",
        )
    if len(value) > MAX_SERVER:
        raise fail("server", f"is {len(value)} characters; the store holds at most {MAX_SERVER}")
    try:  # the one parser the source checks connect with: what validates here, connects there
        spec.parse_server(value)
    except ValueError as exc:
        raise fail("server", "a SQL Server driver cannot use it: " + str(exc).split(": ", 1)[-1]) from None
    if len(_VALID_SERVERS) >= _MAX_REMEMBERED:
        _VALID_SERVERS.clear()
    _VALID_SERVERS.add(value)
    return value


def check_doc_path(value: str) -> str:
    if not DOC_PATH.fullmatch(value) or not value.isprintable():
        raise fail(
            "document_center_path",
            "write a UNC path like \\\\fs01\\vdc\\vouchers or a drive path like D:\\Vouchers",
        )
    if len(value) > MAX_DOC_PATH:
        raise fail(
            "document_center_path", f"is {len(value)} characters; the store holds at most {MAX_DOC_PATH}"
        )
    return value


SLUG_RE = re.compile(SLUG)
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# The lengths of Name, CompanyId and Text (reconciler.desired), counted as written.
MAX_NAME = 100
MAX_COMPANY = 128
MAX_TEXT = 128


def connection_kind(value: Any) -> str:
    """ "tombstone" or "connection": what a tenant file's entry is meant to be."""
    # Any `absent` but false is meant as a tombstone (`absent: yes` is an error there, not a
    # connection missing its server).
    if isinstance(value, dict) and value.get("absent", False) is not False:
        return "tombstone"
    return "connection"
