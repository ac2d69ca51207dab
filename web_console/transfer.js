// The transfer dialog (Alt+T): choose who gets the chat (an online agent with room, a skill,
// or the supervisors), add a note, and send: a warm transfer in two clicks. A skill can also be
// given the chat cold (straight back to its queue), and the chat can be escalated from here.
// GET /api/v1/team gives agents with their load and skills with their queues.

import { duration, fill, h, problemText } from "./dom.js";
import { openDialog } from "./dialog.js";

export async function openTransfer(ctx, conv) {
  const list = h("div", { class: "targets", role: "radiogroup", "aria-label": "Transfer to" }, h("p", { class: "muted" }, "Loading the team…"));
  const note = h("textarea", { id: "transfer-note", rows: 3, maxlength: 1000, placeholder: "What should they know? (shown with the summary)", "data-test": "transfer-note-input" });
  const error = h("p", { class: "form-error", role: "alert" });
  const warm = h("button", { class: "primary", "data-test": "transfer-send", disabled: true }, "Transfer");
  const cold = h("button", { class: "ghost", "data-test": "transfer-cold", disabled: true, title: "Send the chat back to this skill's queue now" }, "Send to queue (cold)");
  const escalate = h("button", { class: "danger", "data-test": "transfer-escalate", title: "Mark escalated and offer to every online supervisor" }, "Escalate");
  let target = null;
  const dlg = openDialog({
    title: "Transfer the chat with " + conv.label(),
    test: "transfer-dialog",
    wide: true,
    body: [list, h("label", { for: "transfer-note" }, "Note for the receiver"), note, error],
    actions: [escalate, h("span", { class: "spacer" }), h("button", { class: "ghost", onclick: () => dlg.close() }, "Cancel"), cold, warm],
  });

  const choose = (t, el) => {
    target = t;
    for (const x of list.querySelectorAll(".target")) x.setAttribute("aria-checked", x === el ? "true" : "false");
    warm.disabled = false;
    cold.disabled = !t.skill;
    warm.textContent = t.agent_id ? "Transfer to " + t.label : t.skill ? "Offer to " + t.label : "Offer to the supervisors";
  };
  const send = (mode) => {
    if (!target) return;
    const frame = { type: "transfer", conversation_id: conv.id, mode, note: note.value.trim() || null };
    if (mode === "warm") frame.to = target.agent_id ? { agent_id: target.agent_id } : target.skill ? { skill: target.skill } : { supervisors: true };
    else frame.to = { skill: target.skill };
    if (ctx.send(frame) === false) return (error.textContent = "Not connected; try again in a moment.");
    dlg.close();
  };
  warm.addEventListener("click", () => send("warm"));
  cold.addEventListener("click", () => send("cold"));
  escalate.addEventListener("click", () => {
    ctx.send({ type: "escalate", conversation_id: conv.id, reason: note.value.trim() || null });
    dlg.close();
  });

  let team = { agents: [], skills: [] };
  let teamError = "";
  try {
    team = await ctx.api("GET", "/team");
  } catch (err) {
    teamError = problemText(err);
  }
  const option = (t, main, sub, disabled, why, test) => {
    const el = h(
      "button",
      { class: "target", role: "radio", "aria-checked": "false", disabled, title: why || null, "data-test": test, "data-name": t.label },
      h("span", { class: "tname" }, main),
      h("span", { class: "tsub muted" }, sub),
    );
    el.addEventListener("click", () => choose(t, el));
    return el;
  };
  const agents = team.agents.filter((a) => a.id !== ctx.me.id);
  fill(
    list,
    teamError ? h("p", { class: "form-error" }, "The team could not be loaded: " + teamError) : null,
    h("h3", {}, "Agents"),
    agents.length
      ? h(
          "div",
          { class: "target-grid" },
          agents.map((a) => {
            const full = a.load >= a.capacity && a.role === "agent";
            const away = a.status !== "online" || !a.connected;
            const why = away ? (a.connected ? a.status : "offline") : full ? "at capacity" : null;
            return option(
              { agent_id: a.id, label: a.name },
              [h("span", { class: "dot " + (away ? a.status || "offline" : full ? "full" : "online"), "aria-hidden": "true" }), a.name, a.role !== "agent" ? h("span", { class: "tag small" }, a.role) : null],
              `${a.load} / ${a.capacity}` + (why ? " · " + why : "") + (a.skills?.length ? " · " + a.skills.map((s) => s.slug).join(", ") : ""),
              !!why,
              why,
              "transfer-agent",
            );
          }),
        )
      : h("p", { class: "muted" }, "No other agents."),
    h("h3", {}, "Skills"),
    team.skills.length
      ? h(
          "div",
          { class: "target-grid" },
          team.skills.map((s) =>
            option(
              { skill: s.slug, label: s.name },
              s.name,
              `${s.waiting} waiting` + (s.waiting ? ` · longest ${duration(s.longest_wait_seconds || 0)}` : "") + ` · ${s.agents_online} online`,
              false,
              null,
              "transfer-skill",
            ),
          ),
        )
      : h("p", { class: "muted" }, "No skills."),
    h("h3", {}, "Supervisors"),
    h("div", { class: "target-grid" }, option({ supervisors: true, label: "Supervisors" }, "All online supervisors", "The first to accept gets it", false, null, "transfer-supervisors")),
  );
  list.querySelector(".target:not([disabled])")?.focus();
}
