"""The visitor widget in headless Chromium against a real server, with protocol agents.

Each test loads the demo page (`/demo`, a shop with hostile CSS) from a `warmline serve`
subprocess and plays the agent's side with the e2e harness's `Client`. Docs: docs/widget.md.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, expect
from sqlalchemy import select

from app.store.db import Database
from app.store.models import Conversation, ConversationEvent, Visitor
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


async def agent(server: Server, name: str, **skills: int) -> Client:
    client = await Client.agent(
        server, await create_agent(server.backend, name=name, skills=skills or {"billing": 5})
    )
    await client.connect()
    return client


async def rows(server: Server, statement: Any) -> list[Any]:
    """What the server stored, read straight from its database."""
    db = Database(server.backend.database_url)
    try:
        async with db.read() as session:
            return list((await session.execute(statement)).all())
    finally:
        await db.dispose()


async def with_lang(page: Page, lang: str | None) -> None:
    """Load the demo page with another `data-lang` on its widget tag (None: without one).

    Edited once the page is parsed, before module scripts run. (Serving an edited page with
    page.route would not do: Chromium then blocks its WebSocket to 127.0.0.1 as a request from
    a public page to the local network.)"""
    edit = f"s.dataset.lang = {lang!r}" if lang else "delete s.dataset.lang"
    await page.add_init_script(
        "document.addEventListener('readystatechange', () => {"
        " const s = document.querySelector('script[data-lang]');"
        f" if (document.readyState === 'interactive' && s) {edit}; }});"
    )


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
        await expect(widget.notes.last).to_have_text("The chat has ended.")
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

    async def test_csat_transcript_and_a_new_chat(self, widget: Widget, server: Server) -> None:
        """After the agent closes: a rating chosen by keyboard, an error shown clearly, the
        rating stored; the transcript downloaded as a text file; a new chat opens a new
        conversation."""
        dana = await agent(server, "Dana")
        await widget.start(topic="billing")
        await widget.send("Where is my parcel?")
        conversation = (await dana.event("agent.joined"))["conversation_id"]
        await dana.message("It left the depot this morning.", conversation_id=conversation)
        await expect(widget.bubbles.last).to_have_text("It left the depot this morning.")
        await dana.send({"type": "close", "conversation_id": conversation})

        await expect(widget.notes.last).to_have_text("The chat has ended.")
        await expect(widget.input).to_be_hidden()
        page = widget.page
        one = page.get_by_role("radio", name="1 — Very unhappy")
        four = page.get_by_role("radio", name="4 — Happy")
        await expect(one).to_be_focused()  # focus left the hidden composer for the rating
        send = page.get_by_role("button", name="Send rating")
        await send.click()
        alert = widget.panel.locator(".csat [role=alert]")
        await expect(alert).to_have_text("Please choose a rating from 1 to 5.")
        await one.focus()
        for _ in range(3):
            await page.keyboard.press("ArrowRight")
        await expect(four).to_be_focused()
        await page.keyboard.press("Space")
        await expect(four).to_have_attribute("aria-checked", "true")
        await expect(one).to_have_attribute("aria-checked", "false")
        await page.get_by_label("Comment (optional)").fill("  Quick, thanks  ")

        rating_url = f"{server.http}/api/v1/visitor/conversations/{conversation}/rating"
        problem = '{"code": "rating_closed", "status": 409}'
        await page.route(rating_url, lambda route: route.fulfill(status=409, body=problem))
        await send.click()
        await expect(alert).to_have_text(re.compile("^This chat can no longer be rated"))
        await page.unroute(rating_url)
        await send.click()
        await expect(widget.panel.locator(".thanks")).to_have_text("Thank you for your feedback!")
        assert await rows(
            server,
            select(Conversation.rating, Conversation.rating_comment).where(
                Conversation.id == uuid.UUID(conversation)
            ),
        ) == [(4, "Quick, thanks")]

        async with page.expect_download() as download_info:
            await page.get_by_role("button", name="Download transcript").click()
        download = await download_info.value
        assert re.fullmatch(r"chat-\d{4}-\d{2}-\d{2}\.txt", download.suggested_filename)
        text = Path(await download.path()).read_text()
        assert "You: Where is my parcel?" in text
        assert "Dana: It left the depot this morning." in text
        assert "Rated 4 out of 5." in text

        await page.get_by_role("button", name="Start a new chat").click()
        await expect(widget.input).to_be_focused()
        await expect(widget.panel.locator(".log > *")).to_have_count(0)
        await widget.send("One more thing")
        again = await dana.event("message", body={"text": "One more thing"})
        assert again["conversation_id"] != conversation
        await expect(widget.mine("One more thing")).to_have_attribute("data-state", "sent")

    async def test_offline_form_takes_the_email_and_the_message(
        self, widget: Widget, server: Server
    ) -> None:
        """Nobody online: the chat goes offline; the form insists on a valid email, stores it on
        the visitor, sends the message, and says where the answer will go."""
        await widget.open()
        page = widget.page
        await page.get_by_label("Name", exact=True).fill("Ada")
        await page.get_by_label("Topic").select_option("billing")
        await page.get_by_role("button", name="Start chat").click()
        await widget.send("Is the pebble lamp in stock?")
        await expect(widget.notes).to_have_text(
            ["Nobody is available right now. Leave a message and we will get back to you."]
        )
        email = page.get_by_label("Your email")
        await expect(email).to_be_focused()
        await expect(widget.input).to_be_hidden()
        await email.fill("ada@example")
        await page.get_by_label("Message", exact=True).fill("Please answer by email.")
        await page.get_by_role("button", name="Send message").click()
        await expect(widget.panel.locator(".offline [role=alert]")).to_have_text(
            re.compile("^Please enter a valid email address")
        )
        await expect(email).to_have_attribute("aria-invalid", "")
        await email.fill("ada@example.com")
        await page.get_by_role("button", name="Send message").click()

        await expect(widget.queue).to_have_text(
            "Thank you! We will reply by email to ada@example.com."
        )
        await expect(widget.mine("Please answer by email.")).to_have_attribute("data-state", "sent")
        await expect(widget.input).to_be_focused()
        assert await rows(server, select(Visitor.name, Visitor.email)) == [
            ("Ada", "ada@example.com")
        ]
        texts = await rows(
            server,
            select(ConversationEvent.body)
            .where(ConversationEvent.kind == "message")
            .order_by(ConversationEvent.seq),
        )
        assert [body["text"] for (body,) in texts] == [
            "Is the pebble lamp in stock?",
            "Please answer by email.",
        ]

    async def test_french(self, browser: Browser, server: Server) -> None:
        """`data-lang="fr"` shows the French table; without data-lang the browser's language
        chooses it."""
        for lang, locale in (("fr", "en-US"), (None, "fr-CA")):
            context = await browser.new_context(locale=locale)
            page = await context.new_page()
            await with_lang(page, lang)
            await page.goto(f"{server.http}/demo")
            widget = Widget(context, page, server)
            await expect(widget.launcher).to_have_attribute("aria-label", "Ouvrir la discussion")
            await widget.open()
            await expect(widget.title).to_have_text("Discutons")
            await expect(page.get_by_label("Nom", exact=True)).to_be_visible()
            await expect(page.get_by_role("button", name="Commencer")).to_be_visible()
            await expect(widget.panel).not_to_contain_text("Start chat")
            assert await page.locator("warmline-chat .wl").get_attribute("lang") == "fr"
            await widget.close()
