"""HTTP rendering of errors as RFC 9457 problem details (`application/problem+json`).

Every `WarmlineError` becomes `{type, title, status, detail, code, ...details}`; request
validation failures become 422 with the field errors; nothing expected surfaces as a 500.
`responses(...)` declares them in OpenAPI, and `install` makes the document say what is sent:
problem details as `application/problem+json`, never FastAPI's own 422 body
(docs/api.md#errors, #openapi).
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.errors import WarmlineError

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://warmline.dev/problems/"


class Problem(BaseModel):
    """An RFC 9457 problem detail. Some problems add fields of their own (docs/api.md#errors)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": PROBLEM_BASE + "invalid_token",
                    "title": "Unauthorized",
                    "status": 401,
                    "detail": "This session has ended; log in again.",
                    "code": "invalid_token",
                }
            ]
        }
    )

    type: str = Field(description="`https://warmline.dev/problems/<code>`.")
    title: str = Field(description="The HTTP reason phrase of `status`.")
    status: int
    detail: str = Field(description="English text for people; may change, do not parse it.")
    code: str = Field(description="Stable and machine-readable.")


class FieldProblem(BaseModel):
    field: str = Field(
        description="Where: `body.<name>`, `query.<name>`, `path.<name>`.", examples=["body.email"]
    )
    problem: str = Field(examples=["Field required"])


class ValidationProblem(Problem):
    """A 422 problem detail: `invalid_request` lists what is wrong with each field."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": PROBLEM_BASE + "invalid_request",
                    "title": "Unprocessable Entity",
                    "status": 422,
                    "detail": "The request is not valid.",
                    "code": "invalid_request",
                    "errors": [{"field": "body.email", "problem": "Field required"}],
                }
            ]
        }
    )

    errors: list[FieldProblem] | None = Field(
        default=None, description="With `invalid_request`: every field refused, and why."
    )


def problem(status: int, code: str, detail: str, **extra: Any) -> JSONResponse:
    body = {
        "type": PROBLEM_BASE + code,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def install(app: FastAPI) -> None:
    build_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = problem_media_types(build_openapi())
        return app.openapi_schema

    # FastAPI's documented way to change the generated document (built once, on first use).
    app.openapi = openapi  # type: ignore[method-assign]

    @app.exception_handler(WarmlineError)
    async def _warmline(_request: Request, exc: WarmlineError) -> JSONResponse:
        response = problem(exc.status_code, exc.code, exc.message, **exc.details)
        if exc.status_code == 401:  # noqa: PLR2004
            response.headers["WWW-Authenticate"] = "Bearer"
        if exc.status_code == 429 and "retry_after" in exc.details:  # noqa: PLR2004
            response.headers["Retry-After"] = str(exc.details["retry_after"])
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in err["loc"]), "problem": err["msg"]}
            for err in exc.errors()
        ]
        return invalid_request(errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and isinstance(exc.__cause__, ValueError | RecursionError):  # noqa: PLR2004
            # FastAPI's body parser says 400 when the bytes are not UTF-8 or the JSON nests too
            # deep to decode; to a client that is the same mistake as JSON that does not parse.
            unreadable = (
                "The body is not UTF-8 text."
                if isinstance(exc.__cause__, UnicodeError)
                else "The body's JSON nests too deep to read."
            )
            return invalid_request([{"field": "body", "problem": unreadable}])
        code = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_")
        return problem(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error", exc_info=exc)
        return problem(500, "internal_error", "Something went wrong on the server.")


def invalid_request(errors: list[dict[str, str]]) -> JSONResponse:
    return problem(422, "invalid_request", "The request is not valid.", errors=errors)


_HEADERS: dict[int, dict[str, Any]] = {
    401: {
        "WWW-Authenticate": {
            "description": "Always `Bearer`.",
            "required": True,
            "schema": {"type": "string"},
        }
    },
    429: {
        "Retry-After": {
            "description": "Seconds to wait, when over the rate limit (`rate_limited`).",
            "schema": {"type": "integer"},
        }
    },
}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for the problem details a route may return."""
    return {
        status: {
            "model": ValidationProblem if status == 422 else Problem,  # noqa: PLR2004
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_JSON: {}},
            **({"headers": _HEADERS[status]} if status in _HEADERS else {}),
        }
        for status in statuses
    }


def problem_media_types(document: dict[str, Any]) -> dict[str, Any]:
    """Make an OpenAPI document say how errors are sent, in place; returns it.

    FastAPI writes a `responses=` model's schema under `application/json`, and adds its own 422
    (`HTTPValidationError`) to routes that declare none: neither is what a client receives.
    Every error response is moved to `application/problem+json`, and FastAPI's 422 becomes
    `ValidationProblem`.
    """
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                if not status.isdigit() or int(status) < 400:  # noqa: PLR2004
                    continue
                content = response.get("content", {})
                schema = content.pop("application/json", {}).get("schema")
                if schema == {"$ref": "#/components/schemas/HTTPValidationError"}:
                    schema = {"$ref": "#/components/schemas/ValidationProblem"}
                    response["description"] = HTTPStatus(422).phrase
                if schema is not None:
                    content[PROBLEM_JSON] = {**content.get(PROBLEM_JSON, {}), "schema": schema}
    schemas = document.get("components", {}).get("schemas", {})
    if schemas.pop("HTTPValidationError", None) is not None:
        # FastAPI's 422 shapes, referenced by nothing now; ValidationProblem stands for them.
        schemas.pop("ValidationError", None)
        if "ValidationProblem" not in schemas:
            generated = ValidationProblem.model_json_schema(
                ref_template="#/components/schemas/{model}"
            )
            schemas.update(generated.pop("$defs", {}))
            schemas["ValidationProblem"] = generated
    return document
