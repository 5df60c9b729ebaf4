"""The API's Temporal client (one per app, connected on first use), every call the API makes to a
request's workflow (`decide`, `complete`, `cancel_request`, `cancel_for_withdrawal`: typed updates on
typed handles, so a renamed update or argument is a type error, not a runtime one), and the mapping
of workflow errors to the API's.

Every call the API makes to the workflow service is bounded by `CUSTODY_TEMPORAL_RPC_TIMEOUT_S`: a
service that is down or paused becomes a 503 with Retry-After within seconds (alerts are queued
instead, see api/routes/cases.py), never a client held for half a minute and then a 500.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

from fastapi import Request
from temporalio.client import (
    Client,
    RPCTimeoutOrCancelledError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from custody.cancellation import cancel_refusal
from custody.db import session_scope
from custody.errors import Conflict, CustodyError, NotFound, ServiceUnavailable, Unprocessable
from custody.models import FootageRequest
from custody.services import uploads
from custody.settings import Settings
from workflows.client import connect_temporal
from workflows.requests import (
    ActorInput,
    DecisionInput,
    FootageRequestWorkflow,
    IntegratedPullWorkflow,
    request_workflow_id,
)

#: RPC failures that mean "the service is not answering", not "the workflow said no".
UNAVAILABLE = frozenset(
    {RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED,
     RPCStatusCode.RESOURCE_EXHAUSTED, RPCStatusCode.UNKNOWN, RPCStatusCode.INTERNAL}
)  # fmt: skip


def unavailable(settings: Settings) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"The workflow service at {settings.temporal_address} is not answering; nothing was changed. "
        "Try again in a minute.",
        retry_after_s=30,
        code="workflows_unavailable",
    )


def rpc_timeout(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.temporal_rpc_timeout_s)


async def temporal_client(request: Request) -> Client:
    client: Client | None = request.app.state.temporal
    if client is not None:
        return client
    settings: Settings = request.app.state.settings
    async with request.app.state.temporal_lock:  # one connect per app, however many requests race
        if request.app.state.temporal is None:
            try:
                # Lazy: connects on first call, so a service that is down fails that call fast.
                request.app.state.temporal = await connect_temporal(settings, lazy=True)
            except RuntimeError as exc:
                raise unavailable(settings) from exc
    result: Client = request.app.state.temporal
    return result


def update_error(exc: Exception, settings: Settings | None = None) -> CustodyError:
    """Turn a rejected or failed workflow update into the API's error."""
    cause = exc.cause if isinstance(exc, WorkflowUpdateFailedError) else exc
    if isinstance(cause, ApplicationError):
        if cause.type == "invalid":
            return Unprocessable(cause.message)
        if cause.type == "pending":  # the workflow is catching up: the same call works in a moment
            return ServiceUnavailable(
                cause.message[:1].upper()
                + cause.message[1:]
                + "; nothing was changed. Try again in a minute.",
                retry_after_s=10,
                code="not_ready",
            )
        return Conflict(cause.message[:1].upper() + cause.message[1:] + ".")
    if isinstance(exc, RPCError):
        if exc.status == RPCStatusCode.NOT_FOUND:
            return NotFound("This request's workflow has ended; nothing more can change.")
        if settings is not None and exc.status in UNAVAILABLE:
            return unavailable(settings)
    if isinstance(exc, TimeoutError | RuntimeError | RPCTimeoutOrCancelledError) and settings is not None:
        return unavailable(settings)
    return Conflict(str(exc))


def _footage(client: Client, request_id: str) -> WorkflowHandle[FootageRequestWorkflow, str]:
    return client.get_workflow_handle_for(FootageRequestWorkflow.run, request_workflow_id(request_id))


def _pull(client: Client, request_id: str) -> WorkflowHandle[IntegratedPullWorkflow, str]:
    return client.get_workflow_handle_for(IntegratedPullWorkflow.run, request_workflow_id(request_id))


async def _run_update(request: Request, update: Callable[[Client, timedelta], Awaitable[str]]) -> str:
    """Execute one workflow update, `update(client, rpc_timeout)`, within the update timeout; errors
    mapped by `update_error`."""
    client = await temporal_client(request)
    settings: Settings = request.app.state.settings
    try:
        timeout = settings.temporal_update_timeout_s
        result: str = await asyncio.wait_for(  # also bounds connecting, which rpc_timeout does not
            update(client, timedelta(seconds=timeout)), timeout=timeout + 0.5
        )
    except (
        WorkflowUpdateFailedError,
        RPCError,
        RPCTimeoutOrCancelledError,
        RuntimeError,
        TimeoutError,
    ) as exc:
        raise update_error(exc, settings) from exc
    return result


async def decide(request: Request, request_id: str, decision: DecisionInput) -> str:
    """The owner's consent or refusal; returns the request's new status."""
    return await _run_update(
        request,
        lambda client, rpc: _footage(client, request_id).execute_update(
            FootageRequestWorkflow.decide, decision, rpc_timeout=rpc
        ),
    )


async def complete(request: Request, request_id: str, by: ActorInput) -> str:
    """The owner has sent every file; returns the request's new status."""
    return await _run_update(
        request,
        lambda client, rpc: _footage(client, request_id).execute_update(
            FootageRequestWorkflow.complete, by, rpc_timeout=rpc
        ),
    )


def _storing_refusal(request: Request, request_id: str) -> str | None:
    settings: Settings = request.app.state.settings
    with session_scope(request.app.state.engine) as session:
        return uploads.cancel_refusal(session=session, request_id=request_id, stale_s=settings.upload_stale_s)


async def cancel_request(request: Request, req: FootageRequest, *, actor: str, reason: str = "") -> str:
    """Cancel an open request through its workflow (custody/cancellation.py decides what is open);
    the workflow records the reason in the history and the ledger. Returns the new status."""
    refusal = cancel_refusal(kind=req.kind, status=req.status, files_complete=req.files_complete)
    if refusal is None:
        refusal = await asyncio.to_thread(_storing_refusal, request, req.id)
    if refusal is not None:
        raise Conflict(refusal)
    why = ActorInput(
        actor, reason=f"cancelled by the investigator: {reason.strip()}" if reason.strip() else ""
    )

    def cancel(client: Client, rpc: timedelta) -> Awaitable[str]:
        if req.kind == "registered":
            return _footage(client, req.id).execute_update(
                FootageRequestWorkflow.cancel, why, rpc_timeout=rpc
            )
        return _pull(client, req.id).execute_update(IntegratedPullWorkflow.cancel, why, rpc_timeout=rpc)

    try:
        return await _run_update(request, cancel)
    except NotFound as exc:
        if req.status == "requested":  # its workflow is not started yet (the alert's is starting it)
            raise Conflict("This request is still starting; try again in a few seconds.") from exc
        raise


async def cancel_for_withdrawal(client: Client, request_id: str, owner_id: str) -> str:
    """Cancel a request still waiting on an owner who leaves the program. Errors are the SDK's
    (WorkflowUpdateFailedError, RPCError): the caller logs them and carries on, the owner has left
    anyway and an unanswered request expires."""
    return await _footage(client, request_id).execute_update(
        FootageRequestWorkflow.cancel,
        ActorInput(f"owner:{owner_id}", reason="the owner withdrew from the program"),
    )
