"""What the worker tells its operators about each activity: the ids on its log lines, one line when
it ends, and custody's own metrics beside the Temporal SDK's.

An activity interceptor, so the activities themselves stay as they are:

- it binds `workflow_id`, `activity` (the activity type) and, from the activity's input, the
  footage `request_id` and `case_id` for the log (custody/logs.py). It runs on the event loop just
  before the SDK hands a sync activity to its thread pool, and the SDK copies the context into that
  thread, so every line the activity logs carries them;
- it records custody's worker metrics through the activity's Temporal metric meter, so they are
  served by the SDK's own Prometheus endpoint (`CUSTODY_WORKER_METRICS_PORT`, worker.py): one port
  to scrape per worker, and labels `activity_type`, `namespace` and `task_queue` come for free.
  With that setting off the meter is a no-op.

Metrics (names as Prometheus shows them):
- `custody_verification_seconds` (histogram, label `outcome` done|failed): one run of verify_files,
  re-reading every received file of a request from storage and checking its SHA-256;
- `custody_notices_total` (counter, labels `kind` notice|cancel and `outcome` sent|skipped|failed):
  attempts to email an owner; `failed` counts each failed try (the SDK retries), `skipped` a cancel
  notice nobody needed.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from temporalio import activity
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from custody import logs

log = logging.getLogger("custody.worker.activity")

VERIFY = "verify_files"
NOTICES = {"send_notice": "notice", "send_cancel_notice": "cancel"}
#: Bucket boundaries (seconds) of custom histograms; the SDK's default buckets suit milliseconds.
BUCKETS: dict[str, list[float]] = {
    "custody_verification_seconds": [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800]
}


class ActivityObserver(Interceptor):
    """Pass to `Worker(interceptors=[ActivityObserver()])`."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Inbound(next)


class _Inbound(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        arg = input.args[0] if input.args else None
        ids = {
            "workflow_id": info.workflow_id,
            "activity": info.activity_type,
            "request_id": _str_attr(arg, "request_id"),
            "case_id": _str_attr(arg, "case_id"),
        }
        with logs.bound(**ids):
            started = time.perf_counter()
            try:
                result = await super().execute_activity(input)
            except BaseException as exc:
                elapsed = time.perf_counter() - started
                _measure(info.activity_type, None, elapsed, failed=True)
                log.info(
                    "activity %s failed after %.3f s (attempt %d): %s",
                    info.activity_type, elapsed, info.attempt, type(exc).__name__,
                )  # fmt: skip
                raise
            elapsed = time.perf_counter() - started
            _measure(info.activity_type, result, elapsed, failed=False)
            log.info("activity %s done in %.3f s", info.activity_type, elapsed)
            return result


def _str_attr(value: object, name: str) -> str | None:
    found = getattr(value, name, None)
    return found if isinstance(found, str) and found else None


def _measure(activity_type: str, result: object, elapsed: float, *, failed: bool) -> None:
    if activity_type != VERIFY and activity_type not in NOTICES:
        return
    meter = activity.metric_meter()
    if activity_type == VERIFY:
        meter.create_histogram_float(
            "custody_verification_seconds",
            "Time of one verify_files run: every received file of a request re-read and hashed",
            "s",
        ).with_additional_attributes({"outcome": "failed" if failed else "done"}).record(elapsed)
        return
    outcome = "failed" if failed else ("sent" if result else "skipped")
    meter.create_counter(
        "custody_notices_total", "Emails to camera owners, by kind and outcome (failed: each failed try)"
    ).with_additional_attributes({"kind": NOTICES[activity_type], "outcome": outcome}).add(1)
