// The inbox column: chat offers (accept / decline, countdown), transfer offers (summary, note,
// open to read and talk privately, accept / decline), the agent's chats (unread counts, how
// long the customer has waited), and offline messages to take.

import { duration, fill, h, problemText, secondsSince, secondsUntil } from "./dom.js";

const OFFLINE_POLL = 30000; // ms; offline messages change slowly, and a refresh button is there

export class Inbox {
  constructor(root, ctx, desk) {
    this.root = root;
    this.ctx = ctx;
    this.desk = desk;
    this.offline = [];
    this.offlineError = "";
    this.offersEl = h("section", { class: "box offers", "aria-label": "Offers", "data-test": "offers" });
    this.transfersEl = h("section", { class: "box transfers", "aria-label": "Transfer offers", "data-test": "transfer-offers" });
    this.chatsEl = h("ul", { class: "chat-list", "aria-label": "Your chats", "data-test": "chat-list" });
    this.offlineEl = h("ul", { class: "offline-list", "data-test": "offline-list" });
    this.offlineCount = h("span", { class: "count" });
    fill(
      root,
      this.offersEl,
      this.transfersEl,
      h("h2", { class: "box-title" }, "Chats"),
      this.chatsEl,
      h(
        "details",
        { class: "offline", "data-test": "offline", open: true },
        h("summary", {}, "Offline messages ", this.offlineCount, h("button", { class: "icon small", "aria-label": "Refresh offline messages", title: "Refresh", onclick: (e) => (e.preventDefault(), this.loadOffline()) }, "↻")),
        this.offlineEl,
      ),
    );
    desk.listen((what) => (what === "tick" ? this.tick() : what !== "typing" && this.render()));
    ctx.on("taken", () => this.loadOffline());
    ctx.on("welcome", () => this.loadOffline());
    this.poll = setInterval(() => this.loadOffline(), OFFLINE_POLL);
    this.render();
  }

  async loadOffline() {
    try {
      this.offline = await this.ctx.api("GET", "/conversations/offline?limit=50");
      this.offlineError = "";
    } catch (err) {
      if (err.status === 401) return clearInterval(this.poll);
      this.offlineError = problemText(err);
    }
    this.renderOffline();
  }

  render() {
    this.renderOffers();
    this.renderTransfers();
    this.renderChats();
    this.renderOffline();
  }

  renderOffers() {
    const offers = [...this.desk.offers.values()].sort((a, b) => a.expires_at.localeCompare(b.expires_at));
    this.offersEl.hidden = !offers.length;
    fill(
      this.offersEl,
      h("h2", { class: "box-title" }, "Offered to you"),
      offers.map((o) =>
        h(
          "article",
          { class: "card offer", "data-test": "offer", "data-offer": o.offer_id },
          h("div", { class: "row" }, h("strong", {}, o.visitor?.name || "Visitor"), h("span", { class: "countdown", "data-expires": o.expires_at }, duration(secondsUntil(o.expires_at)))),
          o.preview ? h("p", { class: "preview" }, o.preview) : null,
          o.summary?.text ? h("pre", { class: "summary" }, o.summary.text) : null,
          h(
            "div",
            { class: "row actions" },
            h("button", { class: "primary", "data-test": "offer-accept", onclick: () => this.ctx.send({ type: "accept", offer_id: o.offer_id }) }, "Accept"),
            h("button", { class: "ghost", "data-test": "offer-decline", onclick: () => this.ctx.send({ type: "decline", offer_id: o.offer_id }) }, "Decline"),
          ),
        ),
      ),
    );
  }

  renderTransfers() {
    const list = [...this.desk.transfers.values()];
    this.transfersEl.hidden = !list.length;
    fill(
      this.transfersEl,
      h("h2", { class: "box-title" }, "Transfers for you"),
      list.map((t) =>
        h(
          "article",
          { class: "card transfer-offer", "data-test": "transfer-offer", "data-transfer": t.transfer_id },
          h(
            "div",
            { class: "row" },
            h("strong", {}, t.visitor?.name || "Visitor"),
            h("span", { class: "muted" }, t.mode === "escalation" ? " escalated" : " from " + (t.from_agent?.name || "—")),
            h("span", { class: "countdown", "data-expires": t.expires_at }, duration(secondsUntil(t.expires_at))),
          ),
          t.reason ? h("p", { class: "reason" }, t.reason) : null,
          t.note ? h("p", { class: "note-text", "data-test": "transfer-note" }, "Note: ", t.note) : null,
          t.summary?.text ? h("pre", { class: "summary", "data-test": "transfer-summary" }, t.summary.text) : null,
          h(
            "div",
            { class: "row actions" },
            h("button", { class: "primary", "data-test": "transfer-accept", onclick: () => this.ctx.send({ type: "transfer_accept", transfer_id: t.transfer_id }) }, "Accept"),
            h("button", { class: "ghost", "data-test": "transfer-open", onclick: () => this.ctx.openChat(t.conversation_id) }, "Read"),
            h("button", { class: "ghost", "data-test": "transfer-decline", onclick: () => this.ctx.send({ type: "transfer_decline", transfer_id: t.transfer_id }) }, "Decline"),
          ),
        ),
      ),
    );
  }

  renderChats() {
    const list = this.desk.list();
    if (!list.length) {
      fill(this.chatsEl, h("li", { class: "empty" }, this.desk.offers.size ? "Accept an offer to start." : "No chats yet. New chats appear here."));
      return;
    }
    fill(
      this.chatsEl,
      list.map((c) => {
        const unread = c.mine ? c.unread() : 0;
        const selected = this.desk.current === c.id;
        const badge = c.state === "closed" ? "Closed" : c.mode === "transfer" ? "Transfer" : c.mode === "monitor" ? "Monitoring" : c.mode === "barge" ? "Joined" : c.mode === "gone" ? "Moved" : null;
        return h(
          "li",
          {
            class: "chat-item" + (selected ? " selected" : "") + (unread ? " unread" : "") + (c.mine && c.state !== "closed" ? "" : " other"),
            tabindex: "0",
            "aria-current": selected ? "true" : null,
            "aria-label": `${c.label()}${unread ? `, ${unread} unread` : ""}${badge ? `, ${badge}` : ""}: ${c.preview(this.ctx.me.id)}`,
            "data-test": "chat-item",
            "data-conversation": c.id,
            onclick: () => this.ctx.openChat(c.id),
            onkeydown: (e) => (e.key === "Enter" || e.key === " ") && (e.preventDefault(), this.ctx.openChat(c.id)),
          },
          h(
            "div",
            { class: "row" },
            h("span", { class: "name", "data-test": "chat-name" }, c.label()),
            badge ? h("span", { class: "tag small" }, badge) : null,
            unread ? h("span", { class: "badge", "data-test": "unread", "aria-label": unread + " unread" }, String(unread)) : null,
          ),
          h(
            "div",
            { class: "row sub" },
            h("span", { class: "preview" }, c.preview(this.ctx.me.id)),
            c.mine && c.state !== "closed" && c.awaitingSince ? h("span", { class: "wait", "data-test": "waiting", "data-since": c.awaitingSince, title: "Waiting for your reply" }, duration(secondsSince(c.awaitingSince))) : null,
          ),
        );
      }),
    );
  }

  renderOffline() {
    this.offlineCount.textContent = this.offline.length ? `(${this.offline.length})` : "";
    if (this.offlineError) return fill(this.offlineEl, h("li", { class: "form-error" }, this.offlineError));
    if (!this.offline.length) return fill(this.offlineEl, h("li", { class: "empty" }, "None waiting."));
    fill(
      this.offlineEl,
      this.offline.map((o) =>
        h(
          "li",
          { class: "card offline-item", "data-test": "offline-item", "data-conversation": o.id },
          h("div", { class: "row" }, h("strong", {}, o.visitor?.name || o.visitor?.email || "Visitor"), h("span", { class: "muted" }, ago(o.left_at))),
          h("p", { class: "preview" }, o.preview || ""),
          h("button", { class: "small", "data-test": "offline-take", onclick: () => this.ctx.send({ type: "take", conversation_id: o.id }) }, "Take"),
        ),
      ),
    );
  }

  // Once a second: countdowns and waiting times, without a redraw of the lists.
  tick() {
    for (const el of this.root.querySelectorAll("[data-expires]")) el.textContent = duration(secondsUntil(el.dataset.expires));
    for (const el of this.root.querySelectorAll("[data-since]")) {
      const s = secondsSince(el.dataset.since);
      el.textContent = duration(s);
      el.classList.toggle("late", s > 60);
    }
  }

  acceptOldest() {
    const offers = [...this.desk.offers.values()].sort((a, b) => a.expires_at.localeCompare(b.expires_at));
    if (offers.length) return this.ctx.send({ type: "accept", offer_id: offers[0].offer_id });
    const t = [...this.desk.transfers.values()].sort((a, b) => a.expires_at.localeCompare(b.expires_at))[0];
    if (t) return this.ctx.send({ type: "transfer_accept", transfer_id: t.transfer_id });
    this.ctx.toast("No offer to accept.");
  }
}

function ago(iso) {
  const s = secondsSince(iso);
  if (s < 60) return "just now";
  if (s < 3600) return Math.floor(s / 60) + " min ago";
  if (s < 86400) return Math.floor(s / 3600) + " h ago";
  return Math.floor(s / 86400) + " d ago";
}
