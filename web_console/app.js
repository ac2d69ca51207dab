// Warmline agent console: the shell. Login, the session token (sessionStorage), the top bar
// (status, load, tabs, help, logout), toasts, global keyboard shortcuts, and `ctx`, the one
// interface the views share (docs/console.md#module-interface):
//   ctx.me                         the agent, from GET /api/v1/auth/me
//   ctx.api(method, path, body?)   REST under /api/v1 -> Promise<json>; throws Error with .problem
//   ctx.send(frame)                a frame on the agent socket (dropped while disconnected)
//   ctx.on(type, fn) / ctx.off     server frames by type ("event" for conversation events, "*" all)
//   ctx.openChat(id, {mode})       show a conversation: "own" | "monitor" | "barge"
//   ctx.toast(text)                a short notice

import { Connection } from "./connection.js";
import { Desk } from "./desk.js";
import { fill, h, problemText } from "./dom.js";
import { Inbox } from "./inbox.js";
import { ChatView } from "./chat.js";
import { openHelp, closeTopDialog } from "./dialog.js";
import { openTransfer } from "./transfer.js";
import { beep, notify } from "./alerting.js";

const TOKEN_KEY = "warmline-console:token";
const app = document.getElementById("app");
let shell = null;

async function api(method, path, body, token = sessionStorage.getItem(TOKEN_KEY)) {
  const headers = {};
  if (token) headers.Authorization = "Bearer " + token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch("/api/v1" + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    const err = new Error("The server cannot be reached.");
    err.problem = { title: "Network error", detail: "The server cannot be reached." };
    throw err;
  }
  if (res.status === 204) return null;
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    const problem = data && typeof data === "object" ? data : { title: res.statusText, status: res.status };
    const err = new Error(problem.detail || problem.title || "HTTP " + res.status);
    err.problem = problem;
    err.status = res.status;
    if (res.status === 401 && shell) shell.expired();
    throw err;
  }
  return data;
}

function showLogin(message) {
  document.title = "Sign in · Warmline";
  const email = h("input", { id: "login-email", type: "email", name: "email", autocomplete: "username", required: true, "data-test": "login-email" });
  const password = h("input", { id: "login-password", type: "password", name: "password", autocomplete: "current-password", required: true, "data-test": "login-password" });
  const error = h("p", { class: "form-error", role: "alert", "data-test": "login-error" }, message || "");
  const submit = h("button", { type: "submit", class: "primary", "data-test": "login-submit" }, "Sign in");
  const form = h(
    "form",
    { class: "login card", "aria-labelledby": "login-title", "data-test": "login-form" },
    h("h1", { id: "login-title" }, h("span", { class: "logo", "aria-hidden": "true" }, "◐"), " Warmline console"),
    h("label", { for: "login-email" }, "Email"),
    email,
    h("label", { for: "login-password" }, "Password"),
    password,
    error,
    submit,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    submit.disabled = true;
    error.textContent = "";
    try {
      const res = await api("POST", "/auth/login", { email: email.value.trim(), password: password.value }, null);
      sessionStorage.setItem(TOKEN_KEY, res.token);
      // asked on a click, as browsers require: desktop notices for offers while the tab is hidden
      if (self.Notification && Notification.permission === "default") Notification.requestPermission().catch(() => {});
      start(res.token, res.agent);
    } catch (err) {
      error.textContent = err.problem?.code === "invalid_credentials" ? "Wrong email or password." : problemText(err);
      submit.disabled = false;
      password.select();
    }
  });
  fill(app, h("main", { class: "login-page" }, form));
  email.focus();
}

class Shell {
  constructor(token, me) {
    this.token = token;
    this.me = me;
    this.handlers = new Map();
    this.status = me.status === "away" ? "away" : "online";
    const ctx = (this.ctx = {
      me,
      api: (method, path, body) => api(method, path, body),
      send: (frame) => {
        const sent = this.conn.raw(frame);
        // typing and read markers are worth nothing later; anything else the agent asked for
        if (!sent && frame.type !== "typing" && frame.type !== "read") this.toast("Not connected: try again in a moment.", "warn");
        return sent;
      },
      queue: (frame) => this.conn.queue(frame),
      on: (type, fn) => {
        if (!this.handlers.has(type)) this.handlers.set(type, new Set());
        this.handlers.get(type).add(fn);
      },
      off: (type, fn) => this.handlers.get(type)?.delete(fn),
      openChat: (id, opts) => this.openChat(id, opts || {}),
      toast: (text, kind) => this.toast(text, kind),
      alertUser: (title, body, detail, quiet) => this.alertUser(title, body, detail, quiet),
      token: () => this.token,
      pending: (id) => this.conn.pending(id),
      connection: () => this.conn,
      transferDialog: () => this.transfer(),
    });
    this.conn = new Connection(token, me.id, {
      frame: (f) => this.dispatch(f),
      state: (s) => this.connState(s),
      fatal: (code) => code === 4001 && this.expired(),
    });
    this.desk = new Desk(ctx);
    ctx.desk = this.desk;
    this.conn.live = () => this.desk.live();
    this.render();
    this.conn.connect();
    this.keys = (e) => this.key(e);
    document.addEventListener("keydown", this.keys);
    this.unlisten = this.desk.listen(() => this.renderTop());
  }

  dispatch(f) {
    for (const fn of this.handlers.get("*") || []) fn(f);
    for (const fn of this.handlers.get(f.type) || []) {
      try {
        fn(f);
      } catch (err) {
        console.error(err);
      }
    }
    if (f.type === "status") {
      this.status = f.status;
      this.renderTop();
    } else if (f.type === "error") {
      // a read or typing frame that crossed the chat's close on the wire: nothing to tell
      const id = f.details?.conversation_id;
      if (f.code === "conversation_closed" && !f.ref && id && this.desk.convs.get(id)?.state === "closed") return;
      const what = f.failed ? "Not sent: " : "";
      this.toast(what + (f.message || f.code), "error");
    } else if (f.type === "transfer_result") {
      const who = f.by?.name ? ` (${f.by.name})` : "";
      this.toast(`Transfer ${f.state}${who}${f.reason && f.state !== "accepted" ? ": " + f.reason : ""}`, f.state === "accepted" ? "ok" : "warn");
    } else if (f.type === "accepted" || f.type === "taken" || f.type === "transfer_accepted") {
      this.chat.focusComposer();
    } else if (f.type === "alert" && f.alert === "unanswered") {
      const c = this.desk.convs.get(f.conversation_id);
      const who = c?.label() || "A customer";
      const text = f.alerted === "agent" ? `${who} has waited ${Math.round(f.waited_seconds / 60)} min for your reply.` : `${who} has waited ${Math.round(f.waited_seconds / 60)} min without a reply (agent alerted).`;
      this.toast(text, "warn");
      this.alertUser("Customer waiting", text);
    } else if (f.type === "welcome" && this.status === "away") {
      // the status belongs to the agent; keep what this console shows in step
      this.conn.raw({ type: "status", status: "away" });
    }
  }

  render() {
    document.title = "Warmline console";
    const role = this.me.role;
    this.statusSel = h(
      "select",
      { "aria-label": "Your status", "data-test": "status", class: "status-select", onchange: () => this.setStatus(this.statusSel.value) },
      h("option", { value: "online" }, "Online"),
      h("option", { value: "away" }, "Away"),
    );
    this.statusSel.value = this.status;
    this.loadEl = h("span", { class: "load", "data-test": "load", title: "Chats you hold / your capacity" });
    this.connEl = h("span", { class: "conn", role: "status", "data-test": "connection" });
    this.tabs = h("nav", { class: "tabs", "aria-label": "Views" });
    this.chatsTab = h("button", { class: "tab", "aria-current": "page", "data-test": "tab-chats", onclick: () => this.view("chats") }, "Chats");
    this.tabs.append(this.chatsTab);
    if (role === "supervisor" || role === "admin") {
      this.supTab = h("button", { class: "tab", "data-test": "tab-supervisor", onclick: () => this.view(this.supPart || "supervisor") }, "Supervisor");
      this.tabs.append(this.supTab);
    }
    const top = h(
      "header",
      { class: "topbar" },
      h("span", { class: "brand" }, h("span", { class: "logo", "aria-hidden": "true" }, "◐"), " Warmline"),
      this.tabs,
      h("span", { class: "spacer" }),
      this.connEl,
      h("span", { class: "me", "data-test": "me" }, this.me.name),
      this.statusSel,
      this.loadEl,
      h("button", { class: "icon", "aria-label": "Keyboard shortcuts", title: "Keyboard shortcuts (?)", "data-test": "help", onclick: () => openHelp() }, "?"),
      h("button", { class: "ghost", "data-test": "logout", onclick: () => this.logout() }, "Log out"),
    );
    this.inboxEl = h("aside", { class: "inbox", "aria-label": "Inbox" });
    this.chatEl = h("section", { class: "chat", "aria-label": "Conversation" });
    this.contextEl = h("aside", { class: "context", "aria-label": "Conversation details" });
    this.chatsView = h("div", { class: "workspace" }, this.inboxEl, this.chatEl, this.contextEl);
    // The supervisor view holds the live figures (supervisor.js) and, for roles that may read
    // reports, the Reports panel (reports.js), switched by a row of tabs above them.
    this.supLive = h("div", { "data-test": "supervisor-root" });
    this.supView = h("div", { class: "supervisor-view", hidden: true }, this.supLive);
    if (readsReports(this.me)) {
      this.repView = h("div", { class: "reports-view", hidden: true, "data-test": "reports-root" });
      this.supSwitch = h(
        "nav",
        { class: "rp-switch", "aria-label": "Supervisor view" },
        h("button", { class: "tab", "aria-current": "page", "data-test": "tab-live", onclick: () => this.view("supervisor") }, "Live"),
        h("button", { class: "tab", "data-test": "tab-reports", onclick: () => this.view("reports") }, "Reports"),
      );
      this.supView.prepend(this.supSwitch);
      this.supView.append(this.repView);
    }
    this.toasts = h("div", { class: "toasts", role: "status", "aria-live": "polite", "data-test": "toasts" });
    fill(app, top, h("main", { class: "main" }, this.chatsView, this.supView), this.toasts);
    this.inbox = new Inbox(this.inboxEl, this.ctx, this.desk);
    this.chat = new ChatView(this.chatEl, this.contextEl, this.ctx, this.desk);
    this.renderTop();
  }

  renderTop() {
    const n = this.desk.mine().length;
    this.loadEl.textContent = `${n} / ${this.me.capacity}`;
    this.loadEl.classList.toggle("full", n >= this.me.capacity);
    if (this.statusSel.value !== this.status) this.statusSel.value = this.status;
    this.statusSel.dataset.status = this.status;
    const unread = this.desk.unreadTotal() + this.desk.offers.size + this.desk.transfers.size;
    document.title = (unread ? `(${unread}) ` : "") + "Warmline console";
  }

  connState(s) {
    const text = { connecting: "Connecting…", reconnecting: "Reconnecting…", online: "", failed: "Disconnected", expired: "Session ended", idle: "" }[s] ?? s;
    this.connEl.textContent = text;
    this.connEl.dataset.state = s;
    this.chat?.setOnline(s === "online");
  }

  setStatus(status) {
    if (!this.conn.raw({ type: "status", status })) {
      this.toast("Not connected: the status will be set when the connection is back.", "warn");
    }
    this.status = status;
    this.renderTop();
  }

  async view(which) {
    const reports = which === "reports" && Boolean(this.repView);
    const inSup = which === "supervisor" || reports;
    const sup = which === "supervisor";
    if (inSup) this.supPart = reports ? "reports" : "supervisor";
    this.chatsView.hidden = inSup;
    this.supView.hidden = !inSup;
    this.chatsTab.setAttribute("aria-current", inSup ? "false" : "page");
    this.supTab?.setAttribute("aria-current", inSup ? "page" : "false");
    if (this.repView) {
      this.supLive.hidden = reports;
      this.repView.hidden = !reports;
      const [live, rep] = this.supSwitch.children;
      live.setAttribute("aria-current", reports ? "false" : "page");
      rep.setAttribute("aria-current", reports ? "page" : "false");
      if (reports) this.mountReports();
    }
    if (sup && !this.supMounted) {
      try {
        this.supModule ||= await import("./supervisor.js");
        if (this.supLive.hidden || this.supView.hidden || this.supMounted) return; // left (or mounted) while it loaded
        this.supModule.mountSupervisor(this.supLive, this.ctx);
        this.supMounted = true;
      } catch (err) {
        console.error(err);
        fill(this.supLive, h("p", { class: "empty", role: "alert" }, "The supervisor view could not be loaded: " + problemText(err)));
      }
    } else if (!sup && this.supMounted) {
      this.supMounted = false;
      try {
        this.supModule.unmountSupervisor?.();
      } catch (err) {
        console.error(err);
      }
    }
  }

  // The Reports panel stays mounted once opened (it does not poll), so its choices survive
  // switching views.
  async mountReports() {
    try {
      this.repModule ||= await import("./reports.js");
      this.repModule.mountReports(this.repView, this.ctx);
    } catch (err) {
      console.error(err);
      fill(this.repView, h("p", { class: "empty", role: "alert" }, "The reports could not be loaded: " + problemText(err)));
    }
  }

  openChat(id, { mode = "own" } = {}) {
    const c = this.desk.conv(id);
    c.hidden = false;
    if (mode === "monitor" && !c.mine && c.mode !== "monitor") {
      c.mode = "monitor";
      this.conn.forget(id); // the monitor replays from seq 1; take it whole
      c.events = [];
      this.ctx.send({ type: "monitor", conversation_id: id });
    } else if (mode === "barge" && c.mode !== "barge") {
      if (!c.mine) c.mode = "barge";
      this.ctx.send({ type: "barge", conversation_id: id });
    }
    this.desk.current = id;
    this.view("chats");
    this.desk.changed();
    this.chat.focusComposer();
  }

  toast(text, kind = "info") {
    const el = h("div", { class: "toast " + kind, "data-test": "toast" }, text);
    this.toasts.append(el);
    setTimeout(() => el.remove(), kind === "error" ? 8000 : 5000);
  }

  // A new offer or a customer message: a beep, and a desktop notice when the tab is hidden.
  alertUser(title, body, detail, quiet) {
    if (!quiet) beep();
    if (document.hidden) notify(title, body);
  }

  transfer() {
    const c = this.desk.convs.get(this.desk.current);
    if (!c || !c.mine || c.state === "closed") return this.toast("Open one of your chats to transfer it.", "warn");
    const out = this.desk.outgoing.get(c.id);
    if (out && !out.result && out.started?.mode === "warm") return this.toast("A transfer of this chat is already pending.", "warn");
    openTransfer(this.ctx, c);
  }

  key(e) {
    const typing = e.target.closest?.("input, textarea, select, [contenteditable]");
    if (e.altKey && !e.ctrlKey && !e.metaKey) {
      const k = e.key.toLowerCase();
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        e.preventDefault();
        this.chat.step(e.key === "ArrowDown" ? 1 : -1);
      } else if (k === "a" || e.code === "KeyA") {
        e.preventDefault();
        this.inbox.acceptOldest();
      } else if (k === "t" || e.code === "KeyT") {
        e.preventDefault();
        this.transfer();
      }
      return;
    }
    if (e.key === "Escape") {
      if (closeTopDialog()) e.preventDefault();
      return;
    }
    if (typing || e.ctrlKey || e.metaKey) return;
    if (e.key === "?") {
      e.preventDefault();
      openHelp();
    } else if (e.key === "/") {
      e.preventDefault();
      this.chat.slash();
    }
  }

  async logout() {
    try {
      await api("POST", "/auth/logout");
    } catch {
      // the session is gone either way on this side
    }
    this.end();
    showLogin();
  }

  expired() {
    if (this.ended) return;
    this.end();
    showLogin("Your session has ended; please sign in again.");
  }

  end() {
    this.ended = true;
    sessionStorage.removeItem(TOKEN_KEY);
    this.conn.stop();
    clearInterval(this.desk.sweep);
    document.removeEventListener("keydown", this.keys);
    this.chat.destroy?.();
    if (this.supMounted) this.supModule.unmountSupervisor?.();
    this.repModule?.unmountReports();
    closeTopDialog(true);
    shell = null;
  }
}

// Whether the console shows the Reports panel: the roles whose sessions carry `reports:read`
// (app/auth/keys.py: supervisors and admins). The server checks it again on every read.
function readsReports(me) {
  return me.role === "supervisor" || me.role === "admin";
}

function start(token, me) {
  shell = new Shell(token, me);
}

async function boot() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) return showLogin();
  try {
    const me = await api("GET", "/auth/me", undefined, token);
    start(token, me);
  } catch (err) {
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin(err.status === 401 ? "" : problemText(err));
  }
}

boot();
