// The page: wires the toolbar, the keys, the probe and the test hook `window.viewer` to the frame store and the
// stage. URL parameters: traj=ID, field=NAME, render=1 (no toolbar: what `meshsim render` captures), aa=0|1.
import { FrameStore, enc } from "./frames.js";
import { LEGEND_HEIGHT, categoriesHeight, drawCategories, drawLegend } from "./legend.js";
import { drawPlot } from "./plot.js";
import { Stage } from "./stage.js";
import { bindControls } from "./controls.js";
import { exposeHook } from "./hook.js";
import { DEFAULT_FPS, FPS_CHOICES, ratioText } from "./timing.js";

const PREFETCH = 8; // frames requested ahead while playing
const LEGEND_WIDTH = 260;
// How fields are shown where SI would read badly: learned-model errors are millimetres.
const DISPLAY = { error: { unit: "mm", scale: 1000 } };
// Node types (meshsim.datasets.NodeType values), sRGB: a categorical palette, not a colour bar.
const NODE_TYPE_SRGB = {
  0: [0.62, 0.66, 0.74], 1: [0.95, 0.55, 0.20], 2: [0.35, 0.70, 0.90], 3: [0.89, 0.25, 0.30],
  4: [0.45, 0.80, 0.40], 5: [0.75, 0.55, 0.90], 6: [0.95, 0.85, 0.30], 7: [0.30, 0.85, 0.80], 8: [0.85, 0.60, 0.70],
};
const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);

class Viewer {
  constructor() {
    this.store = new FrameStore();
    this.meta = null;
    this.info = null;
    this.t = 0;
    this.field = null;
    this.range = null; // the fixed range of the field
    this.shownRange = null; // what the colours use now: the fixed range, or this frame's in "frame" mode
    this.rangeMode = "fixed";
    this.ranges = new Map();
    this.fps = DEFAULT_FPS;
    this.playing = false;
    this.playToken = 0;
    this.frameToken = 0;
    this.probe = null; // {node, quantity, data}
    this.probeToken = 0;
    this.error = null;
    this.timings = { script: performance.now() }; // ms since navigation started, for the benchmark
  }

  async start() {
    if (params.has("render")) document.body.classList.add("render-mode");
    this.meta = await this.store.json("/api/meta");
    this.timings.meta = performance.now();
    this.stage = new Stage($("view"), this.meta.colormap.srgb);
    this.stage.resize();
    this.timings.webgl = performance.now();
    for (const { id, num_frames } of this.meta.trajectories) {
      $("traj").add(new Option(`${id} (${num_frames} frames)`, id));
    }
    bindControls(this);
    await this.setTrajectory(params.get("traj") || this.meta.default_traj, params.get("field"));
    this.firstFrameMs = this.timings.firstFrame = performance.now(); // since navigation started
  }

  async setTrajectory(id, field = null) {
    this.pause();
    const token = ++this.frameToken;
    const info = await this.store.json(`/api/traj?id=${enc(id)}`);
    const triangles = info.num_triangles ? await this.store.binary(`/api/cells?traj=${enc(id)}`, Uint32Array) : null;
    if (token !== this.frameToken) return false;
    this.info = info;
    this.closeProbe();
    this.stage.setTrajectory({
      numNodes: info.num_nodes, triangles, sources: info.sources, bounds: info.bounds,
      flat: info.dim === 2 || info.bounds[1][2] - info.bounds[0][2] === 0,
    });
    $("traj").value = id;
    const two = info.sources.length > 1;
    $("label-pred").hidden = !two;
    $("divider").hidden = !two;
    $("label-gt").textContent = info.labels.gt.text;
    if (two) $("label-pred").textContent = info.labels.pred.text;
    const select = $("field");
    select.replaceChildren(new Option("none", ""));
    for (const name of Object.keys(info.fields)) select.add(new Option(name, name));
    const quantities = $("probe-quantity");
    quantities.replaceChildren(...info.probe_quantities.map((name) => new Option(name, name)));
    quantities.value = "displacement";
    $("probe-node").max = String(info.num_nodes - 1);
    this.fillSpeeds();
    await this.setClip(this.stage.clip.axis); // a clip plane stays across trajectories
    $("scrub").max = String(info.num_frames - 1);
    this.t = Math.min(this.t, info.num_frames - 1);
    await this.setField(field ?? info.default_field, false);
    return this.setFrame(this.t);
  }

  async setField(name, redraw = true) {
    name = name || null;
    if (name && !(name in this.info.fields)) throw new Error(`no field ${name} in trajectory ${this.info.id}`);
    const key = `${this.info.id}/${name}`;
    if (name && !this.ranges.has(key)) {
      this.ranges.set(key, await this.store.json(`/api/range?traj=${enc(this.info.id)}&name=${enc(name)}`));
    }
    this.field = name;
    this.range = name ? this.ranges.get(key) : null;
    this.shownRange = this.range;
    $("field").value = name || "";
    this.drawLegendOverlay();
    return redraw ? this.setFrame(this.t) : true;
  }

  setRangeMode(mode) {
    if (mode !== "fixed" && mode !== "frame") throw new Error(`range mode ${mode} is not fixed or frame`);
    this.rangeMode = mode;
    $("range-mode").value = mode;
    return this.setFrame(this.t);
  }

  // Load frame t for every pane, then draw once. Resolves true when drawn, false if a later call won.
  async setFrame(t) {
    const info = this.info;
    t = Math.max(0, Math.min(info.num_frames - 1, Math.round(Number(t)) || 0));
    const token = ++this.frameToken;
    const field = this.field;
    const loads = info.sources.map((src) => Promise.all([
      this.store.positions(info.id, src, t, 3 * info.num_nodes),
      field && info.fields[field].includes(src) ? this.store.field(info.id, field, src, t, info.num_nodes) : null,
    ]));
    const panes = await Promise.all(loads);
    if (token !== this.frameToken) return false;
    this.shownRange = this.range && this.rangeMode === "frame" ? this.frameRange(panes.map(([, v]) => v)) : this.range;
    panes.forEach(([positions, values], i) => {
      this.stage.setPositions(i, positions);
      if (values && field === "node_type") this.stage.setCategories(i, values, NODE_TYPE_SRGB);
      else this.stage.setColors(i, values, ...(this.shownRange || [0, 1]));
    });
    const direction = t < this.t ? -1 : 1;
    this.t = t;
    for (let k = 1; k <= PREFETCH; k++) { // the user is likely to keep going this way
      const next = t + direction * k;
      if (next >= 0 && next < info.num_frames) this.prefetch(next);
    }
    $("scrub").value = String(t);
    $("clock").textContent = this.clockText();
    if (this.rangeMode === "frame") this.drawLegendOverlay();
    if (this.probe && this.probe.data) this.drawProbe();
    this.stage.draw();
    return true;
  }

  // This frame's min..max over the panes; magnitudes (fixed range starting at 0) stay anchored at 0.
  frameRange(arrays) {
    let lo = Infinity, hi = -Infinity;
    for (const values of arrays) {
      if (!values) continue;
      for (let i = 0; i < values.length; i++) {
        const v = values[i];
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
    }
    if (this.range[0] === 0 && lo >= 0) lo = 0;
    if (!(hi > lo)) hi = lo + (Math.abs(lo) * 1e-6 || 1e-12);
    return [lo, hi];
  }

  // Simulated time: milliseconds for trajectories shorter than a second (impacts), seconds otherwise.
  timeUnit() {
    const duration = (this.info.num_frames - 1) * this.info.dt;
    return duration < 1 ? { unit: "ms", scale: 1000 } : { unit: "s", scale: 1 };
  }

  clockText() {
    const { unit, scale } = this.timeUnit();
    const step = this.info.dt * scale;
    let digits = 0; // enough decimals to show every frame's time exactly (dt = 0.25 ms -> 2)
    while (digits < 4 && Math.abs(step * 10 ** digits - Math.round(step * 10 ** digits)) > 1e-6 * 10 ** digits) digits++;
    const time = (this.t * step).toFixed(digits);
    return `t = ${time} ${unit}  (frame ${this.t} / ${this.info.num_frames - 1})`;
  }

  // The speed menu: frames per second, each with the simulated time it covers per wall-clock second.
  fillSpeeds() {
    const options = FPS_CHOICES.map((fps) => new Option(`${fps} fps · ${ratioText(fps * this.info.dt)}`, String(fps)));
    $("speed").replaceChildren(...options);
    this.setSpeed(this.fps);
  }

  setSpeed(fps) {
    fps = Number(fps);
    this.fps = FPS_CHOICES.includes(fps) ? fps : DEFAULT_FPS;
    $("speed").value = String(this.fps);
  }

  get timeRatio() { return this.fps * this.info.dt; } // simulated seconds per wall-clock second

  play() {
    if (this.playing) return;
    this.playing = true;
    $("play").innerHTML = "&#10074;&#10074;";
    this.playLoop(++this.playToken).catch((error) => this.report(error));
  }

  pause() {
    this.playing = false;
    this.playToken++;
    $("play").innerHTML = "&#9654;";
  }

  async playLoop(token) {
    while (token === this.playToken) {
      const started = performance.now();
      const count = this.info.num_frames;
      if (this.t + 1 === count) this.prefetch(0); // wrap around: setFrame prefetches forward only
      await this.setFrame((this.t + 1) % count);
      const wait = 1000 / this.fps - (performance.now() - started);
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, wait)));
    }
  }

  prefetch(t) {
    const { id, sources, fields, num_nodes: n } = this.info;
    for (const src of sources) {
      this.store.positions(id, src, t, 3 * n).catch(() => {});
      if (this.field && fields[this.field].includes(src)) this.store.field(id, this.field, src, t, n).catch(() => {});
    }
  }

  step(delta) {
    this.pause();
    return this.setFrame(this.t + delta);
  }

  setWireframe(on) {
    $("wireframe").checked = on;
    this.stage.setWireframe(on);
  }

  // Clip plane: axis 0/1/2 (x/y/z) or null; offset 0..1 across the trajectory's box; flip keeps the other side.
  async setClip(axis, offset = this.stage.clip.offset, flip = this.stage.clip.flip) {
    axis = axis === null || axis === undefined || axis === "" ? null : Number(axis);
    if (axis !== null && this.info.cell_type === "tetra" && !this.stage.allFaces) {
      const id = this.info.id;
      const faces = await this.store.binary(`/api/cells?traj=${enc(id)}&faces=all`, Uint32Array);
      if (this.info.id === id) this.stage.setAllFaces(faces);
    }
    this.stage.setClip(axis, Number(offset), Boolean(flip));
    $("clip-axis").value = axis === null ? "" : String(axis);
    $("clip-offset").value = String(offset);
    $("clip-flip").checked = Boolean(flip);
    $("clip-offset").disabled = $("clip-flip").disabled = axis === null;
    this.stage.draw();
    return true;
  }

  // --- probe: one node's history from /api/probe, plotted under the view ---------------------------------------
  async setProbe(node, quantity = $("probe-quantity").value || "displacement") {
    node = Math.round(Number(node));
    if (!(node >= 0 && node < this.info.num_nodes)) throw new Error(`node ${node} is not in 0..${this.info.num_nodes - 1}`);
    const token = ++this.probeToken;
    const id = this.info.id;
    const data = await this.store.json(`/api/probe?traj=${enc(id)}&node=${node}&quantity=${enc(quantity)}`);
    if (token !== this.probeToken || id !== this.info.id) return false;
    this.probe = { node, quantity, data };
    $("probe-node").value = String(node);
    $("probe-quantity").value = quantity;
    $("probe").hidden = false;
    this.stage.setMarker(node);
    this.drawProbe();
    return true;
  }

  closeProbe() {
    this.probeToken++;
    this.probe = null;
    $("probe").hidden = true;
    if (this.stage) this.stage.setMarker(null);
  }

  drawProbe(canvas = $("plot")) {
    const width = Math.max(300, Math.round(canvas.clientWidth || canvas.width));
    const height = Math.max(100, Math.round(canvas.clientHeight || canvas.height));
    if (canvas.width !== width) canvas.width = width;
    if (canvas.height !== height) canvas.height = height;
    const display = DISPLAY[this.probe.quantity] || { unit: this.probe.data.unit, scale: 1 };
    const time = this.timeUnit();
    drawPlot(canvas.getContext("2d"), width, height, {
      data: this.probe.data, frame: this.t, scale: display.scale, unit: display.unit,
      timeScale: time.scale, timeUnit: time.unit,
    });
  }

  plotDataURL() {
    if (!this.probe) return null;
    this.drawProbe();
    return $("plot").toDataURL("image/png");
  }

  // --- legends -----------------------------------------------------------------------------------------------
  legendHeight() {
    return this.field === "node_type" ? categoriesHeight(Object.keys(this.info.node_types).length) : LEGEND_HEIGHT;
  }

  drawLegendOverlay() {
    const canvas = $("legend");
    canvas.hidden = !this.field;
    if (!this.field) return;
    if (canvas.height !== this.legendHeight()) canvas.height = this.legendHeight();
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    this.drawLegendAt(ctx, 0, 0);
  }

  drawLegendAt(ctx, x, y) {
    if (this.field === "node_type") {
      drawCategories(ctx, x, y, LEGEND_WIDTH, { name: "node type", items: this.categoryItems() });
    } else {
      drawLegend(ctx, x, y, LEGEND_WIDTH, this.legendSpec());
    }
  }

  categoryItems() { // node types present in this trajectory: number, name and swatch colour
    return Object.entries(this.info.node_types).map(([value, name]) => ({
      label: `${value} ${name}`, srgb: NODE_TYPE_SRGB[value] || [0.78, 0.8, 0.84],
    }));
  }

  legendSpec() {
    const display = DISPLAY[this.field] || { unit: (this.info.field_units || {})[this.field] || "", scale: 1 };
    const [lo, hi] = this.shownRange || this.range;
    return { name: this.field, unit: display.unit, lo: lo * display.scale, hi: hi * display.scale,
             colormapSRGB: this.meta.colormap.srgb, mode: this.rangeMode }; // prettier-ignore
  }

  paneLabels() { return this.info.sources.map((src) => this.info.labels[src].text); }

  // The view as a PNG data URL: the 3-D panes plus pane labels, divider, clock and legend (what the page shows).
  pngDataURL() {
    this.stage.draw();
    const source = $("view");
    const scale = source.width / Math.max(1, source.clientWidth);
    const out = document.createElement("canvas");
    out.width = source.width;
    out.height = source.height;
    const ctx = out.getContext("2d");
    ctx.drawImage(source, 0, 0);
    ctx.scale(scale, scale);
    const width = source.clientWidth, height = source.clientHeight;
    const labels = this.paneLabels();
    if (labels.length > 1) {
      ctx.fillStyle = "#8a8f99";
      ctx.fillRect(width / 2 - 1, 0, 2, height);
    }
    ctx.font = "13px system-ui, sans-serif";
    ctx.textBaseline = "top";
    ctx.fillStyle = "#e6e6e6";
    labels.forEach((text, i) => ctx.fillText(text, 10 + (i * width) / labels.length, 10));
    ctx.fillText(`${this.info.id}   ${this.clockText()}`, 10, height - 22);
    if (this.field) this.drawLegendAt(ctx, width - LEGEND_WIDTH - 10, height - this.legendHeight() - 10);
    return out.toDataURL("image/png");
  }

  savePNG() {
    const link = document.createElement("a");
    link.href = this.pngDataURL();
    link.download = `${this.meta.file.replace(/\.[^.]*$/, "")}_${this.info.id}_t${this.t}.png`;
    link.click();
  }

  report(error) {
    this.error = String(error && error.message ? error.message : error);
    $("status").textContent = this.error;
  }
}

const viewer = new Viewer();
exposeHook(viewer);
