"""The agent console in headless Chromium against a real server (docs/console.md#tests).

Agents work in the console, each in a browser context of their own; visitors are protocol
clients from the e2e harness. Offers are on (`offer_auto_accept` false), so chats arrive as
offers to accept, as on a desk that uses them.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, expect

from app.store.db import Database
from app.store.models import CannedResponse
from tests.browser.console import Console
from tests.browser.test_attachments import png
from tests.conftest import Backend
from tests.e2e.harness import Client, Server, create_agent

pytestmark = [pytest.mark.browser, pytest.mark.asyncio]


@pytest_asyncio.fixture
async def server(sqlite_backend: Backend) -> AsyncIterator[Server]:
    started = await Server(sqlite_backend, offer_auto_accept="false").start()
    try:
        yield started
    finally:
        await started.stop()


@pytest_asyncio.fixture
async def consoles() -> AsyncIterator[list[Console]]:
    """Consoles a test opens, closed (and checked for page errors) at its end."""
    opened: list[Console] = []
    yield opened
    for console in opened:
        await console.close()


async def visitor(server: Server, name: str, text: str) -> Client:
    """A visitor who opens a billing chat with `text`."""
    client = await Client.visitor(server, name=name)
    await client.connect()
    await client.message(text, skill="billing")
    return client


async def agent_console(
    browser: Browser, server: Server, consoles: list[Console], name: str, **skills: int
) -> Console:
    email = await create_agent(server.backend, name=name, skills=skills or {"billing": 5})
    console = await Console.login_as(browser, server, email)
    consoles.append(console)
    return console


def frames_of(client: Client, type_: str, **match: Any) -> list[dict[str, Any]]:
    return [
        f
        for f in client.frames
        if f["type"] == type_ and all(f.get(k) == v for k, v in match.items())
    ]


class TestConsole:
    async def test_two_chats_at_once(
        self, browser: Browser, server: Server, consoles: list[Console]
    ) -> None:
        """An agent accepts two offered chats (a click, then Alt+A), answers both, sees unread
        counts and the load, reads a chat by opening it, and closes one with an outcome."""
        ann = await agent_console(browser, server, consoles, "Ann")
        await expect(ann.load).to_have_text("0 / 4")

        ada = await visitor(server, "Ada", "I was charged twice")
        await expect(ann.offers).to_have_count(1)
        await expect(ann.offers.first).to_contain_text("I was charged twice")
        await ann.offers.first.locator("[data-test=offer-accept]").click()
        await expect(ann.title).to_have_text("Ada")
        await expect(ann.message("I was charged twice")).to_be_visible()

        grace = await visitor(server, "Grace", "Where is my parcel?")
        await expect(ann.offers).to_have_count(1)
        await ann.page.keyboard.press("Alt+a")
        await expect(ann.title).to_have_text("Grace")
        await expect(ann.load).to_have_text("2 / 4")
        await expect(ann.chats).to_have_count(2)

        # Ada writes while Ann has Grace's chat open: an unread count on Ada, a waiting time
        await ada.message("It was order 48213")
        await expect(ann.unread("Ada")).to_have_text("1")
        await expect(ann.chat("Ada").locator("[data-test=waiting]")).to_be_visible()
        await expect(ann.unread("Grace")).to_have_count(0)

        await ann.send("Let me look for your parcel.")
        event = await grace.event("message", body={"text": "Let me look for your parcel."})
        assert event["sender"]["name"] == "Ann"

        await ann.page.keyboard.press("Alt+ArrowUp")  # to Ada, the chat above
        await expect(ann.title).to_have_text("Ada")
        await expect(ann.unread("Ada")).to_have_count(0)
        read = await ada.next("read")
        assert read["reader"]["type"] == "agent"
        await ann.send("Found it, refunding now.")
        reply = await ada.event("message", body={"text": "Found it, refunding now."})
        await ada.send(
            {"type": "read", "conversation_id": reply["conversation_id"], "seq": reply["seq"]}
        )
        await expect(
            ann.message("Found it, refunding now.").locator("[data-test=seen]")
        ).to_have_text(" · Seen")
        await expect(ann.chat("Ada").locator("[data-test=waiting]")).to_have_count(0)

        # the visitor's typing shows in the open chat
        await ada.send(
            {"type": "typing", "conversation_id": read["conversation_id"], "state": "start"}
        )
        await expect(ann.typing).to_contain_text("Ada is typing")

        # Grace's chat closes with an outcome and tags
        await ann.open_chat("Grace")
        await ann.t("close").click()
        dialog = ann.t("close-dialog")
        await expect(dialog).to_be_visible()
        await dialog.locator("[data-test=close-disposition]").select_option("resolved")
        await dialog.locator("[data-test=close-tags]").fill("Parcel, late")
        await dialog.locator("[data-test=close-confirm]").click()
        await grace.event("conversation.closed")
        # the labels are agents-only events, just before the close
        await expect(
            ann.t("system-line").and_(ann.page.locator("[data-kind='conversation.disposition']"))
        ).to_contain_text("Resolved")
        await expect(
            ann.t("system-line").and_(ann.page.locator("[data-kind='conversation.tagged']"))
        ).to_contain_text("parcel, late")
        assert not frames_of(grace, "event", kind="conversation.disposition")
        await expect(ann.load).to_have_text("1 / 4")
        await expect(ann.t("chat-state")).to_have_text("Closed")
        await expect(ann.composer).to_be_hidden()

    async def test_warm_transfer_through_the_dialog(
        self, browser: Browser, server: Server, consoles: list[Console]
    ) -> None:
        """Ann transfers a chat to Bob in two clicks with a note; Bob, in another browser
        context, sees the summary and the note, talks to Ann privately, and accepts."""
        ann = await agent_console(browser, server, consoles, "Ann")
        bob = await agent_console(browser, server, consoles, "Bob", refunds=3)
        ada = await visitor(server, "Ada", "I was charged twice for order ORD-48213")
        await ann.offers.first.locator("[data-test=offer-accept]").click()
        await expect(ann.title).to_have_text("Ada")
        await ann.send("Checking with the refunds team.")

        await ann.page.keyboard.press("Alt+t")
        dialog = ann.t("transfer-dialog")
        await expect(dialog).to_be_visible()
        bob_target = dialog.locator("[data-test=transfer-agent][data-name=Bob]")
        await expect(bob_target).to_be_enabled()
        await bob_target.click()
        await dialog.locator("[data-test=transfer-note-input]").fill("Refund over my limit")
        await dialog.locator("[data-test=transfer-send]").click()
        await expect(dialog).to_be_hidden()
        await expect(ann.t("transfer-pending")).to_contain_text("Bob")

        offer = bob.transfer_offers.first
        await expect(offer).to_be_visible()
        await expect(offer.locator("[data-test=transfer-note]")).to_contain_text(
            "Refund over my limit"
        )
        await expect(offer.locator("[data-test=transfer-summary]")).to_contain_text("ORD-48213")

        # the private channel while the transfer is pending: never shown to the visitor
        await offer.locator("[data-test=transfer-open]").click()
        await expect(bob.title).to_have_text("Ada")
        await expect(bob.note_toggle).to_be_checked()
        await bob.send("Was the first charge refunded already?")
        await expect(
            ann.private_messages.filter(has_text="Was the first charge refunded already?")
        ).to_be_visible()

        await bob.t("chat-transfer-accept").click()
        await expect(bob.composer).to_be_visible()
        await expect(bob.note_toggle).not_to_be_checked()
        await expect(bob.t("ctx-summary")).to_contain_text("ORD-48213")
        await expect(bob.load).to_have_text("1 / 4")
        await expect(ann.load).to_have_text("0 / 4")
        await expect(ann.toasts.filter(has_text="Transfer accepted")).to_be_visible()
        await bob.send("Hi Ada, Bob from refunds here.")
        await ada.event("message", body={"text": "Hi Ada, Bob from refunds here."})

        # a picture: uploaded at once, sent with the next message, previewed from a blob: URL
        await bob.attach("label.png", "image/png", png())
        await bob.send("Here is your refund receipt.")
        event = await ada.event("message")
        while event["body"]["text"] != "Here is your refund receipt.":
            event = await ada.event("message")
        assert [a["name"] for a in event["body"]["attachments"]] == ["label.png"]
        preview = bob.message("Here is your refund receipt.").locator(
            "[data-test=attachment-image]"
        )
        await expect(preview).to_have_attribute("src", re.compile(r"^blob:"))
        assert not [
            f
            for f in ada.frames
            if f["type"] == "event" and f["kind"] in ("transfer.chat", "note", "handoff.summary")
        ]

    async def test_canned_response_with_variables(
        self, browser: Browser, server: Server, consoles: list[Console]
    ) -> None:
        """`/` opens the picker, typing filters it, Enter inserts the text with the visitor's
        and the agent's names filled in by the server, and Enter again sends it."""
        db = Database(server.backend.database_url)
        try:
            async with db.write() as session:
                session.add_all(
                    [
                        CannedResponse(
                            shortcut="refund",
                            title="Refund timing",
                            text="Hi {{visitor.first_name}}, {{agent.name}} here: "
                            "refunds take 5 days.",
                        ),
                        CannedResponse(
                            shortcut="bye", title="Goodbye", text="Bye {{visitor.name}}!"
                        ),
                    ]
                )
        finally:
            await db.dispose()
        ann = await agent_console(browser, server, consoles, "Ann")
        ada = await visitor(server, "Ada Lovelace", "When do I get my money?")
        await ann.offers.first.locator("[data-test=offer-accept]").click()
        await expect(ann.title).to_have_text("Ada Lovelace")

        await ann.composer.press("/")
        await expect(ann.canned).to_be_visible()
        await expect(ann.canned.locator("[data-test=canned-item]")).to_have_count(2)
        await ann.composer.press_sequentially("ref")
        items = ann.canned.locator("[data-test=canned-item]")
        await expect(items).to_have_count(1)
        await expect(items.first).to_contain_text("Refund timing")
        await ann.composer.press("Enter")
        text = "Hi Ada, Ann here: refunds take 5 days."
        await expect(ann.composer).to_have_value(text)
        await expect(ann.canned).to_be_hidden()
        await ann.composer.press("Enter")
        await ada.event("message", body={"text": text})

        await ann.composer.press("/")
        await ann.composer.press("Escape")
        await expect(ann.canned).to_be_hidden()

        # tags from the context panel: a `tags` frame, answered by the agents-only event
        await ann.t("tag-input").fill("VIP")
        await ann.t("tag-input").press("Enter")
        await expect(ann.t("tag")).to_have_text(["#vip×"])
        await expect(ann.t("tag-input")).to_have_value("")
        await expect(ann.t("tag-input")).to_be_focused()
        tagged = ann.t("system-line").and_(ann.page.locator("[data-kind='conversation.tagged']"))
        await expect(tagged).to_contain_text("vip")
        assert not frames_of(ada, "event", kind="conversation.tagged")

    async def test_login_status_and_logout(
        self, browser: Browser, server: Server, consoles: list[Console]
    ) -> None:
        """A wrong password is refused visibly; the agent signs in, goes away and back (the
        server's status follows), reads the shortcuts help, and logs out (the token is revoked)."""
        email = await create_agent(server.backend, name="Ann", skills={"billing": 5})
        ann = await Console.open(browser, server)
        consoles.append(ann)
        await ann.t("login-email").fill(email)
        await ann.t("login-password").fill("wrong password")
        await ann.t("login-submit").click()
        await expect(ann.login_error).to_have_text("Wrong email or password.")

        await ann.login(email)
        await expect(ann.me).to_have_text("Ann")
        await expect(ann.load).to_have_text("0 / 4")
        await expect(ann.status).to_have_value("online")
        token = await ann.page.evaluate("sessionStorage.getItem('warmline-console:token')")
        async with httpx.AsyncClient(
            base_url=server.http, headers={"Authorization": f"Bearer {token}"}
        ) as http:

            async def status_becomes(wanted: str) -> None:
                for _ in range(100):
                    if (await http.get("/api/v1/auth/me")).json()["status"] == wanted:
                        return
                    await asyncio.sleep(0.1)
                raise AssertionError(f"the server's status never became {wanted}")

            await ann.status.select_option("away")
            await status_becomes("away")
            await ann.status.select_option("online")
            await status_becomes("online")

            await ann.page.keyboard.press("?")
            help_dialog = ann.t("help-dialog")
            await expect(help_dialog).to_contain_text("Alt + T")
            await ann.page.keyboard.press("Escape")
            await expect(help_dialog).to_be_hidden()

            await ann.logout()
            assert (await http.get("/api/v1/auth/me")).status_code == 401
        await ann.page.reload()
        await expect(ann.login_form).to_be_visible()
