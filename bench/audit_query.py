"""The auditor's filtered query over a 1,000,000-entry ledger, beside the same filter as a full scan.

Bulk-inserts N ledger rows as migration 0010 leaves them (the canonical entry plus the indexed type,
actor, outcome and time columns; dummy hashes: the Merkle appender is not what is measured here), a
year of a program's events: custody events mostly, sign-ins (a few percent failures) of 500 staff,
reads of the log. Then times the auditor console's queries through `custody.services.audit.query`
(newest 101 matches, as a page asks):

  a. one user's failed sign-ins in a 30-day window   (type + user + outcome + time)
  b. every sign-out in a 7-day window                 (type + time)
  c. one user's everything, newest first             (user)

Anchor, in the same run: the same statement with the indexes switched off (SQLite `NOT INDEXED`,
PostgreSQL enable_indexscan/bitmapscan off), i.e. a full scan of the same rows; the two must return
the same entries. Prints p50/p99 of each, and the anchor's p50 over the query's p50 as the speed-up.

    .venv/bin/python bench/audit_query.py [--entries 1000000] [--queries 200] [--scans 3] [--skip-postgres]

Goal: every query p50 < 10 ms at 1,000,000 entries.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from custody.db import create_db_engine, migrate
from custody.services.audit import AuditFilter, query

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
START = datetime(2025, 11, 28, tzinfo=UTC)
YEAR_S = 365 * 86400
CUSTODY_TYPES = ("evidence_viewed", "evidence_downloaded", "file_received", "file_verified",
                 "request_created", "owner_notified", "case_viewed", "checkpoint_signed")  # fmt: skip


def _users(n: int, rng: random.Random) -> list[str]:
    return [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(n)]


def _rows(n: int, users: list[str], rng: random.Random) -> list[tuple[Any, ...]]:
    """(idx, key, entry, type, actor, outcome, created_at) for n entries spread over a year."""
    rows = []
    step = YEAR_S / n
    prev = "0" * 64
    for i in range(n):
        at = START + timedelta(seconds=i * step)
        user = rng.choice(users)
        r = rng.random()
        e: dict[str, Any] = {
            "v": 1,
            "actor": user,
            "agency": "MPD",
            "at": at.isoformat().replace("+00:00", "Z"),
        }
        if r < 0.80:
            e.update(type=rng.choice(CUSTODY_TYPES), case_id=str(uuid.UUID(int=rng.getrandbits(128))))
        elif r < 0.92:
            e.update(type="sign_in", component="console", outcome="success", detail="success as investigator")
        elif r < 0.94:
            e.update(type="sign_in", component="api", outcome="failure", detail="failure: wrong password")
        elif r < 0.97:
            e.update(type="sign_out", component="console", outcome="success")
        else:
            e.update(type="ledger_queried", component="console", outcome="success", detail="type=sign_in")
        e["prev"] = prev
        prev = f"{i:064x}"
        rows.append((i, f"bench:{i}", json.dumps(e, separators=(",", ":"), sort_keys=True), e["type"],
                     e["actor"], e.get("outcome"), at))  # fmt: skip
    return rows


def _load(engine: sa.Engine, rows: list[tuple[Any, ...]]) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            raw = conn.connection.driver_connection
            assert raw is not None
            buf = io.StringIO()
            null, zero = "\\N", "\\\\x" + "00" * 32
            for idx, key, entry, typ, actor, outcome, at in rows:
                text = entry.replace("\\", "\\\\")
                cells = (idx, key, text, zero, "\\\\x", typ, actor, outcome or null, at.isoformat())
                buf.write("\t".join(map(str, cells)) + "\n")
            with raw.cursor().copy(
                "COPY ledger_entries (idx, idempotency_key, entry, leaf_hash, border, type, actor, outcome, "
                "created_at) FROM STDIN"
            ) as copy:
                copy.write(buf.getvalue())
        else:
            conn.exec_driver_sql(
                "INSERT INTO ledger_entries (idx, idempotency_key, entry, leaf_hash, border, type, actor, "
                "outcome, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (i, k, e, b"\0" * 32, b"", t, a, o, at.strftime("%Y-%m-%d %H:%M:%S.%f"))
                    for i, k, e, t, a, o, at in rows
                ],
            )
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")


def _pct(values: list[float], p: float) -> float:
    return sorted(values)[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def _time(fn: Callable[[int], object], n: int) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def _scan(engine: sa.Engine, flt: AuditFilter, limit: int) -> list[int]:
    """The same statement with every index switched off: a full scan of the same rows."""
    stmt = flt.statement(limit)
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            for knob in ("indexscan", "bitmapscan", "indexonlyscan"):
                conn.execute(sa.text(f"SET enable_{knob} = off"))
            rows = conn.execute(stmt).all()
            conn.rollback()
        else:
            sql = str(stmt.compile(engine, compile_kwargs={"literal_binds": True}))
            sql = sql.replace("FROM ledger_entries", "FROM ledger_entries NOT INDEXED", 1)
            rows = conn.exec_driver_sql(sql).all()
    return [int(r[0]) for r in rows]


def bench(name: str, engine: sa.Engine, n: int, queries: int, scans: int, seed: int) -> None:
    rng = random.Random(seed)
    migrate(engine)
    users = _users(500, rng)
    t0 = time.perf_counter()
    _load(engine, _rows(n, users, rng))
    print(f"[{name}] loaded {n:,} ledger entries in {time.perf_counter() - t0:.1f} s")
    end = START + timedelta(seconds=YEAR_S)

    def window(days: int, r: random.Random) -> tuple[datetime, datetime]:
        since = START + timedelta(seconds=r.uniform(0, max(1, YEAR_S - days * 86400)))
        return since, min(end, since + timedelta(days=days))

    def a(r: random.Random) -> AuditFilter:
        since, until = window(30, r)
        return AuditFilter(
            types=("sign_in",), actors=(r.choice(users),), outcome="failure", since=since, until=until
        )

    def b(r: random.Random) -> AuditFilter:
        since, until = window(7, r)
        return AuditFilter(types=("sign_out",), since=since, until=until)

    def c(r: random.Random) -> AuditFilter:
        return AuditFilter(actors=(r.choice(users),))

    for label, make in (
        ("a. one user's failed sign-ins, 30 days", a),
        ("b. every sign-out, 7 days", b),
        ("c. one user's everything, newest", c),
    ):
        _measure(name, engine, label, [make(rng) for _ in range(queries)], scans)


def _measure(name: str, engine: sa.Engine, label: str, filters: list[AuditFilter], scans: int) -> None:
    queries = len(filters)
    found: list[int] = []
    _time(lambda i: query(engine, filters[i % queries], limit=101), min(10, queries))  # warm up
    fast = _time(lambda i: found.append(len(query(engine, filters[i], limit=101))), queries)
    slow = _time(lambda i: _scan(engine, filters[i], 101), scans)
    for f in filters[:scans]:
        same = [i for i, _ in query(engine, f, limit=101)] == _scan(engine, f, 101)
        assert same, "the indexed query and the full scan disagree"
    p50, p99, scan50 = _pct(fast, 50), _pct(fast, 99), statistics.median(slow)
    print(f"[{name}] {label}: {statistics.mean(found):.0f} entries found on average")
    print(f"[{name}]   indexed query   p50 {p50:8.2f} ms   p99 {p99:8.2f} ms   ({queries} queries)")
    print(
        f"[{name}]   full scan       p50 {scan50:8.2f} ms   (anchor: {scans} queries, same filter and rows)"
    )
    print(f"[{name}]   speed-up (scan p50 / indexed p50): {scan50 / p50:.0f}x   goal: p50 < 10 ms")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--scans", type=int, default=3)
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_db_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        bench("sqlite", engine, args.entries, args.queries, args.scans, seed=1)
        engine.dispose()
    if args.skip_postgres:
        return
    dbname = f"custody_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{dbname}"'))
    try:
        engine = create_db_engine(
            sa.make_url(PG_ADMIN).set(database=dbname).render_as_string(hide_password=False)
        )
        bench("postgresql", engine, args.entries, args.queries, args.scans, seed=1)
        engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
