"""The visitor widget's static files at `/widget/`, a demo host page at `/demo`, and the agent
console at `/console/`.

Serves `web_widget/` as it is in the source tree (no build step): ES modules and one CSS file,
with a `Cache-Control` that makes browsers revalidate (ETag / Last-Modified answer 304), so a
deploy reaches visitors at their next page view. Holds no chat logic: the widget talks to the
REST API and the WebSocket like any client. References: docs/widget.md, docs/console.md.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope
from typing_extensions import override

WIDGET_DIR = Path(__file__).resolve().parent.parent / "web_widget"
CONSOLE_DIR = Path(__file__).resolve().parent.parent / "web_console"
# Browsers refuse module scripts served with a non-JavaScript type; the platform's mimetypes
# table is not trusted for that (it varies with /etc/mime.types).
CONTENT_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


class WidgetFiles(StaticFiles):
    """StaticFiles with explicit types and revalidation on every use."""

    @override
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        content_type = CONTENT_TYPES.get(Path(path).suffix)
        if content_type and response.status_code == 200:  # noqa: PLR2004 - HTTP OK
            response.headers["content-type"] = content_type
        # no-cache = "store, but ask before each use": cheap 304s, never a stale widget
        response.headers["cache-control"] = "no-cache"
        return response


# The console holds an agent's session token, so its page may run and load only its own files:
# no inline script or style, no other origin, no framing (clickjacking), no plugins. `blob:`
# images are attachment previews fetched with the token; `'self'` in connect-src covers the
# same-origin WebSocket (CSP Level 3). Files served from /api carry their own sandboxing CSP.
CONSOLE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'; object-src 'none'"
)


class ConsoleFiles(WidgetFiles):
    """The widget's types and revalidation, plus a strict CSP and no framing or referrer."""

    @override
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers["content-security-policy"] = CONSOLE_CSP
        response.headers["x-frame-options"] = "DENY"
        response.headers["x-content-type-options"] = "nosniff"
        response.headers["referrer-policy"] = "no-referrer"
        return response


# A fictional shop whose own CSS is deliberately hostile: the widget must look the same anyway.
DEMO_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Pebble &amp; Pine — demo shop</title>
<style>
  * { font-family: "Comic Sans MS", "Comic Sans", cursive !important; color: #c00 !important;
      line-height: 2.2 !important; letter-spacing: .08em !important; box-sizing: content-box; }
  body { margin: 0; background: #fffbe6; }
  header, footer { background: #222; padding: 1rem 2rem; }
  header h1 { margin: 0; font-size: 1.6rem; }
  main { padding: 2rem; display: grid; gap: 1.5rem;
         grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); }
  .product { background: #fff; border: 4px dashed #0a0; padding: 1rem; }
  button { background: #ff0 !important; border: 3px solid #f0f !important;
           border-radius: 0 !important; padding: 12px 30px !important; font-size: 20px !important;
           text-transform: uppercase !important; transform: rotate(-2deg); }
  input, textarea, select { border: 3px dotted #00f !important; background: #eef !important; }
  p, li { font-size: 22px !important; margin: 2em 0 !important; }
  svg { display: none !important; }
  .launcher, .panel, .bubble { outline: 5px solid lime !important; }
</style>
</head>
<body>
<header><h1>Pebble &amp; Pine</h1></header>
<main>
  <section class="product"><h2>Granite mug</h2><p>$24 — holds tea, holds grudges.</p>
    <button>Add to cart</button></section>
  <section class="product"><h2>Pine coasters</h2><p>$12 for four, smells of forest.</p>
    <button>Add to cart</button></section>
  <section class="product"><h2>Pebble lamp</h2><p>$89, warm light, cold stone.</p>
    <button>Add to cart</button></section>
</main>
<footer><p class="launcher">Questions? Use the chat button in the corner.</p></footer>
<script type="module" src="/widget/widget.js" data-color="#4f46e5" data-position="right"
        data-greeting="Hi! Questions about an order or a product? We are here."
        data-lang="en" data-prechat="name,email,topic"
        data-topics="billing:Billing and orders,technical:Technical help,general:Something else">
</script>
</body>
</html>
"""


def install(app: FastAPI) -> None:
    """Mount `/widget/` and `/console/`, and add `GET /demo` and `GET /console` to `app`."""
    app.mount("/widget", WidgetFiles(directory=WIDGET_DIR), name="widget")

    @app.get("/console", include_in_schema=False)
    async def console() -> RedirectResponse:
        # relative module URLs in index.html resolve against the directory, so it needs its slash
        return RedirectResponse("/console/", status_code=308)

    app.mount("/console", ConsoleFiles(directory=CONSOLE_DIR, html=True), name="console")

    @app.get("/demo", include_in_schema=False)
    async def demo() -> HTMLResponse:
        return HTMLResponse(DEMO_PAGE, headers={"cache-control": "no-cache"})
