// A high-priority alert nobody has answered is announced in a banner (role="alert": a
// screen reader reads it at once) and by sound: IEC 60601-1-8's high-priority pattern, ten
// pulses in bursts of 3 + 2, again every REPEAT_MS while any is unanswered. Browsers keep
// a page silent until a person has clicked or typed in it; until then the station says
// so, with a button that enables the sound. Muting is remembered in this browser.

const MUTED = "vigil.station.muted";
const REPEAT_MS = 15000;
const PULSES = [0, 0.2, 0.4, 0.8, 1.0, 1.6, 1.8, 2.0, 2.4, 2.6];
const PULSE_S = 0.15;
const PITCH_HZ = 880;

export class Alarm {
  /** `show(patient)` brings a patient's tile into view. */
  constructor(banner, muteButton, enableButton, show) {
    this.banner = banner;
    this.muteButton = muteButton;
    this.enableButton = enableButton;
    this.show = show;
    this.muted = localStorage.getItem(MUTED) === "1";
    this.announced = new Set();
    this.calling = [];
    this.shownKeys = "";
    this.context = null;
    this.timer = null;
    muteButton.addEventListener("click", () => this.setMuted(!this.muted));
    enableButton.addEventListener("click", () => this.enable());
    // Any click or key press in the page lets it play.
    for (const kind of ["pointerdown", "keydown"]) {
      document.addEventListener(kind, () => this.enable(), { once: true, capture: true });
    }
    this.setMuted(this.muted);
  }

  setMuted(muted) {
    this.muted = muted;
    localStorage.setItem(MUTED, muted ? "1" : "0");
    this.muteButton.setAttribute("aria-pressed", String(muted));
    this.muteButton.textContent = muted ? "Alarm sound muted: unmute" : "Mute alarm sound";
    this.refreshSoundState();
  }

  audio() {
    if (!this.context && window.AudioContext) this.context = new AudioContext();
    return this.context;
  }

  async enable() {
    const context = this.audio();
    if (context && context.state === "suspended") {
      try {
        await context.resume();
      } catch (error) {
        // still blocked: the button stays
      }
    }
    this.refreshSoundState();
    if (this.calling.length) this.sound();
  }

  refreshSoundState() {
    const context = this.audio();
    const blocked = !context || context.state !== "running";
    this.enableButton.hidden = this.muted || !blocked;
    document.body.dataset.sound = this.muted ? "muted" : blocked ? "blocked" : "on";
  }

  /** The unanswered high-priority alerts now: `[{patient, name, alert}]`. */
  review(calling) {
    this.calling = calling;
    const keys = calling.map((c) => `${c.alert.id}:${c.alert.revision}`);
    const fresh = keys.some((key) => !this.announced.has(key));
    keys.forEach((key) => this.announced.add(key));
    const shownKeys = keys.join(",");
    if (shownKeys !== this.shownKeys) {
      this.shownKeys = shownKeys;
      this.showBanner(calling);
    }
    if (fresh) this.sound();
    if (calling.length && this.timer === null) {
      this.timer = setInterval(() => this.sound(), REPEAT_MS);
    } else if (!calling.length && this.timer !== null) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  showBanner(calling) {
    this.banner.hidden = calling.length === 0;
    this.banner.replaceChildren(
      ...calling.slice(0, 3).map(({ patient, name, alert }) => {
        const go = document.createElement("button");
        go.type = "button";
        go.textContent = "Show";
        go.setAttribute("aria-label", `Show ${name || patient}`);
        go.addEventListener("click", () => this.show(patient));
        const line = document.createElement("p");
        const what = alert.description || alert.rule.replaceAll("_", " ");
        line.textContent = `High priority: ${name ? `${name} (${patient})` : patient}: ${what} `;
        line.append(go);
        return line;
      }),
    );
    if (calling.length > 3) {
      const more = document.createElement("p");
      more.textContent = `and ${calling.length - 3} more unanswered high-priority alerts`;
      this.banner.append(more);
    }
  }

  sound() {
    this.refreshSoundState();
    const context = this.audio();
    if (this.muted || !context || context.state !== "running" || !this.calling.length) return;
    const start = context.currentTime + 0.05;
    for (const offset of PULSES) {
      const at = start + offset;
      const tone = context.createOscillator();
      const gain = context.createGain();
      tone.type = "triangle";
      tone.frequency.value = PITCH_HZ;
      gain.gain.setValueAtTime(0, at);
      gain.gain.linearRampToValueAtTime(0.3, at + 0.02);
      gain.gain.setValueAtTime(0.3, at + PULSE_S - 0.02);
      gain.gain.linearRampToValueAtTime(0, at + PULSE_S);
      tone.connect(gain).connect(context.destination);
      tone.start(at);
      tone.stop(at + PULSE_S + 0.01);
    }
  }
}
