// The page's controls: toolbar widgets, clicks on the view (probe) and keys, bound to a Viewer.
import { FPS_CHOICES } from "./timing.js";

const CLICK_SLOP_PX = 4; // a pointer that moved less than this between down and up is a click (a probe)
const $ = (id) => document.getElementById(id);

export function bindControls(viewer) {
  const run = (promise) => Promise.resolve(promise).catch((error) => viewer.report(error));
  $("traj").addEventListener("change", (e) => run(viewer.setTrajectory(e.target.value, viewer.field)));
  $("play").addEventListener("click", () => (viewer.playing ? viewer.pause() : viewer.play()));
  $("scrub").addEventListener("input", (e) => { viewer.pause(); run(viewer.setFrame(e.target.value)); });
  $("speed").addEventListener("change", (e) => viewer.setSpeed(e.target.value));
  $("field").addEventListener("change", (e) => run(viewer.setField(e.target.value)));
  $("range-mode").addEventListener("change", (e) => run(viewer.setRangeMode(e.target.value)));
  $("clip-axis").addEventListener("change", (e) => run(viewer.setClip(e.target.value)));
  $("clip-offset").addEventListener("input", (e) => run(viewer.setClip(viewer.stage.clip.axis, e.target.value)));
  $("clip-flip").addEventListener("change", (e) => run(viewer.setClip(viewer.stage.clip.axis, undefined, e.target.checked)));
  $("wireframe").addEventListener("change", (e) => viewer.setWireframe(e.target.checked));
  $("snapshot").addEventListener("click", () => viewer.savePNG());
  $("probe-node").addEventListener("change", (e) => { if (e.target.value !== "") run(viewer.setProbe(e.target.value)); });
  $("probe-quantity").addEventListener("change", (e) => {
    if (viewer.probe) run(viewer.setProbe(viewer.probe.node, e.target.value));
  });
  $("probe-close").addEventListener("click", () => viewer.closeProbe());
  // A click (not a drag: dragging orbits) on a node probes it.
  let down = null;
  $("view").addEventListener("pointerdown", (e) => { down = [e.offsetX, e.offsetY]; });
  $("view").addEventListener("pointerup", (e) => {
    if (!down || Math.hypot(e.offsetX - down[0], e.offsetY - down[1]) > CLICK_SLOP_PX) return;
    down = null;
    const node = viewer.stage.pick(e.offsetX, e.offsetY);
    if (node !== null) run(viewer.setProbe(node));
  });
  new ResizeObserver(() => { if (viewer.probe && !$("probe").hidden) viewer.drawProbe(); }).observe($("plot"));
  window.addEventListener("keydown", (e) => {
    if (e.target.tagName === "SELECT" || e.target.tagName === "INPUT" || e.ctrlKey || e.metaKey || e.altKey) return;
    const stride = e.shiftKey ? 10 : 1;
    const actions = {
      " ": () => (viewer.playing ? viewer.pause() : viewer.play()),
      ArrowRight: () => run(viewer.step(stride)),
      ArrowLeft: () => run(viewer.step(-stride)),
      Home: () => run(viewer.step(-viewer.t)),
      End: () => run(viewer.step(viewer.info.num_frames)),
      w: () => viewer.setWireframe(!$("wireframe").checked),
      p: () => viewer.savePNG(),
      r: () => run(viewer.setRangeMode(viewer.rangeMode === "fixed" ? "frame" : "fixed")),
      x: () => {
        const axis = viewer.stage.clip.axis;
        run(viewer.setClip(axis === null ? 0 : axis === 2 ? null : axis + 1));
      },
      Escape: () => viewer.closeProbe(),
      c: () => {
        const names = ["", ...Object.keys(viewer.info.fields)];
        run(viewer.setField(names[(names.indexOf(viewer.field || "") + 1) % names.length]));
      },
      "]": () => viewer.setSpeed(FPS_CHOICES[Math.min(FPS_CHOICES.length - 1, FPS_CHOICES.indexOf(viewer.fps) + 1)]),
      "[": () => viewer.setSpeed(FPS_CHOICES[Math.max(0, FPS_CHOICES.indexOf(viewer.fps) - 1)]),
    };
    const action = actions[e.key];
    if (action) {
      e.preventDefault();
      action();
    }
  });
}
