// Test and capture hook: tests, `meshsim render` and the benchmark drive the page through `window.viewer`.
export function exposeHook(viewer) {
  window.viewer = {
    ready: viewer.start().then(() => true, (error) => { viewer.report(error); throw error; }),
    get meta() { return viewer.meta; },
    get info() { return viewer.info; },
    get frame() { return viewer.t; },
    get field() { return viewer.field; },
    get range() { return viewer.range; },
    get shownRange() { return viewer.shownRange; },
    get rangeMode() { return viewer.rangeMode; },
    get fps() { return viewer.fps; },
    get timeRatio() { return viewer.timeRatio; },
    get clock() { return viewer.clockText(); },
    get labels() { return viewer.paneLabels(); },
    get legend() { // what the legend shows: {name, unit, lo, hi, mode} or {name, items: [{label, srgb}]}
      if (!viewer.field) return null;
      if (viewer.field !== "node_type") { const { colormapSRGB, ...shown } = viewer.legendSpec(); return shown; }
      return { name: "node type", items: viewer.categoryItems() };
    },
    get probe() { return viewer.probe && { node: viewer.probe.node, quantity: viewer.probe.quantity, data: viewer.probe.data }; },
    get clip() { const { axis, offset, flip } = viewer.stage.clip; return { axis, offset, flip }; },
    get error() { return viewer.error; },
    get framesDrawn() { return viewer.stage ? viewer.stage.framesDrawn : 0; },
    get firstFrameMs() { return viewer.firstFrameMs; },
    get timings() { return viewer.timings; },
    get glRenderer() { return viewer.stage.renderer; },
    get stage() { return viewer.stage; },
    setFrame: (t) => viewer.setFrame(t),
    setField: (name) => viewer.setField(name),
    setRangeMode: (mode) => viewer.setRangeMode(mode),
    setTrajectory: (id, field) => viewer.setTrajectory(id, field),
    setWireframe: (on) => viewer.setWireframe(on),
    setClip: (axis, offset, flip) => viewer.setClip(axis, offset, flip),
    setSpeed: (fps) => viewer.setSpeed(fps),
    setProbe: (node, quantity) => viewer.setProbe(node, quantity),
    closeProbe: () => viewer.closeProbe(),
    pick: (x, y) => viewer.stage.pick(x, y),
    project: (pane, node) => viewer.stage.project(pane, node),
    play: () => viewer.play(),
    pause: () => viewer.pause(),
    pngDataURL: () => viewer.pngDataURL(),
    plotDataURL: () => viewer.plotDataURL(),
    drawnPositions: (pane) => viewer.stage.drawnPositions(pane),
  };
}
