"""Names of the password variables the tool writes into tenant files (export, import).

A variable name must be unique within a tenant (two connections sharing one would get each
other's password on apply) and stable across runs (a re-export names the same variables).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence

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


def _suffix(name: str, length: int) -> str:
    return hashlib.sha256(spec.identity(name).encode("utf-8")).hexdigest()[:length].upper()


def password_variables(customer: str, tenant: str, names: Sequence[str], prefix: str) -> dict[str, str]:
    """connection name -> `PREFIX<CUSTOMER>_<TENANT>_<CONNECTION>_PASSWORD`, unique per tenant.

    A name that folds to the same words as another (`Visma Oslo`, `Visma-Oslo`; `Øslo`, `Ôslo`)
    or to no letters at all (`東京`) gets a short suffix derived from its identity, so it stays
    the same from run to run whatever order the connections come in.
    """
    head = f"{prefix}{ascii_words(customer)}_{ascii_words(tenant)}"
    words = {name: ascii_words(name) for name in names}
    counts = Counter(words.values())
    for length in (6, 12, 64):
        out = {}
        for name, word in words.items():
            base = f"{head}_{word}" if word else head
            if counts[word] > 1 or not re.search(r"[A-Z]", word):
                base += f"_{_suffix(name, length)}"
            out[name] = f"{base}_PASSWORD"
        if len(set(out.values())) == len(out):
            return out
    raise AssertionError("identities are unique within a tenant, so their digests differ")
