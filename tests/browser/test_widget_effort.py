"""The customer effort question in the widget's after-chat panel (docs/widget.md#after-the-chat),
in headless Chromium against a real server: shown only when the chat's close asked it, a radio
group operable by keyboard, answerable without the CSAT rating, and stored.

`WARMLINE_DOCS_SHOTS=<dir>` also saves the panel with the question as `widget-effort.png` there
(how docs/img/widget-effort.png is made).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, expect
from sqlalchemy import select

from app.store.db import Database
from app.store.models import Conversation, Role
from tests.browser.widget import Widget
from tests.conftest import Backend
from tests.e2e.harness import Client, Server, create_agent

pytestmark = [pytest.mark.browser, pytest.mark.asyncio]

QUESTION = "We made it easy for you to handle your issue."


@pytest_asyncio.fixture
async def server(sqlite_backend: Backend) -> AsyncIterator[Server]:
    started = await Server(sqlite_backend).start()
    try:
        yield started
    finally:
        await started.stop()


async def survey(server: Server, *, on: bool) -> None:
    """An admin switches the effort question on or off (PATCH /api/v1/routing/policy)."""
    root = await Client.agent(
        server, await create_agent(server.backend, name="Root", role=Role.ADMIN, capacity=0)
    )
    async with httpx.AsyncClient(base_url=f"{server.http}/api/v1") as http:
        answer = await http.patch(
            "/routing/policy",
            json={"effort_survey": on},
            headers={"Authorization": f"Bearer {root.token}"},
        )
        assert answer.status_code == 200, answer.text


async def closed_chat(widget: Widget, server: Server) -> str:
    """Ada chats with Dana, who closes the chat; the conversation's id."""
    dana = await Client.agent(
        server, await create_agent(server.backend, name="Dana", skills={"billing": 5})
    )
    await dana.connect()
    await widget.start(topic="billing")
    await widget.send("My parcel is late")
    conversation: str = (await dana.event("agent.joined"))["conversation_id"]
    await dana.message("It arrives tomorrow, sorry.", conversation_id=conversation)
    await expect(widget.bubbles.last).to_have_text("It arrives tomorrow, sorry.")
    await dana.send({"type": "close", "conversation_id": conversation})
    await expect(widget.notes.last).to_have_text("The chat has ended.")
    return conversation


async def stored(server: Server, conversation: str) -> tuple[int | None, int | None]:
    """The conversation's (rating, effort) as stored."""
    db = Database(server.backend.database_url)
    try:
        async with db.read() as session:
            row = (
                await session.execute(
                    select(Conversation.rating, Conversation.effort).where(
                        Conversation.id == uuid.UUID(conversation)
                    )
                )
            ).one()
            return row.rating, row.effort
    finally:
        await db.dispose()


class TestEffortQuestion:
    async def test_not_asked_when_off(self, widget: Widget, server: Server) -> None:
        """The survey off (the default): only the rating is asked, and it alone is required."""
        conversation = await closed_chat(widget, server)
        page = widget.page
        await expect(page.get_by_role("radiogroup", name="How was this chat?")).to_be_visible()
        await expect(page.get_by_role("radiogroup", name=QUESTION)).to_be_hidden()
        await page.get_by_role("button", name="Send rating").click()
        alert = widget.panel.locator(".csat [role=alert]")
        await expect(alert).to_have_text("Please choose a rating from 1 to 5.")
        await page.get_by_role("radio", name="5 — Very happy").click()
        await page.get_by_role("button", name="Send rating").click()
        await expect(widget.panel.locator(".thanks")).to_have_text("Thank you for your feedback!")
        assert await stored(server, conversation) == (5, None)

    async def test_asked_when_on_and_answered_by_keyboard(
        self, browser: Browser, widget: Widget, server: Server
    ) -> None:
        """The survey on: a 7-point radio group under its legend, the ends labelled; arrows
        move and choose; sent without a rating; stored; the thank-you again after a reload."""
        await survey(server, on=True)
        conversation = await closed_chat(widget, server)
        page = widget.page
        group = page.get_by_role("radiogroup", name=QUESTION)
        await expect(group).to_be_visible()
        await expect(group.get_by_role("radio")).to_have_count(7)
        ends = group.locator(".ends span")
        await expect(ends).to_have_text(["Strongly disagree", "Strongly agree"])
        first = group.get_by_role("radio", name="1 — Strongly disagree")
        await expect(group.get_by_role("radio", name="7 — Strongly agree")).to_be_visible()

        await page.get_by_role("button", name="Send rating").click()
        alert = widget.panel.locator(".csat [role=alert]")
        await expect(alert).to_have_text("Please answer at least one question.")
        await first.focus()
        for _ in range(5):
            await page.keyboard.press("ArrowRight")
        six = group.get_by_role("radio", name="6")
        await expect(six).to_be_focused()
        await expect(six).to_have_attribute("aria-checked", "true")
        await expect(first).to_have_attribute("aria-checked", "false")
        await expect(alert).to_be_hidden()  # choosing clears the error
        # Tab leaves the group from the chosen answer: one stop per question.
        await expect(group.locator("[tabindex='0']")).to_have_count(1)
        shots = os.environ.get("WARMLINE_DOCS_SHOTS")
        if shots:
            await page.get_by_role("radio", name="4 — Happy").click()
            await six.click()
            await page.set_viewport_size({"width": 400, "height": 760})
            await page.get_by_label("Comment (optional)").fill("Quick, thanks!")
            await widget.panel.screenshot(path=str(Path(shots) / "widget-effort.png"))
            await page.get_by_role("radio", name="4 — Happy").click()  # keep the test's story
        await page.get_by_role("button", name="Send rating").click()
        await expect(widget.panel.locator(".thanks")).to_have_text("Thank you for your feedback!")
        rating = None if not shots else 4
        assert await stored(server, conversation) == (rating, 6)

        await page.reload()
        await widget.open()
        await expect(widget.panel.locator(".thanks")).to_have_text("Thank you for your feedback!")
        await expect(group).to_be_hidden()

    async def test_in_french(self, browser: Browser, server: Server) -> None:
        """In French (`data-lang="fr"`): the question, its legend and the ends."""
        await survey(server, on=True)
        dana = await Client.agent(
            server, await create_agent(server.backend, name="Dana", skills={"billing": 5})
        )
        await dana.connect()
        context = await browser.new_context(locale="fr-FR")
        page = await context.new_page()
        # The demo page's tag says data-lang="en": say "fr" instead, before the module runs.
        await page.add_init_script(
            "document.addEventListener('readystatechange', () => {"
            " const s = document.querySelector('script[data-lang]');"
            " if (document.readyState === 'interactive' && s) s.dataset.lang = 'fr'; });"
        )
        try:
            await page.goto(f"{server.http}/demo")
            widget = Widget(context, page, server)
            await widget.open()
            await page.get_by_label("Nom", exact=True).fill("Ada")
            await page.get_by_label("Sujet").select_option("billing")
            await page.get_by_role("button", name="Commencer").click()
            message = page.get_by_label("Votre message", exact=True)
            await message.fill("Mon colis est en retard")
            await message.press("Enter")
            conversation = (await dana.event("agent.joined"))["conversation_id"]
            await dana.send({"type": "close", "conversation_id": conversation})
            group = page.get_by_role(
                "radiogroup", name="Nous vous avons facilité la résolution de votre demande."
            )
            await expect(group).to_be_visible()
            await expect(group.locator(".ends span")).to_have_text(
                ["Pas du tout d’accord", "Tout à fait d’accord"]
            )
            await expect(
                group.get_by_role("radio", name="7 — Tout à fait d’accord")
            ).to_be_visible()
            await page.get_by_role("button", name="Envoyer la note").click()
            await expect(widget.panel.locator(".csat [role=alert]")).to_have_text(
                "Répondez à au moins une question."
            )
        finally:
            await context.close()
