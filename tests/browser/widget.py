"""A page object for the visitor widget on the demo page, as a visitor uses it.

Playwright's CSS and role locators pierce open shadow roots, so they reach into the widget's
`<warmline-chat>` element as a person's eyes would. Every check goes through `expect`, which
waits until it holds: no sleeps.
"""

from __future__ import annotations

from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Dialog,
    Locator,
    Page,
    expect,
)

from tests.e2e.harness import Server


class Widget:
    def __init__(self, context: BrowserContext, page: Page, server: Server) -> None:
        self.context = context
        self.page = page
        self.server = server
        self.dialogs: list[str] = []  # alert()/confirm() a message managed to open
        self.page_errors: list[str] = []  # uncaught exceptions in the page
        self.warnings: list[str] = []  # console.warn() lines
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        page.on("console", self._console)
        root = page.locator("warmline-chat")
        self.launcher = root.locator(".launcher")
        self.badge = root.locator(".badge")
        self.panel = root.locator(".panel")
        self.title = root.locator(".title")
        self.banner = root.locator(".banner")
        self.queue = root.locator(".note.live")
        self.typing = root.locator(".typing")
        self.input = page.get_by_label("Your message", exact=True)
        self.rows = root.locator(".log .row")
        self.bubbles = root.locator(".log .row .bubble")
        self.notes = root.locator(".log .note")

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "warning":
            self.warnings.append(message.text)

    async def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        await dialog.dismiss()

    @classmethod
    async def load(cls, browser: Browser, server: Server) -> Widget:
        context = await browser.new_context()
        page = await context.new_page()
        await page.goto(f"{server.http}/demo")
        return cls(context, page, server)

    async def open(self) -> None:
        await self.launcher.click()
        await expect(self.panel).to_be_visible()

    async def start(self, *, name: str = "Ada", topic: str = "billing") -> None:
        """Open the widget and fill in the pre-chat form."""
        await self.open()
        await self.page.get_by_label("Name", exact=True).fill(name)
        await self.page.get_by_label("Email", exact=True).fill(f"{name.lower()}@example.com")
        await self.page.get_by_label("Topic").select_option(topic)
        await self.page.get_by_role("button", name="Start chat").click()
        await expect(self.input).to_be_focused()

    async def send(self, text: str) -> None:
        await self.input.fill(text)
        await self.input.press("Enter")
        await expect(self.input).to_have_value("")

    def mine(self, text: str) -> Locator:
        """The visitor's own message row with exactly this text."""
        return self.rows.filter(has=self.page.locator(".bubble", has_text=text)).and_(
            self.page.locator(".row.me")
        )

    async def close(self) -> None:
        assert not self.page_errors, self.page_errors
        await self.context.close()
