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

from minio import Minio
from sqlalchemy.engine import Engine
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker

from activities.disposition import DispositionActivities
from activities.maintenance import run_maintenance
from activities.observe import BUCKETS as WORKER_BUCKETS
from activities.observe import ActivityObserver
from activities.requests import RequestActivities
from activities.workcopy import WorkingCopyActivities
from custody import logs
from custody.db import engine_for, prepare_schema
from custody.errors import ConfigurationError
from custody.ledger.service import ledger_for, run_checkpointer
from custody.settings import Settings, load_settings
from storage.s3 import make_client
from workflows.client import connect_temporal
from workflows.disposition import DispositionWorkflow
from workflows.requests import FootageRequestWorkflow, IncidentWorkflow, IntegratedPullWorkflow

log = logging.getLogger("custody.worker")
ACTIVITY_THREADS = 50


async def connect(settings: Settings, *, timeout_s: float = 60, runtime: Runtime | None = None) -> Client:
    """Connect to Temporal (TLS and API key from settings), retrying while the server starts; a
    refused certificate or key fails at once (workflows/client.py). `runtime`: the SDK runtime whose
    telemetry the client and its workers use (`metrics_runtime`); None: the SDK's default."""
    return await connect_temporal(settings, timeout_s=timeout_s, runtime=runtime)


def metrics_runtime(settings: Settings) -> Runtime | None:
    """A Temporal SDK runtime serving Prometheus metrics on CUSTODY_WORKER_METRICS_HOST:PORT, or None
    when the port is 0 (off). It serves the SDK's own metrics (`temporal_*`: polls, task latencies,
    activity and workflow outcomes) and custody's worker metrics (activities/observe.py), on one
    port. Durations in seconds, as Prometheus expects. One per process: create it once."""
    if not settings.worker_metrics_port:
        return None
    prometheus = PrometheusConfig(
        bind_address=f"{settings.worker_metrics_host}:{settings.worker_metrics_port}",
        durations_as_seconds=True,
        histogram_bucket_overrides=WORKER_BUCKETS,
    )
    return Runtime(telemetry=TelemetryConfig(metrics=prometheus))


def build_worker(
    client: Client, settings: Settings, engine: Engine | None = None, s3: Minio | None = None
) -> Worker:
    """The worker on `client`; `s3` is the process's one S3 client (built here when not given)."""
    engine = engine or engine_for(settings, threads=ACTIVITY_THREADS)
    s3 = s3 or make_client(settings)
    acts = RequestActivities(settings, engine, ledger_for(settings, engine), s3)
    disposition = DispositionActivities(settings, engine, ledger_for(settings, engine), s3)
    copies = WorkingCopyActivities(settings, engine, acts.ledger, s3)
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[IncidentWorkflow, FootageRequestWorkflow, IntegratedPullWorkflow, DispositionWorkflow],
        activities=[
            disposition.disposition_round,
            acts.list_incident_requests,
            acts.record_step,
            acts.send_notice,
            acts.send_cancel_notice,
            acts.verify_files,
            acts.attach_evidence,
            acts.pull_integrated,
            copies.make_working_copies,
        ],
        activity_executor=ThreadPoolExecutor(max_workers=ACTIVITY_THREADS, thread_name_prefix="activity"),
        max_concurrent_activities=ACTIVITY_THREADS,
        interceptors=[ActivityObserver()],  # log ids and custody's worker metrics (activities/observe.py)
    )


async def main() -> None:
    settings = load_settings()
    logs.configure(settings.logs_as)  # JSON or text, through the redaction: no token or key in the log
    engine = engine_for(settings, threads=ACTIVITY_THREADS)
    prepare_schema(engine, settings)  # before Temporal: a wrong schema is the operator's to fix first
    runtime = metrics_runtime(settings)
    client = await connect(settings, runtime=runtime)
    s3 = make_client(settings)  # the process's one S3 client: activities and housekeeping share it
    worker = build_worker(client, settings, engine, s3)
    checkpointer = asyncio.create_task(
        run_checkpointer(ledger_for(settings, engine), settings.ledger_checkpoint_interval_s)
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    housekeeping = asyncio.create_task(
        run_maintenance(client, settings, engine, ledger_for(settings, engine), s3, stop)
    )
    async with worker:
        log.info("worker ready on task queue %s at %s", settings.task_queue, settings.temporal_address)
        if runtime is not None:
            log.info(
                "worker metrics at http://%s:%d/metrics",
                settings.worker_metrics_host, settings.worker_metrics_port,
            )  # fmt: skip
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
