// stylegan serve: the page. Plain JavaScript, no build step, nothing loaded from the network.
"use strict";

const $ = (id) => document.getElementById(id);
const client = "tab-" + Math.random().toString(36).slice(2, 10);
const state = { networks: [], x: 0, y: 0, inFlight: false, dirty: false, seq: 0, shown: 0, frameTimes: [] };

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

async function api(path, options = {}) {
  const response = await fetch(path, options);
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try { message = (await response.json()).error || message; } catch (e) { /* not JSON */ }
    throw new Error(message);
  }
  return response;
}

function current() {
  return state.networks.find((n) => n.name === $("network").value);
}

function numberOrNull(id) {
  const v = $(id).value.trim();
  return v === "" ? null : Number(v);
}

function params(extra = {}) {
  const net = current();
  const p = {
    client, network: net ? net.name : null,
    x: Math.round(state.x * 1000) / 1000, y: Math.round(state.y * 1000) / 1000,
    latent: $("latent").value || null, latent_index: Number($("latent-index").value),
    psi: parseFloat($("psi").value), cutoff: numberOrNull("cutoff"),
    class_idx: net && net.c_dim ? Number($("class").value) : null,
    noise_mode: $("noise-mode").value, noise_seed: Number($("noise-seed").value),
    mix_seed: $("mix").checked ? Number($("mix-seed").value) : null,
    mix_layers: [Number($("mix-lo").value), Number($("mix-hi").value)],
    translate: [parseFloat($("translate-x").value), parseFloat($("translate-y").value)],
    rotate: parseFloat($("rotate").value),
    layer: $("layer").value || null, channel: Number($("channel").value),
    format: $("format").value, quality: Number($("quality").value),
  };
  return Object.assign(p, extra);
}

// One request in flight per tab; changes made meanwhile send one more request when it returns (the server also
// replaces a tab's waiting request by its newer one), so dragging never queues stale frames.
function requestFrame() {
  if (!current()) return;
  if (state.inFlight) { state.dirty = true; return; }
  state.inFlight = true;
  state.dirty = false;
  const p = params();
  const seq = ++state.seq;
  const t0 = performance.now();
  api("/api/render", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(p) })
    .then(async (response) => {
      if (response.status === 204) return;  // replaced by a newer request
      const blob = await response.blob();
      if (seq < state.shown) return;
      state.shown = seq;
      const img = $("frame");
      const old = img.src;
      await new Promise((resolve) => { img.onload = resolve; img.onerror = resolve; img.src = URL.createObjectURL(blob); });
      if (old) URL.revokeObjectURL(old);
      img.dataset.params = JSON.stringify(p);
      img.dataset.seq = String(seq);
      const roundTrip = performance.now() - t0;
      const now = performance.now();
      state.frameTimes = state.frameTimes.filter((t) => now - t < 2000).concat([now]);
      const fps = state.frameTimes.length > 1 ? (state.frameTimes.length - 1) / ((now - state.frameTimes[0]) / 1000) : 0;
      $("latency").textContent = `render ${response.headers.get("X-Render-Ms")} ms · server ${response.headers.get("X-Server-Ms")} ms · ` +
        `round trip ${roundTrip.toFixed(1)} ms · ${fps.toFixed(1)} fps · ${(blob.size / 1024).toFixed(1)} KiB ${p.format}`;
      showError("");
    })
    .catch((e) => showError(e.message))
    .finally(() => {
      state.inFlight = false;
      if (state.dirty) requestFrame();
    });
}

function setPosition(x, y) {
  state.x = Math.max(0, x);
  state.y = Math.max(0, y);
  $("position").textContent = `x ${state.x.toFixed(3)}, y ${state.y.toFixed(3)}`;
  if (Number.isInteger(state.x) && state.y === 0) $("seed").value = String(state.x);
  requestFrame();
}

function configure() {
  const net = current();
  if (!net) return;
  $("class-row").hidden = !net.c_dim;
  $("class").max = Math.max(0, net.c_dim - 1);
  $("transform").hidden = !net.has_transform;
  $("mix-lo").max = $("mix-hi").max = net.num_ws - 1;
  $("mix-hi").value = Math.min(Number($("mix-hi").value), net.num_ws - 1);
  $("cutoff").max = net.num_ws;
  const layer = $("layer");
  layer.replaceChildren(new Option("image", ""), ...net.layers.map((n) => new Option(n, n)));
  const latent = $("latent");
  const chosen = latent.value;
  latent.replaceChildren(new Option("seeds", ""), ...Object.keys(net.latents).map((k) => new Option(`${k} (${net.latents[k]} w)`, k)));
  latent.value = net.latents[chosen] ? chosen : "";
  $("latent-index-row").hidden = !latent.value;
  document.title = `stylegan serve · ${net.name}`;
}

async function refresh(select) {
  const info = await (await api("/api/networks")).json();
  state.networks = info.networks;
  const sel = $("network");
  const keep = select || sel.value;
  sel.replaceChildren(...state.networks.map((n) => new Option(`${n.name} (${n.family}, ${n.img_resolution}²)`, n.name)));
  if (state.networks.some((n) => n.name === keep)) sel.value = keep;
  configure();
}

function download(blob, name) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

function frameName(p) {
  return p.latent ? `${p.latent}-${p.latent_index}` : `seed${p.x}-${p.y}`;
}

async function pollProjection(id) {
  const job = await (await api(`/api/project/${id}`)).json();
  $("proj-progress").value = job.num_steps ? job.step / job.num_steps : 0;
  $("proj-status").textContent = `step ${job.step}/${job.num_steps}` +
    (job.distance === null ? "" : `, distance ${job.distance.toFixed(4)}`) + `, ${job.seconds} s`;
  if (job.error) { showError(`projection: ${job.error}`); return; }
  if (!job.done) { setTimeout(() => pollProjection(id).catch((e) => showError(e.message)), 500); return; }
  $("proj-progress").hidden = true;
  if (job.latent) {
    await refresh();
    $("latent").value = job.latent;
    configure();
    requestFrame();
  }
}

function bind() {
  for (const [id, out] of [["psi", "psi-value"], ["translate-x", "translate-x-value"], ["translate-y", "translate-y-value"], ["rotate", "rotate-value"]]) {
    $(id).addEventListener("input", () => { $(out).textContent = $(id).value; requestFrame(); });
  }
  for (const id of ["cutoff", "class", "noise-mode", "noise-seed", "mix", "mix-seed", "mix-lo", "mix-hi", "layer", "channel",
    "format", "quality", "latent-index"]) {
    $(id).addEventListener("input", requestFrame);
  }
  $("network").addEventListener("change", () => { configure(); requestFrame(); });
  $("latent").addEventListener("change", () => { $("latent-index-row").hidden = !$("latent").value; requestFrame(); });
  $("seed").addEventListener("change", () => setPosition(Number($("seed").value), 0));
  $("seed-prev").addEventListener("click", () => setPosition(Math.floor(state.x) - (Number.isInteger(state.x) ? 1 : 0), 0));
  $("seed-next").addEventListener("click", () => setPosition(Math.floor(state.x) + 1, 0));

  const stage = $("stage");
  let drag = null;
  stage.addEventListener("pointerdown", (e) => { drag = { x: e.clientX, y: e.clientY, sx: state.x, sy: state.y }; stage.setPointerCapture(e.pointerId); });
  stage.addEventListener("pointermove", (e) => {
    if (!drag) return;
    const scale = 2 / stage.clientWidth;  // two seeds per image width
    setPosition(drag.sx - (e.clientX - drag.x) * scale, drag.sy - (e.clientY - drag.y) * scale);
  });
  stage.addEventListener("pointerup", () => { drag = null; });

  $("load").addEventListener("click", async () => {
    try {
      const response = await api("/api/networks", { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ path: $("load-path").value }) });
      const info = await response.json();
      await refresh(info.name);
      requestFrame();
      showError("");
    } catch (e) { showError(e.message); }
  });
  $("save-image").addEventListener("click", async () => {
    try {
      const p = params({ format: "png", client: client + "-save" });
      download(await (await api("/api/render", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(p) })).blob(),
        frameName(p) + ".png");
    } catch (e) { showError(e.message); }
  });
  $("save-w").addEventListener("click", async () => {
    try {
      const p = params();
      download(await (await api("/api/ws", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(p) })).blob(),
        frameName(p) + ".npz");
    } catch (e) { showError(e.message); }
  });
  $("w-file").addEventListener("change", async () => {
    const file = $("w-file").files[0];
    if (!file) return;
    try {
      const net = current();
      const info = await (await api(`/api/latents?network=${encodeURIComponent(net.name)}&filename=${encodeURIComponent(file.name)}`,
        { method: "POST", body: file })).json();
      await refresh();
      $("latent").value = info.latent;
      configure();
      requestFrame();
    } catch (e) { showError(e.message); }
  });
  $("project").addEventListener("click", async () => {
    const file = $("image-file").files[0];
    if (!file) { showError("project: choose an image first"); return; }
    try {
      const net = current();
      const q = new URLSearchParams({ network: net.name, steps: $("proj-steps").value, distance: $("proj-distance").value,
        space: $("proj-space").value, class_idx: net.c_dim ? $("class").value : "" });
      const job = await (await api(`/api/project?${q}`, { method: "POST", body: file })).json();
      $("proj-progress").hidden = false;
      showError("");
      pollProjection(job.id).catch((e) => showError(e.message));
    } catch (e) { showError(e.message); }
  });
}

bind();
refresh().then(requestFrame).catch((e) => showError(e.message));
