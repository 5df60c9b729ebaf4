"""Working-copy creation beside ffmpeg alone on the same file, measured in the same run.

The figure: `activities.workcopy.make_working_copy`, the activity's whole code path for one file:
read the master's exact version from S3 (SeaweedFS, started here) into a temporary file, ffprobe it,
ffmpeg it to H.264/AAC MP4 (the same arguments), hash the copy and write it to S3.
The anchor: ffmpeg alone, the same command on the same local file (no S3, no ffprobe, no hash).
Goal: ratio (ours / ffmpeg alone) <= 1.15 at a real size: the custody work around ffmpeg is small.

The master is generated with ffmpeg's lavfi sources (testsrc2 + a sine tone), H.264 + AAC in a
QuickTime file, like a phone's or a DVR's export.

    .venv/bin/python bench/workcopy.py [--seconds 60] [--size 1280x720] [--rounds 2] [--s3-from-env]

`--s3-from-env`: use the S3 the CUSTODY_* environment names (the test suite's SeaweedFS) instead of
starting one here.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from activities.workcopy import _run, ffmpeg_version, make_working_copy
from custody import workcopy
from custody.devsecrets import ensure_dev_secrets
from custody.settings import SECRET_FIELDS, Settings, load_settings
from devstack.procs import free_port
from devstack.servers import S3Identity, seaweed_child, wait_s3_and_bucket
from storage.s3 import make_client


def make_master(path: Path, seconds: int, size: str) -> None:
    subprocess.run(
        [
            "ffmpeg", "-nostdin", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30:duration={seconds}",
            "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
            "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest", str(path),
        ],
        check=True,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--rounds", type=int, default=2, help="each side runs this often; best kept")
    parser.add_argument("--s3-from-env", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-workcopy-") as tmp:
        home = Path(tmp)
        child = None
        if args.s3_from_env:
            settings = load_settings()
        else:
            secrets = ensure_dev_secrets(home)
            identity = S3Identity(secrets["s3_access_key"], secrets["s3_secret_key"])
            port = free_port(grpc_pair=True)
            child = seaweed_child(
                s3_port=port, data_dir=home / "s3", identity=identity, log=home / "seaweedfs.log"
            ).start()
            settings = Settings(
                mode="test",
                home=home,
                s3_port=port,
                demo_users=False,
                **{k: secrets[k] for k in SECRET_FIELDS.values()},  # type: ignore[arg-type]
            )
        try:
            s3 = make_client(settings)
            if child is not None:
                wait_s3_and_bucket(child, client=s3, bucket=settings.s3_bucket, retention_days=1)
            master = home / "master.mov"
            make_master(master, args.seconds, args.size)
            data_sha = hashlib.sha256(master.read_bytes()).hexdigest()
            key = f"cases/bench/requests/bench/{uuid.uuid4()}"
            stored = s3.fput_object(settings.s3_bucket, key, str(master), content_type="video/quicktime")
            mib = master.stat().st_size / 2**20

            def ours() -> workcopy.Probe | None:
                # A fresh key per round: the activity writes each copy once.
                out = make_working_copy(
                    settings=settings,
                    s3=s3,
                    master_key=key,
                    master_version=stored.version_id,
                    master_sha256=data_sha,
                )
                assert out.state == "made", out.detail
                return out.probe

            def alone() -> None:
                target = home / "alone.mp4"
                cmd = workcopy.encode_command("ffmpeg", str(master), str(target), has_audio=True)
                done = _run(cmd, 3600)
                assert done.returncode == 0, done.stderr[-500:]
                target.unlink()

            ffmpeg_version("ffmpeg")  # once, outside both timings (the activity caches it too)
            times: dict[str, list[float]] = {"ours": [], "alone": []}
            probe = None
            for _ in range(args.rounds):  # alternate, so both see equally warm caches
                for name, fn in (("alone", alone), ("ours", ours)):
                    t0 = time.perf_counter()
                    result = fn()
                    times[name].append(time.perf_counter() - t0)
                    probe = result or probe
            ours_s, alone_s = min(times["ours"]), min(times["alone"])
            assert probe is not None
            print(
                f"master: {args.seconds} s {args.size} H.264/AAC .mov, {mib:.1f} MiB; "
                f"{ffmpeg_version('ffmpeg').split(' Copyright')[0]}; probe: {probe.duration_s} s "
                f"{probe.video_codec}/{probe.audio_codec}"
            )
            print(
                f"[workcopy] S3 read + ffprobe + ffmpeg + hash + S3 write: {ours_s:7.2f} s   "
                f"anchor ffmpeg alone, same file and arguments: {alone_s:7.2f} s   "
                f"ratio {ours_s / alone_s:.2f}   (goal <= 1.15; best of {args.rounds})"
            )
        finally:
            if child is not None:
                child.stop()


if __name__ == "__main__":
    main()
