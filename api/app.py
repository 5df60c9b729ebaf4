"""The FastAPI application factory. `uvicorn api.app:app` serves it with settings from the environment."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio.to_thread
from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp

from api.admission import Admission
from api.bodytimeout import BodyReadTimeout
from api.deps import strict_query
from api.errors import install_error_handlers
from api.headers import SecurityHeaders, content_security_policy
from api.observe import Observe, bind_path_ids
from api.openapi import install_docs
from api.routes import (
    auth,
    cases,
    consent,
    health,
    incidents,
    ledger,
    metrics,
    registry,
    reports,
    retention,
    shares,
    tus,
)
from api.web import admin as web_admin
from api.web import audit as web_audit
from api.web import console as web_console
from api.web import resident as web_resident
from custody import logs, redact
from custody.agencies import HOME_AGENCY
from custody.db import engine_for, prepare_schema, session_scope
from custody.devsecrets import demo_passwords
from custody.ledger.service import ledger_for, run_checkpointer
from custody.security import TokenService
from custody.services.users import ensure_agencies, ensure_demo_users
from custody.settings import Settings, load_settings
from storage.evidence import EvidenceStore
from storage.s3 import make_client, make_probe_client
from workflows.client import temporal_tls

log = logging.getLogger("custody.api")
STATIC = Path(__file__).resolve().parent / "static"


def create_app(settings: Settings) -> FastAPI:
    # The Temporal client connects on first use; its CA, certificate and key files are read now,
    # so one that is missing or not PEM stops start-up with the setting's name, not a first request.
    temporal_tls(settings)
    engine = engine_for(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Threads for every admitted request plus the short steps of uploads and downloads
        # (api/admission.py), so a request holding a connection always finds a thread.
        limiter = anyio.to_thread.current_default_thread_limiter()
        limiter.total_tokens = max(limiter.total_tokens, settings.admitted_requests + 16)
        prepare_schema(engine, settings)  # dev: migrate; else refuse a database not at head
        with session_scope(engine) as session:
            ensure_agencies(session=session)
            if settings.mode == "dev" and settings.demo_users:
                ensure_demo_users(
                    session=session, passwords=demo_passwords(settings.home), agency=HOME_AGENCY
                )
        checkpointer = asyncio.create_task(
            run_checkpointer(app.state.ledger, settings.ledger_checkpoint_interval_s)
        )
        yield
        checkpointer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await checkpointer
        client = getattr(app.state, "temporal", None)
        app.state.temporal = None
        del client
        engine.dispose()

    redact.install()  # however the app is served, its logs carry no token
    app = CustodyAPI(
        title="custody",
        summary="Chain of custody for video evidence from private cameras",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # served by install_docs from vendored assets, never a CDN
        redoc_url=None,
        dependencies=[Depends(bind_path_ids)],  # route ids into the log context (api/observe.py)
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.tokens = TokenService(settings)
    app.state.temporal = None
    app.state.temporal_lock = asyncio.Lock()
    app.state.health_seen = {}  # each component's last health, to log changes once (routes/health.py)
    app.state.ledger = ledger_for(settings, engine)
    # The process's S3 clients, built once: the one every request uses, and /health's quick probe.
    app.state.s3_probe = make_probe_client(settings, timeout_s=health.TIMEOUT_S)
    app.state.store = EvidenceStore(
        make_client(settings),
        bucket=settings.s3_bucket,
        data_dir=settings.store_dir,
        min_free_bytes=settings.s3_min_free_mb * 2**20,
    )
    install_error_handlers(app)
    install_docs(app)
    # The JSON API refuses query parameters it does not take. Not the consent link: mail programs
    # may add tracking parameters to links people click.
    strict = [Depends(strict_query)]
    for api_router in (
        health.router,
        auth.router,
        registry.router,
        ledger.router,
        cases.router,
        retention.router,
    ):
        app.include_router(api_router, dependencies=strict)
    app.include_router(consent.router)
    app.include_router(tus.router)
    app.include_router(metrics.router)
    app.include_router(reports.router, dependencies=strict)
    app.include_router(shares.router, dependencies=strict)
    app.include_router(incidents.router, dependencies=strict)
    app.include_router(web_console.router)
    app.include_router(web_audit.router)
    app.include_router(web_admin.router)
    app.include_router(web_resident.router)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    return app


class CustodyAPI(FastAPI):
    """FastAPI with custody's outermost layers: the request id and metrics (api/observe.py), security
    headers on every answer (500s included, which Starlette gives outside the user middleware), the
    request-body deadline, and admission control (api/admission.py: no more requests at once than
    the database pool can serve)."""

    def build_middleware_stack(self) -> ASGIApp:
        settings: Settings = self.state.settings
        admitted = Admission(
            super().build_middleware_stack(),
            limit=settings.admitted_requests,
            wait_s=settings.db_pool_timeout_s,
            uploads=settings.upload_concurrency,
            upload_wait_s=settings.upload_queue_s,
        )
        inner = BodyReadTimeout(admitted, timeout_s=settings.body_read_timeout_s)
        csp = content_security_policy(settings.map_tile_url)
        return Observe(SecurityHeaders(inner, csp=csp, hsts=settings.https))


def app() -> FastAPI:
    """uvicorn factory: `uvicorn --factory api.app:app`. Serve with `python -m api.serve` instead: bare
    uvicorn believes X-Forwarded-For from 127.0.0.1 and has no header deadline (api/serve.py)."""
    settings = load_settings()
    logs.configure(settings.logs_as)  # JSON or text (CUSTODY_LOG_FORMAT), through the redaction
    return create_app(settings)
