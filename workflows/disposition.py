"""DispositionWorkflow: one round of disposition (activities/disposition.py), started by its Temporal
schedule every CUSTODY_DISPOSITION_INTERVAL_S. Deterministic: it only runs the activity."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.disposition import DispositionActivities, DispositionResult


@workflow.defn(name="DispositionWorkflow")
class DispositionWorkflow:
    @workflow.run
    async def run(self) -> DispositionResult:
        return await workflow.execute_activity_method(
            DispositionActivities.disposition_round,
            start_to_close_timeout=timedelta(minutes=10),
            retry_policy=RetryPolicy(maximum_attempts=3, maximum_interval=timedelta(minutes=1)),
        )
