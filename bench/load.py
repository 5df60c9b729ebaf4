"""Load on the real stack over loopback: figures beside anchors measured in the same run.

1. Mixed load: U owners upload S MiB each at once (default 50 x 100 MiB) while status reads arrive
   at R a second (default 200) for D seconds (default 60). Reads: errors by status, p50/p99
   (latency from each read's scheduled time, so a stalled server is not hidden); uploads: statuses
   and p50/p99; the API process's peak memory. Anchor: the same open-loop reads with no uploads.
2. Read ceiling: closed-loop `GET /requests/{id}` from C concurrent clients (default 10, 50, 200)
   for T seconds each (default 10): reads/s, p50/p99, errors. Anchor: the 10-client figure.

`--api-source DIR` runs the API and the worker from another checkout (e.g. an older commit, to
measure the ceiling before a change) against the same servers.

    .venv/bin/python bench/load.py [--uploads 50] [--upload-mib 100] [--rate 200] [--seconds 60]
                                   [--clients 10,50,200] [--ceiling-seconds 10] [--api-source DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.footage import Inbox, Stack, _alert, _login, _rss_kb, _up  # noqa: E402
from tests.flow import video_bytes, wait_for  # noqa: E402
from tests.helpers import settings_env  # noqa: E402

MiB = 1024 * 1024


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, status: str, seconds: float) -> None:
        with self.lock:
            self.statuses[status] += 1
            self.latencies.append(seconds)

    def pct(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    @property
    def errors(self) -> int:
        return sum(n for s, n in self.statuses.items() if not s.startswith("2"))

    def line(self) -> str:
        kinds = " ".join(f"{s}:{n}" for s, n in sorted(self.statuses.items()))
        n = sum(self.statuses.values())
        return f"n {n:6d}  p50 {self.pct(0.5):7.1f} ms  p99 {self.pct(0.99):7.1f} ms  [{kinds}]"


class MemoryPeak:
    """Samples the API process's resident memory every 0.2 s."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak_kb, self.stop = pid, _rss_kb(pid), threading.Event()
        self.start_kb = self.peak_kb
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(0.2):
            self.peak_kb = max(self.peak_kb, _rss_kb(self.pid))

    def done(self) -> tuple[float, float]:
        self.stop.set()
        self.thread.join()
        return self.start_kb / 1024, self.peak_kb / 1024


async def _read(c: httpx.AsyncClient, path: str, tally: Tally, since: float) -> None:
    try:
        status = str((await c.get(path)).status_code)
    except httpx.HTTPError as exc:
        status = type(exc).__name__
    tally.add(status, time.perf_counter() - since)


def _reader(api: str, token: str, connections: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(
        base_url=api, timeout=60, limits=limits, headers={"Authorization": f"Bearer {token}"}
    )


def open_loop_reads(api: str, token: str, path: str, rate: float, seconds: float) -> Tally:
    """`rate` reads a second for `seconds`, each timed from when it was due (open loop: a slow
    server does not slow the arrivals). One event loop, so the client is not what limits."""
    tally = Tally()

    async def run() -> None:
        # At most 256 reads in flight inside httpx (its pool's queue grows costly when long); the
        # rest wait here, and their latency still counts from when they were due.
        in_flight = asyncio.Semaphore(256)

        async def one(due: float) -> None:
            async with in_flight:
                await _read(c, path, tally, due)

        async with _reader(api, token, 256) as c:
            start = time.perf_counter()
            tasks = []
            for i in range(int(rate * seconds)):
                due = start + i / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(due)))
            await asyncio.gather(*tasks)

    asyncio.run(run())
    return tally


def closed_loop_reads(api: str, token: str, path: str, clients: int, seconds: float) -> tuple[Tally, float]:
    """`clients` readers, each sending its next read when the last one is answered."""
    tally = Tally()

    async def run() -> float:
        async with _reader(api, token, clients) as c:
            stop = time.perf_counter() + seconds

            async def loop() -> None:
                while time.perf_counter() < stop:
                    await _read(c, path, tally, time.perf_counter())

            started = time.perf_counter()
            await asyncio.gather(*(loop() for _ in range(clients)))
            return time.perf_counter() - started

    elapsed = asyncio.run(run())
    return tally, sum(tally.statuses.values()) / elapsed


def _body(mib: int, seed: int) -> Iterator[bytes]:
    head = video_bytes(MiB, seed=seed)
    filler = bytes((i * 7 + seed) % 256 for i in range(MiB))
    yield head
    for _ in range(mib - 1):
        yield filler


def uploads_at_once(api: str, tokens: list[str], mib: int) -> Tally:
    tally = Tally()

    def one(i: int) -> None:
        t = time.perf_counter()
        try:
            with httpx.Client(base_url=api, timeout=600) as c:
                r = c.put(
                    f"/consent/{tokens[i]}/files/load-{i}.mp4",
                    content=_body(mib, i),
                    headers={"Content-Type": "video/mp4"},
                )
                status = str(r.status_code)
        except httpx.HTTPError as exc:
            status = type(exc).__name__
        tally.add(status, time.perf_counter() - t)

    with ThreadPoolExecutor(len(tokens)) as pool:
        list(pool.map(one, range(len(tokens))))
    return tally


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--uploads", type=int, default=50)
    parser.add_argument("--upload-mib", type=int, default=100)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", default="10,50,200")
    parser.add_argument("--ceiling-seconds", type=float, default=10)
    parser.add_argument(
        "--setting", action="append", default=[], metavar="NAME=VALUE", help="a custody setting of the API"
    )
    parser.add_argument(
        "--api-source", type=Path, default=ROOT, help="checkout to run the API and worker from"
    )
    args = parser.parse_args()
    source = args.api_source.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(Path(tmp))
        stack.start()
        extra = dict(item.split("=", 1) for item in args.setting)
        settings = stack.settings(max_file_bytes=max(2 * args.upload_mib * MiB, 8 * 1024**3), **extra)
        env = settings_env(settings)
        env["PYTHONPATH"] = str(source)
        api_proc = stack.start_api(settings, source)
        api = f"http://127.0.0.1:{stack.ports['api']}"
        worker: subprocess.Popen[bytes] | None = None
        try:
            wait_for("API", lambda: _up(api, api_proc), timeout=60)
            worker = subprocess.Popen([sys.executable, "-m", "worker"], env=env, cwd=str(source))
            client = _login(api, settings, migrate_db=source == ROOT)
            token = str(client.headers["Authorization"]).split()[1]
            print(f"API from {source}; {os.cpu_count()} CPUs; loopback", flush=True)

            # Owners who consented, one per upload; their requests are what the reads look at.
            _, request_ids, emails = _alert(client, max(1, args.uploads), 38.7)
            inbox = Inbox(settings.home / "mail")
            tokens = [inbox.token(e, timeout=300) for e in emails]
            for t in tokens:
                r = client.post(f"/consent/{t}/decision", json={"decision": "consent"})
                assert r.status_code == 200, r.text
            path = f"/requests/{request_ids[0]}"

            anchor = open_loop_reads(api, token, path, args.rate, args.seconds)
            print(
                f"[reads alone]        {args.rate:.0f}/s for {args.seconds:.0f} s: {anchor.line()}",
                flush=True,
            )

            memory = MemoryPeak(api_proc.pid)
            up_tally = Tally()
            if args.uploads:
                uploader = threading.Thread(
                    target=lambda: up_tally.__dict__.update(
                        uploads_at_once(api, tokens[: args.uploads], args.upload_mib).__dict__
                    )
                )
                uploader.start()
            mixed = open_loop_reads(api, token, path, args.rate, args.seconds)
            if args.uploads:
                uploader.join()
            mem_start, mem_peak = memory.done()
            ratio = mixed.pct(0.99) / anchor.pct(0.99) if anchor.latencies else float("nan")
            print(
                f"[reads with uploads] {args.rate:.0f}/s for {args.seconds:.0f} s: {mixed.line()}   "
                f"anchor reads alone p99 {anchor.pct(0.99):.1f} ms   ratio p99 {ratio:.1f}x"
            )
            print(
                f"[uploads]            {args.uploads} x {args.upload_mib} MiB at once: {up_tally.line()}   "
                f"API memory {mem_start:.0f} -> peak {mem_peak:.0f} MB"
            )

            base: float | None = None
            for n in [int(x) for x in args.clients.split(",") if x]:
                tally, rate = closed_loop_reads(api, token, path, n, args.ceiling_seconds)
                base = base or rate
                print(
                    f"[read ceiling] {n:4d} clients: {rate:8.1f} reads/s  {tally.line()}   "
                    f"anchor {base:.1f} reads/s at the first level   ratio {rate / base:.2f}x",
                    flush=True,
                )
        finally:
            if worker is not None:
                worker.terminate()
                worker.wait(30)
            api_proc.terminate()
            api_proc.wait(20)
            stack.stop()


if __name__ == "__main__":
    main()
