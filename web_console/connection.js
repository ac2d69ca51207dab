// The agent's line to the server: one WebSocket to /ws/v1/agent (protocol v1, docs/protocol.md),
// hello with resume by seq, heartbeats, reconnects with backoff, and an outbox of messages and
// internal notes not acked yet. Renders nothing: it reports frames and its state to handlers.
//
// Rules kept here (docs/console.md#connection):
// - events are deduplicated by (conversation, seq): replays and resumes are harmless;
// - a message keeps its client_msg_id until acked and is resent after every reconnect (the
//   server stores it once); the outbox lives in sessionStorage, so a reload sends it too;
// - the seqs given in resume are only ever seqs received in `event` frames.

const BACKOFF_FIRST = 500; // ms; doubled per failed attempt
const BACKOFF_MAX = 15000; // an agent's desk should come back quickly once the server does
const RETRY_LATER = new Set(["unavailable", "internal_error"]);
const RETRY_DELAY = 3000; // ms before resending a frame the server could not store just now
const GIVE_UP = new Set([4001, 4002, 4003]); // token refused, hello refused, origin refused
const MAX_RESUME = 100; // docs/protocol.md#hello

export class Connection {
  constructor(token, agentId, handlers) {
    this.token = token;
    this.on = handlers; // {frame(f), state(s), refused(f, m)}
    this.key = "warmline-console:outbox:" + agentId;
    this.outbox = load(this.key);
    this.lastSeq = new Map(); // conversation id -> highest seq received
    this.live = () => []; // conversation ids worth resuming (set by the desk)
    this.ws = null;
    this.ready = false;
    this.attempt = 0;
    this.timer = 0;
    this.state = "idle";
    this.heard = 0;
    this.timeout = 25000;
    this.stopped = false;
    this.onOnline = () => !this.ready && this.now();
    this.onOffline = () => this.drop();
    addEventListener("online", this.onOnline);
    addEventListener("offline", this.onOffline);
  }

  setState(state) {
    if (state !== this.state) this.on.state((this.state = state));
  }

  connect() {
    clearTimeout(this.timer);
    if (this.ws || this.stopped) return;
    this.setState(this.wasOnline ? "reconnecting" : "connecting");
    const url = location.origin.replace(/^http/, "ws") + "/ws/v1/agent";
    const ws = new WebSocket(url);
    this.ws = ws;
    this.ready = false;
    ws.onopen = () => {
      const resume = {};
      for (const id of this.live().slice(0, MAX_RESUME)) {
        if (this.lastSeq.has(id)) resume[id] = this.lastSeq.get(id);
      }
      ws.send(JSON.stringify({ type: "hello", token: this.token, resume }));
    };
    ws.onmessage = (m) => ws === this.ws && this.receive(JSON.parse(m.data));
    ws.onclose = (e) => ws === this.ws && this.closed(e.code, e.reason);
  }

  now() {
    this.attempt = 0;
    const ws = this.ws;
    this.ws = null;
    ws?.close();
    this.connect();
  }

  drop() {
    const ws = this.ws;
    if (!ws) return;
    this.ws = null;
    this.ready = false;
    ws.close();
    this.closed(1006, "");
  }

  // End for good (logout).
  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.watch);
    removeEventListener("online", this.onOnline);
    removeEventListener("offline", this.onOffline);
    const ws = this.ws;
    this.ws = null;
    ws?.close(1000);
    this.setState("idle");
  }

  closed(code, reason) {
    this.ws = null;
    this.ready = false;
    clearInterval(this.watch);
    if (this.stopped) return;
    if (GIVE_UP.has(code)) {
      this.setState(code === 4001 ? "expired" : "failed");
      this.on.fatal?.(code, reason);
      return;
    }
    this.setState("reconnecting");
    const delay = navigator.onLine === false ? BACKOFF_MAX : Math.min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** this.attempt++);
    this.timer = setTimeout(() => this.connect(), delay * (0.5 + Math.random() / 2));
  }

  receive(f) {
    this.heard = Date.now();
    if (f.type === "ping") return this.raw({ type: "pong" });
    if (f.type === "welcome") {
      this.ready = this.wasOnline = true;
      this.attempt = 0;
      this.timeout = (f.heartbeat_timeout || 25) * 1000;
      clearInterval(this.watch);
      // Nothing heard for a whole heartbeat timeout: the socket is dead even if not closed.
      this.watch = setInterval(() => Date.now() - this.heard > this.timeout && this.drop(), 2000);
      // The client must speak at least every heartbeat_timeout; pongs do, this is a safety net.
      this.setState("online");
      this.on.frame(f);
      for (const m of this.outbox) this.raw(m);
      return;
    }
    if (f.type === "event") {
      const last = this.lastSeq.get(f.conversation_id) || 0;
      if (f.seq <= last) return;
      this.lastSeq.set(f.conversation_id, f.seq);
      if (f.client_msg_id) this.settle(f.client_msg_id);
    } else if (f.type === "ack") {
      this.settle(f.client_msg_id);
    } else if (f.type === "error" && f.ref) {
      this.refused(f);
    }
    this.on.frame(f);
  }

  settle(cmid) {
    const before = this.outbox.length;
    this.outbox = this.outbox.filter((m) => m.client_msg_id !== cmid);
    if (this.outbox.length !== before) this.save();
  }

  // A message the server did not store: retry what may work later, drop the rest visibly.
  refused(f) {
    const m = this.outbox.find((o) => o.client_msg_id === f.ref);
    if (!m) return;
    if (RETRY_LATER.has(f.code)) {
      setTimeout(() => this.outbox.includes(m) && this.raw(m), RETRY_DELAY);
      return;
    }
    this.outbox = this.outbox.filter((o) => o !== m);
    this.save();
    f.failed = m;
  }

  // Forget a conversation's seq, so that the next resume replays it whole.
  forget(id) {
    this.lastSeq.delete(id);
  }

  save() {
    try {
      sessionStorage.setItem(this.key, JSON.stringify(this.outbox));
    } catch {
      // storage full or blocked: messages still go, they just do not survive a reload
    }
  }

  raw(frame) {
    if (this.ws && this.ready) {
      this.ws.send(JSON.stringify(frame, (k, v) => (k === "files" ? undefined : v)));
      return true;
    }
    return false;
  }

  // A frame that must arrive (message, internal): kept until acked, resent after reconnects.
  queue(frame) {
    this.outbox.push(frame);
    this.save();
    this.raw(frame);
    return frame;
  }

  pending(conversationId) {
    return this.outbox.filter((m) => m.conversation_id === conversationId);
  }
}

function load(key) {
  try {
    const data = JSON.parse(sessionStorage.getItem(key));
    return Array.isArray(data) ? data : [];
  } catch {
    return [];
  }
}
