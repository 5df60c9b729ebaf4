"""Properties of the ledger as stored (custody/ledger/store.py over SQLite) and proven (merkle.py, RFC
9162), for random sequences of appends: random batch sizes, idempotency keys repeated within and across
batches. Whatever the sequence, a repeated key never adds an entry and returns its first index; every
inclusion proof and every consistency proof between any two sizes the log had verifies; and changing
any one byte of a leaf, a proof or a root makes verification fail.

Each example runs on a fresh copy of one migrated database file, so the log starts empty and every
size from 1 up is checked exhaustively."""

from __future__ import annotations

import base64
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custody.db import create_db_engine, migrate
from custody.ledger.entries import CustodyEvent, EventType
from custody.ledger.merkle import ProofError, leaf_hash, root_of, verify_consistency, verify_inclusion
from custody.ledger.note import Signer
from custody.ledger.store import Ledger

SEED = base64.b64encode(b"\x0b" * 32).decode()
KEYS = 14  # distinct idempotency keys an example draws from: at most 14 entries, all pairs checked

#: A sequence of appends: each batch is a list of key numbers (repeats within and across batches).
batches_strategy = st.lists(
    st.lists(st.integers(0, KEYS - 1), min_size=1, max_size=6), min_size=1, max_size=6
)
PROPERTY = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,  # the same examples every run: a failure reproduces, the time stays bounded
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated, empty database; each example copies it (migrating each time would be slow)."""
    path = tmp_path_factory.mktemp("ledger-template") / "custody.db"
    engine = create_db_engine(f"sqlite:///{path}")
    migrate(engine)
    engine.dispose()
    return path


class FreshLedger:
    def __init__(self, template: Path, folder: Path) -> None:
        self.template, self.folder = template, folder

    def __call__(self) -> Iterator[Ledger]:
        path = self.folder / f"{uuid.uuid4().hex}.db"
        shutil.copy(self.template, path)
        engine = create_db_engine(f"sqlite:///{path}")
        try:
            yield Ledger(engine, Signer.from_seed("custody.test/ledger", SEED))
        finally:
            engine.dispose()
            path.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def fresh(template: Path, tmp_path_factory: pytest.TempPathFactory) -> FreshLedger:
    return FreshLedger(template, tmp_path_factory.mktemp("ledgers"))


def _event(key: int, appearance: int) -> CustodyEvent:
    """Each appearance of a key carries different content: only the first may be written."""
    return CustodyEvent(EventType.evidence_viewed, actor=f"k{key}-appearance{appearance}", agency="MPD")


def _flip(data: bytes, position: int) -> bytes:
    i = position % len(data)
    return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :]


def _append_all(ledger: Ledger, batches: list[list[int]]) -> list[int]:
    """Run the batches; check each answer against a model of first-write-wins; return the sizes the
    log had after each batch."""
    first_index: dict[int, int] = {}
    seen: dict[int, int] = {}
    sizes = []
    for batch in batches:
        items = []
        for key in batch:
            seen[key] = seen.get(key, 0) + 1
            items.append((f"key-{key}", _event(key, seen[key])))
        got = ledger.append(items)
        for key in batch:
            first_index.setdefault(key, len(first_index))
        assert got == [first_index[k] for k in batch]
        assert ledger.size() == len(first_index)  # a repeated key added nothing
        sizes.append(ledger.size())
    # What was written for each key is its first appearance, in order of first appearance.
    entries = ledger.entries(0, ledger.size())
    order = sorted(first_index, key=first_index.__getitem__)
    for (index, data), key in zip(entries, order, strict=True):
        assert index == first_index[key] and f'"actor":"k{key}-appearance1"'.encode() in data
    return sizes


@PROPERTY
@given(batches=batches_strategy)
def test_repeated_keys_never_add_and_every_proof_between_any_two_sizes_verifies(
    fresh: FreshLedger, batches: list[list[int]]
) -> None:
    for ledger in fresh():
        _append_all(ledger, batches)
        n = ledger.size()
        leaves = [leaf_hash(data) for _, data in ledger.entries(0, n)]
        roots = {size: ledger.root(size) for size in range(1, n + 1)}
        for size in range(1, n + 1):
            assert roots[size] == root_of(leaves[:size])  # the stored tree is the RFC 9162 tree
            for index in range(size):
                verify_inclusion(index, size, leaves[index], ledger.inclusion_proof(index, size), roots[size])
            for first in range(1, size + 1):
                proof = ledger.consistency_proof(first, size)
                verify_consistency(first, size, roots[first], roots[size], proof)


@PROPERTY
@given(batches=batches_strategy, data=st.data())
def test_changing_any_one_byte_of_a_leaf_proof_or_root_fails_verification(
    fresh: FreshLedger, batches: list[list[int]], data: st.DataObject
) -> None:
    for ledger in fresh():
        sizes = _append_all(ledger, batches)
        n = ledger.size()
        entries = ledger.entries(0, n)
        size = data.draw(st.integers(1, n), label="tree size")
        index = data.draw(st.integers(0, size - 1), label="index")
        root = ledger.root(size)
        proof = ledger.inclusion_proof(index, size)
        leaf = leaf_hash(entries[index][1])
        verify_inclusion(index, size, leaf, proof, root)
        position = data.draw(st.integers(0, 10_000), label="byte")

        with pytest.raises(ProofError):  # the entry's bytes as stored, one byte changed
            verify_inclusion(index, size, leaf_hash(_flip(entries[index][1], position)), proof, root)
        with pytest.raises(ProofError):
            verify_inclusion(index, size, leaf, proof, _flip(root, position))
        if proof:
            which = data.draw(st.integers(0, len(proof) - 1), label="proof hash")
            bad = [*proof[:which], _flip(proof[which], position), *proof[which + 1 :]]
            with pytest.raises(ProofError):
                verify_inclusion(index, size, leaf, bad, root)
            with pytest.raises(ProofError):  # a proof shortened by one hash
                verify_inclusion(index, size, leaf, proof[:-1], root)
        if index + 1 < size:  # a proof of one entry does not prove its neighbour
            with pytest.raises(ProofError):
                verify_inclusion(index + 1, size, leaf_hash(entries[index + 1][1]), proof, root)

        # Consistency between an earlier size the log really had and the final one.
        first = data.draw(st.sampled_from(sorted({1, *sizes})), label="first size")
        final_root, first_root = ledger.root(n), ledger.root(first)
        cproof = ledger.consistency_proof(first, n)
        verify_consistency(first, n, first_root, final_root, cproof)
        if first == n:
            assert cproof == []
            with pytest.raises(ProofError):  # one size, two roots: a fork
                verify_consistency(first, n, first_root, _flip(final_root, position), [])
            return
        with pytest.raises(ProofError):
            verify_consistency(first, n, _flip(first_root, position), final_root, cproof)
        with pytest.raises(ProofError):
            verify_consistency(first, n, first_root, _flip(final_root, position), cproof)
        which = data.draw(st.integers(0, len(cproof) - 1), label="consistency hash")
        bad = [*cproof[:which], _flip(cproof[which], position), *cproof[which + 1 :]]
        with pytest.raises(ProofError):
            verify_consistency(first, n, first_root, final_root, bad)
