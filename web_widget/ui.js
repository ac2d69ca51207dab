// The widget's DOM, inside its shadow root. Builds elements with DOM APIs and sets every
// piece of text with textContent (links through links.js): nothing here parses HTML.

import { richText } from "./links.js";

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== false && v != null) node.setAttribute(k, v === true ? "" : v);
  }
  node.append(...children.filter(Boolean));
  return node;
}

function icon(d) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", d);
  svg.append(path);
  return svg;
}

const BUBBLE = "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z";
const SEND = "M3 20.5 21 12 3 3.5 3 10l12 2-12 2z";
const CLIP = "M16.5 6.5v11a4.5 4.5 0 0 1-9 0V5a3 3 0 0 1 6 0v11.5a1.5 1.5 0 0 1-3 0V6.5H9v10a3 3 0 0 0 6 0V5a4.5 4.5 0 0 0-9 0v12.5a6 6 0 0 0 12 0v-11z";
const SAVE = "M5 20h14v-2H5zM19 9h-4V3H9v6H5l7 7z";

// Save a Blob under this name through a temporary <a download>.
export function save(v, blob, name) {
  const url = URL.createObjectURL(blob);
  const a = el("a", { href: url, download: name, hidden: true });
  v.wrap.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// 2.4 MB, 310 KB, 12 B, in the language's units and number format.
export function size(t, n) {
  const [b, k, m] = t("units").split(" ");
  const [x, u] = n < 1024 ? [n, b] : n < 1048576 ? [n / 1024, k] : [n / 1048576, m];
  return x.toLocaleString(t.locale, { maximumFractionDigits: x < 10 ? 1 : 0 }) + " " + u;
}
const TICKS = { sending: "…", sent: "✓", read: "✓✓", failed: "!" };

export class View {
  constructor(root, cfg, t) {
    this.t = t;
    this.cfg = cfg;
    const c = cfg;
    this.badge = el("span", { class: "badge", "aria-hidden": "true", hidden: true });
    this.launcher = el(
      "button",
      { class: "launcher", type: "button", "aria-expanded": "false", "aria-controls": "wl-panel" },
      icon(BUBBLE),
      this.badge,
    );
    this.avatar = el("span", { class: "avatar", "aria-hidden": "true" });
    this.title = el("h2", { class: "title", text: t("title") });
    this.sub = el("p", { class: "sub", text: t("online") });
    this.closeBtn = el("button", { class: "x", type: "button", "aria-label": t("close"), text: "×" });
    this.banner = el("p", { class: "banner", role: "status", hidden: true });
    this.log = el("ol", { class: "log", role: "log", "aria-live": "polite", "aria-label": t("title") });
    this.queue = el("p", { class: "note live", role: "status", hidden: true });
    this.typing = el("p", { class: "typing", hidden: true });
    this.scroll = el(
      "div",
      { class: "scroll" },
      c.greeting && el("p", { class: "greeting", text: c.greeting }),
      this.log,
      this.queue,
      this.typing,
    );
    this.prechat = this.buildPrechat();
    this.input = el("textarea", {
      id: "wl-msg",
      rows: "1",
      maxlength: "4000",
      placeholder: t("placeholder"),
    });
    this.clip = el("button", { class: "clip", type: "button", "aria-label": t("attach"), title: t("attach") }, icon(CLIP));
    this.picker = el("input", { type: "file", multiple: true, hidden: true, tabindex: "-1" });
    this.tray = el("ul", { class: "tray", "aria-label": t("trayLabel"), hidden: true });
    this.trayNote = el("p", { class: "note", role: "status", hidden: true });
    this.fileError = el("p", { class: "error", role: "alert", hidden: true });
    this.composer = el(
      "form",
      { class: "composer" },
      el("div", { class: "files" }, this.tray, this.trayNote, this.fileError),
      el("label", { class: "sr", for: "wl-msg", text: t("message") }),
      this.clip,
      this.picker,
      this.input,
      el("button", { class: "send", type: "submit", "aria-label": t("send") }, icon(SEND)),
    );
    this.panel = el(
      "section",
      { class: "panel", id: "wl-panel", role: "dialog", "aria-label": t("title"), "data-drop": t("dropHere"), hidden: true },
      el(
        "header",
        {},
        this.avatar,
        el("div", { class: "heading" }, this.title, this.sub),
        this.closeBtn,
      ),
      this.banner,
      this.scroll,
      this.prechat,
      this.offline = this.buildOffline(),
      this.after = this.buildAfter(),
      this.composer,
    );
    // a picture at full size, with a download link; Escape or the button closes it
    this.viewer = el("dialog", { class: "viewer", onclose: () => this.big.removeAttribute("src") });
    this.big = el("img", { alt: "" });
    this.saveBig = el("a", { class: "secondary", text: t("downloadFile") });
    this.viewer.append(
      this.big,
      el("form", { method: "dialog", class: "actions" }, this.saveBig, el("button", { class: "primary", text: t("closeImage") })),
    );
    this.urls = new Set(); // blob: URLs of the previews shown, revoked with the log
    // previews are fetched when they scroll into view
    this.seen = new IntersectionObserver((es) => {
      for (const e of es) if (e.isIntersecting) this.seen.unobserve(e.target), e.target.load();
    });
    this.wrap = el(
      "div",
      { class: `wl ${c.position}`, lang: t.lang, hidden: true },
      this.panel,
      this.launcher,
      this.viewer,
    );
    if (c.color) {
      this.wrap.style.setProperty("--wl-accent", c.color);
      this.wrap.style.setProperty("--wl-on-accent", readableOn(c.color));
    }
    root.append(this.wrap);
    this.setUnread(0);
  }

  buildPrechat() {
    const t = this.t;
    const fields = [];
    const field = (name, label, input) =>
      el("label", { class: "field", "data-field": name }, el("span", { text: label }), input);
    if (this.cfg.prechat.includes("name"))
      fields.push(field("name", t("name"), el("input", { name: "name", required: true, autocomplete: "name", maxlength: "128" })));
    if (this.cfg.prechat.includes("email"))
      fields.push(field("email", t("email"), el("input", { name: "email", type: "email", autocomplete: "email", maxlength: "254" })));
    if (this.cfg.prechat.includes("topic") && this.cfg.topics.length) {
      const select = el("select", { name: "topic", required: true });
      select.append(el("option", { value: "", text: t("topicChoose") }));
      for (const [slug, label] of this.cfg.topics) select.append(el("option", { value: slug, text: label }));
      fields.push(field("topic", t("topic"), select));
    }
    this.prechatError = el("p", { class: "error", role: "alert", hidden: true });
    return el(
      "form",
      { class: "prechat", hidden: true },
      el("p", { text: t("prechatIntro") }),
      ...fields,
      this.prechatError,
      el("button", { class: "primary", type: "submit", text: t("start") }),
    );
  }

  // While the chat is offline: email (unless known) and a message, instead of the composer.
  buildOffline() {
    const t = this.t;
    this.offlineLead = el("p", { class: "lead" });
    this.offlineEmail = el("input", { name: "email", type: "email", autocomplete: "email", maxlength: "254" });
    this.offlineText = el("textarea", { name: "message", rows: "3", maxlength: "4000" });
    this.offlineError = el("p", { class: "error", role: "alert", hidden: true });
    return el(
      "form",
      { class: "prechat offline", novalidate: true, hidden: true },
      this.offlineLead,
      (this.offlineEmailField = el("label", { class: "field" }, el("span", { text: t("yourEmail") }), this.offlineEmail)),
      el("label", { class: "field" }, el("span", { text: t("offlineMessage") }), this.offlineText),
      this.offlineError,
      el("button", { class: "primary", type: "submit", text: t("offlineSend") }),
    );
  }

  showOffline(on, email) {
    this.offline.hidden = !on;
    this.composer.hidden = on || !this.after.hidden;
    this.toBottom();
    if (!on) return;
    this.offlineEmailField.hidden = !!email;
    this.offlineEmail.required = !email;
    this.offlineLead.textContent = this.t(email ? "offlineAskKnown" : "offlineAsk", { email });
  }

  // A 1…n scale: a radio group named by its legend, the ends labelled (their buttons say it
  // too). Arrows move and choose; Tab leaves it.
  scale(id, n, label) {
    const t = this.t;
    const box = el("div", { class: "scale" });
    const q = el(
      "fieldset",
      { role: "radiogroup", "aria-labelledby": id },
      el("legend", { class: "lead", id, text: t(id) }),
      box,
      el("p", { class: "ends", "aria-hidden": "true" }, el("span", { text: label(1) }), el("span", { text: label(n) })),
    );
    q.set = (v) => {
      q.value = v;
      if (this.rateError) this.rateError.hidden = true;
      [...box.children].forEach((b, i) => {
        b.setAttribute("aria-checked", ++i === v);
        b.tabIndex = i === (v || 1) ? 0 : -1;
      });
    };
    for (let i = 1; i <= n; i++) {
      const name = label(i);
      box.append(
        el("button", {
          type: "button",
          class: "score",
          role: "radio",
          "aria-label": name && t("rate", { n: i, label: name }),
          title: name,
          text: i,
          onclick: () => q.set(i),
          onkeydown: (e) => {
            const to = i + ({ ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 }[e.key] || 0);
            if (to === i) return;
            e.preventDefault();
            box.children[Math.min(n, Math.max(1, to)) - 1].click();
            box.querySelector("[tabindex='0']").focus();
          },
        }),
      );
    }
    q.set(0);
    return q;
  }

  // After the close: a CSAT rating (and the effort question when asked), the transcript, and a
  // way to start again.
  buildAfter() {
    const t = this.t;
    this.stars = this.scale("rateAsk", 5, (n) => t("rate" + n));
    this.effort = this.scale("effortAsk", 7, (n) => (n % 6 === 1 ? t("effort" + n) : ""));
    this.comment = el("textarea", { id: "wl-comment", name: "comment", rows: "2", maxlength: "1000" });
    this.rateError = el("p", { class: "error", role: "alert", hidden: true });
    this.csat = el(
      "form",
      { class: "csat" },
      this.stars,
      this.effort,
      el("label", { class: "field" }, el("span", { text: t("comment") }), this.comment),
      this.rateError,
      el("button", { class: "primary", type: "submit", text: t("rateSend") }),
    );
    this.thanks = el("p", { class: "thanks", role: "status", hidden: true });
    this.afterError = el("p", { class: "error", role: "alert", hidden: true });
    this.download = el("button", { class: "secondary", type: "button", text: t("transcript") });
    this.restart = el("button", { class: "secondary", type: "button", text: t("newChat") });
    return el(
      "div",
      { class: "prechat after", hidden: true },
      this.csat,
      this.thanks,
      this.afterError,
      el("div", { class: "actions" }, this.download, this.restart),
    );
  }

  // `effort`: the close asked the effort question too.
  showAfter(on, rated, effort) {
    this.after.hidden = !on;
    this.composer.hidden = on || !this.offline.hidden;
    this.toBottom();
    this.csat.hidden = !!rated;
    this.effort.hidden = !effort;
    this.thanks.hidden = !rated;
    this.thanks.textContent = rated ? this.t("rateThanks") : "";
    if (on) return;
    this.stars.set(0);
    this.effort.set(0);
    this.comment.value = "";
    this.rateError.hidden = this.afterError.hidden = true;
  }

  setError(p, text) {
    p.hidden = !text;
    p.textContent = text || "";
  }

  setOpen(open) {
    this.panel.hidden = !open;
    this.launcher.setAttribute("aria-expanded", String(open));
    this.wrap.classList.toggle("open", open);
    this.setUnread(this.unread);
  }

  setUnread(n) {
    this.unread = n;
    this.badge.hidden = !n;
    this.badge.textContent = n > 9 ? "9+" : String(n);
    const open = !this.panel.hidden;
    this.launcher.setAttribute("aria-label", open ? this.t("close") : n ? this.t("openUnread", { n }) : this.t("open"));
  }

  // The pre-chat form with these fields (none: the composer instead).
  showPrechat(fields) {
    const on = fields.length > 0;
    for (const label of this.prechat.querySelectorAll("[data-field]")) {
      label.hidden = !fields.includes(label.dataset.field);
      label.lastChild.disabled = label.hidden; // neither required nor submitted
    }
    this.prechat.hidden = !on;
    // a closed or offline chat keeps its form (opening the panel after a reload's replay)
    this.composer.hidden = on || !this.after.hidden || !this.offline.hidden;
    this.scroll.classList.toggle("short", on);
  }

  setBanner(text) {
    this.banner.hidden = !text;
    this.banner.textContent = text || "";
  }

  setSub(connecting) {
    this.sub.textContent = this.t(connecting ? "connecting" : this.agent ? "helping" : "online");
  }

  setAgent(agent) {
    this.agent = agent;
    this.setSub(false);
    this.title.textContent = agent ? agent.name || this.t("agent") : this.t("title");
    this.avatar.replaceChildren();
    const src = agent?.avatar_url;
    if (src && /^https?:\/\//i.test(src)) this.avatar.append(el("img", { src, alt: "" }));
    else if (agent?.name) this.avatar.textContent = agent.name.trim()[0].toUpperCase();
    this.avatar.classList.toggle("on", !!agent);
  }

  // One log row per event, kept in seq order; rows still waiting for their seq stay last.
  place(row, seq) {
    if (seq != null) row.dataset.seq = seq;
    let before = null;
    for (const other of this.log.children) {
      if (other === row || other.dataset.old) continue;
      const s = other.dataset.seq;
      if (s === undefined || (seq != null && Number(s) > seq)) {
        before = other;
        break;
      }
    }
    if (seq == null) before = null;
    this.log.insertBefore(row, before);
    this.toBottom();
  }

  message({ mine, who, text, files = [], seq, state, time, cmid }) {
    const row = el(
      "li",
      { class: `row ${mine ? "me" : "them"}`, title: time || false },
      !mine && who && el("span", { class: "who", text: who }),
      text && el("p", { class: "bubble" }, richText(text)),
      ...files.map((f) => this.file(f)),
    );
    if (cmid) row.dataset.cmid = cmid;
    if (mine) row.append(el("span", { class: "tick" }));
    this.place(row, seq);
    if (mine) this.tick(row, state);
    return row;
  }

  tick(row, state, why) {
    row.dataset.state = state;
    const tick = row.querySelector(".tick");
    tick.replaceChildren(
      el("span", { "aria-hidden": "true", text: TICKS[state] }),
      el("span", { class: why ? "" : "sr", text: why || this.t(state === "failed" ? "failedSend" : state) }),
    );
  }

  // An attachment in a message: a picture's preview (opens larger), or a chip to download.
  file(f) {
    const t = this.t;
    const name = f.name;
    const get = () => this.fetch(f.id);
    const down = async () => {
      try {
        save(this, await get(), name);
      } catch {
        node.classList.add("broken");
        node.title = t("fileFailed");
      }
    };
    const node = f.image
      ? el("button", { type: "button", class: "thumb", "aria-label": t("openImage", { name }), title: name })
      : el(
          "div",
          { class: "chip" },
          el("span", { class: "name", text: name }),
          el("span", { class: "size", text: size(t, f.size) }),
          el("button", { type: "button", class: "clip", "aria-label": t("download", { name }), title: t("downloadFile"), onclick: down }, icon(SAVE)),
        );
    if (!f.image) return node;
    node.load = async () => {
      try {
        const img = el("img", { alt: name, src: this.keep(URL.createObjectURL(await get())) });
        await img.decode();
        node.append(img);
        node.onclick = () => {
          this.big.src = this.saveBig.href = img.src;
          this.big.alt = this.saveBig.download = name;
          this.viewer.showModal();
        };
      } catch {
        node.classList.add("broken");
        node.textContent = t("previewFailed", { name });
        node.onclick = down;
      }
    };
    this.seen.observe(node);
    return node;
  }

  keep(url) {
    this.urls.add(url);
    return url;
  }

  clearLog() {
    this.log.replaceChildren();
    for (const u of this.urls) URL.revokeObjectURL(u);
    this.urls.clear();
  }

  // What the server accepts: the picker's filter and the paperclip's hint.
  setLimits(l) {
    const t = this.t;
    this.types = l.types.map((x) => x.label).join(", ");
    this.picker.accept = l.types.flatMap((x) => [x.mime, ...x.extensions]).join(",");
    this.clip.title = t("attachHint", { types: this.types, max: size(t, l.max_bytes), n: l.max_per_message });
  }

  // A file in the tray while it uploads: name, size, progress, and a button to remove it.
  upload(file, remove) {
    const t = this.t;
    const name = file.name;
    const li = el(
      "li",
      {},
      el("span", { class: "name", text: name }),
      el("span", { class: "size", text: size(t, file.size) }),
      el("button", { type: "button", class: "x", "aria-label": t("removeFile", { name }), text: "×", onclick: remove }),
    );
    li.append((li.bar = el("progress", { max: "1", value: "0", "aria-label": name })));
    this.tray.append(li);
    this.tray.hidden = false;
    this.toBottom();
    return li;
  }

  uploadFailed(li, why) {
    li.dataset.state = "failed";
    li.bar.replaceWith(el("span", { class: "error", role: "alert", text: why }));
  }

  unupload(li) {
    li.remove();
    this.tray.hidden = !this.tray.children.length;
  }

  notice(text, seq) {
    this.place(el("li", { class: "note", text }), seq);
  }

  setQueue(text) {
    this.queue.hidden = !text;
    this.queue.textContent = text || "";
    this.toBottom();
  }

  setTyping(text) {
    this.typing.hidden = !text;
    this.typing.textContent = text || "";
    this.toBottom();
  }

  toBottom() {
    this.scroll.scrollTop = this.scroll.scrollHeight;
  }
}

// Black or white text, whichever reads better on the site's accent colour (WCAG luminance).
function readableOn(color) {
  const probe = document.createElement("canvas").getContext("2d");
  if (!probe) return "#fff";
  probe.fillStyle = color;
  const hex = probe.fillStyle; // normalised to #rrggbb
  const [r, g, b] = [1, 3, 5].map((i) => {
    const c = parseInt(hex.slice(i, i + 2), 16) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.35 ? "#111" : "#fff";
}
