"""`import`: a tenant file for every live tenant that has none yet (DESIGN §9).

Each file declares the tenant's connections exactly as they are live (managed and unmanaged
alike), with password references in place of passwords, so that `plan` of the imported tree
shows only the adoptions of the unmanaged connections.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler import (
    atomic,
    catalog,
    checks,
    desired,
    differ,
    envnames,
    errors,
    secrets,
    spec,
    state,
    strictyaml,
    yamlout,
)

MODELINE = "# yaml-language-server: $schema=../../schemas/tenant.schema.json\n"


@dataclass(frozen=True)
class Written:
    key: str
    path: Path
    variables: tuple[str, ...]  # password variables the file references
    owners: tuple[str, ...] = ()  # the connection each of them is the password of, in order


@dataclass(frozen=True)
class Outcome:
    written: tuple[Written, ...]
    existing: tuple[tuple[str, Path], ...]  # tenants that already have a file: never touched


def export_tenant(live: state.LiveTenant, prefix: str, *, taken: Collection[str] = ()) -> dict[str, object]:
    """The tenant file document of a live tenant: passwords as {env: NAME} references, none of
    them one of taken (envnames.password_variables); companies in natural order (S1, S2, S11),
    as people list them: the portal keeps them as a set."""
    conns: list[dict[str, object]] = []
    variables = envnames.password_variables(
        live.customer, live.tenant, [c.spec.name for c in live.connections], prefix, taken=taken
    )
    for c in live.connections:
        sql = c.spec.authentication is spec.Authentication.SQL
        doc = c.spec.document(password={"env": variables[c.spec.name]} if sql else None)
        doc["companies"] = sorted(c.spec.companies, key=spec.name_order)
        conns.append(doc)
    return {
        "version": 1,
        "customer": live.customer,
        "tenant": live.tenant,
        "prune": False,
        "connections": conns,
    }


def tenant_text(
    live: state.LiveTenant, prefix: str, *, taken: Collection[str] = ()
) -> tuple[str, tuple[str, ...]]:
    """The tenant file of a live tenant, and the password variables it references."""
    body = export_tenant(live, prefix, taken=taken)
    variables = tuple(
        str(c["password"]["env"])
        for c in body["connections"]  # type: ignore[attr-defined]
        if isinstance(c.get("password"), dict)
    )
    return MODELINE + yamlout.dump(body), variables


def file_of(root: Path, key: str) -> Path:
    """Where import writes the file of the tenant "customer/tenant" (it never touches one that
    exists)."""
    customer, tenant = key.split("/", 1)
    return root / customer / f"{tenant}.yaml"


def has_file(root: Path, key: str) -> bool:
    """The tenant has a file already (a link, even to nothing, counts): import leaves it."""
    path = file_of(root, key)
    return path.exists() or path.is_symlink()


def unwritable(live: state.LiveState, keys: Sequence[str], *, again: str = "import") -> list[errors.Problem]:
    """What a tenant file cannot hold of these tenants: a portal-made name it refuses (a line
    break, a character that does not show, too long) or a customer or tenant name that is no
    slug. import (and export, `again`) writes nothing while any is there: a file validate
    refuses is no import."""
    problems = []
    for key in keys:
        t = live.tenants[key]
        for what, slug in (("customer", t.customer), ("tenant", t.tenant)):
            if len(slug) > checks.MAX_SLUG or not checks.SLUG_RE.fullmatch(slug):
                problems.append(
                    errors.Problem(
                        key[:100],
                        0,
                        0,
                        f"the {what} name is not a slug of at most {checks.MAX_SLUG} lowercase letters, "
                        "digits and '-', so no tenant file can be named after it; correct it in the portal, "
                        f"then {again} again",
                    )
                )
        twice = differ.one_name_twice(t, again)
        if twice is not None:
            problems.append(twice)
        for c in t.connections:
            problems += [
                errors.Problem(
                    f"{key}/{c.spec.name}",
                    0,
                    0,
                    f'the portal\'s {what} "{name}" {why}, which a tenant file cannot hold; correct it '
                    f"in the portal, then {again} again",
                )
                for what, name, why in unholdable(c)
            ]
    return problems


def unholdable(conn: state.LiveConnection) -> list[tuple[str, str, str]]:
    """(what, the name, why) for each name of a portal-made connection, its own or a company's,
    that no tenant file can hold (import and drift --write append none of them); and for one
    that signs in with SQL and keeps no password: its file would reference a password that is
    not there, which apply then sets (or, unset, refuses to apply)."""
    c = conn.spec
    if c.authentication is spec.Authentication.SQL and conn.password_fp is None:
        return [("connection", c.name, "signs in with SQL authentication and has no password")]
    named = [("connection", c.name, checks.MAX_NAME)]
    named += [("company", code, checks.MAX_COMPANY) for code in c.companies]
    found = []
    for what, name, longest in named:
        long = len(spec.nfc(name)) > longest  # composed: a name the portal keeps decomposed is the same
        why = spec.name_problem(name) or (f"is over {longest} characters" if long else None)
        if why:
            found.append((what, name, why.split(";")[0]))
    alike = spec.first_look_alike(c.companies) if not found else None
    if alike is not None:
        first, company = c.companies[alike[0]], c.companies[alike[1]]
        found.append(("company", company, f'looks the same as its company "{first}" and is another id'))
    return found


_CONNECTION_AT = re.compile(r"connections\[(\d+)\]\.?(\S*): (.*)")


def refused(
    live: state.LiveTenant,
    path: Path,
    text: str,
    *,
    cat: catalog.Catalog,
    settings: secrets.Settings,
    again: str = "import",
) -> list[errors.Problem]:
    """What validate would say of text written at path, said of the portal's tenant and
    connection: the portal holds values no tenant file may (a server `my host`, an integration
    the catalog does not know, sql without a login), and the file was never written, so a
    file:line:col would point at nothing."""
    try:
        desired.load_file(path, cat=cat, settings=settings, raw=text.encode("utf-8"))
    except errors.InputError as exc:
        return [_in_portal(live, p.message, again) for p in exc.problems]
    return []


def _in_portal(live: state.LiveTenant, message: str, again: str) -> errors.Problem:
    """A problem validate found in the file made of live, as one to correct in the portal."""
    found = _CONNECTION_AT.fullmatch(message)
    if found is None:
        return errors.Problem(
            live.key,
            0,
            0,
            f"validate would refuse its file: {message}; correct it in the portal, then {again} again",
        )
    index, field, why = found.groups()
    return errors.Problem(
        f"{live.key}/{live.connections[int(index)].spec.name}",
        0,
        0,
        f"validate would refuse the portal's {field or 'connection'}: {why}; "
        f"correct it in the portal, then {again} again",
    )


def variables_in_use(
    folders: Sequence[Path], *, cat: catalog.Catalog, settings: secrets.Settings, besides: Path | None = None
) -> set[str]:
    """Every password variable the tenant files under folders may reference, so that import
    names none of them again (envnames.password_variables' taken).

    A valid file gives its {env: NAME} references, read as validate reads them. A file that
    does not load (one being edited, a typo validate refuses) gives every word in it that could
    name a variable: a word wrongly counted costs a new file a suffix, a reference missed is a
    password two connections share once the file is fixed. A file that cannot be read at all
    (no permission, a pipe, a broken link) refuses the import, writing nothing: what it
    references is unknown, and no guess is safe. besides: a file left out (export's own
    tenant's, whose variables its connections keep).
    """
    used: set[str] = set()
    problems: list[errors.Problem] = []
    skipped = os.path.realpath(besides) if besides is not None else None
    for path in _yaml_files(folders):
        if skipped is not None and os.path.realpath(path) == skipped:  # a link loop: no raise
            continue
        try:
            raw = strictyaml.read_bytes(path)
        except errors.InputError as exc:
            problems += [
                errors.Problem(
                    p.file,
                    0,
                    0,
                    f"{p.message}; the password variables of every tenant file are read so that a "
                    "new one is none of them: make it readable or move it away, then run again",
                )
                for p in exc.problems
            ]
            continue
        try:
            tenant = desired.load_file(path, cat=cat, settings=settings, raw=raw)
        except errors.InputError:
            used.update(checks.ENV_NAME.findall(raw.decode("utf-8", "replace")))
            continue
        used.update(c.password.env for c in tenant.connections if c.password and c.password.env)
    if problems:
        raise errors.InputError.of(problems)
    return used


def _yaml_files(folders: Sequence[Path]) -> Iterator[str]:
    """Every file named *.yaml or *.yml under the folders, at any depth, each folder once;
    linked folders are not entered (as desired.discover). A file among them is itself."""
    seen: set[str] = set()
    for folder in folders:
        real = os.path.realpath(folder)  # Path.resolve raises for a link loop
        if real in seen:
            continue
        seen.add(real)
        if folder.is_file():
            yield os.fspath(folder)
            continue
        for parent, _, files in os.walk(folder):
            yield from (os.path.join(parent, f) for f in sorted(files) if f.endswith((".yaml", ".yml")))


def run(
    read: Callable[[Sequence[str]], state.LiveState],
    root: Path,
    keys: Sequence[str],
    *,
    fleet: Path,
    settings: secrets.Settings,
    batch: int = 250,
) -> Outcome:
    """Write root/<customer>/<tenant>.yaml for each of keys that has no file; never overwrite.

    read: the live state of some tenants; only those without a file are read, `batch` at a
    time, and only their files' text is kept (bounded memory whatever the fleet). Each password
    variable is new to the fleet: none that a file under root or fleet (the repository's tenants
    folder) references, nor one given to a tenant written before it. Every file is checked
    before the first is written, and written all or none (_create_all): InputError, writing
    nothing, when a portal name is one no file can hold (unwritable) or validate would refuse a
    file (refused)."""
    cat = catalog.load()
    has = {key: has_file(root, key) for key in keys}
    existing = [(key, file_of(root, key)) for key in keys if has[key]]
    new = [key for key in keys if not has[key]]
    taken = variables_in_use((root, fleet), cat=cat, settings=settings) if new else set()
    planned: list[tuple[Written, str]] = []
    problems: list[errors.Problem] = []
    for start in range(0, len(new), batch):
        live = read(new[start : start + batch])
        for key in new[start : start + batch]:
            found = unwritable(live, [key])
            if found:
                problems += found
                continue
            path = file_of(root, key)
            text, variables = tenant_text(live.tenants[key], settings.env_prefix, taken=taken)
            taken.update(variables)
            problems += refused(live.tenants[key], path, text, cat=cat, settings=settings)
            sql = [
                c.spec.name
                for c in live.tenants[key].connections
                if c.spec.authentication is spec.Authentication.SQL
            ]
            planned.append((Written(key, path, variables, tuple(sql)), text))
        del live  # not alive while the next batch is read
    if problems:
        raise errors.InputError.of(problems)
    if planned:
        atomic.writes_begin()
    created = _create_all([(w.path, text) for w, text in planned])
    written = tuple(w for (w, _), made in zip(planned, created, strict=True) if made)
    existing += [(w.key, w.path) for (w, _), made in zip(planned, created, strict=True) if not made]
    return Outcome(written, tuple(existing))


def _create_all(files: Sequence[tuple[Path, str]]) -> list[bool]:
    """Create each file with its text, all or none: whether each was created (False: a file
    appeared there since it was looked at, and is not touched).

    Every target is checked before the first is written (InputError naming each that cannot
    be), and the files and folders made before a write fails are removed again. Not
    atomic.replace_all: it replaces a file that appears meanwhile, and import never does."""
    problems = [
        errors.Problem(str(path), 0, 0, f"{why}; nothing was written")
        for path, _ in files
        if (why := atomic.not_a_file(path)) is not None
    ]
    if problems:
        raise errors.InputError.of(problems)
    made: list[Path] = []
    created: list[bool] = []
    try:
        for path, text in files:
            _make_folders(path.parent, made)
            created.append(atomic.write(path, text, exclusive=True))
            if created[-1]:
                made.append(path)
    except BaseException as exc:
        _remove(made)
        if isinstance(exc, OSError):
            raise errors.InputError(
                f"{path}: cannot be written ({exc.strerror}); nothing was written"
            ) from None
        raise
    return created


def _make_folders(folder: Path, made: list[Path]) -> None:
    """Make folder and the folders above it that are missing, appending each to made as it is
    made, so that a failure after it removes it too."""
    missing = []
    while not folder.is_dir() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for each in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made meanwhile by another: not ours to remove
            each.mkdir()
            made.append(each)


def _remove(made: Sequence[Path]) -> None:
    """Remove what _create_all made, the last first; best effort: a folder something else was
    put in meanwhile stays, with what is in it."""
    for path in reversed(made):
        with contextlib.suppress(OSError):
            if path.is_dir() and not path.is_symlink():
                path.rmdir()
            else:
                path.unlink()
