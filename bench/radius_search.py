"""Radius search over 1,000,000 cameras: the (lat_cell, lon) index beside a naive full scan.

Spreads N cameras uniformly over a city-sized box (Washington, DC: about 23 km x 18 km), then times
500 m searches at random centres through `custody.services.registry.search_cameras` (what the API
and the alert workflow call), and a naive full scan with the same exact filter as the anchor, in the
same run, on SQLite and on PostgreSQL.

    .venv/bin/python bench/radius_search.py [--cameras 1000000] [--queries 300] [--naive 5]

Prints p50/p99 of both and the speed-up ratio. Goal: p50 < 5 ms and >= 100x the naive scan.
"""

from __future__ import annotations

import argparse
import io
import itertools
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session

from custody.db import create_db_engine, migrate
from custody.geo import lat_cell
from custody.services.registry import naive_search_cameras, search_cameras

BOX = (38.80, 38.995, -77.12, -76.91)  # min_lat, max_lat, min_lon, max_lon
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _rows(n: int, rng: random.Random) -> list[tuple[str, str, str, float, float, int, str]]:
    owner = "00000000-0000-0000-0000-000000000001"
    rows = []
    for _ in range(n):
        lat = rng.uniform(BOX[0], BOX[1])
        lon = rng.uniform(BOX[2], BOX[3])
        rows.append(
            (str(uuid.UUID(int=rng.getrandbits(128))), owner, "cam", lat, lon, lat_cell(lat), "registered")
        )
    return rows


def _load(engine: sa.Engine, rows: list[tuple[str, str, str, float, float, int, str]]) -> None:
    now = "2026-01-01 00:00:00"
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO owners (id, name, email, registration_consent_at, created_at) "
                "VALUES ('00000000-0000-0000-0000-000000000001', 'bench', 'bench@example.org', :t, :t)"
            ),
            {"t": now},
        )
        if engine.dialect.name == "postgresql":
            raw = conn.connection.driver_connection
            assert raw is not None
            buf = io.StringIO()
            for r in rows:
                buf.write("\t".join(map(str, r)) + f"\t\\N\tt\t{now}\t{now}\n")
            with raw.cursor().copy(
                "COPY cameras (id, owner_id, label, lat, lon, lat_cell, kind, pull_url, active, created_at, "
                "updated_at) FROM STDIN"
            ) as copy:
                copy.write(buf.getvalue())
        else:
            conn.exec_driver_sql(
                "INSERT INTO cameras (id, owner_id, label, lat, lon, lat_cell, kind, pull_url, active, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, 1, ?, ?)",
                [(*r, now, now) for r in rows],
            )
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")


def _time(fn: Callable[[], object], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def _pct(values: list[float], p: float) -> float:
    return sorted(values)[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def bench(name: str, engine: sa.Engine, n: int, queries: int, naive: int, seed: int) -> None:
    rng = random.Random(seed)
    migrate(engine)
    t0 = time.perf_counter()
    _load(engine, _rows(n, rng))
    print(f"[{name}] loaded {n:,} cameras in {time.perf_counter() - t0:.1f} s")
    centres = [(rng.uniform(BOX[0] + 0.01, BOX[1] - 0.01), rng.uniform(BOX[2] + 0.01, BOX[3] - 0.01))
               for _ in range(queries)]  # fmt: skip
    with Session(engine) as session:
        it = itertools.cycle(centres)  # warm-up and timed queries, any count
        hits: list[int] = []

        def indexed() -> None:
            lat, lon = next(it)
            hits.append(
                len(search_cameras(session=session, lat=lat, lon=lon, radius_m=500, max_radius_m=1000))
            )

        _time(indexed, 10)  # warm caches
        hits.clear()
        fast = _time(indexed, queries)
        it2 = iter(centres)

        def scan() -> None:
            lat, lon = next(it2)
            naive_search_cameras(session=session, lat=lat, lon=lon, radius_m=500)

        slow = _time(scan, naive)
        lat, lon = centres[0]
        a = [h.id for h in search_cameras(session=session, lat=lat, lon=lon, radius_m=500, max_radius_m=1000)]
        b = [h.id for h in naive_search_cameras(session=session, lat=lat, lon=lon, radius_m=500)]
        assert a == b, "indexed and naive search disagree"
    p50, p99, naive_p50 = _pct(fast, 50), _pct(fast, 99), statistics.median(slow)
    print(f"[{name}] 500 m search, {statistics.mean(hits):.0f} cameras found on average")
    print(f"[{name}]   indexed search  p50 {p50:8.2f} ms   p99 {p99:8.2f} ms   ({queries} queries)")
    print(f"[{name}]   naive full scan p50 {naive_p50:8.2f} ms   (anchor, {naive} queries, same rows)")
    print(
        f"[{name}]   speed-up (naive p50 / indexed p50): {naive_p50 / p50:.0f}x   goal: p50 < 5 ms, >= 100x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cameras", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--naive", type=int, default=5)
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_db_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        bench("sqlite", engine, args.cameras, args.queries, args.naive, seed=1)
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
        bench("postgresql", engine, args.cameras, args.queries, args.naive, seed=1)
        engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
