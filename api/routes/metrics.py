"""GET /metrics: Prometheus text exposition of this API process.

Who may read it: with `CUSTODY_METRICS_TOKEN` set, only a scraper presenting it as
`Authorization: Bearer <token>` (compared in constant time); unset, anyone in dev mode (a laptop),
and nobody in any other mode (403 naming the setting). Why a token and not a second port: the
API's one port is what the proxy, the container and the health checks already know, and a metrics
port left open by mistake would serve without any check at all. The figures carry no personal data
and no ids (route templates only), but traffic volumes and the ledger's size are not for the public.

Each API replica answers for itself: Prometheus scrapes every replica (not the load balancer) and
sums. The ledger figures are read from the database at scrape time (two indexed single-row queries),
so every replica reports the same ledger.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Iterator
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from custody.errors import CustodyError, Forbidden, Unauthenticated
from custody.ledger.store import Ledger
from custody.settings import Settings

router = APIRouter(tags=["operations"], include_in_schema=False)
log = logging.getLogger("custody.api.metrics")


class LedgerFigures(Collector):
    """The ledger's size and the newest checkpoint's age, read when scraped."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "custody_ledger_readable", "1 when the ledger's figures could be read from the database"
        )
        try:
            size = self.ledger.size()
            latest = self.ledger.latest_checkpoint()
        except Exception as exc:  # a scrape must still answer when the database does not
            log.warning("metrics: the ledger could not be read: %s", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield GaugeMetricFamily("custody_ledger_tree_size", "Entries in the custody ledger", value=size)
        if latest is not None:
            created = latest.created_at
            created = created.replace(tzinfo=UTC) if created.tzinfo is None else created
            yield GaugeMetricFamily(
                "custody_ledger_checkpoint_tree_size",
                "Entries covered by the newest signed checkpoint",
                value=latest.tree_size,
            )
            yield GaugeMetricFamily(
                "custody_ledger_checkpoint_age_seconds",
                "Seconds since the newest signed checkpoint was made",
                value=max(0.0, (datetime.now(UTC) - created).total_seconds()),
            )


def _allowed(request: Request, settings: Settings) -> CustodyError | None:
    if settings.metrics_token is None:
        if settings.mode == "dev":
            return None
        return Forbidden(
            "/metrics is closed: set CUSTODY_METRICS_TOKEN and scrape with it as a bearer token.",
            code="metrics_closed",
        )
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    expected = settings.metrics_token.get_secret_value()
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected.encode()):
        return Unauthenticated(
            "/metrics needs the metrics token: send Authorization: Bearer <CUSTODY_METRICS_TOKEN>."
        )
    return None


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    refusal = _allowed(request, settings)
    if refusal is not None:
        raise refusal
    scraped = CollectorRegistry(auto_describe=False)
    scraped.register(LedgerFigures(request.app.state.ledger))
    body = await asyncio.to_thread(lambda: generate_latest(REGISTRY) + generate_latest(scraped))
    return Response(body, media_type=CONTENT_TYPE_LATEST)
