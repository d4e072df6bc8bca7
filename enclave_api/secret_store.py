"""Loading (and, in the embedded mode, generating) the service's secrets.

Embedded mode: on first run every secret is generated into ``DATA_DIR/secrets`` with mode 0600, and
the audit public key is written beside it for auditors. Production mode: every secret must be
configured; a missing one is a :class:`ConfigurationError` at startup, never a default.
"""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass
from pathlib import Path

from audit.checkpoint import (
    generate_signing_key,
    private_key_from_pem,
    private_key_to_pem,
    public_key_to_pem,
)
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from enclave_api.errors import ConfigurationError
from enclave_api.fsutil import ensure_private_dir, write_private_file
from enclave_api.settings import Mode, Settings
from enclave_api.storage.keys import KEY_PROVIDERS, KeyProvider, LocalKeyFileProvider


@dataclass(frozen=True)
class Secrets:
    token_pepper: bytes
    pseudonym_key: bytes
    signing_key: Ed25519PrivateKey
    key_provider: KeyProvider


def _read_or_generate_hex(path: Path, generate: bool) -> bytes:
    if not path.exists():
        if not generate:
            raise ConfigurationError(f"missing secret {path}")
        # Another process may generate it first; then read theirs.
        with contextlib.suppress(FileExistsError):
            write_private_file(path, secrets.token_hex(32).encode())
    value = path.read_text(encoding="ascii").strip()
    if len(value) < 64:
        raise ConfigurationError(f"secret {path} is too short")
    return value.encode()


def _signing_key(path: Path, generate: bool) -> Ed25519PrivateKey:
    if not path.exists():
        if not generate:
            raise ConfigurationError(f"missing audit signing key {path}")
        with contextlib.suppress(FileExistsError):
            write_private_file(path, private_key_to_pem(generate_signing_key()))
    try:
        return private_key_from_pem(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"unusable audit signing key {path}: {exc}") from exc


def public_key_path(settings: Settings) -> Path:
    return settings.data_dir / "audit-public-key.pem"


def load_secrets(settings: Settings) -> Secrets:
    """Return the configured secrets, generating them first in the embedded mode."""
    embedded = settings.mode is Mode.EMBEDDED
    if embedded:
        ensure_private_dir(settings.secrets_dir)
    missing = []
    if not embedded:
        missing += [
            name
            for name in ("token_pepper", "pseudonym_key", "kek_file", "audit_signing_key_file")
            if getattr(settings, name) is None
        ]
    if missing:
        raise ConfigurationError(
            "production mode needs these secrets configured: "
            + ", ".join(f"ENCLAVE_{m.upper()}" for m in missing)
        )
    pepper = (
        settings.token_pepper.get_secret_value().encode()
        if settings.token_pepper
        else _read_or_generate_hex(settings.secrets_dir / "token_pepper", embedded)
    )
    pseudonym = (
        settings.pseudonym_key.get_secret_value().encode()
        if settings.pseudonym_key
        else _read_or_generate_hex(settings.secrets_dir / "pseudonym_key", embedded)
    )
    signing = _signing_key(
        settings.audit_signing_key_file or settings.secrets_dir / "audit_signing_key.pem", embedded
    )
    provider_cls = KEY_PROVIDERS.get(settings.key_provider)
    if provider_cls is None:
        raise ConfigurationError(f"unknown key provider {settings.key_provider!r}")
    if provider_cls is not LocalKeyFileProvider:
        raise ConfigurationError(f"key provider {settings.key_provider!r} needs its own settings")
    provider = LocalKeyFileProvider(settings.kek_file or settings.secrets_dir / "kek.json", create=embedded)
    pub = public_key_path(settings)
    pem = public_key_to_pem(signing.public_key())
    if not pub.exists() or pub.read_bytes() != pem:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        pub.write_bytes(pem)
        pub.chmod(0o644)
    return Secrets(pepper, pseudonym, signing, provider)
