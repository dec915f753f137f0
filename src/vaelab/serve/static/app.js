// vaelab explorer: plain JavaScript, no build step.  Talks only to its own server's /api/.
"use strict";

const RANGE = 3;  // the pad spans [-3, 3] in each chosen latent dimension (3 prior standard deviations)
const state = { run: null, info: null, base: [], label: 0, seed: 0, busy: false, pending: null };

const $ = (id) => document.getElementById(id);
const api = (path) => `/api/runs/${encodeURIComponent(state.run)}/${path}`;
const num = (v, d = 2) => (typeof v === "number" ? v.toFixed(d) : "–");

function showError(msg) {
  const el = $("error");
  el.textContent = msg || "";
  el.hidden = !msg;
}

async function fetchJSON(url) {
  const res = await fetch(url);
  const body = await res.json();
  if (!res.ok) throw new Error(body.error || res.statusText);
  return body;
}

// Show a PNG from the server in an <img>; resolves once the image has decoded.
async function setImage(img, url, options) {
  const res = await fetch(url, options);
  if (!res.ok) {
    let msg = res.statusText;
    try { msg = (await res.json()).error || msg; } catch (e) { /* not JSON */ }
    throw new Error(msg);
  }
  const blob = await res.blob();
  const old = img.src;
  img.src = URL.createObjectURL(blob);
  await img.decode();
  if (old && old.startsWith("blob:")) URL.revokeObjectURL(old);
  img.dataset.url = url;
}

// --- the run list ---------------------------------------------------------------------------

async function loadRuns() {
  const data = await fetchJSON("/api/runs");
  $("target").textContent = `${data.target}: ${data.runs.length} run(s)`;
  const body = $("runs").querySelector("tbody");
  body.textContent = "";
  for (const r of data.runs) {
    const tr = document.createElement("tr");
    tr.dataset.id = r.id;
    tr.className = r.explorable ? "run" : "run unavailable";
    const status = r.read_only ? `${r.status} (read-only)` : r.status;
    for (const text of [r.label, status, num(r.elbo), num(r.log_likelihood), num(r.fd)]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.appendChild(td);
    }
    if (r.explorable) tr.addEventListener("click", () => select(r.id));
    else tr.title = "no weights here";
    body.appendChild(tr);
  }
  const wanted = new URLSearchParams(location.hash.slice(1)).get("run");
  const first = data.runs.find((r) => r.id === wanted && r.explorable)
    || (data.runs.length === 1 && data.runs[0].explorable ? data.runs[0] : null);
  if (first) await select(first.id);
}

// --- one run --------------------------------------------------------------------------------

async function select(id) {
  showError("");
  state.run = id;
  for (const tr of document.querySelectorAll("#runs tr.run")) tr.classList.toggle("selected", tr.dataset.id === id);
  let info;
  try { info = await fetchJSON(api("info")); } catch (e) { showError(e.message); return; }
  state.info = info;
  state.base = new Array(info.latent).fill(0);
  state.label = 0;
  $("explore").hidden = false;
  $("run-title").textContent = info.label;
  $("run-meta").textContent = `latent size ${info.latent}, images ${info.image_shape.join("×")}, epoch ${info.epoch} `
    + `of ${info.epochs}; ELBO ${num(info.elbo)}, log p(x) ${num(info.log_likelihood)}, FD ${num(info.fd)}`;
  const ro = $("read-only");
  ro.hidden = !info.read_only;
  ro.textContent = info.read_only ? `Still training: showing its newest checkpoint (epoch ${info.epoch}), read-only.` : "";
  fillDims(info.latent);
  $("digits-panel").hidden = !info.conditional;
  $("samples-panel").hidden = info.conditional;
  if (info.conditional) buildDigits(info.num_classes);
  drawPad(null);
  $("rest-help").hidden = info.latent <= 2;
  try {
    await Promise.all([decodeAt(0.5, 0.5), info.conditional ? pickDigit(0) : resample(), loadStrip(info.strip)]);
  } catch (e) { showError(e.message); }
}

function fillDims(latent) {
  for (const [id, chosen] of [["dim-x", 0], ["dim-y", Math.min(1, latent - 1)]]) {
    const sel = $(id);
    sel.textContent = "";
    for (let i = 0; i < latent; i++) {
      const opt = document.createElement("option");
      opt.value = String(i);
      opt.textContent = `z[${i}]`;
      sel.appendChild(opt);
    }
    sel.value = String(chosen);
    sel.disabled = latent <= 1;
  }
}

// --- the latent pad -------------------------------------------------------------------------

function padLatent(fx, fy) {
  const z = state.base.slice();
  z[Number($("dim-x").value)] = (2 * fx - 1) * RANGE;
  if (state.info.latent > 1) z[Number($("dim-y").value)] = (1 - 2 * fy) * RANGE;  // up is +
  return z;
}

function drawPad(point) {
  const c = $("pad"), g = c.getContext("2d");
  g.clearRect(0, 0, c.width, c.height);
  g.strokeStyle = "#ddd";
  for (let i = 1; i < 6; i++) {
    const p = (i / 6) * c.width;
    g.beginPath(); g.moveTo(p, 0); g.lineTo(p, c.height); g.moveTo(0, p); g.lineTo(c.width, p); g.stroke();
  }
  g.strokeStyle = "#999";
  g.beginPath(); g.moveTo(c.width / 2, 0); g.lineTo(c.width / 2, c.height);
  g.moveTo(0, c.height / 2); g.lineTo(c.width, c.height / 2); g.stroke();
  if (point) {
    g.fillStyle = "#2f6fed";
    g.beginPath(); g.arc(point[0] * c.width, point[1] * c.height, 5, 0, 2 * Math.PI); g.fill();
  }
}

// One decode in flight at a time; the newest pointer position waits and wins.
async function decodeAt(fx, fy) {
  state.pending = [fx, fy];
  if (state.busy) return;
  state.busy = true;
  try {
    while (state.pending) {
      const [x, y] = state.pending;
      state.pending = null;
      const z = padLatent(x, y);
      const label = state.info.conditional ? `&y=${state.label}` : "";
      drawPad([x, y]);
      $("pad-z").textContent = `z[${$("dim-x").value}] = ${z[Number($("dim-x").value)].toFixed(2)}`
        + (state.info.latent > 1 ? `, z[${$("dim-y").value}] = ${z[Number($("dim-y").value)].toFixed(2)}` : "");
      await setImage($("decoded"), api(`decode.png?z=${z.map((v) => v.toFixed(4)).join(",")}${label}`));
      $("decoded").dataset.z = z.join(",");
    }
  } catch (e) {
    showError(e.message);
  } finally {
    state.busy = false;
  }
}

function padPoint(ev) {
  const r = $("pad").getBoundingClientRect();
  return [Math.min(1, Math.max(0, (ev.clientX - r.left) / r.width)), Math.min(1, Math.max(0, (ev.clientY - r.top) / r.height))];
}

$("pad").addEventListener("pointermove", (ev) => { if (state.info) decodeAt(...padPoint(ev)); });
$("pad").addEventListener("pointerdown", (ev) => { if (state.info) decodeAt(...padPoint(ev)); });

// --- samples --------------------------------------------------------------------------------

function buildDigits(n) {
  const box = $("digits");
  box.textContent = "";
  for (let c = 0; c < n; c++) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = String(c);
    b.dataset.label = String(c);
    b.addEventListener("click", () => pickDigit(c).catch((e) => showError(e.message)));
    box.appendChild(b);
  }
}

async function pickDigit(c) {
  state.label = c;
  for (const b of $("digits").querySelectorAll("button")) b.classList.toggle("chosen", Number(b.dataset.label) === c);
  await setImage($("class-samples"), api(`samples.png?n=16&y=${c}&seed=${state.seed}`));
  $("class-samples").dataset.label = String(c);
}

async function resample() {
  await setImage($("prior-samples"), api(`samples.png?n=16&seed=${state.seed}`));
}

$("resample").addEventListener("click", () => { state.seed += 1; resample().catch((e) => showError(e.message)); });

// --- the test strip -------------------------------------------------------------------------

async function loadStrip(n) {
  const box = $("strip");
  box.textContent = "";
  const loads = [];
  for (let i = 0; i < n; i++) {
    const img = document.createElement("img");
    img.alt = `test image ${i}`;
    img.dataset.index = String(i);
    img.addEventListener("click", () => chooseTest(i).catch((e) => showError(e.message)));
    box.appendChild(img);
    loads.push(setImage(img, api(`test.png?i=${i}`)));
  }
  await Promise.all(loads);
}

async function chooseTest(i) {
  for (const img of $("strip").querySelectorAll("img")) img.classList.toggle("chosen", img.dataset.index === String(i));
  await Promise.all([setImage($("test-original"), api(`test.png?i=${i}`)),
                     setImage($("test-recon"), api(`reconstruct.png?i=${i}`))]);
  const code = await fetchJSON(api(`encode?i=${i}`));
  state.base = code.z;
  if (state.info.conditional && code.y >= 0) await pickDigit(code.y);
  $("rest-help").textContent = `Other dimensions: held at test image ${i}'s code E[z|x].`;
}

// --- drawing --------------------------------------------------------------------------------

const pen = { down: false, last: null };

function drawStroke(ev) {
  const c = $("draw"), g = c.getContext("2d"), r = c.getBoundingClientRect();
  const p = [(ev.clientX - r.left) * (c.width / r.width), (ev.clientY - r.top) * (c.height / r.height)];
  g.strokeStyle = "#fff"; g.lineWidth = c.width / 11; g.lineCap = "round"; g.lineJoin = "round";
  g.beginPath();
  g.moveTo(...(pen.last || p));
  g.lineTo(...p);
  g.stroke();
  pen.last = p;
}

// The drawing at the model's resolution: grey levels in [0, 1], in (C, H, W) order.
function drawnPixels() {
  const [ch, h, w] = state.info.image_shape;
  const small = document.createElement("canvas");
  small.width = w; small.height = h;
  const g = small.getContext("2d");
  g.imageSmoothingEnabled = true;
  g.drawImage($("draw"), 0, 0, w, h);
  const rgba = g.getImageData(0, 0, w, h).data;
  const out = [];
  for (let c = 0; c < ch; c++) for (let i = 0; i < h * w; i++) out.push(rgba[4 * i + (ch === 3 ? c : 0)] / 255);
  return out;
}

async function reconstructDrawing() {
  const body = JSON.stringify({ pixels: drawnPixels(), y: state.info.conditional ? state.label : null });
  await setImage($("drawn-recon"), api("reconstruct.png"),
                 { method: "POST", headers: { "Content-Type": "application/json" }, body });
}

$("draw").addEventListener("pointerdown", (ev) => { pen.down = true; pen.last = null; drawStroke(ev); });
$("draw").addEventListener("pointermove", (ev) => { if (pen.down) drawStroke(ev); });
for (const type of ["pointerup", "pointerleave"]) {
  $("draw").addEventListener(type, () => {
    if (!pen.down) return;
    pen.down = false;
    if (state.info) reconstructDrawing().catch((e) => showError(e.message));
  });
}
$("clear").addEventListener("click", () => {
  const c = $("draw");
  c.getContext("2d").clearRect(0, 0, c.width, c.height);
});

loadRuns().catch((e) => showError(e.message));
