// The 3-D view: one WebGL canvas split into panes (ground truth | prediction) drawn with one shared camera.
// Draws only when something changed (a frame, a colour, the camera); buffers are allocated once per
// trajectory and refilled in place for every frame; flat shading needs no per-frame normals.
import {
  AmbientLight, BufferAttribute, BufferGeometry, Color, DirectionalLight, DoubleSide, DynamicDrawUsage, Mesh,
  MeshLambertMaterial, OrbitControls, PerspectiveCamera, Points, PointsMaterial, SRGBColorSpace, Scene, Sphere,
  Vector3, WebGLRenderer,
} from "./vendor/three.module.min.js";

const BACKGROUND = 0x1d1f24;
const NEUTRAL_SRGB = [0.78, 0.80, 0.84]; // surfaces with no field to show

export class Stage {
  constructor(canvas, colormapSRGB) {
    this.canvas = canvas;
    this.renderer = new WebGLRenderer({ canvas, antialias: wantAntialias() });
    this.renderer.setClearColor(BACKGROUND);
    this.renderer.setScissorTest(true);
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
      this.scene.remove(pane.object);
      pane.object.geometry.dispose();
      pane.object.material.dispose();
    }
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
      return { source, object, hasPositions: false };
    });
    this.fitCamera(bounds, flat);
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
      this.panes.forEach((other) => { other.object.visible = other === pane && other.hasPositions; });
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
