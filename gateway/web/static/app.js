// The pairing page: sign in with the gateway's code, scan, pair, watch each device connect,
// unpair. Device names come from the air (anyone nearby can advertise any name), so text
// from the gateway is only ever set as textContent, never parsed as HTML.

const HEADERS = { "Content-Type": "application/json", "X-Vigil-Pairing": "1" };
const POLL_MS = 2000; // how the page follows a device from "looking for it" to "connected"
const ICONS = { connected: "\u2714", connecting: "\u21bb", searching: "\u2026", disconnected: "\u2716" };
const NO_ANSWER =
  "The gateway does not answer. Check that it is switched on and that this phone is on the home Wi-Fi.";

const $ = (id) => document.getElementById(id);
let poller = null;
let nearby = [];
let patientTyped = false;

class Problem extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function call(method, path, body) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: HEADERS,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
  } catch {
    throw new Problem(0, NO_ANSWER);
  }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Problem(response.status, data.error || "The gateway could not do that. Try again.");
  }
  return data;
}

function say(text) {
  $("problem").hidden = true;
  $("news").textContent = text;
}

function complain(error) {
  if (error instanceof Problem && error.status === 401) {
    signedOut();
    return;
  }
  $("news").textContent = "";
  $("problem").textContent = error instanceof Problem ? error.message : NO_ANSWER;
  $("problem").hidden = false;
}

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function signedOut() {
  clearInterval(poller);
  poller = null;
  for (const id of ["paired", "add"]) $(id).hidden = true;
  $("sign-in").hidden = false;
  $("code").focus();
}

function signedIn() {
  $("sign-in").hidden = true;
  for (const id of ["paired", "add"]) $(id).hidden = false;
  if (poller === null) poller = setInterval(() => refresh().catch(complain), POLL_MS);
}

async function refresh() {
  const state = await call("GET", "/api/state");
  signedIn();
  if (!patientTyped && !$("patient").value) $("patient").value = state.patient;
  showPaired(state.devices);
}

function lastReading(seconds) {
  if (seconds < 5) return "Last reading: just now";
  if (seconds < 120) return `Last reading: ${seconds} seconds ago`;
  return `Last reading: ${Math.round(seconds / 60)} minutes ago`;
}

function showPaired(devices) {
  const list = $("paired-list");
  list.replaceChildren();
  $("none-paired").hidden = devices.length > 0;
  for (const device of devices) {
    const card = element("li", undefined, "card");
    card.dataset.address = device.address;
    card.append(element("h3", device.name), element("p", device.kind_label));
    const status = element("p", undefined, `status state-${device.state}`);
    const icon = element("span", ICONS[device.state] || "?", "icon");
    icon.setAttribute("aria-hidden", "true");
    status.append(icon, element("span", device.state_label));
    card.append(status);
    if (device.battery !== null) card.append(element("p", `Battery: ${device.battery} %`));
    if (device.last_reading_s !== null) card.append(element("p", lastReading(device.last_reading_s)));
    if (device.hint) card.append(element("p", device.hint, "help"));
    const unpair = element("button", "Unpair", "secondary");
    unpair.type = "button";
    unpair.setAttribute("aria-label", `Unpair ${device.name}`);
    unpair.addEventListener("click", () => unpairDevice(device));
    card.append(unpair);
    list.append(card);
  }
}

function showNearby() {
  const list = $("nearby-list");
  list.replaceChildren();
  $("pick").hidden = nearby.length === 0;
  for (const device of nearby) {
    const card = element("li", undefined, "card");
    card.append(element("h3", device.name), element("p", device.kind_label));
    card.append(element("p", `Signal: ${device.signal}`));
    if (device.paired_to) {
      card.append(element("p", `Paired to ${device.paired_to}`, "status"));
    } else {
      const pair = element("button", "Pair");
      pair.type = "button";
      pair.setAttribute("aria-label", `Pair ${device.name}`);
      pair.addEventListener("click", () => pairDevice(device, pair));
      card.append(pair);
    }
    list.append(card);
  }
}

async function scan() {
  const button = $("scan");
  button.disabled = true;
  $("problem").hidden = true;
  $("scan-status").textContent = "Looking for devices. This takes a few seconds\u2026";
  try {
    nearby = (await call("POST", "/api/scan")).nearby;
    $("scan-status").textContent = nearby.length
      ? `Found ${nearby.length} device${nearby.length === 1 ? "" : "s"}. Press Pair next to yours.`
      : "No device found. Put the strap on, or clip the oximeter to a finger, bring it close " +
        "to the gateway and press Scan again.";
    showNearby();
  } catch (error) {
    $("scan-status").textContent = "";
    complain(error);
  } finally {
    button.disabled = false;
  }
}

async function pairDevice(device, button) {
  const patient = $("patient").value.trim();
  if (!patient) {
    complain(new Problem(400, "Type the patient ID first, then press Pair."));
    $("patient").focus();
    return;
  }
  button.disabled = true;
  say(`Pairing ${device.name}\u2026`);
  try {
    await call("POST", "/api/pair", { address: device.address, patient });
    device.paired_to = patient;
    showNearby();
    say(`Paired ${device.name}. The gateway connects to it within about half a minute.`);
    await refresh();
    $("paired-title").focus();
  } catch (error) {
    button.disabled = false;
    complain(error);
  }
}

async function unpairDevice(device) {
  if (!window.confirm(`Unpair ${device.name}? The gateway stops recording its readings.`)) return;
  try {
    await call("POST", "/api/unpair", { address: device.address });
    for (const seen of nearby) if (seen.address === device.address) seen.paired_to = null;
    showNearby();
    say(`Unpaired ${device.name}.`);
    await refresh();
  } catch (error) {
    complain(error);
  }
}

async function signIn(event) {
  event.preventDefault();
  try {
    await call("POST", "/api/session", { code: $("code").value });
    $("code").value = "";
    say("Welcome. You can now pair your devices.");
    await refresh();
    $("scan").focus();
  } catch (error) {
    complain(error);
    $("code").select();
  }
}

$("sign-in-form").addEventListener("submit", signIn);
$("scan").addEventListener("click", scan);
$("patient").addEventListener("input", () => {
  patientTyped = true;
});
refresh().catch(complain);
