// A patient's own view: their readings in plain words, what they were told, their devices,
// and a hint when a sensor is not reading. Everything comes from the API as this patient,
// so the policy, not this page, decides what it may show: only their own data.
import { api, follow, requireSignIn, signOut } from "./session.js";
import { element } from "./format.js";
import { describe, lastNight, within } from "./summary.js";
import { drawChart } from "./simplechart.js";
import { devicesOf } from "./devicestate.js";

const MESSAGES_SHOWN = 5;
/** The devices' state and today's readings are read again this often; alerts come live. */
const REFRESH_MS = 60_000;
/** analytics/rules.py: TECHNICAL (readings without a usable value) and STALE_RULE. */
const TECHNICAL = new Set(["check_sensor", "no_data"]);
const OXYGEN_SCALE = [85, 100];

const $ = (id) => document.getElementById(id);
const charts = {};

function problemText(rule, device) {
  const name = device === "strap" ? "chest strap" : "finger clip";
  if (rule === "no_data") {
    return `Nothing has come from your ${name} for a few minutes. Check that it is switched on and charged, and near your home hub.`;
  }
  return device === "strap"
    ? "Your chest strap is not getting a good reading. Check that it sits snugly just under your chest and that its pads touch your skin (wet them a little if your skin is dry)."
    : "Your finger clip is not getting a good reading. Put it back on a finger, all the way in, and keep your hand still for a minute.";
}

/** The open technical conditions that hold now, one per device and kind. */
function sensorProblems(alerts) {
  const found = new Map();
  for (const alert of alerts) {
    for (const condition of alert.active || []) {
      const [rule, metric] = condition.split(":");
      if (!TECHNICAL.has(rule)) continue;
      const device = metric === "heart_rate" ? "strap" : "clip";
      found.set(`${rule} ${device}`, problemText(rule, device));
    }
  }
  return [...found.values()];
}

function showSensor(alerts) {
  const problems = sensorProblems(alerts);
  $("sensor").hidden = problems.length === 0;
  $("sensor-problems").replaceChildren(...problems.map((text) => element("li", {}, text)));
}

function toldAt(iso) {
  return new Date(iso).toLocaleString([], {
    weekday: "long",
    day: "numeric",
    month: "long",
    hour: "2-digit",
    minute: "2-digit",
  });
}

const OUTCOME = {
  acknowledged: "Your care team has seen this.",
  resolved: "This is over now.",
};

function messageItem(message) {
  const over = message.alert_state === "resolved";
  return element(
    "li",
    { class: over ? "message over" : "message" },
    null,
    element("p", { class: "when" }, toldAt(message.told)),
    element("p", { class: "text" }, message.text),
    ...(OUTCOME[message.alert_state] ? [element("p", { class: "outcome" }, OUTCOME[message.alert_state])] : []),
  );
}

function showMessages(messages, all = false) {
  const list = $("messages");
  if (messages.length === 0) {
    list.replaceChildren(element("li", { class: "empty" }, "No messages. When there is something you should know or do, it will be here."));
  } else {
    list.replaceChildren(...(all ? messages : messages.slice(0, MESSAGES_SHOWN)).map(messageItem));
  }
  const older = messages.length - MESSAGES_SHOWN;
  const button = $("older");
  button.hidden = all || older <= 0;
  button.textContent = `Show ${older} older message${older === 1 ? "" : "s"}`;
  button.onclick = () => {
    showMessages(messages, true);
    list.children[MESSAGES_SHOWN]?.setAttribute("tabindex", "-1");
    list.children[MESSAGES_SHOWN]?.focus();
  };
}

const HOURS = (date) => date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
const DAYS = (date) => date.toLocaleDateString([], { weekday: "short" });

function showTrend(id, trend, label, timeLabel) {
  charts[id]?.();
  const figure = $(id).closest("figure");
  figure.hidden = trend.points.length === 0;
  if (figure.hidden) return;
  charts[id] = drawChart($(id), {
    points: trend.points,
    bucketS: trend.bucket_s,
    start: new Date(trend.start),
    end: new Date(trend.end),
    unit: "%",
    range: OXYGEN_SCALE,
    label,
    timeLabel,
  });
}

function showToday(oxygen, pulse) {
  const night = lastNight();
  const during = night.over ? "last night" : "tonight so far";
  $("night").textContent = describe("spo2", within(oxygen.points, night.start, night.end), during);
  const day = describe("spo2", oxygen.points, "in the last 24 hours");
  $("day-oxygen").textContent = day;
  $("day-pulse").textContent = describe("pulse_rate", pulse.points, "in the last 24 hours");
  showTrend("day-chart", oxygen, day, HOURS);
}

function showWeek(oxygen, pulse) {
  const week = describe("spo2", oxygen.points, "in the last 7 days");
  $("week-oxygen").textContent = week;
  $("week-pulse").textContent = describe("pulse_rate", pulse.points, "in the last 7 days");
  showTrend("week-chart", oxygen, week, DAYS);
}

function showDevices({ items, last }) {
  $("devices").replaceChildren(
    ...(items.length ? items : [element("li", { class: "empty" }, "No devices are set up for you yet.")]),
  );
  $("last-reading").textContent = last;
}

/** Each part of the page: what it reads, and how it shows it. */
function parts(patient) {
  const base = `/patients/${encodeURIComponent(patient)}`;
  const trend = (metric, range) => api(`${base}/trend?metric=${metric}&range=${range}`);
  return {
    sensor: async () => showSensor(await api(`/alerts?patient=${encodeURIComponent(patient)}&state=open`)),
    messages: async () => showMessages((await api(`${base}/messages`)).messages),
    today: async () => showToday(...(await Promise.all([trend("spo2", "24h"), trend("pulse_rate", "24h")]))),
    week: async () => showWeek(...(await Promise.all([trend("spo2", "7d"), trend("pulse_rate", "7d")]))),
    devices: async () => showDevices(devicesOf(await api("/station"), patient)),
  };
}

const WORDS = {
  sensor: "whether your sensors are reading",
  messages: "your messages",
  today: "today's readings",
  week: "this week's readings",
  devices: "your devices",
};

const failing = new Set();

/**
 * Run the named parts; a part that fails says so in words (until it works again), the
 * others still show. Whether all of them worked.
 */
async function run(all, names) {
  const results = await Promise.allSettled(names.map((name) => all[name]()));
  names.forEach((name, i) => (results[i].status === "rejected" ? failing.add(name) : failing.delete(name)));
  const failed = Object.keys(WORDS).filter((name) => failing.has(name));
  $("error").textContent = failed.length
    ? `Vigil could not load ${failed.map((n) => WORDS[n]).join(", ")}. Try again in a minute; if it keeps happening, tell your care team.`
    : "";
  return results.every((r) => r.status === "fulfilled");
}

async function whoAmI() {
  const me = await api("/access");
  if (me.kind !== "patient" || !Array.isArray(me.patients) || me.patients.length !== 1) {
    const error = new Error("This page shows patients their own readings. Clinicians: the central station is at /app/.");
    error.shown = true;
    throw error;
  }
  return me.patients[0];
}

async function start() {
  $("signout").addEventListener("click", signOut);
  const patient = await whoAmI();
  const all = parts(patient);
  const ok = await run(all, Object.keys(all));
  document.body.dataset.ready = ok ? "true" : "error";
  let pending = null;
  follow(
    `/alerts/stream?patient=${encodeURIComponent(patient)}`,
    () => {
      clearTimeout(pending); // a burst of changes is read once
      pending = setTimeout(() => run(all, ["sensor", "messages", "devices"]), 300);
    },
    (state) => {
      $("state").textContent = state === "live" ? "" : "Reconnecting…";
    },
  );
  setInterval(() => run(all, ["devices", "today"]), REFRESH_MS);
}

try {
  requireSignIn();
  await start();
} catch (problem) {
  if (problem.status !== 401) {
    $("error").textContent = problem.shown ? problem.message : `Vigil could not be reached: ${problem.message}`;
    document.body.dataset.ready = "error";
  }
}
