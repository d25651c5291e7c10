// The model card's facts in the side panel: which version answers, what it was trained on, how
// good it is on rows it never saw, and what it is for.

import { LEVEL } from "./api.js";
import { element, format, percent } from "./dom.js";

const r2 = new Intl.NumberFormat("en-US", {
  minimumFractionDigits: 3,
  maximumFractionDigits: 3,
  signDisplay: "negative", // a baseline's -0.0002 is 0.000, not -0.000
});
const METRICS = { r2: "R²", mae: "MAE", rmse: "RMSE", mape: "MAPE" };

/** Fills `aside` (the view's facts panel) from `card`. */
export function buildFacts(aside, card) {
  const target = card.target.description
    ? `${card.target.name} — ${card.target.description}`
    : card.target.name;
  const facts = [
    ["version", "Version", card.version],
    ["created", "Published", (card.created || "").slice(0, 10)],
    ["estimator", "Estimator", card.estimator],
    ["target", "Predicts", target],
    ["trained-on", "Trained on", trainedOn(card.use?.data, card.training || {})],
    ["intervals", "Intervals", intervals(card)],
  ].filter(([, , text]) => text);
  const list = element("dl");
  for (const [key, label, text] of facts) {
    list.append(element("dt", {}, label), element("dd", { dataset: { fact: key } }, text));
  }
  aside.querySelector("[data-part=fact-list]").replaceChildren(list);
  aside.querySelector("[data-part=metrics]").replaceChildren(...metricTables(card.metrics || {}));
  const use = [
    ["Intended use", card.use?.intended],
    ["Out of scope", card.use?.out_of_scope],
  ].filter(([, text]) => text);
  const paragraphs = ([label, text]) => [element("h4", {}, label), element("p", {}, text)];
  aside.querySelector("[data-part=use]").replaceChildren(...use.flatMap(paragraphs));
}

function trainedOn(data, training) {
  const rows = [
    [training.rows_fit, "rows fit"],
    [training.rows_calibration, "for intervals"],
    [training.rows_held_out, "held out"],
  ]
    .filter(([n]) => n)
    .map(([n, what]) => `${n.toLocaleString("en-US")} ${what}`);
  const split = training.split ? ` (${training.split} split)` : "";
  const { periods } = training;
  const span = periods ? `, ${periods.first} – ${periods.last}` : "";
  const counts = rows.length ? `${rows.join(", ")}${split}${span}` : "";
  return [data, counts].filter(Boolean).join(". ");
}

function intervals(card) {
  if (!card.intervals) return "";
  const coverage = card.metrics?.interval_coverage?.[String(LEVEL)];
  const held =
    coverage === undefined
      ? ""
      : `; ${percent(LEVEL)} intervals held ${percent(coverage)} of held-out rows`;
  return `${card.intervals.method}, width follows ${card.intervals.width_follows}${held}`;
}

function metricTables(metrics) {
  const tables = [];
  const held = metrics.held_out;
  if (held) {
    const names = ["r2", "mae", "rmse"].filter((m) => Object.values(held).some((s) => m in s));
    const show = (m, v) => (m === "r2" ? r2.format(v) : format(v));
    tables.push(metricTable("Held-out accuracy", names, held, "chosen", show));
  }
  const backtest = metrics.backtest;
  if (backtest?.scores) {
    const title = `Backtest: ${backtest.origins} forecasts, ${backtest.first} – ${backtest.last}`;
    const show = (m, v) => (m === "mape" ? `${format(v)}%` : format(v));
    tables.push(metricTable(title, ["mape", "rmse"], backtest.scores, "model", show));
  }
  return tables;
}

// One row per model compared, ours (`ours` is its key) first as the card lists it.
function metricTable(title, metrics, scores, ours, show) {
  const table = element("table", { class: "metrics" });
  table.append(element("caption", {}, title));
  const head = table.appendChild(element("thead")).appendChild(element("tr"));
  head.append(element("th"), ...metrics.map((m) => element("th", {}, METRICS[m] || m)));
  const body = table.appendChild(element("tbody"));
  for (const [name, score] of Object.entries(scores)) {
    const tr = body.appendChild(element("tr", name === ours ? { class: "ours" } : {}));
    tr.append(element("th", {}, name === ours ? "this model" : name.replaceAll("_", " ")));
    for (const m of metrics) {
      const known = score[m] !== undefined && score[m] !== null;
      const data = { metric: m, model: name, value: known ? score[m] : "" };
      tr.append(element("td", { dataset: data }, known ? show(m, score[m]) : ""));
    }
  }
  return table;
}
