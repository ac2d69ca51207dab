"""Agent sessions over REST (docs/api.md#authentication): login, who am I, logout, and what a
logged-out token can still do (nothing), on both backends."""

from __future__ import annotations

import httpx
import pytest

from app.store.models import Role
from tests.conftest import Backend
from tests.e2e.harness import PASSWORD, Client, Server, create_agent

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]


async def login(http: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await http.post("/api/v1/auth/login", json={"email": email, "password": password})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class TestSessions:
    async def test_login_me_logout(self, backend: Backend) -> None:
        """Two logins give two sessions; logging one out refuses that token on REST and on the
        WebSocket `hello`, while the other session goes on."""
        email = await create_agent(backend, name="Kit", role=Role.SUPERVISOR)
        server = await Server(backend).start()
        try:
            async with httpx.AsyncClient(base_url=server.http) as http:
                first = await login(http, f"  {email.upper()} ")  # spaces and case don't matter
                assert first.status_code == 200, first.text
                body = first.json()
                assert body["token"].startswith("wla_")
                assert body["agent"]["email"] == email
                assert body["agent"]["role"] == "supervisor"
                assert body["agent"]["status"] == "offline"  # a login is not presence
                second = (await login(http, email)).json()["token"]
                assert second != body["token"]

                me = await http.get("/api/v1/auth/me", headers=bearer(body["token"]))
                assert me.status_code == 200, me.text
                assert me.json() == body["agent"]

                out = await http.post("/api/v1/auth/logout", headers=bearer(body["token"]))
                assert out.status_code == 204
                gone = await http.get("/api/v1/auth/me", headers=bearer(body["token"]))
                assert (gone.status_code, gone.json()["code"]) == (401, "invalid_token")
                assert gone.headers["www-authenticate"] == "Bearer"
                again = await http.post("/api/v1/auth/logout", headers=bearer(body["token"]))
                assert again.status_code == 401
                assert (
                    await http.get("/api/v1/auth/me", headers=bearer(second))
                ).status_code == 200

            refused = Client(server, "agent", body["token"])
            await refused.connect(hello=False)
            await refused.send({"type": "hello", "token": body["token"]})
            closed = await refused.closed()
            assert closed.code == 4001
            assert "invalid_token" in closed.reason
            still = Client(server, "agent", second)
            welcome = await still.connect()
            assert welcome["session"]["role"] == "agent"
            await still.close()
        finally:
            await server.stop()

    async def test_wrong_password_and_unknown_email_answer_alike(self, backend: Backend) -> None:
        """A wrong password and an unknown email get the same 401, with no hint which it was."""
        email = await create_agent(backend, name="Lou")
        server = await Server(backend).start()
        try:
            async with httpx.AsyncClient(base_url=server.http) as http:
                wrong = await login(http, email, "not-the-password")
                unknown = await login(http, "nobody@example.com")
                for response in (wrong, unknown):
                    assert response.status_code == 401
                    assert response.json()["code"] == "invalid_credentials"
                assert wrong.json()["detail"] == unknown.json()["detail"]
                missing = await http.post("/api/v1/auth/login", json={"email": email})
                assert missing.status_code == 422
                assert [e["field"] for e in missing.json()["errors"]] == ["body.password"]
                assert (await http.post("/api/v1/auth/logout")).status_code == 401
        finally:
            await server.stop()
