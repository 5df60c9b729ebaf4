"""The custody worker: runs the footage-request workflows and their activities on the task queue.

Run with `custody worker` (or `python -m worker`, as the launcher does). Settings come from the
environment like the API's. Outside dev mode it refuses a database not migrated to this code's
revision: run `custody migrate` first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy.engine import Engine
from temporalio.client import Client
from temporalio.worker import Worker

from activities.maintenance import run_maintenance
from activities.requests import RequestActivities
from custody import redact
from custody.db import engine_for, prepare_schema
from custody.errors import ConfigurationError
from custody.ledger.service import ledger_for, run_checkpointer
from custody.settings import Settings, load_settings
from storage.s3 import make_client
from workflows.requests import FootageRequestWorkflow, IncidentWorkflow, IntegratedPullWorkflow

log = logging.getLogger("custody.worker")
ACTIVITY_THREADS = 50


async def connect(settings: Settings, *, timeout_s: float = 60) -> Client:
    """Connect to Temporal, retrying while the server starts."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            return await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace)
        except RuntimeError as exc:
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(
                    f"Temporal at {settings.temporal_address} did not answer within {timeout_s:.0f} s: {exc}"
                ) from exc
            await asyncio.sleep(1)


def build_worker(client: Client, settings: Settings, engine: Engine | None = None) -> Worker:
    engine = engine or engine_for(settings, threads=ACTIVITY_THREADS)
    acts = RequestActivities(settings, engine, ledger_for(settings, engine), make_client(settings))
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[IncidentWorkflow, FootageRequestWorkflow, IntegratedPullWorkflow],
        activities=[
            acts.list_incident_requests,
            acts.record_step,
            acts.send_notice,
            acts.send_cancel_notice,
            acts.verify_files,
            acts.attach_evidence,
            acts.pull_integrated,
        ],
        activity_executor=ThreadPoolExecutor(max_workers=ACTIVITY_THREADS, thread_name_prefix="activity"),
        max_concurrent_activities=ACTIVITY_THREADS,
    )


async def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    redact.install()  # no consent token, sign-in link or key in the worker's log
    settings = load_settings()
    engine = engine_for(settings, threads=ACTIVITY_THREADS)
    prepare_schema(engine, settings)  # before Temporal: a wrong schema is the operator's to fix first
    client = await connect(settings)
    worker = build_worker(client, settings, engine)
    checkpointer = asyncio.create_task(
        run_checkpointer(ledger_for(settings, engine), settings.ledger_checkpoint_interval_s)
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    housekeeping = asyncio.create_task(
        run_maintenance(client, settings, engine, ledger_for(settings, engine), make_client(settings), stop)
    )
    async with worker:
        log.info("worker ready on task queue %s at %s", settings.task_queue, settings.temporal_address)
        await stop.wait()
        log.info("worker stopping")
    checkpointer.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await checkpointer  # gives leadership up now, so another process signs without waiting
    await housekeeping


def run() -> int:
    """Run the worker until SIGTERM/SIGINT; 1 with the reason on stderr when it cannot start."""
    try:
        asyncio.run(main())
    except ConfigurationError as exc:
        print(f"custody worker: {exc.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run())
