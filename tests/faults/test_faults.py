"""Faults injected into a running stack (tests/faults/conftest.py), one scenario per break of issue 12.

Each asserts what a person waiting sees (a prompt 202/503/507 with a reason, never a 500 after half
a minute) and what survives: 0 requests lost, 0 duplicate emails, ledger entries or evidence rows,
0 orphan objects, and a ledger that verifies afterwards.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from custody.db import session_scope
from custody.ledger.service import ledger_for
from custody.models import Upload, UploadState, new_id
from custody.services import uploads
from storage.evidence import MultipartWriter, object_key, open_multiparts
from tests.faults.conftest import FaultStack
from tests.flow import messages_to, video_bytes, wait_for
from tests.helpers import secrets_in_logs

MiB = 1024 * 1024


def _lat(n: int) -> float:
    """A spot of its own for each scenario (cameras 50 m apart are never in each other's alerts)."""
    return 38.80 + n * 0.01


def _ledger_types(faults: FaultStack, request_id: str) -> Counter[str]:
    with faults.engine.connect() as conn:
        import sqlalchemy as sa

        rows = conn.execute(
            sa.text("SELECT type FROM ledger_entries WHERE request_id = :r"), {"r": request_id}
        )
        return Counter(r[0] for r in rows)


def _sweep_done(faults: FaultStack) -> bool:
    return not faults.orphans()


class SlowBody:
    """An upload body that sends `first` bytes, then waits for `go` before sending the rest: the
    upload is mid-stream, for as long as the test needs, at a stage it can see (its row `streaming`)."""

    def __init__(self, data: bytes, first: int) -> None:
        self.data, self.first = data, first
        self.go = threading.Event()

    def __iter__(self) -> Iterator[bytes]:
        for i in range(0, self.first, MiB):
            yield self.data[i : min(i + MiB, self.first)]
        if not self.go.wait(60):
            raise RuntimeError("the test never released the upload")
        for i in range(self.first, len(self.data), MiB):
            yield self.data[i : i + MiB]


def _upload_in_background(
    faults: FaultStack, token: str, body: SlowBody
) -> tuple[threading.Thread, dict[str, Any]]:
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            with faults.client(timeout=90) as c:
                r = c.put(
                    f"/consent/{token}/files/clip.mp4",
                    content=iter(body),
                    headers={"Content-Type": "video/mp4"},
                )
                result["status"], result["body"] = r.status_code, r.json()
        except httpx.HTTPError as exc:
            result["error"] = repr(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


# --- 1. no lost alert ---------------------------------------------------------------------------


def test_alert_while_temporal_paused_is_queued_and_runs_when_it_is_back(faults: FaultStack) -> None:
    with faults.client() as c:
        _, email = faults.camera(c, _lat(1), -77.3)
        case_id = faults.case(c)
        end = datetime.now(UTC) - timedelta(minutes=5)
        with faults.paused("temporal"):
            started = time.monotonic()
            r = faults.alert(c, case_id, _lat(1), -77.3, end)
            took = time.monotonic() - started
            assert r.status_code == 202, r.text
            assert r.json()["queued"] is True
            assert took < 10, f"the alert took {took:.1f} s to answer"
            request_id = r.json()["requests"][0]["id"]
            # Cancelling needs the workflow: 503 at once with Retry-After, nothing changed.
            cancel = c.post(f"/requests/{request_id}/cancel", json={}, headers=faults.staff())
            assert cancel.status_code in (503, 409), cancel.text
            if cancel.status_code == 503:
                assert cancel.headers["Retry-After"]
            assert faults.status(c, request_id) == "requested"
            again = faults.alert(c, case_id, _lat(1), -77.3, end)  # the same alert again: the same request
            assert again.status_code == 202 and again.json()["requests"][0]["id"] == request_id
        # Temporal is back: the worker's relay starts the queued alert; the owner is asked once.
        wait_for(
            "the queued alert's request notified", lambda: faults.status(c, request_id) == "notified", 60
        )
        time.sleep(1.5)  # a few more relay rounds: nothing is started twice
        assert len(messages_to(faults.home / "mail", email)) == 1
        assert faults.scalar("SELECT count(*) FROM incidents WHERE dispatched_at IS NULL") == 0
        assert _ledger_types(faults, request_id)["request_created"] == 1
        assert _ledger_types(faults, request_id)["owner_notified"] == 1


# --- 2. short transactions ----------------------------------------------------------------------


def test_smtp_stall_holds_no_database_lock(faults: FaultStack) -> None:
    with faults.client() as c:
        _, email = faults.camera(c, _lat(2), -77.3)
        case_id = faults.case(c)
        with faults.paused("smtp"):
            r = faults.alert(c, case_id, _lat(2), -77.3)
            assert r.status_code == 202, r.text
            request_id = r.json()["requests"][0]["id"]
            # The stage: the notice activity issued its token and is stuck talking to SMTP.
            wait_for(
                "a consent token issued (the notice is sending)",
                lambda: faults.scalar(
                    "SELECT count(*) FROM consent_tokens WHERE request_id = :r", r=request_id
                ),
            )

            def write(i: int) -> tuple[int, float]:
                t = time.monotonic()
                with faults.client() as cc:
                    resp = cc.post("/cases", json={"title": f"During the stall {i}"}, headers=faults.staff())
                return resp.status_code, time.monotonic() - t

            with ThreadPoolExecutor(12) as pool:
                results = list(pool.map(write, range(24)))
            statuses = Counter(s for s, _ in results)
            slowest = max(t for _, t in results)
            assert statuses == Counter({201: 24}), statuses
            assert slowest < 5, f"a write waited {slowest:.1f} s while SMTP was stalled"
        wait_for("notified after SMTP is back", lambda: faults.status(c, request_id) == "notified", 60)
        msgs = messages_to(faults.home / "mail", email)
        assert len(msgs) == 1, f"{len(msgs)} notices"
        token = faults.token_for(email)
        assert c.get(f"/consent/{token}", headers={"Accept": "application/json"}).status_code == 200


def test_exhausted_pool_answers_503_and_loses_no_upload(faults: FaultStack) -> None:
    with faults.client() as c:
        _case_id, request_id, token = faults.consented_request(c, _lat(3))
    # A wait shorter than the queue of 32 readers behind one admitted request takes to drain:
    # the readers are refused (admission and pool alike answer 503 with Retry-After).
    faults.start_api(db_pool_size=2, db_pool_timeout_s=0.05)
    try:
        stop = threading.Event()
        seen: Counter[int] = Counter()
        no_retry_after: list[int] = []
        headers = faults.staff()

        def reader() -> None:
            with faults.client(timeout=30) as cc:
                while not stop.is_set():
                    r = cc.get(f"/requests/{request_id}", headers=headers)
                    seen[r.status_code] += 1
                    if r.status_code == 503 and not r.headers.get("Retry-After"):
                        no_retry_after.append(r.status_code)

        def upload(i: int) -> int:
            with faults.client(timeout=60) as cc:
                r = cc.put(
                    f"/consent/{token}/files/clip-{i}.mp4",
                    content=video_bytes(300_000, seed=i),
                    headers={"Content-Type": "video/mp4"},
                )
                return r.status_code

        readers = [threading.Thread(target=reader, daemon=True) for _ in range(32)]
        for t in readers:
            t.start()
        with ThreadPoolExecutor(6) as pool:
            uploaded = Counter(pool.map(upload, range(6)))
        # The readers go on until the pool has refused some (on a slow machine the uploads may end
        # before the readers pile up): the fault is waited for, not assumed.
        deadline = time.monotonic() + 20
        while not seen[503] and time.monotonic() < deadline:
            time.sleep(0.1)
        stop.set()
        for t in readers:
            t.join(30)
        assert set(seen) <= {200, 503}, seen
        assert seen[503] > 0, f"the pool was never exhausted: {seen}"  # the fault really happened
        assert not no_retry_after
        assert set(uploaded) <= {201, 503}, uploaded
    finally:
        faults.start_api()
    # Every upload that reached the store is evidence with its entry; none is an orphan.
    wait_for("the sweeper settled every upload", lambda: _sweep_done(faults), 30)
    with faults.client() as c:
        assert c.get("/health").status_code == 200
        n_ev = faults.scalar("SELECT count(*) FROM evidence WHERE request_id = :r", r=request_id)
        assert n_ev >= uploaded[201]
        assert _ledger_types(faults, request_id)["file_received"] == n_ev


# --- 3. nothing stored without custody ------------------------------------------------------------


def test_api_killed_mid_upload_keeps_nothing_and_leaves_no_parts(faults: FaultStack) -> None:
    with faults.client() as c:
        _, request_id, token = faults.consented_request(c, _lat(4))
    body = SlowBody(video_bytes(40 * MiB), first=20 * MiB)  # one 16 MiB part uploaded, more pending
    thread, result = _upload_in_background(faults, token, body)
    wait_for("the upload streaming", lambda: faults.upload_state(request_id=request_id) == "streaming")
    wait_for("its first part in S3", lambda: open_multiparts(faults.s3, bucket=faults.settings.s3_bucket))
    assert faults.api is not None
    faults.api.kill9()
    body.go.set()
    thread.join(30)
    assert "status" not in result, "the upload could not have succeeded"
    faults.start_api()
    wait_for(
        "the sweeper aborted the dead upload",
        lambda: faults.upload_state(request_id=request_id) == "aborted",
        30,
    )
    wait_for("no orphan parts or objects", lambda: _sweep_done(faults), 30)
    assert faults.scalar("SELECT count(*) FROM evidence WHERE request_id = :r", r=request_id) == 0


def test_stored_object_whose_api_died_before_recording_becomes_evidence_once(faults: FaultStack) -> None:
    """The window after S3 completed an object and before its evidence row: the API dies there (here:
    the steps the API runs, stopped at that point). The sweeper records it, once, with its entry."""
    with faults.client() as c:
        _, request_id, _token = faults.consented_request(c, _lat(5))
    with session_scope(faults.engine) as session:
        from custody.models import FootageRequest

        req = session.get(FootageRequest, request_id)
        assert req is not None
        case_id = req.case_id
    evidence_id = new_id()
    key = object_key(case_id=case_id, request_id=request_id, evidence_id=evidence_id)
    data = video_bytes(500_000, seed=5)
    writer = MultipartWriter(faults.s3, faults.settings.s3_bucket, key, "video/mp4")
    uploads.begin(
        engine=faults.engine,
        upload=Upload(
            id=evidence_id,
            request_id=request_id,
            filename="dashcam.mp4",
            object_key=key,
            upload_id=writer.upload_id,
            content_type="video/mp4",
            actor="owner-test",
            state=UploadState.streaming,
        ),
    )
    writer.add(data)
    writer.upload_part(writer.take_rest() or b"")
    uploads.completing(
        engine=faults.engine, upload_id=evidence_id, size=writer.size, sha256=writer.hasher.hexdigest()
    )
    writer.complete()  # ... and here the API died
    wait_for("the sweeper recorded the object", lambda: faults.upload_state(evidence_id) == "recorded", 30)
    assert faults.scalar("SELECT status FROM evidence WHERE id = :i", i=evidence_id) == "received"
    assert (
        faults.scalar("SELECT sha256 FROM evidence WHERE id = :i", i=evidence_id) == writer.hasher.hexdigest()
    )
    # Recording again (the API's own retry racing the sweeper) changes nothing.
    uploads.record(
        engine=faults.engine,
        ledger=ledger_for(faults.settings, faults.engine),
        upload_id=evidence_id,
        version_id=None,
    )
    assert faults.scalar("SELECT count(*) FROM evidence WHERE id = :i", i=evidence_id) == 1
    assert _ledger_types(faults, request_id)["file_received"] == 1
    assert not faults.orphans()


def test_cancel_and_complete_while_a_file_streams(faults: FaultStack) -> None:
    with faults.client() as c:
        _, request_id, token = faults.consented_request(c, _lat(6))
        # complete while the file streams: refused, the file lands, then complete works.
        body = SlowBody(video_bytes(3 * MiB, seed=6), first=1 * MiB)
        thread, result = _upload_in_background(faults, token, body)
        wait_for("the upload streaming", lambda: faults.upload_state(request_id=request_id) == "streaming")
        early = c.post(f"/consent/{token}/complete")
        assert early.status_code == 409, early.text
        assert early.json()["error"]["code"] == "upload_in_progress"
        body.go.set()
        thread.join(60)
        assert result.get("status") == 201, result
        # cancel while a second file streams: the cancel wins, the file is refused and nothing kept.
        body2 = SlowBody(video_bytes(3 * MiB, seed=7), first=1 * MiB)
        thread2, result2 = _upload_in_background(faults, token, body2)
        wait_for(
            "the second upload streaming",
            lambda: faults.scalar(
                "SELECT count(*) FROM uploads WHERE request_id = :r AND state = 'streaming'", r=request_id
            ),
        )
        cancel = c.post(
            f"/requests/{request_id}/cancel", json={"reason": "suspect identified"}, headers=faults.staff()
        )
        assert cancel.status_code == 200, cancel.text
        body2.go.set()
        thread2.join(60)
        assert result2.get("status") == 410, result2
        assert faults.status(c, request_id) == "cancelled"
        # The file that landed before the cancel is not left `received` on a cancelled request.
        wait_for(
            "the received file rejected",
            lambda: (
                faults.scalar(
                    "SELECT count(*) FROM evidence WHERE request_id = :r AND status = 'received'",
                    r=request_id,
                )
                == 0
            ),
        )
        assert faults.scalar("SELECT count(*) FROM evidence WHERE request_id = :r", r=request_id) == 1
        types = _ledger_types(faults, request_id)
        assert types["file_received"] == 1 and types["file_rejected"] == 1 and types["request_cancelled"] == 1
    wait_for("no orphan parts or objects", lambda: _sweep_done(faults), 30)


# --- 4. honest answers when a dependency is down or full -------------------------------------------


def test_s3_paused_upload_answers_503_and_keeps_nothing(faults: FaultStack) -> None:
    with faults.client() as c:
        _, request_id, token = faults.consented_request(c, _lat(7))
        with faults.paused("s3"):
            started = time.monotonic()
            r = c.put(
                f"/consent/{token}/files/clip.mp4",
                content=video_bytes(400_000),
                headers={"Content-Type": "video/mp4"},
            )
            took = time.monotonic() - started
        assert r.status_code == 503, r.text
        assert r.headers["Retry-After"] and r.json()["error"]["code"] == "store_unavailable"
        assert took < 30, f"the owner waited {took:.0f} s"
        assert faults.scalar("SELECT count(*) FROM evidence WHERE request_id = :r", r=request_id) == 0
        # The owner tries again once the store is back: stored, once.
        again = c.put(
            f"/consent/{token}/files/clip.mp4",
            content=video_bytes(400_000),
            headers={"Content-Type": "video/mp4"},
        )
        assert again.status_code == 201, again.text
    wait_for("no orphan parts or objects", lambda: _sweep_done(faults), 30)


def test_full_store_answers_507_at_once(faults: FaultStack) -> None:
    with faults.client() as c:
        _, request_id, token = faults.consented_request(c, _lat(8))
    faults.start_api(s3_data_dir=faults.home / "s3" / "data", s3_min_free_mb=10**9)  # more than any disk
    try:
        with faults.client() as c:
            data = video_bytes(300_000)
            r = c.put(
                f"/consent/{token}/files/clip.mp4",
                content=data,
                headers={"Content-Type": "video/mp4", "Content-Length": str(len(data))},
            )
            assert r.status_code == 507, r.text
            assert "full" in r.json()["error"]["message"]
            health = c.get("/health")
            assert health.status_code == 503
            assert health.json()["components"]["s3"]["ok"] is False
    finally:
        faults.start_api()
    assert faults.scalar("SELECT count(*) FROM uploads WHERE request_id = :r", r=request_id) == 0


pytestmark = pytest.mark.timeout(240)


# --- the workflow service down for owners' steps, the worker killed mid-verification ---------------


def test_complete_while_temporal_paused_answers_503_and_can_be_sent_again(faults: FaultStack) -> None:
    with faults.client() as c:
        _, request_id, token = faults.consented_request(c, _lat(9))
        up = c.put(
            f"/consent/{token}/files/clip.mp4",
            content=video_bytes(200_000),
            headers={"Content-Type": "video/mp4"},
        )
        assert up.status_code == 201, up.text
        with faults.paused("temporal"):
            started = time.monotonic()
            r = c.post(f"/consent/{token}/complete")
            took = time.monotonic() - started
        assert r.status_code == 503, r.text
        assert r.headers["Retry-After"] and took < 10, took
        assert faults.scalar("SELECT files_complete FROM footage_requests WHERE id = :r", r=request_id) in (
            0,
            False,
        )
        again = c.post(f"/consent/{token}/complete")  # the owner presses Done again: it goes through
        assert again.status_code == 202, again.text
        wait_for("attached", lambda: faults.status(c, request_id) == "attached", 60)
        types = _ledger_types(faults, request_id)
        assert types["file_verified"] == 1 and types["evidence_attached"] == 1


def _pending_activity(faults: FaultStack, request_id: str, name: str) -> bool:
    """Whether the request's workflow has `name` started on a worker (the stage, read from Temporal)."""
    from workflows.client import connect_temporal

    async def look() -> bool:
        client = await connect_temporal(faults.settings)
        desc = await client.get_workflow_handle(f"request-{request_id}").describe()
        return any(
            p.activity_type.name == name and p.state == 2  # PENDING_ACTIVITY_STATE_STARTED
            for p in desc.raw_description.pending_activities
        )

    import asyncio

    return asyncio.run(look())


def test_worker_killed_while_verifying_attaches_once(faults: FaultStack) -> None:
    with faults.client() as c:
        _, request_id, token = faults.consented_request(c, _lat(10))
        up = c.put(
            f"/consent/{token}/files/clip.mp4",
            content=video_bytes(2 * MiB, seed=10),
            headers={"Content-Type": "video/mp4"},
        )
        assert up.status_code == 201, up.text
        assert faults.worker is not None
        with faults.paused("s3"):  # verification re-reads the file from S3: it waits there
            assert c.post(f"/consent/{token}/complete").status_code == 202
            wait_for(
                "verification under way", lambda: _pending_activity(faults, request_id, "verify_files"), 30
            )
            faults.worker.kill9()
        faults.start_worker()
        wait_for("attached after the crash", lambda: faults.status(c, request_id) == "attached", 90)
        types = _ledger_types(faults, request_id)
        for kind in (
            "file_received",
            "file_verified",
            "evidence_attached",
            "consent_given",
            "owner_notified",
        ):
            assert types[kind] == 1, (kind, types)
        assert faults.scalar("SELECT count(*) FROM evidence WHERE request_id = :r", r=request_id) == 1


def test_twelve_clients_writing_with_the_worker_never_see_locked(faults: FaultStack) -> None:
    """Owners, cameras, cases and alerts from 12 clients at once while the worker writes notices and
    ledger entries for each alert: every write answers 2xx (SQLite's one writer is never held long)."""
    headers = faults.staff()

    def client_run(i: int) -> list[int]:
        codes: list[int] = []
        with faults.client() as c:
            lat = 39.50 + i * 0.01
            email = f"load-{i}-{time.monotonic_ns()}@example.org"
            o = c.post("/owners", json={"name": f"Load {i}", "email": email}, headers=headers)
            codes.append(o.status_code)
            cam = c.post(
                "/cameras",
                json={
                    "owner_id": o.json()["id"],
                    "label": f"Load {i}",
                    "lat": lat,
                    "lon": -77.3,
                    "kind": "registered",
                },
                headers=headers,
            )
            codes.append(cam.status_code)
            case = c.post("/cases", json={"title": f"Load {i}"}, headers=headers)
            codes.append(case.status_code)
            codes.append(faults.alert(c, case.json()["id"], lat, -77.3).status_code)
        return codes

    with ThreadPoolExecutor(12) as pool:
        codes = Counter(code for run in pool.map(client_run, range(12)) for code in run)
    assert set(codes) <= {201, 202}, codes


def test_mail_server_down_is_visible_and_a_cancel_does_not_wait_for_it(faults: FaultStack) -> None:
    if faults.settings.database_url and faults.settings.database_url.startswith("sqlite"):
        # The mail server's fault, not the database's: on the production engine only (suite time).
        pytest.skip("a mail server fault: run on PostgreSQL, the production engine")
    with faults.client() as c:
        _, email = faults.camera(c, _lat(11), -77.3)
        case_id = faults.case(c)
        with faults.paused("smtp"):
            r = faults.alert(c, case_id, _lat(11), -77.3)
            assert r.status_code == 202, r.text
            request_id = r.json()["requests"][0]["id"]

            def history() -> list[str]:
                got = c.get(f"/requests/{request_id}", headers=faults.staff()).json()["history"]
                return [h["detail"] for h in got]

            wait_for(
                "the investigator sees the notice is not out yet",
                lambda: any("could not be sent yet" in d for d in history()),
                60,
            )
            started = time.monotonic()
            cancel = c.post(f"/requests/{request_id}/cancel", json={}, headers=faults.staff())
            assert cancel.status_code == 200, cancel.text
            assert cancel.json()["status"] == "cancelled" and time.monotonic() - started < 10
        time.sleep(2)  # an attempt that was mid-send when the server came back may still deliver
        msgs = messages_to(faults.home / "mail", email)
        assert len(msgs) <= 1
        if msgs:  # its link no longer opens anything
            token = faults.token_for(email)
            assert c.get(f"/consent/{token}", headers={"Accept": "application/json"}).status_code == 410


def test_database_locked_answers_503_at_once_then_works(faults: FaultStack) -> None:
    with faults.client() as c:
        headers = faults.staff()
        with faults.database_locked():
            started = time.monotonic()
            r = c.post("/cases", json={"title": "While the database is locked"}, headers=headers)
            took = time.monotonic() - started
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "database_unavailable" and r.headers["Retry-After"]
        assert took < 8, f"the investigator waited {took:.1f} s"
        assert faults.scalar("SELECT count(*) FROM cases WHERE title = 'While the database is locked'") == 0
        again = c.post("/cases", json={"title": "While the database is locked"}, headers=headers)
        assert again.status_code == 201, again.text


def test_uploads_beyond_the_limit_wait_then_hear_try_again(faults: FaultStack) -> None:
    """Each upload holds up to two 16 MiB parts: beyond CUSTODY_UPLOAD_CONCURRENCY they wait, then
    503 'try again in a minute' with nothing kept, while reads go on."""
    with faults.client() as c:
        _, request_id, token = faults.consented_request(c, _lat(12))
    faults.start_api(upload_concurrency=1, upload_queue_s=1)
    try:
        body = SlowBody(video_bytes(2 * MiB, seed=12), first=1 * MiB)
        thread, result = _upload_in_background(faults, token, body)
        wait_for(
            "the first upload streaming", lambda: faults.upload_state(request_id=request_id) == "streaming"
        )
        with faults.client() as c:
            second = c.put(
                f"/consent/{token}/files/second.mp4",
                content=video_bytes(300_000),
                headers={"Content-Type": "video/mp4"},
            )
            assert second.status_code == 503, second.text
            assert second.json()["error"]["code"] == "busy" and second.headers["Retry-After"]
            assert "Try again in a minute" in second.json()["error"]["message"]
            assert c.get(f"/requests/{request_id}", headers=faults.staff()).status_code == 200
        body.go.set()
        thread.join(60)
        assert result.get("status") == 201, result
    finally:
        faults.start_api()
    assert faults.scalar("SELECT count(*) FROM evidence WHERE request_id = :r", r=request_id) == 1


# --- afterwards -----------------------------------------------------------------------------------


def test_after_every_fault_the_ledger_verifies_and_nothing_is_orphaned(
    faults: FaultStack, tmp_path: Path
) -> None:
    wait_for("no orphan parts or objects", lambda: _sweep_done(faults), 30)
    size = faults.verify_ledger(tmp_path)
    assert size > 0
    lost = faults.scalar("SELECT count(*) FROM incidents WHERE dispatched_at IS NULL")
    assert lost == 0
    live = faults.scalar("SELECT count(*) FROM uploads WHERE state IN ('streaming', 'completing')")
    assert live == 0
    # The API and worker logs of every fault above hold no token, key or password.
    known = [faults.settings.secret(f) for f in ("jwt_key", "s3_secret_key", "ledger_signing_key")]
    known += [h.split()[-1] for h in faults.issued_tokens()]
    leaks = secrets_in_logs(faults.home / "logs", known)
    assert not leaks, "\n".join(leaks[:10])
    print(f"fault suite: ledger of {size} entries verifies; 0 alerts lost, 0 orphans, 0 live uploads")
