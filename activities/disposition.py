"""Disposition of evidence past its retention: the worker's activity and its Temporal schedule.

Every `CUSTODY_DISPOSITION_INTERVAL_S` a Temporal schedule starts DispositionWorkflow, whose one
activity (`disposition_round`) does two things:

1. deletes the object versions an administrator approved in the console (the store refuses while a
   version's COMPLIANCE retention or a legal hold lasts: only the store decides) and records
   `evidence_disposed` with the file's SHA-256; the evidence row stays, status `disposed`;
2. marks evidence past its retain-until and not on hold `pending`, for an administrator to approve.

Nothing is deleted without an administrator's approval, and never before the store allows it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from minio import Minio
from minio.error import S3Error
from sqlalchemy.engine import Engine
from temporalio import activity
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from custody.db import session_scope, write_scope
from custody.ledger.store import Ledger
from custody.models import Evidence
from custody.services import retention
from custody.settings import Settings
from storage.evidence import delete_version, extend_retention

log = logging.getLogger("custody.disposition")
WORKFLOW_NAME = "DispositionWorkflow"


@dataclass
class DispositionResult:
    disposed: int = 0  # approved versions deleted, each with its `evidence_disposed` entry
    refused: int = 0  # approved, but the store refused (retention extended or a hold meanwhile)
    marked: int = 0  # newly past retention and not on hold: awaiting an administrator
    extended: int = 0  # past the retention they were stored with, but their class is now longer


class DispositionActivities:
    def __init__(self, settings: Settings, engine: Engine, ledger: Ledger, s3: Minio) -> None:
        self.settings, self.engine, self.ledger, self.s3 = settings, engine, ledger, s3

    @activity.defn(name="disposition_round")
    def disposition_round(self) -> DispositionResult:
        return disposition_round(self.settings, self.engine, self.ledger, self.s3)


def disposition_round(settings: Settings, engine: Engine, ledger: Ledger, s3: Minio) -> DispositionResult:
    result = DispositionResult()
    with session_scope(engine) as session:
        todo = [(e.id, e.object_key, e.version_id) for e in retention.approved(session=session)]
    for evidence_id, key, version_id in todo:
        try:
            delete_version(s3, bucket=settings.s3_bucket, key=key, version_id=version_id)
        except S3Error as exc:
            result.refused += 1
            log.warning("the store refused to delete evidence %s: %s %s", evidence_id, exc.code, exc.message)
            with write_scope(engine) as session:
                ev = session.get(Evidence, evidence_id)
                if ev is not None and ev.disposition == "approved":
                    ev.disposition = "pending"
                    ev.detail = f"the store refused the deletion ({exc.code}); approve again later"
                    session.add(ev)
            continue
        with write_scope(engine) as session:
            entry = retention.disposed(session=session, evidence_id=evidence_id)
        if entry is not None:
            ledger.append([entry])
            result.disposed += 1
            log.info("evidence %s disposed of after its retention", evidence_id)
    with write_scope(engine) as session:
        result.marked, longer = retention.due(session=session, settings=settings)
    for ext in longer:  # past the retention it was stored with, but its class is now longer
        extend_retention(
            s3, bucket=settings.s3_bucket, key=ext.object_key, version_id=ext.version_id, until=ext.until
        )
        with write_scope(engine) as session:
            category = retention.category_of(session=session, evidence_id=ext.evidence_id)
            entry = retention.extended(session=session, ext=ext, actor="custody-worker", category=category)
        ledger.append([entry])
        result.extended += 1
    return result


def schedule_id(settings: Settings) -> str:
    return f"{settings.task_queue}-disposition"


def _schedule(settings: Settings) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            WORKFLOW_NAME, id=f"{settings.task_queue}-disposition-round", task_queue=settings.task_queue
        ),
        spec=ScheduleSpec(
            intervals=[ScheduleIntervalSpec(every=timedelta(seconds=settings.disposition_interval_s))]
        ),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_schedule(client: Client, settings: Settings) -> None:
    """Create the disposition schedule, or bring an existing one to the configured interval."""
    schedule = _schedule(settings)
    try:
        await client.create_schedule(schedule_id(settings), schedule)
    except ScheduleAlreadyRunningError:

        def update(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(schedule_id(settings)).update(update)


async def run_now(client: Client, settings: Settings) -> None:
    """Start a round now (after an approval: the version goes without waiting for the interval)."""
    await client.get_schedule_handle(schedule_id(settings)).trigger()
