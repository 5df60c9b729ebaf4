"""The API's Temporal client (one per app, connected on first use) and workflow-error mapping."""

from __future__ import annotations

from fastapi import Request
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from custody.cancellation import cancel_refusal
from custody.errors import Conflict, CustodyError, NotFound, ServiceUnavailable, Unprocessable
from custody.models import FootageRequest
from custody.settings import Settings
from workflows.requests import (
    ActorInput,
    FootageRequestWorkflow,
    IntegratedPullWorkflow,
    request_workflow_id,
)


async def temporal_client(request: Request) -> Client:
    client: Client | None = request.app.state.temporal
    if client is not None:
        return client
    settings: Settings = request.app.state.settings
    async with request.app.state.temporal_lock:  # one connect per app, however many requests race
        if request.app.state.temporal is None:
            try:
                request.app.state.temporal = await Client.connect(
                    settings.temporal_address, namespace=settings.temporal_namespace
                )
            except RuntimeError as exc:
                raise ServiceUnavailable(
                    f"The workflow service at {settings.temporal_address} is not reachable; "
                    "try again shortly."
                ) from exc
    result: Client = request.app.state.temporal
    return result


def update_error(exc: Exception) -> CustodyError:
    """Turn a rejected workflow update into the API's error."""
    cause = exc.cause if isinstance(exc, WorkflowUpdateFailedError) else exc
    if isinstance(cause, ApplicationError):
        if cause.type == "invalid":
            return Unprocessable(cause.message)
        return Conflict(cause.message[:1].upper() + cause.message[1:] + ".")
    if isinstance(exc, RPCError):
        return NotFound("This request's workflow has ended; nothing more can change.")
    return Conflict(str(exc))


async def cancel_request(request: Request, req: FootageRequest, *, actor: str, reason: str = "") -> str:
    """Cancel an open request through its workflow (custody/cancellation.py decides what is open);
    the workflow records the reason in the history and the ledger. Returns the new status."""
    refusal = cancel_refusal(kind=req.kind, status=req.status, files_complete=req.files_complete)
    if refusal is not None:
        raise Conflict(refusal)
    client = await temporal_client(request)
    handle = client.get_workflow_handle(request_workflow_id(req.id))
    update = FootageRequestWorkflow.cancel if req.kind == "registered" else IntegratedPullWorkflow.cancel
    try:
        why = f"cancelled by the investigator: {reason.strip()}" if reason.strip() else ""
        status: str = await handle.execute_update(update, ActorInput(actor, reason=why))
    except RPCError as exc:
        if req.status == "requested":  # its workflow is not started yet (the alert's is starting it)
            raise Conflict("This request is still starting; try again in a few seconds.") from exc
        raise update_error(exc) from exc
    except WorkflowUpdateFailedError as exc:
        raise update_error(exc) from exc
    return status
