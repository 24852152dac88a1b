// Fetching from the meshsim viewer server: JSON metadata and raw little-endian frames, with a byte-bounded
// cache and prefetch, so scrubbing back and forth and playback hit memory instead of the network.

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

  positions(traj, src, t) {
    return this.#cached(`p/${traj}/${src}/${t}`, `/api/positions?traj=${enc(traj)}&t=${t}&src=${src}`);
  }

  field(traj, name, src, t) {
    return this.#cached(`f/${traj}/${name}/${src}/${t}`,
      `/api/field?traj=${enc(traj)}&name=${enc(name)}&t=${t}&src=${src}`);
  }

  has(key) { return this.cache.has(key); }

  #cached(key, path) {
    const hit = this.cache.get(key);
    if (hit) { // refresh its place in the LRU order
      this.cache.delete(key);
      this.cache.set(key, hit);
      return hit.promise;
    }
    const entry = { bytes: 0, promise: null };
    entry.promise = this.binary(path, Float32Array).then((array) => {
      if (this.cache.get(key) === entry) {
        entry.bytes = array.byteLength;
        this.bytes += entry.bytes;
        this.#evict();
      }
      return array;
    }, (error) => { this.cache.delete(key); throw error; });
    this.cache.set(key, entry);
    return entry.promise;
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
