// The central station: one tile per patient of the signed-in clinician's care teams, the
// patient who needs someone first. The tiles come from GET /station, then live from
// /station/stream (what changed every two seconds, an alert change at once); the page
// keeps them in the server's order and announces unanswered high-priority alerts.
import { api, follow, requireSignIn, signOut } from "./session.js";
import { element } from "./format.js";
import { draw } from "./sparkline.js";
import { Tile, compareTiles } from "./tiles.js";
import { Alarm } from "./alarm.js";

const SNOOZE_MS = 15 * 60 * 1000;
const DONE = {
  acknowledge: "Acknowledged by you",
  snooze: "Snoozed for 15 minutes",
  resolve: "Resolved by you",
};
const COUNTED = [
  ["high", "high"],
  ["medium", "medium"],
  ["low", "low"],
  ["stale", "no recent data"],
  ["ok", "without alerts"],
];

requireSignIn();

const grid = document.getElementById("tiles");
const tiles = new Map();
const clock = {
  offset: 0,
  /** The server's time now, in ms: ages are counted by its clock, not this screen's. */
  now() {
    return Date.now() - this.offset;
  },
};
let frame = null;

/** Sparklines are drawn for the tiles on the screen (and about to be): with 200 tiles,
 * most are out of view on any screen, and are drawn when they scroll in. Each is described
 * in words at once, for a screen reader. */
const onScreen = new Set();
const watcher = new IntersectionObserver(
  (entries) => {
    for (const entry of entries) {
      const tile = tiles.get(entry.target.dataset.patient);
      if (!tile) continue;
      if (entry.isIntersecting) onScreen.add(tile);
      else onScreen.delete(tile);
    }
    drawSparks();
  },
  { rootMargin: "200px" },
);
/** Every sparkline has the size of the grid's columns: measured when the grid changes
 * size (after layout, so reading it costs nothing), never while drawing. */
const sparkSize = { width: 0, height: 0 };
new ResizeObserver(() => {
  const canvas = grid.querySelector("canvas.spark");
  if (!canvas) return;
  const [width, height] = [canvas.clientWidth, canvas.clientHeight];
  if (width === sparkSize.width && height === sparkSize.height) return;
  Object.assign(sparkSize, { width, height });
  for (const tile of tiles.values()) tile.sparkDirty = true;
  drawSparks();
}).observe(grid);

const alarm = new Alarm(
  document.getElementById("banner"),
  document.getElementById("mute"),
  document.getElementById("enable-sound"),
  (patient) => {
    const tile = tiles.get(patient);
    if (!tile) return;
    tile.root.scrollIntoView({ block: "center" });
    (tile.root.querySelector("button:not([hidden])") || tile.link).focus();
  },
);

async function act(tile, alert, action, button) {
  const body =
    action === "snooze" ? { until: new Date(clock.now() + SNOOZE_MS).toISOString() } : {};
  button.disabled = true;
  tile.outcome(alert.id, "Sending…");
  try {
    await api(`/alerts/${alert.id}/${action}`, { method: "POST", body });
    tile.outcome(alert.id, DONE[action]);
  } catch (problem) {
    tile.outcome(alert.id, `Not done: ${problem.message}`, true);
  } finally {
    button.disabled = false;
  }
}

/** Take an answer of /station or an event of the stream. */
function apply(document_) {
  frame = document_;
  clock.offset = Date.now() - Date.parse(document_.now);
  for (const data of document_.tiles) {
    let tile = tiles.get(data.patient);
    if (!tile) {
      tile = new Tile(data.patient, act);
      tiles.set(data.patient, tile);
      watcher.observe(tile.root);
    }
    tile.update(data, document_);
    tile.tick(clock.now(), document_.stale_after_s);
    tile.describeSpark(tile.sparkPoints(clock.now()));
  }
  for (const patient of document_.gone || []) {
    const tile = tiles.get(patient);
    if (!tile) continue;
    watcher.unobserve(tile.root);
    onScreen.delete(tile);
    tile.root.remove();
    tiles.delete(patient);
  }
  arrange();
  drawSparks();
  const shownAt = Date.now();
  for (const data of document_.tiles) tiles.get(data.patient).markShown(shownAt);
  summarize();
  alarm.review(
    [...tiles.values()].flatMap((tile) =>
      tile.data.alerts
        .filter((a) => a.priority === "high" && a.calling)
        .map((alert) => ({ patient: tile.patient, name: tile.data.name, alert })),
    ),
  );
}

/** Put the tiles in the server's order, moving only those out of place; a moved tile
 * keeps the keyboard's focus. */
function arrange() {
  const focused = document.activeElement;
  const order = [...tiles.values()].sort(compareTiles);
  let node = grid.firstElementChild;
  for (const tile of order) {
    if (tile.root === node) node = node.nextElementSibling;
    else grid.insertBefore(tile.root, node);
  }
  if (focused && focused !== document.activeElement && grid.contains(focused)) {
    focused.focus({ preventScroll: true });
  }
  document.getElementById("empty").hidden = tiles.size > 0;
}

function drawSparks() {
  if (!frame || !sparkSize.width) return;
  for (const tile of onScreen) {
    if (!tile.sparkDirty) continue;
    const points = tile.sparkPoints(clock.now());
    const { width, height } = sparkSize;
    draw(tile.canvas, points, clock.now() / 1000, frame.window_s, width, height);
    tile.sparkDirty = false;
  }
  if (onScreen.size) ready();
}

/** The first data is drawn, sparklines included (tests and `vigil bench web` wait for it). */
function ready() {
  if (!document.body.dataset.ready) document.body.dataset.ready = "true";
}

function summarize() {
  const counts = {};
  for (const tile of tiles.values()) {
    counts[tile.data.attention] = (counts[tile.data.attention] || 0) + 1;
  }
  const parts = COUNTED.filter(([key]) => counts[key]).map(
    ([key, words]) => `${counts[key]} ${words}`,
  );
  const total = `${tiles.size} patient${tiles.size === 1 ? "" : "s"}`;
  const text = parts.length ? `${total}: ${parts.join(", ")}` : total;
  const heading = document.getElementById("summary");
  if (heading.textContent !== text) heading.textContent = text;
}

function showHidden(hidden) {
  const box = document.getElementById("hidden-patients");
  box.hidden = hidden.length === 0;
  if (!hidden.length) return;
  const n = hidden.length;
  box.querySelector("summary").textContent =
    `${n} patient${n === 1 ? "" : "s"} hidden by their own decision`;
  box.querySelector("ul").replaceChildren(
    ...hidden.map((h) => element("li", {}, `${h.patient}: ${h.why}`)),
  );
}

function onState(state) {
  const status = document.getElementById("state");
  status.className = `state ${state}`;
  status.textContent = state === "live" ? "Live" : "Reconnecting: the tiles may be behind";
}

function fail(problem) {
  const error = document.getElementById("error");
  error.hidden = false;
  error.textContent =
    problem.status === 403
      ? `Your sign-in does not allow the central station (${problem.message}).` +
        " Ask your administrator for a clinician's token."
      : `The central station could not load its patients: ${problem.message}.` +
        " Reload the page; if this goes on, ask your administrator to check that the" +
        " Vigil API is running.";
  document.body.dataset.ready = "error";
}

async function start() {
  const [me, station] = await Promise.all([api("/access"), api("/station")]);
  if (me.kind === "patient") {
    location.replace("/app/mine");
    return;
  }
  document.getElementById("who").textContent = `Signed in as ${me.name}`;
  showHidden(me.hidden);
  apply(station);
  if (!tiles.size) ready();
  follow("/station/stream", (event) => {
    if (event.event === "tiles") apply(JSON.parse(event.data));
  }, onState);
  setInterval(() => {
    for (const tile of tiles.values()) tile.tick(clock.now(), frame.stale_after_s);
  }, 1000);
}

document.getElementById("sign-out").addEventListener("click", signOut);
start().catch(fail);
