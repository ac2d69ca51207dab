"""Who is calling, and what they may do: the one place every REST route's access is decided.

A caller is a `Principal`: an agent (session token `wla_…`, scopes from the role) or another
system (API key `wlk_…`, the scopes an admin gave it). Both come as `Authorization: Bearer`.
Routes declare what they need with `Requires("scope")`, or `Requires("scope", staff=True)` when
the route is about the team (only supervisors and admins, or a key with the scope); `CurrentAgent`
stays for what only a person at the console does (canned responses, their own context).

`describe_access(router)` writes each route's requirement into the OpenAPI document
(`x-warmline-access`, a line of the description, and the 401, 403 and 429 it may answer), from
the same objects that enforce it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from app.api.deps import BearerDep, NowDep, SessionDep
from app.api.errors import responses
from app.api.ratelimit import enforce
from app.auth import keys as key_service
from app.auth import service as auth_service
from app.auth.errors import InvalidToken
from app.config import Settings
from app.errors import Forbidden
from app.store.models import Agent, ApiKey, Role


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of a request: exactly one of `agent` and `api_key` is set."""

    agent: Agent | None
    api_key: ApiKey | None
    scopes: frozenset[str]

    @property
    def agent_id(self) -> uuid.UUID | None:
        return self.agent.id if self.agent is not None else None

    @property
    def sees_all(self) -> bool:
        """Reads every conversation (a key, a supervisor, an admin), not only an agent's own."""
        return self.agent is None or self.agent.role is not Role.AGENT

    @property
    def is_staff(self) -> bool:
        return self.agent is not None and self.agent.role is not Role.AGENT

    def allows(self, scope: str) -> bool:
        return scope in self.scopes

    @property
    def label(self) -> str:
        """Who did it, for logs and audit lines: `agent:<id>` or `api_key:<id>`."""
        if self.agent is not None:
            return f"agent:{self.agent.id}"
        assert self.api_key is not None  # noqa: S101 - one of the two, by construction
        return f"api_key:{self.api_key.id}"


async def limit_key(request: Request, key: ApiKey) -> None:
    """Raises `RateLimited` (429, Retry-After) when `key` is over its request budget."""
    settings: Settings = request.app.state.settings
    await enforce(
        request.app.state.limiter,
        f"api_key:{key.id}",
        rate=settings.api_rate_limit,
        burst=settings.api_rate_burst,
    )


async def get_principal(
    request: Request, session: SessionDep, credentials: BearerDep, now: NowDep
) -> Principal:
    if credentials is None:
        raise InvalidToken(
            "Send an API key or an agent session token as `Authorization: Bearer <token>`."
        )
    token = credentials.credentials
    if key_service.is_api_key(token):
        key = await key_service.authenticate_api_key(session, token=token, now=now)
        await limit_key(request, key)
        return Principal(agent=None, api_key=key, scopes=key_service.effective_scopes(key.scopes))
    agent = await auth_service.authenticate_agent(session, token=token, now=now)
    return Principal(agent=agent, api_key=None, scopes=key_service.role_scopes(agent.role))


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


class Requires:
    """A dependency granting the route to callers holding `scope`.

    With `staff=True` an agent's session must also be a supervisor's or an admin's (keys are
    judged by their scopes alone). `agents=False` refuses session tokens entirely (a route for
    other systems only).
    """

    def __init__(self, scope: str, *, staff: bool = False, agents: bool = True) -> None:
        if scope not in key_service.SCOPES:
            raise ValueError(f"unknown scope {scope!r}")
        self.scope = scope
        self.staff = staff
        self.agents = agents

    async def __call__(self, principal: CurrentPrincipal) -> Principal:
        if principal.agent is not None:
            if not self.agents:
                raise Forbidden("This route is for API keys.", required_scope=self.scope)
            if self.staff and not principal.is_staff:
                raise Forbidden(
                    "Only supervisors and admins may do this.", required_role="supervisor"
                )
        if not principal.allows(self.scope):
            raise Forbidden(
                f"This needs the scope `{self.scope}`.",
                required_scope=self.scope,
                **({"required_role": "admin"} if self.scope == "admin" else {}),
            )
        return principal

    def describe(self) -> dict[str, Any]:
        return {"scope": self.scope, "staff_only": self.staff, "session_tokens": self.agents}

    def sentence(self) -> str:
        who = "an API key or a session token" if self.agents else "an API key"
        extra = " (a supervisor's or an admin's session)" if self.staff and self.agents else ""
        return f"Requires {who} with the scope `{self.scope}`{extra}."


AdminAccess = Annotated[Principal, Depends(Requires("admin"))]
ConversationsRead = Annotated[Principal, Depends(Requires("conversations:read"))]


def _requirements(dependant: Dependant) -> list[Requires]:
    found: list[Requires] = []
    for sub in dependant.dependencies:
        if isinstance(sub.call, Requires):
            found.append(sub.call)
        found.extend(_requirements(sub))
    return found


def route_requirements(route: APIRoute) -> list[Requires]:
    """The `Requires` a route depends on (directly or through other dependencies)."""
    return _requirements(route.dependant)


def describe_access(router: APIRouter) -> None:
    """Add each route's requirement to its OpenAPI operation (before the router is included)."""
    for route in router.routes:
        if not isinstance(route, APIRoute):
            continue
        needs = route_requirements(route)
        if not needs or "x-warmline-access" in (route.openapi_extra or {}):
            continue  # nothing to say, or said already (the routers outlive one app)
        extra = dict(route.openapi_extra or {})
        extra["x-warmline-access"] = [need.describe() for need in needs]
        route.openapi_extra = extra
        # No credential or a dead one, a live one without the scope, a key over its budget.
        route.responses = {**responses(401, 403, 429), **route.responses}
        lines = " ".join(need.sentence() for need in needs)
        route.description = f"{route.description}\n\n{lines}" if route.description else lines
