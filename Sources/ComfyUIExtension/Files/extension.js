// comfyq inside ComfyUI's page (installed by `comfyq comfyui install`):
//
// - "Queue as comfyq batch…" (the Workflow menu, and Alt+Shift+Q): a dialog listing the
//   workflow's inputs by the addresses `comfyq inspect` prints, where the sweep is set (seeds,
//   lists of values, the server's own choices for combo inputs), with the item count; the job is
//   the page's own API prompt (app.graphToPrompt) plus its workflow, added by `comfyq serve`
//   (POST /api/jobs: the same checks as `comfyq add`; its problems come back one line each).
// - window.comfyq.queueBatch({name, seeds, set, matrix, zip, priority}), the same from a script:
//   resolves to {job, items}; rejects with an Error whose `problems` lists what was wrong.
// - A comfyq sidebar tab: the jobs with their live progress, the prompts in flight with their
//   phase, the servers, failures, links into serve's pages, drain and cancel.
//
// It reaches `comfyq serve` at the URL in comfyq.json beside this file (written at install) or
// the "comfyq serve URL" setting; serve must list this page's origin (`--allow-origin`). Nothing
// is asked of comfyq until the dialog or the tab is opened, so the page loads the same whether
// comfyq is running or not.
import { app } from "../../scripts/app.js";

const here = new URL(".", import.meta.url);
let installed = null;

function setting(id) {
  try { return app.extensionManager?.setting?.get(id) || ""; } catch (error) { return ""; }
}

async function where() {
  if (!installed) installed = fetch(new URL("comfyq.json", here)).then((r) => (r.ok ? r.json() : {})).catch(() => ({}));
  const file = await installed;
  const url = (setting("comfyq.ServeURL") || file.serve || "http://127.0.0.1:8190").replace(/\/+$/, "");
  return { url, token: setting("comfyq.Token") };
}

class Unreachable extends Error {}

// A request to comfyq serve: its JSON answer, or an Error with serve's one-line message.
async function call(path, options = {}) {
  const { url, token } = await where();
  const headers = Object.assign({ Accept: "application/json" }, options.headers || {});
  if (token) headers.Authorization = "Bearer " + token;
  let response;
  try {
    response = await fetch(url + path, Object.assign({}, options, { headers, mode: "cors", credentials: "omit" }));
  } catch (error) {
    throw new Unreachable(`comfyq is not reachable at ${url}: start it with \`comfyq serve --allow-origin ${location.origin}\` (or set its URL in the settings, comfyq)`);
  }
  const text = await response.text();
  let body = null;
  try { body = JSON.parse(text); } catch (error) { body = null; }
  if (!response.ok) {
    const failure = new Error((body && body.error) || text || `${response.status} ${response.statusText}`);
    failure.problems = (body && body.problems) || [failure.message];
    failure.status = response.status;
    throw failure;
  }
  return body;
}

// MARK: Queueing

async function queueBatch(options = {}) {
  const { workflow, output } = await app.graphToPrompt();
  const job = { name: options.name || defaultName(), workflow: output, page_workflow: workflow };
  for (const key of ["seeds", "set", "matrix", "zip", "priority"]) {
    if (options[key] !== undefined && options[key] !== null) job[key] = options[key];
  }
  const added = await call("/api/jobs", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(job) });
  refreshSoon();
  return added;
}

function defaultName() {
  const open = app.extensionManager?.workflow?.activeWorkflow;
  const base = (open && (open.filename || open.path)) || "comfyui";
  return String(base).replace(/\.json$/, "").replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^-+|-+$/g, "") || "comfyui";
}

// MARK: The dialog

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "style") node.style.cssText = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== false && value !== null && value !== undefined) node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

// The choices the page itself offers for a combo input (its checkpoints, samplers…).
function choicesFor(nodeID, input) {
  const node = app.graph?.getNodeById?.(Number(nodeID)) || app.graph?.getNodeById?.(nodeID);
  const widget = node?.widgets?.find((w) => w.name === input);
  const values = widget?.options?.values;
  return Array.isArray(values) ? values.map(String) : null;
}

function parseList(text) {
  return text.split(",").map((part) => part.trim()).filter((part) => part.length > 0).map((part) => {
    if (/^-?\d+$/.test(part)) return Number(part);
    if (/^-?\d*\.\d+$/.test(part) || /^-?\d+\.\d*$/.test(part)) return Number(part);
    return part;
  });
}

async function openDialog() {
  document.querySelector(".comfyq-dialog")?.remove();
  const problems = element("ul", { class: "comfyq-problems" });
  const count = element("span", { class: "comfyq-count" }, "…");
  const added = element("p", { class: "comfyq-added" });
  const rows = element("tbody");
  const name = element("input", { name: "name", value: defaultName(), size: 24 });
  const priority = element("input", { name: "priority", type: "number", value: "0", style: "width:5em" });
  const seedMode = element("select", { name: "seeds" },
    element("option", { value: "none" }, "the workflow's seed"),
    element("option", { value: "range", selected: true }, "count from start"),
    element("option", { value: "random" }, "random"));
  const seedCount = element("input", { name: "seed-count", type: "number", min: "1", value: "4", style: "width:6em" });
  const seedStart = element("input", { name: "seed-start", type: "number", value: "1", style: "width:8em" });
  const zip = element("input", { type: "checkbox", name: "zip" });
  const submit = element("button", { type: "submit", class: "comfyq-queue" }, "Queue");
  const form = element("form", { class: "comfyq-form" },
    element("h3", {}, "Queue as comfyq batch"),
    element("p", {}, element("label", {}, "job ", name), " ", element("label", {}, "priority ", priority)),
    element("p", {}, element("label", {}, "seeds ", seedMode), " ", element("label", {}, "count ", seedCount), " ", element("label", {}, "start ", seedStart)),
    element("p", { class: "comfyq-hint" }, "Values to sweep, comma-separated (or chosen): each list is an axis; every combination is queued, or with zip the lists go together."),
    element("div", { class: "comfyq-table" }, element("table", {}, element("thead", {}, element("tr", {}, element("th", {}, "input"), element("th", {}, "now"), element("th", {}, "values"))), rows)),
    element("p", {}, element("label", {}, zip, " zip the lists (walk them together)")),
    problems, added,
    element("p", { class: "comfyq-buttons" }, count, " ", element("button", { type: "button", class: "comfyq-cancel", onclick: () => dialog.remove() }, "Close"), " ", submit));
  const dialog = element("div", { class: "comfyq-dialog", role: "dialog", "aria-label": "Queue as comfyq batch" }, form);
  document.body.append(dialog);
  dialog.addEventListener("keydown", (event) => { if (event.key === "Escape") dialog.remove(); event.stopPropagation(); });

  // The workflow's inputs, by their addresses (asked of comfyq: the same as `comfyq inspect`).
  let inspection;
  try {
    const { output } = await app.graphToPrompt();
    inspection = await call("/api/inspect", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ workflow: output }) });
  } catch (error) {
    problems.replaceChildren(element("li", {}, error.message));
    submit.disabled = true;
    return dialog;
  }
  if (!inspection.seed) { seedMode.value = "none"; seedMode.disabled = true; }
  const fields = [];
  for (const node of inspection.nodes) {
    for (const input of node.inputs) {
      // (The seed is swept by the seeds above.)
      if (!input.address || input.address === inspection.seed) continue;
      const choices = choicesFor(node.id, input.name);
      let field;
      if (choices && choices.length > 0) {
        field = element("select", { multiple: true, size: Math.min(4, choices.length), "data-address": input.address });
        for (const choice of choices) field.append(element("option", { value: choice }, choice));
      } else {
        field = element("input", { "data-address": input.address, placeholder: "e.g. " + exampleFor(input.value), size: 28 });
      }
      field.addEventListener("input", recount);
      field.addEventListener("change", recount);
      fields.push(field);
      const now = input.value === null || typeof input.value !== "object" ? String(input.value) : JSON.stringify(input.value);
      rows.append(element("tr", {}, element("td", {}, element("code", {}, input.address)), element("td", { class: "comfyq-now" }, now.length > 40 ? now.slice(0, 37) + "…" : now), element("td", {}, field)));
    }
  }
  for (const control of [seedMode, seedCount, seedStart, zip]) { control.addEventListener("input", recount); control.addEventListener("change", recount); }

  function values(field) {
    return field.tagName === "SELECT" ? Array.from(field.selectedOptions).map((o) => o.value) : parseList(field.value);
  }
  function options() {
    const set = {}, lists = {};
    for (const field of fields) {
      const chosen = values(field);
      if (chosen.length === 1) set[field.dataset.address] = chosen[0];
      else if (chosen.length > 1) lists[field.dataset.address] = chosen;
    }
    const result = { name: name.value.trim(), priority: Number(priority.value) || 0 };
    const n = Math.max(1, Math.floor(Number(seedCount.value) || 1));
    if (seedMode.value === "range") result.seeds = { start: Math.floor(Number(seedStart.value) || 0), count: n };
    else if (seedMode.value === "random") result.seeds = { random: n };
    if (Object.keys(set).length) result.set = set;
    if (Object.keys(lists).length) result[zip.checked ? "zip" : "matrix"] = lists;
    return result;
  }
  function recount() {
    const chosen = options();
    const lists = Object.values(chosen.matrix || chosen.zip || {});
    let items = chosen.zip ? Math.max(1, ...lists.map((l) => l.length)) : lists.reduce((n, l) => n * l.length, 1);
    if (chosen.seeds) items *= chosen.seeds.count || chosen.seeds.random || 1;
    count.textContent = `${items} item${items === 1 ? "" : "s"}`;
    count.dataset.items = String(items);
    submit.textContent = `Queue ${items}`;
  }
  recount();
  seedStart.disabled = seedMode.value !== "range";
  seedMode.addEventListener("change", () => { seedStart.disabled = seedMode.value !== "range"; seedCount.disabled = seedMode.value === "none"; });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    problems.replaceChildren();
    added.replaceChildren();
    submit.disabled = true;
    try {
      const answer = await queueBatch(options());
      const { url } = await where();
      added.replaceChildren(`Added ${answer.job}: ${answer.items} item${answer.items === 1 ? "" : "s"}. `,
        element("a", { href: `${url}/jobs/${encodeURIComponent(answer.job)}`, target: "_blank", rel: "noopener" }, "its grid in comfyq"));
      added.dataset.job = answer.job;
      added.dataset.items = String(answer.items);
    } catch (error) {
      for (const problem of error.problems || [error.message]) problems.append(element("li", {}, problem));
    } finally {
      submit.disabled = false;
    }
  });
  name.focus();
  return dialog;
}

function exampleFor(value) {
  if (typeof value === "number") return Number.isInteger(value) ? `${value}, ${value + 1}` : `${value}, ${Math.round((value + 1) * 10) / 10}`;
  if (typeof value === "string") return value.length > 12 ? "a, b" : `${value}, …`;
  return "a, b";
}

// MARK: The sidebar

const sidebar = { element: null, stream: null, timer: null };

function refreshSoon() { if (sidebar.element) render(sidebar.element); }

async function render(root) {
  let status;
  try {
    status = await call("/api/status");
  } catch (error) {
    root.replaceChildren(element("div", { class: "comfyq-side" }, element("h3", {}, "comfyq"), element("p", { class: "comfyq-off" }, error.message),
      element("button", { type: "button", onclick: () => connect(root) }, "try again")));
    return;
  }
  const { url } = await where();
  const link = (path, text) => element("a", { href: url + path, target: "_blank", rel: "noopener" }, text);
  const jobs = element("div", { class: "comfyq-jobs" });
  for (const job of status.jobs) {
    const done = job.counts.done || 0, failed = job.counts.failed || 0;
    const bar = element("div", { class: "comfyq-bar" }, element("i", { style: `width:${Math.round((job.fraction || 0) * 100)}%` }));
    const row = element("div", { class: "comfyq-job", "data-job": job.name },
      element("div", {}, link(`/jobs/${encodeURIComponent(job.name)}`, job.name), " ",
        element("span", { class: "comfyq-counts" }, `${done}/${job.total} done${failed ? `, ${failed} failed` : ""}`)),
      bar);
    if (job.fraction < 1 && (job.counts.pending || 0) + (job.counts.running || 0) + (job.counts.submitting || 0) + (job.counts.held || 0) > 0) {
      row.append(element("button", { type: "button", class: "comfyq-cancel-job", onclick: () => control(`/jobs/${encodeURIComponent(job.name)}/cancel`, root) }, "cancel"));
    }
    if (job.held) row.append(element("div", { class: "comfyq-held" }, `${job.held.items} held: ${job.held.reason}`));
    jobs.append(row);
  }
  const flying = status.items.filter((item) => item.state === "running" || item.state === "submitting");
  const failures = status.items.filter((item) => item.state === "failed").slice(-10);
  const side = element("div", { class: "comfyq-side" },
    element("h3", {}, "comfyq ", link("/", "open")),
    status.jobs.length ? jobs : element("p", { class: "comfyq-muted" }, "The queue is empty: Queue as comfyq batch… (Alt+Shift+Q)."),
    flying.length ? element("h4", {}, "In flight") : null,
    ...flying.map((item) => element("div", { class: "comfyq-flight" }, link(`/jobs/${encodeURIComponent(item.job)}/${item.index}`, `${item.job}/${item.index}`),
      ` ${item.phase || item.state}${item.steps ? ` ${item.step || 0}/${item.steps}` : ""} on ${item.server || "?"}`)),
    status.servers.length ? element("h4", {}, "Servers") : null,
    ...status.servers.map((server) => element("div", { class: "comfyq-server" }, `${server.name}: ${server.state}${server.reason ? ` (${server.reason})` : ""}`)),
    failures.length ? element("h4", {}, "Failures") : null,
    ...failures.map((item) => element("div", { class: "comfyq-failure" }, link(`/jobs/${encodeURIComponent(item.job)}/${item.index}`, `${item.job}/${item.index}`), ` ${item.error || ""}`)),
    status.runners.length ? element("p", {}, element("button", { type: "button", class: "comfyq-drain", onclick: () => control("/drain", root) }, "drain"), " (finish what is in flight, start nothing new)") : null);
  root.replaceChildren(side);
}

async function control(path, root) {
  try { await call(path, { method: "POST" }); } catch (error) { root.prepend(element("p", { class: "comfyq-off" }, error.message)); return; }
  render(root);
}

// Follows the queue: serve's event stream says when it changed (as its own pages follow it).
async function connect(root) {
  sidebar.element = root;
  sidebar.stream?.close();
  await render(root);
  const { url, token } = await where();
  if (!root.isConnected || root.querySelector(".comfyq-off")) return;
  const stream = new EventSource(url + "/events" + (token ? "?token=" + encodeURIComponent(token) : ""));
  stream.onmessage = () => { if (root.isConnected) render(root); else stream.close(); };
  stream.onerror = () => { if (!root.isConnected) stream.close(); };
  sidebar.stream = stream;
}

const style = `
.comfyq-dialog{position:fixed;inset:0;z-index:10000;display:flex;align-items:center;justify-content:center;background:rgba(0,0,0,.45)}
.comfyq-form{background:var(--comfy-menu-bg,#222);color:var(--fg-color,#ddd);padding:1rem 1.25rem;border-radius:8px;max-width:48rem;max-height:85vh;overflow:auto;font:14px system-ui,sans-serif}
.comfyq-form h3{margin:0 0 .5rem}.comfyq-form label{margin-right:.75rem}.comfyq-table{max-height:40vh;overflow:auto}
.comfyq-form td,.comfyq-form th{padding:.2rem .4rem;text-align:left;vertical-align:top}.comfyq-now{opacity:.7}
.comfyq-problems{color:#f87171}.comfyq-added{color:#4ade80}.comfyq-buttons{text-align:right}.comfyq-hint{opacity:.75;font-size:.9em}
.comfyq-side{padding:.75rem;font:13px system-ui,sans-serif}.comfyq-side a{color:inherit}.comfyq-job{margin:.5rem 0}
.comfyq-bar{height:.4rem;background:rgba(128,128,128,.3);border-radius:.2rem}.comfyq-bar>i{display:block;height:100%;background:#60a5fa;border-radius:.2rem}
.comfyq-off,.comfyq-failure{color:#f87171}.comfyq-muted{opacity:.7}
`;

app.registerExtension({
  name: "comfyq.batch",
  settings: [
    { id: "comfyq.ServeURL", name: "comfyq serve URL (empty: the one `comfyq comfyui install` wrote)", type: "text", defaultValue: "", category: ["comfyq", "Serve", "URL"] },
    { id: "comfyq.Token", name: "comfyq serve token (only when serve was started with one)", type: "text", defaultValue: "", category: ["comfyq", "Serve", "Token"] },
  ],
  commands: [
    { id: "comfyq.QueueBatch", label: "Queue as comfyq batch…", icon: "pi pi-moon", function: () => { openDialog(); } },
  ],
  menuCommands: [{ path: ["Workflow"], commands: ["comfyq.QueueBatch"] }],
  keybindings: [{ combo: { key: "q", alt: true, shift: true }, commandId: "comfyq.QueueBatch" }],
  async setup() {
    document.head.append(element("style", {}, style));
    window.comfyq = { queueBatch, openDialog, status: () => call("/api/status"), where };
    app.extensionManager.registerSidebarTab({
      id: "comfyq", icon: "pi pi-moon", title: "comfyq", tooltip: "comfyq: the night's batches", type: "custom",
      render: (root) => { connect(root); },
    });
  },
});
