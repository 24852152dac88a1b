// Fetching from the meshsim viewer server: JSON metadata and raw little-endian frames, with a byte-bounded
// cache and prefetch, so scrubbing back and forth and playback hit memory instead of the network.

const BLOCK = 16; // frames per request
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export class FrameStore {
  constructor(budgetBytes = 512 * 1024 * 1024) {
    this.budget = budgetBytes;
    this.bytes = 0;
    this.cache = new Map(); // key -> {promise, bytes}; Map order = least recently used first
  }

  async json(path) {
    const response = await fetch(path);
    if (!response.ok) throw new Error(`${path}: ${response.status} ${(await response.text()).trim()}`);
    return response.json();
  }

  async binary(path, ArrayType) {
    const response = await fetch(path);
    if (!response.ok) throw new Error(`${path}: ${response.status} ${(await response.text()).trim()}`);
    const buffer = await response.arrayBuffer();
    if (!LITTLE_ENDIAN) throw new Error("big-endian machines are not supported by this page");
    return new ArrayType(buffer);
  }

  // Frames come in blocks of BLOCK (one request fills the cache for all of them), so scrubbing and playback
  // cost one request per BLOCK frames; `floats` is the size of one frame (N*3 positions, N field values).
  positions(traj, src, t, floats) {
    return this.#blocked(`p/${traj}/${src}`, (t0, count) =>
      `/api/positions?traj=${enc(traj)}&t=${t0}&count=${count}&src=${src}`, t, floats);
  }

  field(traj, name, src, t, floats) {
    return this.#blocked(`f/${traj}/${name}/${src}`, (t0, count) =>
      `/api/field?traj=${enc(traj)}&name=${enc(name)}&t=${t0}&count=${count}&src=${src}`, t, floats);
  }

  has(key) { return this.cache.has(key); }

  #blocked(prefix, pathOf, t, floats) {
    const hit = this.cache.get(`${prefix}/${t}`);
    if (hit) { // refresh its place in the LRU order
      this.cache.delete(`${prefix}/${t}`);
      this.cache.set(`${prefix}/${t}`, hit);
      return hit.promise;
    }
    const t0 = t - (t % BLOCK);
    const block = this.binary(pathOf(t0, BLOCK), Float32Array); // the server cuts it at the last frame
    let wanted = null;
    for (let s = t0; s < t0 + BLOCK; s++) {
      const key = `${prefix}/${s}`;
      if (this.cache.has(key)) continue;
      const entry = { bytes: 0, promise: null };
      entry.promise = block.then((all) => {
        if ((s - t0 + 1) * floats > all.length) throw new RangeError(`frame ${s} is past the end`);
        return all.subarray((s - t0) * floats, (s - t0 + 1) * floats);
      }, () => this.binary(pathOf(s, 1), Float32Array)) // the block failed: fetch this frame alone, so a
        .then((array) => { //                             damaged frame fails alone, not its neighbours
          if (this.cache.get(key) === entry) {
            entry.bytes = array.byteLength;
            this.bytes += entry.bytes;
            this.#evict();
          }
          return array;
        }, (error) => { if (this.cache.get(key) === entry) this.cache.delete(key); throw error; });
      entry.promise.catch(() => {}); // frames nobody asked for yet (or past the end) must not raise unhandled
      this.cache.set(key, entry);
      if (s === t) wanted = entry.promise;
    }
    return wanted;
  }

  #evict() {
    for (const [key, entry] of this.cache) {
      if (this.bytes <= this.budget) break;
      if (entry.bytes === 0) continue; // still loading
      this.cache.delete(key);
      this.bytes -= entry.bytes;
    }
  }
}

export function enc(text) { return encodeURIComponent(text); }
