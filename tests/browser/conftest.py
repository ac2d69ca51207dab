"""Browser fixtures: Debian's Chromium driven by Playwright, one browser per test.

Playwright's own browser download does not work everywhere we run, so the tests use the
system's `/usr/bin/chromium` (`apt-get install chromium`; `.ci/run` installs it). Without it the
tests fail rather than skip: a widget nobody drove is a widget nobody tested.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, async_playwright, expect

from tests.browser.widget import Widget
from tests.e2e.harness import Server

CHROMIUM = Path("/usr/bin/chromium")
# Generous for 2 busy cores, and never a sleep: expect() polls and returns as soon as it holds.
expect.set_options(timeout=10_000)


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (as .ci/run does)")
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest_asyncio.fixture
async def widget(browser: Browser, server: Server) -> AsyncIterator[Widget]:
    """The /demo page of the test module's `server`, its widget not yet opened."""
    loaded = await Widget.load(browser, server)
    try:
        yield loaded
    finally:
        await loaded.close()
