// Small helpers the page's modules share: making elements, and writing numbers one way.

// An element with attributes (`dataset` sets data-*) and text, never HTML: values come from users.
export function element(tag, attributes = {}, text = null) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value);
  }
  if (text !== null) node.textContent = text;
  return node;
}

/** The element of a view marked data-part="name". */
export const part = (view, name) => view.root.querySelector(`[data-part="${name}"]`);

const twoPlaces = new Intl.NumberFormat("en-US", {
  minimumFractionDigits: 2,
  maximumFractionDigits: 2,
});
const upToThree = new Intl.NumberFormat("en-US", { maximumFractionDigits: 3 });

/** A prediction, a bound or a contribution: 1,273.68. */
export const format = (value) => twoPlaces.format(value);

/** A value a person typed or a range from the model card, as precise as it was given. */
export const plain = (value) => (typeof value === "number" ? upToThree.format(value) : value);

export const percent = (fraction) => `${Math.round(fraction * 1000) / 10}%`;

export const count = (n, noun) => `${n.toLocaleString("en-US")} ${noun}${n === 1 ? "" : "s"}`;
