"""The anchor of bench/footage.py: a bare workflow of the request's shape (2 activities + 1 signal).

Kept in its own module with no other imports so that Temporal's workflow sandbox loads it cleanly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import activity, workflow


@dataclass
class BareInput:
    n: int


@activity.defn
def bare_step(x: BareInput) -> int:
    return x.n


@workflow.defn
class BareShape:
    def __init__(self) -> None:
        self.go = False

    @workflow.run
    async def run(self, x: BareInput) -> int:
        await workflow.execute_activity(bare_step, x, start_to_close_timeout=timedelta(seconds=30))
        await workflow.wait_condition(lambda: self.go)
        return await workflow.execute_activity(bare_step, x, start_to_close_timeout=timedelta(seconds=30))

    @workflow.signal
    def proceed(self) -> None:
        self.go = True
