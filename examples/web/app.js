// The page: one view per function URL, each with a what-if panel, a file scorer and the model
// card's facts, all built from the function's model card (a GET on its URL).

import { modelCard } from "./api.js";
import { element, part } from "./dom.js";
import { buildFacts } from "./facts.js";
import { describeFileColumns, wireFiles } from "./files.js";
import { buildWhatIf } from "./whatif.js";

// What `make serve` prints: predict_customer_needs on :8080, predict_market_trend on :8081.
const DEFAULT_APIS = ["http://127.0.0.1:8080/", "http://127.0.0.1:8081/"];

/** The function URLs: `?api=URL`, repeated or comma-separated; `make serve`'s two by default. */
export function configuredApis(search) {
  const given = new URLSearchParams(search)
    .getAll("api")
    .flatMap((value) => value.split(/[\s,]+/))
    .filter(Boolean);
  return given.length ? given : DEFAULT_APIS;
}

function createView(api, index) {
  const template = document.getElementById("model-view");
  const root = template.content.firstElementChild.cloneNode(true);
  root.id = `model-${index}`;
  root.dataset.api = api;
  root.hidden = index !== 0;
  document.getElementById("views").appendChild(root);
  const tab = element("button", { type: "button", role: "tab", class: "tab" });
  tab.setAttribute("aria-controls", root.id);
  tab.setAttribute("aria-selected", String(index === 0));
  tab.append(
    element("span", { class: "tab-name" }, new URL(api, location.href).host),
    element("span", { class: "tab-dot" }),
  );
  tab.addEventListener("click", () => select(root.id));
  document.getElementById("tabs").appendChild(tab);
  const view = { api, root, tab, card: null };
  wireFiles(view);
  return view;
}

function select(id) {
  for (const section of document.querySelectorAll("#views > section")) {
    section.hidden = section.id !== id;
  }
  for (const tab of document.querySelectorAll("#tabs .tab")) {
    tab.setAttribute("aria-selected", String(tab.getAttribute("aria-controls") === id));
  }
}

async function load(view) {
  view.root.dataset.state = "loading";
  try {
    view.card = await modelCard(view.api);
  } catch (error) {
    view.root.dataset.state = "failed";
    view.tab.classList.add("failed");
    part(view, "title").textContent = "No model card";
    part(view, "load-error").textContent = error.message;
    return;
  }
  const { card } = view;
  view.root.dataset.model = card.name;
  view.tab.querySelector(".tab-name").textContent = card.name;
  part(view, "title").textContent = card.name;
  part(view, "subtitle").textContent = `predicts ${card.target.name}`;
  part(view, "target-description").textContent = card.target.description || "";
  buildFacts(part(view, "facts"), card);
  describeFileColumns(view);
  buildWhatIf(view);
  view.root.dataset.state = "ready";
}

function main() {
  const apis = configuredApis(location.search);
  const field = document.getElementById("apis");
  field.value = apis.join("\n");
  document.getElementById("settings").addEventListener("submit", (event) => {
    event.preventDefault();
    const query = new URLSearchParams();
    for (const api of configuredApis(`?api=${encodeURIComponent(field.value)}`)) {
      query.append("api", api);
    }
    location.search = query.toString(); // a new page, and a link to share
  });
  for (const view of apis.map(createView)) load(view);
}

main();
