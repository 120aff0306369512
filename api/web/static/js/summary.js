// Plain words for a patient about their own readings: "Your oxygen last night: mostly
// between 94 and 97 %. Lowest 91 % at 03:12."
//
// Trend points are the API's [t_ms, min, mean, max] per bucket (GET /patients/P/trend).
// Every bucket of a trend is the same length of time, so "mostly between" is the range
// the middle 80 % of the buckets' means fall in: a short dip or a moving hand does not
// widen it, and the lowest reading is said on its own, with its time.

/** The night is 22:00 to 07:00 in the browser's time zone, as the clinicians' report says. */
const NIGHT_STARTS = 22;
const NIGHT_ENDS = 7;

const MOSTLY = [0.1, 0.9];

export const METRICS = {
  spo2: { name: "oxygen", unit: " %" },
  pulse_rate: { name: "pulse", unit: " beats a minute" },
};

/** The points whose bucket starts in [start, end). */
export function within(points, start, end) {
  return points.filter(([t]) => t >= start.getTime() && t < end.getTime());
}

/** The night begun most recently (it may be going on now), as two Dates. */
export function lastNight(now = new Date()) {
  const start = new Date(now);
  start.setHours(NIGHT_STARTS, 0, 0, 0);
  if (start > now) start.setDate(start.getDate() - 1);
  const end = new Date(start);
  end.setDate(end.getDate() + 1);
  end.setHours(NIGHT_ENDS, 0, 0, 0);
  return { start, end, over: end <= now };
}

function quantile(sorted, q) {
  const at = (sorted.length - 1) * q;
  const below = Math.floor(at);
  const above = Math.min(below + 1, sorted.length - 1);
  return sorted[below] + (sorted[above] - sorted[below]) * (at - below);
}

/** The range most of the time was in (whole numbers), or null without readings. */
export function usualRange(points) {
  if (points.length === 0) return null;
  const means = points.map((p) => p[2]).sort((a, b) => a - b);
  return { low: Math.round(quantile(means, MOSTLY[0])), high: Math.round(quantile(means, MOSTLY[1])) };
}

/** The lowest (or, with `highest`, the highest) reading and the time of its bucket. */
export function extreme(points, highest = false) {
  let found = null;
  for (const [t, low, , high] of points) {
    const value = highest ? high : low;
    if (found === null || (highest ? value > found.value : value < found.value)) {
      found = { value: Math.round(value), at: new Date(t) };
    }
  }
  return found;
}

function clock(date) {
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

/**
 * "at 03:12" today, "yesterday at 03:12", "on Tuesday at 03:12" this week; a week ago or
 * more, the date too, since a week holds two of today's weekday.
 */
export function when(date, now = new Date()) {
  const day = new Date(now);
  day.setHours(0, 0, 0, 0);
  const days = Math.round((day - new Date(date).setHours(0, 0, 0, 0)) / 86_400_000);
  if (days === 0) return `at ${clock(date)}`;
  if (days === 1) return `yesterday at ${clock(date)}`;
  const named = days < 7 ? { weekday: "long" } : { weekday: "long", day: "numeric", month: "long" };
  return `on ${date.toLocaleDateString([], named)} at ${clock(date)}`;
}

/**
 * One or two sentences about a metric over a period: `period` says which ("last night",
 * "in the last 24 hours", "this week"). Oxygen names its lowest; pulse its lowest and
 * highest, since either way can matter.
 */
export function describe(metric, points, period, now = new Date()) {
  const { name, unit } = METRICS[metric];
  const range = usualRange(points);
  if (range === null) return `No ${name} readings ${period}.`;
  const usual =
    range.low === range.high
      ? `mostly ${range.low}${unit}`
      : `mostly between ${range.low} and ${range.high}${unit}`;
  const low = extreme(points);
  const said = [`Your ${name} ${period}: ${usual}.`, `Lowest ${low.value}${unit} ${when(low.at, now)}.`];
  if (metric === "pulse_rate") {
    const high = extreme(points, true);
    said.push(`Highest ${high.value}${unit} ${when(high.at, now)}.`);
  }
  return said.join(" ");
}
