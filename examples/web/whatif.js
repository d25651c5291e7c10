// The what-if panel: a control per feature of the model card, and for the row they make one
// batch request that answers the prediction with its interval and contributions, and the same
// row swept across one feature for the chart.

import { LEVEL, describeProblem, predict } from "./api.js";
import { drawContributions, drawSweep, niceStep } from "./charts.js";
import { element, format, part, percent, plain } from "./dom.js";

const SWEEP_POINTS = 41;
const DEBOUNCE_MS = 200; // a moving slider sends one request once it rests, not one per step

/** Builds the panel's controls for `view.card`, starting from the card's example row. */
export function buildWhatIf(view) {
  const { card } = view;
  Object.assign(view, { timer: 0, sequence: 0, controller: null });
  view.row = { ...(card.example_request?.instances?.[0] || {}) };
  const form = part(view, "controls");
  form.replaceChildren();
  for (const feature of card.features) {
    const seen = card.training_ranges?.[feature.name];
    view.row[feature.name] ??=
      feature.type === "category" ? feature.categories[0] : sliderRange(feature, seen).min;
    const build = feature.type === "category" ? categoryControl : numberControl;
    form.appendChild(build(view, feature, seen, view.row[feature.name]));
  }
  const numbers = card.features.filter((feature) => feature.type !== "category");
  const choice = part(view, "sweep-feature");
  choice.replaceChildren(...numbers.map((f) => element("option", { value: f.name }, f.name)));
  choice.addEventListener("change", () => {
    view.sweepFeature = choice.value;
    schedule(view);
  });
  view.sweepFeature = numbers[0]?.name || null;
  part(view, "sweep").hidden = !view.sweepFeature;
  for (const svg of view.root.querySelectorAll(".whatif svg")) {
    new ResizeObserver(() => redraw(view, svg)).observe(svg);
  }
  schedule(view, 0);
}

/** A slider's span: the training range and a tenth beyond each side, on round steps, within
 * the feature's limits; the model says little past what it was trained on. */
export function sliderRange(feature, seen) {
  const lo = seen?.min ?? feature.minimum ?? 0;
  const hi = seen?.max ?? feature.maximum ?? lo + 100;
  const margin = (hi - lo) * 0.1;
  const step = niceStep(hi - lo + 2 * margin || 1, 100);
  return {
    min: tidy(Math.max(feature.minimum ?? -Infinity, Math.floor((lo - margin) / step) * step)),
    max: tidy(Math.min(feature.maximum ?? Infinity, Math.ceil((hi + margin) / step) * step)),
    step: tidy(step),
  };
}

// 12 significant digits: 16.4, not 16.400000000000002.
const tidy = (value) => Number(value.toPrecision(12));

function controlFrame(view, feature, input, hint) {
  input.id = `${view.root.id}-${feature.name}`;
  const wrap = element("div", { class: "control", dataset: { feature: feature.name } });
  const head = wrap.appendChild(element("div", { class: "control-head" }));
  head.append(element("label", { for: input.id }, feature.name));
  return { wrap, head, hint: element("p", { class: "hint" }, hint) };
}

function numberControl(view, feature, seen, value) {
  const range = sliderRange(feature, seen);
  const slider = element("input", { type: "range", class: "slider", ...range });
  slider.setAttribute("aria-label", `${feature.name} slider`);
  const box = element("input", { type: "number", class: "value", step: "any" });
  if (feature.minimum !== undefined) box.min = feature.minimum;
  if (feature.maximum !== undefined) box.max = feature.maximum;
  slider.value = value;
  box.value = value;
  const seenRange = seen?.min !== undefined;
  const trained = seenRange ? `Trained on ${plain(seen.min)} – ${plain(seen.max)}.` : "";
  const text = [feature.description, trained].filter(Boolean).join(" ");
  const { wrap, head, hint } = controlFrame(view, feature, box, text);
  head.append(box);
  wrap.append(slider, hint);
  if (seenRange) {
    // The track is tinted where the model saw data.
    const at = (v) => `${(100 * (v - range.min)) / (range.max - range.min)}%`;
    slider.style.setProperty("--seen-from", at(seen.min));
    slider.style.setProperty("--seen-to", at(seen.max));
  }
  slider.addEventListener("input", () => {
    box.value = slider.value;
    setValue(view, feature.name, Number(slider.value));
  });
  box.addEventListener("input", () => {
    const typed = box.value.trim() === "" ? NaN : Number(box.value);
    if (Number.isFinite(typed)) slider.value = typed;
    setValue(view, feature.name, Number.isFinite(typed) ? typed : null);
  });
  return wrap;
}

function categoryControl(view, feature, seen, value) {
  const choice = element("select", { class: "choice" });
  for (const category of feature.categories) {
    const label = seen && !seen[category] ? `${category} (not in the training data)` : category;
    choice.append(element("option", { value: category }, label));
  }
  choice.value = value;
  const { wrap, hint } = controlFrame(view, feature, choice, feature.description || "");
  wrap.append(choice, hint);
  choice.addEventListener("change", () => setValue(view, feature.name, choice.value));
  return wrap;
}

function setValue(view, name, value) {
  view.row[name] = value;
  schedule(view);
}

function schedule(view, delay = DEBOUNCE_MS) {
  clearTimeout(view.timer);
  view.root.dataset.whatif = "pending";
  view.timer = setTimeout(() => refresh(view), delay);
}

/** The rows of a sweep: `row` with `feature` stepped evenly across [lo, hi]. */
export function sweepRows(row, feature, [lo, hi], count = SWEEP_POINTS) {
  return Array.from({ length: count }, (_, i) => ({
    ...row,
    [feature]: tidy(lo + ((hi - lo) * i) / (count - 1)),
  }));
}

// The slider's span, stretched to a typed value beyond it but never past the feature's limits:
// a value the function refuses is then the row's fault alone.
function sweepDomain(view) {
  const feature = view.card.features.find((f) => f.name === view.sweepFeature);
  const { min, max } = sliderRange(feature, view.card.training_ranges?.[feature.name]);
  const current = view.row[feature.name];
  return [
    Math.max(feature.minimum ?? -Infinity, Math.min(min, current)),
    Math.min(feature.maximum ?? Infinity, Math.max(max, current)),
  ];
}

function parameters(card) {
  const wanted = {};
  if (card.options?.interval) wanted.interval = LEVEL;
  if (card.options?.explain) wanted.explain = true;
  return wanted;
}

async function refresh(view) {
  const { card } = view;
  const row = { ...view.row };
  const empty = card.features.filter((f) => row[f.name] === null).map((f) => f.name);
  if (empty.length) {
    showError(view, [`${empty.join(", ")}: enter a number`]);
    return;
  }
  const domain = view.sweepFeature ? sweepDomain(view) : null;
  const sweep = domain ? sweepRows(row, view.sweepFeature, domain) : [];
  view.controller?.abort(); // an answer for inputs since moved is not worth waiting for
  const controller = (view.controller = new AbortController());
  const sequence = ++view.sequence;
  let rows;
  try {
    const instances = [row, ...sweep];
    const { signal } = controller;
    ({ rows } = await predict(view.api, card.target.name, instances, parameters(card), signal));
  } catch (error) {
    if (error.name === "AbortError" || sequence !== view.sequence) return;
    // The faults are the row's, whatever the batch around it: say each once, by field.
    const details = error.details || []; // none on a failure that is not the API's answer
    const lines = details.map(({ field, reason }) => describeProblem({ field, reason }));
    showError(view, lines.length ? [...new Set(lines)] : [error.message]);
    return;
  }
  if (sequence !== view.sequence) return;
  showOutcome(view, row, rows[0]);
  if (domain) showSweep(view, row, domain, sweep, rows);
  showContributions(view, row, rows[0]);
  part(view, "whatif-error").replaceChildren();
  view.root.classList.remove("stale");
  view.root.dataset.whatif = "done";
  view.root.dataset.answers = String(Number(view.root.dataset.answers || 0) + 1);
}

function showError(view, lines) {
  view.root.classList.add("stale");
  part(view, "whatif-error").replaceChildren(...lines.map((line) => element("p", {}, line)));
  view.root.dataset.whatif = "failed";
}

function showOutcome(view, row, answer) {
  const value = part(view, "prediction");
  value.textContent = format(answer.value);
  value.dataset.value = answer.value;
  const interval = part(view, "interval");
  const bounded = answer.lower !== undefined && answer.lower !== null;
  interval.dataset.lower = bounded ? answer.lower : "";
  interval.dataset.upper = bounded ? answer.upper : "";
  interval.textContent = bounded
    ? `${percent(LEVEL)} interval ${format(answer.lower)} – ${format(answer.upper)}`
    : answer.withheld
      ? `No ${percent(LEVEL)} interval (${answer.withheld})`
      : "";
  const reliability = part(view, "reliability");
  const outside = answer.outside.map((name) => seenText(view.card, name, row[name]));
  reliability.dataset.outside = answer.outside.join(";");
  reliability.className = `reliability ${outside.length ? "warn" : "ok"}`;
  reliability.textContent = outside.length
    ? `Outside the training range: ${outside.join("; ")}. The model extrapolates here.`
    : "Within the training range";
}

function seenText(card, name, value) {
  const seen = card.training_ranges?.[name] || {};
  if (seen.min === undefined) return `${name} "${value}" (not in the training data)`;
  return `${name} ${plain(value)} (trained on ${plain(seen.min)} – ${plain(seen.max)})`;
}

function showSweep(view, row, domain, sweep, rows) {
  const feature = view.sweepFeature;
  const seen = view.card.training_ranges?.[feature];
  const { [feature]: _, ...fixed } = row;
  const series = {
    feature,
    target: view.card.target.name,
    level: view.card.options?.interval ? LEVEL : null,
    domain,
    training: seen?.min === undefined ? null : { min: seen.min, max: seen.max },
    fixed,
    points: sweep.map((swept, i) => ({
      x: swept[feature],
      prediction: rows[i + 1].value,
      lower: rows[i + 1].lower ?? null,
      upper: rows[i + 1].upper ?? null,
    })),
    current: { x: row[feature], prediction: rows[0].value },
  };
  const figure = part(view, "sweep");
  figure.dataset.series = JSON.stringify(series);
  const others = Object.entries(fixed).map(([name, value]) => `${name} ${plain(value)}`);
  part(view, "sweep-note").textContent = `${others.join(", ")} held fixed`;
  redraw(view, figure.querySelector("svg"));
}

function showContributions(view, row, answer) {
  const figure = part(view, "contributions");
  figure.hidden = !answer.contributions;
  if (!answer.contributions) return;
  let running = answer.baseValue;
  const bars = view.card.features
    .filter((f) => f.name in answer.contributions)
    .map(({ name }) => {
      const value = answer.contributions[name];
      const bar = { feature: name, label: `${name} = ${plain(row[name])}`, value, start: running };
      running += value;
      return { ...bar, end: running };
    });
  const series = { baseValue: answer.baseValue, prediction: answer.value, bars };
  figure.dataset.series = JSON.stringify(series);
  redraw(view, figure.querySelector("svg"));
}

// Charts are drawn from the data on their figure, so a resize draws them again from it.
function redraw(view, svg) {
  const figure = svg.closest("figure");
  if (!figure?.dataset.series || view.root.hidden) return;
  const series = JSON.parse(figure.dataset.series);
  if (figure.dataset.part === "sweep") drawSweep(svg, series, format);
  else drawContributions(svg, series, format);
}
