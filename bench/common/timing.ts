// Timing for GPU benchmarks with no Node API, so the Node benches (through bench/harness.ts) and the Chromium page
// (bench/browser_page/) time the same way: warm up, then time batches of encodes recorded in one compute pass and
// submitted once, awaiting queue.onSubmittedWorkDone(). Batching hides the submit round trip (0.04 ms in Node, up to
// 2 ms in Chromium, whose performance.now() is also coarsened to 100 us) so a sample measures the kernels. The
// machines are shared and noisy: we report the median of several samples (what a run typically sees) and the minimum
// (what the kernel can do on idle cores).
import type { Gpu } from '../../src/gpu/device.js';

export interface TimingOptions {
  /** Time spent warming up (compilation on first use, caches) before sampling; at least one batch runs. */
  warmupMs?: number;
  /** Target duration of one sample; sets how many dispatches a batch records. */
  sampleMs?: number;
  /** Samples to take. */
  samples?: number;
  /** Stop sampling once this much time has gone by (keeps slow adapters within budget), after minSamples. */
  budgetMs?: number;
  minSamples?: number;
  /** Most dispatches per batch. */
  maxBatch?: number;
  /**
   * Run one untimed batch first. Chromium compiles a pipeline at its first use, which would otherwise count as the
   * fastest warm-up batch and size the sample batches far too small.
   */
  untimedFirst?: boolean;
  /** Floor of the fastest warm-up batch's ms when sizing batches (Chromium's clock cannot resolve less than 0.01). */
  minBatchMs?: number;
}

export interface Timing {
  /** Median milliseconds per encode over the samples. */
  medianMs: number;
  minMs: number;
  maxMs: number;
  samples: number;
  /** Encodes recorded per submitted batch. */
  batch: number;
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

/** Rounds for JSON: 4 significant digits. */
export function round4(v: number): number {
  return Number.isFinite(v) ? Number(v.toPrecision(4)) : v;
}

/** Records `count` encodes in one compute pass, submits, and waits for the GPU. Returns wall milliseconds. */
export async function runBatch(gpu: Gpu, encode: (pass: GPUComputePassEncoder) => void, count: number): Promise<number> {
  gpu.checkLost();
  const t0 = performance.now();
  const enc = gpu.device.createCommandEncoder();
  const pass = enc.beginComputePass();
  for (let i = 0; i < count; i++) encode(pass);
  pass.end();
  gpu.device.queue.submit([enc.finish()]);
  await gpu.device.queue.onSubmittedWorkDone();
  return performance.now() - t0;
}

/** Times one encode (which may be several dispatches): warmup, then `samples` batches. */
export async function timeEncode(gpu: Gpu, encode: (pass: GPUComputePassEncoder) => void, opts: TimingOptions = {}): Promise<Timing> {
  const warmupMs = opts.warmupMs ?? 200;
  const sampleMs = opts.sampleMs ?? 60;
  const samples = opts.samples ?? 7;
  const budgetMs = opts.budgetMs ?? 4000;
  const minSamples = opts.minSamples ?? 3;
  const maxBatch = opts.maxBatch ?? 2000;
  if (opts.untimedFirst) await runBatch(gpu, encode, 1);
  const start = performance.now();

  let best = await runBatch(gpu, encode, 1);
  while (performance.now() - start < warmupMs) best = Math.min(best, await runBatch(gpu, encode, 1));
  const batch = Math.max(1, Math.min(maxBatch, Math.round(sampleMs / Math.max(best, opts.minBatchMs ?? 1e-3))));

  const per: number[] = [];
  const t0 = performance.now();
  while (per.length < samples && (per.length < minSamples || performance.now() - t0 < budgetMs)) {
    per.push((await runBatch(gpu, encode, batch)) / batch);
  }
  return { medianMs: median(per), minMs: Math.min(...per), maxMs: Math.max(...per), samples: per.length, batch };
}

/** A timing as the kernel benchmarks record it. */
export function timingJson(t: Timing): Record<string, number> {
  return { medianMs: round4(t.medianMs), minMs: round4(t.minMs), samples: t.samples, batch: t.batch };
}

/** Median and min of `n` calls of an async operation (round trips: submit, readback), after one untimed call. */
export async function timeCalls(n: number, f: () => Promise<void>): Promise<{ medianMs: number; minMs: number; calls: number }> {
  await f();
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await f();
    ms.push(performance.now() - t0);
  }
  return { medianMs: round4(median(ms)), minMs: round4(Math.min(...ms)), calls: n };
}

/** Uniform random values in [-scale, scale) (Math.random: kernel timings do not depend on the values). */
export function randomF32(n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (Math.random() * 2 - 1) * scale;
  return a;
}

/**
 * token_stats' per-row sampling words, (rows, 4) u32: temperature 1 and top-p 1 (as f32 bits), fresh random bits,
 * one draw: plain sampling, what a decode step asks for.
 */
export function plainSamplingWords(rows: number): Uint32Array {
  const words = new Uint32Array(rows * 4);
  const fl = new Float32Array(words.buffer);
  for (let r = 0; r < rows; r++) {
    fl[r * 4] = 1;
    fl[r * 4 + 1] = 1;
    words[r * 4 + 2] = (Math.random() * 2 ** 32) >>> 0;
    words[r * 4 + 3] = 1;
  }
  return words;
}
