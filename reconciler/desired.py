"""Desired state: find tenant files, read them strictly, validate them into frozen specs.

A valid, plainly written file (nearly every file of a fleet) is read the quick way
(reconciler.quickread). Any other is read the long way: values built (strictyaml.build), the
pydantic models of reconciler.tenantfile at the boundary, the rules below, located problems
saying what to write. Everything after reading works on the frozen dataclasses of
reconciler.declared.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler import checks, declared, errors, lazy, quickread, secrets, spec, strictyaml, validation
from reconciler.declared import DesiredConnection, DesiredTenant, SecretRef

if TYPE_CHECKING:
    from reconciler import catalog as catalog_mod
    from reconciler import tenantfile
else:  # the long way only: a valid fleet never builds the models (nor imports pydantic)
    tenantfile = lazy.module("reconciler.tenantfile")

MAX_PROBLEMS = 200


# ---------------------------------------------------------------------------------------------
# Discovery


def discover(paths: Sequence[str]) -> list[str]:
    """Tenant files under the given files or directories, sorted by their parts (as Paths sort);
    missing paths are errors.

    Paths as strings: a Path of every file of a fleet costs about 0.4 KB each, and interns its
    parts, which grows the interpreter's table of interned strings for good (0.3 KB a file).

    A file named by two PATHs (`tenants/acme ../repo/tenants/acme`) is read once, named as the
    first PATH names it: read twice, its tenant was declared by two files. Its folders are
    resolved, not the file: a link beside its target is another file, as it always was.
    """
    found: dict[str, str] = {}  # where the file is, its folders resolved -> its name here
    walked: set[str] = set()  # folders given, resolved
    places = declared.Places()
    problems: list[errors.Problem] = []
    for raw in paths:
        path = Path(raw)
        if not raw:  # Path("") is the current folder: an unset variable in a script, most often
            problems.append(
                errors.Problem(
                    "PATH", 0, 0, "is empty; give a tenant file or folder, or leave PATH out for tenants/"
                )
            )
            continue
        if path.is_dir() and path.resolve().name != "tenants" and (path / "tenants").is_dir():
            # the repository's root: every file in it (tests, examples, .venv) was told to move
            problems.append(
                errors.Problem(
                    raw,
                    0,
                    0,
                    f"holds tenants/; give {os.path.join(raw, 'tenants')} as PATH, or leave PATH out",
                )
            )
            continue
        if path.is_dir():
            real = os.path.realpath(raw)
            if real in walked:  # its files are found already
                continue
            walked.add(real)
            # `.` or `./acme`: its files named as a file PATH is (./x.yaml is x.yaml), else a
            # file given beside it read as a second file declaring the tenant
            normal = os.path.normpath(raw)
            renamed = normal == "." or normal != raw.rstrip(os.sep)
            unreadable: list[OSError] = []
            named = list(_named_yaml(path, unreadable))
            problems += [
                errors.Problem(
                    str(error.filename),
                    0,
                    0,
                    f"is a folder that cannot be read ({error.strerror or type(error).__name__}): its "
                    "tenant files would not be read; give the user this runs read and search "
                    "permission on it",
                )
                for error in unreadable
            ]
            expected = _tenant_depth(path, [depth for _, depth in named if depth > 0])
            for candidate, depth in named:
                if depth == _MISNAMED:
                    problems.append(errors.Problem(candidate, 0, 0, _misnamed_problem(candidate)))
                    continue
                if depth == _LINKED:
                    problems.append(
                        errors.Problem(
                            candidate,
                            0,
                            0,
                            "is a link to a folder, which is not followed: its tenant files would "
                            "not be read; move the folder in instead of linking it",
                        )
                    )
                    continue
                if depth != expected:
                    problems.append(
                        errors.at(
                            str(candidate),
                            1,
                            1,
                            "tenant files live at tenants/<customer>/<tenant>.yaml; move this file",
                        )
                    )
                    continue
                problem = _not_a_tenant_file(candidate, path)
                if problem:
                    problems.append(errors.Problem(candidate, 0, 0, problem))
                    continue
                named_as = os.path.normpath(candidate) if renamed else candidate
                found.setdefault(places.of(named_as), named_as)
        elif path.is_file() or path.exists():
            problem = (
                _misnamed_problem(raw)
                if declared.misnamed(path.name)
                else _not_a_tenant_file(raw, Path.cwd())
            )
            if problem:
                problems.append(errors.Problem(raw, 0, 0, problem))
                continue
            named_as = os.path.normpath(raw)  # x.yaml and ./t/../x.yaml: one file, named once
            found.setdefault(places.of(named_as), named_as)
        else:
            missing = (
                "is a broken link or a link loop" if os.path.lexists(raw) else "no such file or directory"
            )
            problems.append(
                errors.Problem(raw, 0, 0, f"{missing}; give a tenant file or a folder such as tenants/")
            )
    if problems:
        raise errors.InputError.of(problems)
    return sorted(found.values(), key=lambda f: f.split(os.sep))


_LINKED = -1  # _named_yaml's depth of a linked folder
_MISNAMED = -2  # _named_yaml's depth of a file named .YAML, .Yml, ...


def _misnamed_problem(path: str) -> str:
    # Refused, not skipped: its tenant would be left drifting, or pruned as if none declared it.
    stem, _, suffix = os.path.basename(path).rpartition(".")
    return (
        f"is named .{suffix}, and tenant files end in .yaml in lowercase: it would never be read; "
        f"rename it to {stem}.yaml"
    )


def _tenant_depth(folder: Path, depths: Sequence[int]) -> int:
    """How deep tenant files lie under a folder given as PATH: 2 under a tree of customer
    folders (tenants/, or a tree import wrote elsewhere: `import imported`, then `plan
    imported`), 1 in a customer's folder. A folder of another name is a tree when more of its
    files lie two deep than directly in it."""
    if folder.name == "tenants" or folder.resolve().name == "tenants":  # `.` in tenants/ too
        return 2
    # Files at both depths: the stray ones are the fewer (a notes.yaml beside an imported
    # tree's customer folders blamed every tenant file, and not itself)
    return 2 if depths.count(2) > depths.count(1) else 1


def _named_yaml(folder: Path, unreadable: list[OSError]) -> Iterator[tuple[str, int]]:
    """Every entry under folder named *.yaml or *.yml (file, link or folder: the caller says
    what is wrong with any but a file), with its depth below folder (1: directly in it); every
    linked folder, of any name, with the depth _LINKED; every file named so in another case
    (x.YAML) with the depth _MISNAMED.

    One walk that, like Path.rglob, does not enter linked folders: two rglob calls walked the
    tree twice and made a Path of every entry (a one-tenant plan walks the whole fleet). A
    linked folder or a misnamed file is reported, never skipped in silence (validate said OK
    without reading it); each folder it could not list (no read or search permission) is added
    to unreadable: its tenants were skipped in silence, validate said all was well without them."""
    for parent, folders, files in os.walk(folder, onerror=unreadable.append):
        depth = None
        for name in (*files, *folders):
            if name.endswith(declared.SUFFIXES):
                if depth is None:
                    depth = len(Path(parent).relative_to(folder).parts) + 1
                yield os.path.join(parent, name), depth
        for name in files:
            if declared.misnamed(name):
                yield os.path.join(parent, name), _MISNAMED
        for name in folders:
            linked = os.path.join(parent, name)
            if os.path.islink(linked) and not name.endswith(declared.SUFFIXES):
                yield linked, _LINKED


def _not_a_tenant_file(found: str, within: Path) -> str | None:
    """Why a path found as a tenant file cannot be read as one, or None.

    A link may point only inside the folder it was found in (a link to /etc/passwd would have
    its values echoed in error messages); a pipe or device would block the read forever.
    """
    try:  # nearly always a regular file, not a link: then nothing to resolve (one lstat)
        if stat.S_ISREG(os.lstat(found).st_mode):
            return None
    except OSError:
        pass  # the general rule below says why
    path = Path(found)
    try:
        target = path.resolve(strict=True)
        mode = target.stat().st_mode
    except (OSError, RuntimeError):
        return "cannot be read (a broken link or a link loop?); give a YAML file"
    if path.is_symlink() and not target.is_relative_to(within.resolve()):
        return (
            f"is a link to a file outside {within}; tenant files are read only inside "
            "the folder given (copy the file in instead)"
        )
    if stat.S_ISDIR(mode):
        return "is a folder named like a tenant file; rename it (a tenant file is tenants/C/T.yaml)"
    if not stat.S_ISREG(mode):
        return "is not a regular file (a pipe, device or socket?); give a YAML file"
    return None


def _as_text(value: Any) -> str | None:
    """value when it is text, or a number as the models read it (`name: 2024` is the name
    "2024"); else None (validation says what is wrong)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value if isinstance(value, str) else None


def _text_at(mapping: Any, key: str) -> str | None:
    """_as_text(mapping[key]) when mapping is a mapping."""
    return _as_text(mapping.get(key)) if isinstance(mapping, dict) else None


def _rules(
    label: str, doc: strictyaml.Document, path: Path, cat: catalog_mod.Catalog, settings: secrets.Settings
) -> list[errors.Problem]:
    """Rules that need the path, the catalog or the whole file.

    They read the document as written, wherever it holds the right kind of value, so that one
    wrong value elsewhere does not hide the path, catalog and secret problems of the rest.
    """
    problems: list[errors.Problem] = []

    def add(loc: tuple[Any, ...], message: str) -> None:
        problems.append(validation.at(label, doc, loc, message))

    data = doc.data if isinstance(doc.data, dict) else {}
    folder, stem, suffix = path.parent.name, path.stem, path.suffix
    customer, tenant = _text_at(data, "customer"), _text_at(data, "tenant")
    if (
        customer
        and checks.SLUG_RE.fullmatch(customer)
        and len(customer) <= checks.MAX_SLUG
        and customer != folder
    ):
        add(
            ("customer",),
            f"is {validation.shown(customer)} but the file is in folder {folder!r}; "
            + (
                f"write customer: {folder}, or move the file to tenants/{customer}/"
                if checks.SLUG_RE.fullmatch(folder)
                else f"tenant files live at tenants/<customer>/<tenant>.yaml: move it to tenants/{customer}/"
            ),
        )
    if tenant and checks.SLUG_RE.fullmatch(tenant) and len(tenant) <= checks.MAX_SLUG and tenant != stem:
        add(
            ("tenant",),
            f"is {validation.shown(tenant)} but the file is named {stem}{suffix}; "
            + (
                f"write tenant: {stem}, or rename the file to {tenant}{suffix}"
                if checks.SLUG_RE.fullmatch(stem)
                else f"rename the file to {tenant}{suffix}"
            ),
        )

    raw = data.get("connections")
    entries = [
        (i, item) for i, item in enumerate(raw if isinstance(raw, list) else []) if isinstance(item, dict)
    ]
    names: dict[str, int] = {}
    written: list[tuple[int, str]] = []
    for i, item in entries:
        name = _text_at(item, "name")
        if name is None:
            continue
        key = spec.identity(name)
        if key in names:
            add(
                ("connections", i, "name"),
                f"{validation.shown(name)} is already the name of "
                f"connections[{names[key]}] (names are compared ignoring case and Unicode "
                "form); rename one",
            )
        names.setdefault(key, i)
        written.append((i, name))
    for earlier, later in spec.look_alikes([name for _, name in written]):
        (j, first), (i, name) = written[earlier], written[later]
        add(("connections", i, "name"), validation.looks_like(name, first, f"connections[{j}]"))
    connections = [(i, item) for i, item in entries if checks.connection_kind(item) == "connection"]
    previous: dict[str, int] = {}
    for i, item in connections:
        olds = item.get("previous_names")
        for j, old in enumerate(olds if isinstance(olds, list) else []):
            text = _as_text(old)
            if text is None:
                continue
            key = spec.identity(text)
            if key in previous and previous[key] != i:
                add(
                    ("connections", i, "previous_names", j),
                    f"{validation.shown(text)} is also a previous name of connections[{previous[key]}]; "
                    "keep it on one connection",
                )
            previous.setdefault(key, i)
            other = names.get(key)
            if other is not None and other != i:
                add(
                    ("connections", i, "previous_names", j),
                    f"{validation.shown(text)} is the name of connections[{other}]; a previous name must "
                    "not be in use: remove it here",
                )
    _previous_look_alikes(written, connections, add)
    for i, item in connections:
        _entry_rules(item, ("connections", i), cat, settings, add)
    return problems


def _previous_look_alikes(
    written: list[tuple[int, str]],
    connections: list[tuple[int, Any]],
    add: Callable[[tuple[Any, ...], str], None],
) -> None:
    """A previous name that looks the same as another entry's name or previous name and is
    another name (DESIGN §8): a reader sees one name on two connections, and which one the
    portal's connection goes to depends on a character nobody sees."""
    marked: list[tuple[int, tuple[Any, ...], str]] = [(i, ("connections", i, "name"), n) for i, n in written]
    for i, item in connections:
        olds = item.get("previous_names")
        for j, old in enumerate(olds if isinstance(olds, list) else []):
            text = _as_text(old)
            if text is not None:
                marked.append((i, ("connections", i, "previous_names", j), text))
    if all(text.isascii() for *_, text in marked):
        return
    # By look, then by what never looks alike within it (spec.looks_alike: one identity, or
    # plain names with the same characters beyond ASCII in the same places: spec.foreign): an
    # entry looks like every entry of another group of its look and none of its own. Each group
    # keeps, of each kind (names, previous names), the first two entries of different
    # connections: enough to find one of another connection. Every earlier entry of the look
    # was asked before (4,000 connections with one previous name: 8 s; 2,000 previous names of
    # one look: 72 s).
    seen: dict[spec.Key, dict[object, dict[str, list[tuple[int, tuple[Any, ...], str]]]]] = {}
    letters = spec.LetterIndex()  # and the entries' bits (their numbers in marked) by what they are
    kind_bits: dict[str, int] = {}
    apart_bits: dict[object, int] = {}
    connection_bits: dict[int, int] = {}
    for number, (i, loc, text) in enumerate(marked):
        kind = loc[2]
        group = spec.apart(text)
        wanted = ("previous_names",) if kind == "name" else ("name", "previous_names")
        wanted_bits = sum(kind_bits.get(k, 0) for k in wanted)
        asked, kept_under = spec.look_keys(text)  # a key it asks finds the entries that look like it
        match = next(
            (
                entry
                for look in asked
                for other, kept in seen.get(look, {}).items()
                if other != group
                for entry_kind in wanted
                for entry in kept.get(entry_kind, ())
                if entry[0] != i
            ),
            None,
        )
        allowed = wanted_bits & ~apart_bits.get(group, 0) & ~connection_bits.get(i, 0)
        if match is None and allowed:
            # Alike letter by letter (`NORDIC Invest` and `Nordic INVЕST`), which no key says
            found = letters.alike(text, allowed)
            if found:
                match = marked[spec.lowest(found)]
        letters.add(text, number)  # indexed by letter only once asked about
        bit = 1 << number
        kind_bits[kind] = kind_bits.get(kind, 0) | bit
        apart_bits[group] = apart_bits.get(group, 0) | bit
        connection_bits[i] = connection_bits.get(i, 0) | bit
        if match is not None:
            j, first_loc, first = match
            what = "the name" if first_loc[2] == "name" else "a previous name"
            add(
                loc,
                f"{validation.shown(text)} looks the same as {validation.shown(first)}, {what} of "
                f"connections[{j}], and is another name ({spec.look_alike_difference(text, first)}); "
                "write the previous name as the portal has it and rename one so that they look different",
            )
        for look in kept_under:
            kept = seen.setdefault(look, {}).setdefault(group, {}).setdefault(kind, [])
            if len(kept) < 2 and all(j != i for j, *_ in kept):
                kept.append((i, loc, text))


def _entry_rules(
    item: dict[Any, Any],
    loc: tuple[Any, ...],
    cat: catalog_mod.Catalog,
    settings: secrets.Settings,
    add: Callable[[tuple[Any, ...], str], None],
) -> None:
    """The catalog and secret rules of one connection."""
    key = _text_at(item, "integration")
    integration = cat.get(key) if key is not None else None
    if key is not None and integration is None:
        close = difflib.get_close_matches(key, cat.keys(), n=1)
        hint = f"did you mean {close[0]!r}?" if close else "write one of: " + ", ".join(cat.keys())
        add((*loc, "integration"), f"unknown integration {validation.shown(key)}; {hint}")
    voucher = item.get("voucher")
    if integration is not None and isinstance(voucher, dict):  # else: the model says its type
        provider = _text_at(voucher, "provider")
        if not integration.supports_vouchers:
            add(
                (*loc, "voucher"), f"{integration.display_name} has no voucher step; remove the voucher block"
            )
        elif provider is not None and provider not in integration.voucher_providers:
            add(
                (*loc, "voucher", "provider"),
                f"unknown provider {validation.shown(provider)} for {integration.display_name}; "
                "write one of: " + ", ".join(integration.voucher_providers),
            )
    password = item.get("password")
    if isinstance(password, dict) and len(password) == 1:
        env, file = _text_at(password, "env"), _text_at(password, "file")
        if (env is not None and checks.ENV_NAME.fullmatch(env)) or file:
            message = settings.check_reference(env, file)
            if message:
                add((*loc, "password"), f"the password reference is refused: {message}")


def _freeze(model: tenantfile.TenantFileModel, label: str, digest: str) -> DesiredTenant:
    connections = []
    tombstones = []
    for entry in model.connections:
        if isinstance(entry, tenantfile.TombstoneModel):
            tombstones.append(entry.name)
            continue
        connections.append(
            DesiredConnection(
                spec=spec.ConnectionSpec.from_attributes(entry),
                password=SecretRef(entry.password.env, entry.password.file) if entry.password else None,
                previous_names=tuple(entry.previous_names),
                encrypt=entry.encrypt,
                trust_server_certificate=entry.trust_server_certificate,
            )
        )
    return DesiredTenant(
        model.customer, model.tenant, label, digest, model.prune, tuple(connections), tuple(tombstones)
    )


def load_file(
    path: Path | str, *, cat: catalog_mod.Catalog, settings: secrets.Settings, raw: bytes | None = None
) -> DesiredTenant:
    """Read and validate one tenant file; raise InputError listing every problem found.

    The tenant's .path is the very string given (or the Path's own): a caller that keeps its
    paths as strings keeps no second copy of each."""
    label = os.fspath(path)
    if raw is None:
        raw = strictyaml.read_bytes(label)
    digest = hashlib.sha256(raw).hexdigest()
    # Nearly every file is valid and plainly written: read in one pass over its plain values,
    # exactly as below. Anything else (None) is read below, which finds and words every problem.
    tenant = quickread.tenant(raw, label, digest, cat=cat, settings=settings)
    if tenant is not None:
        return tenant
    path = Path(path)
    root = strictyaml.compose(label, raw)
    doc = strictyaml.build(label, root)
    if not isinstance(doc.data, dict):
        written = "a list" if isinstance(doc.data, list) else "a single value"
        raise errors.InputError.of(
            [
                errors.at(
                    label,
                    *strictyaml.position(doc.root, ()),
                    f"the file holds {written}; a tenant file is a mapping starting with `version: 1`",
                )
            ]
        )
    model, problems = tenantfile.validate(label, doc, path)
    problems += _rules(label, doc, path, cat, settings)
    if problems or model is None:
        raise errors.InputError.of(validation.scrub(problems, validation.literal_passwords(doc.data)))
    return _freeze(model, label, digest)


def bounded(problems: Sequence[errors.Problem]) -> errors.InputError:
    """The problems of many files as one error: sorted, at most MAX_PROBLEMS shown."""
    ordered = sorted(problems)
    if len(ordered) > MAX_PROBLEMS:
        rest = len(ordered) - MAX_PROBLEMS
        ordered = [
            *ordered[:MAX_PROBLEMS],
            errors.Problem("", 0, 0, f"... and {rest} more problems, not shown; fix these and run again"),
        ]
    return errors.InputError(f"{len(problems)} problem(s)", problems=tuple(ordered))


class FileReader:
    """Tenant files read one at a time, the problems of all of them collected, one file per
    tenant across all (load, the batches of stages.read_batches and apply's check share it)."""

    def __init__(self, *, cat: catalog_mod.Catalog, settings: secrets.Settings) -> None:
        self._cat, self._settings = cat, settings
        self._seen: dict[str, str] = {}
        self.problems: list[errors.Problem] = []

    def read(self, path: Path | str) -> DesiredTenant | None:
        """The tenant of one file; None when the file has problems (kept in .problems)."""
        try:
            tenant = load_file(path, cat=self._cat, settings=self._settings)
        except errors.InputError as exc:
            self.problems.extend(exc.problems)
            return None
        return self.add(tenant)

    def add(self, tenant: DesiredTenant) -> DesiredTenant:
        """A tenant read before (from its file at tenant.path), counted as read here: one file per
        tenant is checked across it and the files read here."""
        if tenant.key in self._seen:
            self.problems.append(
                errors.at(
                    tenant.path,
                    1,
                    1,
                    f"{tenant.key} is also declared by {self._seen[tenant.key]}; keep one file per tenant",
                )
            )
        self._seen[tenant.key] = tenant.path
        return tenant

    def check(self) -> None:
        """Raise every problem found so far (see bounded)."""
        if self.problems:
            raise bounded(self.problems)


def load(
    paths: Iterable[Path | str], *, cat: catalog_mod.Catalog, settings: secrets.Settings
) -> list[DesiredTenant]:
    """Load every file, collecting the problems of all of them (up to MAX_PROBLEMS)."""
    reader = FileReader(cat=cat, settings=settings)
    tenants = [t for t in map(reader.read, paths) if t is not None]
    reader.check()
    return tenants
