// The 3-D view: one WebGL canvas split into panes (ground truth | prediction) drawn with one shared camera, so
// orbiting either pane moves both. Draws only when something changed (a frame, a colour, the camera, the clip);
// buffers are allocated once per trajectory and refilled in place for every frame; flat shading needs no
// per-frame normals. Also: an optional clip plane (tetrahedra then show their interior faces), node picking
// (projection of the drawn nodes, no ray casting) and a marker on the probed node.
import {
  AmbientLight, BufferAttribute, BufferGeometry, Color, DirectionalLight, DoubleSide, DynamicDrawUsage, Mesh,
  MeshLambertMaterial, OrbitControls, PerspectiveCamera, Points, PointsMaterial, SRGBColorSpace, Scene, Sphere,
  Vector3, WebGLRenderer,
} from "./vendor/three.module.min.js";

const BACKGROUND = 0x1d1f24;
const NEUTRAL_SRGB = [0.78, 0.80, 0.84]; // surfaces with no field to show
const MARKER_COLOR = 0xff3df0; // the probed node: magenta, not in viridis nor in the node-type palette
const PICK_RADIUS_PX = 12; // a click picks the front-most drawn node within this distance

export class Stage {
  constructor(canvas, colormapSRGB) {
    this.canvas = canvas;
    this.renderer = new WebGLRenderer({ canvas, antialias: wantAntialias() });
    this.renderer.setClearColor(BACKGROUND);
    this.renderer.setScissorTest(true);
    this.renderer.localClippingEnabled = true;
    // The clip plane, duck-typed as three.js reads it ({normal, constant}: points with normal.p + constant < 0
    // are cut away); three's Plane class is not in the vendored bundle's export list.
    this.clip = { axis: null, offset: 0.5, flip: false, plane: { normal: new Vector3(), constant: 0 } };
    this.allFaces = null; // every face of a tetrahedral mesh (interior ones too), shown while clipping
    this.bounds = [[0, 0, 0], [1, 1, 1]];
    this.markerNode = null;
    this.scene = new Scene();
    this.camera = new PerspectiveCamera(35, 1, 1e-3, 1e3);
    this.scene.add(this.camera);
    this.scene.add(new AmbientLight(0xffffff, 1.1));
    const headlight = new DirectionalLight(0xffffff, 2.0); // follows the camera: lit from where we look
    headlight.position.set(0.3, 0.6, 1);
    this.camera.add(headlight);
    this.controls = new OrbitControls(this.camera, canvas);
    this.controls.addEventListener("change", () => this.requestRender());
    // The colour map in linear RGB: three.js treats vertex colours as linear, the table is sRGB.
    this.lut = toLinear(colormapSRGB.flat());
    this.neutral = toLinear(NEUTRAL_SRGB);
    this.panes = [];
    this.pending = false;
    this.framesDrawn = 0;
    this.onDraw = null;
    new ResizeObserver(() => this.resize()).observe(canvas);
  }

  // Build one drawable per pane for a trajectory: `triangles` (Uint32Array) or null for particles.
  setTrajectory({ numNodes, triangles, sources, bounds, flat }) {
    for (const pane of this.panes) {
      for (const object of [pane.object, pane.marker]) {
        this.scene.remove(object);
        object.geometry.dispose();
        object.material.dispose();
      }
    }
    this.bounds = bounds;
    this.surface = triangles && triangles.length ? new BufferAttribute(triangles, 1) : null;
    this.allFaces = null;
    this.markerNode = null;
    const radius = Math.max(1e-9, 0.5 * Math.hypot(...bounds[1].map((hi, i) => hi - bounds[0][i])));
    this.panes = sources.map((source) => {
      const geometry = new BufferGeometry();
      const position = new BufferAttribute(new Float32Array(numNodes * 3), 3).setUsage(DynamicDrawUsage);
      const color = new BufferAttribute(new Float32Array(numNodes * 3), 3).setUsage(DynamicDrawUsage);
      geometry.setAttribute("position", position);
      geometry.setAttribute("color", color);
      let object;
      if (triangles && triangles.length) {
        geometry.setIndex(new BufferAttribute(triangles, 1));
        // Flat shading: face normals come from screen-space derivatives, so no normals are computed or uploaded
        // per frame (the largest per-frame cost at 100,000 nodes) and every element shows, as in ParaView.
        const material = new MeshLambertMaterial({ vertexColors: true, side: DoubleSide, flatShading: true });
        object = new Mesh(geometry, material);
      } else {
        const spacing = (2 * radius) / Math.cbrt(Math.max(numNodes, 1)); // about one particle apart
        object = new Points(geometry, new PointsMaterial({ vertexColors: true, size: 0.6 * spacing }));
      }
      object.frustumCulled = false; // positions change every frame; bounds are handled by the camera fit
      object.visible = false;
      this.scene.add(object);
      const markerGeometry = new BufferGeometry();
      markerGeometry.setAttribute("position", new BufferAttribute(new Float32Array(3), 3));
      const marker = new Points(markerGeometry, new PointsMaterial({
        color: MARKER_COLOR, size: 11, sizeAttenuation: false, depthTest: false, transparent: true,
      }));
      marker.frustumCulled = false;
      marker.renderOrder = 1; // drawn last, on top of the mesh
      marker.visible = false;
      this.scene.add(marker);
      return { source, object, marker, hasPositions: false };
    });
    this.applyClip();
    this.fitCamera(bounds, flat);
  }

  // Clip plane across `axis` (0, 1, 2 or null for none) at `offset` (0..1 of the trajectory's box): keeps the
  // part below the cut, or above it with `flip`. Tetrahedral meshes then draw every face, so the cut shows the
  // interior instead of a hollow shell.
  setClip(axis, offset = this.clip.offset, flip = this.clip.flip) {
    Object.assign(this.clip, { axis, offset, flip });
    this.applyClip();
    this.requestRender();
  }

  setAllFaces(faces) { // Uint32Array of every face, for tetrahedral meshes; used while clipping
    this.allFaces = faces && faces.length ? new BufferAttribute(faces, 1) : null;
    this.applyClip();
  }

  clipPosition() { // the cut's coordinate along the clip axis
    const { axis, offset } = this.clip;
    return this.bounds[0][axis] + offset * (this.bounds[1][axis] - this.bounds[0][axis]);
  }

  applyClip() {
    const { axis, flip, plane } = this.clip;
    const on = axis !== null && axis !== undefined;
    if (on) {
      plane.normal.set(0, 0, 0).setComponent(axis, flip ? 1 : -1);
      plane.constant = flip ? -this.clipPosition() : this.clipPosition();
    }
    for (const pane of this.panes) {
      const material = pane.object.material;
      material.clippingPlanes = on ? [plane] : [];
      material.needsUpdate = true;
      if (pane.object.isMesh) {
        const index = on && this.allFaces ? this.allFaces : this.surface;
        if (pane.object.geometry.index !== index) pane.object.geometry.setIndex(index);
      }
    }
  }

  // Show the marker on `node` (or hide it with null); it follows the node as frames change.
  setMarker(node) {
    this.markerNode = node;
    this.panes.forEach((pane, i) => this.updateMarker(i));
    this.requestRender();
  }

  updateMarker(index) {
    const pane = this.panes[index];
    const node = this.markerNode;
    pane.marker.visible = node !== null && pane.hasPositions;
    if (!pane.marker.visible) return;
    const from = pane.object.geometry.attributes.position.array;
    const to = pane.marker.geometry.attributes.position;
    to.array.set(from.subarray(3 * node, 3 * node + 3));
    to.needsUpdate = true;
  }

  // The node under canvas pixel (x, y) (CSS pixels from the canvas's top-left), or null: the front-most node of
  // the pane under the pointer within PICK_RADIUS_PX, skipping nodes cut away by the clip plane.
  pick(x, y) {
    const width = this.canvas.clientWidth, height = this.canvas.clientHeight;
    const paneWidth = width / Math.max(1, this.panes.length);
    const index = Math.floor(x / paneWidth);
    const pane = this.panes[index];
    if (!pane || !pane.hasPositions) return null;
    this.camera.updateMatrixWorld();
    const view = this.camera.matrixWorldInverse.elements, proj = this.camera.projectionMatrix.elements;
    // clip = proj * view: the two 4x4 column-major matrices combined once, then applied to every node
    const m = new Array(16);
    for (let c = 0; c < 4; c++) {
      for (let r = 0; r < 4; r++) {
        let sum = 0;
        for (let k = 0; k < 4; k++) sum += proj[k * 4 + r] * view[c * 4 + k];
        m[c * 4 + r] = sum;
      }
    }
    const px = x - index * paneWidth, py = y;
    const positions = pane.object.geometry.attributes.position.array;
    const { axis, plane } = this.clip;
    const clipped = axis !== null && axis !== undefined;
    const sign = clipped ? plane.normal.getComponent(axis) : 0;
    let best = null, bestDepth = Infinity;
    for (let i = 0, n = positions.length / 3; i < n; i++) {
      const X = positions[3 * i], Y = positions[3 * i + 1], Z = positions[3 * i + 2];
      if (clipped && sign * positions[3 * i + axis] + plane.constant < 0) continue;
      const w = m[3] * X + m[7] * Y + m[11] * Z + m[15];
      if (w <= 0) continue;
      const sx = ((m[0] * X + m[4] * Y + m[8] * Z + m[12]) / w + 1) * 0.5 * paneWidth;
      const sy = (1 - (m[1] * X + m[5] * Y + m[9] * Z + m[13]) / w) * 0.5 * height;
      if ((sx - px) ** 2 + (sy - py) ** 2 > PICK_RADIUS_PX ** 2) continue;
      const depth = (m[2] * X + m[6] * Y + m[10] * Z + m[14]) / w;
      if (depth < bestDepth) { bestDepth = depth; best = i; }
    }
    return best;
  }

  // Canvas pixel (CSS, from the top-left) where `node` is drawn in pane `index`, for tests.
  project(index, node) {
    const width = this.canvas.clientWidth, height = this.canvas.clientHeight;
    const paneWidth = width / Math.max(1, this.panes.length);
    const p = this.panes[index].object.geometry.attributes.position.array;
    const v = new Vector3(p[3 * node], p[3 * node + 1], p[3 * node + 2]).project(this.camera);
    return [index * paneWidth + (v.x + 1) * 0.5 * paneWidth, (1 - v.y) * 0.5 * height];
  }

  fitCamera(bounds, flat) {
    const center = new Vector3(...bounds[0]).add(new Vector3(...bounds[1])).multiplyScalar(0.5);
    const sphere = new Sphere(center, Math.max(1e-9, 0.5 * new Vector3(...bounds[1]).distanceTo(new Vector3(...bounds[0]))));
    const distance = (0.95 * sphere.radius) / Math.sin((this.camera.fov * Math.PI) / 360) / Math.min(1, this.aspect());
    const direction = flat ? new Vector3(0, 0, 1) : new Vector3(0.9, 0.75, 1.3).normalize();
    this.camera.position.copy(center).addScaledVector(direction, distance);
    this.camera.near = distance / 100;
    this.camera.far = distance * 100;
    this.camera.updateProjectionMatrix();
    this.controls.target.copy(center);
    this.controls.update();
    this.requestRender();
  }

  setPositions(index, positions) {
    const pane = this.panes[index];
    const geometry = pane.object.geometry;
    geometry.attributes.position.array.set(positions);
    geometry.attributes.position.needsUpdate = true;
    pane.hasPositions = true;
    pane.object.visible = true;
    if (this.markerNode !== null) this.updateMarker(index);
  }

  // values: Float32Array per node or null (neutral colour); [lo, hi]: the fixed range of the field.
  setColors(index, values, lo, hi) {
    const color = this.panes[index].object.geometry.attributes.color;
    const out = color.array;
    if (values) {
      const last = this.lut.length / 3 - 1;
      const scale = hi > lo ? last / (hi - lo) : 0;
      for (let i = 0; i < values.length; i++) {
        let k = Math.round((values[i] - lo) * scale);
        k = k < 0 ? 0 : k > last ? last : k;
        out[3 * i] = this.lut[3 * k];
        out[3 * i + 1] = this.lut[3 * k + 1];
        out[3 * i + 2] = this.lut[3 * k + 2];
      }
    } else {
      for (let i = 0; i < out.length; i += 3) out.set(this.neutral, i);
    }
    color.needsUpdate = true;
  }

  // Categorical colours: values are category numbers, `paletteSRGB` maps each (as a string) to an sRGB triple.
  setCategories(index, values, paletteSRGB) {
    const color = this.panes[index].object.geometry.attributes.color;
    const linear = new Map(Object.entries(paletteSRGB).map(([key, rgb]) => [Number(key), toLinear(rgb)]));
    const out = color.array;
    for (let i = 0; i < values.length; i++) out.set(linear.get(values[i]) || this.neutral, 3 * i);
    color.needsUpdate = true;
  }

  setWireframe(on) {
    for (const pane of this.panes) {
      if (pane.object.isMesh) pane.object.material.wireframe = on;
    }
    this.requestRender();
  }

  aspect() {
    const width = this.canvas.clientWidth / Math.max(1, this.panes.length);
    return width / Math.max(1, this.canvas.clientHeight);
  }

  resize() {
    const width = this.canvas.clientWidth, height = this.canvas.clientHeight;
    if (!width || !height) return;
    this.renderer.setPixelRatio(window.devicePixelRatio || 1);
    this.renderer.setSize(width, height, false);
    this.camera.aspect = this.aspect();
    this.camera.updateProjectionMatrix();
    this.requestRender();
  }

  requestRender() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => this.draw());
  }

  // Draw every pane now (synchronously: a readback right after sees this frame).
  draw() {
    this.pending = false;
    const width = this.canvas.clientWidth, height = this.canvas.clientHeight;
    const paneWidth = width / Math.max(1, this.panes.length);
    if (height > 0 && Math.abs(this.camera.aspect - paneWidth / height) > 1e-9) { // panes or canvas changed
      this.camera.aspect = paneWidth / height;
      this.camera.updateProjectionMatrix();
    }
    this.renderer.setScissor(0, 0, width, height);
    this.renderer.clear();
    this.panes.forEach((pane, i) => {
      this.panes.forEach((other) => {
        other.object.visible = other === pane && other.hasPositions;
        other.marker.visible = other.object.visible && this.markerNode !== null;
      });
      this.renderer.setViewport(i * paneWidth, 0, paneWidth, height);
      this.renderer.setScissor(i * paneWidth, 0, paneWidth, height);
      this.renderer.render(this.scene, this.camera);
    });
    this.framesDrawn += 1;
    if (this.onDraw) this.onDraw();
  }

  // The drawn positions of a pane (a copy), for tests.
  drawnPositions(index) { return Array.from(this.panes[index].object.geometry.attributes.position.array); }
}

// Multisampling costs a software renderer (SwiftShader, llvmpipe) about 3x per frame: off there unless the URL
// asks for it with aa=1 (`meshsim render` does); aa=0 turns it off everywhere.
function wantAntialias() {
  const asked = new URLSearchParams(location.search).get("aa");
  if (asked !== null) return asked === "1";
  const gl = document.createElement("canvas").getContext("webgl2");
  const debug = gl && gl.getExtension("WEBGL_debug_renderer_info");
  const name = debug ? String(gl.getParameter(debug.UNMASKED_RENDERER_WEBGL)) : "";
  gl?.getExtension("WEBGL_lose_context")?.loseContext();
  return !/swiftshader|llvmpipe|software/i.test(name);
}

function toLinear(srgb) {
  const out = new Float32Array(srgb.length);
  const color = new Color();
  for (let i = 0; i < srgb.length; i += 3) {
    color.setRGB(srgb[i], srgb[i + 1], srgb[i + 2], SRGBColorSpace);
    out[i] = color.r; out[i + 1] = color.g; out[i + 2] = color.b;
  }
  return out;
}
