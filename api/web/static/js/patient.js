// A patient's detail page (/app/patient?id=P): SpO2 and pulse trends over 1 h to 30 d with
// the alert episodes on them, the alert history, the devices and what the patient was
// told; with &report=YYYY-MM-DD, the printable night report instead (js/report.js).
//
// The patient is read first: one outside the clinician's care teams is "not found" by the
// API, and the page then shows that and nothing else.
import { api, requireSignIn, signOut } from "./session.js";
import { element } from "./format.js";
import { alertHistory, deviceTable, toldList } from "./records.js";
import { showReport } from "./report.js";
import { drawTrend, episodesOf } from "./trend.js";

const PATIENT_ID = /^[A-Za-z0-9\-.]{1,64}$/;
const RANGES = ["1h", "24h", "7d", "30d"];
const FIRST_RANGE = "24h";
const ALERTS_READ = 100;
const PARTS = { alerts: "the alert history", devices: "the devices", told: "what the patient was told" };

const $ = (id) => document.getElementById(id);
const charts = {};
let shown = 0;
/** Which range request is the newest: an older answer arriving late is not drawn. */

function label(patient) {
  const name = patient.name?.[0]?.text;
  return name ? `${name} (${patient.id})` : `Patient ${patient.id}`;
}

function teamOf(patient) {
  const team = (patient.extension || []).find((e) => e.valueReference)?.valueReference;
  return team ? `Care team: ${team.display || team.identifier.value}` : "";
}

async function readPatient(id) {
  if (!PATIENT_ID.test(id)) {
    throw new Error("No patient is named in this address. Open a patient from the central station.");
  }
  try {
    return await api(`/fhir/Patient/${id}`);
  } catch (error) {
    if (error.status === 404) {
      throw new Error(
        "Patient not found: nobody of this name is among your care teams' patients. " +
          "Check the address, or open the patient from the central station.",
      );
    }
    throw error;
  }
}

/** Draw both charts over `range`; `alerts` (a promise: the alert list is read once, at the
 * same time as the first trends) gives the episodes to shade. */
async function showRange(patient, range, alerts) {
  const mine = ++shown;
  for (const button of document.querySelectorAll(".ranges button")) {
    button.setAttribute("aria-pressed", String(button.dataset.range === range));
  }
  const figures = [$("spo2-chart"), $("pulse-chart")];
  figures.forEach((f) => f.setAttribute("aria-busy", "true"));
  const base = `/patients/${encodeURIComponent(patient.id)}/trend?range=${range}`;
  const [found, ...trends] = await Promise.all([
    alerts,
    ...figures.map((f) => api(`${base}&metric=${f.dataset.metric}`)),
  ]);
  if (mine !== shown) return;
  history.replaceState(null, "", `?id=${encodeURIComponent(patient.id)}&range=${range}`);
  figures.forEach((figure, i) => {
    charts[figure.id]?.();
    charts[figure.id] = drawTrend(figure, trends[i], episodesOf(found, figure.dataset.metric));
    figure.removeAttribute("aria-busy");
  });
}

/** Range buttons: a click or Enter/Space picks one; the arrow keys move along them. */
function rangeButtons(pick) {
  const buttons = [...document.querySelectorAll(".ranges button")];
  buttons.forEach((button, i) => {
    button.addEventListener("click", () => pick(button.dataset.range));
    button.addEventListener("keydown", (event) => {
      const step = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 }[event.key];
      if (!step) return;
      event.preventDefault();
      const next = buttons[(i + step + buttons.length) % buttons.length];
      next.focus();
      pick(next.dataset.range);
    });
  });
}

function today() {
  const now = new Date();
  const two = (n) => String(n).padStart(2, "0");
  return `${now.getFullYear()}-${two(now.getMonth() + 1)}-${two(now.getDate())}`;
}

/** Put a part of the page in place, or say in it that it could not be read. */
async function part(id, making) {
  try {
    $(id).replaceChildren(await making);
  } catch (error) {
    $(id).replaceChildren(element("p", { class: "error" }, `Could not load ${PARTS[id]}: ${error.message}`));
    throw new Error(`${PARTS[id]}: ${error.message}`);
  }
}

async function showDetail(patient, wanted) {
  const id = encodeURIComponent(patient.id);
  $("name").textContent = label(patient);
  $("team").textContent = teamOf(patient);
  $("night-patient").value = patient.id;
  $("night-date").value = today();
  $("detail").hidden = false;
  const alerts = api(`/alerts?patient=${id}&state=all&limit=${ALERTS_READ}`);
  const range = RANGES.includes(wanted) ? wanted : FIRST_RANGE;
  rangeButtons((picked) =>
    showRange(patient, picked, alerts).catch((error) => {
      $("problem").textContent = `The charts could not be loaded: ${error.message}`;
    }),
  );
  const done = await Promise.allSettled([
    showRange(patient, range, alerts),
    part("alerts", alerts.then(alertHistory)),
    part("devices", api(`/fhir/Device?patient=Patient/${id}`).then(deviceTable)),
    part("told", api(`/patients/${id}/messages`).then((d) => toldList(d.messages))),
  ]);
  const failed = done.filter((d) => d.status === "rejected").map((d) => d.reason.message);
  if (failed.length) throw new Error(`Part of this page could not be loaded: ${failed.join("; ")}.`);
}

async function main() {
  requireSignIn();
  $("signout").addEventListener("click", signOut);
  const params = new URLSearchParams(location.search);
  const patient = await readPatient(params.get("id") || "");
  document.title = `${label(patient)} · Vigil`;
  $("heading").textContent = label(patient);
  const day = params.get("report");
  if (day !== null) {
    document.title = `Night report ${day}, ${label(patient)} · Vigil`;
    await showReport(patient, label(patient), day);
  } else {
    await showDetail(patient, params.get("range"));
  }
  document.body.dataset.ready = "true";
}

main().catch((error) => {
  if (error.status === 401) return; // on the way to sign in
  $("problem").textContent = error.message;
  document.body.dataset.ready = "error";
});
