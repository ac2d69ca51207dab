"""`create_app(settings)`: the FastAPI application and its lifespan wiring.

The lifespan opens the database (refusing to start on an outdated schema), starts the bus and
the hub's background loops, and on shutdown closes every socket with 1001 so clients resume
on another node. Must not hold business logic. Reference: docs/operations.md.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp
from typing_extensions import override

from app import __version__, web
from app.api import errors as api_errors
from app.api import metrics as metrics_api
from app.api.access import describe_access
from app.api.http_metrics import HttpMetrics
from app.api.ratelimit import create_limiter
from app.api.request_id import RequestId
from app.api.v1 import admin_agents as admin_agents_api
from app.api.v1 import admin_routing as admin_routing_api
from app.api.v1 import admin_skills as admin_skills_api
from app.api.v1 import api_keys as api_keys_api
from app.api.v1 import attachments as attachments_api
from app.api.v1 import auth as auth_api
from app.api.v1 import canned_responses as canned_responses_api
from app.api.v1 import conversation_writes as conversation_writes_api
from app.api.v1 import conversations as conversations_api
from app.api.v1 import dispositions as dispositions_api
from app.api.v1 import handoff as handoff_api
from app.api.v1 import privacy as privacy_api
from app.api.v1 import quality as quality_api
from app.api.v1 import reports as reports_api
from app.api.v1 import team as team_api
from app.api.v1 import transcripts as transcripts_api
from app.api.v1 import visitor_conversations as visitor_conversations_api
from app.api.v1 import visitors as visitors_api
from app.api.v1 import webhooks as webhooks_api
from app.bus.base import BusUnavailable, create_bus
from app.config import Settings
from app.errors import ServiceUnavailable
from app.files import open_store
from app.files import types as filetypes
from app.logging import configure as configure_logging
from app.metrics import Metrics, worker_exited
from app.realtime import endpoints as realtime_endpoints
from app.realtime.hub import Hub, default_node_name
from app.realtime.sla_watch import SlaWatch
from app.store.db import Database

log = logging.getLogger(__name__)


class Warmline(FastAPI):
    """FastAPI with the request id and the HTTP metrics outside Starlette's error middleware, so
    that a 500 carries the id and is counted as a 500 (`add_middleware` would place them inside)."""

    def __init__(self, *, metrics: Metrics, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.metrics = metrics

    @override
    def build_middleware_stack(self) -> ASGIApp:
        return RequestId(HttpMetrics(super().build_middleware_stack(), self.metrics))


def _include_routers(app: FastAPI) -> None:
    for router in (
        auth_api.router,
        visitors_api.router,
        visitor_conversations_api.router,
        conversations_api.router,
        transcripts_api.router,  # after it: /conversations/offline is not an id
        conversation_writes_api.router,
        admin_skills_api.router,
        admin_agents_api.router,
        admin_routing_api.router,
        handoff_api.router,
        attachments_api.router,
        attachments_api.visitor_router,
        canned_responses_api.router,
        canned_responses_api.admin_router,
        dispositions_api.router,
        team_api.router,
        privacy_api.router,
        reports_api.router,
        quality_api.router,
        api_keys_api.router,
        webhooks_api.router,
    ):
        describe_access(router)  # each route's scope into OpenAPI, from what enforces it
        app.include_router(router, prefix="/api/v1")
    app.include_router(realtime_endpoints.router)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application. Without `settings`, they are read from the environment."""
    settings = settings or Settings()
    configure_logging(settings.log_level, json=settings.log_json)
    # Refused before anything starts: a typo in the list must not silently accept nothing.
    attachment_types = filetypes.accepted(settings.attachment_types)
    metrics = Metrics()  # this app's own registry: docs/metrics.md#prometheus-metrics

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database(
            settings.database_url,
            process=f"warmline.{settings.node_name or 'serve'}",
            metrics=metrics,
        )
        try:
            await db.check_schema()
        except Exception:
            await db.dispose()
            raise
        node = settings.node_name or default_node_name()
        bus = create_bus(settings.redis_url, node=node, metrics=metrics)
        await bus.start()
        files = open_store(
            settings.attachment_store,
            s3_endpoint_url=settings.s3_endpoint_url,
            s3_region=settings.s3_region,
        )
        hub = Hub(settings=settings, db=db, bus=bus, node=node, files=files)
        # Before serving: every event this node writes from now on sees the webhook endpoints.
        await hub.webhooks.load()
        hub.start()
        # The live SLA breach detector (docs/operations.md#sla-breach-detector).
        sla_watch = SlaWatch(hub, interval=settings.sla_watch_interval)
        sla_watch.start()
        app.state.db = db
        app.state.bus = bus
        app.state.hub = hub
        app.state.files = files
        app.state.limiter = create_limiter(settings.redis_url)
        log.info(
            "warmline node %s ready (database: %s, bus: %s, attachments: %s)",
            hub.node,
            "sqlite" if db.is_sqlite else "postgresql",
            "redis" if settings.redis_url else "in-process",
            files.where,
        )
        try:
            yield
        finally:
            await sla_watch.stop()
            await hub.stop()
            await bus.stop()
            await files.close()
            await app.state.limiter.aclose()
            await db.dispose()
            worker_exited()

    app = Warmline(
        metrics=metrics,
        title="Warmline",
        version=__version__,
        summary="Live chat with skill-based routing and warm transfers.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.attachment_types = attachment_types
    if settings.allowed_origins:
        # The widget runs on customers' sites and calls the REST API from there. Tokens travel
        # in headers and bodies, never cookies, so credentials stay off.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.allowed_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            # X-Request-Id: a page may name its request, and read the id to quote it.
            allow_headers=["Authorization", "Content-Type", "X-Request-Id"],
            # The widget names a downloaded transcript from Content-Disposition.
            expose_headers=["Content-Disposition", "X-Request-Id"],
            max_age=600,
        )
    api_errors.install(app)
    _include_routers(app)
    web.install(app)  # the visitor widget at /widget/ and its demo page at /demo

    _install_probes(app, settings)
    metrics_api.install(app, settings, metrics)
    return app


def _install_probes(app: FastAPI, settings: Settings) -> None:
    """`/healthz` (the process answers) and `/readyz` (its dependencies do)."""

    @app.get("/healthz", tags=["operations"], summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="The database, the attachment store (and Redis, when configured) answer",
        responses={503: {"description": "A dependency does not answer"}},
    )
    async def readyz(request: Request) -> JSONResponse:
        checks: dict[str, str] = {}
        db: Database = request.app.state.db
        try:
            await db.ping()
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"unavailable: {type(exc).__name__}"
        if settings.redis_url:
            try:
                await request.app.state.bus.ping()
                checks["redis"] = "ok"
            except BusUnavailable as exc:
                checks["redis"] = f"unavailable: {type(exc).__name__}"
        try:
            await request.app.state.files.ping()
            checks["files"] = "ok"
        except ServiceUnavailable as exc:
            checks["files"] = f"unavailable: {exc.message}"
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "unavailable", "checks": checks},
            status_code=200 if ready else 503,
        )
