// A patient's records on their detail page, as tables a clinician scans: the alert
// history with every change and who made it, the devices with whose they were and when,
// and what the patient was told. Text only ever goes in through textContent (element()).
import { api } from "./session.js";
import { dateTime, element } from "./format.js";

const GATEWAY = "gateway.";
/** A gateway's Device id starts so (api/fhir/device.py); a sensor's never does. */
const CHANGES_LOADED = 10;
/** The newest alerts' changes are read at once; an older alert's when asked for (each read
 * is an audited API call, and a month can hold many alerts). */

function empty(text) {
  return element("p", { class: "hint" }, text);
}

/** A table of `rows` (tr elements); each cell is labelled with its column's heading, which
 * a narrow screen shows beside it (css/patient.css). */
function table(caption, headings, rows) {
  for (const row of rows) {
    [...row.children].forEach((td, i) => td.setAttribute("data-label", headings[i]));
  }
  return element(
    "table",
    { class: "records" },
    null,
    element("caption", { class: "visually-hidden" }, caption),
    element("thead", {}, null, element("tr", {}, null, ...headings.map((h) => element("th", { scope: "col" }, h)))),
    element("tbody", {}, null, ...rows),
  );
}

function cell(...children) {
  return element("td", {}, null, ...children.map((c) => (typeof c === "string" ? document.createTextNode(c) : c)));
}

function priority(word) {
  return element("span", { class: `priority ${word}` }, word);
}

function changeList(changes) {
  return element(
    "ol",
    { class: "changes" },
    null,
    ...changes.map((c) =>
      element(
        "li",
        {},
        null,
        element("time", { datetime: c.at }, dateTime(c.at, { second: "2-digit" })),
        document.createTextNode(` ${c.change.replaceAll("_", " ")} by `),
        element("strong", {}, c.actor),
        ...(c.note ? [document.createTextNode(`: ${c.note}`)] : []),
      ),
    ),
  );
}

/** The changes of one alert, in its table cell: now, or behind a button. */
function changesCell(alert, loaded) {
  const place = cell();
  const show = (changes) => place.replaceChildren(changeList(changes));
  if (loaded) {
    show(loaded.changes);
    return place;
  }
  const button = element("button", { type: "button", "aria-label": `Show the changes of alert ${alert.id}` }, "Show changes");
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      show((await api(`/alerts/${alert.id}`)).changes);
    } catch (error) {
      place.replaceChildren(element("span", { class: "error" }, `Could not load: ${error.message}`));
    }
  });
  place.append(button);
  return place;
}

function episode(alert) {
  const from = alert.onset || alert.triggered_at;
  const until = alert.cleared_at ? dateTime(alert.cleared_at) : "still holding";
  return `${dateTime(from)} – ${until}`;
}

/** The alerts (GET /alerts, newest first) with the changes of the newest read now. */
export async function alertHistory(alerts) {
  if (alerts.length === 0) return empty("No alerts for this patient.");
  const details = await Promise.all(
    alerts.slice(0, CHANGES_LOADED).map((a) => api(`/alerts/${a.id}`)),
  );
  const rows = alerts.map((alert, i) =>
    element(
      "tr",
      { "data-alert": String(alert.id) },
      null,
      cell(element("time", { datetime: alert.triggered_at }, dateTime(alert.triggered_at))),
      cell(priority(alert.priority)),
      cell(element("strong", {}, alert.rule.replaceAll("_", " ")), element("br"), alert.description || ""),
      cell(episode(alert)),
      cell(alert.state),
      changesCell(alert, details[i]),
    ),
  );
  return table("Alerts, newest first", ["Raised", "Priority", "Alert", "Episode", "State", "Changes (who, when)"], rows);
}

function periodText(resource) {
  const period = (resource.extension || []).find((e) => e.valuePeriod)?.valuePeriod;
  if (!period) return "";
  return `${dateTime(period.start)} – ${period.end ? dateTime(period.end) : "now"}`;
}

function nameOf(resource) {
  const names = resource.deviceName || [];
  return (names.find((n) => n.type === "user-friendly-name") || names[0] || {}).name || resource.id;
}

function versionItem(resource) {
  const whose = resource.patient ? resource.patient.reference.replace("Patient/", "patient ") : "nobody";
  const on = resource.parent ? `, on ${resource.parent.reference.replace("Device/", "")}` : "";
  return element("li", {}, `${periodText(resource)}: ${whose}${on} (version ${resource.meta.versionId})`);
}

function stateOf(device) {
  const active = device.status === "active";
  if (device.id.startsWith(GATEWAY)) return active ? "online" : "not online";
  return active ? "in use" : "not in use";
}

/** The patient's devices (a FHIR Device search) and each sensor's assignment history. */
export async function deviceTable(bundle) {
  const devices = (bundle.entry || []).map((e) => e.resource);
  if (devices.length === 0) return empty("No devices are assigned to this patient.");
  const sensors = devices.filter((d) => !d.id.startsWith(GATEWAY));
  const histories = await Promise.all(
    sensors.map((d) => api(`/fhir/Device/${encodeURIComponent(d.id)}/_history`)),
  );
  const historyOf = new Map(sensors.map((d, i) => [d.id, histories[i].entry.map((e) => e.resource)]));
  const rows = devices.map((device) => {
    const identifier = (device.identifier || [])[0]?.value || device.id;
    const versions = historyOf.get(device.id);
    const detail = versions
      ? element("ol", { class: "versions" }, null, ...versions.map(versionItem))
      : document.createTextNode((device.note || []).map((n) => n.text).join("; ") || "–");
    return element(
      "tr",
      { "data-device": device.id },
      null,
      cell(element("strong", {}, nameOf(device)), ...(device.modelNumber ? [element("br"), device.modelNumber] : [])),
      cell(element("code", {}, identifier)),
      cell(stateOf(device)),
      cell(detail),
    );
  });
  return table("Devices", ["Device", "Address or id", "State", "Assignment history"], rows);
}

/** What the alerts service told the patient (GET /patients/P/messages), newest first. */
export function toldList(messages) {
  if (messages.length === 0) return empty("Nothing has been sent to the patient.");
  const rows = messages.map((m) =>
    element(
      "tr",
      {},
      null,
      cell(element("time", { datetime: m.told }, dateTime(m.told))),
      cell(m.delivered ? `delivered ${dateTime(m.delivered)}` : "not delivered (yet)"),
      cell(m.text),
      cell(`${m.rule.replaceAll("_", " ")} (alert ${m.alert}, now ${m.alert_state})`),
    ),
  );
  return table("Messages to the patient, newest first", ["Told", "Delivery", "What they were told", "About"], rows);
}
