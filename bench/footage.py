"""Footage-request benchmarks on the real stack, each beside an anchor measured in the same run.

1. Owner upload of a large file (default 1 GiB) through the API (uvicorn subprocess) into S3, beside
   a direct `minio` put of the same file to the same server; and the API process's memory growth.
   Goals: >= 0.7x the direct rate, growth < 100 MB.
2. Verification re-read (`storage.evidence.hash_object`, what the verify activity runs) beside a bare
   `minio` get + hashlib on the same object. Goal >= 0.8x.
3. N requests from one alert (default 1,000), each consented, given a small file, verified and
   attached, beside bare Temporal running N workflows of the same shape (2 activities + 1 signal) on
   the same server. Goal <= 2x the bare time.

    .venv/bin/python bench/footage.py [--upload-mib 1024] [--requests 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import email
import hashlib
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from temporalio.worker import Worker

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bare_shape import BareInput, BareShape, bare_step
from custody.db import (
    create_db_engine,
    migrate,
    session_scope,
)
from custody.devsecrets import ensure_dev_secrets
from custody.services.users import create_user, ensure_agencies
from custody.settings import SECRET_FIELDS, Settings
from devstack.procs import free_port
from devstack.servers import S3Identity
from devstack.stack import EmbeddedServers
from storage.evidence import hash_object
from storage.s3 import make_client
from tests.flow import link_in, video_bytes, wait_for
from tests.helpers import settings_env
from workflows.client import connect_temporal


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Stack:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.secrets = ensure_dev_secrets(home)
        self.servers = EmbeddedServers(
            home, S3Identity(self.secrets["s3_access_key"], self.secrets["s3_secret_key"])
        )
        self.ports = {
            "temporal": self.servers.temporal_port,
            "s3": self.servers.s3_port,
            "smtp": self.servers.smtp_port,
            "api": free_port(),
        }

    def settings(self, **over: object) -> Settings:
        values: dict[str, object] = {
            "mode": "test",
            "home": self.home,
            "temporal_port": self.ports["temporal"],
            "s3_port": self.ports["s3"],
            "smtp_port": self.ports["smtp"],
            "api_port": self.ports["api"],
            "demo_users": False,
            "database_url": f"sqlite:///{self.home / 'bench.db'}",
            "public_url": f"http://127.0.0.1:{self.ports['api']}",
            "consent_ttl_s": 3600,
            "reminders_s": [7200],
            "max_file_bytes": 8 * 1024**3,
            "task_queue": "bench",
            # Every secret test mode requires (the list that missed the report keys let this rot).
            **{k: self.secrets[k] for k in SECRET_FIELDS.values()},
        }
        values.update(over)
        return Settings(**values)  # type: ignore[arg-type]

    def start(self) -> None:
        self.servers.start()

    def start_api(self, settings: Settings, source: Path | None = None) -> subprocess.Popen[bytes]:
        """The API under uvicorn in its own process, from this checkout or `source` (another one:
        bench/load.py --api-source)."""
        root = source or Path(__file__).resolve().parent.parent
        env = settings_env(settings)
        env["PYTHONPATH"] = str(root)
        # Test mode: the API refuses an unmigrated database, so migrate it first with that checkout's
        # own migrations (through custody.db, which older checkouts have too: not `custody migrate`).
        subprocess.run(
            [sys.executable, "-c", "import sys; from custody.db import create_db_engine as e, migrate as m;"
             " m(e(sys.argv[1]))", settings.db_url],
            env=env, cwd=str(root), check=True,
        )  # fmt: skip
        argv = [sys.executable, "-m", "uvicorn", "--factory", "api.app:app", "--host", "127.0.0.1",
                "--port", str(self.ports["api"]), "--log-level", "warning"]  # fmt: skip
        return subprocess.Popen(argv, env=env, cwd=str(root))

    def stop(self) -> None:
        self.servers.stop()


def _login(api: str, settings: Settings, *, migrate_db: bool = True) -> httpx.Client:
    """An investigator's client. `migrate_db=False` when the API runs another checkout, which has
    migrated the database to its own schema (load.py --api-source)."""
    engine = create_db_engine(settings.db_url)
    if migrate_db:
        migrate(engine)
    name, pw = f"bench-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    with session_scope(engine) as session:
        ensure_agencies(session=session)
        create_user(session=session, username=name, password=pw, role="investigator", agency="MPD")
    client = httpx.Client(base_url=api, timeout=600)
    token = client.post("/auth/token", data={"username": name, "password": pw}).json()["access_token"]
    client.headers["Authorization"] = f"Bearer {token}"
    return client


def _alert(client: httpx.Client, n: int, lat: float) -> tuple[str, list[str], list[str]]:
    emails = []
    for i in range(n):
        email = f"o{i}-{uuid.uuid4().hex[:6]}@example.org"
        owner = client.post("/owners", json={"name": f"Owner {i}", "email": email}).json()["id"]
        cam = {
            "owner_id": owner,
            "label": f"cam {i}",
            "lat": lat + (i % 40) * 0.00005,
            "lon": -77.0 + (i // 40) * 0.00005,
            "kind": "registered",
        }
        made = client.post("/cameras", json=cam)
        assert made.status_code == 201, made.text
        emails.append(email)
    case = client.post("/cases", json={"title": "bench"}).json()["id"]
    end = datetime.now(UTC) - timedelta(minutes=1)
    resp = client.post(
        f"/cases/{case}/alerts",
        json={
            "lat": lat,
            "lon": -77.0,
            "radius_m": 1000,
            "description": "b",
            "window_start": (end - timedelta(minutes=10)).isoformat(),
            "window_end": end.isoformat(),
        },
    )
    assert resp.status_code == 202, resp.text
    return case, [r["id"] for r in resp.json()["requests"]], emails


class Inbox:
    """Reads each new message of the Maildir once (a thousand owners must not re-parse it all)."""

    def __init__(self, maildir: Path) -> None:
        self.maildir = maildir / "new"
        self.seen: set[str] = set()
        self.links: dict[str, str] = {}
        self.lock = threading.Lock()

    def _scan(self) -> None:
        for entry in os.scandir(self.maildir):
            if entry.name in self.seen:
                continue
            self.seen.add(entry.name)
            msg = email.message_from_bytes(Path(entry.path).read_bytes())
            self.links.setdefault(str(msg["To"]), link_in(msg).rsplit("/consent/", 1)[1])

    def token(self, address: str, timeout: float = 600) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if address not in self.links:
                    self._scan()
                if address in self.links:
                    return self.links[address]
            time.sleep(0.2)
        raise TimeoutError(f"no notice for {address}")


def _token(settings: Settings, address: str) -> str:
    return Inbox(settings.home / "mail").token(address)


def bench_upload(stack: Stack, settings: Settings, api: str, api_pid: int, mib: int) -> str:
    client = _login(api, settings)
    _, _, emails = _alert(client, 1, 38.0)
    token = _token(settings, emails[0])
    assert client.post(f"/consent/{token}/decision", json={"decision": "consent"}).status_code == 200
    path = stack.home / "big.mp4"
    with path.open("wb") as fh:
        fh.write(video_bytes(1 << 20))
        block = os.urandom(1 << 20)
        for _ in range(mib - 1):
            fh.write(block)
    size = path.stat().st_size

    def chunks() -> Iterator[bytes]:
        with path.open("rb") as fh:
            while block := fh.read(1 << 20):
                yield block

    rss0, peak = _rss_kb(api_pid), 0
    done = False

    def sample() -> None:
        nonlocal peak
        while not done:
            peak = max(peak, _rss_kb(api_pid))
            time.sleep(0.05)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    t0 = time.perf_counter()
    resp = client.put(
        f"/consent/{token}/files/big.mp4",
        content=chunks(),
        headers={"Content-Type": "video/mp4", "Content-Length": str(size)},
    )
    api_s = time.perf_counter() - t0
    done = True
    t.join()
    assert resp.status_code == 201, resp.text
    s3 = make_client(settings)
    t0 = time.perf_counter()
    s3.fput_object(settings.s3_bucket, f"bench/direct-{uuid.uuid4()}", str(path), part_size=16 * 1024 * 1024)
    direct_s = time.perf_counter() - t0
    mb = size / 1e6
    print(
        f"[upload] {mib} MiB through the API: {mb / api_s:7.1f} MB/s   anchor direct minio put: "
        f"{mb / direct_s:7.1f} MB/s   ratio {direct_s / api_s:.2f}   (goal >= 0.7)"
    )
    print(
        f"[upload] API process memory: {rss0 / 1024:.0f} MB before, peak {peak / 1024:.0f} MB "
        f"(growth {(peak - rss0) / 1024:.0f} MB; goal < 100 MB)"
    )

    key = next(iter(s3.list_objects(settings.s3_bucket, prefix="cases/", recursive=True))).object_name

    def bare() -> str:
        obj = s3.get_object(settings.s3_bucket, key)
        h = hashlib.sha256()
        while data := obj.read(1 << 20):
            h.update(data)
        obj.close()
        obj.release_conn()
        return h.hexdigest()

    def ours() -> str:
        return hash_object(s3, bucket=settings.s3_bucket, key=key, version_id=None)[0]

    # Alternate the two, twice each, and keep each one's best: both read equally warm caches.
    times: dict[str, list[float]] = {"ours": [], "bare": []}
    digests = set()
    for _ in range(2):
        for name, fn in (("bare", bare), ("ours", ours)):
            t0 = time.perf_counter()
            digests.add(fn())
            times[name].append(time.perf_counter() - t0)
    assert len(digests) == 1
    verify_s, bare_s = min(times["ours"]), min(times["bare"])
    print(
        f"[verify] re-read + SHA-256 of {mib} MiB: {size / 1e6 / verify_s:7.1f} MB/s   "
        f"anchor bare get + hashlib: {size / 1e6 / bare_s:7.1f} MB/s   "
        f"ratio {bare_s / verify_s:.2f}   (goal >= 0.8)"
    )
    path.unlink()
    return token


async def _bare(settings: Settings, n: int) -> float:
    client = await connect_temporal(settings)
    queue = f"bare-{uuid.uuid4().hex[:6]}"
    with ThreadPoolExecutor(16) as pool:
        async with Worker(
            client, task_queue=queue, workflows=[BareShape], activities=[bare_step], activity_executor=pool
        ):
            t0 = time.perf_counter()
            handles = await asyncio.gather(
                *(
                    client.start_workflow(BareShape.run, BareInput(i), id=f"{queue}-{i}", task_queue=queue)
                    for i in range(n)
                )
            )
            await asyncio.gather(*(h.signal(BareShape.proceed) for h in handles))
            await asyncio.gather(*(h.result() for h in handles))
            return time.perf_counter() - t0


def bench_many(settings: Settings, api: str, n: int) -> None:
    client = _login(api, settings)
    t_setup = time.perf_counter()
    _, request_ids, emails = _alert(client, n, 39.0)
    assert len(request_ids) == n, f"{len(request_ids)} requests, expected {n}"
    clip = video_bytes(64_000)
    inbox = Inbox(settings.home / "mail")

    def owner(address: str) -> None:
        with httpx.Client(base_url=api, timeout=300) as c:
            token = inbox.token(address)
            assert c.post(f"/consent/{token}/decision", json={"decision": "consent"}).status_code == 200
            assert (
                c.put(
                    f"/consent/{token}/files/clip.mp4", content=clip, headers={"Content-Type": "video/mp4"}
                ).status_code
                == 201
            )
            assert c.post(f"/consent/{token}/complete").status_code == 202

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(owner, emails))

    def all_attached() -> bool:
        statuses = [
            r["status"] for r in client.get(f"/cases/{_case_of(client, request_ids[0])}/requests").json()
        ]
        return statuses.count("attached") == n

    wait_for("all attached", all_attached, timeout=3600, interval=1)
    ours = time.perf_counter() - t_setup
    bare = asyncio.run(_bare(settings, n))
    print(
        f"[requests] {n} requests alert -> notice -> consent -> upload -> verify -> attach: "
        f"{ours:7.1f} s   "
        f"anchor bare Temporal, {n} workflows (2 activities + 1 signal): {bare:7.1f} s   "
        f"ratio {ours / bare:.1f}x   (goal <= 2x)"
    )


def _case_of(client: httpx.Client, request_id: str) -> str:
    return str(client.get(f"/requests/{request_id}").json()["case_id"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--upload-mib", type=int, default=1024)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--tus-mib", type=int, default=0, help="also bench/tus.py at this size, same stack")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(Path(tmp))
        stack.start()
        settings = stack.settings()
        api_proc = stack.start_api(settings)
        api = f"http://127.0.0.1:{stack.ports['api']}"
        try:
            wait_for("API", lambda: _up(api, api_proc), timeout=60)
            worker = subprocess.Popen(
                [sys.executable, "-m", "worker"],
                env=settings_env(settings),
                cwd=str(Path(__file__).resolve().parent.parent),
            )
            try:
                if args.upload_mib:
                    bench_upload(stack, settings, api, api_proc.pid, args.upload_mib)
                if args.requests:
                    bench_many(settings, api, args.requests)
                if args.tus_mib:  # resumable beside streamed uploads (its own script: bench/tus.py)
                    from bench.tus import bench as bench_tus

                    bench_tus(stack, api, args.tus_mib, rounds=1)
            finally:
                worker.terminate()
                worker.wait(30)
        finally:
            api_proc.terminate()
            api_proc.wait(20)
            stack.stop()


def _up(url: str, proc: subprocess.Popen[bytes]) -> bool:
    if proc.poll() is not None:
        raise SystemExit(f"the API exited with status {proc.returncode} before answering; see above")
    try:
        return httpx.get(f"{url}/docs", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    main()
