"""Ed25519 checkpoints: signing, verification, the dict form and key handling."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.canonical import canonical_json
from audit.checkpoint import (
    Checkpoint,
    generate_signing_key,
    key_id,
    private_key_from_pem,
    private_key_to_pem,
    public_key_from_pem,
    public_key_to_pem,
    sign_checkpoint,
    verify_checkpoint,
)

ROOT = hashlib.sha256(b"root").digest()
WHEN = datetime(2026, 11, 24, 15, 6, 1, 123456, tzinfo=UTC)


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return generate_signing_key()


@pytest.fixture(scope="module")
def checkpoint(key: Ed25519PrivateKey) -> Checkpoint:
    return sign_checkpoint(key, 42, ROOT, WHEN)


def test_signature_covers_the_documented_message(key: Ed25519PrivateKey, checkpoint: Checkpoint) -> None:
    assert checkpoint.tree_size == 42
    assert checkpoint.root_hash == ROOT.hex()
    assert checkpoint.timestamp == "2026-11-24T15:06:01.123456Z"
    assert checkpoint.key_id == key_id(key.public_key())
    message = b"enclave-audit-checkpoint/v1\n" + canonical_json(
        {
            "tree_size": 42,
            "root_hash": ROOT.hex(),
            "timestamp": "2026-11-24T15:06:01.123456Z",
            "key_id": checkpoint.key_id,
        }
    )
    assert checkpoint.signed_message() == message
    # Raises InvalidSignature if the message were anything else.
    key.public_key().verify(base64.b64decode(checkpoint.signature), message)
    assert verify_checkpoint(checkpoint, key.public_key())


def test_key_id_is_a_prefix_of_the_raw_key_hash(key: Ed25519PrivateKey) -> None:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert key_id(key.public_key()) == hashlib.sha256(raw).hexdigest()[:16]


@pytest.mark.parametrize(
    "change",
    [
        {"tree_size": 43},
        {"root_hash": hashlib.sha256(b"other").hexdigest()},
        {"timestamp": "2026-11-24T15:06:02.123456Z"},
        {"signature": base64.b64encode(bytes(64)).decode()},
        {"signature": "not base64!"},
        {"signature": ""},
        {"tree_size": "42"},
        {"tree_size": None},
        {"root_hash": None},
    ],
)
def test_any_change_breaks_verification(
    key: Ed25519PrivateKey, checkpoint: Checkpoint, change: dict[str, Any]
) -> None:
    assert not verify_checkpoint(dataclasses.replace(checkpoint, **change), key.public_key())


def test_foreign_key_fails(key: Ed25519PrivateKey, checkpoint: Checkpoint) -> None:
    other = generate_signing_key()
    assert not verify_checkpoint(checkpoint, other.public_key())
    forged = sign_checkpoint(other, 42, ROOT, WHEN)
    assert not verify_checkpoint(forged, key.public_key())
    # Claiming the trusted key's id does not help a signature made with another key.
    claimed = dataclasses.replace(forged, key_id=checkpoint.key_id)
    assert not verify_checkpoint(claimed, key.public_key())


def test_signature_naming_another_key_id_fails(key: Ed25519PrivateKey, checkpoint: Checkpoint) -> None:
    # Validly signed by the trusted key, but claiming to come from another key.
    unsigned = dataclasses.replace(checkpoint, key_id="0123456789abcdef")
    signature = base64.b64encode(key.sign(unsigned.signed_message())).decode()
    assert not verify_checkpoint(dataclasses.replace(unsigned, signature=signature), key.public_key())


def test_dict_round_trip(checkpoint: Checkpoint) -> None:
    data = checkpoint.to_dict()
    assert set(data) == {"tree_size", "root_hash", "timestamp", "key_id", "signature"}
    assert Checkpoint.from_dict(data) == checkpoint


@pytest.mark.parametrize(
    "change",
    [
        {"tree_size": -1},
        {"tree_size": True},
        {"tree_size": 4.0},
        {"tree_size": "42"},
        {"root_hash": "00" * 31},
        {"root_hash": "AA" * 32},
        {"root_hash": 5},
        {"timestamp": "2026-11-24T15:06:01Z"},
        {"timestamp": 1},
        {"key_id": "0123"},
        {"key_id": "0123456789ABCDEF"},
        {"key_id": None},
        {"signature": "####"},
        {"signature": base64.b64encode(bytes(63)).decode()},
        {"signature": base64.b64encode(bytes(64)).decode().rstrip("=")},
        {"signature": base64.b64encode(bytes(64)).decode() + "\n"},
        {"signature": b"x"},
    ],
)
def test_from_dict_rejects_malformed_fields(checkpoint: Checkpoint, change: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must"):
        Checkpoint.from_dict({**checkpoint.to_dict(), **change})


@pytest.mark.parametrize("drop", ["tree_size", "signature"])
def test_from_dict_rejects_missing_fields(checkpoint: Checkpoint, drop: str) -> None:
    data = checkpoint.to_dict()
    del data[drop]
    with pytest.raises(ValueError, match="exactly the fields"):
        Checkpoint.from_dict(data)


def test_from_dict_rejects_extra_fields_and_non_objects(checkpoint: Checkpoint) -> None:
    with pytest.raises(ValueError, match="exactly the fields"):
        Checkpoint.from_dict({**checkpoint.to_dict(), "extra": 1})
    with pytest.raises(ValueError, match="exactly the fields"):
        Checkpoint.from_dict([1, 2])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("tree_size", "root", "when", "match"),
    [
        (-1, ROOT, WHEN, "tree_size"),
        (True, ROOT, WHEN, "tree_size"),
        (1, ROOT[:31], WHEN, "32-byte"),
        (1, ROOT, datetime(2026, 1, 1), "timezone-aware"),
    ],
)
def test_sign_rejects_bad_arguments(
    key: Ed25519PrivateKey, tree_size: int, root: bytes, when: datetime, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        sign_checkpoint(key, tree_size, root, when)


def test_pem_round_trips(key: Ed25519PrivateKey, checkpoint: Checkpoint) -> None:
    private_pem = private_key_to_pem(key)
    assert private_pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    reloaded = private_key_from_pem(private_pem)
    assert key_id(reloaded.public_key()) == key_id(key.public_key())
    public_pem = public_key_to_pem(key.public_key())
    assert public_pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert verify_checkpoint(checkpoint, public_key_from_pem(public_pem))


def test_non_ed25519_and_garbage_keys_are_rejected() -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_private = ec_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    ec_public = ec_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(ValueError, match="Ed25519"):
        private_key_from_pem(ec_private)
    with pytest.raises(ValueError, match="Ed25519"):
        public_key_from_pem(ec_public)
    with pytest.raises(ValueError, match="PEM"):
        public_key_from_pem(b"-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")
    with pytest.raises(ValueError, match="PEM"):
        private_key_from_pem(b"not a key")
    with pytest.raises(ValueError, match="PEM"):
        public_key_from_pem(ec_private)  # a private key where a public one is expected


def test_encrypted_private_keys_are_rejected(key: Ed25519PrivateKey) -> None:
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    with pytest.raises(ValueError, match="unencrypted"):
        private_key_from_pem(encrypted)
