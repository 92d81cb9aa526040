// mu2 viewer: upload a CT, draw axial / coronal / sagittal slices with the heat map on top,
// show the report by region, the findings table and the downloads. Plain JS, no libraries:
// the page must work offline, so nothing is loaded from a CDN.
"use strict";

// Window presets (level, width) in HU: the usual abdominal, lung and bone windows.
const WINDOWS = {
  abdomen: { level: 40, width: 400 },
  lung: { level: -600, width: 1500 },
  bone: { level: 400, width: 1800 },
};
// Heat below this fraction of its display range is transparent (as the PNG montage).
const HEAT_FLOOR = 0.15;
// Stops of matplotlib's "inferno" colour map (the PNG montage's default), interpolated.
const INFERNO = [
  [0.0, 0, 0, 4], [0.25, 87, 16, 110], [0.5, 188, 55, 84], [0.75, 249, 142, 9], [1.0, 252, 255, 164],
];

const state = {
  file: null, doc: null, ct: null, heat: null, shape: [0, 0, 0], spacing: [1, 1, 1],
  window: "abdomen", overlay: true, opacity: 0.7, heatRange: [0, 255],
  index: { axial: 0, coronal: 0, sagittal: 0 },
};
const $ = (sel) => document.querySelector(sel);

function colourLut() {
  const lut = new Uint8Array(256 * 3);
  for (let i = 0; i < 256; i++) {
    const t = i / 255;
    let k = 0;
    while (k < INFERNO.length - 2 && t > INFERNO[k + 1][0]) k++;
    const [t0, ...a] = INFERNO[k];
    const [t1, ...b] = INFERNO[k + 1];
    const f = (t - t0) / (t1 - t0);
    for (let c = 0; c < 3; c++) lut[i * 3 + c] = Math.round(a[c] + f * (b[c] - a[c]));
  }
  return lut;
}
const HEAT_LUT = colourLut();

// Geometry of each view on the canonical RAS (x, y, z) grid. Axial and coronal are drawn
// in radiological convention (patient's right on the viewer's left, anterior / superior up);
// sagittal has anterior on the left and superior up.
function geometry(view) {
  const [X, Y, Z] = state.shape;
  const [sx, sy, sz] = state.spacing;
  switch (view) {
    case "axial": return { cols: X, rows: Y, depth: Z, colMm: sx, rowMm: sy,
      voxel: (r, c, i) => [X - 1 - c, Y - 1 - r, i] };
    case "coronal": return { cols: X, rows: Z, depth: Y, colMm: sx, rowMm: sz,
      voxel: (r, c, i) => [X - 1 - c, i, Z - 1 - r] };
    default: return { cols: Y, rows: Z, depth: X, colMm: sy, rowMm: sz,
      voxel: (r, c, i) => [i, Y - 1 - c, Z - 1 - r] };
  }
}

function offset(x, y, z) {
  const [, Y, Z] = state.shape;
  return (x * Y + y) * Z + z; // C order of (X, Y, Z)
}

function render(view) {
  const fig = document.querySelector(`.view[data-view="${view}"]`);
  if (!state.ct) return;
  const g = geometry(view);
  const i = state.index[view];
  const ctCanvas = fig.querySelector("canvas.ct");
  const heatCanvas = fig.querySelector("canvas.heat");
  for (const c of [ctCanvas, heatCanvas]) { c.width = g.cols; c.height = g.rows; }
  const { level, width } = WINDOWS[state.window];
  const lo = level - width / 2;
  const ctImg = ctCanvas.getContext("2d").createImageData(g.cols, g.rows);
  const heatImg = heatCanvas.getContext("2d").createImageData(g.cols, g.rows);
  const [hLo, hHi] = state.heatRange;
  const span = Math.max(hHi - hLo, 1);
  for (let r = 0; r < g.rows; r++) {
    for (let c = 0; c < g.cols; c++) {
      const [x, y, z] = g.voxel(r, c, i);
      const o = offset(x, y, z);
      const p = (r * g.cols + c) * 4;
      const v = Math.max(0, Math.min(255, Math.round(((state.ct[o] - lo) / width) * 255)));
      ctImg.data[p] = ctImg.data[p + 1] = ctImg.data[p + 2] = v;
      ctImg.data[p + 3] = 255;
      if (state.heat) {
        const rel = Math.max(0, Math.min(1, (state.heat[o] - hLo) / span));
        const k = Math.round(rel * 255);
        heatImg.data[p] = HEAT_LUT[k * 3];
        heatImg.data[p + 1] = HEAT_LUT[k * 3 + 1];
        heatImg.data[p + 2] = HEAT_LUT[k * 3 + 2];
        heatImg.data[p + 3] = Math.round(Math.max(0, (rel - HEAT_FLOOR) / (1 - HEAT_FLOOR)) * 255);
      }
    }
  }
  ctCanvas.getContext("2d").putImageData(ctImg, 0, 0);
  heatCanvas.getContext("2d").putImageData(heatImg, 0, 0);
  heatCanvas.style.opacity = String(state.opacity);
  heatCanvas.hidden = !(state.overlay && state.heat);
  fig.querySelector(".idx").textContent = `${i + 1} / ${g.depth}`;
  fit(fig, g);
}

// Scale the canvases to the box with the true millimetre aspect ratio of the slice.
function fit(fig, g) {
  const box = fig.querySelector(".stack");
  const w = g.cols * g.colMm, h = g.rows * g.rowMm;
  const s = Math.min(box.clientWidth / w, box.clientHeight / h);
  for (const c of fig.querySelectorAll("canvas")) {
    c.style.width = `${w * s}px`;
    c.style.height = `${h * s}px`;
  }
}

function renderAll() {
  for (const v of ["axial", "coronal", "sagittal"]) render(v);
}

function setStatus(text, kind) {
  const el = $("#status");
  el.textContent = text;
  el.className = `status ${kind || ""}`;
}

// Display range of the heat: median of the positive values to the maximum (as the PNG),
// since relevance spreads over every patch and a [0, max] scale would hide the contrast.
function heatRange(heat) {
  const hist = new Uint32Array(256);
  for (let k = 0; k < heat.length; k++) hist[heat[k]]++;
  let positive = heat.length - hist[0], max = 0;
  for (let k = 255; k > 0; k--) if (hist[k]) { max = k; break; }
  let seen = 0, median = 0;
  for (let k = 1; k < 256; k++) {
    seen += hist[k];
    if (seen * 2 >= positive) { median = k; break; }
  }
  return max > median ? [median, max] : [0, Math.max(max, 1)];
}

function showReport(doc) {
  const warnings = $("#warnings");
  warnings.replaceChildren();
  // doc.warnings holds the model card's warning, non-CT, forced regions, dropped findings
  // and the reader's warnings (doc.input.warnings) once each.
  const all = [...(doc.warnings || []), ...((doc.input && doc.input.warnings) || [])];
  for (const w of [...new Set(all)]) {
    const li = document.createElement("li");
    li.textContent = w;
    warnings.append(li);
  }
  warnings.hidden = !warnings.children.length;
  const box = $("#report");
  box.replaceChildren();
  box.classList.remove("muted");
  for (const s of doc.sections) {
    const sec = document.createElement("section");
    sec.dataset.region = s.region || "answer";
    const h = document.createElement("h3");
    h.textContent = (s.region || "answer").toUpperCase();
    const q = document.createElement("p");
    q.className = "q";
    q.textContent = s.question;
    const t = document.createElement("p");
    t.className = "text" + (s.text ? "" : " empty");
    t.textContent = s.text || "(the model gave an empty answer)";
    sec.append(h, q, t);
    for (const n of s.notes || []) {
      const p = document.createElement("p");
      p.className = "muted";
      p.textContent = `mu2 note: ${n}`;
      sec.append(p);
    }
    box.append(sec);
  }
  const body = $("#findings tbody");
  body.replaceChildren();
  if (!doc.findings.length) {
    const tr = document.createElement("tr");
    const td = document.createElement("td");
    td.colSpan = 5;
    td.className = "muted";
    td.textContent = "No structured findings in the report.";
    tr.append(td);
    body.append(tr);
  }
  for (const f of doc.findings) {
    const tr = document.createElement("tr");
    const size = f.size_mm == null ? "" : `${f.size_mm} mm`;
    const name = f.label || f.finding;  // human-readable name, not the catalogue code
    const what = f.count > 1 ? `${name} ×${f.count}` : name;
    for (const v of [f.organ, what, f.side || "", size, f.severity || ""]) {
      const td = document.createElement("td");
      td.textContent = v;
      tr.append(td);
    }
    tr.title = f.description;
    body.append(tr);
  }
  const links = { "#dl-json": "json", "#dl-fhir": "fhir", "#dl-heat": "heatmap_nifti" };
  for (const [sel, key] of Object.entries(links)) {
    const a = $(sel);
    const href = doc.downloads[key];
    if (href) {
      a.href = href;
      a.download = doc.download_names[key];
      a.setAttribute("aria-disabled", "false");
    } else {
      a.removeAttribute("href");
      a.setAttribute("aria-disabled", "true");
    }
  }
  const t = doc.timings;
  const parts = ["queue", "load", "prepare", "encode", "generate", "total"]
    .filter((k) => k in t).map((k) => `${k} ${t[k].toFixed(2)} s`);
  const model = doc.model && doc.model.id ? doc.model.id : doc.model;
  $("#timings").textContent = `${model} · ${parts.join(" · ")}`;
}

async function fetchBytes(url) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: ${res.status}`);
  return res.arrayBuffer();
}

async function showVolume(doc) {
  const v = doc.viewer;
  // Int16Array reads the platform byte order; the server sends little-endian, as every
  // browser platform in use is.
  state.ct = new Int16Array(await fetchBytes(v.ct));
  state.heat = v.heat ? new Uint8Array(await fetchBytes(v.heat)) : null;
  state.shape = v.shape;
  state.spacing = v.spacing_mm;
  state.heatRange = state.heat ? heatRange(state.heat) : [0, 255];
  // Start on the peak of the heat map (on the RAS grid the viewer shows) or the middle of
  // the scan; the sagittal view starts at the middle (the midline), never at an edge.
  const peak = doc.heatmap
    ? doc.heatmap.peak_voxel_canonical.map((p, k) =>
        Math.min(Math.floor(p / v.step[k]), v.shape[k] - 1))
    : v.shape.map((n) => Math.floor(n / 2));
  state.index = { sagittal: Math.floor(v.shape[0] / 2), coronal: peak[1], axial: peak[2] };
  for (const fig of document.querySelectorAll(".view")) {
    const g = geometry(fig.dataset.view);
    const slider = fig.querySelector(".slider");
    slider.max = String(g.depth - 1);
    slider.value = String(state.index[fig.dataset.view]);
  }
  $("#legend").hidden = !state.heat;
  renderAll();
}

function submit() {
  if (!state.file || document.body.dataset.state === "busy") return;  // one run per request
  const form = new FormData();
  form.append("file", state.file, state.file.name);
  const q = $("#question").value.trim();
  if (q) form.append("question", q);
  form.append("region", $("#region").value);
  form.append("heatmap", $("#want-heat").checked ? "true" : "false");
  // both off unless ticked: a refusal (422) names the box to tick; the report then warns
  if ($("#force").checked) form.append("force", "true");
  if ($("#allow-non-ct").checked) form.append("allow_non_ct", "true");
  const xhr = new XMLHttpRequest();
  xhr.open("POST", "/api/report");
  // The server hands the page its per-process API token; every POST must carry it.
  const token = document.querySelector('meta[name="mu2-token"]');
  if (token) xhr.setRequestHeader("X-Mu2-Token", token.content);
  xhr.responseType = "json";
  document.body.dataset.state = "busy";
  $("#run").disabled = true;
  setStatus("uploading…", "busy");
  xhr.upload.onprogress = (e) => {
    if (e.lengthComputable) setStatus(`uploading ${Math.round((100 * e.loaded) / e.total)}%`, "busy");
  };
  xhr.upload.onload = () => setStatus("writing the report (waits if the model is busy)…", "busy");
  const fail = (msg) => {
    setStatus(msg, "error");
    document.body.dataset.state = "error";
    $("#run").disabled = false;
  };
  xhr.onerror = () => fail("network error: is `mu2 serve` still running?");
  xhr.onload = async () => {
    const doc = xhr.response;
    if (xhr.status !== 200) {
      fail(`${xhr.status}: ${(doc && doc.detail) || xhr.statusText}`);
      return;
    }
    try {
      state.doc = doc;
      showReport(doc);
      await showVolume(doc);
      setStatus(`report ready for ${doc.filename}`, "");
      document.body.dataset.state = "ready";
      $("#run").disabled = false;
    } catch (err) {
      fail(`could not show the result: ${err.message}`);
    }
  };
  xhr.send(form);
}

function chooseFile(file) {
  if (!file) return;
  state.file = file;
  $("#file-name").textContent = `${file.name} (${(file.size / 1048576).toFixed(1)} MB)`;
  $("#run").disabled = false;  // the report runs on the button, once
}

function pick(fig, event) {
  if (!state.ct) return;
  const view = fig.dataset.view;
  const g = geometry(view);
  const rect = fig.querySelector("canvas.ct").getBoundingClientRect();
  const c = Math.floor(((event.clientX - rect.left) / rect.width) * g.cols);
  const r = Math.floor(((event.clientY - rect.top) / rect.height) * g.rows);
  if (c < 0 || r < 0 || c >= g.cols || r >= g.rows) return;
  const [x, y, z] = g.voxel(r, c, state.index[view]);
  const next = { sagittal: x, coronal: y, axial: z };
  for (const other of ["axial", "coronal", "sagittal"]) {
    if (other === view) continue;
    state.index[other] = next[other];
    document.querySelector(`.view[data-view="${other}"] .slider`).value = String(next[other]);
    render(other);
  }
}

async function loadModelInfo() {
  try {
    const info = await (await fetch("/api/model")).json();
    const tok = info.tokenizer || {};
    $("#model-info").textContent =
      `model ${info.model} · tokenizer ${tok.preset || "?"}` +
      (tok.kind && tok.kind !== tok.preset ? ` (${tok.kind})` : "") +
      ` · LLM ${info.llm || "?"} · findings read offline (${info.judge.name} judge)` +
      ` · trained on ${info.training_data || "unknown data"}`;
    if (info.card_warning) $("#card-warning").textContent = `Model card: ${info.card_warning}.`;
  } catch (err) {
    $("#model-info").textContent = "model information unavailable";
  }
}

function init() {
  const drop = $("#drop");
  $("#file").addEventListener("change", (e) => chooseFile(e.target.files[0]));
  for (const ev of ["dragenter", "dragover"]) {
    drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  for (const ev of ["dragleave", "drop"]) {
    drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.remove("over"); });
  }
  drop.addEventListener("drop", (e) => chooseFile(e.dataTransfer.files[0]));
  // A file dropped anywhere else should not make the browser navigate away.
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => e.preventDefault());
  $("#run").addEventListener("click", submit);
  for (const b of document.querySelectorAll("#windows button")) {
    b.addEventListener("click", () => {
      state.window = b.dataset.window;
      for (const o of document.querySelectorAll("#windows button")) o.classList.toggle("on", o === b);
      renderAll();
    });
  }
  $("#overlay").addEventListener("change", (e) => { state.overlay = e.target.checked; renderAll(); });
  $("#opacity").addEventListener("input", (e) => {
    state.opacity = Number(e.target.value) / 100;
    for (const c of document.querySelectorAll("canvas.heat")) c.style.opacity = String(state.opacity);
  });
  for (const fig of document.querySelectorAll(".view")) {
    fig.querySelector(".slider").addEventListener("input", (e) => {
      state.index[fig.dataset.view] = Number(e.target.value);
      render(fig.dataset.view);
    });
    fig.querySelector(".stack").addEventListener("click", (e) => pick(fig, e));
  }
  window.addEventListener("resize", () => {
    if (!state.ct) return;
    for (const fig of document.querySelectorAll(".view")) fit(fig, geometry(fig.dataset.view));
  });
  loadModelInfo();
}

document.addEventListener("DOMContentLoaded", init);
