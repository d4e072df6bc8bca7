"""Envelope-encrypted dataset blobs.

Each dataset's Parquet bytes are encrypted under its own random 256-bit data key with AES-256-GCM in
fixed-size segments (nonce = random prefix ‖ segment counter ‖ last-segment flag, associated data =
dataset id ‖ header). Segmenting bounds memory for large files and makes truncation, reordering and
splicing detectable. The data key is stored only wrapped by the key provider's KEK, so rotating the
KEK re-wraps keys without touching the data.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from enclave_api.errors import IntegrityFailure
from enclave_api.fsutil import ensure_private_dir
from enclave_api.storage.keys import KeyProvider

MAGIC = b"ENCLAVE-DS1\n"
PREFIX_BYTES = 7
SEGMENT_BYTES = 1 << 20
TAG_BYTES = 16


@dataclass(frozen=True)
class StoredBlob:
    blob_name: str
    kek_id: str
    wrapped_key: bytes
    content_sha256: str
    plaintext_bytes: int


def _nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    return prefix + counter.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


def _chunks(src: BinaryIO) -> Iterator[tuple[bytes, bool]]:
    """Yield ``(chunk, is_last)``; an empty input yields one empty last chunk."""
    current = src.read(SEGMENT_BYTES)
    while True:
        following = src.read(SEGMENT_BYTES)
        yield current, not following
        if not following:
            return
        current = following


def encrypt_stream(src: BinaryIO, dst: BinaryIO, key: bytes, context: str) -> tuple[str, int]:
    """Encrypt ``src`` into ``dst``; return the plaintext's SHA-256 hex and length."""
    prefix = secrets.token_bytes(PREFIX_BYTES)
    header = MAGIC + prefix
    dst.write(header)
    aead, aad = AESGCM(key), context.encode() + header
    digest, total = hashlib.sha256(), 0
    for counter, (chunk, last) in enumerate(_chunks(src)):
        digest.update(chunk)
        total += len(chunk)
        dst.write(aead.encrypt(_nonce(prefix, counter, last), chunk, aad))
    return digest.hexdigest(), total


def decrypt_stream(src: BinaryIO, dst: BinaryIO, key: bytes, context: str) -> str:
    """Decrypt into ``dst`` and return the plaintext SHA-256; raise on any tampering or truncation."""
    header = src.read(len(MAGIC) + PREFIX_BYTES)
    if len(header) != len(MAGIC) + PREFIX_BYTES or not header.startswith(MAGIC):
        raise IntegrityFailure(f"dataset {context!r}: not an enclave ciphertext")
    prefix, aead, aad = header[len(MAGIC) :], AESGCM(key), context.encode() + header
    digest, counter = hashlib.sha256(), 0
    segment = src.read(SEGMENT_BYTES + TAG_BYTES)
    while True:
        following = src.read(SEGMENT_BYTES + TAG_BYTES)
        last = not following
        try:
            chunk = aead.decrypt(_nonce(prefix, counter, last), segment, aad)
        except InvalidTag as exc:
            raise IntegrityFailure(f"dataset {context!r}: segment {counter} failed authentication") from exc
        digest.update(chunk)
        dst.write(chunk)
        if last:
            return digest.hexdigest()
        segment, counter = following, counter + 1


class EncryptedDatasetStore:
    """Blob files under ``root``, one per dataset version, readable only with the key provider."""

    def __init__(self, root: Path, keys: KeyProvider) -> None:
        self.root = ensure_private_dir(root)
        self.keys = keys

    def put(self, dataset_id: str, plaintext: BinaryIO) -> StoredBlob:
        """Encrypt ``plaintext`` under a fresh data key; the blob is durable when this returns."""
        data_key = AESGCM.generate_key(bit_length=256)
        blob_name = f"{dataset_id}.{secrets.token_hex(8)}.enc"
        path = self.root / blob_name
        with open(path, "xb") as dst:
            os.chmod(path, 0o600)
            sha, size = encrypt_stream(plaintext, dst, data_key, dataset_id)
            dst.flush()
            os.fsync(dst.fileno())
        kek_id, wrapped = self.keys.wrap(data_key, dataset_id)
        return StoredBlob(blob_name, kek_id, wrapped, sha, size)

    def read(self, dataset_id: str, blob: StoredBlob, dst: BinaryIO) -> None:
        """Decrypt the dataset into ``dst``, checking every segment and the recorded SHA-256."""
        data_key = self.keys.unwrap(blob.kek_id, blob.wrapped_key, dataset_id)
        try:
            src = open(self.root / blob.blob_name, "rb")  # noqa: SIM115
        except FileNotFoundError as exc:
            raise IntegrityFailure(f"dataset {dataset_id!r}: ciphertext is missing") from exc
        with src:
            sha = decrypt_stream(src, dst, data_key, dataset_id)
        if sha != blob.content_sha256:
            raise IntegrityFailure(f"dataset {dataset_id!r}: content hash mismatch")

    def discard(self, blob_name: str) -> None:
        """Remove a blob whose registration did not commit."""
        (self.root / blob_name).unlink(missing_ok=True)


def quarantine_context(sha256: str) -> str:
    """The blob context (AAD and key-wrap context) of an egress file with this plaintext SHA-256."""
    return f"egress-{sha256}"
