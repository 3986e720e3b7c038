"""Secrets: resolve password references, encrypt at rest, fingerprint with a keyed HMAC.

A secret value never leaves this module except as ciphertext, an HMAC, or the resolved value
handed to the store or an ODBC driver. Every resolved value is registered for redaction.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from reconciler import errors, redaction

ENV_PREFIX_VAR = "RECONCILER_SECRET_ENV_PREFIX"
SECRETS_DIR_VAR = "RECONCILER_SECRETS_DIR"
STORE_KEY_VAR = "RECONCILER_STORE_KEY"
DEFAULT_PREFIX = "OSR_"
TOOL_PREFIX = "RECONCILER_"


@dataclass(frozen=True)
class SecretRef:
    """{env: NAME} or {file: PATH} from a tenant file."""

    env: str | None
    file: str | None

    def __str__(self) -> str:
        return f"env {self.env}" if self.env else f"file {self.file}"


@dataclass(frozen=True)
class Settings:
    """Which references a tenant file may use."""

    env_prefix: str
    secrets_dir: Path

    @classmethod
    def from_env(cls, root: Path) -> Settings:
        prefix = os.environ.get(ENV_PREFIX_VAR) or DEFAULT_PREFIX
        if TOOL_PREFIX.startswith(prefix) or prefix.startswith(TOOL_PREFIX):
            raise errors.SecretError(
                f"{ENV_PREFIX_VAR}={prefix!r} would let tenant files read the tool's own settings "
                f"({TOOL_PREFIX}*); choose another prefix such as {DEFAULT_PREFIX}")
        directory = Path(os.environ.get(SECRETS_DIR_VAR) or root / ".secrets")
        return cls(prefix, directory)

    def check_reference(self, env: str | None, file: str | None) -> str | None:
        """Why a reference is not allowed, or None when it is."""
        if env is not None and not env.startswith(self.env_prefix):
            return (f"environment variable {env!r} is not a tenant secret; name it "
                    f"{self.env_prefix}... (e.g. {self.env_prefix}{env.upper()})")
        if env is not None and env == self.env_prefix:
            return (f"{env!r} is only the prefix; name the variable after the connection, e.g. "
                    f"{self.env_prefix}ACME_NO_SQL")
        if file is not None and self._inside(file) is None:
            return (f"file {file!r} is outside the secrets directory {self.secrets_dir}; "
                    "give a path relative to it, without '..' or links leading out")
        return None

    def _inside(self, file: str) -> Path | None:
        if Path(file).is_absolute():
            return None
        try:
            base = self.secrets_dir.resolve()
            target = (base / file).resolve()
        except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL byte: refused
            return None
        return target if target.is_relative_to(base) and target != base else None

    def resolve(self, ref: SecretRef) -> str | None:
        """The secret value, or None when it is not available here (e.g. a fork's PR)."""
        if ref.env is not None:
            value = os.environ.get(ref.env)
            if value is not None and not _is_utf8(value):
                raise errors.SecretError(f"environment variable {ref.env} is not valid UTF-8; "
                                         "set it again as UTF-8 text")
        else:
            assert ref.file is not None
            target = self._inside(ref.file)
            try:
                value = target.read_text(encoding="utf-8").rstrip("\r\n") if target else None
            except (OSError, UnicodeDecodeError):
                value = None
        if value:
            redaction.register(value)
        return value or None


def _is_utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # os.environ keeps undecodable bytes as lone surrogates
        return False
    return True


def register_environment(prefix: str) -> None:
    """Register every secret the environment holds, so that even a crash report masks them."""
    for name, value in os.environ.items():
        if name.startswith(prefix) or name in (STORE_KEY_VAR, "RECONCILER_NEW_STORE_KEY"):
            redaction.register(value)


class Keyring:
    """Encrypts passwords and computes their keyed fingerprints with the store key."""

    def __init__(self, key: bytes) -> None:
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError):
            raise errors.SecretError(
                f"{STORE_KEY_VAR} is not a valid key; create one with "
                "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`"
            ) from None
        raw = base64.urlsafe_b64decode(key)
        self._mac_key = hmac.new(raw, b"osr-reconciler/fingerprint/v1", hashlib.sha256).digest()

    @staticmethod
    def generate() -> bytes:
        return Fernet.generate_key()

    def encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise errors.SecretError("a stored password cannot be decrypted with this key; "
                                     f"check {STORE_KEY_VAR}") from None

    def fingerprint(self, value: str) -> str:
        return hmac.new(self._mac_key, b"password\0" + value.encode(), hashlib.sha256).hexdigest()

    def sign(self, data: bytes) -> str:
        """A MAC over a plan file, so that tampering and other stores are detected."""
        return hmac.new(self._mac_key, b"plan\0" + data, hashlib.sha256).hexdigest()

    def check_value(self) -> str:
        """Stored in the store once, to tell a wrong key from a changed password."""
        return hmac.new(self._mac_key, b"key-check", hashlib.sha256).hexdigest()
