// Chat text as DOM nodes: plain text nodes, and http(s) links as <a> elements built with DOM
// APIs. Never HTML: whatever a message holds, it is shown as the characters it is.

const URLISH = /\bhttps?:\/\/[^\s<>"']+/gi;
const TRAILING = /[.,;:!?)\]}'"]+$/; // "see https://x.y/z." - the full stop is not part of the link

export function richText(text) {
  const out = document.createDocumentFragment();
  let at = 0;
  for (const match of text.matchAll(URLISH)) {
    const raw = match[0].replace(TRAILING, "");
    const link = safeLink(raw);
    if (!link) continue;
    out.append(text.slice(at, match.index), link);
    at = match.index + raw.length;
  }
  out.append(text.slice(at));
  return out;
}

function safeLink(raw) {
  let url;
  try {
    url = new URL(raw);
  } catch {
    return null;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return null;
  const a = document.createElement("a");
  a.href = url.href;
  a.textContent = raw;
  a.target = "_blank";
  a.rel = "noopener noreferrer nofollow";
  return a;
}
