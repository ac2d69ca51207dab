"""The request id: which incoming ids are kept, and that every response carries one, a 500
and a streamed body included (the middleware wraps Starlette's error handling, in process)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi.responses import StreamingResponse

from app.api import errors as api_errors
from app.api.request_id import accepted, new_id
from app.main import Warmline
from app.metrics import Metrics


def app_with_routes() -> Warmline:
    app = Warmline(metrics=Metrics())
    api_errors.install(app)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def lines() -> AsyncIterator[bytes]:
            for n in range(3):
                yield f"{n}\n".encode()

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    return app


async def get(path: str, **headers: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app_with_routes(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        return await http.get(path, headers=headers)


class TestAccepted:
    @pytest.mark.parametrize(
        "given",
        ["abc", "0f8fad5b-d9cb-469f-a165-70867728950e", "edge-7f3a:01", "a/b+c=d@e.f_g", "x" * 128],
    )
    def test_well_formed_ids_are_kept(self, given: str) -> None:
        assert accepted(given) == given

    @pytest.mark.parametrize(
        "given", [None, "", "x" * 129, "a b", "a\tb", 'a"b', "a\nb", "é", "a;b", "<script>"]
    )
    def test_others_are_refused(self, given: str | None) -> None:
        """Spaces, quotes, control and non-ASCII characters, or more than 128 characters: the
        server makes its own instead (logs and headers stay clean)."""
        assert accepted(given) is None

    def test_new_ids_are_accepted_and_distinct(self) -> None:
        ids = {new_id() for _ in range(100)}
        assert len(ids) == 100
        assert all(accepted(i) == i and len(i) == 32 for i in ids)


@pytest.mark.asyncio
class TestResponses:
    async def test_a_500_carries_the_id(self, caplog: pytest.LogCaptureFixture) -> None:
        """An unexpected exception's problem detail has the request's id too."""
        with caplog.at_level(logging.CRITICAL):  # the handler logs the bug; not this test's noise
            response = await get("/boom", **{"X-Request-Id": "trace-500"})
        assert response.status_code == 500
        assert response.headers["x-request-id"] == "trace-500"
        assert response.json()["code"] == "internal_error"

    async def test_a_streamed_body_is_passed_through_with_the_id(self) -> None:
        response = await get("/stream")
        assert response.text == "0\n1\n2\n"
        assert accepted(response.headers["x-request-id"]) is not None

    async def test_one_header_only(self) -> None:
        """An id is never doubled, whatever the route set."""
        response = await get("/nowhere", **{"X-Request-Id": "abc"})
        assert response.status_code == 404
        assert response.headers.get_list("x-request-id") == ["abc"]
