"""The ledger in the database: append-only entries, every complete subtree hash, every checkpoint.

Appends are serialised (a PostgreSQL advisory transaction lock; SQLite's single writer lock taken
with BEGIN IMMEDIATE), so concurrent API processes and worker activities never produce a gap, a
duplicate index or a fork. Each append carries an idempotency key: an activity retried by Temporal
gets the index of its first append back instead of writing the event twice.

An append reads the tree's right border (one hash per set bit of the size, one query), adds the new
leaves and the complete subtrees they finish, and inserts them: O(log n) work per entry. Proofs and
roots read only the complete subtrees they need, in one query.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import queue
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from custody.db import IMMEDIATE
from custody.ledger.entries import GENESIS_PREV, CustodyEvent, EventType, canonical, entry_object
from custody.ledger.merkle import (
    Node,
    complete_subtrees,
    consistency_ranges,
    fold_subtrees,
    hash_ranges,
    inclusion_ranges,
    leaf_hash,
    node_hash,
    nodes_for,
)
from custody.ledger.note import SIG_PREFIX, Checkpoint, Signer, Verifier, parse_verifier, signers_of
from custody.models import LedgerCheckpoint, LedgerEntry, LedgerNode
from custody.timeutil import utcnow

log = logging.getLogger("custody.ledger")

ADVISORY_LOCK_KEY = 727_002  # any fixed 64-bit number, unique to the ledger
EXPORT_FORMAT = "custody-ledger-export/1"

_entries = LedgerEntry.__table__  # type: ignore[attr-defined]
_nodes = LedgerNode.__table__  # type: ignore[attr-defined]
_checkpoints = LedgerCheckpoint.__table__  # type: ignore[attr-defined]


_SELECT_KEYS = sa.text(
    "SELECT idempotency_key, idx FROM ledger_entries WHERE idempotency_key IN :keys"
).bindparams(sa.bindparam("keys", expanding=True))
_SELECT_TAIL = sa.text("SELECT idx, leaf_hash, border FROM ledger_entries ORDER BY idx DESC LIMIT 1")
_INSERT_NODE = sa.text("INSERT INTO ledger_nodes (level, idx, hash) VALUES (:level, :idx, :hash)")


def _encode_border(stack: Sequence[tuple[int, bytes]]) -> bytes:
    """The tree's right border after an entry (one complete subtree per set bit of the size), as
    level byte + hash pairs. Stored with each entry so the next append reads one row, not log n."""
    return b"".join(bytes([level]) + h for level, h in stack)


def _decode_border(blob: bytes) -> list[tuple[int, bytes]]:
    raw = bytes(blob)
    return [(raw[i], raw[i + 1 : i + 33]) for i in range(0, len(raw), 33)]


class LedgerRangeError(ValueError):
    """A request for entries or proofs outside the log."""


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    tree_size: int
    root: bytes
    note: str
    created_at: datetime


_BY_SIZE = sa.select(_checkpoints).order_by(_checkpoints.c.tree_size)
_BY_SIZE_DESC = sa.select(_checkpoints).order_by(_checkpoints.c.tree_size.desc())


def _checkpoint_of(row: sa.Row[Any]) -> SignedCheckpoint:
    return SignedCheckpoint(int(row.tree_size), bytes(row.root), row.note, row.created_at)


def _as_utc(value: object) -> datetime:
    """An aggregate's timestamp as an aware UTC datetime, whatever form the driver returns."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Ledger:
    """The custody ledger of one database, signing checkpoints with one key."""

    def __init__(self, engine: Engine, signer: Signer, previous: Sequence[Verifier] = ()) -> None:
        self.engine = engine
        self.signer = signer
        self.origin = signer.name
        #: Keys that signed checkpoints before the current one (CUSTODY_LEDGER_PREVIOUS_KEYS), newest
        #: first: published beside the current key so that old checkpoints stay verifiable.
        self.previous = tuple(v for v in previous if v.key_id != signer.verifier.key_id)
        self._group: _GroupCommit | None = None

    @property
    def verifier(self) -> Verifier:
        return self.signer.verifier

    @property
    def verifiers(self) -> tuple[Verifier, ...]:
        """Every key this ledger's checkpoints may be signed by: the current one first."""
        return (self.signer.verifier, *self.previous)

    def key_history(self) -> list[tuple[Verifier, SignedCheckpoint | None, SignedCheckpoint | None]]:
        """Each of `verifiers` with the first and the last checkpoint it signed (None if none).

        The key id is the first 4 bytes of a signature line's base64 blob, so the first 5 base64
        characters name the key: a LIKE over the notes finds them without reading every note here.
        """
        out = []
        with self.engine.connect() as conn:
            for v in self.verifiers:
                prefix = base64.b64encode(v.key_id).decode()[:5]
                line = f"\n{SIG_PREFIX}{v.name} {prefix}"
                escaped = line.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                signed = _checkpoints.c.note.like(f"%{escaped}%", escape="\\")
                first = conn.execute(_BY_SIZE.where(signed).limit(1)).first()
                last = conn.execute(_BY_SIZE_DESC.where(signed).limit(1)).first()
                out.append(
                    (v, _checkpoint_of(first) if first else None, _checkpoint_of(last) if last else None)
                )
        return out

    # --- writing -----------------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[sa.Connection]:
        with self.engine.connect() as conn:
            conn.execution_options(**{IMMEDIATE: True})
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": ADVISORY_LOCK_KEY})
                yield conn

    @staticmethod
    def _size(conn: sa.Connection) -> int:
        last = conn.execute(sa.select(sa.func.max(_entries.c.idx))).scalar()
        return 0 if last is None else int(last) + 1

    @staticmethod
    def _fetch_nodes(conn: sa.Connection, wanted: Sequence[Node]) -> dict[Node, bytes]:
        if not wanted:
            return {}
        found: dict[Node, bytes] = {}
        # Bounded chunks keep the statement small for any tree size.
        # OR-ed (level, idx) equalities: both engines answer each from the primary key (a row-value
        # IN list makes SQLite scan the table). Bounded chunks keep statements small.
        for i in range(0, len(wanted), 100):
            chunk = wanted[i : i + 100]
            cond = sa.or_(*(sa.and_(_nodes.c.level == lv, _nodes.c.idx == ix) for lv, ix in chunk))
            rows = conn.execute(sa.select(_nodes.c.level, _nodes.c.idx, _nodes.c.hash).where(cond))
            found.update({(int(r.level), int(r.idx)): bytes(r.hash) for r in rows})
        missing = [n for n in wanted if n not in found]
        if missing:
            raise RuntimeError(f"ledger tree nodes missing from the database: {missing[:5]}")
        return found

    def append(self, items: Sequence[tuple[str, CustodyEvent]]) -> list[int]:
        """Append events, each with its idempotency key; return their indices in order.

        An event whose key was appended before is not written again: its first index comes back.
        """
        if not items:
            return []
        with self._locked() as conn:
            keys = list(dict.fromkeys(k for k, _ in items))
            assigned: dict[str, int] = {}
            for i in range(0, len(keys), 500):
                rows = conn.execute(_SELECT_KEYS, {"keys": keys[i : i + 500]})
                assigned.update({r.idempotency_key: int(r.idx) for r in rows})
            last = conn.execute(_SELECT_TAIL).first()
            if last is None:
                size, prev, stack = 0, GENESIS_PREV, []
            else:
                size, prev, stack = (
                    int(last.idx) + 1,
                    bytes(last.leaf_hash).hex(),
                    _decode_border(last.border),
                )

            entry_rows: list[dict[str, object]] = []
            node_rows: list[dict[str, object]] = []
            now = utcnow()
            for key, event in items:
                if key in assigned:
                    continue
                data = canonical(entry_object(event, at=now, prev=prev))
                leaf = leaf_hash(data)
                index = size
                node_rows.append({"level": 0, "idx": index, "hash": leaf})
                h, level = leaf, 0
                while stack and stack[-1][0] == level:
                    h = node_hash(stack.pop()[1], h)
                    level += 1
                    node_rows.append({"level": level, "idx": index >> level, "hash": h})
                stack.append((level, h))
                entry_rows.append(
                    {
                        "idx": index, "idempotency_key": key, "entry": data.decode(), "leaf_hash": leaf,
                        "border": _encode_border(stack), "type": str(event.type), "case_id": event.case_id,
                        "request_id": event.request_id, "evidence_id": event.evidence_id, "created_at": now,
                        "actor": event.actor[:200], "outcome": event.outcome,
                    }
                )  # fmt: skip
                assigned[key] = index
                prev = leaf.hex()
                size += 1
            if entry_rows:
                conn.execute(_entries.insert(), entry_rows)
                conn.execute(_INSERT_NODE, node_rows)
            return [assigned[k] for k, _ in items]

    def record(self, event: CustodyEvent, *, idempotency_key: str) -> int:
        """Append one custody event (the small function workflows and routes call) and return its
        index once it is committed. Concurrent callers in one process share transactions (group
        commit), so throughput grows with concurrency while each call still waits for durability."""
        if not 0 < len(idempotency_key) <= 200:
            raise ValueError("an idempotency key has 1 to 200 characters")
        return self._batcher.submit(idempotency_key, event)

    @property
    def _batcher(self) -> _GroupCommit:
        if self._group is None or self._group.pid != os.getpid():  # a forked child needs its own thread
            with _GROUP_LOCK:
                if self._group is None or self._group.pid != os.getpid():
                    self._group = _GroupCommit(self)
        return self._group

    def sign_checkpoint(self) -> SignedCheckpoint | None:
        """Sign a checkpoint of the current tree if it grew since the last one; return the newest.

        The signing is itself recorded as a `checkpoint_signed` entry (covered by the next checkpoint);
        a tree whose only new entry is that record is not signed again.
        """
        self._record_key_change()
        with self._locked() as conn:
            size = self._size(conn)
            latest = self._latest(conn)
            if latest is not None and latest.tree_size == size:
                return latest
            if latest is not None and size == latest.tree_size + 1:
                last_type = conn.execute(
                    sa.select(_entries.c.type).where(_entries.c.idx == size - 1)
                ).scalar()
                if last_type == EventType.checkpoint_signed:
                    return latest
            root = self._root(conn, size)
            note = self.signer.sign(Checkpoint(self.origin, size, root).body())
            now = utcnow()
            conn.execute(
                _checkpoints.insert(), [{"tree_size": size, "root": root, "note": note, "created_at": now}]
            )
        self.record(
            CustodyEvent(
                EventType.checkpoint_signed,
                actor="custody-ledger",
                detail=f"tree_size={size} root={base64.b64encode(root).decode()}",
            ),
            idempotency_key=f"checkpoint:{size}",
        )
        return SignedCheckpoint(size, root, note, now)

    def _record_key_change(self) -> None:
        """After a key rotation, record the change in the log itself before the first checkpoint.

        The checkpoints table is append-only, so the newest checkpoint (signed by the previous key)
        cannot gain the new key's signature; and a log that does not grow would never be signed
        again. The `ledger_key_changed` entry makes it grow at once, so the next checkpoint, signed
        by the new key, covers the whole log, and the change is itself on the record: which key,
        after which tree size. Idempotent per (key, tree size), so every process may try.
        """
        latest = self.latest_checkpoint()
        mine = (self.verifier.name, self.verifier.key_id)
        if latest is None or mine in signers_of(latest.note):
            return
        self.record(
            CustodyEvent(
                EventType.ledger_key_changed,
                actor="custody-ledger",
                detail=f"checkpoints from now on are signed by {self.verifier.encode()}; "
                f"tree_size={latest.tree_size} was the last signed by "
                + ", ".join(f"{n}+{k.hex()}" for n, k in signers_of(latest.note)),
            ),
            idempotency_key=f"ledger-key:{self.verifier.key_id.hex()}:{latest.tree_size}",
        )
        log.info(
            "ledger signing key changed to %s after tree size %d", self.verifier.encode(), latest.tree_size
        )

    # --- reading -----------------------------------------------------------------------------

    def size(self) -> int:
        with self.engine.connect() as conn:
            return self._size(conn)

    def _root(self, conn: sa.Connection, size: int) -> bytes:
        border = complete_subtrees(0, size)
        known = self._fetch_nodes(conn, border)
        return fold_subtrees([known[n] for n in border])

    def root(self, size: int) -> bytes:
        with self.engine.connect() as conn:
            self._check_size(conn, size)
            return self._root(conn, size)

    def _check_size(self, conn: sa.Connection, size: int) -> None:
        current = self._size(conn)
        if not 0 <= size <= current:
            raise LedgerRangeError(f"tree_size {size} is beyond the log's {current} entries")

    @staticmethod
    def _latest(conn: sa.Connection) -> SignedCheckpoint | None:
        row = conn.execute(_BY_SIZE_DESC.limit(1)).first()
        return None if row is None else _checkpoint_of(row)

    def _checkpoint_rows(self, stmt: sa.Select[Any]) -> list[SignedCheckpoint]:
        with self.engine.connect() as conn:
            return [_checkpoint_of(r) for r in conn.execute(stmt)]

    def latest_checkpoint(self) -> SignedCheckpoint | None:
        with self.engine.connect() as conn:
            return self._latest(conn)

    def checkpoints(self) -> list[SignedCheckpoint]:
        return self._checkpoint_rows(_BY_SIZE)

    def recent_checkpoints(self, limit: int) -> list[SignedCheckpoint]:
        """The newest `limit` checkpoints, newest first."""
        return self._checkpoint_rows(_BY_SIZE_DESC.limit(limit))

    def growth(self, points: int) -> tuple[int, list[tuple[int, datetime]]]:
        """How many checkpoints there are, and at most `points` (tree size, signed at) pairs spread
        evenly over them, oldest first (the very first always among them): the log's growth
        without reading every checkpoint's note."""
        bucket = sa.func.ntile(points).over(order_by=_checkpoints.c.tree_size).label("bucket")
        inner = sa.select(_checkpoints.c.tree_size, _checkpoints.c.created_at, bucket).subquery()
        stmt = (
            sa.select(sa.func.max(inner.c.tree_size), sa.func.max(inner.c.created_at))
            .group_by(inner.c.bucket)
            .order_by(sa.func.max(inner.c.tree_size))
        )
        first = sa.select(_checkpoints.c.tree_size, _checkpoints.c.created_at).order_by(
            _checkpoints.c.tree_size
        )
        with self.engine.connect() as conn:
            total = int(conn.execute(sa.select(sa.func.count()).select_from(_checkpoints)).scalar_one())
            sample = [(int(size), _as_utc(at)) for size, at in conn.execute(stmt)]
            oldest = conn.execute(first.limit(1)).first()
        if oldest is not None and (not sample or sample[0][0] != oldest.tree_size):
            sample.insert(0, (int(oldest.tree_size), oldest.created_at))
        return total, sample

    def checkpoint_at(self, tree_size: int) -> SignedCheckpoint | None:
        found = self._checkpoint_rows(_BY_SIZE.where(_checkpoints.c.tree_size == tree_size))
        return found[0] if found else None

    def entries(self, start: int, end: int) -> list[tuple[int, bytes]]:
        """Entries [start, end) as (index, the exact bytes that were hashed)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(_entries.c.idx, _entries.c.entry)
                .where(_entries.c.idx >= start, _entries.c.idx < end)
                .order_by(_entries.c.idx)
            )
            return [(int(r.idx), r.entry.encode()) for r in rows]

    def entries_for(
        self, *, case_id: str | None = None, evidence_id: str | None = None
    ) -> list[tuple[int, bytes]]:
        with self.engine.connect() as conn:
            stmt = sa.select(_entries.c.idx, _entries.c.entry).order_by(_entries.c.idx)
            if case_id is not None:
                stmt = stmt.where(_entries.c.case_id == case_id)
            if evidence_id is not None:
                stmt = stmt.where(_entries.c.evidence_id == evidence_id)
            return [(int(r.idx), r.entry.encode()) for r in conn.execute(stmt)]

    def index_of(self, idempotency_key: str) -> int | None:
        """The index of the entry appended under `idempotency_key`, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(_SELECT_KEYS, {"keys": [idempotency_key]}).first()
            return None if row is None else int(row.idx)

    def entry_at(self, index: int) -> bytes | None:
        found = self.entries(index, index + 1)
        return found[0][1] if found else None

    def inclusion_proof(self, index: int, tree_size: int) -> list[bytes]:
        """RFC 9162 §2.1.3.1 inclusion proof of entry `index` in the tree of `tree_size` entries."""
        if not 0 <= index < tree_size:
            raise LedgerRangeError(f"index {index} is not below tree_size {tree_size}")
        ranges = inclusion_ranges(index, tree_size)
        with self.engine.connect() as conn:
            self._check_size(conn, tree_size)
            known = self._fetch_nodes(conn, nodes_for(ranges))
        return hash_ranges(ranges, known.__getitem__)

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        """RFC 9162 §2.1.4.1 consistency proof between tree sizes `first` and `second`."""
        if not 0 < first <= second:
            raise LedgerRangeError(f"need 0 < first <= second, got first={first} second={second}")
        ranges = consistency_ranges(first, second)
        with self.engine.connect() as conn:
            self._check_size(conn, second)
            known = self._fetch_nodes(conn, nodes_for(ranges))
        return hash_ranges(ranges, known.__getitem__)

    # --- export ------------------------------------------------------------------------------

    def export(self, folder: Path, *, batch: int = 10_000) -> SignedCheckpoint:
        """Write everything an offline verifier needs: the entries (one canonical JSON per line, the
        exact bytes that were hashed), the latest checkpoint, every older checkpoint, the public key."""
        checkpoint = self.sign_checkpoint() or self.latest_checkpoint()
        if checkpoint is None:
            raise LedgerRangeError("the ledger is empty: nothing to export")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "checkpoints").mkdir(exist_ok=True)
        with (folder / "entries.jsonl").open("wb") as fh:
            for start in range(0, checkpoint.tree_size, batch):
                for _, data in self.entries(start, min(start + batch, checkpoint.tree_size)):
                    fh.write(data + b"\n")
        (folder / "checkpoint.txt").write_text(checkpoint.note)
        for cp in self.checkpoints():
            if cp.tree_size <= checkpoint.tree_size:
                (folder / "checkpoints" / f"{cp.tree_size}.txt").write_text(cp.note)
        (folder / "public-key.txt").write_text(self.verifier.encode() + "\n")
        # Every key the checkpoints may carry, current first (for reference: an auditor verifies with
        # the keys they trust, obtained elsewhere, never with keys read from the export itself).
        (folder / "public-keys.txt").write_text("".join(v.encode() + "\n" for v in self.verifiers))
        manifest = {
            "format": EXPORT_FORMAT,
            "origin": self.origin,
            "tree_size": checkpoint.tree_size,
            "entries": "entries.jsonl",
            "checkpoint": "checkpoint.txt",
            "checkpoints": "checkpoints/",
            "public_key": "public-key.txt",
            "public_keys": "public-keys.txt",
            "exported_at": utcnow().isoformat().replace("+00:00", "Z"),
        }
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        return checkpoint


_GROUP_LOCK = threading.Lock()


class _GroupCommit:
    """One writer thread per process that appends whatever callers queued meanwhile in one
    transaction (up to `max_batch`), then wakes each caller with its index or the error."""

    def __init__(self, ledger: Ledger, max_batch: int = 500) -> None:
        self.ledger = ledger
        self.max_batch = max_batch
        self.pid = os.getpid()
        self._queue: queue.SimpleQueue[tuple[str, CustodyEvent, Future[int]]] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="ledger-group-commit", daemon=True)
        self._thread.start()

    def submit(self, key: str, event: CustodyEvent) -> int:
        future: Future[int] = Future()
        self._queue.put((key, event, future))
        return future.result()

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                indices = self.ledger.append([(k, e) for k, e, _ in batch])
            except BaseException as exc:  # every waiting caller learns of the failure
                for _, _, fut in batch:
                    fut.set_exception(exc)
                continue
            for (_, _, fut), index in zip(batch, indices, strict=True):
                fut.set_result(index)


def ledger_from_settings(
    engine: Engine, *, signing_key: str, origin: str, previous_keys: Sequence[str] = ()
) -> Ledger:
    return Ledger(engine, Signer.from_seed(origin, signing_key), [parse_verifier(k) for k in previous_keys])
