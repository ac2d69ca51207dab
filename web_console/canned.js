// Canned responses: typing "/" at the start of the message box opens a picker filtered by what
// follows (GET /api/v1/canned-responses?q=); choosing one puts its server-rendered text, with
// the variables filled for this chat, in the box (GET /api/v1/canned-responses/{id}/render).

import { fill, h, problemText } from "./dom.js";

const DEBOUNCE = 120; // ms between keystrokes before asking the server

export class CannedPicker {
  constructor(ctx, input, getConv) {
    this.ctx = ctx;
    this.input = input;
    this.getConv = getConv;
    this.items = [];
    this.index = 0;
    this.open = false;
    this.seq = 0;
    this.list = h("ul", { class: "canned-list", role: "listbox", id: "canned-list", "aria-label": "Canned responses" });
    this.el = h("div", { class: "canned", "data-test": "canned-picker", hidden: true }, this.list);
    input.setAttribute("aria-controls", "canned-list");
  }

  // After each input: open, filter or close.
  update() {
    const v = this.input.value;
    if (!v.startsWith("/") || v.includes("\n") || v.length > 40) return this.close();
    const q = v.slice(1);
    this.show();
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.fetch(q), DEBOUNCE);
  }

  async fetch(q) {
    const n = ++this.seq;
    const skill = this.getConv()?.skillSlug;
    const params = new URLSearchParams({ q });
    if (skill) params.set("skill", skill);
    try {
      const items = await this.ctx.api("GET", "/canned-responses?" + params);
      if (n !== this.seq || !this.open) return;
      this.items = items.slice(0, 50);
      this.index = 0;
      this.render();
    } catch (err) {
      if (n !== this.seq) return;
      this.items = [];
      fill(this.list, h("li", { class: "form-error" }, problemText(err)));
    }
  }

  show() {
    if (this.open) return;
    this.open = true;
    this.el.hidden = false;
    this.input.setAttribute("aria-expanded", "true");
    fill(this.list, h("li", { class: "empty" }, "Searching…"));
  }

  close() {
    if (!this.open) return;
    this.open = false;
    this.seq++;
    this.el.hidden = true;
    this.input.setAttribute("aria-expanded", "false");
    this.input.removeAttribute("aria-activedescendant");
  }

  render() {
    if (!this.items.length) {
      fill(this.list, h("li", { class: "empty" }, "No canned response matches."));
      return;
    }
    fill(
      this.list,
      this.items.map((c, i) =>
        h(
          "li",
          {
            id: "canned-" + i,
            role: "option",
            class: "canned-item" + (i === this.index ? " active" : ""),
            "aria-selected": i === this.index ? "true" : "false",
            "data-test": "canned-item",
            "data-shortcut": c.shortcut,
            onmousedown: (e) => (e.preventDefault(), this.choose(i)),
          },
          h("span", { class: "shortcut" }, "/" + c.shortcut),
          h("span", { class: "title" }, c.title),
          h("span", { class: "text" }, c.text),
        ),
      ),
    );
    this.input.setAttribute("aria-activedescendant", "canned-" + this.index);
    this.list.children[this.index]?.scrollIntoView({ block: "nearest" });
  }

  // Keys while open; true when the picker used the key.
  key(e) {
    if (!this.open) return false;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      if (!this.items.length) return true;
      this.index = (this.index + (e.key === "ArrowDown" ? 1 : -1) + this.items.length) % this.items.length;
      this.render();
      return true;
    }
    if (e.key === "Enter" || e.key === "Tab") {
      if (!this.items.length) return e.key === "Enter";
      this.choose(this.index);
      return true;
    }
    if (e.key === "Escape") {
      this.close();
      return true;
    }
    return false;
  }

  async choose(i) {
    const item = this.items[i];
    if (!item) return;
    this.close();
    const conv = this.getConv();
    let text = item.text;
    try {
      const res = await this.ctx.api("GET", `/canned-responses/${encodeURIComponent(item.id)}/render?conversation_id=${encodeURIComponent(conv.id)}`);
      text = res.text;
    } catch (err) {
      this.ctx.toast("Variables could not be filled: " + problemText(err), "warn");
    }
    this.input.value = text;
    this.input.dispatchEvent(new Event("input", { bubbles: true }));
    this.input.focus();
    this.input.setSelectionRange(text.length, text.length);
  }
}
