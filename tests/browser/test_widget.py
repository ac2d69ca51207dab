"""The visitor widget in headless Chromium against a real server, with protocol agents.

Each test loads the demo page (`/demo`, a shop with hostile CSS) from a `warmline serve`
subprocess and plays the agent's side with the e2e harness's `Client`. Docs: docs/widget.md.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from playwright.async_api import Browser, expect

from tests.browser.widget import Widget
from tests.conftest import Backend
from tests.e2e.harness import Client, Server, create_agent

pytestmark = [pytest.mark.browser, pytest.mark.asyncio]

XSS = "<img src=x onerror=alert(1)>"


@pytest_asyncio.fixture
async def server(sqlite_backend: Backend) -> AsyncIterator[Server]:
    started = await Server(sqlite_backend).start()
    try:
        yield started
    finally:
        await started.stop()


@pytest_asyncio.fixture
async def widget(browser: Browser, server: Server) -> AsyncIterator[Widget]:
    loaded = await Widget.load(browser, server)
    try:
        yield loaded
    finally:
        await loaded.close()


async def agent(server: Server, name: str, **skills: int) -> Client:
    client = await Client.agent(
        server, await create_agent(server.backend, name=name, skills=skills or {"billing": 5})
    )
    await client.connect()
    return client


class TestWidget:
    async def test_full_chat_with_an_agent(
        self, widget: Widget, server: Server, sqlite_backend: Backend
    ) -> None:
        """Pre-chat form, a message, the queue position while the only agent is busy, an agent
        who connects and joins, both ways with ticks and typing, unread count, then the close."""
        ann = await Client.agent(
            server,
            await create_agent(sqlite_backend, name="Ann", skills={"billing": 3}, capacity=1),
        )
        await ann.connect()
        busy = await Client.visitor(server, name="Busy")
        await busy.connect()
        await busy.message("keeping Ann busy", skill="billing")
        await ann.event("agent.joined")

        await widget.start(topic="billing")
        await widget.send("I was charged twice")
        await expect(widget.mine("I was charged twice")).to_have_attribute("data-state", "sent")
        await expect(widget.queue).to_have_text(re.compile(r"^You are next in line, about \d+ min"))

        dana = await agent(server, "Dana")
        joined = await dana.event("agent.joined")
        conversation = joined["conversation_id"]
        await expect(widget.notes.filter(has_text="Dana joined the chat.")).to_have_count(1)
        await expect(widget.queue).to_be_hidden()
        await expect(widget.title).to_have_text("Dana")
        first = await dana.event("message", body={"text": "I was charged twice"})

        await dana.send({"type": "read", "conversation_id": conversation, "seq": first["seq"]})
        await expect(widget.mine("I was charged twice")).to_have_attribute("data-state", "read")
        await dana.send({"type": "typing", "conversation_id": conversation, "state": "start"})
        await expect(widget.typing).to_have_text("Dana is typing…")
        await dana.message(
            "Sorry! Details: https://example.com/refunds.", conversation_id=conversation
        )
        await expect(widget.bubbles.last).to_have_text(
            "Sorry! Details: https://example.com/refunds."
        )
        await expect(widget.typing).to_be_hidden()
        link = widget.bubbles.last.locator("a")
        await expect(link).to_have_attribute("href", "https://example.com/refunds")
        await expect(link).to_have_attribute("rel", re.compile("noopener noreferrer"))
        await expect(link).to_have_attribute("target", "_blank")

        await widget.input.press_sequentially("Tha")
        await dana.next("typing", state="start", conversation_id=conversation)
        await widget.send("Thanks!")
        await dana.event("message", body={"text": "Thanks!"})
        await expect(widget.mine("Thanks!")).to_have_attribute("data-state", "sent")

        await widget.input.press("Escape")
        await expect(widget.panel).to_be_hidden()
        await expect(widget.launcher).to_be_focused()
        await dana.message("Anything else?", conversation_id=conversation)
        await expect(widget.badge).to_have_text("1")
        await expect(widget.launcher).to_have_attribute("aria-label", "Open chat, 1 unread")
        await widget.launcher.press("Enter")
        await expect(widget.input).to_be_focused()
        await expect(widget.badge).to_be_hidden()

        await dana.send({"type": "close", "conversation_id": conversation})
        await expect(widget.notes.last).to_have_text(
            "The chat has ended. Write again to start a new one."
        )
        await expect(widget.bubbles).to_have_text(
            ["I was charged twice", re.compile("^Sorry!"), "Thanks!", "Anything else?"]
        )

    async def test_warm_transfer_is_announced(self, widget: Widget, server: Server) -> None:
        """Ann hands the chat to Bob with a warm transfer; when Bob accepts the visitor reads
        that Bob from Billing joined and has the conversation so far."""
        ann = await agent(server, "Ann")
        await widget.start(topic="billing")
        await widget.send("Refund please")
        conversation = (await ann.event("agent.joined"))["conversation_id"]
        await expect(widget.title).to_have_text("Ann")

        bob = await agent(server, "Bob")
        await ann.send(
            {
                "type": "transfer",
                "conversation_id": conversation,
                "to": {"agent_id": bob.welcome["session"]["id"]},
                "note": "Refund over my limit",
            }
        )
        offer = await bob.next("transfer_offer")
        await bob.send({"type": "transfer_accept", "transfer_id": offer["transfer_id"]})
        await expect(
            widget.notes.filter(
                has_text="Bob from Billing joined and has your conversation so far."
            )
        ).to_have_count(1)
        await expect(widget.notes.filter(has_text="Ann handed your chat over.")).to_have_count(1)
        await expect(widget.title).to_have_text("Bob")
        await bob.message("Hi, Bob here.", conversation_id=conversation)
        await expect(widget.bubbles.last).to_have_text("Hi, Bob here.")

    async def test_reload_keeps_the_conversation(self, widget: Widget, server: Server) -> None:
        """After a reload the whole conversation is there once, in order, and goes on."""
        dana = await agent(server, "Dana")
        await widget.start(topic="billing")
        await widget.send("first")
        conversation = (await dana.event("agent.joined"))["conversation_id"]
        await dana.message("second", conversation_id=conversation)
        await expect(widget.bubbles.last).to_have_text("second")
        await widget.send("third")
        await expect(widget.mine("third")).to_have_attribute("data-state", "sent")

        await widget.page.reload()
        await widget.open()
        await expect(widget.bubbles).to_have_text(["first", "second", "third"])
        await expect(widget.notes).to_have_text(["Dana joined the chat."])
        await expect(widget.title).to_have_text("Dana")
        await expect(widget.input).to_be_focused()  # no pre-chat form again
        await widget.send("fourth")
        stored = await dana.event("message", body={"text": "fourth"})
        assert stored["conversation_id"] == conversation
        await expect(widget.bubbles).to_have_text(["first", "second", "third", "fourth"])

    async def test_offline_and_back_delivers_once(self, widget: Widget, server: Server) -> None:
        """A message typed while the page is offline waits, marked unsent, behind a clear
        reconnecting notice; back online it is delivered exactly once."""
        dana = await agent(server, "Dana")
        await widget.start(topic="billing")
        await widget.send("hello")
        conversation = (await dana.event("agent.joined"))["conversation_id"]

        await widget.context.set_offline(True)
        await expect(widget.banner).to_have_text(re.compile("^Reconnecting"))
        await widget.send("typed while offline")
        await expect(widget.mine("typed while offline")).to_have_attribute("data-state", "sending")
        await dana.message("written while they were away", conversation_id=conversation)

        await widget.context.set_offline(False)
        await expect(widget.mine("typed while offline")).to_have_attribute("data-state", "sent")
        await expect(widget.banner).to_be_hidden()
        await dana.event("message", body={"text": "typed while offline"})
        again = [
            f for f in await dana.quiet(1.0) if f.get("body") == {"text": "typed while offline"}
        ]
        assert again == []
        assert [e["body"]["text"] for e in dana.events[conversation] if e["kind"] == "message"] == [
            "hello",
            "written while they were away",
            "typed while offline",
        ]
        await expect(widget.bubbles).to_have_text(
            ["hello", "written while they were away", "typed while offline"]
        )

    async def test_markup_is_shown_as_text(self, widget: Widget, server: Server) -> None:
        """HTML from the agent or the visitor is shown as its characters and runs nothing;
        only http(s) URLs become links."""
        dana = await agent(server, "Dana")
        await widget.start(topic="billing")
        await widget.send(XSS)
        conversation = (await dana.event("agent.joined"))["conversation_id"]
        await dana.event("message", body={"text": XSS})
        await dana.message(XSS, conversation_id=conversation)
        await dana.message("javascript:alert(2) <a href=x>y</a>", conversation_id=conversation)
        await expect(widget.bubbles).to_have_text([XSS, XSS, "javascript:alert(2) <a href=x>y</a>"])
        await expect(widget.panel.locator(".log img, .log a")).to_have_count(0)
        # a last round trip gives any injected handler time to have fired
        await dana.message("done", conversation_id=conversation)
        await expect(widget.bubbles.last).to_have_text("done")
        assert widget.dialogs == []

    async def test_host_css_does_not_reach_the_widget(self, widget: Widget) -> None:
        """The demo shop's `* { … !important }` rules change nothing inside the widget, and the
        widget's rules change nothing on the page."""
        await widget.open()
        styles = await widget.page.locator("warmline-chat").evaluate(
            """host => {
                const root = host.shadowRoot;
                const css = (sel) => getComputedStyle(root.querySelector(sel));
                const greeting = css('.greeting'), start = css('.prechat .primary');
                return {
                    greetingColor: greeting.color, greetingFont: greeting.fontFamily,
                    greetingLine: greeting.lineHeight, startBg: start.backgroundColor,
                    startTransform: start.textTransform, startRadius: start.borderRadius,
                    launcherOutline: css('.launcher').outlineStyle,
                    icon: css('.launcher svg').display,
                };
            }"""
        )
        assert styles == {
            "greetingColor": "rgb(75, 85, 99)",
            "greetingFont": styles["greetingFont"],
            "greetingLine": styles["greetingLine"],
            "startBg": "rgb(79, 70, 229)",
            "startTransform": "none",
            "startRadius": "8px",
            "launcherOutline": "none",
            "icon": "block",
        }
        assert "Comic" not in styles["greetingFont"]
        assert styles["greetingLine"] != "normal"
        assert float(styles["greetingLine"].removesuffix("px")) < 25  # not the page's 2.2em
        host_paragraph = widget.page.locator("footer p.launcher")
        assert await host_paragraph.evaluate("p => getComputedStyle(p).position") == "static"
