"""Envelope encryption of dataset blobs, tamper detection and KEK rotation."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from enclave_api.context import Enclave
from enclave_api.errors import IntegrityFailure
from enclave_api.models import DataKey
from enclave_api.services import datasets
from enclave_api.storage import store as store_module
from enclave_api.storage.keys import LocalKeyFileProvider
from enclave_api.storage.store import (
    MAGIC,
    PREFIX_BYTES,
    SEGMENT_BYTES,
    TAG_BYTES,
    EncryptedDatasetStore,
    StoredBlob,
)


@pytest.fixture
def store(tmp_path: Path) -> EncryptedDatasetStore:
    return EncryptedDatasetStore(tmp_path / "blobs", LocalKeyFileProvider(tmp_path / "kek.json", create=True))


def _roundtrip(store: EncryptedDatasetStore, blob: StoredBlob, name: str = "ds") -> bytes:
    out = io.BytesIO()
    store.read(name, blob, out)
    return out.getvalue()


@pytest.mark.parametrize(
    "size", [0, 1, SEGMENT_BYTES - 1, SEGMENT_BYTES, SEGMENT_BYTES + 1, 3 * SEGMENT_BYTES + 17]
)
def test_roundtrip_any_size(store: EncryptedDatasetStore, size: int) -> None:
    data = os.urandom(size)
    blob = store.put("ds", io.BytesIO(data))
    assert _roundtrip(store, blob) == data
    assert blob.plaintext_bytes == size


def _segments(raw: bytes) -> tuple[bytes, list[bytes]]:
    header, body = raw[: len(MAGIC) + PREFIX_BYTES], raw[len(MAGIC) + PREFIX_BYTES :]
    step = SEGMENT_BYTES + TAG_BYTES
    return header, [body[i : i + step] for i in range(0, len(body), step)]


@pytest.mark.parametrize("attack", ["flip", "truncate_segment", "drop_last", "swap", "append", "header"])
def test_tampering_is_detected(store: EncryptedDatasetStore, attack: str) -> None:
    data = os.urandom(2 * SEGMENT_BYTES + 100)
    blob = store.put("ds", io.BytesIO(data))
    path = store.root / blob.blob_name
    header, segments = _segments(path.read_bytes())
    if attack == "flip":
        mutated = bytearray(path.read_bytes())
        mutated[-5] ^= 0x80
        path.write_bytes(bytes(mutated))
    elif attack == "truncate_segment":
        path.write_bytes(header + b"".join(segments)[:-1])
    elif attack == "drop_last":
        path.write_bytes(header + b"".join(segments[:-1]))
    elif attack == "swap":
        path.write_bytes(header + segments[1] + segments[0] + segments[2])
    elif attack == "append":
        path.write_bytes(header + b"".join(segments) + segments[0])
    elif attack == "header":
        path.write_bytes(b"X" + header[1:] + b"".join(segments))
    with pytest.raises(IntegrityFailure):
        _roundtrip(store, blob)


def test_blob_is_bound_to_its_dataset(store: EncryptedDatasetStore) -> None:
    blob = store.put("ds", io.BytesIO(b"secret rows"))
    with pytest.raises(IntegrityFailure):
        _roundtrip(store, blob, name="other")


def test_wrong_kek_or_corrupt_wrapped_key(store: EncryptedDatasetStore, tmp_path: Path) -> None:
    blob = store.put("ds", io.BytesIO(b"secret rows"))
    corrupt = StoredBlob(blob.blob_name, blob.kek_id, blob.wrapped_key[:-1] + b"\x00", blob.content_sha256, 0)
    with pytest.raises(IntegrityFailure):
        _roundtrip(store, corrupt)
    stranger = EncryptedDatasetStore(store.root, LocalKeyFileProvider(tmp_path / "other.json", create=True))
    with pytest.raises(IntegrityFailure):
        _roundtrip(stranger, blob)


def test_missing_blob_is_an_integrity_failure(store: EncryptedDatasetStore) -> None:
    blob = store.put("ds", io.BytesIO(b"rows"))
    (store.root / blob.blob_name).unlink()
    with pytest.raises(IntegrityFailure, match="missing"):
        _roundtrip(store, blob)


def test_segment_nonces_never_repeat_across_blobs(store: EncryptedDatasetStore) -> None:
    first = store.put("ds", io.BytesIO(b"same"))
    second = store.put("ds", io.BytesIO(b"same"))
    a = (store.root / first.blob_name).read_bytes()
    b = (store.root / second.blob_name).read_bytes()
    assert a != b
    assert a[: len(MAGIC)] == store_module.MAGIC


def test_keyring_file_is_private(tmp_path: Path) -> None:
    LocalKeyFileProvider(tmp_path / "k" / "kek.json", create=True)
    assert oct((tmp_path / "k" / "kek.json").stat().st_mode & 0o777) == "0o600"
    assert oct((tmp_path / "k").stat().st_mode & 0o777) == "0o700"


def test_kek_rotation_rewraps_without_touching_data(seeded_enclave: Enclave) -> None:
    blobs = {p.name: p.read_bytes() for p in seeded_enclave.store.root.iterdir()}
    with seeded_enclave.read() as session:
        before = {k.dataset_id: (k.kek_id, bytes(k.wrapped_key)) for k in session.query(DataKey)}
    old_kek = seeded_enclave.secrets.key_provider.current_kek_id
    new_kek, count = datasets.rotate_kek(seeded_enclave, "test")
    assert count == len(before) == 4
    assert new_kek != old_kek
    with seeded_enclave.read() as session:
        after = {k.dataset_id: (k.kek_id, bytes(k.wrapped_key)) for k in session.query(DataKey)}
        assert all(kek == new_kek for kek, _ in after.values())
        assert all(after[d][1] != before[d][1] for d in before)
        table = datasets.load_table(seeded_enclave, session, datasets.get_dataset(session, "wdbc"))
    assert table.num_rows == 569
    assert {p.name: p.read_bytes() for p in seeded_enclave.store.root.iterdir()} == blobs
    keyring = json.loads((seeded_enclave.settings.secrets_dir / "kek.json").read_text())
    assert set(keyring["keys"]) == {new_kek}, "the old KEK is retired once nothing uses it"


def test_another_process_sees_the_rotated_keyring(seeded_enclave: Enclave) -> None:
    """A running API keeps working after `enclave keys rotate` ran in another process."""
    other = LocalKeyFileProvider(seeded_enclave.settings.secrets_dir / "kek.json")
    before = other.current_kek_id
    new_kek, _ = datasets.rotate_kek(seeded_enclave, "test")
    assert before != new_kek
    assert other.current_kek_id == new_kek
    with seeded_enclave.read() as session:
        key = session.get(DataKey, "wdbc")
        assert key is not None
        assert len(other.unwrap(key.kek_id, bytes(key.wrapped_key), "wdbc")) == 32
