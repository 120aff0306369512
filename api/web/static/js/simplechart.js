// A chart a patient can read at a glance: the average as one line, the lowest-to-highest
// of each moment as a pale band behind it, no legend, no cursor, no alarm colours.
// uPlot draws it (vendored, MIT); its canvas says nothing to a screen reader, so the
// element gets the summary sentence as its label.
import uPlot from "../vendor/uplot/uPlot.esm.js";

const HEIGHT = 190;

function colour(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

/**
 * uPlot's columns from [t_ms, min, mean, max] points, with a gap (nulls) wherever more
 * than two buckets are missing, so a night without the clip is not drawn as a straight line.
 */
export function columns(points, bucketMs) {
  const data = [[], [], [], []];
  let last = null;
  for (const point of points) {
    if (last !== null && point[0] - last > 2 * bucketMs) {
      data[0].push(last + bucketMs);
      for (let i = 1; i < 4; i += 1) data[i].push(null);
    }
    for (let i = 0; i < 4; i += 1) data[i].push(point[i]);
    last = point[0];
  }
  return data;
}

/**
 * Draw into `target` (replacing what it held). `range`: the fixed [low, high] of the
 * y axis, widened to fit the data (oxygen reads best on a fixed 85-100 % scale);
 * `timeLabel(date)`: how the time axis names a moment, in the browser's own language
 * (uPlot's own labels are English whatever the locale).
 */
export function drawChart(target, { points, bucketS, start, end, unit, range, label, timeLabel }) {
  target.replaceChildren();
  target.setAttribute("role", "img");
  target.setAttribute("aria-label", label);
  const data = columns(points, bucketS * 1000);
  const lows = points.map((p) => p[1]);
  const highs = points.map((p) => p[3]);
  const yMin = Math.floor(Math.min(range[0], ...lows));
  const yMax = Math.ceil(Math.max(range[1], ...highs));
  const ink = colour("--ink");
  const line = colour("--focus");
  const options = {
    width: Math.max(target.clientWidth, 240),
    height: HEIGHT,
    ms: 1,
    legend: { show: false },
    cursor: { show: false },
    scales: { x: { time: true, range: [start.getTime(), end.getTime()] }, y: { range: [yMin, yMax] } },
    axes: [
      {
        stroke: ink,
        grid: { stroke: colour("--line") },
        space: 70,
        values: (u, ticks) => ticks.map((t) => timeLabel(new Date(t))),
      },
      {
        stroke: ink,
        grid: { stroke: colour("--line") },
        size: 56,
        values: (u, ticks) => ticks.map((v) => `${v}${unit}`),
      },
    ],
    series: [
      {},
      { stroke: "transparent", points: { show: false } },
      { stroke: line, width: 2.5, points: { show: false } },
      { stroke: "transparent", points: { show: false } },
    ],
    bands: [{ series: [3, 1], fill: `${line}33` }],
  };
  const chart = new uPlot(options, data, target);
  const resize = () => chart.setSize({ width: Math.max(target.clientWidth, 240), height: HEIGHT });
  window.addEventListener("resize", resize);
  return () => {
    window.removeEventListener("resize", resize);
    chart.destroy();
  };
}
