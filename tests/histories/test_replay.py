"""Replays the recorded histories of every workflow type (tests/histories/*.json, written by
`make histories`) against today's workflow code: a change that would break workflows in flight (a new,
removed or reordered activity, timer, child or search-attribute upsert without `workflow.patched`)
fails here with a nondeterminism error instead of in production. No server needed.

Policy and patch lifecycle: docs/operations.md, "Changing workflow code"."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workflows.requests import FootageRequestWorkflow, IncidentWorkflow, IntegratedPullWorkflow

HERE = Path(__file__).parent
HISTORIES = sorted(HERE.glob("*.json"))
WORKFLOWS = {
    "IncidentWorkflow": IncidentWorkflow,
    "FootageRequestWorkflow": FootageRequestWorkflow,
    "IntegratedPullWorkflow": IntegratedPullWorkflow,
}


def _history(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, path.read_text())


def _type_of(history: WorkflowHistory) -> str:
    started = history.events[0].workflow_execution_started_event_attributes
    return started.workflow_type.name


def test_every_workflow_type_has_a_recorded_history() -> None:
    recorded = {_type_of(_history(p)) for p in HISTORIES}
    assert recorded == set(WORKFLOWS), f"record them with `make histories`; have {sorted(recorded)}"


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_history_replays_on_todays_code(path: Path) -> None:
    history = _history(path)
    assert _type_of(history) in WORKFLOWS, f"{path.name}: unknown workflow type"
    replayer = Replayer(workflows=list(WORKFLOWS.values()))
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    if result.replay_failure is not None:  # a NondeterminismError, said briefly (not the whole history)
        pytest.fail(
            f"{path.name} ({_type_of(history)}) no longer replays: {result.replay_failure}\n"
            "Today's workflow code would break workflows in flight that took this path. Guard the "
            "change with workflow.patched(...) (docs/operations.md, 'Changing workflow code'); "
            "re-record with `make histories` only after a release, never to make this pass.",
            pytrace=False,
        )
