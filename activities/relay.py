"""The alert outbox's relay: start the workflow of every alert whose rows are committed but whose
workflow the workflow service does not have yet.

Why an outbox: an alert's incident, requests and `request_created` entries are committed before its
workflow starts (the workflow reads them). The API starts the workflow right after the commit; when
the workflow service is down or the API dies in between, `incidents.dispatched_at` stays null and
the worker's relay (at start and every `CUSTODY_RELAY_INTERVAL_S`) starts it later. Starting is
idempotent by workflow id, so the API and the relay may both try: the second finds it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from sqlalchemy.engine import Engine
from sqlmodel import col, select
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import WorkflowAlreadyStartedError

from custody.db import session_scope
from custody.models import Case, Incident
from custody.settings import Settings
from custody.timeutil import utcnow
from workflows.requests import (
    AGENCY,
    CASE_ID,
    IncidentInput,
    IncidentWorkflow,
    PullPolicy,
    incident_workflow_id,
)

log = logging.getLogger("custody.relay")


def incident_input(settings: Settings, *, incident_id: str, case_id: str, agency: str) -> IncidentInput:
    return IncidentInput(
        incident_id=incident_id,
        case_id=case_id,
        agency=agency,
        consent_ttl_s=settings.consent_ttl_s,
        reminders_s=list(settings.reminders_s),
        heartbeat_s=settings.activity_heartbeat_s,
        pull=PullPolicy(
            max_attempts=settings.pull_max_attempts,
            retry_interval_s=settings.pull_retry_interval_s,
            timeout_s=settings.pull_timeout_s,
        ),
    )


async def start_incident(
    client: Client, settings: Settings, *, incident_id: str, case_id: str, agency: str
) -> None:
    """Start one alert's workflow (already started counts as started). Raises when the workflow
    service does not answer within `CUSTODY_TEMPORAL_RPC_TIMEOUT_S`."""
    timeout = settings.temporal_rpc_timeout_s
    with contextlib.suppress(WorkflowAlreadyStartedError):
        # wait_for as well as rpc_timeout: a client whose connection is not up yet (lazy, or lost)
        # waits on connecting, which the RPC timeout does not bound.
        await asyncio.wait_for(
            client.start_workflow(
                IncidentWorkflow.run,
                incident_input(settings, incident_id=incident_id, case_id=case_id, agency=agency),
                id=incident_workflow_id(incident_id),
                task_queue=settings.task_queue,
                search_attributes=TypedSearchAttributes(
                    [SearchAttributePair(CASE_ID, case_id), SearchAttributePair(AGENCY, agency)]
                ),
                rpc_timeout=timedelta(seconds=timeout),
            ),
            timeout=timeout + 0.5,
        )


def mark_dispatched(engine: Engine, incident_id: str) -> None:
    with session_scope(engine) as session:
        row = session.get(Incident, incident_id)
        if row is not None and row.dispatched_at is None:
            row.dispatched_at = utcnow()
            session.add(row)


def pending_incidents(engine: Engine, *, limit: int = 200) -> list[tuple[str, str, str]]:
    """(incident id, case id, agency) of alerts whose workflow has not been started, oldest first."""
    with session_scope(engine) as session:
        rows = session.exec(
            select(Incident.id, Incident.case_id, Case.agency)
            .join(Case, col(Case.id) == Incident.case_id)
            .where(col(Incident.dispatched_at).is_(None))
            .order_by(col(Incident.created_at))
            .limit(limit)
        ).all()
        return [(i, c, a) for i, c, a in rows]


async def relay_pending(client: Client, settings: Settings, engine: Engine) -> int:
    """Start every pending alert's workflow; returns how many were started. Stops at the first
    failure to reach the workflow service (the next round tries again)."""
    started = 0
    for incident_id, case_id, agency in await asyncio.to_thread(pending_incidents, engine):
        await start_incident(client, settings, incident_id=incident_id, case_id=case_id, agency=agency)
        await asyncio.to_thread(mark_dispatched, engine, incident_id)
        log.info("relay started the workflow of alert %s (case %s)", incident_id, case_id)
        started += 1
    return started
