"""Several tabs of the same visitor, live (docs/widget.md#several-tabs): two pages of one
browser context share the visitor; what one does reaches the other at once, and the outbox is
sent by one tab only."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, WebSocket, expect

from tests.browser.test_identity import call
from tests.browser.test_widget import agent
from tests.browser.widget import Widget
from tests.conftest import Backend
from tests.e2e.harness import Server

pytestmark = [pytest.mark.browser, pytest.mark.asyncio]


@pytest_asyncio.fixture
async def server(sqlite_backend: Backend) -> AsyncIterator[Server]:
    started = await Server(sqlite_backend).start()
    try:
        yield started
    finally:
        await started.stop()


@pytest_asyncio.fixture
async def tabs(browser: Browser, server: Server) -> AsyncIterator[tuple[Widget, Widget]]:
    context = await browser.new_context()
    pages = [await context.new_page(), await context.new_page()]
    widgets = [Widget(context, page, server) for page in pages]
    for page in pages:
        await page.goto(f"{server.http}/demo")
    try:
        yield widgets[0], widgets[1]
    finally:
        assert not widgets[1].page_errors, widgets[1].page_errors
        await widgets[0].close()


def sent_frames(*pages: Page) -> list[str]:
    """Every frame these pages send over their WebSockets from now on."""
    frames: list[str] = []

    def on_socket(ws: WebSocket) -> None:
        ws.on("framesent", lambda payload: frames.append(str(payload)))

    for page in pages:
        page.on("websocket", on_socket)
    return frames


class TestTabs:
    async def test_two_tabs_stay_in_step(self, tabs: tuple[Widget, Widget], server: Server) -> None:
        """A message sent in one tab shows pending in the other at once and is sent once; the
        rating and "Start a new chat" reach the other tab; a logout in one empties the other
        and closes its socket."""
        one, two = tabs
        frames = sent_frames(one.page, two.page)
        dana = await agent(server, "Dana")
        await one.start(topic="billing")
        await one.send("hello")
        conversation = (await dana.event("agent.joined"))["conversation_id"]
        await two.open()  # the other tab joined in when the session started
        await expect(two.bubbles).to_have_text(["hello"])
        await expect(two.title).to_have_text("Dana")

        await one.context.set_offline(True)
        await expect(two.banner).to_have_text(re.compile("^Reconnecting"))
        await one.send("sent while offline")
        await expect(two.mine("sent while offline")).to_have_attribute("data-state", "sending")
        await one.context.set_offline(False)
        for tab in tabs:
            await expect(tab.mine("sent while offline")).to_have_attribute("data-state", "sent")
        await dana.event("message", body={"text": "sent while offline"})
        await dana.quiet(1.0)
        assert sum("sent while offline" in f for f in frames) == 1, frames

        await dana.send({"type": "close", "conversation_id": conversation})
        await expect(two.notes.last).to_have_text("The chat has ended.")
        await one.page.get_by_role("radio", name="5 — Very happy").click()
        await one.page.get_by_role("button", name="Send rating").click()
        for tab in tabs:
            await expect(tab.panel.locator(".thanks")).to_have_text("Thank you for your feedback!")

        await two.page.get_by_role("button", name="Start a new chat").click()
        await expect(one.panel.locator(".log > *")).to_have_count(0)
        await expect(one.input).to_be_visible()
        await one.send("one more thing")
        await expect(two.bubbles).to_have_text(["one more thing"])

        await call(two.page, "logout")
        await expect(one.panel.locator(".log > *")).to_have_count(0)
        await expect(one.page.locator("warmline-chat .wl")).to_have_attribute(
            "data-connection", "idle"
        )
        await expect(one.page.get_by_role("button", name="Start chat")).to_be_visible()
