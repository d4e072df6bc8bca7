"""Benchmark audit log verification and inclusion proofs.

    .venv/bin/python benchmarks/bench_audit_verify.py [--events N] [--checkpoint-every K]

Prints one figure per line: verification throughput from stored bytes and from an export file,
the time to merely SHA-256 the same bytes and the ratio, the throughput of the full per-event
checks, and inclusion proof time and size.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.canonical import ZERO_HASH, canonical_json, event_body, rfc3339_utc
from audit.checkpoint import Checkpoint, generate_signing_key, sign_checkpoint
from audit.merkle import Frontier, MemoryNodeStore, inclusion_proof, leaf_hash, verify_inclusion
from audit.verify import LogVerifier, verify_export, write_export

# Keys in sorted order, as canonical_json writes them; generate() checks samples against it.
TEMPLATE = (
    '{{"actor":"user:{actor}","details":{{"epsilon":{epsilon},"mechanism":"laplace",'
    '"query":"SELECT count(*) FROM admissions WHERE ward = ?","rows":{rows}}},'
    '"index":{index},"prev_hash":"{prev}","subject":{{"dataset":"hospital-registry",'
    '"request":"req-{request:08d}"}},"timestamp":"{timestamp}","type":"query.released"}}'
)
ACTORS = ["alice", "bob", "chidi", "dana", "élodie"]


def generate(n: int, every: int, key: Ed25519PrivateKey) -> tuple[list[bytes], list[Checkpoint], list[bytes]]:
    """N canonical events, a checkpoint every ``every`` events and at the end, the leaf hashes."""
    start = datetime(2026, 11, 24, 15, 6, 1, tzinfo=UTC)
    rng = random.Random(7)
    frontier = Frontier()
    events: list[bytes] = []
    leaves: list[bytes] = []
    checkpoints: list[Checkpoint] = []
    prev = ZERO_HASH
    for index in range(n):
        when = start + timedelta(milliseconds=37 * index)
        fields = {
            "actor": rng.choice(ACTORS),
            "epsilon": rng.choice([0.05, 0.1, 0.25, 1.0]),
            "rows": rng.randrange(10_000),
            "request": index // 3,
        }
        data = TEMPLATE.format(index=index, prev=prev, timestamp=rfc3339_utc(when), **fields).encode()
        if index % 997 == 0:  # the template must stay byte-identical to canonical_json
            body = event_body(
                index,
                when,
                "query.released",
                f"user:{fields['actor']}",
                {"dataset": "hospital-registry", "request": f"req-{fields['request']:08d}"},
                {
                    "epsilon": fields["epsilon"],
                    "mechanism": "laplace",
                    "query": "SELECT count(*) FROM admissions WHERE ward = ?",
                    "rows": fields["rows"],
                },
                prev,
            )
            assert canonical_json(body) == data
        digest = leaf_hash(data)
        prev = digest.hex()
        events.append(data)
        leaves.append(digest)
        frontier.append(digest)
        if (index + 1) % every == 0 or index + 1 == n:
            checkpoints.append(sign_checkpoint(key, index + 1, frontier.root(), when))
    return events, checkpoints, leaves


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--checkpoint-every", type=int, default=10_000)
    parser.add_argument("--full-sample", type=int, default=100_000, help="events for --full run")
    parser.add_argument("--proofs", type=int, default=1_000)
    args = parser.parse_args()
    n = args.events

    key = generate_signing_key()
    public_key = key.public_key()
    events, checkpoints, leaves = generate(n, args.checkpoint_every, key)
    size = sum(map(len, events))
    print(f"events: {n}, {size / n:.0f} bytes each on average, {len(checkpoints)} checkpoints")

    def verify_stored(count: int, full: bool) -> float:
        verifier = LogVerifier(public_key, full=full)
        add_event, add_checkpoint = verifier.add_event_bytes, verifier.add_checkpoint
        by_size = {cp.tree_size: cp for cp in checkpoints}
        began = time.perf_counter()
        for number, data in enumerate(events[:count], 1):
            add_event(data)
            cp = by_size.get(number)
            if cp is not None:
                add_checkpoint(cp)
        result = verifier.result()
        elapsed = time.perf_counter() - began
        assert result.ok, result
        return elapsed

    elapsed = verify_stored(n, full=False)
    print(f"verify stored events: {elapsed:.2f} s total")
    print(f"verify stored events: {n / elapsed:,.0f} events/s")

    sha256 = hashlib.sha256
    began = time.perf_counter()
    for data in events:
        sha256(data).digest()
    hashing = time.perf_counter() - began
    print(f"sha256 of the same bytes: {hashing:.2f} s")
    print(f"ratio verify / sha256: {elapsed / hashing:.2f}")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "audit.jsonl"
        write_export(path, events, checkpoints)
        began = time.perf_counter()
        result = verify_export(path, public_key)
        exported = time.perf_counter() - began
        assert result.ok, result
    print(f"verify export file: {exported:.2f} s, {n / exported:,.0f} events/s")

    sample = min(n, args.full_sample)
    elapsed_full = verify_stored(sample, full=True)
    print(f"full per-event checks (full=True, {sample} events): {sample / elapsed_full:,.0f} events/s")

    store = MemoryNodeStore(leaves)
    rng = random.Random(11)
    indices = [rng.randrange(n) for _ in range(args.proofs)]
    began = time.perf_counter()
    proofs = [inclusion_proof(index, n, store) for index in indices]
    proving = time.perf_counter() - began
    root = store.root()
    assert all(
        verify_inclusion(leaves[i], i, n, proof, root) for i, proof in zip(indices, proofs, strict=True)
    )
    bound = 32 * math.ceil(math.log2(n)) if n > 1 else 0
    longest = max(32 * len(proof) for proof in proofs)
    print(f"inclusion proof: {proving / len(proofs) * 1e6:.0f} µs each (mean of {len(proofs)})")
    print(f"inclusion proof size: {longest} bytes max vs 32*ceil(log2 n) = {bound} bytes")


if __name__ == "__main__":
    main()
