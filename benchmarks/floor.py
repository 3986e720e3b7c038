"""The floor: what any implementation must at least do for a full plan, as a script run in a
fresh interpreter (FLOOR_CODE), with the queries of the plan it reads (PLAN_QUERIES)."""

from __future__ import annotations

import sys
from pathlib import Path

from reconciler import store

# The rows a full plan reads: the same queries as reconciler.store.read (no --tenant, so whole
# tables; the same connection columns; dependents only for cascades, and an unedited fleet has
# none).
PLAN_QUERIES = (
    "SELECT t.id, c.name, t.name FROM osr_tenants t JOIN osr_customers c ON t.customer_id = c.id",
    f"SELECT {', '.join(c.name for c in store.LIVE_COLUMNS)} FROM osr_connections",
    "SELECT co.id, co.connection_id, co.code FROM osr_companies co "
    "JOIN osr_connections cn ON co.connection_id = cn.id",
    "SELECT tenant_id, name, connection_id FROM osr_report_templates ORDER BY name",
)

# The honest floor, run as `python -c FLOOR_CODE TENANTS_DIR URL SECRETS_DIR` in a fresh
# interpreter, under the settings the tool runs with: every tenant file read into its structure
# the cheapest way the project knows, as the tool reads it (reconciler.plainyaml for a plainly
# written file, the values libyaml would compose and nothing more; libyaml's composer without
# YAML 1.1 tag guessing for any other, as strictyaml._Loader composes) and released once read (as
# the tool releases each file: bounded memory), every password reference resolved with the
# primitives the tool must use (a {file:} reference's bytes read with os.open/os.read, an {env:}
# reference looked up in the environment) and fingerprinted with the keyed HMAC of
# reconciler.secrets (the same key derivation from RECONCILER_STORE_KEY, the same message;
# standard library only), the rows of the plan's queries fetched raw through the DBAPI driver
# (nothing built from them) and kept, the cycle collector off as the tool has it. Nothing else:
# no value validated, no Python object built beyond the file's structure.
FLOOR_CODE = r"""
import gc, os, sys, yaml, base64, hashlib, hmac, operator
gc.disable()
from reconciler import plainyaml
tenants, url, secrets_dir = sys.argv[1], sys.argv[2], sys.argv[3]


class Composer(yaml.CSafeLoader):  # libyaml's composer without YAML 1.1 tag guessing
    def resolve(self, kind, value, implicit):
        return ""

    descend_resolver = staticmethod(operator.is_)  # no path resolvers: C no-ops, no Python frame
    ascend_resolver = staticmethod(tuple)


def references(raw):
    # (kind, target) of each connection's password: from plainyaml's values, else libyaml's nodes
    document = plainyaml.document(raw)
    if document is not None:
        for conn in document.get("connections") or ():
            ref = conn.get("password")
            if ref.__class__ is dict:
                yield next(iter(ref.items()))
        return
    for key, value in yaml.compose(raw, Loader=Composer).value:
        if key.value == "connections":
            for conn in value.value:
                for field, ref in conn.value:
                    if field.value == "password":
                        yield ref.value[0][0].value, ref.value[0][1].value


store_key = base64.urlsafe_b64decode(os.environ["RECONCILER_STORE_KEY"])
mac_key = hmac.new(store_key, b"osr-reconciler/fingerprint/v1", hashlib.sha256).digest()
environ = os.environ
files_read, fingerprints = 0, []
for folder, _dirs, files in os.walk(tenants):
    for name in files:
        if name.endswith((".yaml", ".yml")):
            with open(os.path.join(folder, name), "rb") as handle:
                data = handle.read()
            files_read += 1
            for kind, target in references(data):
                if kind == "env":
                    secret = environ[target].encode()
                else:
                    fd = os.open(os.path.join(secrets_dir, target), os.O_RDONLY)
                    try:
                        secret = os.read(fd, 65536).rstrip(b"\r\n")
                    finally:
                        os.close(fd)
                fingerprints.append(hmac.new(mac_key, b"password\0" + secret, hashlib.sha256).hexdigest())
if url.startswith("sqlite:///"):
    import sqlite3
    conn = sqlite3.connect(f"file:{url[len('sqlite:///'):]}?mode=ro", uri=True)
else:
    import psycopg
    conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1))
rows = [conn.execute(query).fetchall() for query in QUERIES]
print(files_read, "files,", len(fingerprints), "secrets,", sum(len(r) for r in rows), "rows")
""".replace("QUERIES", repr(PLAN_QUERIES))


def argv(root: Path, url: str) -> list[str]:
    """The floor's command for the fleet built at root (its tenants/ and .secrets/), on url."""
    return [sys.executable, "-c", FLOOR_CODE, str(root / "tenants"), url, str(root / ".secrets")]
