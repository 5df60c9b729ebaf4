"""GET /health: each component (db, temporal, s3, smtp) with 503 when any is down."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

import urllib3
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from minio import Minio
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest

from api.schemas import ComponentHealth, HealthOut
from api.temporal import temporal_client
from custody.health import check_db, check_smtp
from custody.mail import SmtpConfig
from custody.settings import Settings
from storage.evidence import EvidenceStore
from storage.s3 import check as check_s3

router = APIRouter(tags=["health"])
TIMEOUT_S = 3.0


async def _temporal(request: Request, settings: Settings) -> str:
    client = await temporal_client(request)  # the API's one client, connected on first use
    await client.workflow_service.get_system_info(
        GetSystemInfoRequest(), timeout=timedelta(seconds=TIMEOUT_S)
    )
    return f"Temporal at {settings.temporal_address} answers (namespace {settings.temporal_namespace})"


def _s3_probe_client(settings: Settings) -> Minio:
    # No retries and a short timeout: a health probe must answer quickly when the store is down.
    http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=1.0, read=TIMEOUT_S), retries=False)
    return Minio(
        settings.s3_endpoint,
        access_key=settings.secret("s3_access_key"),
        secret_key=settings.secret("s3_secret_key"),
        secure=settings.s3_secure,
        region="us-east-1",
        http_client=http,
    )


def _s3(request: Request, settings: Settings) -> str:
    """The bucket answers, and (when custody runs the store) how much room is left for evidence;
    below the reserve uploads get 507, so /health says so too."""
    detail = check_s3(_s3_probe_client(settings), bucket=settings.s3_bucket)
    store: EvidenceStore = request.app.state.store
    room = store.room_bytes()
    if room is None:
        return detail
    if room <= 0:
        raise OSError(
            f"the evidence store is full: all its free space is the {store.min_free_bytes // 2**20} MiB "
            "kept in reserve"
        )
    return f"{detail}; {room / 2**30:.1f} GiB free for evidence"


@router.get("/health", response_model=HealthOut, responses={503: {"model": HealthOut}})
async def health(request: Request) -> JSONResponse:
    settings: Settings = request.app.state.settings
    engine = request.app.state.engine
    probes: dict[str, Callable[[], Awaitable[str]]] = {
        "db": lambda: asyncio.to_thread(check_db, engine),
        "temporal": lambda: _temporal(request, settings),
        "s3": lambda: asyncio.to_thread(_s3, request, settings),
        "smtp": lambda: asyncio.to_thread(
            check_smtp, settings.smtp_host, settings.smtp_port, config=SmtpConfig.from_settings(settings)
        ),
    }

    async def run(probe: Callable[[], Awaitable[str]]) -> ComponentHealth:
        try:
            return ComponentHealth(ok=True, detail=await asyncio.wait_for(probe(), TIMEOUT_S + 1))
        except Exception as exc:  # a probe's failure is the answer, not an error of /health
            return ComponentHealth(ok=False, detail=f"{type(exc).__name__}: {exc}"[:300] or "timed out")

    results = await asyncio.gather(*(run(p) for p in probes.values()))
    components = dict(zip(probes, results, strict=True))
    ok = all(c.ok for c in components.values())
    body = HealthOut(status="ok" if ok else "degraded", components=components)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)
