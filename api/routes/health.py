"""Health for load balancers and orchestrators, and for people.

- `GET /health/live`: the process answers (200). Checks no dependency: a database outage must not
  make an orchestrator restart every replica.
- `GET /health/ready` (and `GET /health`, the same answer): each component (db, temporal, s3,
  smtp). The database, Temporal or S3 down: 503 `unavailable` (the replica cannot serve; take it out
  of the balancer). Only SMTP down: 200 `degraded` naming smtp (owners' notices wait and are retried
  by the worker; everything else works, so replicas stay in).

A component that is down is named with a short fixed reason (`not answering`, `timed out`, `full`,
`misconfigured`, `error`), never the exception's text: these routes answer anyone, and exception
text carries hosts, ports, driver messages. The exception goes to the log instead, once each time
a component's state changes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from minio.error import S3Error
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.service import RPCError
from urllib3.exceptions import HTTPError

from api.schemas import ComponentHealth, HealthOut, LiveOut
from api.temporal import temporal_client
from custody.errors import ConfigurationError, ServiceUnavailable
from custody.health import check_db, check_smtp
from custody.mail import SmtpConfig
from custody.settings import Settings
from storage.evidence import EvidenceStore
from storage.s3 import check as check_s3
from workflows.client import explain as explain_temporal

router = APIRouter(tags=["health"])
log = logging.getLogger("custody.api.health")
TIMEOUT_S = 3.0
UP = "up"
#: Components without which this replica cannot serve; the others only degrade it.
REQUIRED = frozenset({"db", "temporal", "s3"})


async def _temporal(request: Request, settings: Settings) -> str:
    client = await temporal_client(request)  # the API's one client, connected on first use
    try:
        await client.workflow_service.get_system_info(
            GetSystemInfoRequest(), timeout=timedelta(seconds=TIMEOUT_S)
        )
    except RuntimeError as exc:  # a refused certificate or key: the log says which setting to check
        raise (explain_temporal(settings, exc) or exc) from exc
    return UP


class StoreFull(Exception):
    """The evidence store has no room left beyond its reserve."""


def _s3(request: Request, settings: Settings) -> str:
    """The bucket answers, and (when custody runs the store) how much room is left for evidence;
    below the reserve uploads get 507, so readiness says so too."""
    # The app's probe client (no retries, short timeout; built once, see api/app.py).
    check_s3(request.app.state.s3_probe, bucket=settings.s3_bucket)
    store: EvidenceStore = request.app.state.store
    room = store.room_bytes()
    if room is None:
        return UP
    if room <= 0:
        raise StoreFull()
    return f"{UP}; {room / 2**30:.1f} GiB free for evidence"


def reason(exc: BaseException) -> str:
    """A fixed, short reason for a failed probe: safe to show anyone."""
    if isinstance(exc, StoreFull):
        return "full"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ConfigurationError):
        return "misconfigured"  # e.g. the bucket is missing
    if isinstance(exc, OSError | RPCError | OperationalError | S3Error | HTTPError | ServiceUnavailable):
        return "not answering"
    return "error"


@router.get("/health/live", response_model=LiveOut)
async def live() -> LiveOut:
    """The process is up and serving HTTP. No dependency is checked."""
    return LiveOut(status="ok")


@router.get("/health/ready", response_model=HealthOut, responses={503: {"model": HealthOut}})
async def ready(request: Request) -> JSONResponse:
    """Whether this replica can serve: 503 when the database, Temporal or S3 is down; 200 `degraded`
    when only SMTP is."""
    return await _readiness(request)


@router.get("/health", response_model=HealthOut, responses={503: {"model": HealthOut}})
async def health(request: Request) -> JSONResponse:
    """The same answer as /health/ready (kept for scripts and the launcher)."""
    return await _readiness(request)


async def _readiness(request: Request) -> JSONResponse:
    settings: Settings = request.app.state.settings
    engine = request.app.state.engine
    probes: dict[str, Callable[[], Awaitable[str]]] = {
        "db": lambda: asyncio.to_thread(_db, engine),
        "temporal": lambda: _temporal(request, settings),
        "s3": lambda: asyncio.to_thread(_s3, request, settings),
        "smtp": lambda: asyncio.to_thread(_smtp, settings),
    }
    seen: dict[str, str] = request.app.state.health_seen

    async def run(name: str, probe: Callable[[], Awaitable[str]]) -> ComponentHealth:
        try:
            result = ComponentHealth(ok=True, detail=await asyncio.wait_for(probe(), TIMEOUT_S + 1))
            if seen.get(name, UP) != UP:
                log.info("health: %s is up again", name)
        except Exception as exc:  # a probe's failure is the answer, not an error of /health
            result = ComponentHealth(ok=False, detail=reason(exc))
            if seen.get(name) != result.detail:
                log.warning("health: %s is down (%s): %s: %s", name, result.detail, type(exc).__name__, exc)
        seen[name] = UP if result.ok else result.detail
        return result

    results = await asyncio.gather(*(run(n, p) for n, p in probes.items()))
    components = dict(zip(probes, results, strict=True))
    down = [name for name, c in components.items() if not c.ok]
    if any(name in REQUIRED for name in down):
        status, code = "unavailable", 503
    else:
        status, code = ("degraded" if down else "ok"), 200
    body = HealthOut(status=status, components=components)
    return JSONResponse(body.model_dump(), status_code=code)


def _db(engine: Engine) -> str:
    check_db(engine)
    return UP


def _smtp(settings: Settings) -> str:
    """The relay answers, over TLS with its certificate checked when configured (no AUTH: a probe
    must not count against the relay's login throttles)."""
    check_smtp(settings.smtp_host, settings.smtp_port, config=SmtpConfig.from_settings(settings))
    return UP
