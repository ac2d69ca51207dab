// Modal dialogs: a <dialog>-like box with a backdrop, focus moved in and trapped, Esc to
// close, focus given back to where it was. Also the keyboard help and the close dialog.

import { h } from "./dom.js";

const stack = [];

// open({title, body: [nodes], actions: [buttons], test}) -> {el, close()}
export function openDialog({ title, body, actions, test, wide, onClose }) {
  const back = document.activeElement;
  const id = "dlg-" + Math.random().toString(36).slice(2, 8);
  const box = h(
    "div",
    { class: "dialog" + (wide ? " wide" : ""), role: "dialog", "aria-modal": "true", "aria-labelledby": id, "data-test": test, tabindex: "-1" },
    h("header", {}, h("h2", { id }, title), h("button", { class: "icon close-x", "aria-label": "Close dialog", "data-test": "dialog-close", onclick: () => close() }, "×")),
    h("div", { class: "dialog-body" }, body),
    actions?.length ? h("footer", {}, actions) : null,
  );
  const backdrop = h("div", { class: "backdrop", onmousedown: (e) => e.target === backdrop && close() }, box);
  const entry = { close, el: box };
  function close(silent) {
    const i = stack.indexOf(entry);
    if (i < 0) return;
    stack.splice(i, 1);
    backdrop.remove();
    if (!silent) onClose?.();
    if (back && document.contains(back)) back.focus();
  }
  box.addEventListener("keydown", (e) => {
    if (e.key !== "Tab") return;
    const items = [...box.querySelectorAll("button, input, select, textarea, [href], [tabindex]:not([tabindex='-1'])")].filter((x) => !x.disabled && x.offsetParent !== null);
    if (!items.length) return;
    const first = items[0];
    const last = items[items.length - 1];
    if (e.shiftKey && document.activeElement === first) (e.preventDefault(), last.focus());
    else if (!e.shiftKey && document.activeElement === last) (e.preventDefault(), first.focus());
  });
  document.body.append(backdrop);
  stack.push(entry);
  const first = box.querySelector("[autofocus], input, select, textarea, .dialog-body button, footer button");
  (first || box).focus();
  return entry;
}

// Esc: the top dialog goes (all of them with `all`). True if one was open.
export function closeTopDialog(all) {
  if (!stack.length) return false;
  if (all) while (stack.length) stack[stack.length - 1].close(true);
  else stack[stack.length - 1].close();
  return true;
}

export const SHORTCUTS = [
  ["Alt + ↓", "Next chat"],
  ["Alt + ↑", "Previous chat"],
  ["Alt + A", "Accept the oldest offer"],
  ["Alt + T", "Transfer the open chat"],
  ["/", "Canned responses (at the start of the message box)"],
  ["Enter", "Send the message"],
  ["Shift + Enter", "New line"],
  ["Esc", "Close a dialog or the picker"],
  ["?", "This help"],
];

export function openHelp() {
  if (stack.some((d) => d.el.dataset.test === "help-dialog")) return;
  const rows = SHORTCUTS.map(([k, v]) => h("tr", {}, h("th", { scope: "row" }, h("kbd", {}, k)), h("td", {}, v)));
  openDialog({
    title: "Keyboard shortcuts",
    test: "help-dialog",
    body: [h("table", { class: "shortcuts" }, h("tbody", {}, rows))],
  });
}

// The close dialog: a disposition (required when the settings say so) and tags.
// onConfirm({disposition, tags}) sends the frame.
export async function openCloseDialog(ctx, conv, onConfirm) {
  let dispositions = { dispositions: [], required: false };
  try {
    dispositions = await ctx.api("GET", "/dispositions");
  } catch {
    // no dispositions on this server: the chat closes without one
  }
  const select = h(
    "select",
    { id: "close-disposition", "data-test": "close-disposition", required: dispositions.required },
    h("option", { value: "" }, dispositions.required ? "Choose an outcome…" : "No outcome"),
    dispositions.dispositions.map((d) => h("option", { value: d.code }, d.label)),
  );
  const tags = h("input", { id: "close-tags", "data-test": "close-tags", value: (conv.tags || []).join(", "), placeholder: "refund, vip", autocomplete: "off" });
  const error = h("p", { class: "form-error", role: "alert" });
  const confirm = h("button", { class: "danger", "data-test": "close-confirm", type: "submit" }, "Close chat");
  const form = h(
    "form",
    { class: "stack" },
    dispositions.dispositions.length ? [h("label", { for: "close-disposition" }, "Outcome" + (dispositions.required ? " (required)" : "")), select] : null,
    h("label", { for: "close-tags" }, "Tags (comma separated)"),
    tags,
    error,
  );
  const dlg = openDialog({
    title: "Close the chat with " + conv.label(),
    test: "close-dialog",
    body: [form],
    actions: [h("button", { class: "ghost", onclick: () => dlg.close() }, "Cancel"), confirm],
  });
  const submit = (e) => {
    e?.preventDefault();
    if (dispositions.required && !select.value) {
      error.textContent = "Choose an outcome first.";
      select.focus();
      return;
    }
    const list = [...new Set(tags.value.split(",").map((t) => t.trim().toLowerCase()).filter(Boolean))];
    const bad = list.find((t) => t.length > 32);
    if (bad || list.length > 20) {
      error.textContent = bad ? `Tag too long: ${bad}` : "At most 20 tags.";
      return;
    }
    onConfirm({ disposition: select.value || null, tags: list });
    dlg.close();
  };
  form.addEventListener("submit", submit);
  confirm.addEventListener("click", submit);
}
