// The printable night report (/app/patient?id=P&report=YYYY-MM-DD): the night's time below
// 90 % and 88 %, lowest SpO2, pulse range and alerts. The night and the counting are the
// API's (GET /patients/P/night); the page says both in words, on paper too.
import { api } from "./session.js";
import { dateTime, duration, element, setText } from "./format.js";
import { alertHistory } from "./records.js";

const DAY = /^[0-9]{4}-[0-9]{2}-[0-9]{2}$/;
const ALERTS_READ = 500;

function share(part, whole) {
  return whole > 0 ? ` (${((100 * part) / whole).toFixed(1)} % of the monitored time)` : "";
}

function below(seconds, monitored) {
  return seconds > 0 ? `${duration(seconds)}${share(seconds, monitored)}` : "none";
}

function nightWords(night) {
  const day = { weekday: "short", day: "numeric", month: "short", year: "numeric" };
  const start = new Date(night.start).toLocaleDateString([], day);
  const end = new Date(night.end).toLocaleDateString([], day);
  const hours = (Date.parse(night.end) - Date.parse(night.start)) / 3_600_000;
  return (
    `The night from ${start}, 22:00, to ${end}, 07:00 (${hours} h), ` +
    `in the ${night.tz} time zone (this browser's).`
  );
}

function method(night) {
  return (
    "The night is 22:00 on the day before the report's date to 07:00 on that date, in this " +
    "browser's time zone. Readings come at irregular intervals: each valid reading counts " +
    `for the time until the next one, at most ${night.held_at_most_s} s, so a gap in the data ` +
    "is counted as not monitored, never as time below a threshold. Readings the sensor marked " +
    "invalid are left out. Time below 90 % counts readings under 90 % (89.9 % and lower); " +
    "likewise for 88 %."
  );
}

/** Show the report of the night ending on `day` for `patient` (a FHIR Patient), whom
 * `label` names. */
export async function showReport(patient, label, day) {
  if (!DAY.test(day)) {
    throw new Error("The report's date is not a date: write it as YYYY-MM-DD (for example 2025-11-24).");
  }
  const tz = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  const id = encodeURIComponent(patient.id);
  const [night, alerts] = await Promise.all([
    api(`/patients/${id}/night?date=${day}&tz=${encodeURIComponent(tz)}`),
    api(`/alerts?patient=${id}&state=all&limit=${ALERTS_READ}`),
  ]);
  const [start, end] = [Date.parse(night.start), Date.parse(night.end)];
  const during = alerts.filter((a) => {
    const from = Date.parse(a.onset || a.triggered_at);
    const until = a.cleared_at ? Date.parse(a.cleared_at) : Infinity;
    return from < end && until >= start;
  });
  const alertPart = during.length
    ? await alertHistory(during)
    : element("p", {}, "No alert during the night.");

  const spo2 = night.spo2;
  const pulse = night.pulse_rate;
  const monitored = spo2.monitored_s;
  setText(document, "#report-patient", label);
  setText(document, "#report-night", nightWords(night));
  setText(document, "#below-90", spo2.readings ? below(spo2.below_90_s, monitored) : "no readings");
  setText(document, "#below-88", spo2.readings ? below(spo2.below_88_s, monitored) : "no readings");
  setText(
    document,
    "#lowest",
    spo2.lowest === null ? "no readings" : `${spo2.lowest} % at ${dateTime(spo2.lowest_at, { weekday: undefined, second: "2-digit" })}`,
  );
  setText(document, "#mean", spo2.mean === null ? "no readings" : `${spo2.mean} %`);
  setText(
    document,
    "#pulse-range",
    pulse.readings ? `${pulse.lowest} – ${pulse.highest} /min (mean ${pulse.mean} /min)` : "no readings",
  );
  setText(
    document,
    "#monitored",
    `${duration(monitored)} of the night's ${duration((end - start) / 1000)} ` +
      `(${spo2.readings.toLocaleString()} readings)`,
  );
  document.getElementById("report-alerts").replaceChildren(alertPart);
  setText(document, "#report-method", method(night));
  setText(document, "#report-made", `Made ${dateTime(new Date().toISOString(), { year: "numeric" })} from the readings stored in Vigil.`);
  document.getElementById("print").addEventListener("click", () => window.print());
  document.getElementById("back").setAttribute("href", `/app/patient?id=${id}`);
  document.getElementById("report").hidden = false;
}
