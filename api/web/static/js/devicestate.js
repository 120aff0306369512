// A patient's devices in plain words, from their own tile of GET /station (a patient's
// compartment is themselves, so the answer holds one tile): connected or not, battery,
// and when the last reading came. Ages are counted on the server's clock (`now`), which a
// phone's may differ from.
import { age, element } from "./format.js";

const NAMES = {
  "pulse-oximeter": "Finger clip (pulse oximeter)",
  "heart-rate-strap": "Chest strap (heart rate)",
};
const LINKS = {
  connected: ["ok", "Connected"],
  connecting: ["off", "Connecting…"],
  searching: ["off", "Not connected: looking for it. Is it switched on and near your home hub?"],
  disconnected: ["off", "Not connected"],
};
/** At or below this (%), the patient is asked to charge it. */
const LOW_BATTERY = 20;

function ago(seconds) {
  return seconds < 60 ? "just now" : `${age(seconds)} ago`;
}

function since(iso, now) {
  return (Date.parse(now) - Date.parse(iso)) / 1000;
}

function link(device) {
  if (device.gateway_state === "offline") {
    return ["off", "Not connected: your home hub is offline. Check that it is plugged in and switched on."];
  }
  return LINKS[device.state] || ["off", "Not known yet"];
}

function battery(level) {
  if (level === null || level === undefined) return ["", "Battery: not known"];
  if (level <= LOW_BATTERY) return ["low", `Battery low: ${level} %. Please charge it.`];
  return ["", `Battery ${level} %`];
}

function deviceItem(device, now) {
  const [linkClass, linkText] = link(device);
  const [batteryClass, batteryText] = battery(device.battery);
  const name = NAMES[device.kind] || "Sensor";
  return element(
    "li",
    { class: "device" },
    null,
    element("h3", {}, name),
    element("p", { class: `link ${linkClass}` }, linkText),
    element("p", { class: `battery ${batteryClass}` }, batteryText),
    element("p", { class: "seen" }, `Last heard from ${ago(since(device.seen, now))}`),
  );
}

/** The list items of the patient's devices, and a sentence on their last reading. */
export function devicesOf(station, patient) {
  const tile = station.tiles.find((t) => t.patient === patient);
  if (!tile) return { items: [], last: "No readings yet." };
  return {
    items: tile.devices.map((d) => deviceItem(d, station.now)),
    last: tile.last ? `Your last reading came ${ago(since(tile.last, station.now))}.` : "No readings yet.",
  };
}
