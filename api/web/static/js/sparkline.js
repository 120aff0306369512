// Sparklines drawn straight onto a canvas. A chart library's instance per tile (its DOM,
// scales and cursor) would cost more than the rest of the station at 200 tiles; a canvas
// path is drawn in well under a millisecond. SpO2 is the upper lane, pulse the lower, each
// minute's range as a bar and its mean as a line, on fixed scales so that tiles compare at a
// glance across a room.

const LANES = [
  { mean: 1, min: 2, max: 3, low: 80, high: 100, name: "SpO2", unit: "%", guide: 90 },
  { mean: 4, min: 5, max: 6, low: 40, high: 140, name: "pulse", unit: "/min", guide: null },
];

let colours = null;

function palette() {
  if (!colours) {
    const style = getComputedStyle(document.documentElement);
    const read = (name) => style.getPropertyValue(name).trim();
    colours = { ink: read("--ink"), band: read("--line"), guide: read("--muted") };
  }
  return colours;
}

/** Points (`[minute s, SpO2 mean, min, max, pulse mean, min, max]`) over the window ending
 * at `end` (seconds), on `canvas`, `width` x `height` CSS pixels. */
export function draw(canvas, points, end, windowS, width, height) {
  const ratio = window.devicePixelRatio || 1;
  const pixels = [Math.round(width * ratio), Math.round(height * ratio)];
  if (canvas.width !== pixels[0] || canvas.height !== pixels[1]) {
    [canvas.width, canvas.height] = pixels;
  }
  const context = canvas.getContext("2d");
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  context.clearRect(0, 0, width, height);
  const { ink, band, guide } = palette();
  const start = end - windowS;
  const x = (t) => ((t - start) / windowS) * width;
  const step = Math.max(1, (60 / windowS) * width - 1);
  const laneHeight = height / LANES.length;
  LANES.forEach((lane, i) => {
    const values = points.filter((p) => p[lane.mean] !== null);
    const low = Math.min(lane.low, ...values.map((p) => p[lane.min]));
    const high = Math.max(lane.high, ...values.map((p) => p[lane.max]));
    const top = i * laneHeight + 2;
    const span = laneHeight - 4;
    const y = (v) => top + span - ((v - low) / (high - low)) * span;
    if (lane.guide !== null) {
      context.strokeStyle = guide;
      context.setLineDash([2, 3]);
      context.lineWidth = 1;
      context.beginPath();
      context.moveTo(0, y(lane.guide));
      context.lineTo(width, y(lane.guide));
      context.stroke();
      context.setLineDash([]);
    }
    context.fillStyle = band;
    for (const p of values) {
      context.fillRect(x(p[0]), y(p[lane.max]), step, Math.max(1, y(p[lane.min]) - y(p[lane.max])));
    }
    context.strokeStyle = ink;
    context.lineWidth = 1.5;
    context.beginPath();
    let previous = null;
    for (const p of values) {
      const px = x(p[0]) + step / 2;
      if (previous !== null && p[0] - previous === 60) context.lineTo(px, y(p[lane.mean]));
      else context.moveTo(px, y(p[lane.mean]));
      previous = p[0];
    }
    context.stroke();
  });
}

/** The chart in words, for a screen reader. */
export function summary(points, windowS) {
  const minutes = Math.round(windowS / 60);
  const parts = LANES.map((lane) => {
    const values = points.filter((p) => p[lane.mean] !== null);
    if (!values.length) return `no ${lane.name}`;
    const low = Math.min(...values.map((p) => p[lane.min]));
    const high = Math.max(...values.map((p) => p[lane.max]));
    return `${lane.name} ${Math.round(low)} to ${Math.round(high)} ${lane.unit}`;
  });
  return `Last ${minutes} minutes: ${parts.join(", ")}`;
}
