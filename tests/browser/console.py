"""A page object for the agent console (`/console/`), as an agent uses it.

Every locator is a stable `data-test` attribute (docs/console.md#tests); every check goes
through `expect`, which waits until it holds: no sleeps. One `Console` is one browser context,
so several agents can work side by side in one browser.
"""

from __future__ import annotations

import re
from typing import Any

from playwright.async_api import Browser, BrowserContext, FilePayload, Locator, Page, expect

from tests.e2e.harness import PASSWORD, Server


class Console:
    def __init__(self, context: BrowserContext, page: Page, server: Server) -> None:
        self.context = context
        self.page = page
        self.server = server
        self.page_errors: list[str] = []  # uncaught exceptions in the page
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        self.login_form = self._t("login-form")
        self.login_error = self._t("login-error")
        self.me = self._t("me")
        self.status = self._t("status")
        self.load = self._t("load")
        self.chats = self._t("chat-item")
        self.offers = self._t("offer")
        self.transfer_offers = self._t("transfer-offer")
        self.title = self._t("chat-title")
        self.transcript = self._t("transcript")
        self.messages = self.transcript.locator("[data-test=message]")
        self.private_messages = self.transcript.locator("[data-test=private-message]")
        self.composer = self._t("composer")
        self.note_toggle = self._t("note-toggle")
        self.typing = self._t("typing")
        self.toasts = self._t("toast")
        self.canned = self._t("canned-picker")
        self.context_panel = page.locator("aside.context")

    def _t(self, name: str) -> Locator:
        return self.page.locator(f"[data-test={name}]")

    def t(self, name: str) -> Locator:
        """Any element by its data-test name."""
        return self._t(name)

    @classmethod
    async def open(cls, browser: Browser, server: Server, **options: Any) -> Console:
        """A fresh browser context on the console's sign-in page."""
        context = await browser.new_context(viewport={"width": 1360, "height": 820}, **options)
        page = await context.new_page()
        await page.goto(f"{server.http}/console/")
        console = cls(context, page, server)
        await expect(console.login_form).to_be_visible()
        return console

    @classmethod
    async def login_as(cls, browser: Browser, server: Server, email: str) -> Console:
        console = await cls.open(browser, server)
        await console.login(email)
        return console

    async def login(self, email: str, password: str = PASSWORD) -> None:
        """Sign in and wait until the socket is up (the agent is then online)."""
        await self._t("login-email").fill(email)
        await self._t("login-password").fill(password)
        await self._t("login-submit").click()
        await expect(self.me).to_be_visible()
        await expect(self._t("connection")).to_have_attribute("data-state", "online")

    async def logout(self) -> None:
        await self._t("logout").click()
        await expect(self.login_form).to_be_visible()

    def chat(self, name: str) -> Locator:
        """The chat list entry of the visitor called `name`."""
        return self.chats.filter(has=self.page.locator("[data-test=chat-name]", has_text=name))

    async def open_chat(self, name: str) -> None:
        await self.chat(name).click()
        await expect(self.title).to_have_text(name)

    async def send(self, text: str) -> None:
        """Type into the composer and press Enter."""
        await self.composer.fill(text)
        await self.composer.press("Enter")
        await expect(self.composer).to_have_value("")

    async def attach(self, name: str, mime: str, data: bytes) -> None:
        """Add a file to the composer and wait until it is uploaded."""
        await self._t("file-input").set_input_files(
            files=[FilePayload(name=name, mimeType=mime, buffer=data)]
        )
        await expect(self._t("tray-item").last).to_have_class(re.compile(r"\bdone\b"))

    def message(self, text: str) -> Locator:
        return self.messages.filter(has_text=text)

    def unread(self, name: str) -> Locator:
        return self.chat(name).locator("[data-test=unread]")

    async def close(self) -> None:
        assert not self.page_errors, self.page_errors
        await self.context.close()
