// deepmmsearch web page: upload an image, ask, watch the trajectory stream in (SSE over fetch);
// browse past trajectories. All text goes through textContent; links only for http(s) URLs.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { imageUrl: null, authRequired: false };

function apiKey() { return ($("api-key").value || localStorage.getItem("dms-key") || "").trim(); }
function authHeaders() {
  const key = apiKey();
  return key ? { Authorization: "Bearer " + key } : {};
}
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}
function link(url, text) {
  if (!/^https?:\/\//i.test(url || "")) return el("span", null, text || url);
  const a = el("a", null, text || url);
  a.href = url; a.target = "_blank"; a.rel = "noopener noreferrer";
  return a;
}
function setStatus(text) { $("status").textContent = text; }
function showError(msg) { const e = $("error"); e.textContent = msg; e.hidden = !msg; }

async function apiFetch(url, opts = {}) {
  opts.headers = Object.assign({}, opts.headers || {}, authHeaders());
  const res = await fetch(url, opts);
  if (res.status === 401) { $("key-row").hidden = false; }
  return res;
}
async function errorText(res) {
  try { const j = await res.json(); return (j.error && j.error.message) || JSON.stringify(j); }
  catch (_) { return res.status + " " + res.statusText; }
}
// Images from /api/files need the key too: fetch them and show a blob URL.
async function loadImage(img, url) {
  if (!url) return;
  if (!apiKey()) { img.src = url; return; }
  const res = await apiFetch(url);
  if (res.ok) img.src = URL.createObjectURL(await res.blob());
}

// ---- rendering ---------------------------------------------------------------------------

function actionText(a) {
  if (a.kind === "text_search") return ["text search", a.argument];
  if (a.kind === "image_search") {
    if (a.whole_image) return ["image search", "the whole image"];
    return ["image search (crop)", a.argument];
  }
  if (a.kind === "answer") return ["answer", a.argument];
  return ["invalid turn", a.error || ""];
}

function turnNode(index) {
  let li = document.querySelector(`#turns > li[data-index="${index}"]`);
  if (!li) {
    li = el("li", "turn"); li.dataset.index = index;
    $("turns").appendChild(li);
  }
  return li;
}

function renderTurn(t) {
  const li = turnNode(t.index);
  li.replaceChildren();
  const a = t.action || {};
  if (a.reason) li.appendChild(el("div", "reason", a.reason));
  const [label, arg] = actionText(a);
  const act = el("div", "action" + (a.kind === "invalid" ? " invalid" : ""));
  act.append(el("span", "label", label + ": "), el("span", "query", arg));
  li.appendChild(act);
  if (t.tool_call || t.observation) renderObservation(t);
  return li;
}

function boxFigure(imageUrl, box, caption) {
  const fig = el("figure", "boxed");
  const wrap = el("div", "boxed-wrap");
  const img = el("img", "source"); img.alt = "the image with the searched box";
  const NS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("preserveAspectRatio", "none");
  const rect = document.createElementNS(NS, "rect");
  rect.setAttribute("class", "crop-box");
  rect.setAttribute("x", box.x1); rect.setAttribute("y", box.y1);
  rect.setAttribute("width", box.x2 - box.x1); rect.setAttribute("height", box.y2 - box.y1);
  svg.appendChild(rect);
  img.addEventListener("load", () =>
    svg.setAttribute("viewBox", `0 0 ${img.naturalWidth} ${img.naturalHeight}`));
  wrap.append(img, svg);
  fig.append(wrap, el("figcaption", null, caption));
  loadImage(img, imageUrl);
  return fig;
}

function renderToolCall(call, box) {
  const figs = el("div", "figures");
  if (call.kind === "image_search" && call.box && (state.imageUrl || call.boxed_url)) {
    const b = call.box;
    const caption = `box [${[b.x1, b.y1, b.x2, b.y2].map(Math.round).join(", ")}]` +
      (call.grounder ? ` from ${call.grounder}` : "");
    if (state.imageUrl) figs.appendChild(boxFigure(state.imageUrl, b, caption));
    else {
      const f = el("figure", "boxed"); const img = el("img", "source");
      f.append(img, el("figcaption", null, caption)); loadImage(img, call.boxed_url);
      figs.appendChild(f);
    }
  }
  if (call.crop_url) {
    const f = el("figure"); const img = el("img", "crop"); img.alt = "the crop that was searched";
    f.append(img, el("figcaption", null, "the crop searched")); loadImage(img, call.crop_url);
    figs.appendChild(f);
  }
  if (figs.childNodes.length) box.appendChild(figs);
  const meta = `${call.kind.replace("_", " ")} via ${call.backend}: ${call.hits.length} hits, ` +
    `${Math.round(call.latency_s * 1000)} ms` + (call.cache_hit ? " (cache)" : "");
  box.appendChild(el("div", "muted", meta));
  if (call.note) box.appendChild(el("div", "muted", call.note));
  if (call.error) box.appendChild(el("div", "error", "error: " + call.error));
  if (call.hits.length) {
    const ul = el("ul", "hits");
    for (const h of call.hits) {
      const li = el("li"); li.appendChild(link(h.url, h.title || h.url));
      if (h.snippet) li.appendChild(el("span", "muted", " — " + h.snippet));
      ul.appendChild(li);
    }
    box.appendChild(ul);
  }
  if (call.summary) box.appendChild(el("div", "summary", call.summary));
}

function renderObservation(t) {
  const li = turnNode(t.index);
  let box = li.querySelector(".tool");
  if (box) box.remove();
  box = el("div", "tool");
  if (t.tool_call) renderToolCall(t.tool_call, box);
  else if (t.observation) box.appendChild(el("div", "summary", t.observation));
  li.appendChild(box);
}

function renderPending(d) {
  const li = document.querySelector("#turns > li:last-child");
  if (!li) return;
  const p = el("div", "tool"); p.appendChild(el("span", "pending",
    d.kind === "image_search" ? "searching with the image…" : `searching for “${d.query}”…`));
  li.appendChild(p);
}

function renderAnswer(traj) {
  const box = $("answer");
  box.replaceChildren();
  box.appendChild(el("div", "answer-text", traj.answer || "(no answer)"));
  const meta = `stopped: ${traj.stop_reason} · ${traj.turns.length} turns · ` +
    `${(traj.wall_s || 0).toFixed(2)} s`;
  box.appendChild(el("div", "muted", meta));
  if (traj.verdict) box.appendChild(el("div", "muted",
    `verdict: ${traj.verdict.correct} (${traj.verdict.judge})`));
  if (traj.sources && traj.sources.length) {
    const ul = el("ul", "sources");
    for (const url of traj.sources) { const li = el("li"); li.appendChild(link(url)); ul.appendChild(li); }
    box.append(el("div", null, "Sources:"), ul);
  }
  box.hidden = false;
}

function reset(question) {
  $("turns").replaceChildren(); $("answer").hidden = true; showError("");
  const q = $("question-view"); q.textContent = question || ""; q.hidden = !question;
}

function renderTrajectory(traj) {
  reset(traj.question);
  state.imageUrl = traj.image_url || null;
  for (const t of traj.turns) renderTurn(t);
  renderAnswer(traj);
}

// ---- live ask (SSE over fetch) ------------------------------------------------------------

function handleEvent(kind, d) {
  if (kind === "start") { state.imageUrl = d.image_url; setStatus("running " + d.episode_id); }
  else if (kind === "turn") renderTurn(d);
  else if (kind === "tool_start") renderPending(d);
  else if (kind === "observation") renderObservation(d);
  else if (kind === "done") { renderAnswer(d); setStatus("done"); }
  else if (kind === "error") { showError(d.message); setStatus("failed"); }
}

async function readStream(res) {
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, i); buf = buf.slice(i + 2);
      let kind = "message", data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) kind = line.slice(6).trim();
        else if (line.startsWith("data:")) data += line.slice(5).trim();
      }
      if (data) handleEvent(kind, JSON.parse(data));
    }
  }
}

async function ask(ev) {
  ev.preventDefault();
  const question = $("question").value.trim();
  if (!question) { showError("Type a question first."); return; }
  reset(question);
  const form = new FormData();
  form.append("question", question);
  const file = $("image").files[0];
  if (file) form.append("image", file);
  $("ask").disabled = true; setStatus("asking…");
  try {
    const res = await apiFetch("/api/ask", { method: "POST", body: form });
    if (!res.ok) { showError(await errorText(res)); setStatus("refused"); return; }
    await readStream(res);
  } catch (err) {
    showError("connection failed: " + err); setStatus("failed");
  } finally { $("ask").disabled = false; }
}

// ---- past trajectories --------------------------------------------------------------------

async function loadFiles() {
  const res = await apiFetch("/api/trajectories");
  if (!res.ok) return;
  const sel = $("traj-files");
  sel.replaceChildren(el("option", null, "(choose a file)"));
  sel.firstChild.value = "";
  for (const f of (await res.json()).files) {
    const o = el("option", null, `${f.id} (${Math.ceil(f.size / 1024)} KB)`); o.value = f.id;
    sel.appendChild(o);
  }
}

async function loadRows() {
  const file = $("traj-files").value;
  const ul = $("traj-rows"); ul.replaceChildren();
  if (!file) return;
  const res = await apiFetch("/api/trajectories/rows?" + new URLSearchParams({ file }));
  if (!res.ok) { showError(await errorText(res)); return; }
  for (const r of (await res.json()).rows) {
    const li = el("li");
    if (r.error) { li.textContent = `line ${r.line}: ${r.error}`; li.className = "muted"; }
    else {
      const mark = r.correct === true ? "✓ " : r.correct === false ? "✗ " : "";
      const m = el("span", r.correct === true ? "ok" : r.correct === false ? "bad" : "", mark);
      li.append(m, el("span", null, r.question), el("span", "muted", ` → ${r.answer ?? "—"}`));
      li.addEventListener("click", () => openTrajectory(file, r.line));
    }
    ul.appendChild(li);
  }
}

async function openTrajectory(file, line) {
  const res = await apiFetch("/api/trajectories/one?" + new URLSearchParams({ file, line }));
  if (!res.ok) { showError(await errorText(res)); return; }
  renderTrajectory(await res.json());
  setStatus(`${file}:${line}`);
}

// ---- wiring -------------------------------------------------------------------------------

function preview() {
  const file = $("image").files[0];
  const img = $("preview");
  if (!file) { img.hidden = true; return; }
  img.src = URL.createObjectURL(file); img.hidden = false;
}

async function init() {
  $("api-key").value = localStorage.getItem("dms-key") || "";
  $("ask-form").addEventListener("submit", ask);
  $("image").addEventListener("change", preview);
  $("traj-files").addEventListener("change", loadRows);
  $("api-key").addEventListener("change", () => {
    localStorage.setItem("dms-key", $("api-key").value.trim()); loadFiles();
  });
  try {
    const info = await (await fetch("/api/info")).json();
    state.authRequired = info.auth_required;
    $("key-row").hidden = !info.auth_required;
    setStatus(`model ${info.model}`);
  } catch (_) { setStatus("server unreachable"); }
  loadFiles();
}

document.addEventListener("DOMContentLoaded", init);
