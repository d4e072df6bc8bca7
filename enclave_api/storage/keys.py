"""Key providers: the plug-in point that holds key-encryption keys (KEKs).

A provider wraps and unwraps per-dataset data keys. Implementations override :meth:`KeyProvider.wrap`,
:meth:`KeyProvider.unwrap`, :meth:`KeyProvider.rotate` and :meth:`KeyProvider.retire`; they are chosen
by name (``Settings.key_provider``) through :data:`KEY_PROVIDERS`. The local provider keeps a keyring
file (0600); a KMS provider would keep the KEK outside the machine and call it for wrap/unwrap.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from abc import ABC, abstractmethod
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from enclave_api.errors import ConfigurationError, IntegrityFailure
from enclave_api.fsutil import write_private_file

NONCE_BYTES = 12


class KeyProvider(ABC):
    """Wraps data keys under the current KEK; unwraps under whichever KEK wrapped them."""

    @property
    @abstractmethod
    def current_kek_id(self) -> str: ...

    @abstractmethod
    def wrap(self, data_key: bytes, context: str) -> tuple[str, bytes]:
        """Return ``(kek_id, wrapped)``; ``context`` (the dataset id) is bound as associated data."""

    @abstractmethod
    def unwrap(self, kek_id: str, wrapped: bytes, context: str) -> bytes:
        """Return the data key or raise :class:`IntegrityFailure` (wrong key, context or tampering)."""

    @abstractmethod
    def rotate(self) -> str:
        """Create a new KEK, make it current and return its id (older KEKs still unwrap)."""

    @abstractmethod
    def retire(self, kek_ids: set[str]) -> None:
        """Forget KEKs that no data key uses any more."""


class LocalKeyFileProvider(KeyProvider):
    """KEKs (AES-256) in a JSON keyring file: ``{"current": id, "keys": {id: base64}}``, mode 0600."""

    def __init__(self, path: Path, create: bool = False) -> None:
        self.path = path
        if not path.exists():
            if not create:
                raise ConfigurationError(f"key-encryption keyring {path} does not exist")
            self._keys: dict[str, bytes] = {}
            self._current = ""
            self._loaded_stamp = (0, 0)
            self.rotate()
        else:
            self._load()

    def _stamp(self) -> tuple[int, int]:
        stat = self.path.stat()
        return stat.st_mtime_ns, stat.st_size

    def _maybe_reload(self) -> None:
        # Another process (e.g. `enclave keys rotate`) may have changed the keyring.
        if self._stamp() != self._loaded_stamp:
            self._load()

    def _load(self) -> None:
        try:
            self._loaded_stamp = self._stamp()
            doc = json.loads(self.path.read_text(encoding="utf-8"))
            self._keys = {k: base64.b64decode(v, validate=True) for k, v in doc["keys"].items()}
            self._current = doc["current"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigurationError(f"unreadable keyring {self.path}: {exc}") from exc
        if self._current not in self._keys or any(len(k) != 32 for k in self._keys.values()):
            raise ConfigurationError(f"keyring {self.path} is inconsistent")

    def _save(self) -> None:
        doc = {
            "current": self._current,
            "keys": {k: base64.b64encode(v).decode() for k, v in self._keys.items()},
        }
        write_private_file(self.path, json.dumps(doc, indent=2).encode(), replace=True)
        self._loaded_stamp = self._stamp()

    @property
    def current_kek_id(self) -> str:
        self._maybe_reload()
        return self._current

    @property
    def kek_ids(self) -> set[str]:
        return set(self._keys)

    def wrap(self, data_key: bytes, context: str) -> tuple[str, bytes]:
        self._maybe_reload()
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(self._keys[self._current]).encrypt(nonce, data_key, context.encode())
        return self._current, nonce + sealed

    def unwrap(self, kek_id: str, wrapped: bytes, context: str) -> bytes:
        self._maybe_reload()
        key = self._keys.get(kek_id)
        if key is None:
            raise IntegrityFailure(f"key-encryption key {kek_id!r} is not in the keyring")
        try:
            return AESGCM(key).decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], context.encode())
        except InvalidTag as exc:
            raise IntegrityFailure(f"data key of {context!r} failed authentication") from exc

    def rotate(self) -> str:
        if self.path.exists():
            self._maybe_reload()
        kek_id = f"kek-{secrets.token_hex(4)}"
        self._keys[kek_id] = AESGCM.generate_key(bit_length=256)
        self._current = kek_id
        self._save()
        return kek_id

    def retire(self, kek_ids: set[str]) -> None:
        self._maybe_reload()
        if self._current in kek_ids:
            raise ValueError("cannot retire the current key-encryption key")
        for kek_id in kek_ids:
            self._keys.pop(kek_id, None)
        self._save()


KEY_PROVIDERS: dict[str, type[KeyProvider]] = {"local": LocalKeyFileProvider}
