// Seeded random inputs for tests. Each run draws a fresh seed (so kernels meet new inputs every run) and failures
// print it; FORKLM_TEST_SEED replays a failing run.
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function testSeed(): number {
  const env = typeof process !== 'undefined' ? process.env?.FORKLM_TEST_SEED : undefined;
  return env ? Number(env) : Math.floor(Math.random() * 2 ** 31);
}

/** Uniform in [-scale, scale). */
export function randomF32(rand: () => number, n: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (rand() * 2 - 1) * scale;
  return out;
}

/** Standard normal (Box-Muller) times `scale`. */
export function randomNormal(rand: () => number, n: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(rand(), 1e-12);
    out[i] = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand()) * scale;
  }
  return out;
}
