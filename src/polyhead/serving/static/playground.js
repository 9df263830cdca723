// polyhead playground: one call to /predict, every head shown; no external scripts.
"use strict";

const $ = (id) => document.getElementById(id);
const PALETTE = {
  PER: "#ffd6a5", ORG: "#caffbf", LOC: "#9bf6ff", MISC: "#ffc6ff", PRODUCT: "#fdffb6",
  GPE: "#a0c4ff", DATE: "#e4c1f9", MONEY: "#d0f4de",
};
const EXTRA = ["#ffadad", "#bdb2ff", "#fcf6bd", "#d8e2dc", "#f1c0e8", "#b9fbc0"];
let info = null;

function colorFor(type) {
  if (PALETTE[type]) return PALETTE[type];
  let h = 0;
  for (const c of type) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return EXTRA[h % EXTRA.length];
}

function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = $("api-key").value || sessionStorage.getItem("polyhead-key") || "";
  if (key) h["Authorization"] = "Bearer " + key;
  return h;
}

async function call(method, path, body) {
  let resp;
  try {
    resp = await fetch(path, { method, headers: headers(), body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new Error("cannot reach the server (" + e.message + ")");
  }
  let data = null;
  const text = await resp.text();
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
  if (!resp.ok) {
    if (resp.status === 401) $("key-label").hidden = false;
    const msg = data && data.error ? data.error.message : (text || resp.statusText);
    const err = new Error(`${resp.status}: ${msg}`);
    err.status = resp.status;
    throw err;
  }
  return data;
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

// -- model card ---------------------------------------------------------------------------
async function loadInfo() {
  try {
    info = await call("GET", "/info");
  } catch (e) {
    $("model-name").textContent = "model info unavailable";
    $("card-body").textContent = e.message;
    if (e.status === 401) showError("This server needs an API key: enter it above, then press Predict.");
    return;
  }
  $("model-name").textContent = `${info.model} · ${info.dimensions}-d · ${info.backend}/${info.precision}`;
  renderCard(info);
  loadTraining();
}

function renderCard(i) {
  const rows = [
    ["model", i.model], ["encoder", i.encoder], ["dimensions", i.dimensions], ["pooling", i.pooling],
    ["normalised", i.normalize], ["max length", i.max_length], ["precision", i.precision],
    ["backend", i.backend], ["device", i.device], ["parameters", i.parameters ? Number(i.parameters).toLocaleString() : "?"],
    ["polyhead", i.version],
  ];
  let html = '<dl class="kv">' + rows.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v ?? "?")}</dd>`).join("") + "</dl>";
  const tasks = i.tasks || [];
  if (tasks.length) {
    html += '<table class="tasks"><thead><tr><th>task</th><th>kind</th><th>labels</th></tr></thead><tbody>';
    for (const t of tasks) {
      const labels = t.kind === "similarity" ? `score range ${esc((t.score_range || []).join("–"))}` : esc((t.labels || []).join(", "));
      html += `<tr><td>${esc(t.name)}</td><td>${esc(t.kind)}</td><td class="labels">${labels}</td></tr>`;
    }
    html += "</tbody></table>";
  } else {
    html += "<p>No task heads: this server returns embeddings only.</p>";
  }
  html += '<div id="training-card"></div>';
  $("card-body").classList.remove("muted");
  $("card-body").innerHTML = html;
}

async function loadTraining() {
  let m;
  try {
    m = await call("GET", "/training/metrics");
  } catch (e) {
    return; // not every model folder holds training results
  }
  let html = "<h2>Evaluation (from training)</h2>";
  for (const [split, byTask] of [["dev (best checkpoint)", m.dev], ["test", m.test]]) {
    if (!byTask || !Object.keys(byTask).length) continue;
    html += `<table class="metrics"><thead><tr><th>${esc(split)}</th><th>metric</th><th>value</th></tr></thead><tbody>`;
    for (const [task, vals] of Object.entries(byTask)) {
      for (const [k, v] of Object.entries(vals)) {
        if (k === "n") continue;
        html += `<tr><td>${esc(task)}</td><td>${esc(k)}</td><td class="num">${Number(v).toFixed(4)}</td></tr>`;
      }
    }
    html += "</tbody></table>";
  }
  if (m.best_step !== undefined) html += `<p class="muted">best step ${esc(m.best_step)} of ${esc(m.global_step)}; ${m.seconds ? esc(Math.round(m.seconds)) + " s of training" : ""}</p>`;
  html += '<img class="curves" id="curves" alt="training curves" src="/training/curves.png" onerror="this.remove()">';
  $("training-card").innerHTML = html;
}

// -- predictions ----------------------------------------------------------------------------
function highlight(text, entities) {
  const ents = [...entities].sort((a, b) => a.start_char - b.start_char);
  let out = "", pos = 0;
  for (const e of ents) {
    if (e.start_char < pos) continue; // overlapping spans cannot come from BIO, but stay safe
    out += esc(text.slice(pos, e.start_char));
    out += `<mark class="ent" data-type="${esc(e.type)}" style="background:${colorFor(e.type)}" title="${esc(e.type)} ${(e.score * 100).toFixed(0)}%">` +
      `${esc(text.slice(e.start_char, e.end_char))}<span class="type">${esc(e.type)}</span></mark>`;
    pos = e.end_char;
  }
  return out + esc(text.slice(pos));
}

function bars(name, res) {
  const entries = Object.entries(res.scores).sort((a, b) => b[1] - a[1]).slice(0, 5);
  let html = `<div class="head" data-task="${esc(name)}"><h3>${esc(name)}</h3>`;
  entries.forEach(([label, p], i) => {
    html += `<div class="bar-row${i === 0 ? " top" : ""}"><span class="name" title="${esc(label)}">${esc(label)}</span>` +
      `<span class="bar"><span style="width:${(p * 100).toFixed(1)}%"></span></span><span class="num">${(p * 100).toFixed(1)}%</span></div>`;
  });
  return html + "</div>";
}

function kindOf(name) {
  const task = (info && info.tasks || []).find((t) => t.name === name);
  return task ? task.kind : "";
}

// A multi-label head: the labels over their thresholds as chips, then every label's probability.
function chips(name, res) {
  const on = res.labels.map((l) => `<span class="chip">${esc(l)}</span>`).join("") || '<span class="none">no label</span>';
  return bars(name, res).replace("</h3>", `</h3><div class="chips">${on}</div>`);
}

// A regression head: the predicted number (or numbers), in the data's units.
function numbers(name, res) {
  const rows = typeof res.score === "number" ? [["", res.score]] : Object.entries(res.scores || {});
  let html = `<div class="head" data-task="${esc(name)}"><h3>${esc(name)}</h3>`;
  rows.forEach(([label, v]) => {
    html += `<div class="number">${label ? `<span class="name">${esc(label)}</span> ` : ""}<strong>${Number(v).toPrecision(4)}</strong></div>`;
  });
  return html + "</div>";
}

function renderResults(results) {
  const types = new Set();
  let html = "";
  results.forEach((r, idx) => {
    const tasks = r.tasks || {};
    let entities = [];
    let heads = "";
    for (const [name, res] of Object.entries(tasks)) {
      if (res.entities) {
        entities = entities.concat(res.entities);
        res.entities.forEach((e) => types.add(e.type));
      } else if (kindOf(name) === "regression") {
        heads += numbers(name, res);
      } else if (Array.isArray(res.labels)) {
        heads += chips(name, res);
      } else if (res.scores) {
        heads += bars(name, res);
      }
    }
    html += `<div class="card" data-index="${idx}"><div class="text">${highlight(r.text, entities)}</div>` +
      (heads ? `<div class="heads">${heads}</div>` : "") + "</div>";
  });
  $("cards").innerHTML = html;
  const tokenTasks = (info && info.tasks || []).filter((t) => t.kind === "token");
  tokenTasks.forEach((t) => t.labels.forEach((l) => { if (l !== "O") types.add(l.slice(2)); }));
  $("legend").innerHTML = [...types].sort().map((t) => `<span class="ent" style="background:${colorFor(t)}">${esc(t)}</span>`).join("");
  $("results").hidden = false;
}

function renderHeatmap(texts, embeddings) {
  const unit = embeddings.map((v) => {
    const n = Math.sqrt(v.reduce((s, x) => s + x * x, 0)) || 1;
    return v.map((x) => x / n);
  });
  const sim = unit.map((a) => unit.map((b) => a.reduce((s, x, k) => s + x * b[k], 0)));
  const short = (t, i) => `${i + 1}. ${t.length > 40 ? t.slice(0, 38) + "…" : t}`;
  let html = '<table class="heat"><thead><tr><th></th>' + texts.map((t, i) => `<th title="${esc(t)}">${i + 1}</th>`).join("") + "</tr></thead><tbody>";
  sim.forEach((row, i) => {
    html += `<tr><th title="${esc(texts[i])}">${esc(short(texts[i], i))}</th>`;
    row.forEach((s) => {
      const x = Math.max(0, Math.min(1, s));
      const color = `rgba(51, 88, 212, ${(0.08 + 0.85 * x).toFixed(3)})`;
      html += `<td style="background:${color};color:${x > 0.55 ? "#fff" : "#1d1d1f"}">${s.toFixed(2)}</td>`;
    });
    html += "</tr>";
  });
  $("heatmap").innerHTML = html + "</tbody></table>";
  $("similarity").hidden = false;
}

async function run() {
  const texts = $("texts").value.split("\n").map((t) => t.trim()).filter((t) => t.length);
  showError("");
  if (!texts.length) {
    showError("Type at least one text (one per line).");
    return;
  }
  if ($("api-key").value) sessionStorage.setItem("polyhead-key", $("api-key").value);
  $("run").disabled = true;
  $("status").textContent = "predicting…";
  const t0 = performance.now();
  try {
    const data = await call("POST", "/predict", { texts, embeddings: true });
    renderResults(data.results);
    renderHeatmap(texts, data.results.map((r) => r.embedding));
    $("status").textContent = `${texts.length} text${texts.length > 1 ? "s" : ""} in ${Math.round(performance.now() - t0)} ms`;
    if (!info) loadInfo();
  } catch (e) {
    showError(e.message);
    $("status").textContent = "";
  } finally {
    $("run").disabled = false;
  }
}

// -- rank these: POST /rerank ---------------------------------------------------------------
async function rerank() {
  const query = $("rerank-query").value.trim();
  const documents = $("rerank-docs").value.split("\n").map((t) => t.trim()).filter((t) => t.length);
  const box = $("rerank-error");
  box.hidden = true;
  if (!query || !documents.length) {
    box.textContent = "Type a query and at least one document (one per line).";
    box.hidden = false;
    return;
  }
  $("rerank-run").disabled = true;
  $("rerank-status").textContent = "ranking…";
  const t0 = performance.now();
  try {
    const data = await call("POST", "/rerank", { query, documents, return_documents: true });
    // The server sorts by relevance_score, highest first; the bar shows the cosine on [0, 1].
    $("rerank-results").innerHTML = data.results.map((r) => {
      const width = (Math.max(0, Math.min(1, r.relevance_score)) * 100).toFixed(1);
      return `<li data-index="${r.index}"><span class="doc">${esc(r.document ? r.document.text : documents[r.index])}</span>` +
        `<span class="bar"><span style="width:${width}%"></span></span><span class="num">${r.relevance_score.toFixed(3)}</span></li>`;
    }).join("");
    $("rerank-results").hidden = false;
    $("rerank-status").textContent = `${documents.length} document${documents.length > 1 ? "s" : ""} in ${Math.round(performance.now() - t0)} ms`;
  } catch (e) {
    box.textContent = e.message;
    box.hidden = false;
    $("rerank-status").textContent = "";
  } finally {
    $("rerank-run").disabled = false;
  }
}

$("rerank-run").addEventListener("click", rerank);
$("run").addEventListener("click", run);
$("texts").addEventListener("keydown", (ev) => {
  if ((ev.ctrlKey || ev.metaKey) && ev.key === "Enter") {
    ev.preventDefault();
    run();
  }
});
loadInfo();
