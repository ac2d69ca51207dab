// What the visitor sees of their conversation: turns protocol frames (docs/protocol.md) into
// View calls, and the visitor's actions (open, pre-chat, typing, send) into frames.

import { Connection } from "./connection.js";
import { View } from "./ui.js";

const TYPING_EVERY = 3000; // ms between our "start" frames while the visitor keeps typing
const TYPING_IDLE = 2500; // ms without a keystroke before we send "stop"
const TYPING_EXPIRES = 6000; // ms after which the agent's indicator goes even without a "stop"
const REQUEUED = new Set(["agent_disconnected", "agent_deactivated", "unanswered", "transferred"]);

export class Chat {
  constructor(root, cfg, t) {
    this.t = t;
    this.cfg = cfg;
    this.view = new View(root, cfg, t);
    this.conn = new Connection(cfg.server, {
      frame: (f) => this.frame(f),
      state: (s) => this.state(s),
    });
    this.rows = new Map(); // client_msg_id -> row of the visitor's own messages
    this.agentRead = 0;
    this.sentRead = 0;
    this.closed = false;
    this.wire();
    for (const m of this.conn.outbox) this.pending(m); // typed before a reload, not acked yet
    if (this.conn.token) this.conn.connect();
  }

  wire() {
    const v = this.view;
    v.launcher.addEventListener("click", () => this.toggle(v.panel.hidden));
    v.closeBtn.addEventListener("click", () => this.toggle(false));
    v.panel.addEventListener("keydown", (e) => e.key === "Escape" && this.toggle(false));
    v.prechat.addEventListener("submit", (e) => {
      e.preventDefault();
      this.startFromForm();
    });
    v.composer.addEventListener("submit", (e) => {
      e.preventDefault();
      this.send();
    });
    v.input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.send();
      }
    });
    v.input.addEventListener("input", () => this.typed());
    document.addEventListener("visibilitychange", () => this.markRead());
  }

  get needsPrechat() {
    return this.cfg.prechat.length > 0 && !this.conn.token;
  }

  toggle(open) {
    const v = this.view;
    v.setOpen(open);
    if (!open) return v.launcher.focus();
    v.showPrechat(this.needsPrechat);
    (this.needsPrechat ? v.prechat.querySelector("input,select") : v.input)?.focus();
    this.markRead();
  }

  async startFromForm() {
    const form = new FormData(this.view.prechat);
    const profile = {};
    for (const k of ["name", "email"]) if (form.get(k)) profile[k] = String(form.get(k)).trim();
    if (form.get("topic")) this.conn.remember("skill", String(form.get("topic")));
    const error = this.view.prechatError;
    try {
      await this.conn.startSession(profile);
    } catch {
      error.textContent = this.t("startFailed");
      error.hidden = false;
      return;
    }
    error.hidden = true;
    this.view.showPrechat(false);
    this.view.input.focus();
    this.conn.connect();
  }

  async send() {
    const text = this.view.input.value.trim();
    if (!text) return;
    if (!this.conn.token) {
      try {
        await this.conn.startSession({});
      } catch {
        return this.view.setBanner(this.t("reconnecting"));
      }
      this.conn.connect();
    }
    this.view.input.value = "";
    this.stopTyping();
    const extra = {};
    const conv = this.closed ? null : this.conn.conversation;
    if (conv) extra.conversation_id = conv;
    else {
      if (this.conn.data.skill) extra.skill = this.conn.data.skill;
      extra.page_url = location.href.slice(0, 2048);
    }
    this.pending(this.conn.message(text, extra));
  }

  pending(m) {
    this.rows.set(m.client_msg_id, this.view.message({ mine: true, text: m.text, state: "sending", cmid: m.client_msg_id }));
  }

  typed() {
    const conv = this.conn.conversation;
    if (!conv || this.closed) return;
    const now = Date.now();
    if (now - (this.typingSent || 0) > TYPING_EVERY) {
      this.typingSent = now;
      this.conn.raw({ type: "typing", conversation_id: conv, state: "start" });
    }
    clearTimeout(this.typingIdle);
    this.typingIdle = setTimeout(() => this.stopTyping(), TYPING_IDLE);
  }

  stopTyping() {
    clearTimeout(this.typingIdle);
    if (!this.typingSent) return;
    this.typingSent = 0;
    const conv = this.conn.conversation;
    if (conv && !this.closed) this.conn.raw({ type: "typing", conversation_id: conv, state: "stop" });
  }

  state(s) {
    const t = this.t;
    this.view.setBanner(s === "reconnecting" ? t("reconnecting") : s === "failed" ? t("failed") : "");
    this.view.setSub(s === "connecting");
    this.view.wrap.dataset.connection = s;
  }

  frame(f) {
    const conv = this.conn.conversation;
    switch (f.type) {
      case "welcome": {
        const c = f.conversations.find((x) => x.id === conv);
        if (c) {
          this.read(c.agent_read_seq);
          this.sentRead = Math.max(this.sentRead, c.visitor_read_seq);
          if (c.agent && c.state === "assigned") this.view.setAgent(c.agent);
        }
        return;
      }
      case "event":
        return f.conversation_id === conv && this.event(f);
      case "ack":
        return this.acked(f.client_msg_id, f.seq);
      case "queue":
        return f.conversation_id === conv && this.view.setQueue(queueText(this.t, f));
      case "typing":
        if (f.conversation_id !== conv || f.sender.type !== "agent") return;
        clearTimeout(this.typingShown);
        if (f.state === "start") {
          this.view.setTyping(this.t("typing", { agent: f.sender.name || this.t("agent") }));
          this.typingShown = setTimeout(() => this.view.setTyping(""), TYPING_EXPIRES);
        } else this.view.setTyping("");
        return;
      case "read":
        return f.conversation_id === conv && f.reader.type === "agent" && this.read(f.seq);
      case "error":
        if (f.failed) {
          const row = this.rows.get(f.ref);
          if (row) this.view.tick(row, "failed");
        }
    }
  }

  acked(cmid, seq) {
    const row = this.rows.get(cmid);
    if (!row || row.dataset.state !== "sending") return;
    this.view.tick(row, seq <= this.agentRead ? "read" : "sent");
  }

  read(seq) {
    this.agentRead = Math.max(this.agentRead, seq);
    for (const row of this.rows.values()) {
      if (row.dataset.seq && Number(row.dataset.seq) <= this.agentRead) this.view.tick(row, "read");
    }
  }

  event(e) {
    const t = this.t;
    const v = this.view;
    const b = e.body || {};
    const agentName = (a) => a?.name || e.sender?.name || t("agent");
    const time = new Date(e.created_at).toLocaleString();
    if (e.conversation_id !== this.shown) {
      // a new conversation (the first, or one after a closed chat): earlier rows stay above
      if (this.shown) this.agentRead = this.sentRead = 0; // markers from welcome are kept
      this.shown = e.conversation_id;
      for (const row of v.log.querySelectorAll("[data-seq]")) row.dataset.old = delete row.dataset.seq;
      this.closed = false;
    }
    switch (e.kind) {
      case "message": {
        const mine = e.sender.type === "visitor";
        const row = mine && this.rows.get(e.client_msg_id);
        if (row) {
          v.place(row, e.seq);
          if (row.dataset.state === "sending") v.tick(row, "sent");
        } else {
          const prev = v.log.lastElementChild;
          const who = prev?.dataset.who === e.sender.id ? "" : e.sender.name || t("agent");
          const r = v.message({ mine, who, text: b.text, seq: e.seq, state: "sent", time, cmid: e.client_msg_id });
          r.dataset.who = e.sender.id;
          if (mine) this.rows.set(e.client_msg_id, r);
          else if (e.seq > this.sentRead) this.bump();
        }
        if (!mine) v.setTyping("");
        this.read(0);
        this.markRead();
        return;
      }
      case "conversation.queued":
        if (REQUEUED.has(b.reason)) v.notice(t("requeued"), e.seq);
        return;
      case "conversation.offline":
        return v.notice(b.opens_at ? t("offlineUntil", { time: new Date(b.opens_at).toLocaleString() }) : t("offline"), e.seq);
      case "agent.joined": {
        v.setQueue("");
        v.setAgent(b.agent);
        const agent = agentName(b.agent);
        const key = b.transfer?.has_context ? (b.skill?.name ? "transferSkill" : "transfer") : "joined";
        return v.notice(t(key, { agent, skill: b.skill?.name }), e.seq);
      }
      case "agent.left":
        v.setAgent(null);
        return v.notice(t(b.reason === "transferred" ? "handedOver" : "left", { agent: agentName(b.agent) }), e.seq);
      case "conversation.closed":
        this.closed = true;
        v.setQueue("");
        v.setTyping("");
        v.setAgent(null);
        return v.notice(t("closed"), e.seq);
    }
  }

  bump() {
    if (this.view.panel.hidden) this.view.setUnread(this.view.unread + 1);
  }

  markRead() {
    const conv = this.conn.conversation;
    const last = this.conn.lastSeq[conv] || 0;
    if (this.view.panel.hidden || document.hidden || !conv || this.closed) return;
    this.view.setUnread(0);
    if (last > this.sentRead) {
      this.sentRead = last;
      this.conn.raw({ type: "read", conversation_id: conv, seq: last });
    }
  }
}

function queueText(t, f) {
  const w = f.estimated_wait;
  if (!w) return t("queuedNoEstimate", { n: f.position });
  const m = Math.max(1, Math.round(w.seconds / 60));
  return t(f.position === 1 ? "queuedNext" : "queued", { n: f.position, m });
}
