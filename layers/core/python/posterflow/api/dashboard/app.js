// posterflow dashboard: plain JS, no build step. Talks to the REST API (same origin) and to
// each job's WebSocket (its websocket_url, which carries the job token).
"use strict";

// The API's base path: "" when the page is the local cloud's "/", the stage ("/prod") when the
// deployed API serves it at "/prod/dashboard".
const API = window.POSTERFLOW_API || new URL(".", location.href).pathname.replace(/\/$/, "");
const FINAL = new Set(["completed", "completed_with_errors", "failed", "cancelled"]);
const ACTIVE = new Set(["queued", "processing"]);
const MAX_ITEMS = 24;
const MAX_LOGS = 100;
const STORE_KEY = "posterflow.jobs";
const KEY_STORE = "posterflow.apiKey";

const $ = (id) => document.getElementById(id);
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else if (k === "text") node.textContent = v; else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
};

// The user's API key: kept for this browser tab only (sessionStorage), sent as x-api-key.
const apiKey = {
  get() { return sessionStorage.getItem(KEY_STORE) || ""; },
  set(value) { if (value) sessionStorage.setItem(KEY_STORE, value); else sessionStorage.removeItem(KEY_STORE); },
};

function apiHeaders(extra = {}) {
  const key = apiKey.get();
  return key ? {...extra, "x-api-key": key} : extra;
}

async function api(method, path, body) {
  const resp = await fetch(API + path, {
    method, headers: apiHeaders(body ? {"Content-Type": "application/json"} : {}), body: body ? JSON.stringify(body) : undefined,
  });
  const data = (resp.headers.get("Content-Type") || "").includes("json") ? await resp.json() : null;
  if (resp.status === 403 && data && data.message && !data.error) {
    // API Gateway's own answer: no key, or one it does not know.
    $("api-key-status").textContent = apiKey.get() ? "API key refused" : "enter your API key";
    throw new Error(apiKey.get() ? "the API refused this API key" : "this API needs an API key: enter it above");
  }
  if (!resp.ok) {
    const err = (data && data.error) || {message: `HTTP ${resp.status}`};
    throw new Error(err.message || err.code);
  }
  return data;
}

// Tokens of jobs started (or retried) from this browser: the only way to open their sockets.
const links = {
  all() { try { return JSON.parse(localStorage.getItem(STORE_KEY) || "{}"); } catch { return {}; } },
  get(jobId) { return this.all()[jobId]; },
  put(jobId, link) {
    const all = this.all();
    all[jobId] = link;
    const ids = Object.keys(all);
    for (const old of ids.slice(0, Math.max(0, ids.length - 200))) delete all[old];
    localStorage.setItem(STORE_KEY, JSON.stringify(all));
  },
};

// ---------------------------------------------------------------- job detail

const view = {
  jobId: null, state: null, socket: null, pollTimer: null, pingTimer: null, items: new Map(), logs: [],
};

function counts(frame) {
  // Frames and REST jobs name the counters differently (library vs seed names).
  const pick = (a, b) => (frame[a] !== undefined ? frame[a] : frame[b]);
  return {
    status: frame.status, round: frame.round || 0,
    processed: pick("processed", "processed_items") || 0, total: pick("total", "total_items"),
    succeeded: pick("succeeded", "success_count") || 0, failed: pick("failed", "failure_count") || 0,
    percent: pick("percent", "progress") || 0, rate: frame.items_per_s, eta: frame.eta_s,
  };
}

function isOlder(next, current) {
  if (!current) return false;
  if (next.round !== current.round) return next.round < current.round;
  return next.processed < current.processed;
}

function applyState(frame, {force = false} = {}) {
  const next = counts(frame);
  const current = view.state;
  // The server orders frames; this guards the REST/socket mix against going backwards.
  if (!force && isOlder(next, current)) return;
  view.state = {...current, ...Object.fromEntries(Object.entries(next).filter(([, v]) => v !== undefined))};
  if (frame.archive_url) view.state.archive_url = frame.archive_url;
  if (frame.merged_pdf_url) view.state.merged_pdf_url = frame.merged_pdf_url;  // merge_pdf jobs, one part
  if (frame.error !== undefined) view.state.error = frame.error;
  render();
}

function fmtEta(s) {
  if (typeof s !== "number") return "–";
  s = Math.round(s);
  if (s >= 3600) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return s >= 60 ? `${Math.floor(s / 60)}m ${s % 60}s` : `${s}s`;
}

function render() {
  const s = view.state;
  if (!s) return;
  const pct = Math.max(0, Math.min(100, Number(s.percent) || 0));
  $("job-status").textContent = s.status || "";
  $("job-status").className = `badge ${s.status || ""}`;
  $("job-bar").setAttribute("aria-valuenow", String(pct));
  $("job-bar-fill").style.width = `${pct}%`;
  $("job-percent").textContent = `${pct.toFixed(pct % 1 ? 1 : 0)}%`;
  $("job-processed").textContent = `${s.processed} / ${s.total ?? "?"}`;
  $("job-succeeded").textContent = String(s.succeeded);
  $("job-failed").textContent = String(s.failed);
  $("job-rate").textContent = typeof s.rate === "number" ? `${s.rate.toFixed(1)} items/s` : "–";
  $("job-eta").textContent = FINAL.has(s.status) ? "done" : fmtEta(s.eta);
  const download = $("job-download");
  if (s.archive_url) {
    download.href = s.archive_url;
    download.classList.remove("disabled");
    download.setAttribute("aria-disabled", "false");
  } else {
    download.removeAttribute("href");
    download.classList.add("disabled");
    download.setAttribute("aria-disabled", "true");
  }
  const merged = $("job-merged");
  merged.hidden = !s.merged_pdf_url;
  if (s.merged_pdf_url) merged.href = s.merged_pdf_url;
  $("job-cancel").disabled = !ACTIVE.has(s.status);
  $("job-retry").disabled = !(FINAL.has(s.status) && s.status !== "cancelled" && s.failed > 0);
  const error = $("job-error");
  error.hidden = !s.error;
  error.textContent = s.error || "";
}

function addItems(items) {
  for (const item of items) view.items.set(item.item_id, item);
  const recent = [...view.items.values()].slice(-MAX_ITEMS);
  view.items = new Map(recent.map((i) => [i.item_id, i]));
  const list = $("job-items");
  list.replaceChildren(...recent.slice().reverse().map((item) => {
    const ok = item.success !== undefined ? item.success : item.status === "completed";
    const li = el("li", {class: ok ? "ok" : "failed", "data-entity": String(item.entity_id)});
    if (item.url || item.poster_url) li.append(el("img", {src: item.url || item.poster_url, alt: String(item.entity_id), loading: "lazy"}));
    li.append(el("div", {text: `${item.entity_id} · ${item.status}`}));
    if (item.error) li.append(el("div", {class: "err", text: item.error}));
    return li;
  }));
  const last = recent[recent.length - 1];
  if (last) $("job-current").textContent = String(last.entity_id);
}

function addLog(frame) {
  view.logs.push(frame);
  view.logs = view.logs.slice(-MAX_LOGS);
  $("job-logs").replaceChildren(...view.logs.map((l) =>
    el("li", {class: l.level || "", text: `${(l.created_at || "").slice(11, 19)} ${l.level} ${l.message}`})));
}

function stopLive() {
  if (view.socket) { view.socket.onclose = null; view.socket.close(); view.socket = null; }
  clearInterval(view.pollTimer);
  clearInterval(view.pingTimer);
  view.pollTimer = view.pingTimer = null;
}

async function refreshJob() {
  const jobId = view.jobId;
  const job = await api("GET", `/api/jobs/${encodeURIComponent(jobId)}?limit=${MAX_ITEMS}`);
  if (jobId !== view.jobId) return job;
  applyState(job);
  if (!view.items.size) addItems(job.results || []);
  return job;
}

function startPolling() {
  clearInterval(view.pollTimer);
  view.pollTimer = setInterval(async () => {
    try {
      const job = await refreshJob();
      if (FINAL.has(job.status) && (job.archive_url || job.status !== "completed")) clearInterval(view.pollTimer);
    } catch (e) { $("job-live").textContent = `poll failed: ${e.message}`; }
  }, 2000);
}

function onFrame(frame) {
  switch (frame.event) {
    case "connected": case "subscribed": case "progress": case "status":
      applyState(frame);
      if (frame.current_entity) $("job-current").textContent = String(frame.current_entity);
      if (frame.event === "status" && FINAL.has(frame.status)) refreshJob().catch(() => {});
      break;
    case "item_completed": addItems(frame.items || []); break;
    case "log": addLog(frame); break;
    case "job_completed": case "job_failed":
      applyState(frame);
      $("job-live").textContent = frame.event === "job_completed" ? "finished" : "failed";
      refreshJob().catch(() => {});
      break;
    case "heartbeat": $("job-live").textContent = `live · ${new Date().toLocaleTimeString()}`; break;
    case "error": $("job-live").textContent = `socket error: ${frame.error && frame.error.message}`; break;
    default: break;  // poster_completed repeats item_completed for the seeds' clients
  }
}

function startSocket(link) {
  const socket = new WebSocket(link.websocket_url);
  view.socket = socket;
  socket.onopen = () => {
    $("job-live").textContent = "live";
    view.pingTimer = setInterval(() => socket.send(JSON.stringify({action: "ping"})), 25000);
  };
  socket.onmessage = (msg) => { try { onFrame(JSON.parse(msg.data)); } catch (e) { console.warn(e); } };
  socket.onclose = () => {
    view.socket = null;
    clearInterval(view.pingTimer);
    $("job-live").textContent = "polling";
    // A dropped socket (or one refused) leaves the REST API to follow the job with.
    if (!view.state || !FINAL.has(view.state.status)) startPolling();
  };
}

async function openJob(jobId) {
  stopLive();
  Object.assign(view, {jobId, state: null, items: new Map(), logs: []});
  $("job-detail").hidden = false;
  $("job-placeholder").hidden = true;
  $("job-id").textContent = jobId;
  $("job-items").replaceChildren();
  $("job-logs").replaceChildren();
  $("job-current").textContent = "–";
  $("job-live").textContent = "";
  for (const row of document.querySelectorAll("#jobs-table tbody tr")) row.classList.toggle("selected", row.dataset.job === jobId);
  const link = links.get(jobId);
  if (link && link.websocket_url) startSocket(link);
  try {
    const job = await refreshJob();
    if (!link && !FINAL.has(job.status)) { $("job-live").textContent = "polling"; startPolling(); }
  } catch (e) { $("job-live").textContent = `load failed: ${e.message}`; }
}

async function cancelJob() {
  $("job-cancel").disabled = true;
  try {
    const out = await api("POST", `/api/jobs/${encodeURIComponent(view.jobId)}/cancel`);
    applyState(out.job);
    loadJobs();
  } catch (e) { showJobError(e); }
}

async function retryJob() {
  $("job-retry").disabled = true;
  try {
    const out = await api("POST", `/api/jobs/${encodeURIComponent(view.jobId)}/retry`);
    if (out.websocket_url) links.put(view.jobId, {websocket_url: out.websocket_url, token: out.token});
    await openJob(view.jobId);
  } catch (e) { showJobError(e); }
}

function showJobError(e) {
  $("job-error").hidden = false;
  $("job-error").textContent = e.message;
}

// ---------------------------------------------------------------- jobs list

async function loadJobs() {
  const status = $("jobs-filter").value;
  try {
    const data = await api("GET", `/api/jobs?limit=50${status ? `&status=${encodeURIComponent(status)}` : ""}`);
    const rows = data.jobs.map((job) => {
      const tr = el("tr", {"data-job": job.job_id, "data-status": job.status});
      const fill = el("div");
      fill.style.width = `${Number(job.progress) || 0}%`;  // CSSOM: the page's CSP allows no style attributes
      const bar = el("div", {class: "mini"}, fill);
      tr.append(el("td", {}, el("code", {text: job.job_id.slice(0, 10)}), el("div", {class: "muted", text: job.name || job.template_id || ""})),
        el("td", {}, el("span", {class: `badge ${job.status}`, text: job.status})),
        el("td", {}, bar, el("small", {text: `${job.processed_items}/${job.total_items ?? "?"}`})),
        el("td", {class: "muted", text: (job.created_at || "").replace("T", " ").slice(0, 19)}));
      tr.classList.toggle("selected", job.job_id === view.jobId);
      tr.addEventListener("click", () => openJob(job.job_id));
      return tr;
    });
    $("jobs-table").querySelector("tbody").replaceChildren(...rows);
    $("jobs-empty").hidden = rows.length > 0;
  } catch (e) { $("jobs-empty").hidden = false; $("jobs-empty").textContent = `Could not load jobs: ${e.message}`; }
}

// ---------------------------------------------------------------- batches and templates

let templates = [];

async function loadTemplates() {
  const data = await api("GET", "/api/templates");
  templates = (data.templates || []).filter((t) => t.is_active)
    .sort((a, b) => (b.created_at || "").localeCompare(a.created_at || ""));
  $("batch-template").replaceChildren(...templates.map((t) =>
    el("option", {value: t.template_id, text: `${t.name} (${t.section} v${t.version})`})));
  return templates;
}

function sampleRows(template, n) {
  return Array.from({length: n}, (_, i) => {
    const row = {entity_id: `row-${i + 1}`};
    for (const p of template.placeholders || []) row[p.name] = p.type === "text" ? `${p.sample || p.name} ${i + 1}` : p.sample;
    return row;
  });
}

async function startBatch(event) {
  event.preventDefault();
  const message = $("batch-message");
  message.className = "message";
  const template = templates.find((t) => t.template_id === $("batch-template").value);
  try {
    if (!template) throw new Error("pick a template");
    const text = $("batch-rows").value.trim();
    const items = text ? JSON.parse(text) : sampleRows(template, Number($("batch-count").value) || 1);
    if (!Array.isArray(items) || !items.length) throw new Error("rows must be a non-empty JSON array");
    const out = await api("POST", "/api/generate-batch", {
      template_id: template.template_id, items, format: $("batch-format").value,
      width: Number($("batch-width").value) || undefined, height: Number($("batch-height").value) || undefined,
      name: `${template.section} × ${items.length}`,
      priority: Number($("batch-priority").value) || undefined,
    });
    links.put(out.job_id, {websocket_url: out.websocket_url, token: out.token});
    message.textContent = `Started job ${out.job_id} (${out.total_items} items)`;
    await openJob(out.job_id);
    loadJobs();
  } catch (e) {
    message.className = "message error";
    message.textContent = e.message;
  }
}

function previewImage(t) {
  const path = `${API}/api/templates/${encodeURIComponent(t.template_id)}/preview`;
  const img = el("img", {alt: t.name, loading: "lazy"});
  img.addEventListener("error", () => img.replaceWith(el("div", {class: "muted preview-missing", text: "preview unavailable"})));
  if (!apiKey.get()) {
    img.src = path;
    return img;
  }
  // An <img> cannot send the API key: fetch the preview with it and show the bytes.
  fetch(path, {headers: apiHeaders()})
    .then((resp) => (resp.ok ? resp.blob() : Promise.reject(new Error(`HTTP ${resp.status}`))))
    .then((blob) => { img.src = URL.createObjectURL(blob); })
    .catch(() => img.dispatchEvent(new Event("error")));
  return img;
}

function renderGallery() {
  $("gallery").replaceChildren(...templates.slice(0, 12).map((t) => el("figure", {"data-template": t.template_id},
    previewImage(t),
    el("figcaption", {}, el("strong", {text: t.name}), el("div", {class: "muted", text: `${t.template_id} · ${t.format}${t.width ? ` · ${t.width}×${t.height}` : ""}`}),
      el("div", {class: "muted", text: (t.placeholders || []).map((p) => p.name).join(", ")})))));
}

function showTab(name) {
  for (const tab of document.querySelectorAll(".tab")) tab.classList.toggle("active", tab.dataset.tab === name);
  for (const panel of document.querySelectorAll(".tab-panel")) panel.hidden = panel.id !== `tab-${name}`;
  // Previews are rendered on demand by the API, so they load only when the gallery is shown.
  if (name === "templates") loadTemplates().then(renderGallery).catch((e) => { $("gallery").textContent = e.message; });
}

// ---------------------------------------------------------------- start

function setupApiKey() {
  $("api-key").value = apiKey.get();
  $("api-key-status").textContent = apiKey.get() ? "key set for this tab" : "";
  $("api-key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    apiKey.set($("api-key").value.trim());
    $("api-key-status").textContent = apiKey.get() ? "key set for this tab" : "";
    loadTemplates().catch((e) => { $("batch-message").textContent = `templates: ${e.message}`; });
    loadJobs();
  });
}

document.addEventListener("DOMContentLoaded", () => {
  setupApiKey();
  for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => showTab(tab.dataset.tab));
  $("batch-form").addEventListener("submit", startBatch);
  $("jobs-filter").addEventListener("change", loadJobs);
  $("jobs-refresh").addEventListener("click", loadJobs);
  $("templates-refresh").addEventListener("click", () => showTab("templates"));
  $("job-cancel").addEventListener("click", cancelJob);
  $("job-retry").addEventListener("click", retryJob);
  api("GET", "/health").then(() => { $("api-health").textContent = "API ok"; })
    .catch(() => { $("api-health").textContent = "API unreachable"; });
  loadTemplates().catch((e) => { $("batch-message").textContent = `templates: ${e.message}`; });
  loadJobs();
  setInterval(loadJobs, 4000);
  const fromHash = decodeURIComponent(location.hash.slice(1));
  if (fromHash) openJob(fromHash);
});
