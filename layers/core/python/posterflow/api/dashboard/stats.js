// posterflow dashboard: the "Template stats" view (GET /api/stats/templates and /api/stats/crops).
// Kept apart from app.js: it uses app.js's api(), $ and el (classic scripts share one global
// scope), so whatever app.js does for every call (the API key of the session) applies here too.
"use strict";

const statsView = {loaded: false, busy: false};

function statsMs(value) {
  if (value === null || value === undefined) return "–";
  return Number(value) >= 10000 ? `${(Number(value) / 1000).toFixed(1)} s` : `${Math.round(Number(value))} ms`;
}

function statsCells(row) {
  const g = row.generation_ms || row.crop_ms || {};
  return [
    ["jobs", row.jobs], ["items", row.items], ["succeeded", row.succeeded], ["failed", row.failed],
    ["avg", statsMs(g.avg)], ["min", statsMs(g.min)], ["max", statsMs(g.max)], ["p50", statsMs(g.p50)],
    ["p95", statsMs(g.p95)], ["job", statsMs(row.avg_job_duration_ms)],
  ].map(([name, value]) => el("td", {"data-field": name, text: String(value)}));
}

function statsQuery(withSection) {
  const params = new URLSearchParams();
  const fields = [["since", "stats-since"], ["until", "stats-until"], ...(withSection ? [["section", "stats-section"]] : [])];
  for (const [key, id] of fields) {
    const value = $(id).value.trim();
    if (value) params.set(key, value);
  }
  const text = params.toString();
  return text ? `?${text}` : "";
}

function renderTemplateStats(data) {
  const rows = [];
  for (const section of data.sections) {
    const head = el("tr", {class: "stats-section", "data-section": section.section},
      el("td", {}, el("strong", {text: section.section})), ...statsCells(section));
    rows.push(head);
    for (const version of section.versions || []) {
      rows.push(el("tr", {class: "stats-version", "data-section": section.section, "data-version": String(version.version)},
        el("td", {text: `v${version.version}`}), ...statsCells(version)));
    }
  }
  $("stats-table").querySelector("tbody").replaceChildren(...rows);
  $("stats-empty").hidden = rows.length > 0;
  $("stats-range").textContent = `${data.since} … ${data.until} (UTC days)${data.truncated ? " · more sections exist: filter by one" : ""}`;
  const sections = $("stats-sections");
  const known = new Set([...sections.options].map((o) => o.value));
  for (const section of data.sections) {
    if (!known.has(section.section)) sections.append(el("option", {value: section.section}));
  }
}

function renderCropStats(data) {
  const c = data.crops;
  const row = el("tr", {class: "stats-crops"}, el("td", {}, el("strong", {text: "crops"})), ...statsCells(c));
  $("stats-crops").querySelector("tbody").replaceChildren(row);
  $("stats-faces").textContent = String(c.faces_found);
}

async function loadStats(event) {
  if (event) event.preventDefault();
  if (statsView.busy) return;
  statsView.busy = true;
  const message = $("stats-message");
  message.className = "message";
  message.textContent = "loading…";
  try {
    const [templates, crops] = await Promise.all([
      api("GET", `/api/stats/templates${statsQuery(true)}`), api("GET", `/api/stats/crops${statsQuery(false)}`)]);
    renderTemplateStats(templates);
    renderCropStats(crops);
    message.textContent = "";
    statsView.loaded = true;
  } catch (e) {
    message.className = "message error";
    message.textContent = e.message;
  } finally {
    statsView.busy = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const tab = document.querySelector('.tab[data-tab="stats"]');
  if (!tab) return;
  tab.addEventListener("click", () => { if (!statsView.loaded) loadStats(); });
  $("stats-form").addEventListener("submit", loadStats);
});
