"""The FastAPI application factory. `uvicorn api.app:app` serves it with settings from the environment."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles

from api.deps import strict_query
from api.errors import install_error_handlers
from api.openapi import install_docs
from api.routes import auth, cases, consent, health, ledger, registry, reports, shares
from api.web import admin as web_admin
from api.web import audit as web_audit
from api.web import console as web_console
from api.web import resident as web_resident
from api.web.render import is_html_path
from custody.agencies import HOME_AGENCY
from custody.db import create_db_engine, migrate, session_scope
from custody.devsecrets import demo_passwords
from custody.ledger.service import ledger_for, run_checkpointer
from custody.security import TokenService
from custody.services.users import ensure_agencies, ensure_demo_users
from custody.settings import Settings, load_settings

log = logging.getLogger("custody.api")
STATIC = Path(__file__).resolve().parent / "static"


def create_app(settings: Settings) -> FastAPI:
    engine = create_db_engine(settings.db_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        migrate(engine)
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

    app = FastAPI(
        title="custody",
        summary="Chain of custody for video evidence from private cameras",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # served by install_docs from vendored assets, never a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.tokens = TokenService(settings)
    app.state.temporal = None
    app.state.temporal_lock = asyncio.Lock()
    app.state.ledger = ledger_for(settings, engine)
    install_error_handlers(app)
    install_docs(app)
    # The JSON API refuses query parameters it does not take. Not the consent link: mail programs
    # may add tracking parameters to links people click.
    strict = [Depends(strict_query)]
    for api_router in (health.router, auth.router, registry.router, ledger.router, cases.router):
        app.include_router(api_router, dependencies=strict)
    app.include_router(consent.router)
    app.include_router(reports.router, dependencies=strict)
    app.include_router(shares.router, dependencies=strict)
    app.include_router(web_console.router)
    app.include_router(web_audit.router)
    app.include_router(web_admin.router)
    app.include_router(web_resident.router)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    csp = content_security_policy(settings.map_tile_url)

    @app.middleware("http")
    async def _html_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        """Browser pages get a strict Content-Security-Policy: scripts and styles only from /static
        (no inline script), map tiles only from the configured tile host, and no framing."""
        response = await call_next(request)
        if is_html_path(request.url.path) or request.url.path.startswith("/static"):
            response.headers.setdefault("Content-Security-Policy", csp)
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
            response.headers.setdefault("Referrer-Policy", "same-origin")
            response.headers.setdefault("X-Frame-Options", "DENY")
        return response

    return app


def content_security_policy(tile_url: str) -> str:
    tiles = ""
    if tile_url:
        parts = urlsplit(tile_url.replace("{s}", "a"))
        host = parts.netloc.replace("a.", "*.", 1) if "{s}" in tile_url else parts.netloc
        tiles = f" {parts.scheme}://{host}"
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        f"img-src 'self' data:{tiles}; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
        "base-uri 'none'; object-src 'none'"
    )


def app() -> FastAPI:
    """uvicorn factory: `uvicorn --factory api.app:app`."""
    logging.basicConfig(level=logging.INFO)
    return create_app(load_settings())
