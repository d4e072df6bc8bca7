"""Ed25519 signatures over canonical JSON, with a domain string per kind of document.

The domain (``enclave-release/v1``, ``enclave-egress/v1``) is signed in front of the document so that a
signature over one kind can never be replayed as another.
"""

from __future__ import annotations

import base64
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from audit.canonical import canonical_json
from audit.checkpoint import key_id


def sign_document(domain: bytes, body: dict[str, Any], key: Ed25519PrivateKey) -> str:
    """Base64 Ed25519 signature over ``domain ‖ canonical_json(body)``."""
    return base64.b64encode(key.sign(domain + canonical_json(body))).decode()


def verify_document(
    domain: bytes, body: dict[str, Any], signature: str, public_key: Ed25519PublicKey
) -> bool:
    """True iff ``signature`` is the enclave's over exactly ``body`` and ``body`` names that key."""
    try:
        public_key.verify(base64.b64decode(signature, validate=True), domain + canonical_json(body))
    except (InvalidSignature, ValueError):
        return False
    return body.get("key_id") == key_id(public_key)
