// posterflow dashboard: the queues card (GET /api/batch/queue-stats), one row per priority lane.
// Like stats.js it uses app.js's api(), $ and el (classic scripts share one global scope).
"use strict";

const QUEUES_EVERY_MS = 3000;
const queuesView = {busy: false};

function queueRow(work, lane, numbers) {
  return el("tr", {"data-queue": work, "data-lane": lane},
    el("td", {text: work}), el("td", {text: lane}),
    ...["waiting", "in_flight", "dlq"].map((k) => el("td", {"data-field": k, text: String(numbers[k] ?? 0)})));
}

function renderQueues(data) {
  const rows = [];
  for (const [work, q] of Object.entries(data.queues || {})) {
    if (q.lanes) {
      // The urgent lane first: it is the one that should stay near empty.
      for (const lane of ["urgent", "normal"]) if (q.lanes[lane]) rows.push(queueRow(work, lane, q.lanes[lane]));
    } else {
      rows.push(queueRow(work, "–", q));
    }
  }
  $("queues-table").querySelector("tbody").replaceChildren(...rows);
}

async function refreshQueues() {
  if (queuesView.busy) return;
  queuesView.busy = true;
  try {
    renderQueues(await api("GET", "/api/batch/queue-stats"));
    $("queues-message").textContent = "";
  } catch (e) {
    $("queues-message").textContent = e.message;
  } finally {
    queuesView.busy = false;
  }
}

$("queues-refresh").addEventListener("click", refreshQueues);
setInterval(() => {
  if (document.visibilityState === "visible" && !$("tab-jobs").hidden) refreshQueues();
}, QUEUES_EVERY_MS);
refreshQueues();
