// Every string the visitor can see, per language. Add a language by adding a table with the
// same keys; a missing key falls back to English. {name}-style placeholders are filled by t().
const TABLES = {
  en: {
    title: "Chat with us",
    open: "Open chat",
    openUnread: "Open chat, {n} unread",
    close: "Close chat",
    online: "We usually answer in a few minutes",
    helping: "Here to help you",
    connecting: "Connecting…",
    reconnecting: "Reconnecting… your messages will be sent when we are back.",
    failed: "The chat is unavailable on this page.",
    prechatIntro: "Tell us a little about you and we will find the right person.",
    name: "Name",
    email: "Email",
    topic: "Topic",
    topicChoose: "Choose a topic",
    start: "Start chat",
    startFailed: "We could not start the chat. Please check the fields and try again.",
    message: "Your message",
    placeholder: "Write a message…",
    send: "Send",
    you: "You",
    sending: "Sending",
    sent: "Sent",
    read: "Read",
    failedSend: "Not sent",
    queued: "You are number {n} in line, about {m} min.",
    queuedNext: "You are next in line, about {m} min.",
    queuedNoEstimate: "You are number {n} in line. We will answer as soon as someone is free.",
    requeued: "You are back in the queue; the next free person will continue.",
    offline: "Nobody is available right now. Leave a message and we will get back to you.",
    offlineUntil: "We are closed until {time}. Leave a message and we will get back to you.",
    joined: "{agent} joined the chat.",
    transferSkill: "{agent} from {skill} joined and has your conversation so far.",
    transfer: "{agent} joined and has your conversation so far.",
    left: "{agent} left the chat.",
    handedOver: "{agent} handed your chat over.",
    closed: "The chat has ended. Write again to start a new one.",
    typing: "{agent} is typing…",
    agent: "Agent",
  },
};

export function strings(lang) {
  const base = TABLES.en;
  const chosen = TABLES[(lang || "en").toLowerCase().split("-")[0]] || base;
  return (key, vars = {}) =>
    (chosen[key] ?? base[key] ?? key).replace(/\{(\w+)\}/g, (_, k) => String(vars[k] ?? ""));
}
