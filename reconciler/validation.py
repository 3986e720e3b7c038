"""Validation messages: pydantic's errors on a YAML document as located, actionable problems.

The engine every document reader shares (tenant files in `desired`, fixtures in `fixture`,
reconciler.yaml in `windows`): one problem per error, at the line and column of the value in
the file, in the form `connections[0].server: message`, saying what to write instead and never
echoing a value that may be a secret.

Each reader brings its vocabulary: `want` (what to write, per key: shown when a value is missing,
empty or of the wrong kind), `item_want` (the same for one item of a key's list) and `example`
(a value for "missing key" messages). Validators point a message at a key of the mapping with
the error context `at_key`.
"""

from __future__ import annotations

import dataclasses
import difflib
import unicodedata
from typing import TYPE_CHECKING, Any

from reconciler import errors, spec, strictyaml

if TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError

# Keys whose values are never echoed in a message (a literal there may be a real secret).
SECRET_KEYS = frozenset({"password"})
# YAML 1.1 booleans that this reader keeps as text (the "Norway problem").
_YAML11_BOOLS = frozenset({"yes", "no", "y", "n", "on", "off"})
_TYPE_ERRORS = frozenset(
    {
        "string_type",
        "list_type",
        "dict_type",
        "model_type",
        "model_attributes_type",
        "int_type",
        "int_parsing",
        "float_type",
        "tuple_type",
        "set_type",
        "union_tag_invalid",
    }
)


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def say(loc: tuple[Any, ...], message: str) -> str:
    """`connections[0].server: message`, the form every problem of a file takes."""
    if loc and loc[-1] in SECRET_KEYS:
        # `password: text` would read as a password=value pair and be masked by redaction; the
        # messages about a password name it themselves.
        loc = loc[:-1]
    where = _dotted(loc)
    # One line per problem, whatever the file held.
    return strictyaml.printable(f"{where}: {message}" if where else message)


def at(label: str, doc: strictyaml.Document, loc: tuple[Any, ...], message: str) -> errors.Problem:
    """The problem of the value at loc: file:line:col, and the message said there (say)."""
    line, column = strictyaml.position(doc.root, loc)
    return errors.at(label, line, column, say(loc, message))


def _field(loc: tuple[Any, ...]) -> tuple[str | None, bool]:
    """The key a location is about, and whether it is one item of that key's list."""
    if loc and isinstance(loc[-1], int):
        return next((str(p) for p in reversed(loc) if isinstance(p, str)), None), True
    return (str(loc[-1]) if loc else None), False


def _is_secret(loc: tuple[Any, ...]) -> bool:
    return any(part in SECRET_KEYS for part in loc)


def _describe(value: Any, *, secret: bool) -> str:
    """What was written, for "expected X, not Y"; never the text of a possible secret."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, int) and not secret:
        return f"the number {value}"
    if isinstance(value, str) and not secret:
        return f"the text {shown(value)}"
    return "a number" if isinstance(value, int) else "text"


def looks_like(name: str, first: str, owner: str) -> str:
    """What validate says of a name that looks the same as owner's (`connections[0]`,
    `freeze[1]`), first, and is another name (DESIGN §8)."""
    return (
        f"{shown(name)} looks the same as {shown(first)}, the name of {owner}, and is another name "
        f"({spec.look_alike_difference(name, first)}); rename one so that they look different"
    )


def shown(value: str, limit: int = 60) -> str:
    """A value written in the file, quoted for a one-line message (long ones cut)."""
    return repr(value if len(value) <= limit else value[:limit] + "...")


def _flag_message(value: Any) -> str:
    if isinstance(value, str):
        low = value.lower()
        if value in ("true", "false"):  # what a boolean is, but quoted (or tagged !!str)
            return f"is the text {value!r}, not a boolean; write {value} without quotes"
        if low in ("true", "false"):
            return f"write {low} in lowercase (booleans are true or false)"
        if low in _YAML11_BOOLS:
            return f"{value!r} is not a boolean here (yes/no/on/off are read as text); write true or false"
    if value is None:
        return "is empty; write true or false"
    return f"expected true or false, not {_describe(value, secret=False)}"


def _literal_message(key: str | None, value: Any, ctx: dict[str, Any]) -> str:
    if value is None:
        return f"is empty; write {'`version: 1`' if key == 'version' else ctx.get('expected')}"
    if key == "version":
        if isinstance(value, int) and not isinstance(value, bool):
            return f"version {value} is not a format this reconciler reads; write `version: 1`"
        if value == "1":
            return "write `version: 1` (the number, not quoted text)"
        return f"write `version: 1`, not {_describe(value, secret=False)}"
    if key == "authentication" and isinstance(value, str) and value.lower() in ("sql", "windows"):
        return f"write {value.lower()} in lowercase"
    if key == "absent":
        written = (
            f"{value!r} is not a boolean here"
            if isinstance(value, str)
            else f"expected true, not {_describe(value, secret=False)}"
        )
        return f"{written}; write `absent: true` to delete this connection, or remove the key"
    return f"expected {ctx.get('expected', 'another value')}, not {_describe(value, secret=False)}"


def _message(err: Any, loc: tuple[Any, ...], want: dict[str, str], item_want: dict[str, str]) -> str:
    kind: str = err["type"]
    value = err.get("input")
    ctx: dict[str, Any] = err.get("ctx") or {}
    key, item = _field(loc)
    # A whole file of one value may be a key or a password file given by mistake: never shown.
    secret = _is_secret(loc) or not loc
    wanted = (item_want if item else want).get(key or "", "")
    if not loc:
        wanted = "a mapping starting with `version: 1`"
    if kind in ("bool_type", "bool_parsing"):
        return _flag_message(value)
    if kind == "literal_error":
        return _literal_message(key, value, ctx)
    if kind in _TYPE_ERRORS or kind.endswith("_type"):
        if key in SECRET_KEYS and not item:
            return f"the password must be written as {wanted}, not {_describe(value, secret=True)}"
        if value is None:
            return f"is empty; write {wanted}" if wanted else "is empty; write a value"
        written = _describe(value, secret=secret)
        message = f"expected {wanted or 'another kind of value'}, not {written}"
        if (
            kind == "list_type"
            and not secret
            and (isinstance(value, int) or (isinstance(value, str) and value.isprintable()))
        ):
            message += f"; write [{value}] for a list of one"
        elif isinstance(value, bool) and kind == "string_type":
            message += f"; quote it ('{str(value).lower()}') to keep the word"
        return message
    if kind in ("string_too_short", "blank"):
        return f"{ctx.get('what', 'is empty')}; write {wanted or 'a value'}"
    if kind == "too_long":
        return f"has {ctx.get('actual_length')} items, over the limit of {ctx.get('max_length')}; keep fewer"
    if kind == "string_too_long":
        # composed, as the name was counted (tenantfile._composed): not its NFD code points
        size = len(unicodedata.normalize("NFC", value)) if isinstance(value, str) else "too many"
        return f"is {size} characters, over the limit of {ctx.get('max_length')}; shorten it"
    if kind == "string_pattern_mismatch":
        owner = str(loc[-3]).removesuffix("s") if len(loc) >= 3 else None
        if key in ("customer", "tenant", "name"):
            return (
                "expected a slug: lowercase letters, digits and '-', starting with a letter "
                f"or digit (e.g. {'acme' if 'customer' in (key, owner) else 'acme-norway'})"
            )
        return f"expected {wanted}" if wanted else str(err["msg"])
    message = str(err["msg"]).removeprefix("Value error, ")
    if kind in ("value_error", "assertion_error") or message[:1].isupper():
        # pydantic's own wording ("Input should be ..."): say what to write instead.
        return f"{message[:1].lower()}{message[1:]}" + (f"; write {wanted}" if wanted else "")
    return message


def _known_keys(loc: tuple[Any, ...], root: type[BaseModel], models: dict[str, type[BaseModel]]) -> list[str]:
    """The keys allowed in the mapping at loc (the model of the last key or tag on the way)."""
    model = root
    for part in loc:
        if isinstance(part, str) and part in models:
            model = models[part]
    return list(model.model_fields)


def _without_tags(loc: tuple[Any, ...], unions: dict[str, frozenset[str]]) -> tuple[Any, ...]:
    """loc without the tag pydantic puts after a union's location (`connections[0].connection`)."""
    out: list[Any] = []
    stripped = -1
    for part in loc:
        prev = out[-1] if out else None
        owner = out[-2] if isinstance(prev, int) and len(out) >= 2 else prev
        if stripped != len(out) and isinstance(owner, str) and part in unions.get(owner, frozenset()):
            stripped = len(out)
            continue
        out.append(part)
    return tuple(out)


def problems(
    label: str,
    doc: strictyaml.Document,
    exc: ValidationError,
    *,
    root: type[BaseModel],
    models: dict[str, type[BaseModel]],
    want: dict[str, str],
    item_want: dict[str, str],
    example: dict[str, str],
    unions: dict[str, frozenset[str]] | None = None,
) -> list[errors.Problem]:
    """One located problem per pydantic error.

    models: per key (or union tag), the model of the mapping under it, for "unknown key".
    want, item_want, example: the document's vocabulary (see the module's docstring).
    unions: per key holding a union, the member tags pydantic adds to locations under it.
    """
    unions = unions or {}
    out: list[errors.Problem] = []
    seen: set[tuple[Any, ...]] = set()
    found = exc.errors(include_url=False, include_input=True, include_context=True)
    # A misspelt key is also a missing one: say it once, as the misspelling (did you mean).
    misspelt = {
        (loc[:-1], close)
        for err in found
        if err["type"] == "extra_forbidden"
        for loc in [_without_tags(tuple(err["loc"]), unions)]
        for close in difflib.get_close_matches(
            str(loc[-1]), _known_keys(tuple(err["loc"])[:-1], root, models), 1, 0.6
        )
    }
    for err in found:
        loc = tuple(err["loc"])
        clean = _without_tags(loc, unions)
        kind = err["type"]
        ctx = err.get("ctx") or {}
        if kind == "extra_forbidden":
            parent, key = clean[:-1], str(clean[-1])
            allowed = _known_keys(loc[:-1], root, models)
            close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
            line, column = strictyaml.position(doc.root, clean, key=True)
            if _is_secret(parent):
                message = (
                    "the password reference has an unknown key (not shown: it may be the "
                    f"secret itself); write {want.get('password', 'a reference')}"
                )
                message += f"; did you mean {close[0]!r}?" if close else ""
            else:
                hint = f"did you mean {close[0]!r}?" if close else "allowed keys: " + ", ".join(allowed)
                message = f"unknown key {shown(key)}; {hint}"
            clean = parent
        elif kind == "missing":
            parent, key = clean[:-1], str(clean[-1])
            if (parent, key) in misspelt:
                continue
            line, column = strictyaml.position(doc.root, parent)
            given = example.get(key)
            message = f"missing key {key!r}" + (
                f"; add `{key}: {given}`" if given else f"; add {key}: {want.get(key, '...')}"
            )
            clean = parent
        else:
            at_key = ctx.get("at_key")
            if at_key is not None:
                line, column = strictyaml.position(doc.root, (*clean, at_key), key=True)
            else:
                line, column = strictyaml.position(doc.root, clean)
            message = _message(err, clean, want, item_want)
        text = say(clean, message)
        # A union reports each member's complaint about the same value: keep the first.
        if clean in seen and kind not in ("extra_forbidden", "missing"):
            continue
        if kind not in ("extra_forbidden", "missing"):
            seen.add(clean)
        out.append(errors.at(label, line, column, text))
    return out


def literal_passwords(data: Any) -> set[str]:
    """Text written as a literal password in a file (through anchors it may appear elsewhere)."""
    found: set[str] = set()

    def collect(value: Any, top: bool) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                if top and k in ("env", "file"):  # a reference's own word is no secret
                    if not isinstance(v, str):  # a reference's name, as written, is none either
                        collect(v, False)
                    continue
                found.add(str(k))
                collect(v, False)
        elif isinstance(value, list):
            for v in value:
                collect(v, False)
        elif isinstance(value, str | int) and not isinstance(value, bool):
            found.add(str(value))

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                if k == "password":
                    collect(v, True)
                else:
                    walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(data)
    return {text for text in found if len(text) >= 3}


def scrub(problems: list[errors.Problem], texts: set[str]) -> list[errors.Problem]:
    """problems with every literal password masked, should a message have picked one up."""
    # As written, and as shown() quotes and cuts a value.
    variants = {form for text in texts for form in (text, repr(text)[1:-1], text[:60], repr(text[:60])[1:-1])}
    ordered = sorted((v for v in variants if len(v) >= 3), key=len, reverse=True)
    out = []
    for problem in problems:
        message = problem.message
        for text in ordered:
            message = message.replace(text, "***")
        out.append(dataclasses.replace(problem, message=message))
    return out
