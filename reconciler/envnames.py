"""Names of the password variables the tool writes into tenant files (export, import).

A variable name must be unique across the fleet (two connections sharing one would get each
other's password on apply) and stable across runs (a re-export names the same variables).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Collection, Sequence

from reconciler import spec

# Letters NFKD does not decompose into ASCII.
_FOLD = str.maketrans(
    {
        "ø": "o",
        "Ø": "O",
        "æ": "ae",
        "Æ": "AE",
        "ß": "ss",
        "đ": "d",
        "Đ": "D",
        "ð": "d",
        "Ð": "D",
        "ł": "l",
        "Ł": "L",
        "þ": "th",
        "Þ": "TH",
        "œ": "oe",
        "Œ": "OE",
        "ı": "i",
    }
)


def ascii_words(text: str) -> str:
    """`Øst-Ås kontor` -> `OST_AS_KONTOR`: ASCII letters and digits, runs of others as `_`."""
    folded = unicodedata.normalize("NFKD", text.translate(_FOLD))
    plain = "".join(c for c in folded if c.isascii())
    return re.sub(r"[^A-Z0-9]+", "_", plain.upper()).strip("_")


def _suffix(identity: str, length: int) -> str:
    return hashlib.sha256(identity.encode("utf-8")).hexdigest()[:length].upper()


_LENGTHS = (6, 12, 64)


def password_variables(
    customer: str, tenant: str, names: Sequence[str], prefix: str, *, taken: Collection[str] = ()
) -> dict[str, str]:
    """connection name -> `PREFIX<CUSTOMER>_<TENANT>_<CONNECTION>_PASSWORD`, unique per tenant
    and none of taken (the variables other tenants' files use).

    A name that folds to the same words as another (`Visma Oslo`, `Visma-Oslo`; `Øslo`, `Ôslo`)
    or to no letters at all (`東京`) gets a short suffix derived from its identity, so it stays
    the same from run to run whatever order the connections come in. One whose variable another
    tenant has (acme/main `GP Oslo`, acme/main-gp `Oslo`) gets one derived from its customer,
    tenant and identity: a suffix of the name alone would be the same again in a third tenant
    whose words run together alike (a-b-c/d, a-b/c-d, a/b-c-d). Every other name keeps the
    variable it always had.
    """
    out = _within_tenant(customer, tenant, names, prefix)
    used = set(out.values())
    for name in sorted(out, key=spec.identity):
        if out[name] in taken:
            out[name] = _untaken(f"{customer}/{tenant}/{spec.identity(name)}", out[name], taken, used)
            used.add(out[name])
    return out


def _within_tenant(customer: str, tenant: str, names: Sequence[str], prefix: str) -> dict[str, str]:
    """password_variables without taken: unique within the tenant."""
    head = f"{prefix}{ascii_words(customer)}_{ascii_words(tenant)}"
    words = {name: ascii_words(name) for name in names}
    counts = Counter(words.values())
    for length in _LENGTHS:
        out = {}
        for name, word in words.items():
            base = f"{head}_{word}" if word else head
            if counts[word] > 1 or not re.search(r"[A-Z]", word):
                base += f"_{_suffix(spec.identity(name), length)}"
            out[name] = f"{base}_PASSWORD"
        if len(set(out.values())) == len(out):
            return out
    raise AssertionError("identities are unique within a tenant, so their digests differ")


def _untaken(identity: str, variable: str, taken: Collection[str], used: set[str]) -> str:
    """variable with the shortest suffix of identity's digest that makes it none of taken and
    of used (this tenant's other variables)."""
    base = variable.removesuffix("_PASSWORD")
    for length in _LENGTHS:
        candidate = f"{base}_{_suffix(identity, length)}_PASSWORD"
        if candidate not in taken and candidate not in used:
            return candidate
    raise AssertionError("no file names every suffix of one connection's own digest")
