// The console's supervisor view (docs/console.md#supervisor-view): who waits, who is late, who
// is overloaded, and what a supervisor does about it. Reads GET /api/v1/supervisor/overview
// every 2 s while mounted; acts only through documented protocol frames (docs/protocol.md):
// `monitor`, `whisper`, `barge`, `take`, `reassign`. Builds its DOM with DOM APIs and puts
// every piece of data in with textContent or attributes: nothing here parses HTML.
//
// The shell (app.js) owns login, the socket and chat rendering; it hands over `ctx` (me, api,
// send, on/off, openChat, toast). When `ctx.openChat` cannot show a monitored or barged chat,
// this module shows it in a panel of its own (transcript + whisper/message composer).

const POLL_MS = 2000; // the contract's pace (console-spec A7): fresh enough to act on
const MAX_BACKOFF_MS = 30000; // errors double the wait, up to this: a down server is not hammered
const STALE_MS = 7000; // no fresh figures for this long (three missed polls): say so
const PENDING_MS = 15000; // an action unanswered this long is forgotten (its answer was lost)
const AT_RISK = 0.75; // the overview's own threshold, used for the live per-chat colouring

const ACTIONS = {
  monitor: "Monitor",
  whisper: "Whisper",
  barge: "Barge in",
  take: "Take over",
  reassign: "Reassign",
};

let S = null; // the mounted view's state; null while unmounted

export function mountSupervisor(root, ctx) {
  if (S) unmountSupervisor();
  stylesheet();
  const s = {
    root,
    ctx,
    data: null, // the last overview
    skew: 0, // server clock minus ours, in ms (from generated_at)
    lastOk: 0,
    failures: 0,
    timer: 0,
    pending: [], // actions sent, waiting for their answer: {type, conv, label, at}
    alerted: new Set(), // conversations the unanswered watchdog flagged to supervisors
    panels: new Map(), // conversation id -> own chat panel (monitor / barge / own)
    handlers: [],
  };
  S = s;
  build(s);
  for (const [type, fn] of Object.entries(frameHandlers(s))) {
    ctx.on(type, fn);
    s.handlers.push([type, fn]);
  }
  s.ticker = setInterval(() => tick(s), 1000);
  poll(s);
}

export function unmountSupervisor() {
  const s = S;
  if (!s) return;
  S = null;
  clearTimeout(s.timer);
  clearInterval(s.ticker);
  for (const [type, fn] of s.handlers) s.ctx.off(type, fn);
  // Our panels go with the view. The socket keeps monitoring their chats when there is a
  // shell: it lists monitored chats in its Chats view (with "Stop monitoring"), and a chat
  // opened there from a panel must not be stopped under it.
  if (typeof s.ctx.openChat !== "function") {
    for (const [id, p] of s.panels) if (p.mode === "monitor" && !p.closed) s.ctx.send({ type: "unmonitor", conversation_id: id });
  }
  s.dialog?.close();
  s.root.replaceChildren();
}

// ---------------------------------------------------------------- DOM helpers

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== false && v != null) node.setAttribute(k, v === true ? "" : v);
  }
  node.append(...children.filter((c) => c != null && c !== false));
  return node;
}

function stylesheet() {
  if (document.querySelector('link[data-supervisor-css], link[href$="supervisor.css"]')) return;
  const href = new URL("supervisor.css", import.meta.url).href;
  document.head.append(el("link", { rel: "stylesheet", href, "data-supervisor-css": true }));
}

const who = (name) => name || "Visitor";

// 45 s → "0:45", 185 s → "3:05", 2 h 4 min → "2 h 04"
function clock(seconds) {
  const t = Math.max(0, Math.floor(seconds));
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  const sec = String(t % 60).padStart(2, "0");
  return h ? `${h} h ${String(m).padStart(2, "0")}` : `${m}:${sec}`;
}

// "45 s", "3 min", "2 h 4 min": for "… ago"
function spoken(seconds) {
  const t = Math.max(0, Math.floor(seconds));
  if (t < 60) return `${t} s`;
  if (t < 3600) return `${Math.floor(t / 60)} min`;
  return `${Math.floor(t / 3600)} h ${Math.floor((t % 3600) / 60)} min`;
}

const serverNow = (s) => Date.now() + s.skew;
const since = (s, iso) => (serverNow(s) - Date.parse(iso)) / 1000;

// A time that ticks: the element is refreshed every second by tick().
function live(s, iso, fmt = "clock") {
  const span = el("span", { class: "sv-time", "data-since": iso, "data-fmt": fmt });
  paintTime(s, span);
  return span;
}

function paintTime(s, span) {
  const secs = span.dataset.since
    ? since(s, span.dataset.since)
    : Number(span.dataset.base) + (serverNow(s) - Number(span.dataset.at)) / 1000;
  span.textContent = span.dataset.fmt === "spoken" ? spoken(secs) : clock(secs);
  const limit = Number(span.dataset.limit);
  if (limit) {
    span.classList.toggle("sv-late", secs > limit);
    span.classList.toggle("sv-risk", secs <= limit && secs >= limit * AT_RISK);
  }
}

// ---------------------------------------------------------------- skeleton

function build(s) {
  const section = (key, title, hint) => {
    const count = el("span", { class: "sv-count", "data-test": `sv-${key}-count` });
    const body = el("div", { class: "sv-body", "data-test": `sv-${key}` });
    const h = el("h2", { id: `sv-h-${key}` }, el("span", { text: title }), count);
    const box = el("section", { class: `sv-card sv-${key}`, "aria-labelledby": `sv-h-${key}` }, h);
    if (hint) box.append(el("p", { class: "sv-hint", text: hint }));
    box.append(body);
    s[key] = { box, body, count };
    return box;
  };
  s.banner = el("div", { class: "sv-banner", hidden: true, "data-test": "sv-stale" });
  s.bannerTitle = el("strong");
  s.bannerText = el("span");
  s.bannerRetry = el("button", { type: "button", class: "sv-btn", text: "Retry now", onclick: () => refresh(s) });
  s.banner.append(s.bannerTitle, " ", s.bannerText, " ", s.bannerRetry);
  s.said = el("p", { class: "sv-sr", role: "status" });
  s.status = el("p", { class: "sv-status", role: "status", "aria-live": "polite", "data-test": "sv-status" });
  s.updated = el("span", { class: "sv-updated", "data-test": "sv-updated", text: "Loading…" });
  s.panelBox = el("div", { class: "sv-panels", "data-test": "sv-panels" });
  s.dialog = el("dialog", { class: "sv-dialog", "aria-labelledby": "sv-dialog-title" });
  s.root.replaceChildren(
    el(
      "div",
      { class: "sv", "data-test": "supervisor" },
      el(
        "header",
        { class: "sv-top" },
        el("h1", { text: "Supervisor" }),
        s.updated,
        el("button", { type: "button", class: "sv-btn", text: "Refresh", onclick: () => refresh(s) }),
      ),
      s.banner,
      s.said,
      s.status,
      el(
        "div",
        { class: "sv-grid" },
        el(
          "div",
          { class: "sv-main" },
          section("escalated", "Escalated"),
          section("skills", "Queues"),
          section("queued", "Waiting in queue"),
          section("agents", "Agents"),
        ),
        s.panelBox,
      ),
      s.dialog,
    ),
  );
}

// ---------------------------------------------------------------- polling

// One read of the overview, then the next one scheduled. A read started while another is on
// its way (Refresh, an action's answer) supersedes it: only the latest schedules the next, so
// there is never more than one chain of reads.
async function poll(s) {
  clearTimeout(s.timer);
  const n = (s.reads = (s.reads || 0) + 1);
  let data = null;
  let forbidden = false;
  const asked = Date.now();
  try {
    data = await s.ctx.api("GET", "/supervisor/overview");
  } catch (err) {
    if (S !== s || n !== s.reads) return;
    s.failures += 1;
    s.error = err;
    const p = err?.problem;
    forbidden = p?.status === 403 || p?.code === "forbidden";
  }
  if (S !== s || n !== s.reads) return;
  if (data) {
    // the server's clock, corrected by half the round trip, drives every "how long"
    s.skew = Date.parse(data.generated_at) - (asked + Date.now()) / 2;
    s.data = data;
    s.lastOk = Date.now();
    s.failures = 0;
    s.error = null;
    try {
      render(s);
    } catch (err) {
      console.error(err); // a bug of ours: shown in the banner rather than silently stale
      s.error = err;
    }
  }
  if (!forbidden) {
    // a role change will not fix itself: no more reads then (the shell hides the tab on reload)
    const wait = s.failures ? Math.min(POLL_MS * 2 ** s.failures, MAX_BACKOFF_MS) : POLL_MS;
    s.next = Date.now() + wait;
    s.timer = setTimeout(() => poll(s), wait);
  }
  stale(s, forbidden);
}

function refresh(s) {
  s.failures = 0;
  poll(s);
}

// The banner when the figures are not fresh: why, since when, and when we try again.
function stale(s, forbidden) {
  const b = s.banner;
  const was = !b.hidden;
  if (forbidden) {
    b.hidden = false;
    s.bannerTitle.textContent = "Supervisors only.";
    s.bannerText.textContent = "Your role may not read the overview.";
    s.bannerRetry.hidden = true;
  } else if (!s.error) {
    b.hidden = true;
  } else {
    const age = s.lastOk ? ` Figures from ${spoken((Date.now() - s.lastOk) / 1000)} ago.` : "";
    const why = s.error.problem?.detail || s.error.problem?.title || s.error.message || "no answer";
    const retry = Math.max(0, Math.ceil(((s.next || Date.now()) - Date.now()) / 1000));
    b.hidden = s.lastOk > 0 && Date.now() - s.lastOk < STALE_MS && s.failures < 2;
    s.bannerTitle.textContent = "Not up to date.";
    s.bannerText.textContent = `Could not refresh (${why}).${age} Retrying in ${retry} s.`;
    s.bannerRetry.hidden = false;
  }
  // said once when it appears or goes, not at every tick of its countdown
  if (was !== !b.hidden) s.said.textContent = b.hidden ? "Figures up to date again." : `${s.bannerTitle.textContent} ${s.bannerText.textContent}`;
}

function tick(s) {
  for (const span of s.root.querySelectorAll(".sv-time")) paintTime(s, span);
  if (s.lastOk) s.updated.textContent = `Updated ${spoken((Date.now() - s.lastOk) / 1000)} ago`;
  if (s.error) stale(s, false);
  const now = Date.now();
  s.pending = s.pending.filter((p) => now - p.at < PENDING_MS);
}

// ---------------------------------------------------------------- rendering

function render(s) {
  const d = s.data;
  // keep the keyboard where it was: rows that did not change are kept as they are, and a
  // button of a rebuilt row gets the focus back
  const key = document.activeElement?.dataset?.key;
  fill(s, "escalated", d.escalated, (c) => escalation(s, c), "No escalated chats.");
  skills(s, d.skills);
  fill(s, "agents", sortAgents(d.agents), (a) => agentRow(s, a), "No agents.");
  fill(s, "queued", d.queued, (c) => queuedRow(s, c), "Nobody is waiting.");
  s.escalated.box.classList.toggle("sv-hot", d.escalated.length > 0);
  if (key && document.activeElement?.dataset?.key !== key) {
    s.root.querySelector(`[data-key="${CSS.escape(key)}"]`)?.focus();
  }
  for (const [id, p] of s.panels) panelHeading(s, id, p);
}

// Replace a list's rows, reusing those whose data did not change (they keep focus and state).
function fill(s, name, items, row, empty) {
  const { body, count } = s[name];
  count.textContent = String(items.length);
  const old = new Map([...body.children].map((n) => [n.dataset.sig, n]));
  const next = items.map((item) => {
    const sig = JSON.stringify(item) + (s.alerted.has(item.id) ? "!" : "");
    const node = old.get(sig) || row(item);
    node.dataset.sig = sig;
    return node;
  });
  if (!items.length) next.push(el("p", { class: "sv-empty", text: empty }));
  if (next.length === body.children.length && next.every((n, i) => body.children[i] === n)) return;
  body.replaceChildren(...next);
}

function button(label, name, key, onclick, extra = "") {
  return el("button", {
    type: "button",
    class: `sv-btn ${extra}`,
    text: label,
    "aria-label": name,
    "data-key": key,
    "data-test": key.split(":")[0],
    onclick,
  });
}

function escalation(s, c) {
  const visitor = who(c.visitor_name);
  const held = c.agent ? `with ${c.agent.name}` : c.state === "queued" ? "in the queue" : c.state;
  return el(
    "article",
    { class: "sv-esc", "data-test": "sv-escalation", "data-conversation": c.id },
    el(
      "div",
      { class: "sv-esc-main" },
      el("strong", { class: "sv-visitor", text: visitor }),
      el("span", { class: "sv-muted", text: ` ${held}` }),
      el("q", { class: "sv-reason", text: c.reason || "No reason given" }),
      el("span", { class: "sv-muted" }, "Escalated ", live(s, c.escalated_at, "spoken"), " ago"),
    ),
    el(
      "div",
      { class: "sv-actions" },
      button(ACTIONS.monitor, `Monitor the chat with ${visitor}`, `monitor:${c.id}:esc`, () => monitor(s, c.id)),
      c.agent ? button(ACTIONS.whisper, `Whisper to ${c.agent.name} about ${visitor}`, `whisper:${c.id}:esc`, () => whisper(s, c.id)) : null,
      button("Take over", `Take over the chat with ${visitor}`, `take:${c.id}:esc`, () => take(s, c.id), "sv-primary"),
    ),
  );
}

function skills(s, list) {
  const { body, count } = s.skills;
  count.textContent = String(list.reduce((n, k) => n + k.waiting, 0));
  const rows = list.map((k) => {
    const sla = k.sla || {};
    const state = sla.state || "ok";
    // the longest wait ticks on from the figure read (nobody waiting: a dash that stays)
    const wait = k.waiting
      ? el("span", {
          class: "sv-time",
          "data-base": String(k.longest_wait_seconds || 0),
          "data-at": String(serverNow(s)),
          "data-limit": sla.target_seconds ? String(sla.target_seconds) : false,
        })
      : el("span", { class: "sv-muted", text: "—" });
    if (k.waiting) paintTime(s, wait);
    return el(
      "tr",
      { "data-test": "sv-skill", "data-skill": k.slug ?? "" },
      el("th", { scope: "row", text: k.name }),
      el("td", { class: "sv-num", text: String(k.waiting) }),
      el("td", { class: "sv-num" }, wait),
      el(
        "td",
        {},
        el("span", { class: `sv-badge sv-sla-${state}`, "data-test": "sv-sla", text: SLA[state] || state }),
        sla.target_seconds
          ? el("span", { class: "sv-muted", text: ` target ${sla.target_percent} % within ${spoken(sla.target_seconds)}` })
          : null,
      ),
      el("td", { class: "sv-num", text: `${k.agents_available} / ${k.agents_online}` }),
    );
  });
  body.replaceChildren(
    list.length
      ? el(
          "table",
          { class: "sv-table" },
          el("caption", { class: "sv-sr", text: "Queues per skill" }),
          el(
            "thead",
            {},
            el(
              "tr",
              {},
              ...["Skill", "Waiting", "Longest wait", "First-reply SLA", "Available / online"].map((h) =>
                el("th", { scope: "col", text: h }),
              ),
            ),
          ),
          el("tbody", {}, ...rows),
        )
      : el("p", { class: "sv-empty", text: "No skills." }),
  );
}

const SLA = { ok: "OK", at_risk: "At risk", breached: "Breached" };
const STATUS_ORDER = { online: 0, away: 1, offline: 2 };

function sortAgents(agents) {
  const rank = (a) => (a.connected ? STATUS_ORDER[a.status] ?? 1 : 3);
  return [...agents].sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name));
}

function agentRow(s, a) {
  const status = a.connected ? a.status : "offline";
  const full = a.capacity > 0 && a.load >= a.capacity;
  const bar = el("span", { class: "sv-bar", "aria-hidden": "true" }, el("span", {}));
  bar.firstChild.style.setProperty("--fill", `${a.capacity ? Math.min(100, (100 * a.load) / a.capacity) : 0}%`);
  return el(
    "article",
    { class: `sv-agent sv-${status}`, "data-test": "sv-agent", "data-agent": a.id },
    el(
      "div",
      { class: "sv-agent-head" },
      el("span", { class: "sv-dot", "aria-hidden": "true" }),
      el("strong", { class: "sv-name", text: a.name }),
      a.role !== "agent" ? el("span", { class: "sv-role", text: a.role }) : null,
      el("span", { class: "sv-state", "data-test": "sv-agent-status", text: status }),
      el(
        "span",
        { class: `sv-load${full ? " sv-full" : ""}`, "data-test": "sv-load", "aria-label": `Load ${a.load} of ${a.capacity}` },
        bar,
        el("span", { "aria-hidden": "true", text: `${a.load} / ${a.capacity}` }),
      ),
    ),
    a.chats.length
      ? el("ul", { class: "sv-chats", "aria-label": `Chats of ${a.name}` }, ...a.chats.map((c) => chatRow(s, a, c)))
      : el("p", { class: "sv-empty", text: a.connected ? "No chats." : "Not connected." }),
  );
}

function chatRow(s, agent, c) {
  const visitor = who(c.visitor_name);
  // Awaiting the first agent reply: judged against its own skill's target (c.sla). After that,
  // a later message's wait has no target here (the unanswered watchdog alerts on it).
  const awaiting = c.sla
    ? slaMark(s, c.sla)
    : c.awaiting_reply_since
      ? el("span", { class: "sv-muted" }, "awaiting reply ", live(s, c.awaiting_reply_since))
      : el("span", { class: "sv-muted", text: "answered" });
  return el(
    "li",
    { class: "sv-chat", "data-test": "sv-chat", "data-conversation": c.id },
    el(
      "div",
      { class: "sv-chat-main" },
      el("span", { class: "sv-visitor", text: visitor }),
      c.escalated ? el("span", { class: "sv-badge sv-esc-mark", text: "Escalated" }) : null,
      s.alerted.has(c.id) && c.awaiting_reply_since ? el("span", { class: "sv-badge sv-sla-breached", text: "Unanswered" }) : null,
      el("span", { class: "sv-muted" }, "since ", live(s, c.assigned_at, "spoken")),
      awaiting,
    ),
    el(
      "div",
      { class: "sv-actions", role: "group", "aria-label": `Actions for the chat with ${visitor}` },
      button(ACTIONS.monitor, `Monitor the chat with ${visitor}`, `monitor:${c.id}`, () => monitor(s, c.id)),
      button(ACTIONS.whisper, `Whisper to ${agent.name} about ${visitor}`, `whisper:${c.id}`, () => whisper(s, c.id)),
      button(ACTIONS.barge, `Barge in on the chat with ${visitor}`, `barge:${c.id}`, () => barge(s, c.id)),
      button(ACTIONS.take, `Take over the chat with ${visitor}`, `take:${c.id}`, () => take(s, c.id)),
      button(ACTIONS.reassign, `Reassign the chat with ${visitor}`, `reassign:${c.id}`, () => reassign(s, c.id, agent.id)),
    ),
  );
}

const CHAT_SLA = { ok: "On time", at_risk: "At risk", breached: "SLA breached" };

// A chat awaiting its first agent reply against its own target: a badge with the state the
// server judged (amber at risk, red breached), and the wait since the customer's first message,
// ticking and turning amber then red on its own between two polls.
function slaMark(s, sla) {
  const asked = new Date(Date.parse(sla.due_at) - sla.target_seconds * 1000).toISOString();
  return el(
    "span",
    { class: "sv-chat-sla", "data-test": "sv-chat-sla", "data-state": sla.state },
    el("span", { class: `sv-badge sv-sla-${sla.state}`, text: CHAT_SLA[sla.state] || sla.state }),
    el(
      "span",
      { class: "sv-muted" },
      " first reply ",
      withLimit(live(s, asked), sla.target_seconds),
      ` of ${spoken(sla.target_seconds)}`,
    ),
  );
}

function withLimit(span, limit) {
  if (limit) span.dataset.limit = String(limit);
  return span;
}

function queuedRow(s, c) {
  const visitor = who(c.visitor_name);
  const skill = s.data.skills.find((k) => k.slug === c.skill_slug);
  return el(
    "article",
    { class: "sv-queued-row", "data-test": "sv-queued-chat", "data-conversation": c.id },
    el(
      "div",
      { class: "sv-chat-main" },
      el("span", { class: "sv-visitor", text: visitor }),
      el("span", { class: "sv-muted", text: skill ? skill.name : c.skill_slug || "No skill" }),
      c.priority ? el("span", { class: "sv-badge", text: PRIORITY[c.priority] || `Priority ${c.priority}` }) : null,
      c.escalated ? el("span", { class: "sv-badge sv-esc-mark", text: "Escalated" }) : null,
      el("span", { class: "sv-muted" }, "waiting ", live(s, c.queued_at)),
      c.sla ? slaMark(s, c.sla) : null,
    ),
    el(
      "div",
      { class: "sv-actions", role: "group", "aria-label": `Actions for the chat with ${visitor}` },
      button(ACTIONS.monitor, `Monitor the chat with ${visitor}`, `monitor:${c.id}:q`, () => monitor(s, c.id)),
      button(ACTIONS.barge, `Barge in on the chat with ${visitor}`, `barge:${c.id}:q`, () => barge(s, c.id)),
      button(ACTIONS.take, `Take over the chat with ${visitor}`, `take:${c.id}:q`, () => take(s, c.id)),
      button(ACTIONS.reassign, `Reassign the chat with ${visitor}`, `reassign:${c.id}:q`, () => reassign(s, c.id, null)),
    ),
  );
}

const PRIORITY = { 1: "High", 2: "VIP" };

// ---------------------------------------------------------------- what we know of a chat

function chatInfo(s, id) {
  const d = s.data || { agents: [], queued: [], escalated: [] };
  for (const a of d.agents) {
    const c = a.chats.find((x) => x.id === id);
    if (c) return { visitor: who(c.visitor_name), agent: { id: a.id, name: a.name }, escalated: c.escalated };
  }
  const e = d.escalated.find((x) => x.id === id);
  if (e) return { visitor: who(e.visitor_name), agent: e.agent, escalated: true };
  const q = d.queued.find((x) => x.id === id);
  if (q) return { visitor: who(q.visitor_name), agent: null, escalated: q.escalated };
  return null;
}

// ---------------------------------------------------------------- actions

// The outcome of an action, in the view's status line; successes also as a toast (the shell
// already toasts every error frame).
function say(s, text, error) {
  s.status.textContent = text;
  s.status.classList.toggle("sv-error", !!error);
  s.status.setAttribute("role", error ? "alert" : "status");
  if (!error) s.ctx.toast?.(text, "ok");
}

function send(s, frame, label) {
  s.pending.push({ type: frame.type, conv: frame.conversation_id, ref: frame.client_msg_id, label, at: Date.now() });
  s.ctx.send(frame);
}

function settle(s, type, conv) {
  const i = s.pending.findIndex((p) => p.type === type && p.conv === conv);
  return i < 0 ? null : s.pending.splice(i, 1)[0];
}

// Monitor: the shell shows the chat read-only in its Chats view (its openChat sends `monitor`).
function monitor(s, id) {
  open(s, id, "monitor", `Monitoring the chat with ${chatInfo(s, id)?.visitor || "the visitor"}`);
}

// Whisper: coach the agent from here, the overview still in sight. A panel of this view
// follows the chat (`monitor`) and has the whisper composer.
function whisper(s, id) {
  const p = s.panels.get(id);
  if (!p || p.closed) {
    send(s, { type: "monitor", conversation_id: id }, `Monitoring the chat with ${chatInfo(s, id)?.visitor || "the visitor"}`);
    panel(s, id, "monitor");
  }
  const q = s.panels.get(id);
  (q.whisperInput || q.box).focus();
}

async function barge(s, id) {
  const info = chatInfo(s, id);
  const visitor = info?.visitor || "the visitor";
  const ok = await confirmDialog(s, {
    title: `Barge in on the chat with ${visitor}?`,
    text: `${visitor} will see that you joined, and read what you write. ${info?.agent ? `${info.agent.name} keeps the chat.` : ""}`,
    confirm: "Barge in",
  });
  if (!ok) return;
  open(s, id, "barge", `Barging in on the chat with ${visitor}`);
}

async function take(s, id) {
  const info = chatInfo(s, id);
  const visitor = info?.visitor || "the visitor";
  const ok = await confirmDialog(s, {
    title: `Take over the chat with ${visitor}?`,
    text: info?.agent
      ? `The chat becomes yours and ${info.agent.name} no longer has it.`
      : "The chat leaves the queue and becomes yours.",
    confirm: "Take over",
  });
  if (!ok) return;
  send(s, { type: "take", conversation_id: id }, `Taking over the chat with ${visitor}`);
}

async function reassign(s, id, holder) {
  const info = chatInfo(s, id);
  const visitor = info?.visitor || "the visitor";
  const agents = (s.data?.agents || [])
    .filter((a) => a.connected && a.status !== "offline" && a.id !== holder)
    .sort((a, b) => a.load / (a.capacity || 1) - b.load / (b.capacity || 1) || a.name.localeCompare(b.name));
  const to = await confirmDialog(s, {
    title: `Reassign the chat with ${visitor}`,
    text: agents.length
      ? "Choose who gets it. Their capacity is not checked: you decide."
      : "No other agent is connected right now.",
    confirm: "Reassign",
    choices: agents.map((a) => ({
      value: a.id,
      label: a.name,
      note: `${a.status}, ${a.load} / ${a.capacity}${a.load >= a.capacity ? " (full)" : ""}`,
    })),
  });
  if (!to) return;
  const name = agents.find((a) => a.id === to)?.name;
  send(s, { type: "reassign", conversation_id: id, agent_id: to }, `Reassigning the chat with ${visitor} to ${name}`);
}

// A modal question (native <dialog>: focus kept inside, Escape cancels). Resolves to true, the
// chosen value, or null.
function confirmDialog(s, { title, text, confirm, choices }) {
  const dlg = s.dialog;
  if (dlg.open) dlg.close();
  const ok = el("button", { type: "submit", class: "sv-btn sv-primary", value: "ok", text: confirm });
  const list = choices
    ? el(
        "fieldset",
        { class: "sv-choices" },
        el("legend", { class: "sv-sr", text: "Agents" }),
        ...choices.map((c, i) =>
          el(
            "label",
            { class: "sv-choice" },
            el("input", { type: "radio", name: "sv-choice", value: c.value, checked: i === 0 }),
            el("span", { class: "sv-name", text: c.label }),
            el("span", { class: "sv-muted", text: c.note }),
          ),
        ),
      )
    : null;
  if (choices && !choices.length) ok.disabled = true;
  const form = el(
    "form",
    { method: "dialog" },
    el("h2", { id: "sv-dialog-title", text: title }),
    el("p", { text }),
    list,
    el(
      "div",
      { class: "sv-actions" },
      el("button", { type: "submit", class: "sv-btn", value: "cancel", text: "Cancel", formnovalidate: true }),
      ok,
    ),
  );
  const opener = document.activeElement?.dataset?.key; // its row may be rebuilt meanwhile
  dlg.replaceChildren(form);
  dlg.returnValue = "";
  dlg.showModal();
  (list?.querySelector("input") || ok).focus();
  return new Promise((resolve) => {
    dlg.addEventListener(
      "close",
      () => {
        const back = opener && s.root.querySelector(`[data-key="${CSS.escape(opener)}"]`);
        if (back && !s.root.contains(document.activeElement)) back.focus();
        if (dlg.returnValue !== "ok") return resolve(null);
        resolve(choices ? form.querySelector("input:checked")?.value || null : true);
      },
      { once: true },
    );
  });
}

// ---------------------------------------------------------------- frames from the server

function frameHandlers(s) {
  return {
    monitoring: (f) => {
      const p = settle(s, "monitor", f.conversation_id);
      if (p) say(s, `${p.label}.`);
    },
    monitoring_stopped: (f) => {
      settle(s, "unmonitor", f.conversation_id);
      const p = s.panels.get(f.conversation_id);
      if (p && p.mode === "monitor") stopPanel(s, f.conversation_id, "Monitoring stopped.");
    },
    barged: (f) => {
      const p = settle(s, "barge", f.conversation_id);
      if (p) say(s, `You joined the chat with ${chatInfo(s, f.conversation_id)?.visitor || "the visitor"}: they can read you now.`);
      const panel = s.panels.get(f.conversation_id);
      if (panel) setMode(s, f.conversation_id, panel, "barge");
    },
    taken: (f) => {
      const p = settle(s, "take", f.conversation_id);
      if (!p) return;
      say(s, `The chat with ${chatInfo(s, f.conversation_id)?.visitor || "the visitor"} is yours now.`);
      open(s, f.conversation_id, "own");
      poll(s);
    },
    reassigned: (f) => {
      const p = settle(s, "reassign", f.conversation_id);
      if (!p) return;
      const to = s.data?.agents.find((a) => a.id === f.agent_id)?.name || "the agent";
      say(s, `The chat with ${chatInfo(s, f.conversation_id)?.visitor || "the visitor"} went to ${to}.`);
      poll(s);
    },
    ack: (f) => {
      const i = s.pending.findIndex((p) => p.ref && p.ref === f.client_msg_id);
      if (i >= 0) s.pending.splice(i, 1);
    },
    error: (f) => {
      const conv = f.details?.conversation_id;
      let i = s.pending.findIndex((p) => (f.ref ? p.ref === f.ref : conv ? p.conv === conv : !p.ref));
      if (i < 0 && !f.ref && !conv) i = s.pending.findIndex(() => true);
      if (i < 0) return; // not ours: the shell reports it
      const [p] = s.pending.splice(i, 1);
      say(s, `${p.label} failed: ${f.message || f.code}`, true);
      const panel = s.panels.get(p.conv);
      if (panel && p.ref) panelLine(panel, { error: `Not sent: ${f.message || f.code}` });
      if (panel && !p.ref && (p.type === "monitor" || p.type === "barge") && !panel.seen) stopPanel(s, p.conv);
    },
    event: (f) => eventFrame(s, f),
    alert: (f) => {
      if (f.alerted !== "supervisors") return;
      s.alerted.add(f.conversation_id);
      const info = chatInfo(s, f.conversation_id);
      say(s, `${info?.visitor || "A customer"} has waited ${spoken(f.waited_seconds)} for a reply from ${info?.agent?.name || "their agent"}.`);
      if (s.data) render(s);
    },
    welcome: () => {
      // monitoring does not survive a reconnect (console-spec B3): ask again for our panels
      for (const [id, p] of s.panels) if (p.mode === "monitor" && !p.closed) s.ctx.send({ type: "monitor", conversation_id: id });
    },
  };
}

// ---------------------------------------------------------------- chats on screen

// Hand the chat to the shell, whose openChat sends the `monitor` or `barge` frame itself and
// shows the chat in its Chats view; without one, send the frame and show the chat here.
function open(s, id, mode, label = "") {
  if (typeof s.ctx.openChat === "function") {
    try {
      s.ctx.openChat(id, { mode });
      return;
    } catch (err) {
      console.error(err); // shown here instead
    }
  }
  if (mode !== "own") send(s, { type: mode, conversation_id: id }, label);
  const p = s.panels.get(id);
  if (p && !p.closed) setMode(s, id, p, mode);
  else panel(s, id, mode);
  s.panels.get(id).box.focus();
}

function panel(s, id, mode) {
  s.panels.get(id)?.box.remove();
  const p = { mode, seq: 0, closed: false, seen: false };
  p.title = el("h2", { id: `sv-p-${id}` });
  p.badge = el("span", { class: "sv-badge", "data-test": "sv-panel-mode" });
  p.log = el("ol", { class: "sv-log", role: "log", "aria-live": "polite", "aria-labelledby": `sv-p-${id}`, "data-test": "sv-log" });
  p.tools = el("div", { class: "sv-actions" });
  p.composers = el("div", { class: "sv-composers" });
  p.box = el(
    "section",
    { class: "sv-panel", tabindex: "-1", "aria-labelledby": `sv-p-${id}`, "data-test": "sv-panel", "data-conversation": id },
    el("header", { class: "sv-panel-head" }, p.title, p.badge),
    p.tools,
    p.log,
    p.composers,
  );
  s.panelBox.prepend(p.box);
  s.panels.set(id, p);
  setMode(s, id, p, mode);
  // What the shell already received of this chat: its connection drops the replay that our
  // `monitor` brings of events it has seen (deduplicated by seq), so start from its copy.
  for (const e of s.ctx.desk?.convs?.get(id)?.events || []) eventFrame(s, e);
}

function setMode(s, id, p, mode) {
  p.mode = mode;
  p.box.dataset.mode = mode;
  panelHeading(s, id, p);
  const info = chatInfo(s, id);
  const visitor = info?.visitor || "the visitor";
  const tools = [];
  if (mode === "monitor") {
    if (typeof s.ctx.openChat === "function") {
      tools.push(button("Open in Chats", `Open the chat with ${visitor} in Chats`, `open:${id}`, () => s.ctx.openChat(id, { mode: "monitor" })));
    }
    tools.push(button("Barge in", `Barge in on the chat with ${visitor}`, `barge:${id}:p`, () => barge(s, id)));
    tools.push(button("Take over", `Take over the chat with ${visitor}`, `take:${id}:p`, () => take(s, id)));
    tools.push(button("Stop monitoring", `Stop monitoring the chat with ${visitor}`, `unmonitor:${id}`, () => unmonitor(s, id)));
  } else if (mode === "barge") {
    tools.push(button("Take over", `Take over the chat with ${visitor}`, `take:${id}:p`, () => take(s, id)));
    tools.push(button("Leave", `Leave the chat with ${visitor}`, `leave:${id}`, () => leave(s, id)));
  } else {
    tools.push(button("Close panel", `Close the panel of the chat with ${visitor}`, `hide:${id}`, () => closePanel(s, id, false)));
  }
  p.tools.replaceChildren(...tools);
  p.whisperInput = null;
  const forms = [];
  if (p.closed) {
    p.composers.replaceChildren();
    return;
  }
  if (mode !== "own" && info?.agent) {
    const [form, input] = composer(s, id, "whisper", `Whisper to ${info.agent.name} (agents only)`, "Send whisper");
    p.whisperInput = input;
    forms.push(form);
  }
  if (mode !== "monitor") forms.push(composer(s, id, "message", `Message to ${visitor}`, "Send")[0]);
  p.composers.replaceChildren(...forms);
}

function panelHeading(s, id, p) {
  const info = chatInfo(s, id);
  const visitor = info?.visitor || p.visitor || "Chat";
  p.visitor = visitor;
  const agent = info?.agent?.name;
  p.title.textContent = agent ? `${visitor} with ${agent}` : visitor;
  p.badge.textContent = p.closed ? "Ended" : MODE[p.mode];
  p.badge.className = `sv-badge sv-mode-${p.closed ? "ended" : p.mode}`;
}

const MODE = { monitor: "Monitoring, read-only", barge: "Barged in: the visitor sees you", own: "Your chat" };

function composer(s, id, kind, label, submit) {
  const input = el("textarea", { rows: "2", maxlength: "4000", "aria-label": label, placeholder: label, "data-test": `sv-${kind}-input` });
  const form = el(
    "form",
    { class: `sv-composer sv-${kind}-form` },
    input,
    el("button", { type: "submit", class: `sv-btn ${kind === "whisper" ? "" : "sv-primary"}`, text: submit }),
  );
  const go = () => {
    const text = input.value.trim();
    if (!text) return;
    const cmid = `sv-${kind}-${crypto.randomUUID()}`;
    send(s, { type: kind, conversation_id: id, client_msg_id: cmid, text }, kind === "whisper" ? "Whisper" : "Message");
    input.value = "";
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    go();
  });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      go();
    }
  });
  return [form, input];
}

function unmonitor(s, id) {
  send(s, { type: "unmonitor", conversation_id: id }, "Stopping monitoring");
  closePanel(s, id, false);
}

function leave(s, id) {
  send(s, { type: "leave", conversation_id: id }, "Leaving the chat");
  closePanel(s, id, false);
}

function stopPanel(s, id, why) {
  const p = s.panels.get(id);
  if (!p) return;
  p.closed = true;
  if (why) panelLine(p, { system: why });
  setMode(s, id, p, p.mode);
}

function closePanel(s, id, tell) {
  const p = s.panels.get(id);
  if (!p) return;
  if (tell && p.mode === "monitor" && !p.closed) s.ctx.send({ type: "unmonitor", conversation_id: id });
  p.box.remove();
  s.panels.delete(id);
}

// One event of a conversation we show. Deduplicated by seq (a replay after a reconnect).
function eventFrame(s, f) {
  const p = s.panels.get(f.conversation_id);
  if (!p || f.seq <= p.seq) return;
  p.seq = f.seq;
  p.seen = true;
  const b = f.body || {};
  const name = f.sender?.name || "";
  const me = f.sender?.id && f.sender.id === s.ctx.me?.id;
  switch (f.kind) {
    case "message":
      return panelLine(p, { who: me ? "You" : name || (f.sender.type === "visitor" ? "Visitor" : "Agent"), side: f.sender.type, text: b.text, files: b.attachments, seq: f.seq });
    case "whisper":
      return panelLine(p, { who: `${me ? "You" : name} → ${b.to?.name || "agent"}`, side: "whisper", text: b.text, tag: "Whisper, agents only", seq: f.seq });
    case "note":
    case "transfer.chat":
      return panelLine(p, { who: me ? "You" : name, side: "note", text: b.text, tag: "Note, agents only", seq: f.seq });
    case "agent.joined":
      return panelLine(p, { system: `${b.agent?.name || name} joined.` });
    case "agent.left":
      return panelLine(p, { system: `${b.agent?.name || name} left (${(b.reason || "").replaceAll("_", " ")}).` });
    case "supervisor.joined":
      return panelLine(p, { system: `${b.agent?.name || name} (supervisor) joined; the visitor sees it.` });
    case "supervisor.left":
      return panelLine(p, { system: `${b.agent?.name || name} (supervisor) left.` });
    case "conversation.escalated":
      return panelLine(p, { system: `Escalated: ${b.reason || ""}`, hot: true });
    case "conversation.closed":
      panelLine(p, { system: "The chat has ended." });
      return stopPanel(s, f.conversation_id);
  }
}

function panelLine(p, { who: by, side, text, files, tag, system, error, hot, seq }) {
  let li;
  if (system || error) li = el("li", { class: `sv-line sv-sys${error ? " sv-error" : ""}${hot ? " sv-hot" : ""}`, text: system || error });
  else
    li = el(
      "li",
      { class: `sv-line sv-from-${side}`, "data-test": `sv-line-${side}` },
      el("span", { class: "sv-by" }, by, tag ? el("span", { class: "sv-tag", text: tag }) : null),
      text ? el("p", { class: "sv-text", text }) : null,
      ...(files || []).map((x) => el("span", { class: "sv-file", text: `[file: ${x.name}]` })),
    );
  if (seq) li.dataset.seq = String(seq);
  const stick = p.log.scrollHeight - p.log.scrollTop - p.log.clientHeight < 40;
  p.log.append(li);
  if (stick) p.log.scrollTop = p.log.scrollHeight;
}
