"""Counts and times every HTTP request by route template for `/metrics`
(`warmline_http_requests_total`, `warmline_http_request_duration_seconds`;
docs/metrics.md#prometheus-metrics).

Pure ASGI, like `request_id`, and placed just inside it, outside Starlette's error middleware: a
request that raised is counted with the 500 it was answered with. The route label is the
template the router matched (`/api/v1/conversations/{conversation_id}`), never the raw path, so
the number of series stays bounded by the number of routes; a request that matched nothing is
counted under `unmatched`. The time runs until the last body chunk has been sent, so a streamed
export counts its whole length. WebSocket connections are counted by `realtime` instead.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.metrics import UNMATCHED_ROUTE, Metrics


def route_template(scope: Scope, root_path: str = "") -> str:
    """The path template of the route the router matched for this request, if any.

    A route of an included router knows only its own part of the template
    (`/conversations/{conversation_id}`); the prefixes it was included under (`/api/v1`) are
    the part of the path before what the route matched, taken from the path itself. A mount
    (the widget's and the console's files) is one series, `<prefix>/{path}`: the router
    extends the scope's `root_path` by its prefix (`root_path`: the one the request came with).
    """
    route: Any = scope.get("route")
    if isinstance(route, Mount):
        return route.path + "/{path}"
    mounted = str(scope.get("root_path", ""))[len(root_path) :]
    if route is None and mounted:
        return mounted + "/{path}"
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not isinstance(template, str) or not template:
        return UNMATCHED_ROUTE
    matched = template
    for name, value in scope.get("path_params", {}).items():
        matched = matched.replace("{" + name + "}", str(value))
    path: str = scope.get("path", "")
    if path.lower().endswith(matched.lower()):
        return path[: len(path) - len(matched)] + template
    return template


class HttpMetrics:
    """ASGI middleware: one count and one duration per HTTP request, by route template."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        root_path = str(scope.get("root_path", ""))
        status = 500  # what the client gets if the application raises before answering

        async def send_counting(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_counting)
        finally:
            self.metrics.http_request(
                scope["method"],
                route_template(scope, root_path),
                status,
                time.perf_counter() - started,
            )
