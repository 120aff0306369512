// One patient's tile on the central station. A tile keeps its elements and changes only
// what changed: with 200 tiles updated every two seconds, rebuilding them would cost the
// page its smoothness and a keyboard user their focus.
import { age, element, reading } from "./format.js";
import { summary } from "./sparkline.js";

const WORDS = {
  high: "High",
  medium: "Medium",
  low: "Low",
  stale: "No recent data",
  ok: "No alert",
};
const DEVICES = { "heart-rate-strap": "Chest strap", "pulse-oximeter": "Oximeter" };
const LOW_BATTERY = 20;
const ACTIONS = [
  ["acknowledge", "Acknowledge"],
  ["snooze", "Snooze 15 min"],
  ["resolve", "Resolve"],
];

/** Set a node's text only when it differs (a write the browser would lay out again). */
function put(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

function setClass(node, classes) {
  if (node.className !== classes) node.className = classes;
}

function vital(label, value) {
  return element("p", { class: "vital" }, null, element("span", { class: "label" }, label), value);
}

/** Lexicographic order of the keys the server gives each tile (most in need first). */
export function compareTiles(a, b) {
  const x = a.data.order;
  const y = b.data.order;
  for (let i = 0; i < Math.max(x.length, y.length); i += 1) {
    if (x[i] < y[i]) return -1;
    if (x[i] > y[i]) return 1;
  }
  return 0;
}

function alertState(alert) {
  if (alert.inhibited) return "held while the sensor is checked";
  if (alert.snoozed_until && !alert.calling && alert.state === "triggered") {
    const until = new Date(alert.snoozed_until);
    return `snoozed until ${until.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}`;
  }
  return alert.state === "acknowledged" ? "acknowledged" : "unanswered";
}

export class Tile {
  /** `onAction(tile, alert, action, button)` runs a button's change. */
  constructor(patient, onAction) {
    this.patient = patient;
    this.onAction = onAction;
    this.points = new Map();
    this.alerts = new Map();
    this.sparkDirty = true;
    const link = element("a", { href: `/app/patient?id=${encodeURIComponent(patient)}` });
    this.name = element("h2", { id: `tile-${patient}` }, null, link);
    this.link = link;
    this.pid = element("span", { class: "pid" });
    this.word = element("span", { class: "attention priority" });
    this.spo2 = element("span", { class: "value" });
    this.pulse = element("span", { class: "value" });
    this.canvas = element("canvas", { class: "spark", role: "img" });
    this.last = element("p", { class: "last" });
    this.devices = element("ul", { class: "devices", "aria-label": "Devices" });
    this.alertList = element("ul", { class: "alerts", "aria-label": "Open alerts" });
    this.root = element(
      "article",
      { class: "tile", "data-patient": patient, "aria-labelledby": `tile-${patient}` },
      null,
      element("header", {}, null, element("div", {}, null, this.name, this.pid), this.word),
      element("div", { class: "vitals" }, null, vital("SpO₂", this.spo2), vital("Pulse", this.pulse)),
      this.canvas,
      this.last,
      this.devices,
      this.alertList,
    );
  }

  /** Take the server's tile (a whole one, or one whose sparkline has its last minutes). */
  update(data, frame) {
    const before = this.data;
    this.data = data;
    put(this.link, data.name || data.patient);
    put(this.pid, data.name ? data.patient : "");
    put(this.word, WORDS[data.attention]);
    setClass(this.word, `attention priority ${data.attention}`);
    setClass(this.root, `tile ${data.attention}`);
    for (const point of data.spark) this.points.set(point[0], point);
    this.sparkDirty = true;
    this.window = frame.window_s;
    if (!before || JSON.stringify(before.devices) !== JSON.stringify(data.devices)) {
      this.showDevices(data.devices);
    }
    this.showAlerts(data.alerts);
  }

  /** The sparkline's minutes inside the window ending at `now` (ms), oldest first. */
  sparkPoints(now) {
    const start = now / 1000 - this.window - 60;
    for (const minute of this.points.keys()) if (minute < start) this.points.delete(minute);
    return [...this.points.values()].sort((a, b) => a[0] - b[0]);
  }

  describeSpark(points) {
    const words = summary(points, this.window);
    if (this.canvas.getAttribute("aria-label") !== words) this.canvas.setAttribute("aria-label", words);
  }

  showDevices(devices) {
    this.devices.replaceChildren(
      ...devices.map((d) => {
        const low = d.battery !== null && d.battery < LOW_BATTERY;
        const away = d.gateway_state && d.gateway_state !== "online";
        const parts = [DEVICES[d.kind] || "Sensor", d.state || "no report from its hub yet"];
        if (d.battery !== null) parts.push(`battery\u00a0${d.battery}\u00a0%${low ? " (low)" : ""}`);
        if (away) parts.push(`home hub ${d.gateway_state}`);
        const trouble = low || away || (d.state && d.state !== "connected");
        return element("li", { class: trouble ? "device trouble" : "device" }, parts.join(" · "));
      }),
    );
  }

  showAlerts(alerts) {
    const ids = new Set(alerts.map((a) => a.id));
    for (const [id, shown] of this.alerts) {
      if (!ids.has(id)) {
        shown.root.remove();
        this.alerts.delete(id);
      }
    }
    alerts.forEach((alert, index) => {
      let shown = this.alerts.get(alert.id);
      if (!shown) {
        shown = this.alertNode(alert);
        this.alerts.set(alert.id, shown);
      }
      shown.alert = alert;
      put(shown.word, WORDS[alert.priority]);
      setClass(shown.word, `priority ${alert.priority}`);
      put(shown.what, alert.description || alert.rule.replaceAll("_", " "));
      put(shown.state, alertState(alert));
      setClass(shown.root, `alert ${alert.priority}${alert.calling ? " calling" : ""}`);
      const who = this.data.name ? `${this.data.name} (${this.patient})` : this.patient;
      shown.buttons.forEach((node, i) => {
        const label = `${ACTIONS[i][1]}: ${alert.priority}-priority alert of ${who}`;
        if (node.getAttribute("aria-label") !== label) node.setAttribute("aria-label", label);
      });
      shown.buttons[0].hidden = alert.state !== "triggered"; // taken already: no acknowledging
      if (this.alertList.children[index] !== shown.root) {
        this.alertList.insertBefore(shown.root, this.alertList.children[index] || null);
      }
    });
  }

  alertNode(alert) {
    const shown = {
      word: element("span", { class: "priority" }),
      what: element("span", { class: "what" }),
      age: element("span", { class: "age" }),
      state: element("span", { class: "state-word" }),
      outcome: element("p", { class: "outcome", role: "status" }),
      buttons: ACTIONS.map(([action, text]) => {
        const node = element("button", { type: "button", "data-action": action }, text);
        node.addEventListener("click", () => this.onAction(this, shown.alert, action, node));
        return node;
      }),
    };
    shown.root = element(
      "li",
      { "data-alert-id": String(alert.id) },
      null,
      element("p", {}, null, shown.word, " ", shown.what),
      element("p", { class: "when" }, null, shown.age, " · ", shown.state),
      element("div", { class: "actions" }, null, ...shown.buttons),
      shown.outcome,
    );
    return shown;
  }

  /** Say what became of a button's change, in the alert's own line. */
  outcome(alertId, text, failed = false) {
    const shown = this.alerts.get(alertId);
    if (!shown) return;
    put(shown.outcome, text);
    shown.outcome.classList.toggle("error", failed);
  }

  /** Mark, once, when each alert was first on the screen (`data-shown-at`, epoch ms). */
  markShown(at) {
    for (const shown of this.alerts.values()) {
      if (!shown.root.dataset.shownAt) shown.root.dataset.shownAt = String(at);
    }
  }

  /** Ages as of `now` (ms, the server's clock). */
  tick(now, staleAfter) {
    const data = this.data;
    const since = (iso) => (now - Date.parse(iso)) / 1000;
    put(this.last, data.last ? `Last reading ${age(since(data.last))} ago` : "No readings yet");
    for (const [node, vital, unit] of [
      [this.spo2, data.spo2, "%"],
      [this.pulse, data.pulse, "/min"],
    ]) {
      put(node, vital ? reading(vital.value, unit) : "–");
      node.classList.toggle("old", !vital || since(vital.at) > staleAfter);
    }
    for (const shown of this.alerts.values()) {
      put(shown.age, `for ${age(since(shown.alert.triggered_at))}`);
    }
  }
}
