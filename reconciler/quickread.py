"""The common case of a tenant file, read in one pass over its plain values (issue 15).

desired.load_file reads a tenant file in steps: libyaml composes its nodes, the strict reader
builds Python values from them (strictyaml.build), the pydantic models validate them, the rules
that need the path, the catalog or the whole file check them, and the result is frozen into a
DesiredTenant. The steps exist for the messages: every problem is found and said with
file:line:col. Nearly every file of a fleet is valid and plainly written, and for those the steps
cost more than reading the file does (`make bench`). tenant() reads such a file with
reconciler.plainyaml (regular expressions instead of libyaml's nodes) and walks its values once,
with the same checks (reconciler.checks, the catalog, the secrets settings), into the same
DesiredTenant.

Its contract is one-sided. What it returns is exactly what the steps return for that file.
When anything is unusual (a file plainyaml leaves to libyaml, a key it does not know, a null or
a number where text or a list goes, a value a check refuses, a rule that would speak) it returns
None, and load_file reads the file the long way, which says what is wrong. It never decides that
a file is invalid. tests/test_quickread.py holds it to that with generated files, valid and not,
and tests/test_plainyaml.py holds plainyaml to what libyaml reads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reconciler import checks, declared, plainyaml, spec, strictyaml
from reconciler.declared import DesiredConnection, DesiredTenant, SecretRef

if TYPE_CHECKING:
    from reconciler import catalog as catalog_mod
    from reconciler import secrets

_QUOTED = plainyaml.Quoted
_WORDS = strictyaml.WORDS  # plain scalars the strict reader makes true, false or None
_NULLS = strictyaml.NULLS
_FLAGS = {"true": True, "false": False}

# The keys this reader knows; any other key (a typo, or a field added to the models and not
# here) sends the file the long way. tests/test_quickread.py checks these against the models.
TOP_KEYS = frozenset({"version", "customer", "tenant", "prune", "connections"})
_SIMPLE = tuple((f.key, f.kind is bool) for f in spec.SIMPLE)
CONNECTION_KEYS = frozenset(
    {
        "name",
        "integration",
        "server",
        "database",
        "authentication",
        "login",
        "password",
        "companies",
        "voucher",
        "previous_names",
        "absent",
        "encrypt",
        "trust_server_certificate",
        *(key for key, _ in _SIMPLE),
    }
)
TOMBSTONE_KEYS = frozenset({"name", "absent"})
_VOUCHER_KEYS = frozenset({"provider", "document_center_path"})
# ConnectionSpec.made() takes the top-level stored fields in this order (a new stored field
# fails here, at import, until this reader knows it).
_TOP_ORDER = ("integration", "server", "database", "authentication", "login", *dict(_SIMPLE))
assert spec.TOP_KEYS == _TOP_ORDER, "reconciler.quickread does not know every stored field"


class _Unusual(Exception):
    """Not the common case: the file is read the long way (desired.load_file). Raised as a
    class, a new one each time: one instance raised again would carry every traceback before."""


def tenant(
    raw: bytes,
    path: str,
    digest: str,
    *,
    cat: catalog_mod.Catalog,
    settings: secrets.Settings,
) -> DesiredTenant | None:
    """The tenant a valid, plainly written file declares, exactly as load_file would read it;
    None when the file is anything else (load_file then reads it, and says what is wrong).
    path: the file's, as load_file was given it (the tenant's .path)."""
    document = plainyaml.document(raw)
    if document is None:
        return None
    try:
        return _Reader(cat, settings).tenant(document, path, digest)
    except (_Unusual, ValueError):  # ValueError: a check of reconciler.checks refused a value
        return None


# The values are plainyaml's: a mapping is a dict with plain keys written once, a list a list,
# a plain scalar a str, a quoted one a plainyaml.Quoted.


def _pairs(value: Any, known: frozenset[str]) -> dict[str, Any]:
    """A mapping whose every key is known."""
    if value.__class__ is not dict or not value.keys() <= known:  # a merge key `<<` is not known
        raise _Unusual
    return value


def _text(value: Any, longest: int = strictyaml.MAX_BYTES) -> str:
    """The text of a scalar the strict reader reads as text, or as an integer (the models take
    a number as its text, and a canonical integer's text is what was written), of 1 to longest
    characters (an empty text is valid nowhere this reader accepts it)."""
    kind = value.__class__
    if kind is str:
        if value not in _WORDS and len(value) <= longest:
            return value  # type: ignore[no-any-return]
    elif kind is _QUOTED and 0 < len(value) <= longest:
        return str(value)
    raise _Unusual


def _flag(value: Any, default: bool) -> bool:
    if value is None:
        return default
    if value.__class__ is str:
        flag = _FLAGS.get(value)
        if flag is not None:
            return flag
    raise _Unusual


def _null(value: Any) -> bool:
    """Missing, or written as null."""
    return value is None or (value.__class__ is str and value in _NULLS)


def _items(value: Any) -> list[Any]:
    """A list's items; a missing list is empty (a null is not)."""
    if value is None:
        return []
    if value.__class__ is not list:
        raise _Unusual
    return value


def _name(value: Any, longest: int = checks.MAX_NAME) -> str:
    """A name, composed (NFC) as the models count its length: composing can lengthen it too
    (Devanagari ज़ is two characters composed), which they refuse and this reader left alone."""
    name = checks.check_name(_text(value, longest))
    if len(name) > longest:
        raise _Unusual
    return name


def _optional_text(value: Any) -> str | None:
    if _null(value):
        return None
    return checks.check_text(_text(value, checks.MAX_TEXT))


class _Reader:
    def __init__(self, cat: catalog_mod.Catalog, settings: secrets.Settings) -> None:
        self.cat, self.settings = cat, settings
        self.count = 0  # values (not keys), as the strict reader counts them (strictyaml.MAX_NODES)
        self.names: dict[str, int] = {}  # identity -> index of the entry that has the name

    def tenant(self, root: dict[str, Any], path: str, digest: str) -> DesiredTenant:
        top = _pairs(root, TOP_KEYS)
        self.count = 1 + len(top)
        version = top.get("version")  # `version: 1` (plain), nothing else
        if version.__class__ is not str or version != "1":
            raise _Unusual
        customer, tenant = self.slug(top.get("customer")), self.slug(top.get("tenant"))
        if (customer, tenant) != declared.path_parts(path):
            raise _Unusual
        connections: list[tuple[int, DesiredConnection]] = []
        tombstones: list[str] = []
        entries = _items(top.get("connections"))
        self.count += len(entries)
        for i, entry in enumerate(entries):
            fields = _pairs(entry, CONNECTION_KEYS)
            self.count += len(fields)
            if _flag(fields.get("absent"), False):  # absent: true (anything but a flag: unusual)
                tombstones.append(self.tombstone(i, fields))
            else:
                connections.append((i, self.connection(i, fields)))
        if self.count > strictyaml.MAX_NODES:
            raise _Unusual
        if spec.first_look_alike([*(c.spec.name for _, c in connections), *tombstones]) is not None:
            raise _Unusual  # two names that look the same: desired._rules says which
        self.previous_names(connections, tombstones)
        return DesiredTenant(
            customer,
            tenant,
            path,
            digest,
            _flag(top.get("prune"), False),
            tuple(c for _, c in connections),
            tuple(tombstones),
        )

    @staticmethod
    def slug(value: Any) -> str:
        if value is None:
            raise _Unusual
        text = _text(value, checks.MAX_SLUG)
        if not checks.SLUG_RE.fullmatch(text):
            raise _Unusual
        return text

    def named(self, i: int, value: Any) -> str:
        """The entry's name; no other entry may have it (rules: names are identities)."""
        name = _name(value)  # a missing one (None) is no text: unusual
        key = spec.identity(name)
        if key in self.names:
            raise _Unusual
        self.names[key] = i
        return name

    def tombstone(self, i: int, fields: dict[str, Any]) -> str:
        if not fields.keys() <= TOMBSTONE_KEYS:
            raise _Unusual
        return self.named(i, fields.get("name"))

    def connection(self, i: int, fields: dict[str, Any]) -> DesiredConnection:
        get = fields.get
        name = self.named(i, get("name"))
        if "integration" not in fields or "server" not in fields or "database" not in fields:
            raise _Unusual
        integration_key = _text(fields["integration"])
        integration = self.cat.get(integration_key)
        if integration is None:
            raise _Unusual
        server = checks.check_server(_text(fields["server"]))
        database = checks.check_text(_text(fields["database"], checks.MAX_TEXT))
        authentication = _text(fields["authentication"]) if "authentication" in fields else None
        login = _optional_text(get("login"))
        password = self.password(get("password"))
        if authentication == "sql":
            if login is None or password is None:
                raise _Unusual
        elif authentication != "windows" or login is not None or password is not None:
            raise _Unusual
        top: list[Any] = [integration_key, server, database, authentication, login]
        for key, is_flag in _SIMPLE:
            top.append(_flag(get(key), False) if is_flag else _optional_text(get(key)))
        provider = document_center_path = None
        voucher = get("voucher")
        if voucher is not None and not _null(voucher):
            pair = _pairs(voucher, _VOUCHER_KEYS)
            self.count += len(pair)
            if len(pair) != 2:
                raise _Unusual
            provider = _text(pair["provider"])
            if provider not in integration.voucher_providers:  # none: no voucher step at all
                raise _Unusual
            document_center_path = checks.check_doc_path(_text(pair["document_center_path"]))
        companies = _items(get("companies"))
        previous = _items(get("previous_names"))
        self.count += len(companies) + len(previous)
        return DesiredConnection(
            spec.ConnectionSpec.made(name, self.companies(companies), top, provider, document_center_path),
            password,
            tuple(_name(old) for old in previous),
            _flag(get("encrypt"), True),
            _flag(get("trust_server_certificate"), False),
        )

    @staticmethod
    def companies(values: list[Any]) -> tuple[str, ...]:
        ids = tuple(_name(value, checks.MAX_COMPANY) for value in values)
        if len({spec.identity(i) for i in ids}) != len(ids) or spec.first_look_alike(ids) is not None:
            raise _Unusual  # listed twice, or two that look the same
        return ids

    def password(self, written: Any) -> SecretRef | None:
        if _null(written):
            return None
        if written.__class__ is not dict or len(written) != 1:
            raise _Unusual
        ((kind, target),) = written.items()
        self.count += 1
        value = _text(target)
        if kind == "env" and checks.ENV_NAME.fullmatch(value):
            ref = SecretRef(value, None)
        elif kind == "file":
            ref = SecretRef(None, value)
        else:
            raise _Unusual
        if self.settings.check_reference(ref.env, ref.file) is not None:
            raise _Unusual
        return ref

    def previous_names(self, connections: list[tuple[int, DesiredConnection]], tombstones: list[str]) -> None:
        """desired._rules on previous names: each on one connection, none in use as a name (a
        tombstone's too), none that looks like another name (a tombstone's too)."""
        previous: dict[str, int] = {}
        for i, c in connections:
            for old in c.previous_names:
                key = spec.identity(old)
                if previous.setdefault(key, i) != i or self.names.get(key, i) != i:
                    raise _Unusual
        olds = [old for _, c in connections for old in c.previous_names]
        if (
            olds
            and spec.first_look_alike([*(c.spec.name for _, c in connections), *tombstones, *olds])
            is not None
        ):
            raise _Unusual  # a previous name may look like another's: desired._rules says whether
