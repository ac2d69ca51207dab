"""The console's supervisor view in headless Chromium against a real server.

Three people at once, each in their own browser context or socket: a visitor in the widget on
the demo page, an agent (the console, plus a protocol `Client` of the same agent to read the
frames she gets), and a supervisor in the console's Supervisor tab. What the visitor's screen
shows is checked on the widget itself. Docs: docs/console.md#supervisor-view.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, Locator, Route, expect
from sqlalchemy import update

from app.store.db import Database
from app.store.models import Role, Skill
from tests.browser.console import Console
from tests.browser.widget import Widget
from tests.conftest import Backend
from tests.e2e.harness import Client, Server, create_agent

pytestmark = [pytest.mark.browser, pytest.mark.asyncio]

WHISPER = "Offer the express reshipment, it is on us"
BARGED = "Hi Ada, I am Dana's supervisor: a new parcel leaves today."
TAKEN = "I am Mia, the team lead: your refund is approved."


@pytest_asyncio.fixture
async def server(sqlite_backend: Backend) -> AsyncIterator[Server]:
    # a harness client reads (and so answers pings) only when a test waits on it: one minute
    # of silence is allowed, so it is not dropped while the browsers work on a loaded machine
    started = await Server(sqlite_backend, heartbeat_interval="30", heartbeat_timeout="60").start()
    try:
        yield started
    finally:
        await started.stop()


async def supervisor_tab(console: Console) -> Locator:
    """Open the Supervisor tab; the view once its first overview is on screen."""
    await console.t("tab-supervisor").click()
    view = console.t("supervisor")
    await expect(view.locator("[data-test=sv-updated]")).to_contain_text("Updated")
    return view


def chat_row(console: Console, conversation: str) -> Locator:
    """A held chat's row in the Agents list of the supervisor view."""
    return console.page.locator(f'[data-test=sv-chat][data-conversation="{conversation}"]')


async def confirm(console: Console, action: str) -> None:
    """Answer the supervisor view's confirmation dialog with its `action` button."""
    dialog = console.page.get_by_role("dialog")
    await expect(dialog).to_be_visible()
    await dialog.get_by_role("button", name=action, exact=True).click()
    await expect(dialog).to_be_hidden()


async def person(server: Server, name: str, role: Role = Role.AGENT, **skills: int) -> str:
    return await create_agent(server.backend, name=name, skills=skills, role=role, capacity=3)


async def visitor_token(widget: Widget) -> str:
    stored: dict[str, Any] = await widget.page.evaluate(
        f"JSON.parse(localStorage['warmline:{widget.server.http}'])"
    )
    return str(stored["token"])


async def chat_with(widget: Widget, dana: Client, first: str) -> str:
    """Ada writes from the widget; Dana gets the chat. Returns its id."""
    await widget.start(name="Ada", topic="billing")
    await widget.send(first)
    conversation: str = (await dana.event("agent.joined"))["conversation_id"]
    return conversation


async def survives_a_failing_overview(mia: Console, view: Locator) -> None:
    """The overview fails: after two reads in a row (backing off) a banner says the figures
    are stale and why; Retry now reads again at once and the banner goes."""
    problem = {"status": 503, "code": "unavailable", "detail": "The database cannot be reached."}

    async def fail(route: Route) -> None:
        await route.fulfill(status=503, json=problem)

    overview = "**/api/v1/supervisor/overview"
    await mia.page.route(overview, fail)
    banner = view.locator("[data-test=sv-stale]")
    await expect(banner).to_be_visible()
    await expect(banner).to_contain_text("Not up to date.")
    await expect(banner).to_contain_text("The database cannot be reached.")
    await mia.page.unroute(overview, fail)
    await banner.get_by_role("button", name="Retry now").click()
    await expect(banner).to_be_hidden()


async def monitors_live(mia: Console, row: Locator, widget: Widget) -> None:
    """Monitor: the chat opens in Mia's Chats view, read-only for the visitor, and goes on
    live."""
    await row.get_by_role("button", name="Monitor the chat with Ada").click()
    transcript = mia.transcript
    await expect(transcript).to_contain_text("My parcel never arrived")
    await expect(transcript).to_contain_text("Let me check the tracking.")
    await expect(mia.page.locator("[data-test=chat-state]")).to_have_text("Monitoring")
    # read-only for the visitor: the chat view's composer only whispers to Dana
    await expect(mia.page.locator("[data-test=composer-box]")).to_contain_text("Whisper to Dana")
    await widget.send("It was due on Monday")
    await expect(transcript).to_contain_text("It was due on Monday")


async def whispers(mia: Console, conversation: str, dana: Client, dana_console: Console) -> Locator:
    """Whisper from the Supervisor tab's panel: Dana gets an agents-only event, her console
    shows it as such. Returns the panel."""
    await supervisor_tab(mia)
    await (
        chat_row(mia, conversation).get_by_role("button", name="Whisper to Dana about Ada").click()
    )
    panel = mia.page.locator(f'[data-test=sv-panel][data-conversation="{conversation}"]')
    await expect(panel.locator("[data-test=sv-line-visitor] .sv-text")).to_have_text(
        ["My parcel never arrived", "It was due on Monday"]
    )
    box = panel.get_by_label("Whisper to Dana (agents only)")
    await expect(box).to_be_focused()
    await box.fill(WHISPER)
    await box.press("Enter")
    whisper = await dana.event("whisper", conversation_id=conversation)
    assert whisper["visibility"] == "agents"
    assert whisper["body"]["text"] == WHISPER
    assert whisper["body"]["to"]["name"] == "Dana"
    assert whisper["sender"]["name"] == "Mia"
    await expect(panel.locator("[data-test=sv-line-whisper]")).to_contain_text(WHISPER)
    await dana_console.open_chat("Ada")
    shown = dana_console.private_messages.filter(has_text=WHISPER)
    await expect(shown).to_contain_text("agents only")
    return panel


async def barges_in(mia: Console, panel: Locator, widget: Widget, dana: Client) -> None:
    """Barge in: Ada's widget says Mia (supervisor) joined, then shows her message under her
    name; Dana reads it too."""
    await panel.get_by_role("button", name="Barge in on the chat with Ada").click()
    await confirm(mia, "Barge in")
    await expect(mia.page.locator("[data-test=chat-state]")).to_have_text("Joined as supervisor")
    joined = widget.notes.filter(has_text="Mia (supervisor) joined the chat.")
    await expect(joined).to_have_count(1)
    composer = mia.page.locator("[data-test=composer]")
    await composer.fill(BARGED)
    await composer.press("Enter")
    await expect(widget.bubbles.last).to_have_text(BARGED)
    await expect(widget.rows.last.locator(".who")).to_have_text("Mia")
    said = await dana.event("message", body={"text": BARGED})
    assert said["sender"]["name"] == "Mia"


async def visitor_never_got_the_whisper(widget: Widget, conversation: str) -> None:
    """Not on Ada's screen (which shows what came after it), not in her transcript."""
    await expect(widget.panel).to_contain_text(BARGED)
    await expect(widget.panel).not_to_contain_text(WHISPER)
    async with httpx.AsyncClient(base_url=widget.server.http) as http:
        answer = await http.get(
            f"/api/v1/visitor/conversations/{conversation}/transcript",
            headers={"Authorization": f"Bearer {await visitor_token(widget)}"},
        )
    assert answer.status_code == 200, answer.text
    texts = [line.get("text") or "" for line in answer.json()["lines"]]
    assert BARGED in texts
    assert not [text for text in texts if WHISPER in text]


async def reassigns(mia: Console, view: Locator, graces: str, dana: Client, bob: Client) -> None:
    """Reassign: the picker lists the other connected agents with their load; Bob gets it."""
    await chat_row(mia, graces).get_by_role("button", name="Reassign the chat with Grace").click()
    dialog = mia.page.get_by_role("dialog")
    await expect(dialog.locator("label", has_text="Bob")).to_contain_text("online, 0 / 3")
    await expect(dialog.get_by_role("radio", name="Dana")).to_have_count(0)
    await dialog.get_by_role("radio", name="Bob").check()
    await confirm(mia, "Reassign")
    status = view.locator("[data-test=sv-status]")
    await expect(status).to_have_text("The chat with Grace went to Bob.")
    await bob.event("agent.joined", conversation_id=graces)
    await dana.event("agent.left", conversation_id=graces)
    bobs = view.locator("[data-test=sv-agent]", has_text="Bob")
    await expect(bobs.locator("[data-test=sv-chat]")).to_contain_text("Grace")


async def takes_over(
    mia: Console, item: Locator, conversation: str, widget: Widget, dana: Client
) -> None:
    """Take over: the chat is Mia's own, in her Chats view with a composer; Dana is told and
    may no longer write to it; Ada's widget says who has her chat now."""
    await item.get_by_role("button", name="Take over the chat with Ada").click()
    await confirm(mia, "Take over")
    await expect(mia.page.locator("[data-test=chat-title]")).to_have_text("Ada")
    await expect(mia.page.locator("[data-test=composer-box]")).to_be_visible()
    result = await dana.next("transfer_result", conversation_id=conversation)
    assert (result["state"], result["by"]["name"]) == ("accepted", "Mia")
    await expect(widget.notes.filter(has_text="Dana handed your chat over.")).to_have_count(1)
    await expect(widget.notes.filter(has_text=re.compile(r"^Mia .*joined"))).to_have_count(1)
    late = {"type": "message", "conversation_id": conversation, "client_msg_id": "late"}
    await dana.send({**late, "text": "Still mine?"})
    assert (await dana.next("error", ref="late"))["code"] == "not_participant"
    composer = mia.page.locator("[data-test=composer]")
    await composer.fill(TAKEN)
    await composer.press("Enter")
    await expect(widget.bubbles.last).to_have_text(TAKEN)


class TestSupervisorView:
    async def test_monitor_whisper_and_barge_in(
        self, browser: Browser, server: Server, widget: Widget
    ) -> None:
        """Mia (supervisor) follows Ada's chat with Dana live, read-only; whispers to Dana, whose
        console shows it while Ada's widget and transcript never do; then barges in, and Ada's
        widget says Mia joined and shows her message under her name."""
        dana_email = await person(server, "Dana", billing=5)
        dana = await Client.agent(server, dana_email)  # Dana's frames, beside her console
        await dana.connect()
        supervisor = await person(server, "Mia", role=Role.SUPERVISOR)
        mia = await Console.login_as(browser, server, supervisor)
        dana_console = await Console.login_as(browser, server, dana_email)
        try:
            conversation = await chat_with(widget, dana, "My parcel never arrived")
            await dana.message("Let me check the tracking.", conversation_id=conversation)

            view = await supervisor_tab(mia)
            row = chat_row(mia, conversation)
            await expect(row).to_contain_text("Ada")
            await expect(row).to_contain_text("answered")
            danas = view.locator("[data-test=sv-agent]", has=row)
            await expect(danas.locator("[data-test=sv-load]")).to_have_text("1 / 3")
            billing = view.locator("[data-test=sv-skill][data-skill=billing]")
            await expect(billing.locator("[data-test=sv-sla]")).to_have_text("OK")

            await survives_a_failing_overview(mia, view)
            await monitors_live(mia, row, widget)
            panel = await whispers(mia, conversation, dana, dana_console)
            await barges_in(mia, panel, widget, dana)
            await visitor_never_got_the_whisper(widget, conversation)
        finally:
            await mia.close()
            await dana_console.close()

    async def test_reassign_then_take_over_an_escalated_chat(
        self, browser: Browser, server: Server, widget: Widget
    ) -> None:
        """Mia gives one of Dana's chats to Bob with the agent picker. Then Ada asks Dana for a
        manager: the chat is escalated and heads Mia's list with the reason; Mia takes it over,
        it is hers, Dana loses it, and Ada's widget says Mia has it."""
        dana = await Client.agent(server, await person(server, "Dana", billing=5))
        await dana.connect()
        bob = await Client.agent(server, await person(server, "Bob", general=5))
        await bob.connect()
        mia = await Console.login_as(
            browser, server, await person(server, "Mia", role=Role.SUPERVISOR)
        )
        try:
            grace = await Client.visitor(server, name="Grace")
            await grace.connect()
            graces = (await grace.message("A billing question", skill="billing"))["conversation_id"]
            await dana.event("agent.joined", conversation_id=graces)
            conversation = await chat_with(widget, dana, "Where is my refund?")
            await dana.message("It is on its way.", conversation_id=conversation)

            view = await supervisor_tab(mia)
            await reassigns(mia, view, graces, dana, bob)

            # escalated by the customer's words: first in the view, with the reason
            await widget.send("This is the third time. I want to speak to a manager.")
            escalated = await dana.event("conversation.escalated", conversation_id=conversation)
            assert escalated["body"]["by"] == "visitor"
            item = view.locator(f'[data-test=sv-escalation][data-conversation="{conversation}"]')
            await expect(item).to_contain_text("Ada with Dana")
            await expect(item).to_contain_text("The customer asked for 'speak to a manager'.")
            await expect(view.locator("[data-test=sv-escalated-count]")).to_have_text("1")
            await expect(chat_row(mia, conversation)).to_contain_text("Escalated")

            await takes_over(mia, item, conversation, widget, dana)
            # and the overview agrees: the chat is under Mia, no longer under Dana
            view = await supervisor_tab(mia)
            mias = view.locator("[data-test=sv-agent]", has_text="Mia")
            await expect(mias.locator(f'[data-conversation="{conversation}"]')).to_have_count(1)
            danas = view.locator("[data-test=sv-agent]", has_text="Dana")
            await expect(danas.locator("[data-test=sv-chat]")).to_have_count(0)
        finally:
            await mia.close()


async def first_reply_target(server: Server, slug: str, seconds: int) -> None:
    """Set a skill's first-reply target in the store (as `PATCH /skills/{id}` does)."""
    db = Database(server.backend.database_url)
    try:
        async with db.write() as session:
            await session.execute(
                update(Skill).where(Skill.slug == slug).values(sla_first_response_seconds=seconds)
            )
    finally:
        await db.dispose()


class TestChatSla:
    async def test_a_chat_awaiting_its_first_reply(
        self, browser: Browser, server: Server, widget: Widget
    ) -> None:
        """Mia sees Ada's chat, held by Dana and not answered yet, against billing's own 5 s
        target: the row shows the target, then the red `SLA breached` badge (not the amber of
        `At risk`) once it has passed, as the breach is recorded for Dana; Dana answers and the
        row says `answered`, without a target."""
        dana_email = await person(server, "Dana", billing=5)
        await first_reply_target(server, "billing", 5)
        dana = await Client.agent(server, dana_email)
        await dana.connect()
        mia = await Console.login_as(browser, server, await person(server, "Mia", Role.SUPERVISOR))
        try:
            conversation = await chat_with(widget, dana, "Where is my refund?")
            await supervisor_tab(mia)
            mark = chat_row(mia, conversation).locator("[data-test=sv-chat-sla]")
            await expect(mark).to_contain_text("of 5 s")
            await dana.event("sla.breached", conversation_id=conversation)
            await expect(mark).to_have_attribute("data-state", "breached")
            badge = mark.locator(".sv-badge")
            await expect(badge).to_have_text("SLA breached")
            await expect(badge).to_have_class(re.compile(r"\bsv-sla-breached\b"))
            await expect(badge).not_to_have_class(re.compile(r"\bsv-sla-at_risk\b"))
            await dana.message("Sorry for the wait.", conversation_id=conversation)
            await expect(chat_row(mia, conversation)).to_contain_text("answered")
            await expect(mark).to_have_count(0)
        finally:
            await mia.close()
