// What the visitor sees of their conversation: turns protocol frames (docs/protocol.md) into
// View calls, and the visitor's actions (open, pre-chat, typing, files, send) into frames.

import { claims, Connection } from "./connection.js";
import { save, size, View } from "./ui.js";

const TYPING_EVERY = 3000; // ms between our "start" frames while the visitor keeps typing
const TYPING_IDLE = 2500; // ms without a keystroke before we send "stop"
const TYPING_EXPIRES = 6000; // ms after which the agent's indicator goes even without a "stop"
const REQUEUED = new Set(["agent_disconnected", "agent_deactivated", "unanswered", "transferred"]);
const EMAIL = /^[^\s@]+@[^\s@.]+(\.[^\s@.]+)+$/;

export class Chat {
  constructor(root, cfg, t) {
    this.t = t;
    this.cfg = cfg;
    this.view = new View(root, cfg, t);
    this.conn = new Connection(cfg.server, {
      frame: (f) => this.frame(f),
      state: (s) => this.state(s),
      tab: (d) => this.tab(d),
    });
    this.view.fetch = (id) => this.conn.file(id);
    this.uploads = []; // files in the tray: {file, li, x (its request), meta once stored, failed}
    this.rows = new Map(); // client_msg_id -> row of the visitor's own messages
    this.agentRead = 0;
    this.sentRead = 0;
    this.closed = false;
    this.wire();
    for (const m of this.conn.outbox) this.pending(m); // typed before a reload, not acked yet
    this.busy = Promise.resolve();
    if (cfg.identity) this.identify(cfg.identity);
    else if (this.conn.token) this.conn.connect();
  }

  // A logged-in user of the host site (docs/widget.md#verified-identity): start or resume
  // their verified session. Another user than the one this device last chatted as starts
  // afresh: they must not see that user's conversation. Calls run one after the other.
  identify(jwt) {
    return (this.busy = this.busy.then(async () => {
      const conn = this.conn;
      const sub = claims(jwt).sub;
      // The server refuses a token verified as another user with that user's identity, but
      // would verify an anonymous one: so the old token is never sent with someone else's.
      const other = (conn.data.verified || conn.data.sub) && conn.data.sub !== sub;
      if (other) this.reset();
      conn.identity = jwt;
      try {
        await conn.startSession(conn.data.profile || {}, false);
      } catch {
        // refused (the visitor goes on anonymously, with the pre-chat form if it is on), or
        // the network is down: carry on with what we have; the next send tries again
      }
      this.prechat();
      conn.connect();
      if (other) conn.tell({ t: "reset", data: conn.data });
    }));
  }

  // The host site's user logged out: forget the visitor and their chat on this device.
  logout() {
    return (this.busy = this.busy.then(() => {
      this.reset();
      this.conn.tell({ t: "reset", data: this.conn.data });
    }));
  }

  // `remote`: another tab did it (and stored what is left).
  reset(remote) {
    const v = this.view;
    if (!remote) this.conn.forget();
    for (const u of this.uploads) u.x.abort(), v.unupload(u.li);
    this.uploads = [];
    this.draft = null;
    this.clear(remote);
    this.agentRead = this.sentRead = 0;
    this.shown = null;
    this.thanked = false;
    v.showOffline(false);
    v.setAgent(null);
    v.setTyping("");
    v.setUnread(0);
    this.prechat();
  }

  // An open panel shows the pre-chat form if (and with the fields) it is still needed.
  prechat() {
    if (!this.view.panel.hidden) this.view.showPrechat(this.prechatFields);
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
    v.clip.addEventListener("click", () => v.picker.click());
    v.picker.addEventListener("change", () => {
      this.attach([...v.picker.files]);
      v.picker.value = "";
    });
    v.input.addEventListener("paste", (e) => {
      const files = [...(e.clipboardData?.files || [])];
      if (files.length) e.preventDefault(), this.attach(files);
    });
    const p = v.panel;
    const files = (e) => !v.composer.hidden && e.dataTransfer?.types.includes("Files");
    p.addEventListener("dragover", (e) => {
      if (!files(e)) return;
      e.preventDefault();
      p.classList.add("drop");
      clearTimeout(this.dragging); // dragover repeats while over the panel
      this.dragging = setTimeout(() => p.classList.remove("drop"), 200);
    });
    p.addEventListener("drop", (e) => {
      if (!files(e)) return;
      e.preventDefault();
      p.classList.remove("drop");
      this.attach([...e.dataTransfer.files]);
    });
    v.offline.addEventListener("submit", (e) => {
      e.preventDefault();
      this.leaveMessage();
    });
    v.csat.addEventListener("submit", (e) => {
      e.preventDefault();
      this.rate();
    });
    v.download.addEventListener("click", () => this.transcript());
    v.restart.addEventListener("click", () => this.restart());
    document.addEventListener("visibilitychange", () => this.markRead());
  }

  // The pre-chat fields still to ask: all of them before the first session; for a verified
  // visitor (name and email signed by the host site) only the topic, until chosen.
  get prechatFields() {
    const d = this.conn.data;
    const asked = this.cfg.prechat.filter((f) => f !== "topic" || this.cfg.topics.length);
    if (d.verified) return d.skill || this.conn.conversation ? [] : asked.filter((f) => f === "topic");
    return this.conn.token ? [] : asked;
  }

  get needsPrechat() {
    return this.prechatFields.length > 0;
  }

  toggle(open) {
    const v = this.view;
    v.setOpen(open);
    if (!open) return v.launcher.focus();
    this.conn.limits().then((l) => v.setLimits(l), () => {});
    v.showPrechat(this.prechatFields);
    this.focus(this.needsPrechat ? v.prechat : null);
    this.markRead();
  }

  // Focus the first field of what the panel shows now (a form, else the composer).
  focus(form) {
    const v = this.view;
    form ||= [v.after, v.offline].find((f) => !f.hidden);
    const first = form && [...form.querySelectorAll("input,select,textarea,button")].find((x) => x.offsetParent);
    (first || v.input).focus();
  }

  // Focus had been in the composer, which is now hidden: move it to what replaced it.
  refocus() {
    const v = this.view;
    const inside = v.input.getRootNode().activeElement;
    if (!v.panel.hidden && (inside === v.input || (!inside && document.activeElement === document.body))) this.focus();
  }

  get email() {
    return this.conn.data.profile?.email;
  }

  // The conversation is (or is no longer) offline: the form to leave an email and a message,
  // or, once they did, what we will do with it.
  setOffline(on) {
    const v = this.view;
    const left = on && this.conn.data.left === this.conn.conversation;
    v.showOffline(on && !left, this.email);
    if (left || this.thanked) v.setQueue(left ? this.t("offlineThanks", { email: this.email }) : "");
    this.thanked = left;
    if (on) this.refocus();
  }

  async leaveMessage() {
    const v = this.view;
    const t = this.t;
    const conv = this.conn.conversation;
    const known = this.email;
    const email = known || v.offlineEmail.value.trim();
    const text = v.offlineText.value.trim();
    const bad = !known && !EMAIL.test(email);
    v.offlineEmail.toggleAttribute("aria-invalid", bad);
    if (bad || (known && !text)) {
      v.setError(v.offlineError, t(bad ? "badEmail" : "emptyMessage"));
      return (bad ? v.offlineEmail : v.offlineText).focus();
    }
    if (!known) {
      try {
        // a resumed session replaces the visitor's stored email (docs/api.md#visitor-sessions)
        await this.conn.startSession({ ...this.conn.data.profile, email });
      } catch (err) {
        v.setError(v.offlineError, t(/422/.test(err.message) ? "badEmail" : "offlineFailed"));
        return;
      }
    }
    v.setError(v.offlineError, "");
    if (text) this.pending(this.conn.message(text, { conversation_id: conv }));
    v.offlineText.value = "";
    this.conn.remember("left", conv);
    this.setOffline(true);
    v.input.focus();
  }

  // The rating and the effort answer, whichever were chosen (sent again on a retry: harmless).
  async rate() {
    const v = this.view;
    const t = this.t;
    const score = v.stars.value;
    const effort = !v.effort.hidden && v.effort.value;
    if (!score && !effort) return v.setError(v.rateError, t(v.effort.hidden ? "rateChoose" : "rateChooseAny"));
    v.setError(v.rateError, "");
    let code = "rateFailed";
    try {
      for (const [path, body] of [
        ["/rating", score && { score, comment: v.comment.value.trim() || null }],
        ["/effort", effort && { score: effort }],
      ]) {
        if (!body) continue;
        const res = await this.conn.api("PUT", this.ended + path, body);
        if (!res.ok) {
          const c = (await res.json()).code;
          if (c === "rating_closed" || c === "not_closed") code = c;
          throw c;
        }
      }
      this.conn.remember("rated", this.ended);
      this.conn.tell({ t: "rated", conv: this.ended });
      v.showAfter(true, true);
      return v.download.focus();
    } catch {
      // refused, network down or an unreadable answer: the message chosen above
    }
    v.setError(v.rateError, t(code));
  }

  async transcript() {
    const v = this.view;
    v.setError(v.afterError, "");
    try {
      const res = await this.conn.api("GET", this.ended + "/transcript?format=text");
      if (!res.ok) throw new Error(res.status);
      const cd = res.headers.get("Content-Disposition") || ""; // readable cross-origin only if exposed
      save(v, await res.blob(), /filename="([^"]+)"/.exec(cd)?.[1] || "chat.txt");
    } catch {
      v.setError(v.afterError, this.t("transcriptFailed"));
    }
  }

  // Forget the closed conversation: the next message opens a new one.
  restart() {
    this.clear();
    this.conn.tell({ t: "new" });
    this.view.input.focus();
  }

  clear(remote) {
    const v = this.view;
    if (!remote) this.conn.conversation = null;
    this.closed = false;
    this.ended = null;
    v.showAfter(false);
    v.clearLog();
    this.rows.clear();
    v.setQueue("");
  }

  async startFromForm() {
    const form = new FormData(this.view.prechat);
    const profile = {};
    for (const k of ["name", "email"]) if (form.get(k)) profile[k] = String(form.get(k)).trim();
    if (form.get("topic")) this.conn.remember("skill", String(form.get("topic")));
    const error = this.view.prechatError;
    try {
      if (!this.conn.data.verified || !this.conn.token) await this.conn.startSession(profile);
    } catch {
      error.textContent = this.t("startFailed");
      error.hidden = false;
      return;
    }
    error.hidden = true;
    this.view.showPrechat([]);
    this.view.input.focus();
    this.conn.connect();
  }

  // A visitor without a session yet (no pre-chat form): start one.
  async session() {
    if (this.conn.token) return true;
    try {
      await this.conn.startSession({});
    } catch {
      return this.view.setBanner(this.t("reconnecting"));
    }
    return this.conn.connect() || true;
  }

  // The text and the files in the tray go as one message; files still uploading hold it back
  // (the text leaves the composer at once, and more text sent meanwhile joins it).
  async send() {
    const text = this.view.input.value.trim();
    if ((!text && !this.uploads.length) || !(await this.session())) return;
    this.view.input.value = "";
    this.stopTyping();
    const d = this.draft;
    if (d) d.text = [d.text, text].filter(Boolean).join("\n");
    else {
      const extra = {};
      const conv = this.closed ? null : this.conn.conversation;
      if (conv) extra.conversation_id = conv;
      else {
        if (this.conn.data.skill) extra.skill = this.conn.data.skill;
        extra.page_url = location.href.slice(0, 2048);
      }
      this.draft = { text, extra };
    }
    this.flush();
  }

  // Send the draft once no upload is running (failed ones stay in the tray with their error).
  flush() {
    const d = this.draft;
    const busy = this.uploads.some((u) => !u.meta && !u.failed);
    this.view.setError(this.view.trayNote, d && busy ? this.t("waitUploads") : "");
    if (!d || busy) return;
    const done = this.uploads.filter((u) => u.meta);
    this.uploads = this.uploads.filter((u) => !u.meta);
    this.draft = null;
    for (const u of done) this.drop(u);
    const files = done.map(({ meta: { id, name, content_type, size, image } }) => ({ id, name, content_type, size, image }));
    if (files.length) d.extra = { ...d.extra, attachments: files.map((f) => f.id), files };
    if (d.text || files.length) this.pending(this.conn.message(d.text, d.extra));
  }

  // Files from the picker, a drop or a paste: checked against the limits, then uploaded.
  async attach(files) {
    const v = this.view;
    const t = this.t;
    const bad = [];
    let lim;
    try {
      lim = await this.conn.limits();
      v.setLimits(lim);
    } catch {
      return v.setError(v.fileError, t("filesUnavailable"));
    }
    if (!(await this.session())) return;
    for (const file of files) {
      const name = file.name;
      const ext = name.slice(name.lastIndexOf(".")).toLowerCase();
      if (this.uploads.length >= lim.max_per_message) {
        bad.push(t("tooMany", { n: lim.max_per_message }));
        break;
      }
      if (!lim.types.some((x) => x.mime === file.type || x.extensions.includes(ext)))
        bad.push(t("badType", { name, types: v.types }));
      else if (file.size > lim.max_bytes) bad.push(t("tooBig", { name, max: size(t, lim.max_bytes) }));
      else this.upload(file);
    }
    v.setError(v.fileError, bad.join("\n"));
  }

  upload(file) {
    const u = { file };
    let done;
    u.li = this.view.upload(file, () => {
      u.x.abort();
      this.drop(u);
    });
    [u.x, done] = this.conn.upload(file, (p) => (u.li.bar.value = p));
    this.uploads.push(u);
    done.then(
      (meta) => {
        u.meta = meta;
        u.li.dataset.state = "done";
      },
      (err) => {
        u.failed = true;
        if (err) this.view.uploadFailed(u.li, err.message || this.t("uploadFailed"));
      },
    ).then(() => this.flush());
  }

  drop(u) {
    this.view.unupload(u.li);
    this.uploads = this.uploads.filter((x) => x !== u);
  }

  pending(m) {
    this.rows.set(
      m.client_msg_id,
      this.view.message({ mine: true, text: m.text, files: m.files, state: "sending", cmid: m.client_msg_id }),
    );
  }

  // What another tab of this visitor did (docs/widget.md#several-tabs).
  tab(d) {
    const v = this.view;
    if (d.t === "sent") this.rows.has(d.m.client_msg_id) || this.pending(d.m);
    else if (d.t === "rated") this.ended === d.conv && v.showAfter(true, true);
    else if (d.t === "new") this.clear(true);
    else if (d.t === "reset") {
      this.conn.forget(d.data);
      this.reset(true);
      this.conn.connect();
    }
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
    if (s === "connecting") this.prechat(); // a session another tab started: no form here
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
          this.setOffline(c.state === "offline");
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
          if (row) this.view.tick(row, "failed", f.code === "attachment_not_found" && this.t("fileGone"));
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
          const r = v.message({ mine, who, text: b.text, files: b.attachments, seq: e.seq, state: "sent", time, cmid: e.client_msg_id });
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
        this.setOffline(false);
        if (REQUEUED.has(b.reason)) v.notice(t("requeued"), e.seq);
        return;
      case "conversation.offline": {
        const when = { weekday: "long", day: "numeric", month: "long", hour: "2-digit", minute: "2-digit" };
        v.notice(b.opens_at ? t("offlineUntil", { time: new Date(b.opens_at).toLocaleString(t.locale, when) }) : t("offline"), e.seq);
        return this.setOffline(true);
      }
      case "agent.joined": {
        this.setOffline(false);
        v.setQueue("");
        v.setAgent(b.agent);
        const agent = agentName(b.agent);
        const key = b.transfer?.has_context ? (b.skill?.name ? "transferSkill" : "transfer") : "joined";
        return v.notice(t(key, { agent, skill: b.skill?.name }), e.seq);
      }
      case "supervisor.joined":
      case "supervisor.left": // barged in, or left (docs/protocol.md#barge)
        return v.notice(t(e.kind.slice(11), { agent: `${agentName(b.agent)} (${t("supervisor")})` }), e.seq);
      case "agent.left":
        v.setAgent(null);
        return v.notice(t(b.reason === "transferred" ? "handedOver" : "left", { agent: agentName(b.agent) }), e.seq);
      case "conversation.closed":
        this.closed = true;
        this.ended = e.conversation_id;
        this.setOffline(false);
        v.setQueue("");
        v.setTyping("");
        v.setAgent(null);
        v.notice(t("closed"), e.seq);
        v.showAfter(true, this.conn.data.rated === this.ended, b.effort_asked);
        return this.refocus();
      case "conversation.effort_rated":
      case "conversation.rated":
        return this.closed && v.showAfter(true, true);
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
