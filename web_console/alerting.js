// Getting the agent's attention: a short beep (WebAudio, no sound file) and a desktop
// notification while the tab is hidden, when the agent allowed them.

let audio = null;
let lastBeep = 0;

export function beep() {
  const now = Date.now();
  if (now - lastBeep < 800) return; // a burst of offers makes one sound
  lastBeep = now;
  try {
    audio ||= new AudioContext();
    if (audio.state === "suspended") audio.resume().catch(() => {});
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.type = "sine";
    osc.frequency.value = 880;
    const t = audio.currentTime;
    gain.gain.setValueAtTime(0.0001, t);
    gain.gain.exponentialRampToValueAtTime(0.2, t + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.25);
    osc.connect(gain).connect(audio.destination);
    osc.start(t);
    osc.stop(t + 0.3);
  } catch {
    // no audio device or autoplay refused: the visual cue is enough
  }
}

export function notify(title, body) {
  if (!self.Notification || Notification.permission !== "granted") return;
  try {
    const n = new Notification(title, { body: String(body || "").slice(0, 200), tag: "warmline-console" });
    n.onclick = () => {
      focus();
      n.close();
    };
  } catch {
    // some browsers only allow notifications from a service worker
  }
}
