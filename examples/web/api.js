// Calling a marketcast prediction function from a browser: the part of this page worth copying
// whole. Plain fetch; nothing here knows about the page around it.

export const LEVEL = 0.9; // the interval level every request of this page asks for

/** An answer that is not a prediction: its HTTP status (0 when none came) and the API's details. */
export class ApiError extends Error {
  constructor(message, { status = 0, code = "", details = [], retryAfter = null } = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
    this.retryAfter = retryAfter;
  }
}

/** One request to the function at `api` (its URL, ending in "/"); throws ApiError unless 2xx. */
export async function call(api, { body, contentType, query = "", signal } = {}) {
  const init = { method: body === undefined ? "GET" : "POST", body, signal };
  if (contentType) init.headers = { "Content-Type": contentType };
  let response;
  try {
    response = await fetch(api + query, init);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    // The browser hides why on purpose; a refused CORS check and an unreachable server look alike.
    throw new ApiError(
      `The browser refused the request to ${api} (${error.message}). ` +
        `If the function is running, this page's origin (${location.origin}) is not in its ` +
        "CORS_ALLOWED_ORIGINS: the CORS check failed.",
    );
  }
  if (!response.ok) throw await failure(response);
  return response;
}

async function failure(response) {
  const problem = await response.json().catch(() => ({}));
  const error = problem.error || {};
  return new ApiError(error.message || response.statusText || "the function failed", {
    status: response.status,
    code: error.code || "",
    details: error.details || [],
    retryAfter: response.headers.get("Retry-After"),
  });
}

/** The model card: what the model takes (features, ranges, categories), returns, how good it is. */
export async function modelCard(api) {
  return (await call(api)).json();
}

/**
 * Predictions for `instances` (objects keyed by feature name), one per instance and in order,
 * each as { value, lower, upper, withheld, outside, baseValue, contributions }.
 * `parameters` is what the API reads: { interval: 0.9, explain: true }.
 */
export async function predict(api, target, instances, parameters = {}, signal) {
  const body = JSON.stringify({ instances, parameters });
  const response = await call(api, { body, contentType: "application/json", signal });
  const answer = await response.json();
  return { rows: rowsOf(answer, target), model: modelOf(response) };
}

// With options an answer's predictions are objects; without, plain numbers beside a list of flags.
function rowsOf(answer, target) {
  const flags = answer.outside_training_range || [];
  return answer.predictions.map((p, i) => {
    if (typeof p === "number") return { value: p, outside: flags[i] || [] };
    return {
      value: p[target],
      lower: p.interval ? p.interval.lower : undefined,
      upper: p.interval ? p.interval.upper : undefined,
      withheld: p.interval ? p.interval.withheld : undefined,
      outside: p.outside_training_range || [],
      baseValue: p.base_value,
      contributions: p.contributions,
    };
  });
}

/**
 * A CSV file scored as sent: the answer is the same file with the prediction columns added
 * (`<target>`, and `<target>_lower`/`_upper` at `interval`), as bytes to offer for download.
 */
export async function scoreCsv(api, file, { interval } = {}) {
  const query = interval ? `?interval=${interval}` : "";
  // The File itself is the body: its bytes go as they are, a byte order mark included.
  const response = await call(api, { body: file, contentType: "text/csv", query });
  return { bytes: await response.arrayBuffer(), model: modelOf(response) };
}

function modelOf(response) {
  return {
    name: response.headers.get("X-Model-Name"),
    version: response.headers.get("X-Model-Version"),
  };
}

/** One of the API's error details as a line: the row and field at fault, and why. */
export function describeProblem({ row, line, field, reason }) {
  const where = [];
  if (line !== undefined && line !== null) where.push(`line ${line}`);
  if (row !== undefined && row !== null) where.push(`row ${row}`);
  const at = where.length === 2 ? `${where[0]} (${where[1]})` : where.join("");
  return [at, field].filter(Boolean).join(", ") + `: ${reason}`;
}

/**
 * Enough CSV for the function's answers: quoted fields, doubled quotes, CRLF rows, a BOM, and
 * the separator of the header that holds `column` (a file sent with ";" may come back with it).
 */
export function parseCsv(text, column) {
  const header = text.slice(0, text.search(/\r?\n|$/));
  const separator = [",", ";", "\t"].find((s) => header.split(s).includes(column)) || ",";
  const rows = [];
  let row = [];
  let field = "";
  let quoted = false;
  for (let i = text.charCodeAt(0) === 0xfeff ? 1 : 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === separator) {
      row.push(field);
      field = "";
    } else if (c === "\n") {
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
    } else if (c !== "\r") field += c;
  }
  if (field || row.length) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}
