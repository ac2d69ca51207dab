// Files in the console: the upload limits, uploads with progress (XHR, raw body, docs/api.md
// #attachments), the tray of files waiting for the next message, and files in the transcript
// (pictures fetched with the token and shown from blob: URLs; other files as download chips).

import { bytes, h, icon } from "./dom.js";
import { openDialog } from "./dialog.js";

let limits = null;
const blobs = new Map(); // attachment id -> Promise<blob: URL>

export function getLimits(ctx) {
  return (limits ||= ctx.api("GET", "/attachments/limits").catch((e) => {
    limits = null;
    throw e;
  }));
}

function fetchBlob(ctx, id) {
  if (!blobs.has(id)) {
    const p = fetch("/api/v1/attachments/" + encodeURIComponent(id), { headers: { Authorization: "Bearer " + ctx.token() } }).then(async (r) => {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return URL.createObjectURL(await r.blob());
    });
    p.catch(() => blobs.delete(id));
    blobs.set(id, p);
  }
  return blobs.get(id);
}

// One file of a message, as shown in the transcript.
export function attachmentView(ctx, a) {
  if (a.image) {
    const img = h("img", { alt: a.name, class: "thumb", "data-test": "attachment-image", loading: "lazy" });
    const btn = h("button", { class: "thumb-btn", "aria-label": "View " + a.name, onclick: () => view(ctx, a) }, img);
    fetchBlob(ctx, a.id).then(
      (url) => (img.src = url),
      () => btn.replaceWith(chip(ctx, a, "Preview unavailable")),
    );
    return btn;
  }
  return chip(ctx, a);
}

function chip(ctx, a, extra) {
  return h(
    "button",
    { class: "file-chip", "data-test": "attachment-file", title: "Download " + a.name, onclick: () => download(ctx, a) },
    icon("file"),
    h("span", { class: "fname" }, a.name),
    h("span", { class: "muted" }, " " + bytes(a.size || 0) + (extra ? " · " + extra : "")),
  );
}

async function download(ctx, a) {
  try {
    const url = await fetchBlob(ctx, a.id);
    const link = h("a", { href: url, download: a.name });
    document.body.append(link);
    link.click();
    link.remove();
  } catch {
    ctx.toast("The file could not be downloaded.", "error");
  }
}

function view(ctx, a) {
  const img = h("img", { alt: a.name, class: "viewer-img" });
  fetchBlob(ctx, a.id).then((url) => (img.src = url), () => {});
  openDialog({ title: a.name, body: [img], wide: true, test: "image-viewer", actions: [h("button", { class: "ghost", onclick: () => download(ctx, a) }, "Download")] });
}

// Files chosen for the next message: checked against the limits, uploaded at once, shown with
// progress and a cancel button. ids() gives those uploaded, in order.
export class Tray {
  constructor(ctx, onChange) {
    this.ctx = ctx;
    this.items = [];
    this.onChange = onChange;
    this.el = h("ul", { class: "tray", "aria-label": "Files to send", "data-test": "tray" });
    this.el.hidden = true;
  }

  async add(files) {
    let lim;
    try {
      lim = await getLimits(this.ctx);
    } catch {
      return this.ctx.toast("Files cannot be sent right now.", "error");
    }
    for (const file of files) {
      if (this.items.length >= lim.max_per_message) {
        this.ctx.toast(`At most ${lim.max_per_message} files per message.`, "warn");
        break;
      }
      if (file.size > lim.max_bytes) {
        this.ctx.toast(`${file.name} is larger than ${bytes(lim.max_bytes)}.`, "warn");
        continue;
      }
      const ext = "." + (file.name.split(".").pop() || "").toLowerCase();
      if (lim.types?.length && !lim.types.some((t) => t.mime === file.type || t.extensions.includes(ext))) {
        this.ctx.toast(`${file.name}: this type of file cannot be sent.`, "warn");
        continue;
      }
      this.upload(file);
    }
  }

  upload(file) {
    const bar = h("progress", { max: 1, value: 0, "aria-label": "Upload of " + file.name });
    const item = { file, done: null, xhr: new XMLHttpRequest() };
    const remove = h("button", { class: "icon small", "aria-label": "Remove " + file.name, onclick: () => this.remove(item) }, "×");
    item.el = h("li", { class: "tray-item", "data-test": "tray-item" }, h("span", { class: "fname" }, file.name), bar, remove);
    this.items.push(item);
    const x = item.xhr;
    x.open("POST", "/api/v1/attachments?filename=" + encodeURIComponent(file.name));
    x.setRequestHeader("Authorization", "Bearer " + this.ctx.token());
    if (file.type) x.setRequestHeader("Content-Type", file.type);
    x.responseType = "json";
    x.upload.onprogress = (e) => e.lengthComputable && (bar.value = e.loaded / e.total);
    x.onload = () => {
      if (x.status === 201) {
        item.done = x.response;
        bar.value = 1;
        item.el.classList.add("done");
      } else {
        this.ctx.toast(`${file.name}: ${x.response?.detail || "upload failed"}`, "error");
        this.remove(item);
      }
      this.onChange();
    };
    x.onerror = () => {
      this.ctx.toast(`${file.name}: upload failed`, "error");
      this.remove(item);
    };
    x.send(file);
    this.render();
  }

  remove(item) {
    if (!item.done) item.xhr.abort();
    this.items = this.items.filter((i) => i !== item);
    this.render();
    this.onChange();
  }

  render() {
    this.el.replaceChildren(...this.items.map((i) => i.el));
    this.el.hidden = !this.items.length;
  }

  busy() {
    return this.items.some((i) => !i.done);
  }

  files() {
    return this.items.filter((i) => i.done).map((i) => i.done);
  }

  clear() {
    this.items = [];
    this.render();
  }
}
