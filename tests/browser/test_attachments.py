"""Attachments in the widget, both ways, in headless Chromium against a real server.

The visitor attaches files with the picker, a drop and a paste; the agent (a protocol client)
gets them and downloads them over REST; the agent's files show as a preview and a chip in the
widget. Files over the limit or of a refused type never leave the page. Docs:
docs/widget.md#attachments.
"""

from __future__ import annotations

import base64
import re
import struct
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import FilePayload, Page, Request, expect

from tests.browser.test_widget import XSS, agent
from tests.browser.widget import Widget
from tests.conftest import Backend
from tests.e2e.harness import Client, Server

pytestmark = [pytest.mark.browser, pytest.mark.asyncio]

MAX_BYTES = 20_000
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def png(width: int = 24, height: int = 16, rgb: tuple[int, int, int] = (79, 70, 229)) -> bytes:
    """A real PNG of one colour (decodable, so the preview has a natural width)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


@pytest_asyncio.fixture
async def server(sqlite_backend: Backend) -> AsyncIterator[Server]:
    started = await Server(sqlite_backend, attachment_max_bytes=str(MAX_BYTES)).start()
    try:
        yield started
    finally:
        await started.stop()


def file(name: str, mime: str, data: bytes) -> FilePayload:
    """A file for the picker."""
    return {"name": name, "mimeType": mime, "buffer": data}


def uploads(page: Page) -> list[str]:
    """URLs of the upload requests the page makes from now on."""
    seen: list[str] = []

    def on_request(request: Request) -> None:
        if request.method == "POST" and "/visitor/attachments" in request.url:
            seen.append(request.url)

    page.on("request", on_request)
    return seen


async def hand_over(page: Page, event: str, name: str, data: bytes, mime: str) -> None:
    """Drag (`dragover`), drop (`drop`) or paste (`paste`) a file as a person would: an event
    carrying a DataTransfer with the file, on the panel (drag, drop) or the composer (paste)."""
    await page.evaluate(
        """([event, name, b64, mime]) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], name, { type: mime }));
            const root = document.querySelector('warmline-chat').shadowRoot;
            if (event === 'paste') {
                const init = { clipboardData: dt, bubbles: true, cancelable: true };
                root.querySelector('#wl-msg').dispatchEvent(new ClipboardEvent('paste', init));
                return;
            }
            root.querySelector('.panel').dispatchEvent(
                new DragEvent(event, { dataTransfer: dt, bubbles: true, cancelable: true }));
        }""",
        [event, name, base64.b64encode(data).decode(), mime],
    )


async def download(server: Server, client: Client, attachment_id: str) -> bytes:
    async with httpx.AsyncClient(base_url=server.http) as http:
        response = await http.get(
            f"/api/v1/attachments/{attachment_id}",
            headers={"Authorization": f"Bearer {client.token}"},
        )
    assert response.status_code == 200, response.text
    return response.content


async def agent_upload(server: Server, client: Client, name: str, data: bytes) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.http) as http:
        response = await http.post(
            "/api/v1/attachments",
            params={"filename": name},
            content=data,
            headers={"Authorization": f"Bearer {client.token}"},
        )
    assert response.status_code == 201, response.text
    uploaded: dict[str, Any] = response.json()
    return uploaded


def names(event: dict[str, Any]) -> list[str]:
    return [a["name"] for a in event["body"]["attachments"]]


class TestAttachments:
    async def test_visitor_sends_files(self, widget: Widget, server: Server) -> None:
        """A picture from the picker and a PDF dropped on the panel go with the next message;
        the agent gets both and downloads the very bytes."""
        dana = await agent(server, "Dana")
        await widget.start(topic="billing")
        page = widget.page
        clip = page.get_by_role("button", name="Attach files")
        await expect(clip).to_have_attribute("title", re.compile(r"PNG, JPEG.*PDF.*20 KB each"))
        picker = widget.panel.locator("input[type=file]")
        await expect(picker).to_have_attribute("accept", re.compile(r"image/png.*\.pdf"))

        picture = png()
        await picker.set_input_files(files=[file("pixel.png", "image/png", picture)])
        await hand_over(page, "dragover", "invoice.pdf", PDF, "application/pdf")
        await expect(widget.panel).to_have_class(re.compile(r"\bdrop\b"))  # the drop zone
        await hand_over(page, "drop", "invoice.pdf", PDF, "application/pdf")
        await expect(widget.panel).not_to_have_class(re.compile(r"\bdrop\b"))
        tray = widget.panel.locator(".tray li")
        await expect(tray).to_have_count(2)
        await expect(tray.locator(".name")).to_have_text(["pixel.png", "invoice.pdf"])
        await expect(tray.and_(page.locator("[data-state=done]"))).to_have_count(2)
        await widget.send("Here they are")
        await expect(tray).to_have_count(0)

        stored = await dana.event("message")
        assert stored["body"]["text"] == "Here they are"
        assert names(stored) == ["pixel.png", "invoice.pdf"]
        first, second = stored["body"]["attachments"]
        assert (first["image"], second["image"]) == (True, False)
        assert await download(server, dana, first["id"]) == picture
        assert await download(server, dana, second["id"]) == PDF

        mine = widget.mine("Here they are")
        await expect(mine).to_have_attribute("data-state", "sent")
        await expect(mine.locator(".thumb img")).to_have_attribute("src", re.compile("^blob:"))
        await expect(mine.locator(".chip .name")).to_have_text("invoice.pdf")

    async def test_agent_files_are_shown(self, widget: Widget, server: Server) -> None:
        """The agent's picture shows as a loaded preview that opens larger; their file as a chip
        whose download is the same bytes."""
        dana = await agent(server, "Dana")
        await widget.start(topic="billing")
        await widget.send("Can I see the label?")
        conversation = (await dana.event("agent.joined"))["conversation_id"]
        picture = png(120, 80, (16, 185, 129))
        ids = [
            (await agent_upload(server, dana, "label.png", picture))["id"],
            (await agent_upload(server, dana, "notes.txt", b"Parcel 42, shelf B\n"))["id"],
            (await agent_upload(server, dana, "unreachable.png", png()))["id"],
        ]
        page = widget.page
        await page.route(f"**/attachments/{ids[2]}", lambda route: route.fulfill(status=503))
        await dana.message("", conversation_id=conversation, attachments=ids)
        broken = page.get_by_role("button", name="Open the picture unreachable.png")
        await expect(broken).to_have_text("unreachable.png: no preview, click to download")

        thumb = page.get_by_role("button", name="Open the picture label.png")
        img = thumb.locator("img")
        await expect(img).to_have_attribute("src", re.compile("^blob:"))
        assert await img.evaluate("i => i.complete && i.naturalWidth") == 120
        await expect(widget.panel.locator(".row.them .bubble")).to_have_count(0)  # no text
        await thumb.click()
        viewer = widget.page.locator("warmline-chat dialog.viewer")
        await expect(viewer).to_be_visible()
        await expect(viewer.get_by_role("link", name="Download")).to_have_attribute(
            "download", "label.png"
        )
        await viewer.get_by_role("button", name="Close").click()
        await expect(viewer).to_be_hidden()

        chip = widget.panel.locator(".chip")
        await expect(chip.locator(".name")).to_have_text("notes.txt")
        await expect(chip.locator(".size")).to_have_text("19 B")
        async with page.expect_download() as info:
            await page.get_by_role("button", name="Download notes.txt").click()
        saved = await info.value
        assert saved.suggested_filename == "notes.txt"
        assert Path(await saved.path()).read_bytes() == b"Parcel 42, shelf B\n"

    async def test_refused_files_never_leave_the_page(self, widget: Widget, server: Server) -> None:
        """Too large, or a type the server does not take: said at once, naming the file and the
        limit or the accepted types, and not uploaded. A name made of markup stays text."""
        await widget.start(topic="billing")
        page = widget.page
        sent = uploads(page)
        picker = widget.panel.locator("input[type=file]")
        await picker.set_input_files(
            files=[
                file("huge.png", "image/png", png() + bytes(MAX_BYTES)),
                file("tool.exe", "application/x-msdownload", b"MZ"),
            ]
        )
        alert = widget.panel.locator(".files > .error")
        await expect(alert).to_have_text(
            re.compile(
                r"^“huge\.png” is too large: the limit is 20 KB per file\.\s+"
                r"“tool\.exe” cannot be sent: accepted types are PNG, JPEG, .*PDF.*\.$"
            )
        )
        await expect(widget.panel.locator(".tray li")).to_have_count(0)

        await hand_over(page, "paste", f"{XSS}.png", png(), "image/png")
        item = widget.panel.locator(".tray li")
        await expect(item.locator(".name")).to_have_text(f"{XSS}.png")
        await expect(item).to_have_attribute("data-state", "done")
        assert len(sent) == 1  # the pasted picture only
        await expect(alert).to_be_hidden()
        await widget.input.press("Enter")  # no text: the file alone
        row = widget.panel.locator(".row.me")
        await expect(row).to_have_attribute("data-state", "sent")
        await expect(row.locator(".thumb img")).to_have_attribute("alt", f"{XSS}.png")
        await expect(widget.panel.locator("img:not([src^='blob:'])")).to_have_count(0)
        assert widget.dialogs == []

    async def test_offline_then_reload_sends_once(self, widget: Widget, server: Server) -> None:
        """Uploaded, then the network goes before Send: the message with its file waits in the
        outbox, survives the page going away, and arrives once. A stored message whose file the
        server no longer has is refused once and marked, not resent forever."""
        dana = await agent(server, "Dana")
        await widget.start(topic="billing")
        await widget.send("hello")
        conversation = (await dana.event("agent.joined"))["conversation_id"]
        await widget.panel.locator("input[type=file]").set_input_files(
            files=[file("receipt.pdf", "application/pdf", PDF)]
        )
        await expect(widget.panel.locator(".tray li")).to_have_attribute("data-state", "done")

        context = widget.context
        await context.set_offline(True)
        await expect(widget.banner).to_have_text(re.compile("^Reconnecting"))
        await widget.send("the receipt")
        mine = widget.mine("the receipt")
        await expect(mine).to_have_attribute("data-state", "sending")
        await expect(mine.locator(".chip .name")).to_have_text("receipt.pdf")
        await widget.page.close()  # gone mid-send
        await context.set_offline(False)

        page = await context.new_page()
        again = Widget(context, page, server)
        await page.goto(f"{server.http}/demo")
        await again.open()
        mine = again.mine("the receipt")
        await expect(mine).to_have_attribute("data-state", "sent")
        await expect(mine.locator(".chip .name")).to_have_text("receipt.pdf")
        stored = await message(dana, "the receipt")
        assert names(stored) == ["receipt.pdf"]
        assert await download(server, dana, stored["body"]["attachments"][0]["id"]) == PDF

        lost = {
            "type": "message",
            "client_msg_id": "lost-file-1",
            "text": "with a lost file",
            "conversation_id": conversation,
            "attachments": ["00000000-0000-4000-8000-000000000000"],
            "files": [
                {
                    "id": "00000000-0000-4000-8000-000000000000",
                    "name": "gone.pdf",
                    "content_type": "application/pdf",
                    "size": 10,
                    "image": False,
                }
            ],
        }
        outbox = await store(page, lost)
        assert [m["client_msg_id"] for m in outbox] == ["lost-file-1"]
        await page.reload()
        await again.open()
        row = again.mine("with a lost file")
        await expect(row).to_have_attribute("data-state", "failed")
        await expect(row.locator(".tick")).to_have_text("!Not sent: a file is no longer available")
        assert await store(page) == []
        texts = [f["body"]["text"] for f in await dana.quiet(1.0) if f.get("kind") == "message"]
        assert texts == []
        await again.close()


async def message(client: Client, text: str) -> dict[str, Any]:
    """The next message event with this text (one and only one: nothing like it follows)."""
    while (event := await client.event("message"))["body"]["text"] != text:
        pass
    more = [f for f in await client.quiet(1.0) if f.get("body", {}).get("text") == text]
    assert more == []
    return event


async def store(page: Page, entry: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The widget's stored outbox, after appending `entry` to it when given."""
    outbox: list[dict[str, Any]] = await page.evaluate(
        """(entry) => {
            const key = Object.keys(localStorage).find((k) => k.startsWith('warmline:'));
            const data = JSON.parse(localStorage.getItem(key));
            if (entry) data.outbox.push(entry);
            localStorage.setItem(key, JSON.stringify(data));
            return data.outbox;
        }""",
        entry,
    )
    return outbox
