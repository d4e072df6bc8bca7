"""RFC 9162 (Certificate Transparency v2) Merkle tree over audit event leaf hashes.

Node addressing: node ``(level, index)`` is the root of the perfect subtree over leaves
``[index * 2**level, (index + 1) * 2**level)``; level 0 is the leaf hash itself. Only perfect
subtrees are ever stored. Every hash RFC 9162's recursion needs — MTH of a range ``[start, end)``
that is not a power of two long — is rebuilt from the perfect nodes of the binary expansion of
``end - start``: MTH splits at the largest power of two ``k < n``, so MTH(range) is the right fold
``node(P1, node(P2, … Pj))`` of those perfect nodes, largest first. The ranges the recursion visits
always start at a multiple of their largest perfect part, so each part is a stored node. A proof
therefore needs O(log n) ranges of O(log n) nodes each, fetched in one ``get_nodes`` call.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Protocol

NodeKey = tuple[int, int]
"""``(level, index)`` of a perfect subtree; level 0 addresses leaf hashes."""

HASH_SIZE = 32

_sha256 = hashlib.sha256

EMPTY_ROOT = _sha256(b"").digest()
"""MTH of the empty tree: SHA-256 of the empty string."""


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 leaf hash: SHA-256(0x00 ‖ data)."""
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 interior node hash: SHA-256(0x01 ‖ left ‖ right)."""
    return _sha256(b"\x01" + left + right).digest()


def root_from_leaves(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over ``leaf_hashes`` (already leaf-hashed), computed level by level.

    Carrying an odd last node up unchanged builds exactly RFC 9162's tree (split at the largest
    power of two), and whole-level list comprehensions keep the interpreter out of the way.
    """
    if not leaf_hashes:
        return EMPTY_ROOT
    level = list(leaf_hashes)
    while len(level) > 1:
        carry = level.pop() if len(level) & 1 else None
        level = [
            _sha256(b"\x01" + left + right).digest()
            for left, right in zip(level[0::2], level[1::2], strict=True)
        ]
        if carry is not None:
            level.append(carry)
    return level[0]


class Frontier:
    """Compact append-only tree state: the roots of the perfect subtrees that make up the tree.

    There is one root per set bit of ``size``, largest (leftmost) first — at most 64 hashes, small
    enough to live in one database row. Appending costs one node hash per leaf, amortised.
    """

    __slots__ = ("_nodes", "_size")

    def __init__(self) -> None:
        self._size = 0
        self._nodes: list[bytes] = []

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Append one leaf hash; return the perfect nodes it completed as ``(level, index, hash)``.

        Levels are ≥ 1 (the leaf itself is not returned), lowest first. The nodes completed are
        the carries of a binary increment: one per trailing 1 bit of the old size.
        """
        completed: list[tuple[int, int, bytes]] = []
        nodes = self._nodes
        index = self._size
        node = leaf
        level = 0
        while index & 1:
            node = _sha256(b"\x01" + nodes.pop() + node).digest()
            index >>= 1
            level += 1
            completed.append((level, index, node))
        nodes.append(node)
        self._size += 1
        return completed

    def extend(self, leaves: Iterable[bytes]) -> None:
        """Append many leaf hashes, a whole level at a time (no per-leaf interpreter loop).

        Use :meth:`append` when the completed nodes are needed (the audit store does); the
        verifier only needs roots, and building that list would cost it about a fifth more.
        """
        run = list(leaves)
        start = self._size  # index of run[0] within its level
        new_size = start + len(run)
        nodes = self._nodes
        new_tops: list[bytes] = []  # frontier nodes below the untouched old ones, lowest first
        while run:
            if start & 1:
                # run[0] is a right child: its left sibling is the old frontier's lowest node,
                # which sits at this level because this bit of the old size is set.
                run.insert(0, nodes.pop())
            if len(run) & 1:
                new_tops.append(run.pop())
            run = [
                _sha256(b"\x01" + left + right).digest()
                for left, right in zip(run[0::2], run[1::2], strict=True)
            ]
            start >>= 1
        nodes += reversed(new_tops)
        self._size = new_size

    def root(self) -> bytes:
        """MTH of the leaves appended so far (``EMPTY_ROOT`` when there are none)."""
        return _fold_right(self._nodes)

    def to_json(self) -> list[str]:
        """The subtree roots as hex strings, largest first; restore with :meth:`from_json`."""
        return [node.hex() for node in self._nodes]

    @classmethod
    def from_json(cls, size: int, nodes: Sequence[str]) -> Frontier:
        """Rebuild a frontier saved by :meth:`to_json`; ``ValueError`` if it cannot be one."""
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError(f"frontier size must be a non-negative integer, not {size!r}")
        if len(nodes) != size.bit_count():
            raise ValueError(f"a tree of {size} leaves has {size.bit_count()} frontier nodes")
        frontier = cls()
        for text in nodes:
            if not _is_hex_digest(text):
                raise ValueError(f"frontier node is not a hex SHA-256 digest: {text!r}")
            frontier._nodes.append(bytes.fromhex(text))
        frontier._size = size
        return frontier


def _is_hex_digest(text: object) -> bool:
    # bytes.fromhex skips whitespace and accepts upper case; the round trip rejects both.
    if not isinstance(text, str) or len(text) != 2 * HASH_SIZE:
        return False
    try:
        return bytes.fromhex(text).hex() == text
    except ValueError:
        return False


def _fold_right(parts: Sequence[bytes]) -> bytes:
    """node(P1, node(P2, … Pj)): the MTH of adjacent perfect subtrees, largest first."""
    if not parts:
        return EMPTY_ROOT
    acc = parts[-1]
    for part in reversed(parts[:-1]):
        acc = _sha256(b"\x01" + part + acc).digest()
    return acc


class NodeReader(Protocol):
    """Where proofs read perfect subtree hashes from (the audit store, or memory).

    ``get_nodes`` returns the hash of every requested ``(level, index)``; level 0 keys are leaf
    hashes. It raises ``LookupError`` (or returns a mapping without the key, which surfaces as
    ``KeyError``) for nodes it does not have.
    """

    def get_nodes(self, keys: Collection[NodeKey]) -> Mapping[NodeKey, bytes]: ...


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (for n ≥ 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def _perfect_parts(start: int, end: int) -> list[NodeKey]:
    """The perfect nodes whose right fold is MTH(leaves[start:end]), largest first.

    Requires ``start`` to be a multiple of the largest part, which every range reached by RFC
    9162's recursion from ``[0, n)`` is.
    """
    parts: list[NodeKey] = []
    n = end - start
    while n:
        level = n.bit_length() - 1
        parts.append((level, start >> level))
        start += 1 << level
        n -= 1 << level
    return parts


def _range_hashes(reader: NodeReader, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
    """MTH of each ``[start, end)`` in ``ranges``, reading all nodes in one ``get_nodes`` call."""
    covers = [_perfect_parts(start, end) for start, end in ranges]
    wanted = {key for cover in covers for key in cover}
    if not wanted:
        return []
    found = reader.get_nodes(wanted)
    return [_fold_right([found[key] for key in cover]) for cover in covers]


def inclusion_proof(index: int, tree_size: int, reader: NodeReader) -> list[bytes]:
    """RFC 9162 §2.1.3.1 inclusion proof (audit path) of leaf ``index`` in the first ``tree_size``.

    The path is ordered from the leaf's sibling up to the root's child and has at most
    ceil(log2 tree_size) hashes. Raises ``ValueError`` unless ``0 <= index < tree_size``.
    """
    if not 0 <= index < tree_size:
        raise ValueError(f"leaf {index} is not in a tree of size {tree_size}")
    siblings: list[tuple[int, int]] = []
    start, end = 0, tree_size
    while end - start > 1:
        mid = start + _split(end - start)
        if index < mid:
            siblings.append((mid, end))
            end = mid
        else:
            siblings.append((start, mid))
            start = mid
    siblings.reverse()
    return _range_hashes(reader, siblings)


def consistency_proof(old_size: int, new_size: int, reader: NodeReader) -> list[bytes]:
    """RFC 9162 §2.1.4.1 proof that the tree of ``old_size`` is a prefix of the one of ``new_size``.

    Empty when ``old_size`` is 0 or equals ``new_size``; otherwise at most ceil(log2 new_size)
    hashes. Raises ``ValueError`` unless ``0 <= old_size <= new_size``.
    """
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size in (0, new_size):
        return []
    # SUBPROOF(m, D[start:end], whole) unrolled; the recursion appends after recursing, so the
    # collected ranges come out root-first and are reversed at the end.
    ranges: list[tuple[int, int]] = []
    m, start, end, whole = old_size, 0, new_size, True
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            m -= k
            start += k
            whole = False
    if not whole:
        ranges.append((start, end))
    ranges.reverse()
    return _range_hashes(reader, ranges)


def root_at(tree_size: int, reader: NodeReader) -> bytes:
    """MTH of the first ``tree_size`` leaves, from at most log2(tree_size) + 1 stored nodes."""
    if tree_size < 0:
        raise ValueError(f"tree size must be non-negative, not {tree_size}")
    if tree_size == 0:
        return EMPTY_ROOT
    return _range_hashes(reader, [(0, tree_size)])[0]


def verify_inclusion(
    leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """True iff ``proof`` shows ``leaf_hash`` is leaf ``index`` of the tree with ``root``.

    RFC 9162 §2.1.3.2; never raises for malformed input.
    """
    if not 0 <= index < tree_size or any(len(p) != HASH_SIZE for p in proof):
        return False
    fn, sn = index, tree_size - 1
    r = leaf_hash
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """True iff ``proof`` shows the tree (``old_size``, ``old_root``) is a prefix of the new one.

    RFC 9162 §2.1.4.2. Equal sizes need an empty proof and equal roots; size 0 needs an empty
    proof and ``old_root == EMPTY_ROOT``. Never raises for malformed input.
    """
    if not 0 <= old_size <= new_size or any(len(c) != HASH_SIZE for c in proof):
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof and old_root == EMPTY_ROOT
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0


class MemoryNodeStore:
    """Every perfect node of a tree, in memory: a :class:`NodeReader` for tests and offline use."""

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[list[bytes]] = [[]]  # _levels[level][index]
        self.extend(leaf_hashes)

    @property
    def size(self) -> int:
        """Number of leaves stored."""
        return len(self._levels[0])

    def append(self, leaf: bytes) -> None:
        """Append one leaf hash."""
        self.extend((leaf,))

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append leaf hashes and compute every perfect node they complete."""
        levels = self._levels
        levels[0] += leaf_hashes
        level = 0
        while True:
            below = levels[level]
            if level + 1 == len(levels):
                levels.append([])
            above = levels[level + 1]
            first = 2 * len(above)  # children of nodes `above` already has
            if first + 2 > len(below):
                break
            above += [
                _sha256(b"\x01" + below[i] + below[i + 1]).digest() for i in range(first, len(below) - 1, 2)
            ]
            level += 1
        if not levels[-1]:
            levels.pop()

    def root(self) -> bytes:
        """MTH of all stored leaves."""
        return root_at(self.size, self)

    def get_nodes(self, keys: Collection[NodeKey]) -> dict[NodeKey, bytes]:
        """The requested nodes; ``KeyError`` for any node this tree does not (yet) have."""
        levels = self._levels
        found: dict[NodeKey, bytes] = {}
        for level, index in keys:
            if not (0 <= level < len(levels) and 0 <= index < len(levels[level])):
                raise KeyError((level, index))
            found[level, index] = levels[level][index]
        return found
