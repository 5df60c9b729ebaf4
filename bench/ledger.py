"""Ledger benchmarks, each figure beside an anchor measured in the same run.

1. Durable appends per second through `Ledger.record` (one event per transaction, idempotency key,
   lock, right-border read, entry + node inserts), 1 appender and 8 concurrent processes, on SQLite and
   PostgreSQL. Anchor: bare single-row INSERT transactions into a plain table of the same database, same
   concurrency. Published reference: Tessera on a 12-core POSIX machine ~2,900/s. Goal >= 2,000/s.
2. Full offline verification of a 1,000,000-entry export (`custody.ledger.verify.verify_export`)
   beside SHA-256 of the same leaves alone. Goal < 5 s.
3. Inclusion and consistency proof generation at 1,000,000 entries from the database, p50 and p99,
   beside one primary-key row read (the anchor). Goal p50 < 2 ms, length <= ceil(log2 n).

    .venv/bin/python bench/ledger.py [--entries 1000000] [--appends 2000] [--skip-postgres]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import math
import multiprocessing as mp
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from multiprocessing.synchronize import Event
from pathlib import Path

import sqlalchemy as sa

from custody.db import create_db_engine, migrate
from custody.ledger.entries import CustodyEvent, EventType
from custody.ledger.merkle import CompactRange, leaf_hash
from custody.ledger.note import Checkpoint, Signer
from custody.ledger.store import Ledger
from custody.ledger.verify import verify_export

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SEED = base64.b64encode(b"\x05" * 32).decode()
ORIGIN = "bench.custody/ledger"


def _ledger(url: str) -> Ledger:
    return Ledger(create_db_engine(url), Signer.from_seed(ORIGIN, SEED))


def _event() -> CustodyEvent:
    return CustodyEvent(
        EventType.evidence_viewed, actor="bench-user", agency="MPD", case_id=str(uuid.uuid4())
    )


def _append_worker(url: str, count: int, ready: mp.Queue, go: Event, out: mp.Queue) -> None:  # type: ignore[type-arg]
    ledger = _ledger(url)
    ledger.size()  # connect before the clock starts
    pid = os.getpid()
    ready.put(pid)
    go.wait()
    for i in range(count):
        ledger.record(_event(), idempotency_key=f"{pid}-{i}-{uuid.uuid4().hex[:6]}")
    out.put(time.perf_counter())


def _bare_worker(url: str, count: int, ready: mp.Queue, go: Event, out: mp.Queue) -> None:  # type: ignore[type-arg]
    engine = create_db_engine(url)
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
    ready.put(os.getpid())
    go.wait()
    for i in range(count):
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO bench_bare (k, v) VALUES (:k, :v)"),
                         {"k": f"{os.getpid()}-{i}-{uuid.uuid4().hex}", "v": "x" * 200})  # fmt: skip
    out.put(time.perf_counter())


def _rate(target: Callable[..., None], url: str, procs: int, per_proc: int) -> float:
    """Events per second from the moment all processes are connected until the last one finishes."""
    ctx = mp.get_context("spawn")
    ready, out, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    workers = [ctx.Process(target=target, args=(url, per_proc, ready, go, out)) for _ in range(procs)]
    for w in workers:
        w.start()
    for _ in workers:
        ready.get(timeout=120)
    t0 = time.perf_counter()
    go.set()
    ends: list[float] = [out.get(timeout=600) for _ in workers]
    for w in workers:
        w.join()
    return procs * per_proc / (max(ends) - t0)


def _threaded_rate(url: str, threads: int, per_thread: int) -> float:
    """Concurrent callers inside one process (as in the API and the worker): they share commits."""
    from concurrent.futures import ThreadPoolExecutor

    ledger = _ledger(url)
    ledger.size()

    def run(t: int) -> None:
        for i in range(per_thread):
            ledger.record(_event(), idempotency_key=f"t{t}-{i}-{uuid.uuid4().hex[:8]}")

    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(run, range(threads)))
    return threads * per_thread / (time.perf_counter() - t0)


def bench_appends(name: str, url: str, appends: int, processes: int = 8) -> None:
    engine = create_db_engine(url)
    migrate(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE IF NOT EXISTS bench_bare (k VARCHAR(200) PRIMARY KEY, v TEXT)"))
    for procs in (1, processes):
        per = max(1, appends // procs)
        ledger_rate = _rate(_append_worker, url, procs, per)
        bare_rate = _rate(_bare_worker, url, procs, per)
        print(f"[{name}] durable appends, {procs} appender process(es): {ledger_rate:8.0f}/s   "
              f"anchor bare INSERT txns: {bare_rate:8.0f}/s   ratio {ledger_rate / bare_rate:.2f}   "
              f"(goal >= 2,000/s; Tessera ~2,900/s)")  # fmt: skip
    threaded = _threaded_rate(url, threads=processes, per_thread=max(1, appends // processes))
    print(
        f"[{name}] durable appends, {processes} appender threads in one process (group commit): "
        f"{threaded:8.0f}/s"
    )
    size = _ledger(url).size()
    leaves = [leaf_hash(d) for _, d in _ledger(url).entries(0, size)]
    cr = CompactRange()
    for leaf in leaves:
        cr.append(leaf)
    assert _ledger(url).root(size) == cr.root(), "stored tree differs from its entries"


def _write_export(folder: Path, n: int) -> tuple[Signer, list[bytes]]:
    """A 1M-entry export in the real format (prev-linked canonical entries), written directly."""
    signer = Signer.from_seed(ORIGIN, SEED)
    folder.mkdir(parents=True, exist_ok=True)
    cr = CompactRange()
    prev = "0" * 64
    datas = []
    with (folder / "entries.jsonl").open("wb") as fh:
        for i in range(n):
            data = (
                f'{{"actor":"user-{i % 97}","agency":"MPD","at":"2026-11-26T06:00:00.{i % 1000000:06d}Z",'
                f'"case_id":"{uuid.UUID(int=i)}","prev":"{prev}","type":"evidence_viewed","v":1}}'
            ).encode()
            leaf = leaf_hash(data)
            cr.append(leaf)
            prev = leaf.hex()
            fh.write(data + b"\n")
            datas.append(data)
    (folder / "checkpoint.txt").write_text(signer.sign(Checkpoint(ORIGIN, n, cr.root()).body()))
    (folder / "manifest.json").write_text(f'{{"origin": "{ORIGIN}", "tree_size": {n}}}')
    return signer, datas


def bench_verify(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        signer, datas = _write_export(Path(tmp) / "export", n)
        t0 = time.perf_counter()
        for d in datas:
            hashlib.sha256(b"\x00" + d).digest()
        hash_only = time.perf_counter() - t0
        del datas
        t0 = time.perf_counter()
        report = verify_export(Path(tmp) / "export", signer.verifier)
        full = time.perf_counter() - t0
        assert report.tree_size == n
    print(f"[verify] full verification of {n:,} entries: {full:6.2f} s   anchor SHA-256 of the same leaves: "
          f"{hash_only:6.2f} s   ratio {full / hash_only:.1f}x   (goal < 5 s)")  # fmt: skip


def _pct(values: list[float], p: float) -> float:
    return sorted(values)[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def bench_proofs(name: str, url: str, n: int, queries: int = 500) -> None:
    ledger = _ledger(url)
    migrate(ledger.engine)
    t0 = time.perf_counter()
    batch = 20_000
    have = ledger.size()
    for start in range(have, n, batch):
        ledger.append([(f"p-{i}", _event()) for i in range(start, min(n, start + batch))])
    print(f"[{name}] built a {n:,}-entry ledger in {time.perf_counter() - t0:.0f} s")
    rng = random.Random(1)
    incl: list[float] = []
    cons: list[float] = []
    pk: list[float] = []
    incl_len: list[int] = []
    cons_len: list[int] = []
    bound = math.ceil(math.log2(n))
    with ledger.engine.connect() as conn:
        for _ in range(queries):
            i = rng.randrange(n)
            t = time.perf_counter()
            conn.execute(sa.text("SELECT entry FROM ledger_entries WHERE idx = :i"), {"i": i}).scalar_one()
            pk.append((time.perf_counter() - t) * 1000)
    for _ in range(queries):
        i = rng.randrange(n)
        t = time.perf_counter()
        proof = ledger.inclusion_proof(i, n)
        incl.append((time.perf_counter() - t) * 1000)
        incl_len.append(len(proof))
        first = rng.randrange(1, n)
        t = time.perf_counter()
        proof = ledger.consistency_proof(first, n)
        cons.append((time.perf_counter() - t) * 1000)
        cons_len.append(len(proof))
    print(f"[{name}] inclusion proof   p50 {_pct(incl, 50):6.2f} ms  p99 {_pct(incl, 99):6.2f} ms")
    print(f"[{name}] consistency proof p50 {_pct(cons, 50):6.2f} ms  p99 {_pct(cons, 99):6.2f} ms")
    anchor = statistics.median(pk)
    print(f"[{name}] anchor: one primary-key row read p50 {anchor:6.3f} ms; "
          f"ratio inclusion/anchor {_pct(incl, 50) / anchor:.1f}x   (goal p50 < 2 ms)")  # fmt: skip
    print(
        f"[{name}] longest inclusion proof {max(incl_len)} hashes, longest consistency proof "
        f"{max(cons_len)} hashes; ceil(log2 n) = {bound}"
    )


def _pg_database() -> tuple[str, str]:
    name = f"custody_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    return name, sa.make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)


def _drop(name: str) -> None:
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--appends", type=int, default=2000)
    parser.add_argument(
        "--processes", type=int, default=8, help="concurrent appenders (processes, then threads)"
    )
    parser.add_argument("--queries", type=int, default=500, help="proof queries per database")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--only", choices=["appends", "verify", "proofs"], default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "appends"):
            bench_appends("sqlite", f"sqlite:///{Path(tmp) / 'appends.db'}", args.appends, args.processes)
            if not args.skip_postgres:
                name, url = _pg_database()
                try:
                    bench_appends("postgresql", url, args.appends, args.processes)
                finally:
                    _drop(name)
        if args.only in (None, "verify"):
            bench_verify(args.entries)
        if args.only in (None, "proofs"):
            bench_proofs("sqlite", f"sqlite:///{Path(tmp) / 'proofs.db'}", args.entries, args.queries)
            if not args.skip_postgres:
                name, url = _pg_database()
                try:
                    bench_proofs("postgresql", url, args.entries, args.queries)
                finally:
                    _drop(name)


if __name__ == "__main__":
    main()
