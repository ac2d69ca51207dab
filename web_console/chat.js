// The open conversation: header with its actions, the transcript (messages, agents-only
// notes, whispers and transfer chat, system lines, files), the visitor's typing, the composer
// (Enter sends, Shift+Enter new line, internal note toggle, files, "/" canned responses), and
// the context panel (visitor, pre-chat answers, page, tags, summary, earlier conversations).

import { attachmentView, Tray } from "./attachments.js";
import { CannedPicker } from "./canned.js";
import { openCloseDialog, openDialog } from "./dialog.js";
import { PRIVATE_KINDS } from "./desk.js";
import { openReview } from "./quality.js";
import { clock, duration, fill, h, icon, problemText, secondsSince, secondsUntil, uuid, when } from "./dom.js";

const TYPING_EVERY = 3000; // ms between typing "start" frames while the agent types
const TYPING_IDLE = 4000; // ms without a keystroke before "stop"
const CONTEXT_TTL = 30000; // ms a fetched context stays fresh
const READ_DELAY = 250; // ms; see markRead

export class ChatView {
  constructor(root, contextRoot, ctx, desk) {
    this.root = root;
    this.contextRoot = contextRoot;
    this.ctx = ctx;
    this.desk = desk;
    this.me = ctx.me;
    this.shown = null; // conversation id drawn in the transcript
    this.drawnSeq = 0;
    this.drafts = new Map();
    this.contexts = new Map(); // id -> {at, data, error}
    this.online = false;
    this.build();
    desk.listen((what) => this.update(what));
    ctx.on("ack", (f) => this.acked(f));
    ctx.on("error", (f) => {
      if (f.failed) this.failed(f);
      // a close refused (an outcome required, a bad tag): the chat goes on
      const c = desk.convs.get(f.details?.conversation_id);
      if (c && c.state !== "closed") c.closing = false;
    });
    this.onVisible = () => this.markRead();
    document.addEventListener("visibilitychange", this.onVisible);
    this.update("all");
  }

  destroy() {
    document.removeEventListener("visibilitychange", this.onVisible);
  }

  build() {
    this.title = h("h2", { class: "chat-title", "data-test": "chat-title" });
    this.meta = h("div", { class: "chat-meta" });
    this.actions = h("div", { class: "chat-actions" });
    this.banner = h("div", { class: "banners", "data-test": "chat-banner" });
    this.log = h("ol", { class: "log", role: "log", "aria-live": "polite", "aria-label": "Transcript", "data-test": "transcript" });
    this.typing = h("div", { class: "typing", "aria-live": "polite", "data-test": "typing" });
    this.input = h("textarea", {
      class: "composer-input",
      rows: 2,
      "aria-label": "Message",
      "aria-autocomplete": "list",
      placeholder: "Type a reply — Enter sends, Shift+Enter new line, / for canned responses",
      "data-test": "composer",
    });
    this.noteToggle = h("input", { type: "checkbox", id: "note-toggle", "data-test": "note-toggle" });
    this.noteLabel = h("label", { for: "note-toggle", class: "note-label" }, this.noteToggle, " Internal note");
    this.fileInput = h("input", { type: "file", multiple: true, hidden: true, "data-test": "file-input" });
    this.attachBtn = h("button", { class: "icon", type: "button", "aria-label": "Attach files", title: "Attach files", "data-test": "attach", onclick: () => this.fileInput.click() }, icon("clip"));
    this.sendBtn = h("button", { class: "primary", type: "button", "data-test": "send", onclick: () => this.submit() }, "Send");
    this.tray = new Tray(this.ctx, () => this.syncSend());
    this.canned = new CannedPicker(this.ctx, this.input, () => this.conv());
    this.composer = h(
      "div",
      { class: "composer", "data-test": "composer-box" },
      this.canned.el,
      this.tray.el,
      this.input,
      h("div", { class: "composer-bar" }, this.noteLabel, this.attachBtn, this.fileInput, h("span", { class: "spacer" }), this.sendBtn),
    );
    this.empty = h("div", { class: "chat-empty" }, h("p", {}, "Select a chat, or wait for one to arrive."), h("p", { class: "muted" }, "Press ? for keyboard shortcuts."));
    this.pane = h(
      "div",
      { class: "chat-pane" },
      h("header", { class: "chat-head" }, h("div", { class: "grow" }, this.title, this.meta), this.actions),
      this.banner,
      this.log,
      this.typing,
      this.composer,
    );
    fill(this.root, this.empty, this.pane);
    this.input.addEventListener("keydown", (e) => this.keydown(e));
    this.input.addEventListener("input", () => this.inputChanged());
    this.input.addEventListener("blur", () => setTimeout(() => this.canned.close(), 150));
    this.input.addEventListener("paste", (e) => {
      const files = [...(e.clipboardData?.files || [])];
      if (files.length) (e.preventDefault(), this.tray.add(files));
    });
    this.composer.addEventListener("dragover", (e) => e.preventDefault());
    this.composer.addEventListener("drop", (e) => {
      e.preventDefault();
      if (e.dataTransfer?.files?.length) this.tray.add([...e.dataTransfer.files]);
    });
    this.fileInput.addEventListener("change", () => {
      this.tray.add([...this.fileInput.files]);
      this.fileInput.value = "";
    });
    this.noteToggle.addEventListener("change", () => this.syncNote());
  }

  conv() {
    return this.desk.convs.get(this.desk.current) || null;
  }

  setOnline(on) {
    this.online = on;
    this.syncSend();
  }

  update(what) {
    const c = this.conv();
    if (what === "tick") return this.tick(c);
    if (what === "typing") return this.renderTyping(c);
    this.empty.hidden = !!c;
    this.pane.hidden = !c;
    if (!c) {
      this.shown = null;
      fill(this.contextRoot);
      return;
    }
    if (this.shown !== c.id) {
      if (this.shown) this.drafts.set(this.shown, this.input.value);
      if (this.shown) this.stopTyping(this.shown);
      this.shown = c.id;
      this.drawnSeq = 0;
      fill(this.log);
      this.input.value = this.drafts.get(c.id) || "";
      this.canned.close();
      this.tray.clear();
      this.noteToggle.checked = c.mode === "transfer";
      this.renderContext(c, true);
    } else {
      this.renderContext(c, false);
    }
    this.renderHead(c);
    this.renderBanner(c);
    this.renderLog(c);
    this.renderTyping(c);
    this.renderComposer(c);
    this.markRead();
  }

  renderHead(c) {
    this.title.textContent = c.label();
    const stateText = c.state === "closed" ? "Closed" : c.mode === "transfer" ? "Transfer offered to you" : c.mode === "monitor" ? "Monitoring" : c.mode === "barge" ? "Joined as supervisor" : c.mine ? "" : c.mode === "gone" ? "No longer yours" : c.state;
    const wait = c.mine && c.state !== "closed" && c.awaitingSince;
    fill(
      this.meta,
      stateText ? h("span", { class: "tag", "data-test": "chat-state" }, stateText) : null,
      c.visitor?.verified ? h("span", { class: "tag ok" }, "Verified") : null,
      wait ? h("span", { class: "wait", "data-since": c.awaitingSince, title: "Waiting for your reply" }, "Waiting " + duration(secondsSince(c.awaitingSince))) : null,
      c.tags?.length ? c.tags.map((t) => h("span", { class: "tag small" }, "#" + t)) : null,
    );
    const btn = (label, test, fn, cls = "ghost", title) => h("button", { class: cls, "data-test": test, onclick: fn, title }, label);
    const open = c.state !== "closed";
    const acts = [];
    if (c.mine && open) {
      const pending = this.desk.outgoing.get(c.id);
      const pendingTransfer = pending && !pending.result && pending.started?.transfer_id && pending.started.mode === "warm";
      const transferBtn = btn("Transfer", "transfer", () => this.ctx.transferDialog(), "ghost", pendingTransfer ? "A transfer is pending" : "Transfer (Alt+T)");
      transferBtn.disabled = !!pendingTransfer;
      acts.push(transferBtn);
      acts.push(btn("Escalate", "escalate", () => this.escalate(c)));
      if (pendingTransfer) acts.push(btn("Cancel transfer", "transfer-cancel", () => this.ctx.send({ type: "transfer_cancel", transfer_id: pending.started.transfer_id })));
      acts.push(btn("Close", "close", () => this.close(c), "danger"));
    } else if (c.mode === "transfer" && c.offer) {
      acts.push(btn("Accept transfer", "chat-transfer-accept", () => this.ctx.send({ type: "transfer_accept", transfer_id: c.offer.transfer_id }), "primary"));
      acts.push(btn("Decline", "chat-transfer-decline", () => this.ctx.send({ type: "transfer_decline", transfer_id: c.offer.transfer_id })));
    } else if (c.mode === "monitor" && open) {
      acts.push(btn("Join chat", "barge", () => this.ctx.openChat(c.id, { mode: "barge" }), "ghost", "Join the conversation: the customer sees you"));
      acts.push(btn("Take over", "take-over", () => this.ctx.send({ type: "take", conversation_id: c.id }), "ghost", "Make the chat yours"));
      acts.push(btn("Stop monitoring", "unmonitor", () => (this.ctx.send({ type: "unmonitor", conversation_id: c.id }), this.desk.dismiss(c.id))));
    } else if (c.mode === "barge" && open) {
      acts.push(btn("Take over", "take-over", () => this.ctx.send({ type: "take", conversation_id: c.id }), "ghost", "Make the chat yours"));
      acts.push(btn("Leave", "leave", () => (this.ctx.send({ type: "leave", conversation_id: c.id }), (c.mode = "ended"), this.desk.changed())));
    }
    // Quality review of a closed chat (quality.js): supervisors and admins.
    if (!open && this.me.role !== "agent") acts.push(btn("Review", "qa-open", () => openReview(this.ctx, c.id, c.label()), "ghost", "Score this conversation against the quality rubric"));
    if ((!c.mine || !open) && c.mode !== "transfer" && !(open && (c.mode === "monitor" || c.mode === "barge"))) acts.push(btn("Dismiss", "dismiss", () => this.desk.dismiss(c.id)));
    fill(this.actions, acts);
  }

  renderBanner(c) {
    const parts = [];
    const out = this.desk.outgoing.get(c.id);
    if (out?.started && c.state !== "closed") {
      const s = out.started;
      const to = s.receivers?.length ? s.receivers.map((r) => r.name).join(", ") : s.mode === "cold" ? "the queue" : "the supervisors";
      if (!out.result && s.mode !== "cold" && s.expires_at) {
        parts.push(
          h(
            "div",
            { class: "banner info", "data-test": "transfer-pending" },
            `${s.mode === "escalation" ? "Escalation" : "Transfer"} offered to ${to} — `,
            h("span", { "data-expires": s.expires_at }, duration(secondsUntil(s.expires_at))),
            " left. Internal notes go to them privately.",
          ),
        );
      } else if (out.result) {
        const r = out.result;
        parts.push(h("div", { class: "banner " + (r.state === "accepted" ? "ok" : "warn"), "data-test": "transfer-result" }, `Transfer ${r.state}${r.by?.name ? " by " + r.by.name : ""}${r.reason ? ": " + r.reason : ""}`));
      } else if (s.mode === "escalation" && !s.transfer_id) {
        parts.push(h("div", { class: "banner warn" }, "Escalated; no supervisor is online right now. The chat is marked for them."));
      }
    }
    if (c.mode === "transfer" && c.offer) {
      const t = c.offer;
      parts.push(
        h(
          "div",
          { class: "banner private", "data-test": "transfer-offer-banner" },
          h("strong", {}, t.mode === "escalation" ? "Escalated to you" : `${t.from_agent?.name || "An agent"} offers you this chat`),
          " — ",
          h("span", { "data-expires": t.expires_at }, duration(secondsUntil(t.expires_at))),
          " left.",
          t.note ? h("p", {}, "Note: ", t.note) : null,
          t.reason ? h("p", {}, "Reason: ", t.reason) : null,
          h("p", { class: "muted" }, "What you write here goes privately to " + (t.from_agent?.name || "the requester") + "; the customer sees nothing."),
        ),
      );
    }
    if (c.note && !c.mine) parts.push(h("div", { class: "banner warn" }, c.note));
    fill(this.banner, parts);
  }

  renderLog(c) {
    const stick = this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight < 60;
    for (const e of c.events) {
      if (e.seq <= this.drawnSeq) continue;
      this.drawnSeq = e.seq;
      const el = this.eventView(c, e);
      if (!el) continue;
      if (e.client_msg_id && e.sender?.id === this.me.id) this.log.querySelector(`[data-cmid="${CSS.escape(e.client_msg_id)}"]`)?.remove();
      this.log.insertBefore(el, this.log.querySelector(".pending"));
    }
    // messages sent but not acked yet, last
    for (const m of this.ctx.pending(c.id)) {
      if (this.log.querySelector(`[data-cmid="${CSS.escape(m.client_msg_id)}"]`)) continue;
      if (c.events.some((e) => e.client_msg_id === m.client_msg_id && e.sender?.id === this.me.id)) continue;
      this.log.append(this.pendingView(m));
    }
    // the visitor's read marker: "Seen" under each of our messages it has passed
    for (const el of this.log.querySelectorAll(".msg.mine[data-seq] .seen")) {
      const seen = Number(el.closest(".msg").dataset.seq) <= c.visitorReadSeq;
      el.textContent = seen ? " · Seen" : "";
    }
    if (stick || this.justSent) {
      this.log.scrollTop = this.log.scrollHeight;
      this.justSent = false;
    }
  }

  pendingView(m) {
    const priv = m.type === "internal" || m.type === "whisper";
    return h(
      "li",
      { class: "msg mine pending" + (priv ? " private" : ""), "data-cmid": m.client_msg_id, "data-test": "message" },
      h("div", { class: "bubble" }, priv ? h("span", { class: "private-label" }, "Internal") : null, h("p", { class: "text" }, m.text), (m.files || []).map((a) => h("span", { class: "file-chip" }, a.name))),
      h("div", { class: "meta" }, h("span", { class: "status" }, this.online ? "Sending…" : "Waiting for connection")),
    );
  }

  eventView(c, e) {
    const b = e.body || {};
    const who = e.sender?.name || (e.sender?.type === "visitor" ? c.label() : "System");
    if (e.kind === "message" || PRIVATE_KINDS.has(e.kind)) {
      const mine = e.sender?.type === "agent" && e.sender.id === this.me.id;
      const side = e.sender?.type === "visitor" ? "theirs" : mine ? "mine" : "agent";
      const priv = PRIVATE_KINDS.has(e.kind);
      const label = e.kind === "note" ? "Internal note" : e.kind === "whisper" ? `Whisper to ${b.to?.name || "the agent"}` : e.kind === "transfer.chat" ? "Private (transfer)" : null;
      return h(
        "li",
        { class: `msg ${side}` + (priv ? " private" : ""), "data-seq": e.seq, "data-cmid": e.client_msg_id || null, "data-test": priv ? "private-message" : "message", "data-kind": e.kind },
        h(
          "div",
          { class: "bubble" },
          label ? h("span", { class: "private-label" }, label + " · agents only") : null,
          b.text ? h("p", { class: "text" }, b.text) : null,
          b.attachments?.length ? h("div", { class: "files" }, b.attachments.map((a) => attachmentView(this.ctx, a))) : null,
        ),
        h("div", { class: "meta" }, h("span", { class: "who" }, mine ? "You" : who), " · ", h("time", { datetime: e.created_at, title: when(e.created_at) }, clock(e.created_at)), mine && !priv ? h("span", { class: "seen", "data-test": "seen" }) : null),
      );
    }
    if (e.kind === "handoff.summary") {
      return h(
        "li",
        { class: "system private summary-line", "data-seq": e.seq, "data-test": "summary-event" },
        h("details", { open: c.mode === "transfer" || !c.summarySeen }, h("summary", {}, "Context summary · agents only"), h("pre", { class: "summary" }, b.text || "")),
      );
    }
    const text = systemText(e, this.me);
    if (!text) return null;
    const priv = e.visibility === "agents";
    return h("li", { class: "system" + (priv ? " private" : ""), "data-seq": e.seq, "data-test": "system-line", "data-kind": e.kind }, h("span", {}, text), " ", h("time", { datetime: e.created_at }, clock(e.created_at)));
  }

  renderTyping(c) {
    const t = c?.typing;
    this.typing.textContent = t ? `${t.name || (t.type === "visitor" ? c.label() : "An agent")} is typing…` : "";
  }

  renderComposer(c) {
    const whisper = c.mode === "monitor" && !!c.holder && this.me.role !== "agent";
    const canWrite = c.state !== "closed" && ((c.mine && c.mode === "own") || c.mode === "barge" || (c.mode === "transfer" && c.offer) || whisper);
    this.composer.hidden = !canWrite;
    const privOnly = c.mode === "transfer" || whisper;
    // a transfer accepted (or a supervisor joining after monitoring): replies go to the
    // customer again, not privately
    if (this.shownPrivOnly && !privOnly) this.noteToggle.checked = false;
    this.shownPrivOnly = privOnly;
    this.noteToggle.disabled = privOnly;
    if (privOnly) this.noteToggle.checked = true;
    this.attachBtn.hidden = privOnly;
    const out = this.desk.outgoing.get(c.id);
    const transferring = out && !out.result && out.started?.expires_at;
    this.noteLabel.lastChild.textContent = whisper ? " Whisper to " + c.holder.name : privOnly ? " Private to " + (c.offer?.from_agent?.name || "the requester") : transferring ? " Internal (the receiver sees it)" : " Internal note";
    this.syncNote();
    this.syncSend();
  }

  syncNote() {
    const c = this.conv();
    this.composer.classList.toggle("private", this.noteToggle.checked);
    this.input.placeholder =
      c?.mode === "monitor"
        ? `Whisper to ${c.holder?.name || "the agent"} — the customer sees nothing`
        : c?.mode === "transfer"
        ? `Private message to ${c.offer?.from_agent?.name || "the requester"} — the customer sees nothing`
        : this.noteToggle.checked
          ? "Internal note — only agents see it"
          : "Type a reply — Enter sends, Shift+Enter new line, / for canned responses";
  }

  syncSend() {
    this.sendBtn.disabled = this.tray.busy();
  }

  tick(c) {
    for (const el of this.root.querySelectorAll("[data-expires]")) el.textContent = duration(secondsUntil(el.dataset.expires));
    for (const el of this.root.querySelectorAll("[data-since]")) {
      const s = secondsSince(el.dataset.since);
      el.textContent = "Waiting " + duration(s);
      el.classList.toggle("late", s > 60);
    }
    if (c?.typing && c.typing.until < Date.now()) this.renderTyping(c);
  }

  // Everything shown of the open chat is read: tell the server (agent side marker).
  // Debounced: a burst of events (a replay, a close with its labels) makes one frame, and a
  // chat that closes meanwhile gets none.
  markRead() {
    const c = this.conv();
    // the agent moved to another chat: what they saw of the last one is read now
    if (this.readFor && this.readFor !== c) this.sendRead(this.readFor);
    clearTimeout(this.readTimer);
    this.readFor = c;
    this.readTimer = setTimeout(() => this.sendRead(c), READ_DELAY);
  }

  sendRead(c) {
    if (this.readFor === c) this.readFor = null;
    if (!c || !c.mine || c.state === "closed" || c.closing || document.visibilityState !== "visible") return;
    if (c.lastSeq > Math.max(c.readSeq, c.sentRead)) {
      c.sentRead = c.lastSeq;
      if (this.ctx.send({ type: "read", conversation_id: c.id, seq: c.lastSeq }) !== false) {
        c.readSeq = Math.max(c.readSeq, c.lastSeq);
        this.desk.changed("read");
      }
    }
  }

  keydown(e) {
    if (this.canned.key(e)) {
      e.preventDefault();
      e.stopPropagation();
      return;
    }
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      this.submit();
    }
  }

  inputChanged() {
    this.canned.update();
    const c = this.conv();
    if (!c || this.noteToggle.checked || !(c.mine || c.mode === "barge") || c.state === "closed") return;
    const now = Date.now();
    if (this.input.value && now - (this.typingAt || 0) > TYPING_EVERY) {
      this.typingAt = now;
      this.ctx.send({ type: "typing", conversation_id: c.id, state: "start" });
    }
    clearTimeout(this.typingStop);
    this.typingStop = setTimeout(() => this.stopTyping(c.id), TYPING_IDLE);
  }

  stopTyping(id) {
    clearTimeout(this.typingStop);
    if (!this.typingAt) return;
    this.typingAt = 0;
    this.ctx.send({ type: "typing", conversation_id: id, state: "stop" });
  }

  submit() {
    const c = this.conv();
    if (!c || this.tray.busy()) return;
    const text = this.input.value.trim();
    const files = this.noteToggle.checked ? [] : this.tray.files();
    if (!text && !files.length) return;
    const internal = this.noteToggle.checked;
    // a supervisor monitoring the chat whispers to its agent (the customer never sees it)
    const kind = c.mode === "monitor" ? "whisper" : "internal";
    const frame = internal
      ? { type: kind, conversation_id: c.id, client_msg_id: uuid(), text }
      : { type: "message", conversation_id: c.id, client_msg_id: uuid(), text, ...(files.length && { attachments: files.map((f) => f.id), files }) };
    if (!internal) this.stopTyping(c.id);
    this.ctx.queue(frame);
    this.input.value = "";
    this.drafts.delete(c.id);
    if (!internal) this.tray.clear();
    this.justSent = true;
    this.renderLog(c);
    this.input.focus();
  }

  acked(f) {
    const el = this.log.querySelector(`.pending[data-cmid="${CSS.escape(f.client_msg_id)}"] .status`);
    if (el) el.textContent = "Sent";
  }

  failed(f) {
    const el = this.log.querySelector(`.pending[data-cmid="${CSS.escape(f.ref)}"]`);
    if (!el) return;
    el.classList.add("failed");
    el.querySelector(".status").textContent = "Not sent: " + (f.message || f.code);
    // give the text back so nothing typed is lost
    if (!this.input.value && f.failed?.text) this.input.value = f.failed.text;
  }

  close(c) {
    openCloseDialog(this.ctx, c, ({ disposition, tags }) => {
      const frame = { type: "close", conversation_id: c.id };
      if (disposition) frame.disposition = disposition;
      if (tags.length) frame.tags = tags;
      if (this.ctx.send(frame) !== false) c.closing = true; // no read frames race the close
    });
  }

  escalate(c) {
    const reason = h("textarea", { id: "escalate-reason", rows: 3, maxlength: 500, "data-test": "escalate-reason" });
    const dlg = openDialog({
      title: "Escalate to the supervisors",
      test: "escalate-dialog",
      body: [h("label", { for: "escalate-reason" }, "Reason (optional)"), reason],
      actions: [
        h("button", { class: "ghost", onclick: () => dlg.close() }, "Cancel"),
        h("button", { class: "danger", "data-test": "escalate-confirm", onclick: () => (this.ctx.send({ type: "escalate", conversation_id: c.id, reason: reason.value.trim() || null }), dlg.close()) }, "Escalate"),
      ],
    });
  }

  // Alt+↓ / Alt+↑
  step(dir) {
    const list = this.desk.list();
    if (!list.length) return;
    const i = list.findIndex((c) => c.id === this.desk.current);
    const next = list[(i + dir + list.length) % list.length];
    this.ctx.openChat(next.id);
  }

  // "/" outside a text field: into the composer, picker open.
  slash() {
    const c = this.conv();
    if (!c || this.composer.hidden) return;
    if (!this.input.value) this.input.value = "/";
    this.input.focus();
    this.canned.update();
  }

  focusComposer() {
    requestAnimationFrame(() => !this.composer.hidden && !this.pane.hidden && this.input.focus({ preventScroll: true }));
  }

  // ---- context panel ----

  async renderContext(c, fresh) {
    const cached = this.contexts.get(c.id);
    if (fresh && (!cached || Date.now() - cached.at > CONTEXT_TTL)) {
      this.contexts.set(c.id, { at: Date.now(), data: cached?.data || null, error: null, loading: true });
      this.drawContext(c);
      try {
        const data = await this.ctx.api("GET", `/conversations/${encodeURIComponent(c.id)}/context`);
        this.contexts.set(c.id, { at: Date.now(), data, error: null });
        if (data.skill?.slug) c.skillSlug = data.skill.slug;
        if (data.tags && !c.tagsTouched) c.tags = data.tags;
      } catch (err) {
        this.contexts.set(c.id, { at: Date.now(), data: null, error: problemText(err) });
      }
      if (this.desk.current !== c.id) return;
    }
    this.drawContext(c);
  }

  drawContext(c) {
    // a redraw must not eat a tag being typed
    const old = this.contextRoot.querySelector(".tag-input");
    const typed = old && old.dataset.conversation === c.id ? old.value : "";
    const focused = old && document.activeElement === old;
    this.paintContext(c);
    const input = this.contextRoot.querySelector(".tag-input");
    if (input && typed) input.value = typed;
    if (input && focused) input.focus();
  }

  paintContext(c) {
    const entry = this.contexts.get(c.id) || {};
    const d = entry.data;
    const v = d?.visitor || c.visitor || {};
    const dl = (pairs) => h("dl", { class: "facts" }, pairs.filter(([, val]) => val !== null && val !== undefined && val !== "").map(([k, val]) => [h("dt", {}, k), h("dd", {}, val)]));
    const attrs = Object.entries(v.attributes || {});
    const page = d?.page_url || c.pageUrl;
    const summary = d?.summary?.text || c.summary?.text;
    const section = (title, test, ...body) => h("section", { class: "ctx-section", "data-test": test }, h("h3", {}, title), body);
    const canTag = c.state !== "closed" && (c.mine || c.mode === "barge" || this.me.role !== "agent");
    fill(
      this.contextRoot,
      section(
        "Visitor",
        "ctx-visitor",
        h("p", { class: "ctx-name" }, v.name || "Anonymous visitor", v.verified ? h("span", { class: "tag ok small", title: "Identity vouched for by the site" }, "✓ verified") : null),
        dl([
          ["Email", v.email],
          ["External id", v.external_id],
          ["First seen", when(v.created_at)],
          ["Last seen", when(v.last_seen_at)],
        ]),
        attrs.length ? [h("h4", {}, "Pre-chat answers"), dl(attrs.map(([k, val]) => [k, typeof val === "object" ? JSON.stringify(val) : String(val)]))] : null,
      ),
      section(
        "Conversation",
        "ctx-conversation",
        dl([
          ["Page", page ? pageLink(page) : null],
          ["Skill", d?.skill?.name],
          ["Priority", d ? ["Normal", "High", "VIP"][d.priority] ?? d.priority : null],
          ["Started", when(d?.created_at || c.createdAt)],
          ["Transfers", d?.transfer_count || null],
          ["Escalated", d?.escalated ? d.escalated.reason || "yes" : null],
          ["Outcome", d?.disposition || c.disposition],
        ]),
      ),
      section("Tags", "ctx-tags", this.tagEditor(c, canTag)),
      summary ? section("Transfer summary", "ctx-summary", h("pre", { class: "summary" }, summary)) : null,
      d?.earlier?.length
        ? section(
            "Earlier conversations",
            "ctx-earlier",
            h(
              "ul",
              { class: "earlier" },
              d.earlier.map((e) =>
                h(
                  "li",
                  {},
                  h("div", { class: "row" }, h("span", {}, when(e.created_at)), e.rating ? h("span", { class: "muted" }, "★".repeat(e.rating)) : null),
                  h("div", { class: "muted" }, [e.agent_name, e.disposition].filter(Boolean).join(" · ")),
                  e.preview ? h("p", { class: "preview" }, e.preview) : null,
                  e.tags?.length ? h("div", {}, e.tags.map((t) => h("span", { class: "tag small" }, "#" + t))) : null,
                  // Quality review of that earlier chat (quality.js): supervisors and admins.
                  e.closed_at && this.me.role !== "agent" ? h("button", { class: "ghost small", "data-test": "qa-open-earlier", onclick: () => openReview(this.ctx, e.id, `${c.label()}, ${when(e.created_at)}`) }, "Review") : null,
                ),
              ),
            ),
          )
        : null,
      entry.loading ? h("p", { class: "muted" }, "Loading details…") : null,
      entry.error ? h("p", { class: "form-error", "data-test": "ctx-error" }, "Details unavailable: " + entry.error) : null,
    );
  }

  tagEditor(c, editable) {
    const send = (tags) => {
      c.tags = tags;
      c.tagsTouched = true;
      this.ctx.send({ type: "tags", conversation_id: c.id, tags });
      this.drawContext(c);
      this.renderHead(c);
    };
    const chips = (c.tags || []).map((t) =>
      h("span", { class: "tag chip", "data-test": "tag" }, "#" + t, editable ? h("button", { class: "icon small", "aria-label": "Remove tag " + t, onclick: () => send(c.tags.filter((x) => x !== t)) }, "×") : null),
    );
    if (!editable) return h("div", { class: "chips" }, chips.length ? chips : h("span", { class: "muted" }, "No tags"));
    const input = h("input", { class: "tag-input", placeholder: "Add a tag…", "aria-label": "Add a tag", maxlength: 32, "data-test": "tag-input", "data-conversation": c.id });
    input.addEventListener("keydown", (e) => {
      if (e.key !== "Enter" && e.key !== ",") return;
      e.preventDefault();
      const t = input.value.trim().toLowerCase();
      if (!t) return;
      if ((c.tags || []).length >= 20) return this.ctx.toast("At most 20 tags.", "warn");
      input.value = ""; // before the redraw, which keeps what is typed
      if (!(c.tags || []).includes(t)) send([...(c.tags || []), t]);
      requestAnimationFrame(() => this.contextRoot.querySelector(".tag-input")?.focus());
    });
    return h("div", { class: "chips" }, chips, input);
  }
}

function pageLink(url) {
  try {
    const u = new URL(url);
    if (u.protocol === "http:" || u.protocol === "https:") return h("a", { href: u.href, target: "_blank", rel: "noopener noreferrer" }, u.host + u.pathname);
  } catch {
    // not a URL: show it as text
  }
  return url;
}

// One line of text for a system event, or null for events the transcript does not show.
export function systemText(e, me) {
  const b = e.body || {};
  const n = (a) => (a?.id === me.id ? "You" : a?.name || "An agent");
  switch (e.kind) {
    case "conversation.opened":
      return "Chat started" + (b.page_url ? " on " + b.page_url : "");
    case "conversation.queued":
      return { new: "Waiting in the queue", transferred: "Sent back to the queue (cold transfer)", agents_available: "Queued: agents are available" }[b.reason] || "Back in the queue (" + String(b.reason || "").replace(/_/g, " ") + ")";
    case "conversation.offline":
      return "Left as an offline message (" + String(b.reason || "").replace(/_/g, " ") + ")";
    case "agent.joined":
      if (b.transfer) return `${n(b.agent)} joined by ${b.transfer.kind} transfer` + (b.transfer.from ? ` from ${n(b.transfer.from)}` : "") + (b.skill ? ` (${b.skill.name})` : "");
      return `${n(b.agent)} joined`;
    case "agent.left":
      return `${n(b.agent)} left` + (b.reason ? ` (${String(b.reason).replace(/_/g, " ")})` : "");
    case "conversation.closed":
      return "Chat closed by the " + (b.by || "system");
    case "conversation.disposition":
      return `${n(e.sender)} recorded the outcome: ${b.label || b.disposition}`;
    case "transfer.requested": {
      const to = b.to?.agent ? b.to.agent.name : b.to?.skill ? b.to.skill.name : b.to?.supervisors ? "the supervisors" : "the queue";
      if (b.kind === "escalation") return `Escalation offered to ${to}` + (b.from_agent ? ` (chat held by ${n(b.from_agent)})` : "");
      return `${n(b.from_agent)} asked for a ${b.kind} transfer to ${to}` + (b.note ? ` — “${b.note}”` : "");
    }
    case "transfer.accepted":
      return `${n(b.agent)} accepted the transfer`;
    case "transfer.declined":
      return `Transfer declined: ${b.reason || ""}`;
    case "transfer.expired":
      return `Transfer expired: ${b.reason || ""}`;
    case "transfer.cancelled":
      return `Transfer cancelled: ${b.reason || ""}`;
    case "conversation.escalated":
      return `Escalated: ${b.reason || ""}`;
    case "conversation.tagged":
      return `${n(b.by || e.sender)} set the tags: ${(b.tags || []).join(", ") || "none"}`;
    case "supervisor.joined":
      return `${n(b.agent)} (supervisor) joined`;
    case "supervisor.left":
      return `${n(b.agent)} (supervisor) left`;
    case "conversation.unanswered":
      return `Customer unanswered for ${duration(b.waited_seconds || 0)} (${b.alerted === "supervisors" ? "supervisors alerted" : "alert"})`;
    case "sla.breached":
      return `First-reply SLA breached: ${duration(b.waited_seconds || 0)} against a target of ${duration(b.target_seconds || 0)}` + (b.answered ? " (answered late)" : "");
    case "conversation.rated":
      return `Rated ${"★".repeat(b.score || 0)}` + (b.comment ? ` — “${b.comment}”` : "");
    case "handoff.summary_extra":
      return "Summary: " + (b.text || "");
    case "handoff.repeat":
      return "The customer repeated something said before the transfer";
    default:
      return null; // routing.decided, routing.step, conversation.assigned, offers: not for people
  }
}
