// Warmline visitor widget loader: one <script type="module"> tag on the host page, its data-*
// attributes the settings; window.Warmline.identify(jwt) and .logout() for single-page sites.
// Drawn in a shadow root on one <warmline-chat> element: the page's CSS and the widget's
// cannot touch each other. Usage and every attribute: docs/widget.md (this file is sent to
// every visitor: the documentation lives there).

import { Chat } from "./chat.js";
import { pick, strings } from "./strings.js";

const here = new URL(import.meta.url);
const tag = [...document.querySelectorAll("script[src]")].find((s) => s.src === here.href);
const data = tag?.dataset || {};

function list(value, fallback) {
  return (value ?? fallback).split(",").map((s) => s.trim()).filter(Boolean);
}

const cfg = {
  server: (data.server || new URL("..", here).href).replace(/\/+$/, ""),
  color: data.color && CSS.supports("color", data.color) ? data.color : "",
  position: data.position === "left" ? "left" : "right",
  greeting: data.greeting || "",
  // the tag's language; else the visitor's browser languages, then the page's; else English
  lang: pick(data.lang || [], navigator.languages || navigator.language || [], document.documentElement.lang),
  prechat: list(data.prechat, "name,email"),
  identity: data.identityToken || "",
  topics: list(data.topics, "").map((pair) => {
    const [slug, label] = pair.split(":");
    return [slug.trim(), (label || slug).trim()];
  }),
};

function mount() {
  if (document.querySelector("warmline-chat")) return; // the tag was included twice
  const host = document.createElement("warmline-chat");
  const root = host.attachShadow({ mode: "open" });
  const css = document.createElement("link");
  css.rel = "stylesheet";
  css.href = new URL("widget.css", here).href;
  root.append(css);
  document.body.append(host);
  const chat = new Chat(root, cfg, strings(cfg.lang));
  // the one global: for sites whose user logs in or out after the page loaded
  window.Warmline = Object.freeze({
    identify: (jwt) => chat.identify(String(jwt)),
    logout: () => chat.logout(),
  });
  // shown once styled, so the page never flashes an unstyled widget
  css.onload = css.onerror = () => (chat.view.wrap.hidden = false);
}

if (document.body) mount();
else addEventListener("DOMContentLoaded", mount);
