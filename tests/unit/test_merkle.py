"""RFC 9162 hashing and proofs against the RFC 6962 reference tree used by transparency-dev/merkle."""

from __future__ import annotations

import random

import pytest

from custody.ledger.merkle import (
    EMPTY_ROOT,
    CompactRange,
    Node,
    ProofError,
    complete_subtrees,
    consistency_ranges,
    hash_ranges,
    inclusion_ranges,
    leaf_hash,
    node_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)

LEAF_HEX = (
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
)
LEAF_INPUTS = [bytes.fromhex(h) for h in LEAF_HEX]
ROOTS = [bytes.fromhex(h) for h in (
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
)]  # fmt: skip
H = bytes.fromhex
INCLUSION = {  # (index, size) -> proof, 0-based indices
    (0, 1): [],
    (0, 8): [H("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
             H("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
             H("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4")],
    (5, 8): [H("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
             H("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
             H("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")],
    (2, 3): [H("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")],
    (1, 5): [H("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
             H("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
             H("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b")],
}  # fmt: skip
CONSISTENCY = {  # (first, second) -> proof
    (1, 1): [],
    (1, 8): INCLUSION[(0, 8)],
    (6, 8): [H("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
             H("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
             H("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")],
    (2, 5): [H("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
             H("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b")],
}  # fmt: skip


def _nodes(leaves: list[bytes]) -> dict[Node, bytes]:
    """Every complete subtree hash of a tree (what the store keeps)."""
    nodes: dict[Node, bytes] = {(0, i): h for i, h in enumerate(leaves)}
    level, width = 0, len(leaves)
    while width > 1:
        for i in range(width // 2):
            nodes[(level + 1, i)] = node_hash(nodes[(level, 2 * i)], nodes[(level, 2 * i + 1)])
        level, width = level + 1, width // 2
    return nodes


def test_empty_root_and_leaf_hash() -> None:
    assert root_of([]) == EMPTY_ROOT == ROOTS[0]
    assert leaf_hash(b"") == ROOTS[1]


def test_roots_of_every_prefix_match_the_reference() -> None:
    leaves = [leaf_hash(x) for x in LEAF_INPUTS]
    cr = CompactRange()
    assert cr.root() == ROOTS[0]
    for size in range(1, 9):
        cr.append(leaves[size - 1])
        assert cr.root() == ROOTS[size], size
        assert root_of(leaves[:size]) == ROOTS[size]


@pytest.mark.parametrize(("index", "size"), list(INCLUSION))
def test_inclusion_proofs_match_the_reference(index: int, size: int) -> None:
    leaves = [leaf_hash(x) for x in LEAF_INPUTS]
    proof = hash_ranges(inclusion_ranges(index, size), _nodes(leaves).__getitem__)
    assert proof == INCLUSION[(index, size)]
    verify_inclusion(index, size, leaves[index], proof, ROOTS[size])


@pytest.mark.parametrize(("first", "second"), list(CONSISTENCY))
def test_consistency_proofs_match_the_reference(first: int, second: int) -> None:
    leaves = [leaf_hash(x) for x in LEAF_INPUTS]
    proof = hash_ranges(consistency_ranges(first, second), _nodes(leaves).__getitem__)
    assert proof == CONSISTENCY[(first, second)]
    verify_consistency(first, second, ROOTS[first], ROOTS[second], proof)


def test_generated_proofs_verify_and_tampering_fails() -> None:
    rng = random.Random(3)
    leaves = [leaf_hash(str(i).encode()) for i in range(300)]
    nodes = _nodes(leaves)
    roots = [root_of(leaves[:n]) for n in range(301)]
    for size in range(1, 301):
        for index in {0, size - 1, rng.randrange(size)}:
            proof = hash_ranges(inclusion_ranges(index, size), nodes.__getitem__)
            assert len(proof) <= (size - 1).bit_length()
            verify_inclusion(index, size, leaves[index], proof, roots[size])
            if proof:
                bad = list(proof)
                bad[rng.randrange(len(bad))] = bytes(32)
                with pytest.raises(ProofError):
                    verify_inclusion(index, size, leaves[index], bad, roots[size])
            with pytest.raises(ProofError):
                verify_inclusion(index, size, leaf_hash(b"other"), proof, roots[size])
        first = rng.randrange(1, size + 1)
        proof = hash_ranges(consistency_ranges(first, size), nodes.__getitem__)
        verify_consistency(first, size, roots[first], roots[size], proof)
        if first < size:
            with pytest.raises(ProofError):
                verify_consistency(first, size, roots[first], leaf_hash(b"fork"), proof)


def test_complete_subtrees_cover_ranges_exactly() -> None:
    for start in range(0, 40):
        for end in range(start, 70):
            covered: list[int] = []
            for level, idx in complete_subtrees(start, end):
                covered.extend(range(idx << level, (idx + 1) << level))
            assert covered == list(range(start, end))


def test_fork_of_equal_sizes_is_reported() -> None:
    with pytest.raises(ProofError, match="forked"):
        verify_consistency(5, 5, ROOTS[5], ROOTS[4], [])
