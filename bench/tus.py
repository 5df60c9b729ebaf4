"""Resumable (tus 1.0) owner upload throughput beside the plain streamed PUT of the same file, to the
same API (uvicorn subprocess), SeaweedFS and database, in the same run.

- tus, one PATCH: POST then the whole file in one PATCH (a client that never loses its connection).
- tus, 32 MiB PATCHes: what the consent page's tus-js-client sends (chunkSize 32 MiB), each PATCH
  ending with a checkpoint in the database.
- anchor: `PUT /consent/{token}/files/{name}`, the streamed upload.

Each is run `--rounds` times, alternating, best kept; the ratio is PUT time / tus time (1.0: as fast).

    .venv/bin/python bench/tus.py [--mib 200] [--rounds 2]

(`bench/footage.py --tus-mib N` runs the same on its own stack: the tiny run in tests/bench.)
"""

from __future__ import annotations

import argparse
import base64
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.footage import Stack, _alert, _login, _token, _up
from tests.flow import video_bytes, wait_for
from tests.helpers import settings_env

TUS = {"Tus-Resumable": "1.0.0"}
CHUNK = 32 * 1024 * 1024


def _file_chunks(path: Path, start: int = 0, end: int | None = None) -> Iterator[bytes]:
    with path.open("rb") as fh:
        fh.seek(start)
        left = (end if end is not None else path.stat().st_size) - start
        while left > 0 and (block := fh.read(min(1 << 20, left))):
            left -= len(block)
            yield block


def put(client: httpx.Client, token: str, path: Path) -> float:
    size = path.stat().st_size
    t0 = time.perf_counter()
    resp = client.put(
        f"/consent/{token}/files/{path.name}",
        content=_file_chunks(path),
        headers={"Content-Type": "video/mp4", "Content-Length": str(size)},
    )
    took = time.perf_counter() - t0
    assert resp.status_code == 201, resp.text
    return took


def tus(client: httpx.Client, token: str, path: Path, chunk: int | None) -> float:
    size = path.stat().st_size
    meta = f"filename {base64.b64encode(path.name.encode()).decode()}"
    t0 = time.perf_counter()
    made = client.post(
        f"/consent/{token}/uploads", headers={**TUS, "Upload-Length": str(size), "Upload-Metadata": meta}
    )
    assert made.status_code == 201, made.text
    url, offset = made.headers["Location"], 0
    while offset < size:
        end = size if chunk is None else min(size, offset + chunk)
        resp = client.patch(
            url,
            content=_file_chunks(path, offset, end),
            headers={
                **TUS,
                "Upload-Offset": str(offset),
                "Content-Type": "application/offset+octet-stream",
                "Content-Length": str(end - offset),
            },
        )
        assert resp.status_code == 204, resp.text
        offset = int(resp.headers["Upload-Offset"])
    return time.perf_counter() - t0


def bench(stack: Stack, api: str, mib: int, rounds: int) -> None:
    settings = stack.settings()
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
    mb = path.stat().st_size / 1e6
    times: dict[str, list[float]] = {"put": [], "tus1": [], "tus32": []}
    for _ in range(rounds):
        times["put"].append(put(client, token, path))
        times["tus1"].append(tus(client, token, path, None))
        times["tus32"].append(tus(client, token, path, CHUNK))
    best = {k: min(v) for k, v in times.items()}
    anchor = f"anchor streamed PUT: {mb / best['put']:7.1f} MB/s"
    print(
        f"[tus] {mib} MiB, one PATCH: {mb / best['tus1']:7.1f} MB/s   {anchor}   "
        f"ratio {best['put'] / best['tus1']:.2f}"
    )
    print(
        f"[tus] {mib} MiB, 32 MiB PATCHes (the consent page): {mb / best['tus32']:7.1f} MB/s   {anchor}   "
        f"ratio {best['put'] / best['tus32']:.2f}"
    )
    path.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mib", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
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
                bench(stack, api, args.mib, args.rounds)
            finally:
                worker.terminate()
                worker.wait(30)
        finally:
            api_proc.terminate()
            api_proc.wait(20)
            stack.stop()


if __name__ == "__main__":
    main()
