"""RFC 9162 Merkle tree: known vectors, and a naive recursive reference for everything else."""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Collection

import pytest
from hypothesis import given
from hypothesis import strategies as st

from audit.merkle import (
    EMPTY_ROOT,
    Frontier,
    MemoryNodeStore,
    NodeKey,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_at,
    root_from_leaves,
    verify_consistency,
    verify_inclusion,
)

# --- Reference: RFC 9162 §2.1 written as directly as possible, with its own hashing -------------


def ref_leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def ref_node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def ref_k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(leaves: list[bytes]) -> bytes:
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = ref_k(len(leaves))
    return ref_node(ref_mth(leaves[:k]), ref_mth(leaves[k:]))


def ref_path(m: int, leaves: list[bytes]) -> list[bytes]:
    if len(leaves) == 1:
        return []
    k = ref_k(len(leaves))
    if m < k:
        return [*ref_path(m, leaves[:k]), ref_mth(leaves[k:])]
    return [*ref_path(m - k, leaves[k:]), ref_mth(leaves[:k])]


def ref_subproof(m: int, leaves: list[bytes], whole: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if whole else [ref_mth(leaves)]
    k = ref_k(n)
    if m <= k:
        return [*ref_subproof(m, leaves[:k], whole), ref_mth(leaves[k:])]
    return [*ref_subproof(m - k, leaves[k:], False), ref_mth(leaves[:k])]


LEAVES = [ref_leaf(i.to_bytes(4, "big")) for i in range(300)]


class CountingStore(MemoryNodeStore):
    """Records every get_nodes call, as the database reader would see them."""

    def __init__(self, leaves: list[bytes]) -> None:
        super().__init__(leaves)
        self.calls: list[int] = []

    def get_nodes(self, keys: Collection[NodeKey]) -> dict[NodeKey, bytes]:
        self.calls.append(len(keys))
        return super().get_nodes(keys)


# --- Known answers from transparency-dev/merkle (Apache-2.0): testonly/constants.go, ------------
# --- rfc6962/rfc6962_test.go, testonly/reference_test.go and proof/verify_test.go. -------------

VECTOR_INPUTS = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
VECTOR_LEAVES = [leaf_hash(data) for data in VECTOR_INPUTS]
VECTOR_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# NodeHashes(): [level][index] of the complete subtrees of the 8-leaf tree.
VECTOR_NODES = [
    [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    [
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    [
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    ["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
]
# refInclusionProofVectors: (index, size, path), 0-based leaf index.
VECTOR_INCLUSION = [
    (0, 1, []),
    (0, 2, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"]),
    (1, 2, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]
# consistencyProofs: (size1, size2, proof).
VECTOR_CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def test_hasher_vectors() -> None:
    assert EMPTY_ROOT.hex() == VECTOR_ROOTS[0]
    assert leaf_hash(b"").hex() == VECTOR_ROOTS[1]
    assert leaf_hash(b"L123456").hex() == ("395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56")
    assert node_hash(b"N123", b"N456").hex() == (
        "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb"
    )


@pytest.mark.parametrize("size", range(9))
def test_vector_roots(size: int) -> None:
    leaves = VECTOR_LEAVES[:size]
    assert root_from_leaves(leaves).hex() == VECTOR_ROOTS[size]
    frontier = Frontier()
    for leaf in leaves:
        frontier.append(leaf)
    assert frontier.root().hex() == VECTOR_ROOTS[size]
    store = MemoryNodeStore(leaves)
    assert store.root().hex() == VECTOR_ROOTS[size]
    assert root_at(size, MemoryNodeStore(VECTOR_LEAVES)).hex() == VECTOR_ROOTS[size]


def test_vector_nodes_are_what_append_reports() -> None:
    frontier = Frontier()
    reported = {}
    for leaf in VECTOR_LEAVES:
        reported.update({(lv, ix): h.hex() for lv, ix, h in frontier.append(leaf)})
    expected = {
        (level, index): digest
        for level, row in enumerate(VECTOR_NODES)
        for index, digest in enumerate(row)
        if level > 0
    }
    assert reported == expected
    store = MemoryNodeStore(VECTOR_LEAVES)
    assert {key: h.hex() for key, h in store.get_nodes(list(expected)).items()} == expected


@pytest.mark.parametrize(("index", "size", "path"), VECTOR_INCLUSION)
def test_vector_inclusion(index: int, size: int, path: list[str]) -> None:
    proof = inclusion_proof(index, size, MemoryNodeStore(VECTOR_LEAVES))
    assert [p.hex() for p in proof] == path
    root = bytes.fromhex(VECTOR_ROOTS[size])
    assert verify_inclusion(VECTOR_LEAVES[index], index, size, proof, root)


@pytest.mark.parametrize(("old", "new", "path"), VECTOR_CONSISTENCY)
def test_vector_consistency(old: int, new: int, path: list[str]) -> None:
    proof = consistency_proof(old, new, MemoryNodeStore(VECTOR_LEAVES))
    assert [p.hex() for p in proof] == path
    old_root, new_root = bytes.fromhex(VECTOR_ROOTS[old]), bytes.fromhex(VECTOR_ROOTS[new])
    assert verify_consistency(old, new, old_root, new_root, proof)


# --- Property tests against the reference ---------------------------------------------------

sizes = st.integers(min_value=1, max_value=300)


@given(size=sizes)
def test_roots_match_reference(size: int) -> None:
    leaves = LEAVES[:size]
    expected = ref_mth(leaves)
    assert root_from_leaves(leaves) == expected
    assert MemoryNodeStore(leaves).root() == expected
    frontier = Frontier()
    for leaf in leaves:
        frontier.append(leaf)
    assert frontier.root() == expected


@given(size=sizes, cuts=st.lists(st.integers(min_value=0, max_value=300), max_size=8))
def test_frontier_extend_in_any_batches_equals_append(size: int, cuts: list[int]) -> None:
    leaves = LEAVES[:size]
    one_by_one = Frontier()
    for leaf in leaves:
        one_by_one.append(leaf)
    batched, store = Frontier(), MemoryNodeStore()
    bounds = [0, *sorted(c for c in cuts if c < size), size]
    for start, stop in itertools.pairwise(bounds):
        batched.extend(leaves[start:stop])
        store.extend(leaves[start:stop])
        assert batched.root() == ref_mth(leaves[:stop]) == store.root()
    assert batched.to_json() == one_by_one.to_json()
    assert batched.size == one_by_one.size == store.size == size


@given(data=st.data(), size=sizes)
def test_inclusion_proofs_match_reference(data: st.DataObject, size: int) -> None:
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    leaves = LEAVES[:size]
    store = CountingStore(LEAVES)  # more leaves than the tree: proofs must not look past size
    proof = inclusion_proof(index, size, store)
    assert proof == ref_path(index, leaves)
    assert len(proof) <= math.ceil(math.log2(size))
    assert len(store.calls) <= 1
    root = ref_mth(leaves)
    assert verify_inclusion(leaves[index], index, size, proof, root)
    assert not verify_inclusion(leaves[index], index, size, proof, SOME_HASH)
    other = (index + 1) % size
    if other != index:
        assert not verify_inclusion(leaves[other], index, size, proof, root)


@given(data=st.data(), new=sizes)
def test_consistency_proofs_match_reference(data: st.DataObject, new: int) -> None:
    old = data.draw(st.integers(min_value=1, max_value=new))
    store = CountingStore(LEAVES)
    proof = consistency_proof(old, new, store)
    assert proof == ref_subproof(old, LEAVES[:new], True)
    assert len(proof) <= math.ceil(math.log2(new)) + (0 if old == new else 1)
    assert len(store.calls) <= 1
    old_root, new_root = ref_mth(LEAVES[:old]), ref_mth(LEAVES[:new])
    assert verify_consistency(old, new, old_root, new_root, proof)
    if old < new:
        assert not verify_consistency(old, new, new_root, old_root, proof)
        assert not verify_consistency(old, new, old_root, SOME_HASH, proof)


@given(size=sizes)
def test_root_at_every_prefix_matches_reference(size: int) -> None:
    store = MemoryNodeStore(LEAVES[:size])
    assert root_at(size, store) == ref_mth(LEAVES[:size])
    assert root_at(size // 2, store) == ref_mth(LEAVES[: size // 2])


def test_consistency_proof_length_bound_is_tight_for_exact_sizes() -> None:
    # RFC 9162 consistency proofs have at most ceil(log2 new) + 1 hashes when old is not a
    # power of two; check every pair up to 64 against the reference and that bound.
    store = MemoryNodeStore(LEAVES[:64])
    for new in range(1, 65):
        for old in range(1, new + 1):
            proof = consistency_proof(old, new, store)
            assert proof == ref_subproof(old, LEAVES[:new], True), (old, new)
            assert len(proof) <= math.ceil(math.log2(new)) + 1


# --- Corrupted proofs (the probe lists of transparency-dev/merkle proof/verify_test.go) ------


def inclusion_probes(
    index: int, size: int, proof: list[bytes], root: bytes, leaf: bytes
) -> list[tuple[int, int, bytes, list[bytes], bytes]]:
    probes = [
        (index - 1, size, leaf, proof, root),
        (index + 1, size, leaf, proof, root),
        (index ^ 2, size, leaf, proof, root),
        (index, size * 2, leaf, proof, root),
        (index, size // 2, leaf, proof, root),
        (index, size, b"WrongLeaf", proof, root),
        (index, size, leaf, proof, EMPTY_ROOT),
        (index, size, leaf, proof, SOME_HASH),
        (index, size, leaf, [*proof, b""], root),
        (index, size, leaf, [*proof, root], root),
        (index, size, leaf, [b"", *proof], root),
        (index, size, leaf, [root, *proof], root),
    ]
    for i in range(len(proof)):
        flipped = bytes([proof[i][0] ^ 8]) + proof[i][1:]
        probes.append((index, size, leaf, [*proof[:i], flipped, *proof[i + 1 :]], root))
    if proof:
        probes.append((index, size, leaf, proof[:-1], root))
    if len(proof) > 1:
        probes.append((index, size, leaf, [proof[0], SOME_HASH, *proof[1:]], root))
    return probes


@pytest.mark.parametrize(("index", "size", "path"), VECTOR_INCLUSION[1:])
def test_corrupted_inclusion_proofs_fail(index: int, size: int, path: list[str]) -> None:
    proof = [bytes.fromhex(p) for p in path]
    root = bytes.fromhex(VECTOR_ROOTS[size])
    for probe in inclusion_probes(index, size, proof, root, VECTOR_LEAVES[index]):
        p_index, p_size, p_leaf, p_proof, p_root = probe
        assert not verify_inclusion(p_leaf, p_index, p_size, p_proof, p_root), probe


@pytest.mark.parametrize(("index", "size"), [(0, 0), (0, 1), (1, 0), (2, 1), (-1, 4)])
def test_inclusion_outside_tree_fails(index: int, size: int) -> None:
    assert not verify_inclusion(SOME_HASH, index, size, [], EMPTY_ROOT)
    assert not verify_inclusion(EMPTY_ROOT, index, size, [], SOME_HASH)


@pytest.mark.parametrize(("old", "new", "path"), VECTOR_CONSISTENCY[1:])
def test_corrupted_consistency_proofs_fail(old: int, new: int, path: list[str]) -> None:
    proof = [bytes.fromhex(p) for p in path]
    r1, r2 = bytes.fromhex(VECTOR_ROOTS[old]), bytes.fromhex(VECTOR_ROOTS[new])
    probes = [
        (old - 1, new, r1, r2, proof),
        (old + 1, new, r1, r2, proof),
        (old ^ 2, new, r1, r2, proof),
        (old, new * 2, r1, r2, proof),
        (old, new // 2, r1, r2, proof),
        (old, new, b"WrongRoot", r2, proof),
        (old, new, r1, b"WrongRoot", proof),
        (old, new, r2, r1, proof),
        (old, new, r1, r2, []),
        (old, new, r1, r2, [*proof, b""]),
        (old, new, r1, r2, [*proof, r1]),
        (old, new, r1, r2, [*proof, r2]),
        (old, new, r1, r2, [b"", *proof]),
        (old, new, r1, r2, [r1, *proof]),
        (old, new, r1, r2, [r2, *proof]),
        (old, new, r1, r2, [proof[0], *proof]),
        (old, new, r1, r2, proof[:-1]),
    ]
    for i in range(len(proof)):
        flipped = bytes([proof[i][0] ^ 16]) + proof[i][1:]
        probes.append((old, new, r1, r2, [*proof[:i], flipped, *proof[i + 1 :]]))
    for probe in probes:
        assert not verify_consistency(*probe), probe


@pytest.mark.parametrize(
    ("old", "new", "old_root", "new_root", "proof", "valid"),
    [
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, [], True),
        (0, 0, EMPTY_ROOT, SOME_HASH, [], False),
        (0, 1, EMPTY_ROOT, SOME_HASH, [], True),  # the empty tree is a prefix of every tree
        (0, 1, SOME_HASH, SOME_HASH, [], False),  # but only the empty tree has size 0
        (0, 1, EMPTY_ROOT, SOME_HASH, [EMPTY_ROOT], False),
        (1, 1, SOME_HASH, SOME_HASH, [], True),
        (1, 1, SOME_HASH, SOME_HASH, [EMPTY_ROOT], False),
        (1, 0, SOME_HASH, SOME_HASH, [], False),
        (2, 1, SOME_HASH, SOME_HASH, [], False),
        (1, 2, SOME_HASH, EMPTY_ROOT, [], False),
        (-1, 2, SOME_HASH, EMPTY_ROOT, [], False),
    ],
)
def test_consistency_edge_cases(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: list[bytes], valid: bool
) -> None:
    assert verify_consistency(old, new, old_root, new_root, proof) is valid


# --- Frontier persistence, argument checks, node lookups -----------------------------------


@given(size=st.integers(min_value=0, max_value=300))
def test_frontier_json_round_trip(size: int) -> None:
    frontier = Frontier()
    frontier.extend(LEAVES[:size])
    saved = frontier.to_json()
    assert len(saved) == size.bit_count()
    restored = Frontier.from_json(size, saved)
    assert restored.size == size and restored.root() == frontier.root()
    restored.append(LEAVES[0])
    assert restored.root() == ref_mth([*LEAVES[:size], LEAVES[0]])


@pytest.mark.parametrize(
    ("size", "nodes"),
    [
        (-1, []),
        (True, ["00" * 32]),
        (3, ["00" * 32]),  # 3 leaves need 2 nodes
        (1, ["00" * 31]),
        (1, ["AA" * 32]),  # upper case would not round-trip to the same text
        (1, ["zz" * 32]),
        (1, ["00 " * 21 + "0"]),
        (1, [None]),
    ],
)
def test_frontier_from_json_rejects_malformed_state(size: int, nodes: list[str]) -> None:
    with pytest.raises(ValueError, match="frontier"):
        Frontier.from_json(size, nodes)


def test_append_reports_completed_nodes_with_their_addresses() -> None:
    frontier = Frontier()
    assert frontier.append(LEAVES[0]) == []
    assert frontier.append(LEAVES[1]) == [(1, 0, ref_mth(LEAVES[:2]))]
    assert frontier.append(LEAVES[2]) == []
    assert frontier.append(LEAVES[3]) == [
        (1, 1, ref_mth(LEAVES[2:4])),
        (2, 0, ref_mth(LEAVES[:4])),
    ]


def test_large_tree_proofs_read_few_nodes_in_one_call() -> None:
    size = (1 << 16) + 12345
    leaves = [ref_leaf(i.to_bytes(4, "big")) for i in range(size)]
    store = CountingStore(leaves)
    bound = math.ceil(math.log2(size))
    for index in (0, 1, size // 2, size - 2, size - 1):
        proof = inclusion_proof(index, size, store)
        assert len(proof) <= bound
        assert verify_inclusion(leaves[index], index, size, proof, store.root())
    proof = consistency_proof(size - 1000, size, store)
    assert verify_consistency(size - 1000, size, root_at(size - 1000, store), store.root(), proof)
    # One lookup per proof, and O(log² n) keys at most (in practice about 2 log n).
    assert all(count <= bound * bound for count in store.calls)
    assert max(store.calls) <= 2 * bound + 1


@pytest.mark.parametrize(("index", "size"), [(-1, 5), (5, 5), (0, 0)])
def test_inclusion_proof_rejects_leaves_outside_the_tree(index: int, size: int) -> None:
    with pytest.raises(ValueError, match="not in a tree"):
        inclusion_proof(index, size, MemoryNodeStore(LEAVES[:8]))


@pytest.mark.parametrize(("old", "new"), [(-1, 5), (6, 5)])
def test_consistency_proof_rejects_shrinking_trees(old: int, new: int) -> None:
    with pytest.raises(ValueError, match="no consistency proof"):
        consistency_proof(old, new, MemoryNodeStore(LEAVES[:8]))


def test_trivial_consistency_proofs_are_empty_without_lookups() -> None:
    store = CountingStore(LEAVES[:8])
    assert consistency_proof(0, 8, store) == []
    assert consistency_proof(8, 8, store) == []
    assert store.calls == []


def test_root_at_empty_and_negative() -> None:
    store = MemoryNodeStore()
    assert root_at(0, store) == EMPTY_ROOT == store.root() == Frontier().root()
    with pytest.raises(ValueError, match="non-negative"):
        root_at(-1, store)


def test_proofs_beyond_the_stored_tree_raise_lookup_error() -> None:
    store = MemoryNodeStore(LEAVES[:5])
    with pytest.raises(LookupError):
        inclusion_proof(0, 8, store)
    with pytest.raises(KeyError):
        store.get_nodes([(0, -1)])
    with pytest.raises(KeyError):
        store.get_nodes([(7, 0)])
