// The visitor's line to the server: session token, WebSocket (protocol v1, docs/protocol.md),
// resume by seq, heartbeats, reconnects with backoff, and an outbox of unacked messages.
// Renders nothing: it reports frames and its state to the handlers it was given.
// The rules it keeps (session, dedupe, outbox, reconnects, tabs): docs/widget.md#resilience.

const BACKOFF_FIRST = 500; // ms; doubled per failed attempt, as docs/protocol.md suggests
const BACKOFF_MAX = 30000;
const RETRY_LATER = new Set(["unavailable", "internal_error"]);
const GIVE_UP = new Set([4002, 4003]); // hello refused or origin not allowed: retrying is pointless
const RETRY_DELAY = 3000; // ms before resending a message the server could not store just now

export class Connection {
  constructor(server, handlers) {
    this.server = server;
    this.on = handlers; // {frame(f), state(s)}
    this.key = "warmline:" + server;
    this.data = load(this.key);
    this.lastSeq = {}; // conversation id -> highest seq shown on this page
    this.ws = null;
    this.identity = null; // the host site's identity token, never stored
    this.ready = false;
    this.attempt = 0;
    this.timer = 0;
    this.state = "idle";
    this.heard = 0;
    this.timeout = 25000;
    addEventListener("online", () => this.token && !this.ready && this.now());
    addEventListener("offline", () => this.drop());
    addEventListener("storage", (e) => {
      if (e.key !== this.key) return;
      this.data = load(this.key);
      // another tab started the session: this one joins in
      if (this.state === "idle" && this.token) this.connect();
    });
    const bc = self.BroadcastChannel && new BroadcastChannel(this.key);
    this.tell = (d) => bc?.postMessage(d);
    if (bc) bc.onmessage = (e) => this.tab(e.data);
    // Without Web Locks (no secure context) every tab resends, as a lone tab would.
    if (navigator.locks) navigator.locks.request(this.key, () => new Promise(() => ((this.leader = true), this.resend(1))));
    else this.leader = true;
  }

  // What another tab did; the outbox it queued while offline is ours to send.
  tab(d) {
    if (d.t === "flush") this.resend();
    else if (d.queued && this.leader) this.raw(d.m);
    this.on.tab(d);
  }

  // Send the outbox again (leader only; `force`: even if it was sent in the last 3 s).
  resend(force) {
    if (!this.leader || !this.ready || (!force && Date.now() - this.resent < 3000)) return;
    this.resent = Date.now();
    for (const m of this.outbox) this.raw(m);
  }

  get token() {
    return this.data.token;
  }

  get conversation() {
    return this.data.conv || null;
  }

  set conversation(id) {
    this.data.conv = id;
    this.save();
  }

  get outbox() {
    return this.data.outbox;
  }

  save() {
    try {
      localStorage.setItem(this.key, JSON.stringify(this.data));
    } catch {
      // storage full or blocked (private mode): the chat works, it just will not survive a reload
    }
  }

  remember(key, value) {
    this.data[key] = value;
    this.save();
  }

  // Start or resume the visitor session, verified by `this.identity` (the host site's signed
  // token, docs/api.md#verified-identity) when there is one. An identity the server refuses is
  // dropped with a console warning, and the session goes on anonymously.
  // With `anonymous` false, the refusal is thrown instead.
  async startSession(profile, anonymous = true) {
    if (this.identity) {
      try {
        return await this.begin(profile, this.identity);
      } catch (err) {
        if (!err.refused) throw err;
        console.warn("Warmline: identity token refused, chatting anonymously:", err.message);
        this.identity = null;
        if (!anonymous) throw err;
      }
    }
    return this.begin(profile);
  }

  async begin(profile, identity) {
    const body = { ...profile };
    if (this.token) body.token = this.token;
    if (identity) body.identity_token = identity;
    let res = await this.post(body);
    let problem = res.ok ? null : await res.json().catch(() => ({}));
    if (problem?.code === "invalid_token" && body.token) {
      // the server no longer knows this visitor: start afresh, keeping what they typed
      delete body.token;
      this.data.conv = null;
      res = await this.post(body);
      problem = res.ok ? null : await res.json().catch(() => ({}));
    }
    if (problem) {
      const err = new Error(problem.detail || "session " + res.status);
      err.status = res.status;
      err.refused = !!identity && (res.status === 401 || res.status === 422);
      throw err;
    }
    const session = await res.json();
    this.data.token = session.token;
    this.data.profile = profile;
    this.data.verified = !!session.verified;
    if (identity) {
      const c = claims(identity);
      this.data.sub = c.sub;
      // what the token vouches for (the email the offline form would otherwise ask for)
      this.data.profile = { ...profile, ...(c.name && { name: c.name }), ...(c.email && { email: c.email }) };
    }
    if (session.conversation) this.data.conv = session.conversation.id;
    this.save();
  }

  // Forget this visitor on this device: token, conversation, outbox; close the socket.
  // `data`: another tab did, and this is what it stored.
  forget(data) {
    clearTimeout(this.timer);
    clearInterval(this.watch);
    const ws = this.ws;
    this.ws = null;
    this.ready = this.wasOnline = false;
    ws?.close();
    this.identity = null;
    this.data = data || { outbox: [] };
    this.lastSeq = {};
    this.attempt = 0;
    if (!data) this.save();
    this.setState("idle");
  }

  post(body) {
    return fetch(this.server + "/api/v1/visitor/sessions", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  }

  // The visitor's own conversation over REST (docs/api.md#visitor-conversations).
  api(method, path, body, base = "conversations/") {
    const headers = { Authorization: "Bearer " + this.token };
    if (body) headers["Content-Type"] = "application/json";
    return fetch(this.server + "/api/v1/visitor/" + base + path, {
      method,
      headers,
      body: body && JSON.stringify(body),
    });
  }

  // What may be uploaded: fetched once, when first needed (again if that failed).
  limits() {
    return (this.lim ||= fetch(this.server + "/api/v1/attachments/limits")
      .then((r) => (r.ok ? r.json() : Promise.reject()))
      .catch((e) => {
        this.lim = null;
        throw e;
      }));
  }

  // An attachment's bytes, as a Blob (an <img src> could not send the token).
  async file(id) {
    const res = await this.api("GET", id, null, "attachments/");
    if (!res.ok) throw new Error(res.status);
    return res.blob();
  }

  // Upload one file as the raw body, reporting progress (0-1). Returns the request (to abort)
  // and a promise of the stored attachment; it fails with the problem's detail, or null
  // when aborted.
  upload(file, progress) {
    const x = new XMLHttpRequest();
    const done = new Promise((ok, fail) => {
      x.open("POST", this.server + "/api/v1/visitor/attachments?filename=" + encodeURIComponent(file.name));
      x.setRequestHeader("Authorization", "Bearer " + this.token);
      if (file.type) x.setRequestHeader("Content-Type", file.type);
      x.responseType = "json";
      x.upload.onprogress = (e) => e.lengthComputable && progress(e.loaded / e.total);
      x.onload = () => (x.status === 201 ? ok(x.response) : fail(new Error(x.response?.detail || "")));
      x.onerror = () => fail(new Error(""));
      x.onabort = () => fail(null);
      x.send(file);
    });
    return [x, done];
  }

  setState(state) {
    if (state !== this.state) this.on.state((this.state = state));
  }

  connect() {
    clearTimeout(this.timer);
    if (this.ws || !this.token) return;
    this.setState(this.wasOnline ? "reconnecting" : "connecting");
    const ws = new WebSocket(this.server.replace(/^http/, "ws") + "/ws/v1/visitor");
    this.ws = ws;
    this.ready = false;
    ws.onopen = () => {
      const resume = {};
      if (this.conversation) resume[this.conversation] = this.lastSeq[this.conversation] || 0;
      ws.send(JSON.stringify({ type: "hello", token: this.token, resume }));
    };
    ws.onmessage = (m) => ws === this.ws && this.receive(JSON.parse(m.data));
    ws.onclose = (e) => ws === this.ws && this.closed(e.code);
  }

  // The network is back: try at once rather than at the end of the backoff.
  now() {
    this.attempt = 0;
    const ws = this.ws;
    this.ws = null;
    ws?.close();
    this.connect();
  }

  // Forget the socket at once (the network is gone) and try again when it is back.
  drop() {
    const ws = this.ws;
    if (!ws) return;
    this.ws = null;
    this.ready = false;
    ws.close();
    this.closed(1006);
  }

  closed(code) {
    this.ws = null;
    this.ready = false;
    clearInterval(this.watch);
    if (GIVE_UP.has(code)) return this.setState("failed");
    if (code === 4001) {
      // token refused: a new visitor session with the same profile, then carry on
      this.data.token = null;
      this.data.conv = null;
      this.save();
      this.startSession(this.data.profile || {}).then(
        () => this.connect(),
        () => this.retry(),
      );
      return;
    }
    this.retry();
  }

  retry() {
    this.setState("reconnecting");
    // While the browser says it is offline, only a slow probe (its "online" event calls now());
    // onLine can be wrong in odd network setups, so it never stops us for good.
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
      this.setState("online");
      this.on.frame(f);
      this.resend(1);
      if (!this.leader && this.outbox.length) this.tell({ t: "flush" });
      return;
    }
    if (f.type === "event") {
      // A visitor socket only ever gets this visitor's conversations: one it has not seen
      // is new (opened by this tab, by another tab, or after the last one closed).
      if (f.conversation_id !== this.conversation && (f.seq === 1 || !this.conversation))
        this.conversation = f.conversation_id;
      const last = this.lastSeq[f.conversation_id] || 0;
      if (f.seq <= last) return;
      this.lastSeq[f.conversation_id] = f.seq;
    } else if (f.type === "ack") {
      this.data.outbox = this.outbox.filter((m) => m.client_msg_id !== f.client_msg_id);
      if (f.conversation_id !== this.conversation) this.data.conv = f.conversation_id;
      this.save();
    } else if (f.type === "error" && f.ref) {
      this.refused(f);
    } else if (f.type === "error" && f.code === "conversation_not_found") {
      if (f.details?.conversation_id === this.conversation) this.conversation = null;
    }
    this.on.frame(f);
  }

  // A message the server did not store: fix what can be fixed and resend, else give it up.
  refused(f) {
    const m = this.outbox.find((o) => o.client_msg_id === f.ref);
    if (!m) return;
    if (f.details?.field === "skill" && m.skill) {
      delete m.skill; // the topic's skill does not exist on this server: any agent will do
    } else if (f.code === "conversation_closed" && m.conversation_id) {
      delete m.conversation_id; // closed meanwhile: this message opens a new conversation
    } else if (RETRY_LATER.has(f.code)) {
      setTimeout(() => this.outbox.includes(m) && this.raw(m), RETRY_DELAY);
      return;
    } else {
      this.data.outbox = this.outbox.filter((o) => o !== m);
      this.save();
      f.failed = true;
      return;
    }
    this.save();
    this.raw(m);
  }

  raw(frame) {
    // `files` (what the attachments are, to show them) stays on this side
    if (this.ws && this.ready) this.ws.send(JSON.stringify(frame, (k, v) => (k === "files" ? undefined : v)));
  }

  // Queue a chat message; it is sent now if the socket is up, and after every reconnect
  // until it is acked.
  message(text, extra) {
    const m = { type: "message", client_msg_id: uuid(), text, ...extra };
    this.outbox.push(m);
    this.save();
    this.raw(m);
    this.tell({ t: "sent", m, queued: !this.ready });
    return m;
  }
}

function load(key) {
  let data = {};
  try {
    data = JSON.parse(localStorage.getItem(key)) || {};
  } catch {
    // unreadable: start afresh
  }
  data.outbox = Array.isArray(data.outbox) ? data.outbox : [];
  return data;
}

// The claims of a JWT, unverified: only to tell which user it names (the server checks it).
export function claims(jwt) {
  try {
    const b64 = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))));
  } catch {
    return {};
  }
}

function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  // randomUUID needs a secure context; plain http on a LAN address has none
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) =>
    b.toString(16).padStart(2, "0"),
  ).join("");
}
