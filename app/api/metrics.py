"""`GET /metrics`: the Prometheus text exposition of this node (docs/metrics.md#prometheus-metrics).

Process figures come from the app's `Metrics` (every worker's under `serve --workers`); the
cluster-wide gauges are re-read from the database first, at most every two seconds
(`routing.gauges`). With `WARMLINE_METRICS_TOKEN` set, a scrape must carry it as a bearer token
(docs/operations.md#metrics). Holds no figures itself.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry

from app.api.errors import responses
from app.config import Settings
from app.errors import Unauthorized
from app.metrics import ClusterCollector, Metrics, exposition
from app.routing.gauges import ClusterGauges
from app.store.db import Database


class MetricsTokenRequired(Unauthorized):
    code = "metrics_token_required"


def install(app: FastAPI, settings: Settings, metrics: Metrics) -> None:
    """Add the route. The cluster gauges need the database, found on `app.state.db` once the
    lifespan has opened it."""
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    gauges: dict[str, ClusterGauges] = {}
    cluster = CollectorRegistry()
    cluster.register(
        ClusterCollector(lambda: gauges["current"].latest() if "current" in gauges else None)
    )

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics of this node and the cluster-wide gauges",
        response_class=Response,
        responses={
            200: {"content": {"text/plain": {}}, "description": "The text exposition format"},
            **responses(401),
        },
    )
    async def metrics_route(request: Request) -> Response:
        if token is not None and not _bearer_matches(request, token):
            raise MetricsTokenRequired(
                "This endpoint needs the metrics token: Authorization: Bearer <token>."
            )
        db: Database = request.app.state.db
        current = gauges.get("current")
        if current is None or current.db is not db:  # a new lifespan (tests restart apps)
            current = gauges["current"] = ClusterGauges(db)
        await current.refresh(now=datetime.now(UTC))
        return Response(exposition(metrics, cluster), media_type=CONTENT_TYPE_LATEST)


def _bearer_matches(request: Request, token: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )
