"""The common case of a tenant file, read straight from its node tree (issue 15).

desired.load_file reads a tenant file in steps: the strict reader builds Python values from
libyaml's nodes (strictyaml.build), the pydantic models validate them, the rules that need the
path, the catalog or the whole file check them, and the result is frozen into a DesiredTenant.
The steps exist for the messages: every problem is found and said with file:line:col. Nearly
every file of a fleet is valid and plainly written, and for those the steps cost more than
reading the file does (`make bench`). tenant() reads such a file in one walk over its nodes,
with the same checks (reconciler.checks, the catalog, the secrets settings), into the same
DesiredTenant.

Its contract is one-sided. What it returns is exactly what the steps return for that file.
When anything is unusual (a key it does not know, a tag, a null or a number where text or a
list goes, a value a check refuses, a rule that would speak) it returns None, and load_file
reads the file the long way, which says what is wrong. It never decides that a file is invalid.
tests/test_quickread.py holds it to that with generated files, valid and not.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from reconciler import checks, spec, strictyaml
from reconciler.declared import DesiredConnection, DesiredTenant, SecretRef

if TYPE_CHECKING:
    from reconciler import catalog as catalog_mod
    from reconciler import secrets

_SCALAR, _MAPPING, _SEQUENCE = yaml.ScalarNode, yaml.MappingNode, yaml.SequenceNode
_MAP, _SEQ = strictyaml.MAP_TAG, strictyaml.SEQ_TAG
_PLAIN, _STR = strictyaml.PLAIN_TAG, strictyaml.STR_TAG
_KEY_TAGS = frozenset({_PLAIN, _STR})
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
    root: yaml.Node,
    path: Path,
    digest: str,
    *,
    cat: catalog_mod.Catalog,
    settings: secrets.Settings,
) -> DesiredTenant | None:
    """The tenant a valid, plainly written file declares, exactly as load_file would read it;
    None when the file is anything else (load_file then reads it, and says what is wrong)."""
    try:
        return _Reader(cat, settings).tenant(root, path, digest)
    except (_Unusual, ValueError):  # ValueError: a check of reconciler.checks refused a value
        return None


def _pairs(node: yaml.Node, known: frozenset[str]) -> dict[str, yaml.Node]:
    """A mapping's value nodes by key, when every key is known text written once."""
    if node.__class__ is not _MAPPING or node.tag != _MAP:
        raise _Unusual
    pairs = node.value
    try:  # a list or mapping as a key (its value a list) is not hashable
        found = {key.value: value for key, value in pairs}
    except TypeError:
        raise _Unusual from None
    # Every key known (a merge key `<<` is not) and written once, each plain or quoted text.
    if len(found) != len(pairs) or not found.keys() <= known or {k.tag for k, _ in pairs} - _KEY_TAGS:
        raise _Unusual
    return found


def _text(node: yaml.Node, longest: int = strictyaml.MAX_BYTES) -> str:
    """The text of a scalar the strict reader reads as text, or as an integer (the models take
    a number as its text, and a canonical integer's text is what was written), of 1 to longest
    characters (an empty text is valid nowhere this reader accepts it)."""
    if node.__class__ is _SCALAR:
        tag, text = node.tag, node.value
        if ((tag == _PLAIN and text not in _WORDS) or tag == _STR) and 0 < len(text) <= longest:
            return text  # type: ignore[no-any-return]
    raise _Unusual


def _flag(node: yaml.Node | None, default: bool) -> bool:
    if node is None:
        return default
    if node.__class__ is _SCALAR and node.tag == _PLAIN:
        flag = _FLAGS.get(node.value)
        if flag is not None:
            return flag
    raise _Unusual


def _null(node: yaml.Node | None) -> bool:
    """Missing, or written as null."""
    return node is None or (node.__class__ is _SCALAR and node.tag == _PLAIN and node.value in _NULLS)


def _items(node: yaml.Node | None) -> list[yaml.Node]:
    """A list's items; a missing list is empty (a null is not)."""
    if node is None:
        return []
    if node.__class__ is not _SEQUENCE or node.tag != _SEQ:
        raise _Unusual
    return node.value  # type: ignore[no-any-return]


def _name(node: yaml.Node) -> str:
    return checks.check_name(_text(node, checks.MAX_NAME))


def _optional_text(node: yaml.Node | None) -> str | None:
    if node is None or _null(node):
        return None
    return checks.check_text(_text(node, checks.MAX_TEXT))


class _Reader:
    def __init__(self, cat: catalog_mod.Catalog, settings: secrets.Settings) -> None:
        self.cat, self.settings = cat, settings
        self.count = 0  # values (not keys), as the strict reader counts them (strictyaml.MAX_NODES)
        self.names: dict[str, int] = {}  # identity -> index of the entry that has the name

    def tenant(self, root: yaml.Node, path: Path, digest: str) -> DesiredTenant:
        top = _pairs(root, TOP_KEYS)
        self.count = 1 + len(top)
        version = top.get("version")  # `version: 1`, nothing else
        if version is None or version.__class__ is not _SCALAR or version.tag != _PLAIN:
            raise _Unusual
        if version.value != "1" or version.style:
            raise _Unusual
        customer, tenant = self.slug(top.get("customer")), self.slug(top.get("tenant"))
        if customer != path.parent.name or tenant != path.stem:
            raise _Unusual
        connections: list[tuple[int, DesiredConnection]] = []
        tombstones: list[str] = []
        entries = _items(top.get("connections"))
        self.count += len(entries)
        for i, node in enumerate(entries):
            fields = _pairs(node, CONNECTION_KEYS)
            self.count += len(fields)
            if _flag(fields.get("absent"), False):  # absent: true (anything but a flag: unusual)
                tombstones.append(self.tombstone(i, fields))
            else:
                connections.append((i, self.connection(i, fields)))
        if self.count > strictyaml.MAX_NODES:
            raise _Unusual
        self.previous_names(connections)
        return DesiredTenant(
            customer,
            tenant,
            str(path),
            digest,
            _flag(top.get("prune"), False),
            tuple(c for _, c in connections),
            tuple(tombstones),
        )

    @staticmethod
    def slug(node: yaml.Node | None) -> str:
        if node is None:
            raise _Unusual
        text = _text(node, checks.MAX_SLUG)
        if not checks.SLUG_RE.fullmatch(text):
            raise _Unusual
        return text

    def named(self, i: int, node: yaml.Node | None) -> str:
        """The entry's name; no other entry may have it (rules: names are identities)."""
        if node is None:
            raise _Unusual
        written = _text(node, checks.MAX_NAME)
        key = spec.identity(written)
        if key in self.names:
            raise _Unusual
        self.names[key] = i
        return checks.check_name(written)

    def tombstone(self, i: int, fields: dict[str, yaml.Node]) -> str:
        if not fields.keys() <= TOMBSTONE_KEYS:
            raise _Unusual
        return self.named(i, fields.get("name"))

    def connection(self, i: int, fields: dict[str, yaml.Node]) -> DesiredConnection:
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
            tuple(_name(node) for node in previous),
            _flag(get("encrypt"), True),
            _flag(get("trust_server_certificate"), False),
        )

    @staticmethod
    def companies(nodes: list[yaml.Node]) -> tuple[str, ...]:
        ids = tuple(checks.check_name(_text(node, checks.MAX_COMPANY)) for node in nodes)
        if len({spec.identity(i) for i in ids}) != len(ids):  # listed twice
            raise _Unusual
        return ids

    def password(self, node: yaml.Node | None) -> SecretRef | None:
        if node is None or _null(node):
            return None
        if node.__class__ is not _MAPPING or node.tag != _MAP or len(node.value) != 1:
            raise _Unusual
        ((key_node, value_node),) = node.value
        self.count += 1
        if key_node.__class__ is not _SCALAR or key_node.tag not in _KEY_TAGS:
            raise _Unusual
        kind, value = key_node.value, _text(value_node)
        if kind == "env" and checks.ENV_NAME.fullmatch(value):
            ref = SecretRef(value, None)
        elif kind == "file":
            ref = SecretRef(None, value)
        else:
            raise _Unusual
        if self.settings.check_reference(ref.env, ref.file) is not None:
            raise _Unusual
        return ref

    def previous_names(self, connections: list[tuple[int, DesiredConnection]]) -> None:
        """desired._rules on previous names: each on one connection, none in use as a name."""
        previous: dict[str, int] = {}
        for i, c in connections:
            for old in c.previous_names:
                key = spec.identity(old)
                if previous.setdefault(key, i) != i or self.names.get(key, i) != i:
                    raise _Unusual
