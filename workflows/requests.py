"""Footage-request workflows: orchestration only, deterministic (workflow.now(), no I/O).

- IncidentWorkflow: one per alert. Reads the alert's requests (an activity), starts one child per
  request (registered cameras: FootageRequestWorkflow; integrated: IntegratedPullWorkflow) with a
  workflow id derived from the request id, and ends when all have ended.
- FootageRequestWorkflow: notice -> reminders -> consent / decline / expiry / cancellation ->
  uploads -> complete -> verification -> attachment. The API talks to it through updates
  (`decide`, `complete`, `cancel`), which return once the new status is recorded; the workflow
  returns only after every update handler has finished (`_finish`).
- IntegratedPullWorkflow: pull -> verify -> attach, no owner action.

Every step records its status, history and ledger event through the `record_step` activity, keyed
by the step, and updates the CustodyStatus search attribute (ids and statuses only, no personal data).

Changing this code: requests live for days, so a change that alters the commands a workflow issues
needs `workflow.patched` (docs/operations.md, "Changing workflow code"); tests/histories replays
recorded histories of every path and fails on a change that would break workflows in flight.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import (
    RetryPolicy,
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
)
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    RetryState,
    WorkflowAlreadyStartedError,
)
from temporalio.exceptions import TimeoutError as TemporalTimeout  # not the builtin: _wait needs that

with workflow.unsafe.imports_passed_through():
    from activities.requests import (
        IncidentRef,
        NoticeInput,
        RequestActivities,
        RequestInputRef,
        RequestRef,
        StepInput,
        VerifyResult,
    )
    from activities.workcopy import WorkingCopiesInput, WorkingCopyActivities
    from custody.cancellation import cancel_refusal
    from custody.settings import EMAIL_ACTIVITY_TIMEOUT_S

CUSTODY_STATUS = SearchAttributeKey.for_keyword("CustodyStatus")
CASE_ID = SearchAttributeKey.for_keyword("CaseId")
AGENCY = SearchAttributeKey.for_keyword("Agency")
REQUEST_ID = SearchAttributeKey.for_keyword("RequestId")

# DB writes and one SMTP send; a dead worker's step is retried after this. Settings keeps
# CUSTODY_SMTP_TIMEOUT_S below it, so a slow relay fails the send before the activity times out.
QUICK_TIMEOUT = timedelta(seconds=EMAIL_ACTIVITY_TIMEOUT_S)
QUICK_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))
LONG_TIMEOUT = timedelta(hours=2)
LONG_RETRY = RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=1))
# ffmpeg's own limit is CUSTODY_WORKCOPY_TIMEOUT_S (the activity records "not made" past it); a
# storage fault is retried a few times, then the request ends attached with the copy noted as missing.
WORKCOPY_TIMEOUT = timedelta(hours=6)
WORKCOPY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=1), maximum_attempts=5
)


def _files(n: int) -> str:
    return f"{n} file" if n == 1 else f"{n} files"


def request_workflow_id(request_id: str) -> str:
    return f"request-{request_id}"


def incident_workflow_id(incident_id: str) -> str:
    return f"incident-{incident_id}"


@dataclass
class PullPolicy:
    """How an integrated camera's pull is tried (settings CUSTODY_PULL_*). Every retry is bounded."""

    max_attempts: int = 5
    retry_interval_s: float = 2.0
    timeout_s: float = 30.0


@dataclass
class IncidentInput:
    incident_id: str
    case_id: str
    agency: str
    consent_ttl_s: int
    reminders_s: list[int] = field(default_factory=list)
    heartbeat_s: int = 60
    pull: PullPolicy = field(default_factory=PullPolicy)


@dataclass
class RequestInput:
    request_id: str
    case_id: str
    agency: str
    consent_ttl_s: int
    reminders_s: list[int] = field(default_factory=list)
    heartbeat_s: int = 60
    pull: PullPolicy = field(default_factory=PullPolicy)


@dataclass
class DecisionInput:
    decision: str  # "consent" | "decline"
    actor: str  # the owner token's public id


@dataclass
class ActorInput:
    actor: str
    reason: str = ""  # shown in the request's history; default: cancelled by the investigator


def request_search_attributes(
    request_id: str, case_id: str, agency: str, status: str
) -> TypedSearchAttributes:
    return TypedSearchAttributes(
        [
            SearchAttributePair(REQUEST_ID, request_id),
            SearchAttributePair(CASE_ID, case_id),
            SearchAttributePair(AGENCY, agency),
            SearchAttributePair(CUSTODY_STATUS, status),
        ]
    )


@workflow.defn
class IncidentWorkflow:
    @workflow.run
    async def run(self, inp: IncidentInput) -> dict[str, int]:
        refs: list[RequestRef] = await workflow.execute_activity_method(
            RequestActivities.list_incident_requests,
            IncidentRef(inp.incident_id),
            start_to_close_timeout=QUICK_TIMEOUT,
            retry_policy=QUICK_RETRY,
        )
        children = []
        for ref in refs:
            child_in = RequestInput(
                request_id=ref.request_id,
                case_id=ref.case_id,
                agency=inp.agency,
                consent_ttl_s=inp.consent_ttl_s,
                reminders_s=inp.reminders_s,
                heartbeat_s=inp.heartbeat_s,
                pull=inp.pull,
            )
            attrs = request_search_attributes(ref.request_id, ref.case_id, inp.agency, "requested")
            target = FootageRequestWorkflow.run if ref.kind == "registered" else IntegratedPullWorkflow.run
            try:
                handle = await workflow.start_child_workflow(
                    target,
                    child_in,
                    id=request_workflow_id(ref.request_id),
                    search_attributes=attrs,
                    parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                )
            except WorkflowAlreadyStartedError:
                continue  # the same request in an earlier alert: its workflow is already running
            children.append(handle)
        outcomes = await asyncio.gather(*children, return_exceptions=True)
        counts: dict[str, int] = {}
        for outcome in outcomes:
            key = outcome if isinstance(outcome, str) else "failed"
            counts[key] = counts.get(key, 0) + 1
        return counts


class _RequestBase:
    """Shared steps of both request workflows."""

    inp: RequestInput

    async def _step(
        self,
        key: str,
        status: str | None,
        event: str | None,
        detail: str = "",
        actor: str = "custody-workflow",
    ) -> None:
        await workflow.execute_activity_method(
            RequestActivities.record_step,
            StepInput(self.inp.request_id, key, status, event, detail, actor),
            start_to_close_timeout=QUICK_TIMEOUT,
            retry_policy=QUICK_RETRY,
        )
        if status is not None:
            self.status = status
            workflow.upsert_search_attributes([CUSTODY_STATUS.value_set(status)])

    status: str = "requested"
    cancel_by: str | None = None
    cancel_reason: str = ""
    ended: bool = False  # the run has its outcome; every update handler still waiting returns now

    async def _finish(self, outcome: str) -> str:
        """Return `outcome` once every update handler has finished: a caller whose update was accepted
        gets its answer (the request's final status) instead of an update that never completes, and
        the SDK's "workflow finished while handlers are still running" never happens. Adds no command
        to the history, so workflows in flight replay unchanged (tests/histories)."""
        self.ended = True
        await workflow.wait_condition(workflow.all_handlers_finished)
        return outcome

    async def _cancelled(self) -> str:
        await self._step(
            "cancelled",
            "cancelled",
            "request_cancelled",
            self.cancel_reason or "cancelled by the investigator",
            actor=self.cancel_by or "",
        )
        return "cancelled"

    async def _verify_and_attach(self) -> str:
        result: VerifyResult = await workflow.execute_activity_method(
            RequestActivities.verify_files,
            RequestInputRef(self.inp.request_id),
            start_to_close_timeout=LONG_TIMEOUT,
            heartbeat_timeout=timedelta(seconds=self.inp.heartbeat_s),
            retry_policy=LONG_RETRY,
        )
        if result.verified == 0:
            await self._step("rejected", "rejected", None, f"{_files(result.rejected)} failed verification")
            return "rejected"
        detail = f"{_files(result.verified)} verified" + (
            f", {result.rejected} rejected" if result.rejected else ""
        )
        await self._step("verified", "verified", None, detail)
        await workflow.execute_activity_method(
            RequestActivities.attach_evidence,
            RequestInputRef(self.inp.request_id),
            start_to_close_timeout=QUICK_TIMEOUT,
            retry_policy=QUICK_RETRY,
        )
        await self._step("attached", "attached", None, f"{_files(result.verified)} attached to the case")
        if workflow.patched("working-copy"):
            # The masters stay as they are; browser-playable copies follow (workflows recorded before
            # this ended here: `patched` keeps their replay deterministic).
            try:
                await workflow.execute_activity_method(
                    WorkingCopyActivities.make_working_copies,
                    WorkingCopiesInput(self.inp.request_id),
                    start_to_close_timeout=WORKCOPY_TIMEOUT,
                    heartbeat_timeout=timedelta(seconds=self.inp.heartbeat_s),
                    retry_policy=WORKCOPY_RETRY,
                )
            except ActivityError as err:
                why = str(err.cause) if err.cause is not None else str(err)
                await self._step("working-copy-missing", None, None, f"no working copy was made: {why}"[:400])
        return "attached"


@workflow.defn
class FootageRequestWorkflow(_RequestBase):
    def __init__(self) -> None:
        self.status = "requested"
        self.decision: DecisionInput | None = None
        self.cancel_by: str | None = None
        self.cancel_reason = ""
        self.complete_by: str | None = None
        self.ended = False

    @workflow.run
    async def run(self, inp: RequestInput) -> str:
        return await self._finish(await self._run(inp))

    async def _run(self, inp: RequestInput) -> str:
        self.inp = inp
        start = workflow.now()
        expires_at = start + timedelta(seconds=inp.consent_ttl_s)
        if workflow.patched("bounded-first-notice"):
            # The first notice is retried while the mail server is down, but never past the request's
            # expiry, and a cancel does not wait for it (workflows started before this ran the
            # plain call below; `patched` keeps their replay deterministic).
            notice = workflow.start_activity_method(
                RequestActivities.send_notice,
                NoticeInput(inp.request_id, expires_at.isoformat(), 0),
                start_to_close_timeout=QUICK_TIMEOUT,
                schedule_to_close_timeout=timedelta(seconds=inp.consent_ttl_s),
                retry_policy=QUICK_RETRY,
            )
            await workflow.wait_condition(lambda: notice.done() or self.cancel_by is not None)
            if not notice.done():
                notice.cancel()
                return await self._cancelled()
            try:
                await notice
            except ActivityError as err:
                why = str(err.cause) if err.cause is not None else str(err)
                await self._step(
                    "expired",
                    "expired",
                    "request_expired",
                    f"the owner could not be emailed before the request expired ({why[:200]})",
                )
                return "expired"
        else:
            await workflow.execute_activity_method(
                RequestActivities.send_notice,
                NoticeInput(inp.request_id, expires_at.isoformat(), 0),
                start_to_close_timeout=QUICK_TIMEOUT,
                retry_policy=QUICK_RETRY,
            )
        await self._step("notified", "notified", "owner_notified", "consent link emailed to the owner")

        # Wait for the owner, with a durable timer per reminder and one for expiry.
        def decided() -> bool:
            return self.decision is not None or self.cancel_by is not None

        reminders = sorted(r for r in set(inp.reminders_s) if 0 < r < inp.consent_ttl_s)
        for number, offset in enumerate(reminders, start=1):
            if await self._wait(decided, start + timedelta(seconds=offset)):
                break
            await workflow.execute_activity_method(
                RequestActivities.send_notice,
                NoticeInput(inp.request_id, expires_at.isoformat(), number),
                start_to_close_timeout=QUICK_TIMEOUT,
                retry_policy=QUICK_RETRY,
            )
            await self._step(
                f"reminder-{number}", None, "reminder_sent", f"reminder {number} emailed to the owner"
            )
        if not await self._wait(decided, expires_at):
            await self._step("expired", "expired", "request_expired", "the owner did not answer in time")
            return "expired"
        if self.cancel_by is not None:
            return await self._cancelled()
        assert self.decision is not None
        if self.decision.decision == "decline":
            await self._step(
                "declined", "declined", "consent_declined", "the owner declined", actor=self.decision.actor
            )
            return "declined"
        await self._step(
            "consented", "consented", "consent_given", "the owner consented", actor=self.decision.actor
        )

        # Uploads go straight to storage through the API; wait for `complete`.
        if not await self._wait(
            lambda: self.complete_by is not None or self.cancel_by is not None, expires_at
        ):
            await self._step(
                "expired", "expired", "request_expired", "the owner did not finish uploading in time"
            )
            return "expired"
        if self.cancel_by is not None and self.complete_by is None:
            return await self._cancelled()
        await self._step(
            "uploaded", "uploaded", None, "the owner sent every file", actor=self.complete_by or ""
        )
        return await self._verify_and_attach()

    async def _wait(self, condition: Callable[[], bool], until: datetime) -> bool:
        """Wait for `condition` until the time `until` (a durable timer); True if it became true."""
        remaining = (until - workflow.now()).total_seconds()
        if remaining <= 0:
            return condition()
        try:
            await workflow.wait_condition(condition, timeout=remaining)
            return True
        except TimeoutError:
            return condition()

    async def _cancelled(self) -> str:
        await super()._cancelled()
        # The owner was asked: tell them nothing more is needed (their links already answer 410).
        await workflow.execute_activity_method(
            RequestActivities.send_cancel_notice,
            RequestInputRef(self.inp.request_id),
            start_to_close_timeout=QUICK_TIMEOUT,
            retry_policy=QUICK_RETRY,
        )
        return "cancelled"

    # --- messages from the API ----------------------------------------------------------------

    @workflow.update
    async def decide(self, decision: DecisionInput) -> str:
        # The same answer again (an owner's retry after a lost response, a double tap) waits for the
        # first one's outcome instead of being refused: the validator lets only that through.
        if self.decision is None:
            self.decision = decision
        target = "declined" if decision.decision == "decline" else "consented"
        await workflow.wait_condition(lambda: self.status in (target, "expired", "cancelled") or self.ended)
        return self.status

    @decide.validator
    def _validate_decide(self, decision: DecisionInput) -> None:
        if decision.decision not in ("consent", "decline"):
            raise ApplicationError("decision must be 'consent' or 'decline'", type="invalid")
        # "requested": the notice's status step may still be on its way while the owner already has the link.
        again = self.decision is not None and self.decision.decision == decision.decision
        if again and self.status in ("requested", "notified", "consented", "declined"):
            return  # the same answer, resent before or after it was recorded: same outcome
        if (
            self.status not in ("requested", "notified")
            or self.decision is not None
            or self.cancel_by is not None
        ):
            raise ApplicationError(
                f"this request was already answered or ended ({self.status})", type="conflict"
            )

    @workflow.update
    async def complete(self, inp: ActorInput) -> str:
        self.complete_by = inp.actor
        await workflow.wait_condition(lambda: self.status != "consented" or self.ended)
        return self.status

    @complete.validator
    def _validate_complete(self, inp: ActorInput) -> None:
        consenting = self.decision is not None and self.decision.decision == "consent"
        if consenting and self.status in ("requested", "notified") and self.cancel_by is None:
            # Consent taken, its record still on its way (a worker died under it and another retries
            # it): not a conflict, the same call succeeds in a moment.
            raise ApplicationError("your consent is still being recorded", type="pending")
        if self.status != "consented" or self.complete_by is not None:
            raise ApplicationError(
                f"files can be completed only once, after consent ({self.status})", type="conflict"
            )

    @workflow.update
    async def cancel(self, inp: ActorInput) -> str:
        self.cancel_by = inp.actor
        self.cancel_reason = inp.reason
        # `ended`: the request ended otherwise in the same moment (the first notice failing for good).
        await workflow.wait_condition(lambda: self.status == "cancelled" or self.ended)
        return self.status

    @cancel.validator
    def _validate_cancel(self, inp: ActorInput) -> None:
        refusal = cancel_refusal(
            kind="registered", status=self.status, files_complete=self.complete_by is not None
        )
        if refusal is not None:
            raise ApplicationError(refusal.rstrip("."), type="conflict")
        if self.cancel_by is not None:
            raise ApplicationError("this request is already being cancelled", type="conflict")

    @workflow.query
    def current_status(self) -> str:
        return self.status


@workflow.defn
class IntegratedPullWorkflow(_RequestBase):
    """An integrated camera: the business opted in fully, so footage is pulled with no owner action.

    The pull is tried at most `pull.max_attempts` times; then the request ends `failed` with the
    recorder's reason. It can be cancelled while the pull is under way (a hanging recorder)."""

    def __init__(self) -> None:
        self.status = "requested"
        self.cancel_by = None
        self.cancel_reason = ""
        self.pulled = False
        self.ended = False

    @workflow.run
    async def run(self, inp: RequestInput) -> str:
        return await self._finish(await self._run(inp))

    async def _run(self, inp: RequestInput) -> str:
        self.inp = inp
        pull = workflow.start_activity_method(
            RequestActivities.pull_integrated,
            RequestInputRef(inp.request_id),
            start_to_close_timeout=LONG_TIMEOUT,
            # The first bytes may take up to the recorder timeout; later ones heartbeat per part.
            heartbeat_timeout=timedelta(seconds=max(inp.heartbeat_s, 2 * inp.pull.timeout_s)),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=inp.pull.retry_interval_s),
                maximum_interval=timedelta(minutes=1),
                maximum_attempts=inp.pull.max_attempts,
            ),
        )
        await workflow.wait_condition(lambda: pull.done() or self.cancel_by is not None)
        if not pull.done():
            pull.cancel()  # the activity sees it at its next heartbeat and keeps nothing
            return await self._cancelled()
        try:
            await pull
        except ActivityError as exc:  # the camera could not deliver: the request fails, visibly
            if isinstance(exc.cause, ApplicationError):
                reason = exc.cause.message
            elif isinstance(exc.cause, TemporalTimeout):
                reason = "the recorder stopped sending (no progress within the time limit)"
            else:
                reason = str(exc.cause or exc)
            tries = (
                f" after {inp.pull.max_attempts} tries"
                if exc.retry_state == RetryState.MAXIMUM_ATTEMPTS_REACHED and inp.pull.max_attempts > 1
                else ""
            )
            await self._step("failed", "failed", "request_failed", f"pull failed{tries}: {reason}"[:400])
            return "failed"
        self.pulled = True
        if self.cancel_by is not None:  # cancelled in the same task as the pull finished: honour it
            return await self._cancelled()
        await self._step("uploaded", "uploaded", None, "footage pulled from the integrated camera")
        return await self._verify_and_attach()

    @workflow.update
    async def cancel(self, inp: ActorInput) -> str:
        self.cancel_by = inp.actor
        self.cancel_reason = inp.reason
        await workflow.wait_condition(lambda: self.status != "requested" or self.ended)
        return self.status

    @cancel.validator
    def _validate_cancel(self, inp: ActorInput) -> None:
        refusal = cancel_refusal(kind="integrated", status=self.status, files_complete=self.pulled)
        if refusal is not None:
            raise ApplicationError(refusal.rstrip("."), type="conflict")
        if self.cancel_by is not None:
            raise ApplicationError("this request is already being cancelled", type="conflict")

    @workflow.query
    def current_status(self) -> str:
        return self.status
