// The console's Reports panel (docs/console.md#reports), in the supervisor view beside the live
// figures. Reads GET /api/v1/reports/conversations (docs/api.md#reports; every figure defined in
// docs/metrics.md#reports), GET /api/v1/reports/transfers, and downloads the conversation
// report's CSV with the session's token. Everything from the server goes in as text (dom.js h()).
//
// Periods are whole days of the browser's time zone, sent as UTC instants with `tz=` so that the
// server's day and hour buckets are the user's own. Nothing here polls: a report is read when
// the panel opens and when a choice changes (or Refresh).

import { fill, h, problemText } from "./dom.js";

const DAY_MS = 86400000;
const MAX_DAYS = 366; // the API's longest range (report_window); checked here to say it first

const PERIODS = [
  ["today", "Today"],
  ["yesterday", "Yesterday"],
  ["7d", "Last 7 days"],
  ["30d", "Last 30 days"],
  ["custom", "Custom dates"],
];
const GROUPS = [
  ["day", "Day"],
  ["hour", "Hour"],
  ["skill", "Skill"],
  ["agent", "Agent"],
  ["tag", "Tag"],
];
const NONE = { skill: "No skill", agent: "No agent", tag: "No tag" };

// The table's columns: [field, heading, kind, title]. kind decides the format and the sort.
const COLUMNS = [
  ["volume", "Chats", "count", "Closed conversations opened in the period"],
  ["answered", "Answered", "count", "Chats an agent wrote to the visitor in"],
  ["offline", "Offline", "count", "Messages left while nobody could take them"],
  ["abandon_rate", "Abandoned", "rate", "Left while waiting, of the chats that queued"],
  ["wait_median_s", "Wait median", "time", "Queue wait of handled chats"],
  ["wait_p90_s", "Wait p90", "time", "90th percentile of the queue wait"],
  ["first_response_median_s", "First reply median", "time", "First agent reply after the visitor's first message"],
  ["first_response_p90_s", "First reply p90", "time", "90th percentile of the first reply"],
  ["sla_attainment", "SLA met", "rate", "First replies within the skill's target"],
  ["csat", "CSAT", "rate", "Ratings of 4 or 5, of all ratings"],
  ["csat_response_rate", "Rated", "rate", "Handled chats the visitor rated"],
  ["fcr_rate", "FCR", "rate", "Resolved on first contact, of those decided"],
  ["transfer_rate", "Transferred", "rate", "Handled chats transferred at least once"],
  ["escalation_rate", "Escalated", "rate", "Chats escalated at least once"],
  ["handle_median_s", "Handle median", "time", "First assignment to close"],
  ["handle_p90_s", "Handle p90", "time", "90th percentile of the handle time"],
];
// Customer effort: only when the effort survey was on for some of the report's chats
// (total.effort_asked > 0); absent from reports of servers that do not have it.
const EFFORT_COLUMNS = [
  ["ces", "CES", "rate", "Customer effort score: answers of 5 to 7 (easy), of all answers"],
  ["effort_response_rate", "Effort answered", "rate", "Effort questions answered, of those asked"],
];
// Fields of a report line that are not columns of their own (counts shown in titles, names).
const NOT_COLUMNS = new Set([
  "group", "name", "handled", "abandoned", "transferred", "escalated", "fcr_decided", "fcr_resolved",
  "sla_counted", "sla_met", "sla_target_percent", "csat_responses", "csat_satisfied",
  "effort_asked", "effort_responses", "effort_easy",
]);

// ---------------------------------------------------------------- numbers for humans

const COUNT = new Intl.NumberFormat(undefined);
const PERCENT = new Intl.NumberFormat(undefined, { style: "percent", maximumFractionDigits: 1 });
const DECIMAL = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
const DAY_LABEL = new Intl.DateTimeFormat(undefined, { weekday: "short", day: "numeric", month: "short", year: "numeric" });
const HOUR_LABEL = new Intl.DateTimeFormat(undefined, { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
const RANGE_LABEL = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", year: "numeric" });

const missing = (v) => v === null || v === undefined || Number.isNaN(v);
export const count = (n) => (missing(n) ? "—" : COUNT.format(n));
export const percent = (r) => (missing(r) ? "—" : PERCENT.format(r));
const chats = (n) => `${count(n)} ${n === 1 ? "chat" : "chats"}`;

// 4.25 → "4.3 s", 45 → "45 s", 65 → "1 min 05 s", 3725 → "1 h 02 min"; null → "—"
export function span(seconds) {
  if (missing(seconds)) return "—";
  if (seconds < 9.95) return `${DECIMAL.format(seconds)} s`;
  const t = Math.round(seconds);
  if (t < 60) return `${t} s`;
  const pad = (n) => String(n).padStart(2, "0");
  if (t < 3600) return `${Math.floor(t / 60)} min ${pad(t % 60)} s`;
  return `${Math.floor(t / 3600)} h ${pad(Math.floor((t % 3600) / 60))} min`;
}

// A field the panel does not know yet (a figure added to the API later): its format by name.
function kindOf(field, value) {
  if (typeof value !== "number" && value !== null) return null;
  if (/_s$/.test(field)) return "time";
  if (/(_rate|_share|_attainment)$/.test(field)) return "rate";
  if (/(_avg|_mean|_median|_score)$/.test(field)) return "score";
  return "count";
}

function show(kind, v) {
  if (kind === "time") return span(v);
  if (kind === "rate") return percent(v);
  if (kind === "score") return missing(v) ? "—" : DECIMAL.format(v);
  return count(v);
}

// "time_to_accept_median_s" → "Time to accept median"
function heading(field) {
  const words = field.replace(/_s$/, "").replace(/_/g, " ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

// ---------------------------------------------------------------- periods

const midnight = (d, plusDays = 0) => new Date(d.getFullYear(), d.getMonth(), d.getDate() + plusDays);
const isoDate = (d) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;

function parseDate(text) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text || "");
  if (!m) return null;
  const d = new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  return isoDate(d) === text ? d : null;
}

// The period as [first day, last day] (local dates, both included), or an error to show.
export function period(choice, today = new Date(), from = "", to = "") {
  const day = midnight(today);
  if (choice === "today") return { first: day, last: day };
  if (choice === "yesterday") return { first: midnight(day, -1), last: midnight(day, -1) };
  if (choice === "7d") return { first: midnight(day, -6), last: day };
  if (choice === "30d") return { first: midnight(day, -29), last: day };
  const first = parseDate(from);
  const last = parseDate(to);
  if (!first || !last) return { error: "Choose the first and the last day of the period." };
  if (last < first) return { error: "The last day is before the first." };
  if ((midnight(last, 1) - first) / DAY_MS > MAX_DAYS + 0.1) return { error: `A report covers at most ${MAX_DAYS} days.` };
  return { first, last };
}

// ---------------------------------------------------------------- the panel

let R = null; // the mounted panel's state

export function mountReports(root, ctx) {
  if (R && R.root === root) return; // already there: keep the choices and figures on screen
  unmountReports();
  const today = new Date();
  R = {
    root,
    ctx,
    tz: zone(),
    choice: "7d",
    from: isoDate(midnight(today, -6)),
    to: isoDate(today),
    group: "day",
    reads: 0,
    report: null,
    transfers: null,
    sort: null, // {field, dir: 1 | -1}; null: the API's order
  };
  build(R);
  load(R);
}

export function unmountReports() {
  if (!R) return;
  R.reads += 1; // answers still on their way are dropped
  R.root.replaceChildren();
  R = null;
}

function zone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  } catch {
    return "UTC";
  }
}

function build(s) {
  const id = (n) => `rp-${n}`;
  s.periodSel = h(
    "select",
    { id: id("period"), "data-test": "rp-period", onchange: () => choose(s) },
    PERIODS.map(([v, label]) => h("option", { value: v }, label)),
  );
  s.periodSel.value = s.choice;
  s.fromInput = h("input", { type: "date", id: id("from"), "data-test": "rp-from", value: s.from, onchange: () => choose(s) });
  s.toInput = h("input", { type: "date", id: id("to"), "data-test": "rp-to", value: s.to, onchange: () => choose(s) });
  s.custom = h(
    "span",
    { class: "rp-custom", hidden: true },
    h("label", { for: id("from") }, "From"),
    s.fromInput,
    h("label", { for: id("to") }, "to"),
    s.toInput,
  );
  s.groupSel = h(
    "select",
    { id: id("group"), "data-test": "rp-group", onchange: () => choose(s) },
    GROUPS.map(([v, label]) => h("option", { value: v }, label)),
  );
  s.groupSel.value = s.group;
  s.csvBtn = h("button", { type: "button", "data-test": "rp-csv", onclick: () => download(s, "conversations", s.csvBtn) }, "Download CSV");
  const transfersCsv = h("button", { type: "button", class: "small", "data-test": "rp-csv-transfers", onclick: () => download(s, "transfers", transfersCsv) }, "Download CSV");
  s.range = h("p", { class: "rp-range", "data-test": "rp-range" });
  s.status = h("p", { class: "rp-status", role: "status", "aria-live": "polite", "data-test": "rp-status" });
  s.totals = h("div", { class: "rp-totals", "data-test": "rp-totals" });
  s.table = h("div", { class: "rp-table-box", "data-test": "rp-table-box" });
  s.transferBox = h("div", { class: "rp-stack", "data-test": "rp-transfers" });
  s.qualityBox = h("section", { class: "rp-section rp-stack", "data-test": "rp-quality", hidden: true });
  fill(
    s.root,
    h(
      "div",
      { class: "rp", "data-test": "reports" },
      h(
        "header",
        { class: "rp-top" },
        h("h1", null, "Reports"),
        h(
          "form",
          { class: "rp-controls", "aria-label": "Report options", onsubmit: (e) => e.preventDefault() },
          h("label", { for: id("period") }, "Period"),
          s.periodSel,
          s.custom,
          h("label", { for: id("group") }, "Group by"),
          s.groupSel,
          h("button", { type: "button", "data-test": "rp-refresh", onclick: () => load(s) }, "Refresh"),
          s.csvBtn,
        ),
      ),
      s.range,
      s.status,
      h("section", { class: "rp-section", "aria-label": "Totals" }, s.totals),
      h("section", { class: "rp-section" }, s.table),
      h(
        "section",
        { class: "rp-section", "aria-labelledby": id("transfers-title") },
        h("div", { class: "rp-heading" }, h("h2", { id: id("transfers-title") }, "Transfers"), transfersCsv),
        s.transferBox,
      ),
      s.qualityBox,
    ),
  );
}

function choose(s) {
  s.choice = s.periodSel.value;
  s.group = s.groupSel.value;
  s.from = s.fromInput.value;
  s.to = s.toInput.value;
  s.custom.hidden = s.choice !== "custom";
  load(s);
}

function query(s, p) {
  const since = p.first.toISOString();
  const until = midnight(p.last, 1).toISOString();
  return { since, until, params: `since=${encodeURIComponent(since)}&until=${encodeURIComponent(until)}` };
}

function rangeText(s, p) {
  const one = p.first.getTime() === p.last.getTime();
  const dates = one ? RANGE_LABEL.format(p.first) : `${RANGE_LABEL.format(p.first)} – ${RANGE_LABEL.format(p.last)}`;
  return `${dates} · ${s.tz}` + (s.unknownZone ? ` (the server does not know ${s.unknownZone}: days and hours are UTC's)` : "");
}

// A 422 naming `tz`: the browser's zone is missing from the server's time zone database.
const zoneRefused = (err) => err?.status === 422 && Array.isArray(err.problem?.errors) && err.problem.errors.some((e) => e.field === "query.tz");

function say(s, text, kind) {
  s.status.textContent = text;
  s.status.className = "rp-status" + (kind ? " rp-" + kind : "");
  s.status.setAttribute("role", kind === "error" ? "alert" : "status");
}

async function load(s) {
  const p = period(s.choice, new Date(), s.from, s.to);
  if (p.error) {
    say(s, p.error, "error");
    return;
  }
  const n = ++s.reads;
  const q = query(s, p);
  s.root.querySelector(".rp")?.setAttribute("aria-busy", "true");
  say(s, "Loading…");
  const path = `/reports/conversations?${q.params}&group_by=${s.group}&tz=${encodeURIComponent(s.tz)}`;
  const [report, transfers, quality] = await Promise.allSettled([
    s.ctx.api("GET", path),
    s.ctx.api("GET", `/reports/transfers?${q.params}`),
    s.ctx.api("GET", `/reports/quality?${q.params}&group_by=agent&tz=${encodeURIComponent(s.tz)}`),
  ]);
  if (R !== s || n !== s.reads) return; // superseded by a later choice
  s.root.querySelector(".rp")?.removeAttribute("aria-busy");
  if (report.status === "rejected" && zoneRefused(report.reason) && s.tz !== "UTC") {
    s.unknownZone = s.tz;
    s.tz = "UTC";
    load(s);
    return;
  }
  if (report.status === "rejected") {
    const err = report.reason;
    const why = err?.status === 403 ? "Your role does not allow reading reports." : problemText(err);
    say(s, "The report could not be read: " + why, "error");
    s.status.append(" ", h("button", { type: "button", onclick: () => load(s) }, "Try again"));
    return;
  }
  say(s, "");
  s.range.textContent = rangeText(s, p); // the period of the figures on screen, not of a failed read
  s.report = report.value;
  s.shown = { p, group: s.group };
  if (s.sort && !columnsOf(s.report).some(([f]) => f === s.sort.field) && s.sort.field !== "group") s.sort = null;
  renderTotals(s);
  renderTable(s);
  if (transfers.status === "fulfilled") renderTransfers(s, transfers.value);
  else fill(s.transferBox, h("p", { class: "rp-empty", role: "alert" }, "The transfer report could not be read: " + problemText(transfers.reason)));
  renderQuality(s, quality);
}

// ---------------------------------------------------------------- totals strip

function tile(key, label, value, sub, extra) {
  return h(
    "div",
    { class: "rp-tile" + (extra ? " " + extra : ""), "data-test": `rp-total-${key}` },
    h("span", { class: "rp-tile-label" }, label),
    h("strong", { class: "rp-tile-value", "data-test": "value" }, value),
    sub ? h("span", { class: "rp-tile-sub", "data-test": "sub" }, sub) : null,
  );
}

const surveysEffort = (report) => report.total.effort_asked > 0;

function renderTotals(s) {
  const t = s.report.total;
  if (!t.volume) {
    fill(s.totals, h("p", { class: "rp-empty", "data-test": "rp-empty" }, "No closed conversations opened in this period."));
    return;
  }
  const tiles = [
    tile("volume", "Conversations", count(t.volume), `${count(t.handled)} handled · ${count(t.offline)} offline`),
    tile("wait", "Wait, median", span(t.wait_median_s), `p90 ${span(t.wait_p90_s)}`),
    tile("first_response", "First reply, median", span(t.first_response_median_s), `p90 ${span(t.first_response_p90_s)}`),
    tile("sla", "SLA attainment", percent(t.sla_attainment), `${count(t.sla_met)} of ${count(t.sla_counted)} within target`, belowGoal(t) ? "rp-bad" : ""),
    tile("csat", "CSAT", percent(t.csat), `${count(t.csat_responses)} ratings · ${percent(t.csat_response_rate)} rated`),
    tile("fcr", "First-contact resolution", percent(t.fcr_rate), `${count(t.fcr_resolved)} of ${count(t.fcr_decided)} decided`),
    tile("abandoned", "Abandoned", percent(t.abandon_rate), chats(t.abandoned)),
    tile("transferred", "Transferred", percent(t.transfer_rate), chats(t.transferred)),
    tile("escalated", "Escalated", percent(t.escalation_rate), chats(t.escalated)),
    tile("handle", "Handle time, median", span(t.handle_median_s), `p90 ${span(t.handle_p90_s)}`),
  ];
  if (surveysEffort(s.report)) {
    tiles.push(tile("ces", "Customer effort (easy)", percent(t.ces), `${count(t.effort_responses)} answers · ${percent(t.effort_response_rate)} answered`));
  }
  fill(s.totals, tiles);
}

// Only a line with a goal (a skill's) can be below it.
function belowGoal(line) {
  return !missing(line.sla_target_percent) && !missing(line.sla_attainment) && line.sla_attainment * 100 < line.sla_target_percent;
}

// ---------------------------------------------------------------- the table

function columnsOf(report) {
  const known = new Set([...COLUMNS, ...EFFORT_COLUMNS].map(([f]) => f));
  const sample = report.total;
  const extra = Object.keys(sample)
    .filter((f) => !known.has(f) && !NOT_COLUMNS.has(f) && kindOf(f, sample[f]))
    .map((f) => [f, heading(f), kindOf(f, sample[f]), null]);
  const base = report.total.offline ? COLUMNS : COLUMNS.filter(([f]) => f !== "offline"); // no offline messages: no column
  return [...base, ...(surveysEffort(report) ? EFFORT_COLUMNS : []), ...extra];
}

function groupLabel(group, line) {
  if (line.group === null || line.group === undefined) return NONE[group] || "—";
  if (group === "day") {
    const d = parseDate(line.group);
    return d ? DAY_LABEL.format(d) : line.group;
  }
  if (group === "hour") {
    const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):00$/.exec(line.group);
    return m ? HOUR_LABEL.format(new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]))) : line.group;
  }
  if (group === "skill" || group === "agent") return line.name || `#${line.group}`;
  return line.group;
}

function cell(field, kind, line) {
  const text = show(kind, line[field]);
  const title = {
    abandon_rate: `${count(line.abandoned)} abandoned`,
    sla_attainment: `${count(line.sla_met)} of ${count(line.sla_counted)}`,
    csat: `${count(line.csat_satisfied)} of ${count(line.csat_responses)} ratings`,
    csat_response_rate: `${count(line.csat_responses)} of ${count(line.handled)} handled`,
    fcr_rate: `${count(line.fcr_resolved)} of ${count(line.fcr_decided)}`,
    transfer_rate: `${count(line.transferred)} of ${count(line.handled)} handled`,
    escalation_rate: `${count(line.escalated)} of ${count(line.volume)}`,
    ces: `${count(line.effort_easy)} of ${count(line.effort_responses)} answers`,
    effort_response_rate: `${count(line.effort_responses)} of ${count(line.effort_asked)} asked`,
  }[field];
  const td = h("td", { class: "rp-num", "data-col": field, title: line[field] === null ? null : title }, text);
  if (field === "sla_attainment" && !missing(line.sla_target_percent)) {
    td.append(h("span", { class: "rp-goal" }, ` / ${line.sla_target_percent}%`));
    if (belowGoal(line)) td.classList.add("rp-bad");
  }
  return td;
}

function sortValue(s, line, field) {
  if (field === "group") {
    if (line.group === null || line.group === undefined) return null; // "No skill" and the like: last
    return s.shown.group === "skill" || s.shown.group === "agent" ? (line.name || line.group).toLowerCase() : line.group;
  }
  return line[field];
}

function sorted(s) {
  const rows = s.report.rows.slice();
  // the API orders skills and agents by id: people read them by name (the "none" group last)
  const byName = s.shown.group === "skill" || s.shown.group === "agent";
  const { field, dir } = s.sort || (byName ? { field: "group", dir: 1 } : {});
  if (!field) return rows;
  return rows.sort((a, b) => {
    const x = sortValue(s, a, field);
    const y = sortValue(s, b, field);
    if (missing(x) || missing(y)) return missing(x) - missing(y); // no data last, either way
    return (x < y ? -1 : x > y ? 1 : 0) * dir;
  });
}

function renderTable(s) {
  const { report } = s;
  const group = s.shown.group;
  const groupName = GROUPS.find(([v]) => v === group)[1];
  if (!report.rows.length) {
    fill(s.table);
    return;
  }
  const columns = columnsOf(report);
  const headCell = (field, label, title) => {
    const active = s.sort?.field === field;
    const dir = active ? (s.sort.dir === 1 ? "ascending" : "descending") : null;
    const button = h(
      "button",
      { type: "button", class: "rp-sort", title: title || null, "data-test": `rp-sort-${field}`, onclick: () => resort(s, field) },
      label,
      h("span", { class: "rp-arrow", "aria-hidden": "true" }, active ? (s.sort.dir === 1 ? " ▲" : " ▼") : ""),
    );
    return h("th", { scope: "col", "aria-sort": dir, "data-col": field }, button);
  };
  const body = sorted(s).map((line) =>
    h(
      "tr",
      { "data-test": "rp-row", "data-group": line.group ?? "" },
      h("th", { scope: "row" }, groupLabel(group, line)),
      columns.map(([field, , kind]) => cell(field, kind, line)),
    ),
  );
  const caption = `Conversations by ${groupName.toLowerCase()}, ${s.range.textContent}` + (group === "tag" ? " (a chat with several tags counts in each, so rows add up to more than the total)" : "");
  const table = h(
    "table",
    { class: "rp-table", "data-test": "rp-table" },
    h("caption", null, caption),
    h("thead", null, h("tr", null, headCell("group", groupName, null), columns.map(([f, label, , title]) => headCell(f, label, title)))),
    h("tbody", null, body),
    h("tfoot", null, h("tr", { "data-test": "rp-total-row" }, h("th", { scope: "row" }, "Total"), columns.map(([field, , kind]) => cell(field, kind, report.total)))),
  );
  fill(s.table, table);
}

function resort(s, field) {
  const dir = s.sort?.field === field ? -s.sort.dir : field === "group" ? 1 : -1; // figures: highest first
  s.sort = { field, dir };
  renderTable(s);
  s.table.querySelector(`[data-test="rp-sort-${field}"]`)?.focus();
}

// ---------------------------------------------------------------- transfers

// GET /reports/transfers (docs/api.md#transfer-report). Known figures get their own tiles and
// labels; a numeric field added later shows too, labelled from its name, and nested objects
// (a row's `outcomes`) are flattened one level into columns.
const TRANSFER_LABELS = {
  transfers: "Accepted",
  with_repeat: "Customer repeated",
  repeat_share: "Repeat share",
  accept_median_s: "Accept median",
  accept_p90_s: "Accept p90",
  handled: "Handled chats",
  transferred: "Transferred",
  transfer_rate: "Transfer rate",
  ping_pong: "Ping-pong",
  ping_pong_share: "Ping-pong share",
};
const TRANSFER_SHOWN = new Set(["since", "until", "total", "with_repeat", "repeat_share", "by_kind", "outcomes", "accept_median_s", "accept_p90_s", "by_skill", "by_agent", "conversations"]);
const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
const pairs = (o) => (isObject(o) ? Object.entries(o).map(([k, v]) => `${k} ${count(v)}`).join(" · ") : null);

function leaves(row, skip) {
  const out = {};
  for (const [k, v] of Object.entries(row)) {
    if (k === skip) continue;
    if (isObject(v)) {
      for (const [k2, v2] of Object.entries(v)) if (k2 !== "accepted" && kindOf(k2, v2)) out[k2] = v2; // outcomes.accepted = transfers
    } else if (kindOf(k, v)) out[k] = v;
  }
  return out;
}

function transferTable(rows, who, title, test, nobody) {
  if (!Array.isArray(rows) || !rows.length) return null;
  const flat = rows.map((r) => leaves(r, who));
  const fields = [...new Set(flat.flatMap((r) => Object.keys(r)))];
  const kinds = Object.fromEntries(fields.map((f) => [f, kindOf(f, flat.find((r) => !missing(r[f]))?.[f] ?? null)]));
  const label = (r) => r[who]?.name || (r[who] ? `#${r[who].id}` : nobody);
  return h(
    "div",
    { class: "rp-table-box rp-compact" },
    h(
      "table",
      { class: "rp-table", "data-test": test },
      h("caption", null, title),
      h("thead", null, h("tr", null, h("th", { scope: "col" }, who === "skill" ? "Skill" : "Agent"), fields.map((f) => h("th", { scope: "col", "data-col": f }, TRANSFER_LABELS[f] || heading(f))))),
      h("tbody", null, rows.map((r, i) => h("tr", { "data-test": `${test}-row` }, h("th", { scope: "row" }, label(r)), fields.map((f) => h("td", { class: "rp-num", "data-col": f }, show(kinds[f], flat[i][f])))))),
    ),
  );
}

function renderTransfers(s, t) {
  const conv = isObject(t.conversations) ? t.conversations : null;
  const tiles = [tile("tr-total", "Transfers accepted", count(t.total), pairs(t.by_kind))];
  if ("accept_median_s" in t) tiles.push(tile("tr-accept", "Time to accept, median", span(t.accept_median_s), `p90 ${span(t.accept_p90_s)}`));
  if (isObject(t.outcomes)) {
    const { accepted, ...rest } = t.outcomes;
    const stayed = (rest.declined || 0) + (rest.expired || 0) + (rest.cancelled || 0); // the chat did not move
    tiles.push(tile("tr-outcomes", "Not accepted", count(stayed), pairs(rest)));
  }
  tiles.push(tile("tr-repeat", "Customer repeated", count(t.with_repeat), `${percent(t.repeat_share)} of transfers`));
  if (conv && isObject(conv.total)) {
    const c = conv.total;
    tiles.push(tile("tr-pingpong", "Ping-pong", percent(c.ping_pong_share), `${count(c.ping_pong)} of ${count(c.transferred)} transferred chats`));
  }
  for (const f of Object.keys(t).filter((k) => !TRANSFER_SHOWN.has(k) && kindOf(k, t[k]))) tiles.push(tile(`tr-${f}`, TRANSFER_LABELS[f] || heading(f), show(kindOf(f, t[f]), t[f]), null));
  const parts = [h("div", { class: "rp-totals" }, tiles)];
  if (!t.total) parts.push(h("p", { class: "rp-empty", "data-test": "rp-transfers-empty" }, "No transfers accepted in this period."));
  parts.push(
    transferTable(t.by_skill, "skill", "Transfers by skill (sent to, else the chat's)", "rp-transfers-skill", "No skill"),
    // a cold transfer counts under its receiver once routing gives the chat to someone
    transferTable(t.by_agent, "agent", "Transfers by receiving agent", "rp-transfers-agent", "Not taken yet or agent deleted"),
    conv && conv.total?.transferred ? transferTable(conv.by_agent, "agent", "Transferred chats and ping-pong by last agent", "rp-pingpong-agent", "No agent") : null,
  );
  fill(s.transferBox, parts);
}

// ---------------------------------------------------------------- quality reviews

// GET /reports/quality by agent (docs/api.md#get-apiv1reportsquality): reviews of chats closed
// in the period, scores 0-100. A server without the endpoint answers 404: no section then.
const score = (v) => (missing(v) ? "—" : DECIMAL.format(v));

function renderQuality(s, answer) {
  const box = s.qualityBox;
  if (answer.status === "rejected") {
    box.hidden = answer.reason?.status === 404;
    fill(box, h("h2", null, "Quality reviews"), h("p", { class: "rp-empty", role: "alert" }, "The quality report could not be read: " + problemText(answer.reason)));
    return;
  }
  const q = answer.value;
  const labels = isObject(q.labels) ? q.labels : {};
  const t = q.total || {};
  const keys = Object.keys(labels);
  const csv = h("button", { type: "button", class: "small", "data-test": "rp-csv-quality", onclick: () => download(s, "quality", csv) }, "Download CSV");
  const parts = [
    h("div", { class: "rp-heading" }, h("h2", { id: "rp-quality-title" }, "Quality reviews"), csv),
    h(
      "div",
      { class: "rp-totals" },
      tile("qa-reviews", "Reviews", count(t.reviews), t.scored !== t.reviews ? `${count(t.scored)} scored` : null),
      tile("qa-score", "Average score", score(t.average_score), "out of 100"),
      keys.map((k) => tile(`qa-${k}`, labels[k], score(t.criteria?.[k]), null)),
    ),
  ];
  const rows = Array.isArray(q.rows) ? q.rows : [];
  if (!t.reviews) parts.push(h("p", { class: "rp-empty", "data-test": "rp-quality-empty" }, "No reviewed chats closed in this period."));
  else {
    parts.push(
      h(
        "div",
        { class: "rp-table-box rp-compact" },
        h(
          "table",
          { class: "rp-table", "data-test": "rp-quality-table" },
          h("caption", null, "Quality by agent (scores out of 100)"),
          h("thead", null, h("tr", null, h("th", { scope: "col" }, "Agent"), h("th", { scope: "col" }, "Reviews"), h("th", { scope: "col" }, "Average"), keys.map((k) => h("th", { scope: "col" }, labels[k])))),
          h(
            "tbody",
            null,
            rows.map((r) =>
              h(
                "tr",
                { "data-test": "rp-quality-row" },
                h("th", { scope: "row" }, r.name || (r.group ? `#${r.group}` : "Agent since deleted")),
                h("td", { class: "rp-num" }, count(r.reviews)),
                h("td", { class: "rp-num", "data-col": "average_score" }, score(r.average_score)),
                keys.map((k) => h("td", { class: "rp-num", "data-col": k }, score(r.criteria?.[k]))),
              ),
            ),
          ),
        ),
      ),
    );
  }
  box.hidden = false;
  box.setAttribute("aria-labelledby", "rp-quality-title");
  fill(box, parts);
}

// ---------------------------------------------------------------- CSV

// One of the three reports as CSV, for the period on screen. The API's CSV (format=csv) with the
// session's token, saved through a blob: link; `button` is disabled meanwhile.
const CSV = {
  conversations: (s, shown) => [`/reports/conversations?group_by=${shown.group}&tz=${encodeURIComponent(s.tz)}`, `-by-${shown.group}`],
  transfers: () => ["/reports/transfers?", ""],
  quality: (s) => [`/reports/quality?group_by=agent&tz=${encodeURIComponent(s.tz)}`, "-by-agent"],
};

async function download(s, report, button) {
  const shown = s.shown;
  if (!shown) return;
  const [path, suffix] = CSV[report](s, shown);
  const url = `/api/v1${path}${path.endsWith("?") ? "" : "&"}${query(s, shown.p).params}&format=csv`;
  button.disabled = true;
  say(s, "Preparing the CSV…");
  try {
    const res = await fetch(url, { headers: { Authorization: "Bearer " + s.ctx.token(), Accept: "text/csv" } });
    if (!res.ok) {
      const problem = await res.json().catch(() => null);
      const err = new Error(problem?.detail || problem?.title || "HTTP " + res.status);
      err.problem = problem;
      throw err;
    }
    const blob = await res.blob();
    const href = URL.createObjectURL(blob);
    const days = shown.p.first.getTime() === shown.p.last.getTime() ? isoDate(shown.p.first) : `${isoDate(shown.p.first)}_to_${isoDate(shown.p.last)}`;
    const link = h("a", { href, download: `warmline-${report}-${days}${suffix}.csv`, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(href), 60000); // the download has started by then
    say(s, "CSV downloaded.", "ok");
  } catch (err) {
    say(s, "The CSV could not be downloaded: " + problemText(err), "error");
  } finally {
    button.disabled = false;
  }
}
