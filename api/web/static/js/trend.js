// A clinician's trend chart: the mean of each interval as a line, its lowest to highest as
// a band behind it (the one-minute rollup, for a day or more), or the readings themselves
// (the last hour); alert episodes shaded across it with their priority's symbol, SpO2's
// 90 % and 88 % as dashed lines. uPlot draws it (vendored, MIT, no build step); its canvas
// tells a screen reader nothing, so the chart is described by the sentence under it,
// which the figure's attributes also expose to tests (data-source, data-points ...).
import uPlot from "../vendor/uplot/uPlot.esm.js";
import { columns } from "./simplechart.js";
import { dateTime } from "./format.js";

const HEIGHT = 230;
const RAW_STEP_MS = 5000;
/** Raw readings are drawn as a gap when more than twice the usual time between them, and
 * twice this at least, apart: a dropped reading or two is not a gap at an hour's scale. */
const SYMBOL = { high: "▲▲▲", medium: "▲▲", low: "▲", technical: "⏸" };
const SHADE = { high: "--high", medium: "--medium", low: "--low", technical: "--stale" };
const RANGE_WORDS = {
  "1h": "the last hour",
  "24h": "the last 24 hours",
  "7d": "the last 7 days",
  "30d": "the last 30 days",
};
const METRIC = {
  spo2: { name: "SpO₂", unit: " %", floor: [85, 100], lines: [90, 88] },
  pulse_rate: { name: "Pulse rate", unit: " /min", floor: [50, 110], lines: [] },
};
const FAMILY = { spo2: "spo2", pulse_rate: "pulse" };
/** An alert's family (alerts/episodes.py) names the vital sign its episode is about; any
 * other family (a rule of its own kind) concerns both charts. */
const TECHNICAL = new Set(["check_sensor", "no_data"]);
/** analytics' technical rules: the sensor, not the patient. */

function colour(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

/**
 * The alert episodes to shade on the chart of `metric`: the alerts of its vital sign, and
 * those of no vital sign (a sensor to check, no data, novelty). An episode runs from its
 * onset until its condition cleared (or, open, until now).
 */
export function episodesOf(alerts, metric, now = Date.now()) {
  const vital = Object.values(FAMILY);
  return alerts
    .filter((a) => a.family === FAMILY[metric] || !vital.includes(a.family))
    .map((a) => ({
      start: Date.parse(a.onset || a.triggered_at),
      end: a.cleared_at ? Date.parse(a.cleared_at) : a.state === "resolved" ? Date.parse(a.updated) : now,
      kind: TECHNICAL.has(a.rule) ? "technical" : a.priority,
      priority: a.priority,
      rule: a.rule,
    }));
}

/** The usual time between points (the median), never less than `least`: a sensor that
 * reports once a minute is drawn as a line, not as a gap after every reading. */
function usualStep(points, least) {
  const steps = points.slice(1).map((p, i) => p[0] - points[i][0]).sort((a, b) => a - b);
  return Math.max(least, steps.length ? steps[Math.floor(steps.length / 2)] : 0);
}

function shadeEpisodes(u, episodes) {
  const { ctx } = u;
  const [top, height] = [u.bbox.top, u.bbox.height];
  ctx.save();
  ctx.font = `${Math.round(12 * devicePixelRatio)}px system-ui, sans-serif`;
  for (const episode of episodes) {
    const left = Math.max(u.valToPos(episode.start, "x", true), u.bbox.left);
    const right = Math.min(u.valToPos(episode.end, "x", true), u.bbox.left + u.bbox.width);
    if (right <= left) continue;
    const shade = colour(SHADE[episode.kind]);
    ctx.globalAlpha = 0.18;
    ctx.fillStyle = shade;
    ctx.fillRect(left, top, Math.max(right - left, 2 * devicePixelRatio), height);
    ctx.globalAlpha = 1;
    const symbol = SYMBOL[episode.kind];
    const room = u.bbox.left + u.bbox.width - ctx.measureText(symbol).width;
    ctx.fillText(symbol, Math.min(left + 2 * devicePixelRatio, room), top + 14 * devicePixelRatio);
  }
  ctx.restore();
}

function thresholdLines(u, values) {
  const { ctx } = u;
  ctx.save();
  ctx.setLineDash([6 * devicePixelRatio, 4 * devicePixelRatio]);
  ctx.strokeStyle = colour("--muted");
  ctx.lineWidth = devicePixelRatio;
  for (const value of values) {
    const y = u.valToPos(value, "y", true);
    if (y < u.bbox.top || y > u.bbox.top + u.bbox.height) continue;
    ctx.beginPath();
    ctx.moveTo(u.bbox.left, y);
    ctx.lineTo(u.bbox.left + u.bbox.width, y);
    ctx.stroke();
  }
  ctx.restore();
}

/** The sentence a screen reader hears, and everyone reads, under the chart. */
export function describe(trend, episodes) {
  const { name, unit } = METRIC[trend.metric];
  const words = RANGE_WORDS[trend.range];
  const s = trend.summary;
  if (!s.readings) return `${name}, ${words}: no readings.`;
  const from =
    trend.source === "rollup"
      ? `from the one-minute rollup, in ${trend.bucket_s / 60}-minute intervals`
      : "from the readings themselves";
  const shaded = episodes.filter((e) => e.end >= Date.parse(trend.start));
  const told = shaded.slice(0, 5).map(
    (e) => `${e.priority} ${e.rule.replaceAll("_", " ")} from ${dateTime(new Date(e.start))}`,
  );
  const more = shaded.length > 5 ? `, and ${shaded.length - 5} more` : "";
  const alerts = shaded.length
    ? ` ${shaded.length} alert episode${shaded.length === 1 ? "" : "s"} shaded: ${told.join("; ")}${more}.`
    : " No alert episode.";
  return (
    `${name}, ${words}, ${from}: lowest ${s.lowest}${unit}, highest ${s.highest}${unit}, ` +
    `mean ${s.mean}${unit} over ${s.readings.toLocaleString()} readings.${alerts}`
  );
}

/**
 * Draw `trend` (GET /patients/P/trend) in `figure`, replacing what it showed; returns the
 * function that takes the chart down.
 */
export function drawTrend(figure, trend, episodes) {
  const plot = figure.querySelector(".plot");
  const metric = METRIC[trend.metric];
  const band = trend.source === "rollup";
  const sentence = describe(trend, episodes);
  figure.querySelector(".summary").textContent = sentence;
  plot.setAttribute("aria-label", `${metric.name} chart, ${RANGE_WORDS[trend.range]}`);
  Object.assign(figure.dataset, {
    range: trend.range,
    source: trend.source,
    bucket: String(trend.bucket_s),
    points: String(trend.points.length),
    band: String(band),
  });
  plot.replaceChildren();
  const least = band ? trend.bucket_s * 1000 : RAW_STEP_MS;
  const data = columns(trend.points, usualStep(trend.points, least));
  const lows = trend.points.map((p) => p[1]);
  const highs = trend.points.map((p) => p[3]);
  const yRange = [
    Math.floor(Math.min(metric.floor[0], ...lows) - 1),
    Math.ceil(Math.max(metric.floor[1], ...highs) + 1),
  ];
  const [ink, grid, line] = [colour("--ink"), colour("--line"), colour("--focus")];
  const value = (u, v) => (v == null ? "–" : `${v}${metric.unit}`);
  const edge = { stroke: `${line}66`, width: 1, points: { show: false }, value };
  // Raw readings keep uPlot's own points, shown where they are sparse enough to see.
  const mean = { label: band ? "mean" : "reading", stroke: line, width: 2, value, ...(band ? { points: { show: false } } : {}) };
  const options = {
    width: Math.max(plot.clientWidth, 280),
    height: HEIGHT,
    ms: 1,
    scales: {
      x: { time: true, range: [Date.parse(trend.start), Date.parse(trend.end)] },
      y: { range: yRange },
    },
    axes: [
      { stroke: ink, grid: { stroke: grid } },
      { stroke: ink, grid: { stroke: grid }, size: 76, values: (u, ticks) => ticks.map((v) => `${v}${metric.unit}`) },
    ],
    series: band ? [{}, { ...edge, label: "lowest" }, mean, { ...edge, label: "highest" }] : [{}, mean],
    bands: band ? [{ series: [3, 1], fill: `${line}33` }] : [],
    hooks: {
      drawClear: [(u) => shadeEpisodes(u, episodes)],
      draw: [(u) => thresholdLines(u, metric.lines)],
    },
  };
  const chart = new uPlot(options, band ? data : [data[0], data[2]], plot);
  const resize = new ResizeObserver(() => chart.setSize({ width: Math.max(plot.clientWidth, 280), height: HEIGHT }));
  resize.observe(plot);
  return () => {
    resize.disconnect();
    chart.destroy();
  };
}
