// Words and numbers as the pages show them.

/** "12 s", "4 min", "3 h", "2 d": how long ago, short enough for a tile. */
export function age(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "never";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86400)} d`;
}

/** "1 h 05 min", "10 min 10 s", "0 s": a length of time to the second, for a report. */
export function duration(seconds) {
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (h > 0) return `${h} h ${String(m).padStart(2, "0")} min`;
  if (m > 0) return `${m} min ${s % 60} s`;
  return `${s} s`;
}

/** A moment by this browser's clock and calendar, with its date: "Mon 24 Nov, 01:00". */
export function dateTime(iso, options = {}) {
  return new Date(iso).toLocaleString([], {
    weekday: "short",
    day: "numeric",
    month: "short",
    hour: "2-digit",
    minute: "2-digit",
    ...options,
  });
}

/** Seconds since an ISO time, by this browser's clock. */
export function secondsSince(iso) {
  return iso ? (Date.now() - Date.parse(iso)) / 1000 : null;
}

/** A value with its unit, or a dash when there is none. */
export function reading(value, unit, digits = 0) {
  return value === null || value === undefined ? "–" : `${Number(value).toFixed(digits)} ${unit}`;
}

/** Put text (never HTML) into an element found by selector under `root`. */
export function setText(root, selector, text) {
  const element = root.querySelector(selector);
  if (element) element.textContent = text;
}

/** A new element with attributes and text; children are appended after. */
export function element(tag, attributes = {}, text = null, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== null && value !== undefined && value !== false) node.setAttribute(name, value);
  }
  if (text !== null) node.textContent = text;
  for (const child of children) node.append(child);
  return node;
}
