// The playback page: wires the toolbar, the keys and the test hook `window.viewer` to the frame store and
// the stage. URL parameters: traj=ID, field=NAME, render=1 (no toolbar: what `meshsim render` captures).
import { FrameStore, enc } from "./frames.js";
import { drawLegend } from "./legend.js";
import { Stage } from "./stage.js";

const BASE_FPS = 30; // playback at speed 1x
const PREFETCH = 8; // frames requested ahead while playing
const LEGEND_WIDTH = 260;
const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);

class Viewer {
  constructor() {
    this.store = new FrameStore();
    this.meta = null;
    this.info = null;
    this.t = 0;
    this.field = null;
    this.range = null;
    this.ranges = new Map();
    this.speed = 1;
    this.playing = false;
    this.playToken = 0;
    this.frameToken = 0;
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
    this.bindControls();
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
    this.stage.setTrajectory({
      numNodes: info.num_nodes, triangles, sources: info.sources, bounds: info.bounds,
      flat: info.dim === 2 || info.bounds[1][2] - info.bounds[0][2] === 0,
    });
    $("traj").value = id;
    $("label-pred").hidden = info.sources.length < 2;
    $("label-gt").textContent = info.sources.length < 2 ? "simulation" : "ground truth";
    const select = $("field");
    select.replaceChildren(new Option("none", ""));
    for (const name of Object.keys(info.fields)) select.add(new Option(name, name));
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
    $("field").value = name || "";
    this.drawLegendOverlay();
    return redraw ? this.setFrame(this.t) : true;
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
    panes.forEach(([positions, values], i) => {
      this.stage.setPositions(i, positions);
      this.stage.setColors(i, values, ...(this.range || [0, 1]));
    });
    const direction = t < this.t ? -1 : 1;
    this.t = t;
    for (let k = 1; k <= PREFETCH; k++) { // the user is likely to keep going this way
      const next = t + direction * k;
      if (next >= 0 && next < info.num_frames) this.prefetch(next);
    }
    $("scrub").value = String(t);
    $("clock").textContent = this.clockText();
    this.stage.draw();
    return true;
  }

  clockText() {
    const time = (this.t * this.info.dt).toFixed(Math.max(0, -Math.floor(Math.log10(this.info.dt))));
    return `t = ${time} s  (${this.t} / ${this.info.num_frames - 1})`;
  }

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
      const wait = 1000 / (BASE_FPS * this.speed) - (performance.now() - started);
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

  setSpeed(value) {
    this.speed = Number(value) || 1;
    $("speed").value = String(this.speed);
  }

  setWireframe(on) {
    $("wireframe").checked = on;
    this.stage.setWireframe(on);
  }

  drawLegendOverlay() {
    const canvas = $("legend");
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    canvas.hidden = !this.field;
    if (this.field) drawLegend(ctx, 0, 0, LEGEND_WIDTH, this.legendSpec());
  }

  legendSpec() {
    const unit = (this.meta.field_units || {})[this.field] || "";
    return { name: this.field, unit, lo: this.range[0], hi: this.range[1], colormapSRGB: this.meta.colormap.srgb };
  }

  // The view as a PNG data URL: the 3-D panes plus pane labels, clock and legend (what the page shows).
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
    ctx.font = "13px system-ui, sans-serif";
    ctx.textBaseline = "top";
    ctx.fillStyle = "#e6e6e6";
    const labels = this.info.sources.length < 2 ? ["simulation"] : ["ground truth", "prediction"];
    labels.forEach((text, i) => ctx.fillText(text, 10 + (i * width) / labels.length, 10));
    ctx.fillText(`${this.info.id}   ${this.clockText()}`, 10, height - 22);
    if (this.field) drawLegend(ctx, width - LEGEND_WIDTH - 10, height - 64, LEGEND_WIDTH, this.legendSpec());
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

  bindControls() {
    const run = (promise) => Promise.resolve(promise).catch((error) => this.report(error));
    $("traj").addEventListener("change", (e) => run(this.setTrajectory(e.target.value, this.field)));
    $("play").addEventListener("click", () => (this.playing ? this.pause() : this.play()));
    $("scrub").addEventListener("input", (e) => { this.pause(); run(this.setFrame(e.target.value)); });
    $("speed").addEventListener("change", (e) => this.setSpeed(e.target.value));
    $("field").addEventListener("change", (e) => run(this.setField(e.target.value)));
    $("wireframe").addEventListener("change", (e) => this.setWireframe(e.target.checked));
    $("snapshot").addEventListener("click", () => this.savePNG());
    window.addEventListener("keydown", (e) => {
      if (e.target.tagName === "SELECT" || e.target.tagName === "INPUT" || e.ctrlKey || e.metaKey || e.altKey) return;
      const stride = e.shiftKey ? 10 : 1;
      const speeds = [...$("speed").options].map((o) => Number(o.value));
      const actions = {
        " ": () => (this.playing ? this.pause() : this.play()),
        ArrowRight: () => run(this.step(stride)),
        ArrowLeft: () => run(this.step(-stride)),
        Home: () => run(this.step(-this.t)),
        End: () => run(this.step(this.info.num_frames)),
        w: () => this.setWireframe(!$("wireframe").checked),
        p: () => this.savePNG(),
        c: () => {
          const names = ["", ...Object.keys(this.info.fields)];
          run(this.setField(names[(names.indexOf(this.field || "") + 1) % names.length]));
        },
        "]": () => this.setSpeed(speeds[Math.min(speeds.length - 1, speeds.indexOf(this.speed) + 1)]),
        "[": () => this.setSpeed(speeds[Math.max(0, speeds.indexOf(this.speed) - 1)]),
      };
      const action = actions[e.key];
      if (action) {
        e.preventDefault();
        action();
      }
    });
  }
}

const viewer = new Viewer();
// Test and capture hook: tests, `meshsim render` and the benchmark drive the page through this object.
window.viewer = {
  ready: viewer.start().then(() => true, (error) => { viewer.report(error); throw error; }),
  get meta() { return viewer.meta; },
  get info() { return viewer.info; },
  get frame() { return viewer.t; },
  get field() { return viewer.field; },
  get range() { return viewer.range; },
  get error() { return viewer.error; },
  get framesDrawn() { return viewer.stage ? viewer.stage.framesDrawn : 0; },
  get firstFrameMs() { return viewer.firstFrameMs; },
  get timings() { return viewer.timings; },
  get glRenderer() { return viewer.stage.renderer; },
  get stage() { return viewer.stage; },
  setFrame: (t) => viewer.setFrame(t),
  setField: (name) => viewer.setField(name),
  setTrajectory: (id, field) => viewer.setTrajectory(id, field),
  setWireframe: (on) => viewer.setWireframe(on),
  play: () => viewer.play(),
  pause: () => viewer.pause(),
  pngDataURL: () => viewer.pngDataURL(),
  drawnPositions: (pane) => viewer.stage.drawnPositions(pane),
};
