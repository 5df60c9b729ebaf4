"""Merkle tree hashing and proofs as in RFC 9162 §2.1 (the same as RFC 6962 §2.1).

- leaf hash: SHA-256(0x00 ‖ entry), node hash: SHA-256(0x01 ‖ left ‖ right), empty tree: SHA-256("").
- Proof generation (§2.1.3.1 PATH, §2.1.4.1 PROOF/SUBPROOF) is expressed as a list of leaf ranges
  [start, end) whose subtree hashes the proof holds; every range splits into *complete* aligned
  subtrees, which is what the store keeps, so a proof never rebuilds the tree.
- Proof verification follows §2.1.3.2 and §2.1.4.2 step by step.

Pure functions, no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

#: A complete subtree: (level, index) covers leaves [index * 2**level, (index + 1) * 2**level).
Node = tuple[int, int]


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _largest_power_of_two_below(n: int) -> int:
    """k with k < n <= 2k (n >= 2), as the split point of RFC 9162 §2.1.1."""
    return 1 << ((n - 1).bit_length() - 1)


def complete_subtrees(start: int, end: int) -> list[Node]:
    """Split leaves [start, end) into maximal aligned complete subtrees, left to right."""
    out: list[Node] = []
    while start < end:
        level = (start & -start).bit_length() - 1 if start else (end - start).bit_length() - 1
        while (1 << level) > end - start:
            level -= 1
        out.append((level, start >> level))
        start += 1 << level
    return out


def fold_subtrees(hashes: Sequence[bytes]) -> bytes:
    """MTH of a range from its complete subtrees' hashes (left to right): folded right to left."""
    if not hashes:
        return EMPTY_ROOT
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The ranges whose hashes form the inclusion proof of `index` in a tree of `size` (§2.1.3.1),
    in proof order (nearest the leaf first)."""
    if not 0 <= index < size:
        raise ValueError(f"index {index} is not in a tree of size {size}")
    out: list[tuple[int, int]] = []
    start, end, m = 0, size, index
    while end - start > 1:
        k = _largest_power_of_two_below(end - start)
        if m < k:
            out.append((start + k, end))
            end = start + k
        else:
            out.append((start, start + k))
            start, m = start + k, m - k
    out.reverse()
    return out


def consistency_ranges(first: int, second: int) -> list[tuple[int, int]]:
    """The ranges whose hashes form the consistency proof from `first` to `second` (§2.1.4.1)."""
    if not 0 < first <= second:
        raise ValueError(f"no consistency proof from size {first} to size {second}")
    out: list[tuple[int, int]] = []
    start, end, m, complete = 0, second, first, True
    while True:
        if m == end - start:
            if not complete:
                out.append((start, end))
            break
        k = _largest_power_of_two_below(end - start)
        if m <= k:
            out.append((start + k, end))
            end = start + k
        else:
            out.append((start, start + k))
            start, m, complete = start + k, m - k, False
    out.reverse()
    return out


def nodes_for(ranges: Iterable[tuple[int, int]]) -> list[Node]:
    """Every stored node needed to hash the given ranges (deduplicated, in first-seen order)."""
    seen: dict[Node, None] = {}
    for start, end in ranges:
        for node in complete_subtrees(start, end):
            seen.setdefault(node)
    return list(seen)


def hash_ranges(ranges: Iterable[tuple[int, int]], lookup: Callable[[Node], bytes]) -> list[bytes]:
    return [fold_subtrees([lookup(n) for n in complete_subtrees(s, e)]) for s, e in ranges]


class CompactRange:
    """The right border of a growing tree (one hash per set bit of its size): appending a leaf and
    reading the root are O(log n), so a verifier streams millions of leaves in constant memory."""

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[bytes] = []

    def append(self, leaf: bytes) -> None:
        h, n = leaf, self.size
        while n & 1:
            h = node_hash(self._stack.pop(), h)
            n >>= 1
        self._stack.append(h)
        self.size += 1

    def root(self) -> bytes:
        return fold_subtrees(self._stack)


def root_of(leaves: Iterable[bytes]) -> bytes:
    """MTH of a list of leaf hashes."""
    cr = CompactRange()
    for leaf in leaves:
        cr.append(leaf)
    return cr.root()


# --- verification (RFC 9162 §2.1.3.2 and §2.1.4.2) -------------------------------------------


class ProofError(Exception):
    """A proof did not verify. Carries what was expected and what was computed, as hex."""

    def __init__(self, message: str, *, expected: bytes | None = None, computed: bytes | None = None) -> None:
        detail = message
        if expected is not None or computed is not None:
            want = expected.hex() if expected else "-"
            got = computed.hex() if computed else "-"
            detail += f" (expected {want}, computed {got})"
        super().__init__(detail)
        self.expected = expected
        self.computed = computed


@dataclass(frozen=True, slots=True)
class InclusionProof:
    index: int
    tree_size: int
    hashes: tuple[bytes, ...]


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """§2.1.3.2 steps 1-5: the root a valid inclusion proof leads to."""
    # 1. Compare leaf_index from the inclusion_proof_v2 structure against tree_size.
    if index >= size:
        raise ProofError(f"leaf index {index} is beyond the tree size {size}")
    # 2. Set fn to leaf_index and sn to tree_size - 1.  3. Set r to hash.
    fn, sn, r = index, size - 1, leaf
    # 4. For each value p in the inclusion_path array:
    for p in proof:
        if sn == 0:  # a. If sn is 0, then stop the iteration and fail the proof verification.
            raise ProofError("the inclusion proof is longer than the tree allows")
        if fn & 1 or fn == sn:  # b. If LSB(fn) is set, or if fn is equal to sn, then:
            r = node_hash(p, r)
            if (
                not fn & 1
            ):  # ii. If LSB(fn) is not set, right-shift fn and sn until LSB(fn) is set or fn is 0.
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:  # Otherwise: set r to HASH(0x01 || r || p).
            r = node_hash(r, p)
        fn >>= 1  # c. Finally, right-shift both fn and sn one time.
        sn >>= 1
    # 5. Compare sn to 0.
    if sn != 0:
        raise ProofError("the inclusion proof is shorter than the tree needs")
    return r


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> None:
    computed = root_from_inclusion_proof(index, size, leaf, proof)
    if computed != root:  # 5. ... compare r against the root_hash.
        raise ProofError(f"inclusion proof of index {index} does not lead to the root", expected=root,
                         computed=computed)  # fmt: skip


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes,
                       proof: Sequence[bytes]) -> None:  # fmt: skip
    """§2.1.4.2: the tree of size `second` extends the tree of size `first` without changing it."""
    if first > second:
        raise ProofError(f"size {first} is larger than size {second}")
    if first == second:
        if proof:
            raise ProofError("a consistency proof between equal sizes must be empty")
        if first_root != second_root:
            raise ProofError(f"two different roots for size {first}: the log forked", expected=first_root,
                             computed=second_root)  # fmt: skip
        return
    if first == 0:
        if proof:
            raise ProofError("a consistency proof from the empty tree must be empty")
        return
    if not proof:
        raise ProofError("the consistency proof is empty")
    path = list(proof)
    # 1. If first is an exact power of 2, prepend first_hash to the consistency_path array.
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    # 2. Set fn to first - 1 and sn to second - 1.
    fn, sn = first - 1, second - 1
    # 3. If LSB(fn) is set, right-shift both fn and sn equally until LSB(fn) is not set.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # 4. Set both fr and sr to the first value in the consistency_path array.
    fr = sr = path[0]
    # 5. For each subsequent value c in the consistency_path array:
    for c in path[1:]:
        if sn == 0:  # a. If sn is 0, then stop the iteration and fail the proof verification.
            raise ProofError("the consistency proof is longer than the trees allow")
        if fn & 1 or fn == sn:  # b. If LSB(fn) is set, or if fn is equal to sn, then:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while fn and not fn & 1:  # iii. until either LSB(fn) is set or fn is 0.
                fn >>= 1
                sn >>= 1
        else:  # Otherwise: set sr to HASH(0x01 || sr || c).
            sr = node_hash(sr, c)
        fn >>= 1  # c. Finally, right-shift both fn and sn one time.
        sn >>= 1
    # 6. After completing iterating through the consistency_path array as described above.
    if sn != 0:
        raise ProofError("the consistency proof is shorter than the trees need")
    if fr != first_root:
        raise ProofError(
            f"the consistency proof does not lead to the root of size {first}",
            expected=first_root,
            computed=fr,
        )
    if sr != second_root:
        raise ProofError(f"the consistency proof does not lead to the root of size {second}",
                         expected=second_root, computed=sr)  # fmt: skip
