// Two charts drawn as inline SVG from plain data: a prediction swept across one feature with its
// interval band, and a row's per-feature contributions as a waterfall from the base value.
// Each draw empties the <svg> and draws it again at the width it has on the page, so text stays
// its size on a phone.

const NS = "http://www.w3.org/2000/svg";
let patterns = 0; // ids for each chart's hatch pattern, unique on the page

function svg(name, attributes = {}, parent = null, text = null) {
  const node = document.createElementNS(NS, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (text !== null) node.textContent = text;
  if (parent) parent.appendChild(node);
  return node;
}

function scale([d0, d1], [r0, r1]) {
  const k = d1 === d0 ? 0 : (r1 - r0) / (d1 - d0);
  return (value) => r0 + (value - d0) * k;
}

/** The round step (1, 2 or 5 times a power of ten) nearest to cutting `span` in `count`. */
export function niceStep(span, count) {
  const raw = span / Math.max(count, 1);
  const power = 10 ** Math.floor(Math.log10(raw));
  const ratio = raw / power;
  // Split at the geometric midpoints between 1, 2, 5 and 10.
  if (ratio >= Math.sqrt(50)) return 10 * power;
  if (ratio >= Math.sqrt(10)) return 5 * power;
  return (ratio >= Math.SQRT2 ? 2 : 1) * power;
}

function ticks(lo, hi, count) {
  const step = niceStep(hi - lo || 1, count);
  const values = [];
  for (let i = Math.ceil(lo / step); i * step <= hi + step * 1e-9; i++) values.push(i * step);
  return { values, label: tickLabel(step, Math.max(Math.abs(lo), Math.abs(hi))) };
}

// Labels as precise as the step and no more: 1,050 and 1,100, not 1.1K twice.
function tickLabel(step, largest) {
  const unit = largest >= 1e6 ? 1e6 : largest >= 1e4 ? 1e3 : 1;
  const digits = Math.max(0, Math.ceil(-Math.log10(step / unit) - 1e-9));
  const options = { minimumFractionDigits: digits, maximumFractionDigits: digits };
  if (unit > 1) options.notation = "compact";
  const formatter = new Intl.NumberFormat("en-US", options);
  return (value) => formatter.format(value);
}

// The span of the values a chart shows, widened so that no mark sits on the frame.
function extent(values, margin) {
  const shown = values.filter(Number.isFinite);
  let [lo, hi] = [Math.min(...shown), Math.max(...shown)];
  if (lo === hi) [lo, hi] = [lo - 1, hi + 1];
  const pad = (hi - lo) * margin;
  return [lo - pad, hi + pad];
}

const hasBand = (point) => point.lower !== null && point.upper !== null;

// Consecutive points with a band: a withheld bound (null) breaks the band, never drops it to 0.
function runs(points) {
  const out = [[]];
  for (const point of points) {
    if (hasBand(point)) out[out.length - 1].push(point);
    else if (out[out.length - 1].length) out.push([]);
  }
  return out.filter((run) => run.length);
}

function frame(node, height) {
  node.replaceChildren();
  const width = Math.max(node.clientWidth, 280);
  node.setAttribute("viewBox", `0 0 ${width} ${height(width)}`);
  node.setAttribute("height", height(width));
  return [width, height(width)];
}

/**
 * The prediction against one feature, the others fixed. `series`:
 * { feature, domain: [lo, hi], training: { min, max } | null,
 *   points: [{ x, prediction, lower, upper }], current: { x, prediction } }
 */
export function drawSweep(node, series, format) {
  const [width, height] = frame(node, (w) => Math.round(Math.min(320, Math.max(220, w * 0.42))));
  const plot = { top: 16, right: width - 16, bottom: height - 44, left: 56 };
  const { points, current } = series;
  const values = points.flatMap((p) => [p.prediction, p.lower, p.upper]);
  const [y0, y1] = extent([...values, current.prediction], 0.08);
  const x = scale(series.domain, [plot.left, plot.right]);
  const y = scale([y0, y1], [plot.bottom, plot.top]);

  if (series.training) outsideTraining(node, series, x, plot);
  const grid = svg("g", { class: "grid" }, node);
  const yTicks = ticks(y0, y1, Math.max(3, Math.floor(height / 50)));
  for (const value of yTicks.values) {
    svg("line", { x1: plot.left, x2: plot.right, y1: y(value), y2: y(value) }, grid);
    svg("text", { x: plot.left - 8, y: y(value), class: "tick y" }, grid, yTicks.label(value));
  }
  const xTicks = ticks(...series.domain, Math.max(2, Math.floor(width / 90)));
  for (const value of xTicks.values) {
    const at = { x: x(value), y: plot.bottom + 18, class: "tick x" };
    svg("text", at, grid, xTicks.label(value));
  }
  const axis = { x1: plot.left, x2: plot.right, y1: plot.bottom, y2: plot.bottom, class: "axis" };
  svg("line", axis, node);
  const title = { x: (plot.left + plot.right) / 2, y: height - 4, class: "axis-title" };
  svg("text", title, node, series.feature);

  for (const run of runs(points)) {
    const upper = run.map((p) => `${x(p.x)},${y(p.upper)}`);
    const lower = run.map((p) => `${x(p.x)},${y(p.lower)}`).reverse();
    svg("path", { d: `M${upper.join("L")}L${lower.join("L")}Z`, class: "band" }, node);
  }
  const line = points.map((p) => `${x(p.x)},${y(p.prediction)}`).join("L");
  svg("path", { d: `M${line}`, class: "line" }, node);
  const at = x(current.x);
  svg("line", { x1: at, x2: at, y1: plot.top, y2: plot.bottom, class: "marker-rule" }, node);
  svg("circle", { cx: at, cy: y(current.prediction), r: 5, class: "marker" }, node);
  readout(node, series, { x, y, plot }, format);
}

// Hatched where the swept feature leaves what the model was trained on.
function outsideTraining(node, series, x, plot) {
  const id = `hatch-${++patterns}`;
  const defs = svg("defs", {}, node);
  const pattern = svg("pattern", { id, width: 6, height: 6, patternUnits: "userSpaceOnUse" }, defs);
  pattern.setAttribute("patternTransform", "rotate(45)");
  svg("rect", { width: 6, height: 6, class: "hatch-ground" }, pattern);
  svg("line", { x1: 0, y1: 0, x2: 0, y2: 6, class: "hatch-line" }, pattern);
  const [lo, hi] = series.domain;
  const clamp = (v) => Math.max(lo, Math.min(hi, v));
  const sides = [
    [lo, clamp(series.training.min)],
    [clamp(series.training.max), hi],
  ];
  for (const [a, b] of sides.filter(([a, b]) => b > a)) {
    const box = { x: x(a), y: plot.top, width: x(b) - x(a), height: plot.bottom - plot.top };
    const area = svg("rect", { ...box, fill: `url(#${id})`, class: "outside-range" }, node);
    svg("title", {}, area, "outside the training range");
  }
}

// On hover, the nearest swept point's value and interval.
function readout(node, series, { x, y, plot }, format) {
  const group = svg("g", { class: "readout", visibility: "hidden" }, node);
  const dot = svg("circle", { r: 4 }, group);
  const label = svg("text", { y: plot.top + 12 }, group);
  node.onpointerleave = () => group.setAttribute("visibility", "hidden");
  node.onpointermove = (event) => {
    const box = node.getBoundingClientRect();
    const px = ((event.clientX - box.left) / box.width) * node.viewBox.baseVal.width;
    const distance = (p) => Math.abs(x(p.x) - px);
    const near = series.points.reduce((a, b) => (distance(b) < distance(a) ? b : a));
    dot.setAttribute("cx", x(near.x));
    dot.setAttribute("cy", y(near.prediction));
    const band = hasBand(near) ? ` (${format(near.lower)} – ${format(near.upper)})` : "";
    label.textContent = `${series.feature} ${format(near.x)}: ${format(near.prediction)}${band}`;
    const onRight = x(near.x) > (plot.left + plot.right) / 2;
    label.setAttribute("x", x(near.x) + (onRight ? -8 : 8));
    label.setAttribute("text-anchor", onRight ? "end" : "start");
    group.setAttribute("visibility", "visible");
  };
}

const ROW = 30; // a waterfall row's height

/**
 * A waterfall from the base value (the model's average answer) to the prediction. `series`:
 * { baseValue, prediction, bars: [{ feature, label, value, start, end }] }
 */
export function drawContributions(node, series, format) {
  const rows = series.bars.length + 2; // the base value, a row per feature, the prediction
  const [width, height] = frame(node, () => 8 + rows * ROW + 26);
  const left = Math.min(170, width * 0.34); // row labels sit left of it
  const ends = series.bars.flatMap((bar) => [bar.start, bar.end]);
  const [lo, hi] = extent([series.baseValue, series.prediction, ...ends], 0.06);
  const x = scale([lo, hi], [left, width - 72]);
  const top = (i) => 8 + i * ROW;
  const middle = (i) => top(i) + ROW / 2;
  const bottom = top(rows);

  const grid = svg("g", { class: "grid" }, node);
  const xTicks = ticks(lo, hi, Math.max(2, Math.floor((width - left) / 90)));
  for (const value of xTicks.values) {
    svg("line", { x1: x(value), x2: x(value), y1: top(0), y2: bottom }, grid);
    svg("text", { x: x(value), y: bottom + 16, class: "tick x" }, grid, xTicks.label(value));
  }
  const base = x(series.baseValue);
  svg("line", { x1: base, x2: base, y1: top(0), y2: bottom, class: "base-rule" }, node);

  const label = (i, text, kind = "") =>
    svg("text", { x: left - 10, y: middle(i), class: `row-label ${kind}` }, node, text);
  const value = (i, at, text, kind = "") =>
    svg("text", { x: at + 6, y: middle(i), class: `row-value ${kind}` }, node, text);

  label(0, "base value", "muted");
  svg("circle", { cx: base, cy: middle(0), r: 4, class: "base-dot" }, node);
  value(0, base, format(series.baseValue), "muted");
  series.bars.forEach((bar, index) => {
    const i = index + 1;
    const [from, to] = [x(Math.min(bar.start, bar.end)), x(Math.max(bar.start, bar.end))];
    const sign = bar.value < 0 ? "negative" : "positive";
    label(i, bar.label);
    const box = { x: from, y: top(i) + 6, width: Math.max(to - from, 1.5), height: ROW - 12 };
    const rect = svg("rect", { ...box, rx: 3, class: `bar ${sign}` }, node);
    rect.dataset.feature = bar.feature; // the data behind the bar, for a reader of the page
    rect.dataset.value = bar.value;
    svg("title", {}, rect, `${bar.feature}: ${signed(bar.value, format)}`);
    const link = { x1: x(bar.end), x2: x(bar.end), y1: top(i) + ROW - 6, y2: top(i + 1) + 6 };
    svg("line", { ...link, class: "connector" }, node);
    value(i, to, signed(bar.value, format), sign);
  });
  const last = rows - 1;
  label(last, "prediction", "strong");
  svg("circle", { cx: x(series.prediction), cy: middle(last), r: 5, class: "marker" }, node);
  value(last, x(series.prediction), format(series.prediction), "strong");
}

function signed(value, format) {
  return value < 0 ? `−${format(-value)}` : `+${format(value)}`;
}
