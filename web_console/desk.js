// The agent's desk as data: the conversations this console knows, the offers and transfer
// offers waiting for an answer, the transfers this agent started. Built only from server
// frames (docs/protocol.md); renders nothing. Views subscribe with desk.listen(fn) and redraw.

import { secondsUntil } from "./dom.js";

// Kinds shown in the transcript as agents-only text.
export const PRIVATE_KINDS = new Set(["note", "whisper", "transfer.chat"]);

export class Desk {
  constructor(ctx) {
    this.ctx = ctx;
    this.me = ctx.me;
    this.convs = new Map(); // id -> Conv
    this.offers = new Map(); // offer_id -> offer frame
    this.transfers = new Map(); // transfer_id -> transfer_offer frame (offered to me)
    this.outgoing = new Map(); // conversation id -> {started, result} (transfers I asked for)
    this.current = null; // conversation id shown
    this.fns = new Set();
    this.queued = 0;
    ctx.on("*", (f) => this.frame(f));
    // expiries are not always announced (a lost offer_withdrawn): drop what has lapsed
    this.sweep = setInterval(() => this.expire(), 1000);
  }

  listen(fn) {
    this.fns.add(fn);
    return () => this.fns.delete(fn);
  }

  // Coalesce redraws: many frames (a replay) make one.
  changed(what = "all") {
    this.dirty = this.dirty === undefined || this.dirty === what ? what : "all";
    if (this.queued) return;
    this.queued = requestAnimationFrame(() => {
      const w = this.dirty;
      this.queued = 0;
      this.dirty = undefined;
      for (const fn of this.fns) fn(w);
    });
  }

  conv(id) {
    let c = this.convs.get(id);
    if (!c) {
      c = new Conv(id);
      this.convs.set(id, c);
    }
    return c;
  }

  // Conversations in the chat list: mine first (oldest assignment first), then the others
  // shown (transfer offers, monitored or barged chats, chats that ended or left while open).
  list() {
    const all = [...this.convs.values()].filter((c) => c.listed());
    const rank = (c) => (c.mine && c.state !== "closed" ? 0 : c.mode === "transfer" ? 1 : c.mode === "monitor" || c.mode === "barge" ? 2 : 3);
    return all.sort((a, b) => rank(a) - rank(b) || a.order - b.order);
  }

  mine() {
    return [...this.convs.values()].filter((c) => c.mine && c.state !== "closed");
  }

  frame(f) {
    switch (f.type) {
      case "welcome":
        for (const w of f.conversations) {
          const c = this.conv(w.id);
          c.state = w.state;
          c.visitor = w.visitor || c.visitor;
          c.holder = w.agent;
          c.mine = w.state === "assigned" && w.agent?.id === this.me.id;
          if (c.mine) c.mode = "own";
          c.readSeq = Math.max(c.readSeq, w.agent_read_seq || 0);
          c.visitorReadSeq = Math.max(c.visitorReadSeq, w.visitor_read_seq || 0);
          c.createdAt = w.created_at;
        }
        // monitoring does not survive a reconnect: ask again (docs/console.md#module-interface)
        for (const c of this.convs.values()) {
          if (c.mode === "monitor" && c.state !== "closed") this.ctx.send({ type: "monitor", conversation_id: c.id });
        }
        break;
      case "event":
        this.event(f);
        return;
      case "offer":
        if (!this.offers.has(f.offer_id) && secondsUntil(f.expires_at) > 0) {
          this.offers.set(f.offer_id, f);
          this.ctx.alertUser?.("New chat offered", f.visitor?.name || "Visitor", f.preview || "");
        }
        break;
      case "accepted":
        this.offers.delete(f.offer_id);
        this.current = f.conversation_id;
        break;
      case "offer_withdrawn":
        this.offers.delete(f.offer_id);
        break;
      case "transfer_offer":
        if (!this.transfers.has(f.transfer_id)) {
          this.transfers.set(f.transfer_id, f);
          const c = this.conv(f.conversation_id);
          if (!c.mine) c.mode = "transfer";
          c.offer = f;
          c.visitor = f.visitor || c.visitor;
          this.ctx.alertUser?.("Transfer offered", `${f.from_agent?.name || "The supervisors"}: ${f.visitor?.name || "Visitor"}`, f.note || "");
        }
        break;
      case "transfer_accepted": {
        this.transfers.delete(f.transfer_id);
        this.current = f.conversation_id;
        break;
      }
      case "transfer_withdrawn": {
        this.transfers.delete(f.transfer_id);
        const c = this.convs.get(f.conversation_id);
        if (c && !c.mine) {
          c.offer = null;
          c.mode = "withdrawn";
          c.note = "The transfer offer ended: " + f.reason.replace(/_/g, " ") + ".";
        }
        break;
      }
      case "transfer_started":
        this.outgoing.set(f.conversation_id, { started: f, result: null });
        break;
      case "transfer_result": {
        const o = this.outgoing.get(f.conversation_id) || { started: null };
        o.result = f;
        this.outgoing.set(f.conversation_id, o);
        const c = this.convs.get(f.conversation_id);
        // accepted: the chat has moved (its agent.left may not reach this socket)
        if (f.state === "accepted" && c?.mine) {
          c.mine = false;
          c.mode = "gone";
          c.note = `This chat was transferred to ${f.by?.name || "another agent"}.`;
        }
        break;
      }
      case "taken":
        this.current = f.conversation_id;
        break;
      case "typing": {
        const c = this.convs.get(f.conversation_id);
        if (!c || f.sender?.id === this.me.id) return;
        c.typing = f.state === "start" ? { name: f.sender?.name, type: f.sender?.type, until: Date.now() + 6000 } : null;
        this.changed("typing");
        return;
      }
      case "read": {
        const c = this.convs.get(f.conversation_id);
        if (!c) return;
        if (f.reader.type === "agent") c.readSeq = Math.max(c.readSeq, f.seq);
        else c.visitorReadSeq = Math.max(c.visitorReadSeq, f.seq);
        break;
      }
      case "monitoring":
        this.conv(f.conversation_id).mode = "monitor";
        break;
      case "monitoring_stopped": {
        const c = this.convs.get(f.conversation_id);
        if (c && c.mode === "monitor") c.mode = "ended";
        break;
      }
      case "barged":
        this.conv(f.conversation_id).mode = "barge";
        break;
      case "ack":
        break;
      default:
        return;
    }
    this.changed();
  }

  event(f) {
    const c = this.conv(f.conversation_id);
    c.events.push(f);
    c.lastSeq = f.seq;
    const b = f.body || {};
    switch (f.kind) {
      case "conversation.opened":
        c.visitor = { ...c.visitor, ...b.visitor };
        c.pageUrl = b.page_url;
        c.createdAt = f.created_at;
        break;
      case "conversation.queued":
      case "conversation.offline":
        c.state = f.kind === "conversation.queued" ? "queued" : "offline";
        break;
      case "conversation.assigned":
        c.state = "assigned";
        c.holder = b.agent;
        if (b.offer_id) this.offers.delete(b.offer_id);
        if (b.transfer_id) {
          const t = this.transfers.get(b.transfer_id);
          this.transfers.delete(b.transfer_id);
          if (t && b.agent?.id !== this.me.id) c.mode = "withdrawn";
        }
        if (b.agent?.id === this.me.id) {
          if (!c.mine) c.order = Conv.next++;
          c.mine = true;
          c.mode = "own";
          c.offer = null;
        } else if (c.mine) {
          c.mine = false;
        }
        break;
      case "agent.left":
        if ((b.agent?.id || f.sender?.id) === this.me.id && c.mine) {
          c.mine = false;
          c.mode = "gone";
          c.note = b.reason === "transferred" ? "This chat was transferred." : "You left this chat (" + (b.reason || "").replace(/_/g, " ") + ").";
        }
        if (c.holder?.id === (b.agent?.id || f.sender?.id)) c.holder = null;
        break;
      case "conversation.closed":
        c.state = "closed";
        if (b.tags) c.tags = b.tags;
        if (b.disposition !== undefined) c.disposition = b.disposition;
        this.outgoing.delete(c.id);
        c.typing = null;
        break;
      case "conversation.tagged":
        c.tags = b.tags || [];
        break;
      case "conversation.disposition":
        c.disposition = b.label || b.disposition;
        break;
      case "handoff.summary":
        c.summary = { text: b.text, seq: f.seq };
        break;
      case "transfer.accepted":
      case "transfer.declined":
      case "transfer.expired":
      case "transfer.cancelled":
        if (this.outgoing.get(c.id)?.started?.transfer_id === b.transfer_id && !this.outgoing.get(c.id).result) {
          this.outgoing.get(c.id).result = { state: f.kind.split(".")[1], reason: b.reason || null, by: b.agent || null };
        }
        break;
      case "message":
        if (f.sender?.type === "visitor") {
          c.awaitingSince ||= f.created_at;
          if (c.mine && this.current !== c.id && f.seq > c.readSeq) this.ctx.alertUser?.(c.visitor?.name || "Visitor", f.body?.text || "Sent a file", "", true);
        } else if (f.sender?.type === "agent") {
          c.awaitingSince = null;
        }
        if (c.typing && f.sender?.type === c.typing.type) c.typing = null;
        break;
      default:
    }
    this.changed();
  }

  expire() {
    let dropped = false;
    for (const [id, o] of this.offers) if (secondsUntil(o.expires_at) < -2) (this.offers.delete(id), (dropped = true));
    for (const [id, t] of this.transfers) if (secondsUntil(t.expires_at) < -2) (this.transfers.delete(id), (dropped = true));
    const now = Date.now();
    for (const c of this.convs.values()) if (c.typing && c.typing.until < now) ((c.typing = null), (dropped = true));
    if (dropped) this.changed();
    for (const fn of this.fns) fn("tick");
  }

  // Ids a reconnect should resume (the connection gives the seq it has for each).
  live() {
    return [...this.convs.values()].filter((c) => c.state !== "closed" && (c.mine || c.mode === "transfer" || c.mode === "barge")).map((c) => c.id);
  }

  dismiss(id) {
    const c = this.convs.get(id);
    if (!c || (c.mine && c.state !== "closed") || c.mode === "transfer") return;
    c.hidden = true;
    if (this.current === id) this.current = this.list()[0]?.id || null;
    this.changed();
  }

  unreadTotal() {
    return this.mine().reduce((n, c) => n + c.unread(), 0);
  }
}

class Conv {
  static next = 1;

  constructor(id) {
    this.id = id;
    this.order = Conv.next++;
    this.events = [];
    this.lastSeq = 0;
    this.state = "assigned";
    this.visitor = null;
    this.holder = null;
    this.mine = false;
    this.mode = null; // own | transfer | monitor | barge | gone | withdrawn | ended
    this.readSeq = 0;
    this.visitorReadSeq = 0;
    this.sentRead = 0;
    this.typing = null;
    this.tags = [];
    this.disposition = null;
    this.summary = null;
    this.awaitingSince = null;
    this.offer = null; // the transfer_offer frame while one is pending for me
    this.note = null;
    this.hidden = false;
  }

  listed() {
    if (this.hidden) return false;
    return this.mine || this.mode === "transfer" || this.mode === "monitor" || this.mode === "barge" || this.mode === "gone" || this.mode === "ended" || (this.state === "closed" && this.mode === "own");
  }

  // Customer messages after the agent side's read marker.
  unread() {
    let n = 0;
    for (const e of this.events) if (e.seq > this.readSeq && e.kind === "message" && e.sender?.type === "visitor") n++;
    return n;
  }

  label() {
    return this.visitor?.name || "Visitor " + this.id.slice(0, 4);
  }

  // The customer's latest message text, for the list.
  preview(meId) {
    for (let i = this.events.length - 1; i >= 0; i--) {
      const e = this.events[i];
      if (e.kind === "message") return (e.sender?.type === "visitor" ? "" : e.sender?.id === meId ? "You: " : (e.sender?.name || "Agent") + ": ") + (e.body?.text || (e.body?.attachments?.length ? "[file]" : ""));
    }
    return "";
  }
}
