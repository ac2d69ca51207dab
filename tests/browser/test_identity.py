"""The widget with a verified identity (the host site's signed token) and after a closed chat,
in headless Chromium against a real server. Docs: docs/widget.md#verified-identity."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, expect
from sqlalchemy import select

from app.store.models import Conversation, Visitor
from tests.browser.test_widget import agent, rows
from tests.browser.widget import Widget
from tests.conftest import Backend
from tests.e2e.harness import Server

pytestmark = [pytest.mark.browser, pytest.mark.asyncio]

SECRET = "host-site-and-warmline-share-this-secret"


def identity(sub: str, secret: str = SECRET, **claims: Any) -> str:
    """An identity token as the host site's backend mints it."""
    return jwt.encode({"sub": sub, "exp": int(time.time()) + 600, **claims}, secret, "HS256")


@pytest_asyncio.fixture
async def server(sqlite_backend: Backend) -> AsyncIterator[Server]:
    started = await Server(sqlite_backend, identity_secret=SECRET).start()
    try:
        yield started
    finally:
        await started.stop()


async def load(browser: Browser, server: Server, token: str | None = None) -> Widget:
    """The demo page, with `data-identity-token` on its widget tag when `token` is given
    (set once the page is parsed, before module scripts run)."""
    context = await browser.new_context()
    page = await context.new_page()
    if token:
        await page.add_init_script(
            "document.addEventListener('readystatechange', () => {"
            " const s = document.querySelector('script[src$=\"widget.js\"]');"
            f" if (document.readyState === 'interactive') s.dataset.identityToken = {token!r}; }});"
        )
    widget = Widget(context, page, server)
    await page.goto(f"{server.http}/demo")
    return widget


async def call(page: Page, method: str, *args: str) -> None:
    """window.Warmline.<method>(...args), awaited."""
    await page.evaluate(f"args => window.Warmline.{method}(...args)", list(args))


async def start_with_topic(widget: Widget) -> None:
    """A verified visitor's pre-chat form: the topic only."""
    page = widget.page
    await expect(page.get_by_label("Topic")).to_be_visible()
    await expect(page.get_by_label("Name", exact=True)).to_be_hidden()
    await expect(page.get_by_label("Email", exact=True)).to_be_hidden()
    await page.get_by_label("Topic").select_option("billing")
    await page.get_by_role("button", name="Start chat").click()
    await expect(widget.input).to_be_focused()


class TestIdentity:
    async def test_verified_vip_skips_name_and_email(
        self, browser: Browser, server: Server
    ) -> None:
        """A signed VIP from the tag: only the topic is asked, and the agent sees the verified
        name, the verified flag and the VIP priority."""
        token = identity("crm-7", name="Vera Verified", email="vera@example.com", priority="vip")
        widget = await load(browser, server, token)
        dana = await agent(server, "Dana")
        await widget.open()
        await start_with_topic(widget)
        await widget.send("Hello from a VIP")
        opened = await dana.event("conversation.opened")
        assert opened["body"]["priority"] == 2
        assert opened["body"]["visitor"]["name"] == "Vera Verified"
        assert opened["body"]["visitor"]["verified"] is True
        await dana.event("message", body={"text": "Hello from a VIP"})
        assert widget.warnings == []
        await widget.close()

    async def test_refused_token_falls_back_to_anonymous(
        self, browser: Browser, server: Server
    ) -> None:
        """A token signed with another secret: a console warning, the full pre-chat form, and
        the chat works as an anonymous one."""
        widget = await load(browser, server, identity("crm-7", secret="x" * 40, priority="vip"))
        dana = await agent(server, "Dana")
        await widget.start(name="Ada")
        await widget.send("Still works?")
        opened = await dana.event("conversation.opened")
        assert opened["body"]["visitor"] == {**opened["body"]["visitor"], "verified": False}
        assert opened["body"]["priority"] == 0
        conversation = opened["conversation_id"]
        await dana.message("Yes.", conversation_id=conversation)
        await expect(widget.bubbles).to_have_text(["Still works?", "Yes."])
        assert any("identity token refused" in w for w in widget.warnings)
        await widget.close()

    async def test_another_user_on_the_same_device_starts_afresh(
        self, browser: Browser, server: Server
    ) -> None:
        """identify() one user, chat, logout(), identify() another: the second user sees none
        of the first one's chat, now or after a reload, and the server keeps two visitors."""
        widget = await load(browser, server)
        dana = await agent(server, "Dana")
        page = widget.page
        await call(page, "identify", identity("crm-1", name="One"))
        await widget.open()
        await start_with_topic(widget)
        await widget.send("secret of user one")
        first = (await dana.event("message", body={"text": "secret of user one"}))[
            "conversation_id"
        ]
        await dana.message("answer for one", conversation_id=first)
        await expect(widget.bubbles).to_have_text(["secret of user one", "answer for one"])

        await call(page, "logout")
        await expect(widget.panel.locator(".log > *")).to_have_count(0)
        await expect(page.get_by_label("Name", exact=True)).to_be_visible()  # anonymous again
        stored = json.loads(await page.evaluate(f"localStorage['warmline:{server.http}']"))
        assert {k: v for k, v in stored.items() if v} == {}  # no token, conversation, user

        await call(page, "identify", identity("crm-2", name="Two"))
        await start_with_topic(widget)
        await widget.send("user two here")
        second = (await dana.event("message", body={"text": "user two here"}))["conversation_id"]
        assert second != first
        await dana.message("answer for two", conversation_id=second)
        await expect(widget.bubbles).to_have_text(["user two here", "answer for two"])
        await page.reload()
        await widget.open()
        await expect(widget.bubbles).to_have_text(["user two here", "answer for two"])
        owners = await rows(
            server,
            select(Visitor.external_id, Visitor.name)
            .join(Conversation, Conversation.visitor_id == Visitor.id)
            .order_by(Conversation.created_at),
        )
        assert owners == [("crm-1", "One"), ("crm-2", "Two")]

        # a user switch without a logout in between forgets just as well
        await call(page, "identify", identity("crm-1", name="One"))
        await expect(widget.panel.locator(".log > *")).to_have_count(0)
        await expect(page.get_by_label("Topic")).to_be_visible()
        await widget.close()

    async def test_reload_after_the_close(self, browser: Browser, server: Server) -> None:
        """A reload after the agent closed shows the log once and the rating; once rated, a
        reload shows the thank-you instead."""
        widget = await load(browser, server)
        dana = await agent(server, "Dana")
        page = widget.page
        await widget.start()
        await widget.send("Where is my parcel?")
        conversation = (await dana.event("agent.joined"))["conversation_id"]
        await dana.message("On its way.", conversation_id=conversation)
        await dana.send({"type": "close", "conversation_id": conversation})
        await expect(widget.notes.last).to_have_text("The chat has ended.")

        rate = page.get_by_role("button", name="Send rating")
        thanks = widget.panel.locator(".thanks")
        for rated in (False, True):
            await page.reload()
            await widget.open()
            await expect(widget.bubbles).to_have_text(["Where is my parcel?", "On its way."])
            await expect(widget.notes).to_have_text(
                ["Dana joined the chat.", "The chat has ended."]
            )
            await expect(widget.input).to_be_hidden()
            await expect(page.get_by_role("button", name="Download transcript")).to_be_visible()
            if not rated:
                await expect(rate).to_be_visible()
                await page.get_by_role("radio", name="5 — Very happy").click()
                await rate.click()
                await expect(thanks).to_have_text("Thank you for your feedback!")
            else:
                await expect(rate).to_be_hidden()
                await expect(thanks).to_have_text("Thank you for your feedback!")
        await widget.close()
