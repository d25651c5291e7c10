// Scoring a CSV file: dropped on the zone or picked, sent as it is (POST text/csv), shown as a
// table and offered for download. A failure replaces whatever the last file left.

import { LEVEL, describeProblem, parseCsv, scoreCsv } from "./api.js";
import { count, element, format, part } from "./dom.js";

const TABLE_ROWS = 200; // the table shows this many; the download has every row

/** Listens on the view's drop zone and file picker; works before, or without, a model card. */
export function wireFiles(view) {
  const zone = part(view, "dropzone");
  const input = part(view, "file-input");
  input.addEventListener("change", () => {
    if (input.files.length) scoreFile(view, input.files[0]);
    input.value = ""; // so that picking the same file again scores it again
  });
  zone.addEventListener("dragover", (event) => {
    event.preventDefault(); // what makes the zone a drop target
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    const [file] = event.dataTransfer.files;
    if (file) scoreFile(view, file);
  });
}

/** Says which columns a file needs, and offers the card's example rows as a file. */
export function describeFileColumns(view) {
  const { card } = view;
  const names = card.features.map((f) => f.name);
  part(view, "file-hint").textContent =
    `A header row naming ${names.join(", ")}, then a row for each prediction; ` +
    "other columns come back as sent.";
  const example = card.example_request?.instances || [];
  const lines = [names, ...example.map((row) => names.map((name) => row[name]))];
  const link = part(view, "example-file");
  link.href = URL.createObjectURL(new Blob([lines.map((l) => `${l.join(",")}\n`).join("")]));
  link.download = `${card.name}-example.csv`;
  link.hidden = false;
}

async function scoreFile(view, file) {
  const target = view.card?.target.name;
  const status = part(view, "file-status");
  clearFile(view);
  status.textContent = `Scoring ${file.name}…`;
  view.root.dataset.file = "pending";
  let answer;
  try {
    const interval = view.card?.options?.interval ? LEVEL : null;
    answer = await scoreCsv(view.api, file, { interval });
  } catch (error) {
    status.textContent = `${file.name} was not scored.`;
    showError(view, error);
    view.root.dataset.file = "failed";
    return;
  }
  const [columns, ...rows] = parseCsv(new TextDecoder().decode(answer.bytes), target);
  showTable(view, columns, rows, target);
  const flags = columns.indexOf("outside_training_range");
  const flagged = flags < 0 ? 0 : rows.filter((row) => row[flags]).length;
  status.textContent =
    `${count(rows.length, "row")} of ${file.name} scored by ${answer.model.name} ` +
    `${answer.model.version}` +
    (flagged ? `; ${flagged.toLocaleString("en-US")} outside the training range` : "") +
    (rows.length > TABLE_ROWS ? `. The first ${TABLE_ROWS} are shown; the download has all.` : "");
  const download = part(view, "download");
  download.href = URL.createObjectURL(new Blob([answer.bytes], { type: "text/csv" }));
  download.download = `${file.name.replace(/\.csv$/i, "")}-scored.csv`;
  download.hidden = false;
  view.root.dataset.file = "done";
}

function showError(view, error) {
  const title = error.status ? `${error.status} · ${error.message}` : error.message;
  const box = part(view, "file-error");
  box.replaceChildren(element("p", { class: "error-title" }, title));
  const details = error.details || []; // none on a failure that is not the API's answer
  if (details.length) {
    const list = box.appendChild(element("ul"));
    list.append(...details.map((detail) => element("li", {}, describeProblem(detail))));
  }
  if (error.retryAfter) box.append(element("p", {}, `Try again in ${error.retryAfter} s.`));
}

function clearFile(view) {
  const download = part(view, "download");
  if (download.href) URL.revokeObjectURL(download.href);
  download.removeAttribute("href");
  download.hidden = true;
  part(view, "file-error").replaceChildren();
  const results = part(view, "results");
  results.tHead.replaceChildren();
  results.tBodies[0].replaceChildren();
  part(view, "table-wrap").hidden = true;
}

function showTable(view, columns, rows, target) {
  const kinds = {
    [target]: "prediction",
    [`${target}_lower`]: "bound",
    [`${target}_upper`]: "bound",
    outside_training_range: "flags",
  };
  const head = element("tr");
  head.append(...columns.map((name) => element("th", { class: kinds[name] || "" }, name)));
  const flags = columns.indexOf("outside_training_range");
  const body = rows.slice(0, TABLE_ROWS).map((row) => {
    const tr = element("tr", row[flags] ? { class: "flagged" } : {});
    tr.append(...columns.map((name, i) => cell(kinds[name], row[i] ?? "")));
    return tr;
  });
  const results = part(view, "results");
  results.tHead.replaceChildren(head);
  results.tBodies[0].replaceChildren(...body);
  part(view, "table-wrap").hidden = false;
}

// A number keeps its exact text in data-value; a withheld bound is a dash that says why.
function cell(kind, text) {
  if (kind === "prediction" || (kind === "bound" && text !== "")) {
    return element("td", { class: kind, dataset: { value: text } }, format(Number(text)));
  }
  if (kind === "bound") {
    return element("td", { class: kind, title: "withheld: outside the training range" }, "—");
  }
  if (kind === "flags") {
    return element("td", { class: kind }, text.split(";").filter(Boolean).join(", "));
  }
  return element("td", kind ? { class: kind } : {}, text);
}
