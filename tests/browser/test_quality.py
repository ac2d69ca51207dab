"""The console's quality review form (web_console/quality.js) in headless Chromium against a
real server: a supervisor reviews a chat that closed, with the rubric's criteria as radio
groups and comments, and sees the saved review with its score. Docs:
docs/console.md#quality-reviews."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, expect

from app.store.models import Role
from tests.browser.console import Console
from tests.conftest import Backend
from tests.e2e.harness import PASSWORD, Client, Server, create_agent

pytestmark = [pytest.mark.browser, pytest.mark.asyncio]


@pytest_asyncio.fixture
async def server(sqlite_backend: Backend) -> AsyncIterator[Server]:
    started = await Server(sqlite_backend, offer_auto_accept="false").start()
    try:
        yield started
    finally:
        await started.stop()


async def reviews_of(server: Server, email: str, conversation: str) -> list[dict[str, Any]]:
    """The conversation's reviews as the API gives them, read with `email`'s session."""
    async with httpx.AsyncClient(base_url=f"{server.http}/api/v1") as http:
        login = await http.post("/auth/login", json={"email": email, "password": PASSWORD})
        headers = {"Authorization": f"Bearer {login.json()['token']}"}
        found = await http.get(f"/conversations/{conversation}/reviews", headers=headers)
    reviews: list[dict[str, Any]] = found.json()["reviews"]
    return reviews


async def closed_chat(server: Server, sam: Console) -> tuple[str, Client]:
    """Ada's chat, taken by Sam at the console (no Review button while open), closed by Ada."""
    ada = await Client.visitor(server, name="Ada")
    await ada.connect()
    await ada.message("My invoice is wrong", skill="billing")
    await sam.offers.first.locator("[data-test=offer-accept]").click()
    await expect(sam.title).to_have_text("Ada")
    await expect(sam.t("qa-open")).to_have_count(0)  # not while the chat is open
    await sam.send("Let me fix that for you.")
    conversation = (await ada.event("message", body={"text": "Let me fix that for you."}))[
        "conversation_id"
    ]
    await ada.send({"type": "close", "conversation_id": conversation})
    await expect(sam.t("chat-state")).to_have_text("Closed")
    return str(conversation), ada


async def test_supervisor_reviews_a_closed_chat(browser: Browser, server: Server) -> None:
    """The Review button appears once the chat is closed; saving without scoring every criterion
    says which is missing; a complete review (5, 3, 4, Yes, with comments) is saved and shown as
    80.56 %; edited (greeting 3) it shows 75 %, and the server stored the same scores."""
    email = await create_agent(
        server.backend, name="Sam", role=Role.SUPERVISOR, skills={"billing": 5}
    )
    sam = await Console.login_as(browser, server, email)
    try:
        conversation, _ = await closed_chat(server, sam)

        await sam.t("qa-open").click()
        dialog = sam.t("qa-dialog")
        await expect(dialog).to_be_visible()
        await expect(dialog.locator("[data-test=qa-list] h3")).to_have_text("No reviews yet")
        criteria = dialog.locator("[data-test=qa-criterion]")
        await expect(criteria).to_have_count(4)
        # greeting: 1-5 without n/a; resolution: Yes, No, N/A
        await expect(
            criteria.filter(has=sam.page.locator("legend", has_text="Greeting")).locator(
                "[data-test=qa-choice]"
            )
        ).to_have_count(5)
        await expect(
            dialog.locator("[data-test=qa-criterion][data-key=resolution] label.qa-choice")
        ).to_have_text(["Yes", "No", "N/A"])

        await dialog.locator("#qa-greeting-4").check()  # 5
        await dialog.locator("[data-test=qa-save]").click()
        await expect(dialog.locator("[data-test=qa-error]")).to_contain_text("Empathy")

        await dialog.locator("#qa-empathy-2").check()  # 3
        await dialog.locator("[data-test=qa-comment][data-key=empathy]").fill("Acknowledge first")
        await dialog.locator("#qa-accuracy-3").check()  # 4
        await dialog.locator("#qa-resolution-0").check()  # Yes
        await dialog.locator("[data-test=qa-overall]").fill("Quick and correct.")
        await dialog.locator("[data-test=qa-save]").click()

        review = dialog.locator("[data-test=qa-review]")
        await expect(review).to_have_count(1)
        await expect(review.locator("[data-test=qa-review-score]")).to_have_text("80.56 %")
        await expect(review.locator("[data-test=qa-review-comment]")).to_have_text(
            "Quick and correct."
        )
        await expect(
            review.locator("[data-test=qa-review-criterion][data-key=empathy]")
        ).to_contain_text("Acknowledge first")
        await expect(dialog.locator("[data-test=qa-form]")).to_have_count(0)  # one per reviewer
        await expect(dialog.locator(".qa")).not_to_contain_text("null")

        # Editing: the form comes back filled in; greeting 5 -> 3 makes it (50 + 100 + 225 +
        # 300) / 9 = 75 %.
        await review.locator("[data-test=qa-edit]").click()
        await expect(dialog.locator("#qa-empathy-2")).to_be_checked()
        await dialog.locator("#qa-greeting-2").check()
        await dialog.locator("[data-test=qa-save]").click()
        await expect(review.locator("[data-test=qa-review-score]")).to_have_text("75 %")
        await expect(dialog.locator("[data-test=qa-form]")).to_have_count(0)

        stored = await reviews_of(server, email, conversation)
        assert [(s["key"], s["value"]) for s in stored[0]["scores"]] == [
            ("greeting", 3),
            ("empathy", 3),
            ("accuracy", 4),
            ("resolution", 1),
        ]
        assert stored[0]["score"] == 75.0
        assert stored[0]["scores"][1]["comment"] == "Acknowledge first"
    finally:
        await sam.close()


async def test_an_earlier_chat_is_reviewed_from_the_context_panel(
    browser: Browser, server: Server
) -> None:
    """When the visitor comes back, the context panel's earlier conversation has a Review button
    for a supervisor; the review made there is of that earlier chat."""
    email = await create_agent(
        server.backend, name="Sam", role=Role.SUPERVISOR, skills={"billing": 5}
    )
    sam = await Console.login_as(browser, server, email)
    try:
        first, ada = await closed_chat(server, sam)
        await ada.message("Me again", skill="billing")
        await sam.offers.first.locator("[data-test=offer-accept]").click()
        await expect(sam.message("Me again")).to_be_visible()
        await sam.context_panel.locator("[data-test=qa-open-earlier]").click()
        dialog = sam.t("qa-dialog")
        await expect(dialog).to_be_visible()
        for choice in ("#qa-greeting-0", "#qa-empathy-5", "#qa-accuracy-5", "#qa-resolution-2"):
            await dialog.locator(choice).check()  # 1, then N/A for the rest
        await dialog.locator("[data-test=qa-save]").click()
        # greeting 1 of 1-5 is 0 %, the rest n/a: 0 over greeting's weight.
        await expect(dialog.locator("[data-test=qa-review-score]")).to_have_text("0 %")
        stored = await reviews_of(server, email, first)
        assert [(s["key"], s["value"]) for s in stored[0]["scores"]] == [
            ("greeting", 1),
            ("empathy", None),
            ("accuracy", None),
            ("resolution", None),
        ]
    finally:
        await sam.close()
