"""The working-copy activity: after attachment, ffmpeg makes a browser-playable copy of each master.

Thin and idempotent like the other activities: the master is read by its exact version from S3 into
a temporary file (only ids and keys pass through Temporal), ffprobe reads its container facts, ffmpeg
writes H.264/AAC MP4, the copy is hashed and stored under its own key, and `working_copy_created` is
recorded once per evidence item. A file ffmpeg cannot read stays attached as the master; its working
copy is marked "not_made" with ffmpeg's reason, in the row and in the ledger. Running it twice finds
the first run's state and does nothing more.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from minio import Minio
from sqlalchemy.engine import Engine
from temporalio import activity

from custody import workcopy
from custody.db import session_scope
from custody.ledger.entries import CustodyEvent, EventType
from custody.ledger.store import Ledger
from custody.models import Evidence
from custody.services import requests as svc
from custody.services.cases import agency_of
from custody.settings import Settings

READ_CHUNK = 1024 * 1024
_VERSION_LOCK = threading.Lock()
_VERSIONS: dict[str, str] = {}


@dataclass(frozen=True)
class WorkingCopiesInput:
    request_id: str


@dataclass(frozen=True)
class Outcome:
    """One working copy's result (also what the benchmark measures)."""

    state: str  # "made" | "not_made"
    detail: str
    probe: workcopy.Probe | None = None
    key: str | None = None
    sha256: str | None = None
    size: int | None = None
    arguments: str = ""


class NotMade(Exception):
    """ffprobe or ffmpeg could not read the master (or ran past its time): no copy, with why."""


def ffmpeg_version(ffmpeg: str) -> str:
    """The first line of `ffmpeg -version`, e.g. "ffmpeg version 5.1.6-0+deb12u1 Copyright ..."."""
    with _VERSION_LOCK:
        if ffmpeg not in _VERSIONS:
            out = subprocess.run([ffmpeg, "-version"], capture_output=True, timeout=30, check=False)
            _VERSIONS[ffmpeg] = (out.stdout.decode(errors="replace").splitlines() or ["unknown"])[0]
        return _VERSIONS[ffmpeg]


def _beat(detail: str) -> None:
    if activity.in_activity():
        activity.heartbeat(detail)


def _run(cmd: list[str], timeout_s: float) -> subprocess.CompletedProcess[bytes]:
    """Run a tool, heartbeating every few seconds; past `timeout_s` it is killed (NotMade)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        every = 5.0  # heartbeat at least three times per heartbeat timeout
        limit = activity.info().heartbeat_timeout if activity.in_activity() else None
        if limit:
            every = min(every, limit.total_seconds() / 3)
        try:
            while True:
                try:
                    proc.wait(timeout=max(0.05, min(every, deadline - time.monotonic())))
                    break
                except subprocess.TimeoutExpired:
                    if time.monotonic() >= deadline:
                        raise NotMade(f"{Path(cmd[0]).name} ran longer than {timeout_s:g} s") from None
                    _beat("ffmpeg running")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(cmd, proc.returncode, out.read(), err.read())


def _why(stderr: bytes, tmp: str) -> str:
    """ffmpeg's complaint, its last words, without the temporary paths (they mean nothing later)."""
    text = stderr.decode(errors="replace").replace(f"{tmp}/master", "the master")
    return workcopy.stderr_tail(re.sub(r" @ 0x[0-9a-f]+\]", "]", text))


def download_master(s3: Minio, bucket: str, key: str, version_id: str | None, target: Path) -> str:
    """Copy the master's exact version to `target`; return its SHA-256 (it must equal the recorded one)."""
    response = s3.get_object(bucket, key, version_id=version_id)
    hasher = hashlib.sha256()
    try:
        with target.open("wb") as fh:
            while chunk := response.read(READ_CHUNK):
                hasher.update(chunk)
                fh.write(chunk)
                if fh.tell() % (8 * READ_CHUNK) < len(chunk):
                    _beat("reading the master")
    finally:
        response.close()
        response.release_conn()
    return hasher.hexdigest()


def make_working_copy(
    *, settings: Settings, s3: Minio, master_key: str, master_version: str | None, master_sha256: str
) -> Outcome:
    """The whole code path for one file: S3 read, ffprobe, ffmpeg, hash, S3 write. Never raises for a
    file ffmpeg cannot read (Outcome "not_made"); storage errors raise (the activity retries them)."""
    bucket = settings.s3_bucket
    with tempfile.TemporaryDirectory(prefix="custody-workcopy-") as tmp:
        master = Path(tmp) / "master"
        working = Path(tmp) / "working.mp4"
        digest = download_master(s3, bucket, master_key, master_version, master)
        if digest != master_sha256:
            return Outcome("not_made", f"not made: the stored master hashes to {digest}, not {master_sha256}")
        probe: workcopy.Probe | None = None
        try:
            probed = _run(workcopy.probe_command(settings.ffprobe_path, str(master)), 120)
            if probed.returncode != 0:
                raise NotMade(f"ffprobe could not read the file: {_why(probed.stderr, tmp)}")
            probe = workcopy.parse_probe(probed.stdout)
            has_audio = probe.audio_codec is not None
            if probe.video_codec is None:
                raise NotMade("ffprobe found no video stream in the file")
            cmd = workcopy.encode_command(settings.ffmpeg_path, str(master), str(working), has_audio)
            encoded = _run(cmd, settings.workcopy_timeout_s)
            if encoded.returncode != 0:
                raise NotMade(f"ffmpeg could not convert the file: {_why(encoded.stderr, tmp)}")
        except NotMade as exc:
            return Outcome("not_made", f"not made: {exc}", probe=probe)
        _beat("hashing the working copy")
        hasher, size = hashlib.sha256(), 0
        with working.open("rb") as fh:
            while chunk := fh.read(READ_CHUNK):
                hasher.update(chunk)
                size += len(chunk)
        _beat("storing the working copy")
        key = workcopy.working_key(master_key)
        s3.fput_object(bucket, key, str(working), content_type=workcopy.WORKING_CONTENT_TYPE)
        return Outcome(
            "made",
            "made",
            probe=probe,
            key=key,
            sha256=hasher.hexdigest(),
            size=size,
            arguments=workcopy.recorded_arguments(has_audio),
        )


class WorkingCopyActivities:
    def __init__(self, settings: Settings, engine: Engine, ledger: Ledger, s3: Minio) -> None:
        self.settings, self.engine, self.ledger, self.s3 = settings, engine, ledger, s3

    @activity.defn(name="make_working_copies")
    def make_working_copies(self, inp: WorkingCopiesInput) -> int:
        """A working copy of every attached file of the request that has none yet; returns how many
        were made. Each file's outcome is recorded once (row and ledger, keyed by the evidence id)."""
        with session_scope(self.engine) as session:
            files = [
                (ev.id, ev.object_key, ev.version_id, ev.sha256, ev.case_id, ev.working_copy_state)
                for ev in svc.evidence_of_request(session=session, request_id=inp.request_id)
                if ev.status == "attached"
            ]
            agency = agency_of(session=session, case_id=files[0][4]) if files else None
        made = 0
        for ev_id, key, version, sha, case_id, state in files:
            if state is None:
                _beat(ev_id)
                outcome = make_working_copy(
                    settings=self.settings,
                    s3=self.s3,
                    master_key=key,
                    master_version=version,
                    master_sha256=sha,
                )
                state = self._keep(ev_id, outcome)
            made += state == "made"
            self._record(ev_id, case_id, inp.request_id, agency, sha)
        return made

    def _keep(self, ev_id: str, outcome: Outcome) -> str:
        with session_scope(self.engine) as session:
            row = session.get(Evidence, ev_id)
            assert row is not None
            if row.working_copy_state is not None:  # another run got there first
                return row.working_copy_state
            row.working_copy_state = outcome.state
            row.working_copy_detail = outcome.detail[:500]
            if outcome.state == "made":
                row.working_copy_key, row.working_copy_sha256 = outcome.key, outcome.sha256
                row.working_copy_size = outcome.size
                row.working_copy_content_type = workcopy.WORKING_CONTENT_TYPE
            if outcome.probe is not None:
                row.duration_s, row.recorded_at = outcome.probe.duration_s, outcome.probe.recorded_at
                row.video_codec = (outcome.probe.video_codec or "")[:32] or None
                row.audio_codec = (outcome.probe.audio_codec or "")[:32] or None
            session.add(row)
            return outcome.state

    def _record(self, ev_id: str, case_id: str, request_id: str, agency: str | None, master_sha: str) -> None:
        """The ledger entry, from the row (so a retry after a crash records what the first run kept)."""
        with session_scope(self.engine) as session:
            row = session.get(Evidence, ev_id)
            assert row is not None
            state, detail = row.working_copy_state, row.working_copy_detail
            sha, size, has_audio = row.working_copy_sha256, row.working_copy_size, row.audio_codec is not None
        facts: dict[str, str | int] = {
            "master_sha256": master_sha,
            "ffmpeg_version": ffmpeg_version(self.settings.ffmpeg_path),
        }
        if state == "made" and sha is not None and size is not None:
            facts.update(
                size=size,
                content_type=workcopy.WORKING_CONTENT_TYPE,
                arguments=workcopy.recorded_arguments(has_audio),
            )
        self.ledger.record(
            CustodyEvent(
                EventType.working_copy_created,
                actor="custody-worker",
                agency=agency,
                case_id=case_id,
                request_id=request_id,
                evidence_id=ev_id,
                sha256=sha if state == "made" else None,
                detail="working copy made (H.264/AAC MP4); the master is unchanged"
                if state == "made"
                else detail,
                facts=facts,
            ),
            idempotency_key=f"{ev_id}:working-copy",
        )
