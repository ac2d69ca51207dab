"""HTTP requests counted by route template (app/api/http_metrics.py): what an operator's
dashboard groups by must be the route, whatever the path, prefix or outcome."""

from __future__ import annotations

import uuid

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from starlette.staticfiles import StaticFiles

from app.api.http_metrics import HttpMetrics
from app.metrics import Metrics

pytestmark = pytest.mark.asyncio


def build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Metrics, httpx.AsyncClient]:
    router = APIRouter(prefix="/things")

    @router.get("/{thing_id}")
    async def get_thing(thing_id: uuid.UUID) -> dict[str, str]:
        return {"id": str(thing_id)}

    @router.post("/{thing_id}/break")
    async def break_thing(thing_id: uuid.UUID) -> None:
        raise RuntimeError("boom")

    app = FastAPI()
    app.include_router(router, prefix="/api/v9")
    files = tmp_path_factory.mktemp("files")
    (files / "a.txt").write_text("a")
    app.mount("/files", StaticFiles(directory=files), name="files")
    metrics = Metrics()
    transport = httpx.ASGITransport(app=HttpMetrics(app, metrics), raise_app_exceptions=False)
    return metrics, httpx.AsyncClient(transport=transport, base_url="http://test")


def count(metrics: Metrics, method: str, route: str, status: str) -> float:
    found = metrics.registry.get_sample_value(
        "warmline_http_requests_total", {"method": method, "route": route, "status": status}
    )
    return found or 0.0


async def test_routes_prefixes_mounts_and_errors(tmp_path_factory: pytest.TempPathFactory) -> None:
    metrics, http = build(tmp_path_factory)
    async with http:
        one, two = uuid.uuid4(), uuid.uuid4()
        assert (await http.get(f"/api/v9/things/{one}")).status_code == 200
        # The same id spelled in capitals is the same route.
        assert (await http.get(f"/api/v9/things/{str(two).upper()}")).status_code == 200
        assert (await http.get("/api/v9/things/not-a-uuid")).status_code == 422
        assert (await http.post(f"/api/v9/things/{one}/break")).status_code == 500
        assert (await http.get("/files/a.txt")).status_code == 200
        assert (await http.get("/files/missing.txt")).status_code == 404
        assert (await http.get("/wp-login.php")).status_code == 404
        assert (await http.request("BREW", f"/api/v9/things/{one}")).status_code == 405

    thing = "/api/v9/things/{thing_id}"
    assert count(metrics, "GET", thing, "200") == 2
    assert count(metrics, "GET", thing, "422") == 1
    # An exception is counted with the 500 the client got.
    assert count(metrics, "POST", "/api/v9/things/{thing_id}/break", "500") == 1
    assert count(metrics, "GET", "/files/{path}", "200") == 1
    assert count(metrics, "GET", "/files/{path}", "404") == 1
    # Paths that match nothing are one series, not one per path a scanner tries.
    assert count(metrics, "GET", "unmatched", "404") == 1
    assert count(metrics, "other", thing, "405") == 1
    duration = metrics.registry.get_sample_value(
        "warmline_http_request_duration_seconds_count", {"method": "GET", "route": thing}
    )
    assert duration == 3
