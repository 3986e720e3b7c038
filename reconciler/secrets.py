"""Secrets: resolve password references, encrypt at rest, fingerprint with a keyed HMAC.

A secret value never leaves this module except as ciphertext, an HMAC, or the resolved value
handed to the store or an ODBC driver. Every resolved value is registered for redaction,
except those only fingerprinted (resolve(register=False)).

Two keys (DESIGN §10): the store key (a Fernet key) encrypts passwords; the plan key is derived
one way from it and holds only the MAC key that fingerprints passwords and signs saved plans,
so a pull-request job can plan without being able to decrypt anything.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import itertools
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler import errors, lazy, redaction
from reconciler.declared import SecretRef

ENV_PREFIX_VAR = "RECONCILER_SECRET_ENV_PREFIX"
SECRETS_DIR_VAR = "RECONCILER_SECRETS_DIR"
STORE_KEY_VAR = "RECONCILER_STORE_KEY"
PLAN_KEY_VAR = "RECONCILER_PLAN_KEY"
NEW_STORE_KEY_VAR = "RECONCILER_NEW_STORE_KEY"  # store rotate-key's new key (server stores)
PLAN_KEY_PREFIX = "osr-plan-key-v1:"
PLAN_ONLY = (
    f"needs {STORE_KEY_VAR}; {PLAN_KEY_VAR} can only plan and read "
    "(plan, drift, export, import, history, locks, store dump)"
)
DEFAULT_PREFIX = "OSR_"
# {file:} references whose check a run remembers at most: several batches of tenant files
# (stages.read_batches: 250 files, ~5,000 references at 25 connections a tenant).
MAX_REMEMBERED = 20_000
# Folder entries a run lists at most (see _Listings) between two resets of the remembered
# references; a folder of more entries than MAX_LISTED_FOLDER is asked file by file.
MAX_LISTED = 20_000
MAX_LISTED_FOLDER = 4096
TOOL_PREFIX = "RECONCILER_"

# cryptography only to encrypt and decrypt (a store key): fingerprints and plan MACs are HMACs,
# and reading tenant files, `--help` or a plan-key job never load it.
if TYPE_CHECKING:
    from cryptography import fernet
else:
    fernet = lazy.module("cryptography.fernet")


class _Listings:
    """The regular files (not links) of the folders of {file:} references, each folder listed
    once per run: one scandir costs less than an lstat per file. Bounded: MAX_LISTED entries
    listed in all until clear(), and a folder of more than MAX_LISTED_FOLDER entries, one that
    cannot be listed, or one past the bound is asked file by file (lstat), as before listings."""

    def __init__(self) -> None:
        self._folders: dict[str, frozenset[str] | None] = {}
        self._listed = 0  # entries read by scandir since the last clear()

    def clear(self) -> None:
        self._folders.clear()
        self._listed = 0

    def regular(self, folder: str, name: str) -> bool:
        """Whether folder/name is a regular file; folder is resolved (no link in it)."""
        if folder in self._folders:
            names = self._folders[folder]
        elif self._listed < MAX_LISTED:
            names = self._folders[folder] = self._list(folder)
        else:
            names = None
        return name in names if names is not None else _lstat_regular(os.path.join(folder, name))

    def _list(self, folder: str) -> frozenset[str] | None:
        room = min(MAX_LISTED_FOLDER, MAX_LISTED - self._listed)
        self._listed += 1  # even an empty or unreadable folder counts: a bounded number of them
        try:
            with os.scandir(folder) as found:
                entries = list(itertools.islice(found, room + 1))
        except OSError:
            return None
        self._listed += len(entries)
        if len(entries) > room:
            return None
        return frozenset(e.name for e in entries if e.is_file(follow_symlinks=False))


@dataclass(frozen=True)
class Settings:
    """Which references a tenant file may use."""

    env_prefix: str
    secrets_dir: Path
    # Per run (one Settings per command): {file:} references checked, and their folders, so that
    # validation and resolution (a batch later) resolve each once. Bounded (see _remember): a
    # fleet's memory must not grow with its number of references.
    _targets: dict[str, str] = field(default_factory=dict, init=False, repr=False, compare=False)
    _parents: dict[str, str] = field(default_factory=dict, init=False, repr=False, compare=False)
    _listings: _Listings = field(default_factory=_Listings, init=False, repr=False, compare=False)

    @classmethod
    def from_env(cls, root: Path) -> Settings:
        prefix = os.environ.get(ENV_PREFIX_VAR) or DEFAULT_PREFIX
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", prefix):
            # 'a b' was taken, and every reference refused with "name it a b..." (checks.ENV_NAME,
            # bounded, written here: checks imports spec, which no command needs to start)
            raise errors.SecretError(
                f"{ENV_PREFIX_VAR}={prefix!r} is not the start of a variable name; write letters, "
                f"digits and _ (not first a digit), such as {DEFAULT_PREFIX}"
            )
        if TOOL_PREFIX.startswith(prefix) or prefix.startswith(TOOL_PREFIX):
            raise errors.SecretError(
                f"{ENV_PREFIX_VAR}={prefix!r} would let tenant files read the tool's own settings "
                f"({TOOL_PREFIX}*); choose another prefix such as {DEFAULT_PREFIX}"
            )
        directory = Path(os.environ.get(SECRETS_DIR_VAR) or root / ".secrets")
        return cls(prefix, directory)

    def check_reference(self, env: str | None, file: str | None) -> str | None:
        """Why a reference is not allowed, or None when it is."""
        if env is not None and not env.startswith(self.env_prefix):
            return (
                f"environment variable {env!r} is not a tenant secret; name it "
                f"{self.env_prefix}... (e.g. {self.env_prefix}{env.upper()})"
            )
        if env is not None and env == self.env_prefix:
            return (
                f"{env!r} is only the prefix; name the variable after the connection, e.g. "
                f"{self.env_prefix}ACME_NO_SQL"
            )
        if file is not None and self._inside(file) is None:
            return (
                f"file {file!r} is outside the secrets directory {self.secrets_dir}; "
                "give a path relative to it, without '..' or links leading out"
            )
        return None

    def _inside(self, file: str) -> str | None:
        """The resolved path of a {file:} reference inside the secrets directory, or None.

        Validation and resolution share the answer: a reference found to be a regular file (links
        resolved) is remembered (up to MAX_REMEMBERED of them); anything else is checked again.
        """
        known = self._targets.get(file)
        if known is not None:
            return known
        if os.path.isabs(file):
            return None
        try:
            base = str(_resolved(self.secrets_dir))
            head, name = os.path.split(file)
            if name not in ("", ".", ".."):
                # Fast path: the folder resolved once per run, then the file itself: a regular
                # file (not a link) there needs no further resolving.
                parent = self._parents.get(head)
                if parent is None:
                    parent = os.path.realpath(os.path.join(base, head)) if head else base
                # Missing, a link, a loop: the general rule below decides.
                candidate = os.path.join(parent, name)
                if not _under(candidate, base):  # only a link could lead back in
                    if _lstat_regular(candidate):
                        return None
                elif self._listings.regular(parent, name):
                    self._remember(file, head, parent, candidate)
                    return candidate
            resolved = Path(base, file).resolve()  # links, loops, '..': the general rule
        except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL byte: refused
            return None
        target = str(resolved)
        return target if _under(target, base) else None

    def _remember(self, file: str, head: str, parent: str, target: str) -> None:
        if len(self._targets) >= MAX_REMEMBERED:  # more than a batch holds: start again
            self._targets.clear()
            self._parents.clear()
            self._listings.clear()
        self._targets[file] = target
        self._parents[head] = parent

    def resolve(self, ref: SecretRef, *, register: bool = True) -> str | None:
        """The secret value, or None when it is not available here (e.g. a fork's PR).

        register=False only for a value that goes nowhere but into a fingerprint (plan, drift):
        it cannot reach any text, and a fleet's tens of thousands of passwords would otherwise
        all stay in memory until the process ends (redaction's set of known secrets).
        """
        value: str | None
        if ref.env is not None:
            value = os.environ.get(ref.env)
            if value is not None and not _is_utf8(value):
                raise errors.SecretError(
                    f"environment variable {ref.env} is not valid UTF-8; set it again as UTF-8 text"
                )
        else:
            assert ref.file is not None
            target = self._targets.get(ref.file)  # most often checked already (validation)
            if target is not None:
                value = _read_secret(target, regular=True)
            else:
                target = self._inside(ref.file)
                # A file found regular is remembered; anything else (a FIFO?) is read to its end.
                value = _read_secret(target, regular=ref.file in self._targets) if target else None
        if value is not None and "\0" in value:
            # A C string ends there: the ODBC driver sent what came before it (a wrong password
            # nothing said was wrong, and not the value masked in output).
            raise errors.SecretError(
                f"the password in {ref} holds a NUL character, which no SQL Server password can: "
                f"check that {ref} holds the password alone, as text"
            )
        if value is not None and len(value) > MAX_PASSWORD:
            raise errors.SecretError(
                f"the password in {ref} is {len(value):,} characters; a SQL Server login's password "
                f"is at most {MAX_PASSWORD}: check that {ref} holds the password alone"
            )
        if value and register:
            redaction.register(value)
        return value or None


def _under(target: str, base: str) -> bool:
    """target is strictly inside the directory base (both resolved)."""
    return target.startswith(base if base.endswith(os.sep) else base + os.sep) and target != base


# SQL Server's limit on a login's password (sysname, 128 characters). A longer secret is not a
# password (a key file, a whole .env?), and psqlODBC crashed the process on a 40,000-character
# one in --check-sources.
MAX_PASSWORD = 128
_READ_SIZE = 65536
# O_NONBLOCK: opening a FIFO waits for a writer, which may never come (a plan hung in CI).
_OPEN_FLAGS = (
    os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
)


def _lstat_regular(path: str) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _read_secret(target: str, *, regular: bool) -> str | None:
    """The text of a secret file, its line ends normalised as text mode reads them and the
    final ones dropped; None when it cannot be read, is not UTF-8 or is not a regular file.

    regular: target was found a regular file, whose read returns less than asked only at its
    end: a small one is read with one os.read."""
    try:
        # A target is resolved (no link), as checked: a link put there since is not followed.
        fd = os.open(target, _OPEN_FLAGS)
        try:
            if not regular and not stat.S_ISREG(os.fstat(fd).st_mode):
                return None  # a FIFO, a device: only a file holds a secret
            data = os.read(fd, _READ_SIZE)
            if len(data) == _READ_SIZE or not regular:
                chunks = [data]
                while chunk := os.read(fd, _READ_SIZE):
                    chunks.append(chunk)
                data = b"".join(chunks)
        finally:
            os.close(fd)
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if "\r" in text:  # universal newlines, as Path.read_text() had them
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.rstrip("\r\n")


@functools.lru_cache(maxsize=8)
def _resolved(directory: Path) -> Path:
    """The secrets directory resolved once per run, not once per reference (a fleet has tens of
    thousands of {file: ...} references; each target is still resolved, links and all)."""
    return directory.resolve()


def _is_utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # os.environ keeps undecodable bytes as lone surrogates
        return False
    return True


def register_environment(prefix: str) -> None:
    """Register every secret the environment holds, so that even a crash report masks them."""
    for name, value in os.environ.items():
        if name.startswith(prefix) or name in (STORE_KEY_VAR, PLAN_KEY_VAR, NEW_STORE_KEY_VAR):
            redaction.register(value)


def key_bytes(value: str, variable: str) -> bytes:
    """A key from an environment variable as bytes; one that is not even text (bytes that are
    not UTF-8, as os.environ keeps them) is not a valid key either."""
    try:
        return value.encode()
    except UnicodeEncodeError:
        raise errors.SecretError(
            f"{variable} is not a valid key (it is not text); create one with "
            "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`"
        ) from None


class Keyring:
    """Encrypts passwords (store key only) and computes keyed fingerprints and plan MACs.

    The MAC key is HMAC(store key, label): the plan key is that MAC key, so plans made with the
    plan key verify with the store key, and stored fingerprints match under either.
    """

    def __init__(self, key: bytes, *, variable: str = STORE_KEY_VAR) -> None:
        """variable: where the key came from, for the messages (RECONCILER_NEW_STORE_KEY...)."""
        if key.decode(errors="replace").startswith(PLAN_KEY_PREFIX):
            raise errors.SecretError(
                f"{variable} holds a plan key; set it as {PLAN_KEY_VAR} "
                f"instead, and {variable} to the store key"
            )
        try:  # what Fernet checks, without loading cryptography until a password is encrypted
            raw = base64.urlsafe_b64decode(key)
        except (ValueError, TypeError):
            raw = b""
        if len(raw) != 32:
            raise errors.SecretError(
                f"{variable} is not a valid key; create one with "
                "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`"
            )
        self._key: bytes | None = key
        self._fernet: fernet.Fernet | None = None
        self._set_mac_key(hmac.new(raw, b"osr-reconciler/fingerprint/v1", hashlib.sha256).digest())

    def _set_mac_key(self, mac_key: bytes) -> None:
        self._mac_key = mac_key
        # The HMAC state after the fingerprint's fixed prefix, copied for each password: a fleet
        # fingerprints tens of thousands of them, and a copy costs less than keying a new HMAC.
        self._password_mac = hmac.new(mac_key, b"password\0", hashlib.sha256)

    @classmethod
    def for_plans(cls, plan_key: str) -> Keyring:
        """A keyring from a plan key: fingerprints and plan MACs, no encryption."""
        problem = (
            f"{PLAN_KEY_VAR} is not a plan key; print the plan key with "
            f"`reconciler store plan-key` (never give a plan job {STORE_KEY_VAR})"
        )
        if not plan_key.startswith(PLAN_KEY_PREFIX):
            raise errors.SecretError(problem)
        try:
            mac_key = base64.urlsafe_b64decode(plan_key.removeprefix(PLAN_KEY_PREFIX).strip())
        except (ValueError, TypeError):
            raise errors.SecretError(problem) from None
        if len(mac_key) != hashlib.sha256().digest_size:
            raise errors.SecretError(problem)
        keyring = cls.__new__(cls)
        keyring._key = keyring._fernet = None
        keyring._set_mac_key(mac_key)
        return keyring

    @staticmethod
    def generate() -> bytes:
        return fernet.Fernet.generate_key()

    @property
    def full(self) -> bool:
        """True for the store key; False for a plan key (no password can be decrypted)."""
        return self._key is not None

    @property
    def variable(self) -> str:
        return STORE_KEY_VAR if self.full else PLAN_KEY_VAR

    def plan_key(self) -> str:
        return PLAN_KEY_PREFIX + base64.urlsafe_b64encode(self._mac_key).decode()

    def _cipher(self, what: str) -> fernet.Fernet:
        if self._key is None:
            raise errors.SecretError(f"{what} {PLAN_ONLY}")
        if self._fernet is None:
            self._fernet = fernet.Fernet(self._key)
        return self._fernet

    def encrypt(self, value: str) -> str:
        return self._cipher("storing a password").encrypt(value.encode()).decode()

    def decrypt(self, token: str) -> str:
        cipher = self._cipher("decrypting a stored password")
        try:
            return cipher.decrypt(token.encode()).decode()
        except fernet.InvalidToken:
            raise errors.SecretError(
                f"a stored password cannot be decrypted with this key; check {STORE_KEY_VAR}"
            ) from None

    def fingerprint(self, value: str) -> str:
        """HMAC(MAC key, b"password\\0" + the value's UTF-8 bytes), in hex."""
        mac = self._password_mac.copy()
        mac.update(value.encode())
        return mac.hexdigest()

    def sign(self, data: bytes | Iterable[bytes]) -> str:
        """A MAC over a plan file (its bytes, or its bytes a part at a time: a whole fleet's plan
        is tens of MB), so that tampering and other stores are detected."""
        mac = hmac.new(self._mac_key, b"plan\0", hashlib.sha256)
        for part in (data,) if isinstance(data, bytes) else data:
            mac.update(part)
        return mac.hexdigest()

    def check_value(self) -> str:
        """Stored in the store once, to tell a wrong key from a changed password."""
        return hmac.new(self._mac_key, b"key-check", hashlib.sha256).hexdigest()
