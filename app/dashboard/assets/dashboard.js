// Polls /api/status and redraws; no framework, no CDN: the page works offline.
"use strict";
const REFRESH_MS = 2000;
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  for (const child of children) node.append(child);
  return node;
}

function duration(seconds) {
  if (!seconds) return "–";
  const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60);
  return `${h}h${String(m).padStart(2, "0")}m`;
}

function renderProgress(status) {
  const plan = status.plan, progress = status.progress || {};
  const counts = (plan && plan.counts) || {};
  $("found").textContent = plan ? plan.found : "–";
  $("done").textContent = plan ? counts["done"] : "–";
  $("queued").textContent = plan ? counts["enqueue"] + counts["already queued"] : "–";
  $("failed").textContent = status.failures.length;
  $("ignored").textContent = plan ? Object.values(plan.ignored || {}).reduce((a, b) => a + b, 0) : "–";
  const q = status.queue;
  $("queue-visible").textContent = q ? q.visible : "–";
  $("queue-inflight").textContent = q ? q.in_flight : "–";
  $("queue-dead").textContent = q ? q.dead_letter : "–";
  $("queue-error").hidden = !status.queue_error;
  $("queue-error").textContent = status.queue_error || "";
  $("files-per-hour").textContent = status.throughput.files_per_hour ?? "–";
  $("eta").textContent = duration(status.throughput.eta_s);
  const door = status.front_door;  // Bazarr's requests through `fleet asr`, when a front door keeps its state here
  $("front-door").hidden = !door;
  $("front-door-counts").textContent = door ? `${door.open} · ${door.done} · ${door.failed}` : "–";
  const percent = plan ? progress.percent : 0;
  $("overall-bar").style.width = `${percent}%`;
  $("overall-text").textContent = plan
    ? `${progress.transcribed} of ${progress.found} files transcribed, ${progress.remaining} to go` +
      (progress.failed ? `, ${progress.failed} failed` : "") + ` (${percent}%)`
    : "no plan yet";
}

function renderWorkers(workers) {
  const box = $("workers");
  box.replaceChildren();
  if (!workers.length) box.append(el("p", { class: "dim" }, "no worker has reported yet"));
  for (const w of workers) {
    const state = w.shown_state;  // "LOST", "waiting: source not available ... since 14:02", or the state
    const card = el("div", { class: `worker-card${w.lost ? " lost" : ""}${w.waiting ? " waiting" : ""}`, "data-worker": w.worker },
      el("div", { class: "name" }, w.where ? `${w.worker} · ${w.where}` : w.worker),  // the device in use now, the host if remote
      el("div", { class: "state" }, state),
      el("div", { class: "file" }, w.file ? `${w.file} · ${w.stage || ""}` : "—"),
      el("div", { class: "dim" }, `${w.files_done} done · ${(w.audio_s_done / 3600).toFixed(2)} h audio`));
    if (w.stage_progress !== null && w.stage_progress !== undefined) {
      const bar = el("div", { class: "bar" }, el("div", { style: `width:${w.stage_progress}%` }));
      card.append(bar);
    }
    box.append(card);
  }
}

function renderChart(history) {
  const svg = $("throughput-chart");
  svg.replaceChildren();
  if (history.length < 2) return;
  const max = Math.max(0.01, ...history.map((p) => p.audio_hours_per_hour));
  const t0 = history[0].at, span = Math.max(1, history[history.length - 1].at - t0);
  const points = history.map((p) => `${(600 * (p.at - t0)) / span},${115 - (105 * p.audio_hours_per_hour) / max}`);
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", points.join(" "));
  line.setAttribute("fill", "none");
  line.setAttribute("stroke", "#2f7de1");
  line.setAttribute("stroke-width", "2");
  svg.append(line);
}

function renderFailures(failures) {
  const body = $("failures").querySelector("tbody");
  body.replaceChildren(...failures.map((f) =>
    el("tr", {}, el("td", {}, f.source), el("td", {}, f.reason), el("td", {}, new Date(f.failed_at * 1000).toLocaleString()))));
}

function renderTranscripts(transcripts) {
  $("transcripts").replaceChildren(...transcripts.map((t) => {
    const item = el("li", {}, t.base);
    for (const fmt of t.formats) {
      const path = `${t.base}.${fmt}`.split("/").map(encodeURIComponent).join("/");
      item.append(el("a", { href: `/files/${path}`, target: "_blank" }, fmt));
    }
    return item;
  }));
}

async function refresh() {
  try {
    const response = await fetch("/api/status", { cache: "no-store" });
    const status = await response.json();
    renderProgress(status);
    renderWorkers(status.workers);
    renderChart(status.history);
    renderFailures(status.failures);
    renderTranscripts(status.transcripts);
    $("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (error) {
    $("updated").textContent = `cannot reach the dashboard server (${error})`;
  } finally {
    setTimeout(refresh, REFRESH_MS);
  }
}
refresh();
