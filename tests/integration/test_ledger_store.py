"""The ledger in the database, on SQLite and PostgreSQL: appends, idempotency, proofs, concurrency,
append-only enforcement and checkpoints."""

from __future__ import annotations

import base64
import multiprocessing as mp
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from custody.db import create_db_engine, migrate
from custody.ledger.entries import CustodyEvent, EventType
from custody.ledger.merkle import leaf_hash, root_of, verify_consistency, verify_inclusion
from custody.ledger.note import Signer, open_checkpoint
from custody.ledger.store import Ledger, LedgerRangeError
from custody.ledger.verify import verify_export
from tests.conftest import _create_pg_database, _drop_pg_database
from tests.integration import ledger_appender as appender

SEED = base64.b64encode(b"\x07" * 32).decode()


@pytest.fixture(scope="module")
def ledger_db(db_url: str) -> Iterator[str]:
    """A database of its own per module and engine (appends must start from an empty log)."""
    name = None
    if db_url.startswith("sqlite"):
        url = db_url.replace("custody.db", f"ledger-{uuid.uuid4().hex[:6]}.db")
    else:
        name, url = _create_pg_database()
    engine = create_db_engine(url)
    migrate(engine)
    engine.dispose()
    yield url
    if name is not None:
        _drop_pg_database(name)


def _ledger(url: str) -> Ledger:
    return Ledger(create_db_engine(url), Signer.from_seed("custody.test/ledger", SEED))


def _event(i: int) -> CustodyEvent:
    return CustodyEvent(EventType.evidence_viewed, actor=f"user-{i}", agency="MPD", case_id=str(uuid.uuid4()))


def _all_leaves(ledger: Ledger) -> list[bytes]:
    return [leaf_hash(data) for _, data in ledger.entries(0, ledger.size())]


def test_append_is_idempotent_and_proofs_verify(ledger_db: str) -> None:
    ledger = _ledger(ledger_db)
    base = ledger.size()
    key = f"k-{uuid.uuid4()}"
    first = ledger.record(_event(0), idempotency_key=key)
    again = ledger.record(_event(1), idempotency_key=key)  # a Temporal retry of the same activity
    assert first == again == base
    indices = ledger.append([(f"b-{i}-{uuid.uuid4()}", _event(i)) for i in range(40)])
    assert indices == list(range(base + 1, base + 41))
    assert ledger.size() == base + 41

    leaves = _all_leaves(ledger)
    for size in (1, 2, 3, 7, 8, 9, 16, 17, len(leaves)):
        root = ledger.root(size)
        assert root == root_of(leaves[:size])
        for index in {0, size // 2, size - 1}:
            proof = ledger.inclusion_proof(index, size)
            assert len(proof) <= (size - 1).bit_length()
            verify_inclusion(index, size, leaves[index], proof, root)
        for first_size in {1, size // 2 or 1, size}:
            proof = ledger.consistency_proof(first_size, size)
            verify_consistency(first_size, size, ledger.root(first_size), root, proof)
    with pytest.raises(LedgerRangeError):
        ledger.inclusion_proof(len(leaves), len(leaves) + 5)


def _appender(url: str, worker: int, count: int, queue: mp.Queue) -> None:  # type: ignore[type-arg]
    ledger = _ledger(url)
    got = [
        ledger.record(_event(worker), idempotency_key=f"w{worker}-{i}-{os.getpid()}") for i in range(count)
    ]
    queue.put(got)


def test_eight_concurrent_appenders_make_no_gap_duplicate_or_fork(ledger_db: str) -> None:
    ledger = _ledger(ledger_db)
    base = ledger.size()
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_appender, args=(ledger_db, w, 30, queue)) for w in range(8)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    indices = sorted(i for r in results for i in r)
    assert indices == list(range(base, base + 240)), "gap or duplicate index"
    leaves = _all_leaves(ledger)
    assert len(leaves) == base + 240
    assert ledger.root(len(leaves)) == root_of(leaves), "stored tree forked from the entries"
    # Every entry links to the one before it (no two appenders saw the same tail).
    entries = ledger.entries(0, len(leaves))
    for (i, data), prev_leaf in zip(entries[1:], leaves, strict=False):
        assert f'"prev":"{prev_leaf.hex()}"'.encode() in data, i


def test_ledger_tables_refuse_update_and_delete(ledger_db: str) -> None:
    ledger = _ledger(ledger_db)
    ledger.record(_event(9), idempotency_key=f"guard-{uuid.uuid4()}")
    engine = create_db_engine(ledger_db)
    for stmt in (
        "UPDATE ledger_entries SET entry = '{}' WHERE idx = 0",
        "DELETE FROM ledger_entries WHERE idx = 0",
        "UPDATE ledger_nodes SET hash = hash WHERE level = 0 AND idx = 0",
        "DELETE FROM ledger_nodes",
    ):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(sa.text(stmt))
    if engine.dialect.name == "postgresql":
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(sa.text("TRUNCATE ledger_entries"))
    assert ledger.size() > 0


def test_checkpoints_are_signed_kept_and_consistent(ledger_db: str) -> None:
    ledger = _ledger(ledger_db)
    ledger.record(_event(1), idempotency_key=f"c-{uuid.uuid4()}")
    first = ledger.sign_checkpoint()
    assert first is not None
    cp = open_checkpoint(first.note, ledger.verifier, origin="custody.test/ledger")
    assert (cp.size, cp.root) == (first.tree_size, ledger.root(first.tree_size))
    # Signing is itself a ledger event; with nothing else new, no second checkpoint is signed.
    assert ledger.size() == first.tree_size + 1
    assert ledger.sign_checkpoint() == first
    ledger.append([(f"d-{i}-{uuid.uuid4()}", _event(i)) for i in range(5)])
    second = ledger.sign_checkpoint()
    assert second is not None and second.tree_size == first.tree_size + 6
    sizes = [c.tree_size for c in ledger.checkpoints()]
    assert first.tree_size in sizes and second.tree_size in sizes
    proof = ledger.consistency_proof(first.tree_size, second.tree_size)
    verify_consistency(first.tree_size, second.tree_size, first.root, second.root, proof)


def test_growth_samples_checkpoints_evenly_without_reading_them_all(ledger_db: str) -> None:
    ledger = _ledger(ledger_db)
    for i in range(30):
        ledger.record(_event(i), idempotency_key=f"growth-{uuid.uuid4()}")
        ledger.sign_checkpoint()
    total, sample = ledger.growth(10)
    everything = [(c.tree_size, c.created_at) for c in ledger.checkpoints()]
    assert total == len(everything) >= 30
    assert len(sample) <= 11  # 10 buckets, plus the very first checkpoint
    assert sample[0] == everything[0] and sample[-1] == everything[-1]
    assert [s for s, _ in sample] == sorted({s for s, _ in sample})
    assert set(sample) <= set(everything)
    recent = ledger.recent_checkpoints(5)
    assert [c.tree_size for c in recent] == [s for s, _ in reversed(everything[-5:])]


#: How each appending process dies: inside an append after its rows are inserted, inside a checkpoint
#: signing after its row is inserted, or killed from outside at a random moment of an append loop.
CRASHES = ("entries", "loop", "checkpoint", "loop")


def _intact(ledger: Ledger) -> list[bytes]:
    """The log's leaves, after checking it has no gap (indices 0..n-1), an unbroken `prev` chain and
    a stored tree equal to the tree of its entries."""
    n = ledger.size()
    with ledger.engine.connect() as conn:
        count, lowest = conn.execute(sa.text("SELECT count(*), min(idx) FROM ledger_entries")).one()
    assert count == n and lowest == 0, f"gap: {count} entries for indices 0..{n - 1}"
    entries = ledger.entries(0, n)
    leaves = [leaf_hash(data) for _, data in entries]
    for (i, data), prev_leaf in zip(entries[1:], leaves, strict=False):
        assert f'"prev":"{prev_leaf.hex()}"'.encode() in data, f"broken prev link at {i}"
    assert ledger.root(n) == root_of(leaves), "the stored tree differs from the entries' tree"
    return leaves


def test_a_process_killed_inside_an_append_leaves_no_gap_or_fork_and_appends_continue(
    ledger_db: str, tmp_path: Path
) -> None:
    assert appender.SEED_B64 == SEED  # one signing key for every checkpoint of this database
    ledger = _ledger(ledger_db)
    rng = random.Random(20261128)
    signed: dict[int, bytes] = {}  # every checkpoint seen so far: size -> root
    root = Path(__file__).resolve().parents[2]
    for mode in CRASHES:
        round_ = uuid.uuid4().hex[:8]
        checkpoints_before = len(ledger.checkpoints())
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.ledger_appender", ledger_db, round_, mode],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        lines: list[str] = []
        if mode == "loop":  # wait for a few committed batches, then kill during a later one
            assert proc.stdout is not None
            lines = [proc.stdout.readline().strip() for _ in range(rng.randint(2, 6))]
            time.sleep(rng.uniform(0, 0.03))
            proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=120)
        lines += out.splitlines()
        assert proc.returncode == -signal.SIGKILL, (mode, lines, err)
        assert "survived" not in lines
        if mode != "loop":
            assert any(line.startswith("stage ") for line in lines), (mode, lines, err)
        committed = max(int(line.split()[1]) for line in lines if line.startswith("committed"))

        leaves = _intact(ledger)
        n = len(leaves)
        assert n >= committed, "an append the process saw committed was lost"
        with ledger.engine.connect() as conn:
            killed = conn.execute(
                sa.text("SELECT count(*) FROM ledger_entries WHERE idempotency_key LIKE :k"),
                {"k": f"r{round_}-b99-%"},
            ).scalar_one()
        assert killed == 0, "part of the killed append was kept"
        checkpoints = ledger.checkpoints()
        if mode != "loop":
            assert len(checkpoints) == checkpoints_before, "the killed checkpoint was kept"
        # No fork: every checkpoint ever signed, before or after a crash, is a prefix of today's tree.
        for cp in checkpoints:
            opened = open_checkpoint(cp.note, ledger.verifier, origin="custody.test/ledger")
            assert opened.root == cp.root == root_of(leaves[: cp.tree_size])
            assert signed.setdefault(cp.tree_size, cp.root) == cp.root, "two roots for one size"
            if cp.tree_size:
                proof = ledger.consistency_proof(cp.tree_size, n)
                verify_consistency(cp.tree_size, n, cp.root, ledger.root(n), proof)
        # Appends continue where the log ends, and the killed keys can be appended afresh.
        assert ledger.append([(f"after-{round_}", _event(0))]) == [n]
        assert ledger.append([(f"r{round_}-b99-0", _event(1))]) == [n + 1]
    # And the whole log verifies offline, every checkpoint included.
    exported = ledger.export(tmp_path / "export")
    report = verify_export(tmp_path / "export", ledger.verifier)
    assert report.tree_size == exported.tree_size and len(report.checkpoints_checked) >= len(signed)
