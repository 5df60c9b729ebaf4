"""The worker's housekeeping, at start and every `CUSTODY_RELAY_INTERVAL_S`: the alert relay
(activities/relay.py) and the upload sweeper.

Why the sweeper: an owner's upload is written down (custody/services/uploads.py) before its object
can exist, and the API that streams it normally ends it. When that API dies, or loses its database
right after S3 completed the object, the row stays `streaming` or `completing` and stops
heartbeating. After `CUSTODY_UPLOAD_STALE_S` the sweeper ends it: an object that exists becomes
evidence with its ledger entry (as the API would have made it); one that does not is aborted, so
nothing is kept. It also aborts multipart uploads S3 holds that no live upload row names (an API
killed between creating the multipart upload and writing its row), so no part lingers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import timedelta

from minio import Minio
from sqlalchemy.engine import Engine
from temporalio.client import Client

from activities import disposition, relay
from custody.db import session_scope
from custody.ledger.store import Ledger
from custody.models import UploadState
from custody.services import tus, uploads
from custody.settings import Settings
from custody.timeutil import utcnow
from storage.evidence import abort_multipart, open_multiparts, stored_version

log = logging.getLogger("custody.maintenance")


@dataclass(frozen=True)
class SweepResult:
    recorded: int = 0  # stale uploads whose object existed: now evidence
    aborted: int = 0  # stale uploads with no object: aborted, nothing kept
    multiparts_aborted: int = 0  # open multipart uploads no live row named


def sweep_uploads(settings: Settings, engine: Engine, ledger: Ledger, s3: Minio) -> SweepResult:
    before = utcnow() - timedelta(seconds=settings.upload_stale_s)
    recorded = aborted = 0
    with session_scope(engine) as session:
        stale = uploads.stale(session=session, before=before)
    for up in stale:
        exists = False
        version: str | None = None
        if up.state == UploadState.completing:
            exists, version = stored_version(s3, bucket=settings.s3_bucket, key=up.object_key)
        if exists:
            uploads.record(engine=engine, ledger=ledger, upload_id=up.id, version_id=version)
            recorded += 1
            log.info("sweeper recorded upload %s (request %s): its API stopped after storing it", up.id,
                     up.request_id)  # fmt: skip
            continue
        if up.upload_id:  # a resumable upload may have had no video bytes yet: no multipart upload
            abort_multipart(s3, bucket=settings.s3_bucket, key=up.object_key, upload_id=up.upload_id)
        quiet = int(settings.upload_stale_s)
        uploads.aborted(
            engine=engine,
            upload_id=up.id,
            detail=f"the upload stopped before the whole file arrived (no word for {quiet} s); "
            "nothing was kept",
        )
        tus.discard(engine=engine, upload_id=up.id)  # a resumable upload's kept tail goes too
        aborted += 1
        log.info(
            "sweeper aborted upload %s (request %s): no word from it for %d s", up.id, up.request_id, quiet
        )
    with session_scope(engine) as session:
        live_ids = uploads.open_upload_ids(session=session)
    parts_aborted = 0
    for mp in open_multiparts(s3, bucket=settings.s3_bucket):
        if mp.upload_id in live_ids or (mp.initiated is not None and mp.initiated > before):
            continue
        abort_multipart(s3, bucket=settings.s3_bucket, key=mp.key, upload_id=mp.upload_id)
        parts_aborted += 1
        log.info("sweeper aborted an orphan multipart upload of %s", mp.key)
    return SweepResult(recorded, aborted, parts_aborted)


async def run_maintenance(
    client: Client, settings: Settings, engine: Engine, ledger: Ledger, s3: Minio, stop: asyncio.Event
) -> None:
    """Relay queued alerts and sweep uploads now and every interval until `stop`. A round that fails
    (a dependency down) is logged and tried again next round: bounded by the interval, never fatal."""
    scheduled = False
    while not stop.is_set():
        if not scheduled:  # disposition's Temporal schedule (activities/disposition.py)
            try:
                await disposition.ensure_schedule(client, settings)
                scheduled = True
            except Exception as exc:
                log.warning("disposition schedule: %s: %s", type(exc).__name__, exc)
        try:
            await relay.relay_pending(client, settings, engine)
        except Exception as exc:  # the workflow service or the database is down: next round
            log.warning("alert relay: %s: %s", type(exc).__name__, exc)
        try:
            await asyncio.to_thread(sweep_uploads, settings, engine, ledger, s3)
        except Exception as exc:
            log.warning("upload sweeper: %s: %s", type(exc).__name__, exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=settings.relay_interval_s)
