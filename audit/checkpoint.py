"""Ed25519-signed checkpoints: the enclave's signed statement of the log's size and Merkle root.

Signed message: ``b"enclave-audit-checkpoint/v1\\n"`` followed by the canonical JSON of
``{"tree_size", "root_hash", "timestamp", "key_id"}``. The prefix keeps a checkpoint signature from
ever being valid for anything else the same key signs.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from audit.canonical import canonical_json, is_hex_hash, parse_rfc3339_utc, rfc3339_utc

SIGNATURE_DOMAIN = b"enclave-audit-checkpoint/v1\n"

_FIELDS = ("tree_size", "root_hash", "timestamp", "key_id", "signature")
_KEY_ID_LENGTH = 16
_SIGNATURE_LENGTH = 64


@dataclass(frozen=True)
class Checkpoint:
    """A signed tree head. Constructing one checks nothing; :meth:`from_dict` and
    :func:`verify_checkpoint` do, so a tampered database row still loads and then fails to verify.
    """

    tree_size: int
    root_hash: str  # lowercase hex MTH of the first tree_size events
    timestamp: str  # RFC 3339 UTC, when it was signed
    key_id: str  # see key_id()
    signature: str  # base64 Ed25519 signature over signed_message()

    def signed_message(self) -> bytes:
        """The exact bytes the signature covers."""
        body = {
            "tree_size": self.tree_size,
            "root_hash": self.root_hash,
            "timestamp": self.timestamp,
            "key_id": self.key_id,
        }
        return SIGNATURE_DOMAIN + canonical_json(body)

    def to_dict(self) -> dict[str, Any]:
        """The checkpoint as a JSON-ready dict (the export and API format)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Checkpoint:
        """Parse :meth:`to_dict` output; ``ValueError`` on any missing, extra or malformed field.

        The signature is not checked here; use :func:`verify_checkpoint`.
        """
        if not isinstance(data, Mapping) or set(data) != set(_FIELDS):
            raise ValueError(f"a checkpoint has exactly the fields {', '.join(_FIELDS)}")
        checkpoint = cls(**{name: data[name] for name in _FIELDS})
        problem = _malformation(checkpoint)
        if problem:
            raise ValueError(problem)
        return checkpoint


def _malformation(cp: Checkpoint) -> str | None:
    """What is wrong with the checkpoint's fields, or None if they are well formed."""
    if isinstance(cp.tree_size, bool) or not isinstance(cp.tree_size, int) or cp.tree_size < 0:
        return "tree_size must be a non-negative integer"
    if not is_hex_hash(cp.root_hash):
        return "root_hash must be 64 lowercase hex characters"
    try:
        parse_rfc3339_utc(cp.timestamp)
    except ValueError:
        return "timestamp must be UTC RFC 3339 with microseconds"
    if not (
        isinstance(cp.key_id, str)
        and len(cp.key_id) == _KEY_ID_LENGTH
        and all(c in "0123456789abcdef" for c in cp.key_id)
    ):
        return f"key_id must be {_KEY_ID_LENGTH} lowercase hex characters"
    if _decode_signature(cp.signature) is None:
        return f"signature must be the base64 of {_SIGNATURE_LENGTH} bytes"
    return None


def _decode_signature(text: object) -> bytes | None:
    if not isinstance(text, str):
        return None
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:  # binascii.Error, or text that is not ASCII
        return None
    # Require the canonical encoding so a checkpoint has exactly one serialised form.
    if len(raw) != _SIGNATURE_LENGTH or base64.b64encode(raw).decode("ascii") != text:
        return None
    return raw


def _raw_public_bytes(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public_key: Ed25519PublicKey) -> str:
    """First 16 hex characters of SHA-256 over the raw 32-byte public key."""
    return hashlib.sha256(_raw_public_bytes(public_key)).hexdigest()[:_KEY_ID_LENGTH]


def sign_checkpoint(
    private_key: Ed25519PrivateKey, tree_size: int, root_hash: bytes, timestamp: datetime
) -> Checkpoint:
    """Sign the tree head (``tree_size``, ``root_hash``) as of the aware datetime ``timestamp``."""
    if isinstance(tree_size, bool) or not isinstance(tree_size, int) or tree_size < 0:
        raise ValueError(f"tree_size must be a non-negative integer, not {tree_size!r}")
    if len(root_hash) != 32:
        raise ValueError("root_hash must be a 32-byte SHA-256 digest")
    unsigned = Checkpoint(
        tree_size=tree_size,
        root_hash=root_hash.hex(),
        timestamp=rfc3339_utc(timestamp),
        key_id=key_id(private_key.public_key()),
        signature="",
    )
    signature = private_key.sign(unsigned.signed_message())
    return Checkpoint(
        tree_size=unsigned.tree_size,
        root_hash=unsigned.root_hash,
        timestamp=unsigned.timestamp,
        key_id=unsigned.key_id,
        signature=base64.b64encode(signature).decode("ascii"),
    )


def verify_checkpoint(cp: Checkpoint, public_key: Ed25519PublicKey) -> bool:
    """True iff ``cp`` is well formed, names ``public_key`` and carries its valid signature.

    Never raises: anything malformed is simply not a valid checkpoint.
    """
    if _malformation(cp) is not None or cp.key_id != key_id(public_key):
        return False
    signature = _decode_signature(cp.signature)
    if signature is None:
        return False
    try:
        public_key.verify(signature, cp.signed_message())
    except InvalidSignature:
        return False
    return True


def generate_signing_key() -> Ed25519PrivateKey:
    """A fresh Ed25519 checkpoint signing key."""
    return Ed25519PrivateKey.generate()


def private_key_to_pem(private_key: Ed25519PrivateKey) -> bytes:
    """Unencrypted PKCS#8 PEM; protect the file it goes into."""
    return private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def private_key_from_pem(pem: bytes) -> Ed25519PrivateKey:
    """Load an unencrypted PKCS#8 PEM Ed25519 key; ``ValueError`` for anything else."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (TypeError, ValueError) as exc:  # TypeError: the key is encrypted
        raise ValueError(f"not an unencrypted PEM private key: {exc}") from exc
    except UnsupportedAlgorithm as exc:
        raise ValueError(f"unsupported private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"checkpoint keys are Ed25519, not {type(key).__name__}")
    return key


def public_key_to_pem(public_key: Ed25519PublicKey) -> bytes:
    """PEM SubjectPublicKeyInfo: the form published for offline verification."""
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_key_from_pem(pem: bytes) -> Ed25519PublicKey:
    """Load a PEM SubjectPublicKeyInfo Ed25519 key; ``ValueError`` for anything else."""
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as exc:
        raise ValueError(f"not a PEM public key: {exc}") from exc
    except UnsupportedAlgorithm as exc:
        raise ValueError(f"unsupported public key: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"checkpoint keys are Ed25519, not {type(key).__name__}")
    return key
