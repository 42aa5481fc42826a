// Kernel timings in the page: matmul at the shapes shared/webgpu-on-cpu.md measured (K=N=2048; M=1 and 8 are decode,
// M=128 prefill, llvmpipe only: SwiftShader takes seconds per call) and token_stats over a 32000-token vocabulary
// (Llama-2's) with the engine's defaults (top-20, up to 8 draws per row), plus the two round trips a step pays
// (submit + onSubmittedWorkDone, and a small mapAsync readback), which are what differ most from Node.
import { createStorage, createStorageFrom } from '../../src/gpu/buffers.js';
import type { Gpu } from '../../src/gpu/device.js';
import { readBuffer } from '../../src/gpu/readback.js';
import { destroySplit, uploadSplit } from '../../src/gpu/split_tensor.js';
import { Matmul, type MatmulVariant } from '../../src/kernels/matmul.js';
import { TokenStats } from '../../src/kernels/token_stats.js';
import type { BrowserAdapter } from './api.js';
import { plainSamplingWords, randomF32, round4, timeCalls, timeEncode, timingJson, type TimingOptions } from '../common/timing.js';

/** GFLOP/s measured in Chromium and in Node by shared/webgpu-on-cpu.md (K=N=2048, one thread per output for M=1, 8). */
export const DOC_CHROMIUM_GFLOPS: Record<BrowserAdapter, Record<number, number>> = {
  swiftshader: { 1: 0.55, 8: 1.14, 128: 0.32 },
  llvmpipe: { 1: 2.1, 8: 5.3, 128: 3.9 },
};

/**
 * Chromium compiles a pipeline at its first use (keep that out of the batch sizing) and coarsens performance.now()
 * to 100 us without cross-origin isolation (never size a batch from a warm-up faster than 0.01 ms).
 */
const PAGE_TIMING: TimingOptions = { untimedFirst: true, minBatchMs: 0.01 };

export function timingFor(adapter: BrowserAdapter, quick: boolean): TimingOptions {
  if (quick) return { ...PAGE_TIMING, warmupMs: 0, sampleMs: 20, samples: 2, minSamples: 1, budgetMs: 200 };
  // SwiftShader and llvmpipe's 128-row calls take 0.1-2 s each: a per-case budget, at least 3 samples.
  return adapter === 'swiftshader'
    ? { ...PAGE_TIMING, warmupMs: 0, sampleMs: 100, samples: 5, minSamples: 3, budgetMs: 2500 }
    : { ...PAGE_TIMING, warmupMs: 150, sampleMs: 50, samples: 7, minSamples: 3, budgetMs: 2000 };
}

/** One shape: the variant forklm picks, then each of `forced` (its other variants), one record each. */
export async function benchMatmul(gpu: Gpu, M: number, K: number, N: number, o: TimingOptions, forced: MatmulVariant[] = []): Promise<object[]> {
  const x = createStorageFrom(gpu.device, randomF32(M * K), `x (${M}, ${K}) f32`);
  const w = uploadSplit(gpu, randomF32(N * K, 0.05), N, K, `w (${N}, ${K}) f32`);
  const y = createStorage(gpu.device, M * N * 4, `y (${M}, ${N}) f32`);
  // With both wide variants built, variantFor still picks what the engine would (prefill on CPU, tiled on GPU).
  const mm = new Matmul(gpu, forced.length ? { K, N, bias: false, variants: [...new Set<MatmulVariant>(['decode', ...forced])] } : { K, N, bias: false });
  const bound = mm.bind({ x, w, y }, `square ${K}`);
  const picked = bound.variantFor(M);
  const flop = 2 * M * K * N;
  const out: object[] = [];
  try {
    for (const variant of [picked, ...forced.filter((v) => v !== picked)]) {
      const t0 = performance.now();
      const t = await timeEncode(gpu, (pass) => bound.encode(pass, M, variant), o);
      out.push({
        label: `square ${K}`, M, K, N, variant, picked: variant === picked, ...timingJson(t), wallMs: Math.round(performance.now() - t0),
        gflops: round4(flop / t.medianMs / 1e6), gflopsBest: round4(flop / t.minMs / 1e6),
      });
    }
    return out;
  } finally {
    bound.destroy();
    mm.destroy();
    destroySplit(w);
    x.destroy();
    y.destroy();
  }
}

async function benchTokenStats(gpu: Gpu, S: number, V: number, o: TimingOptions): Promise<object> {
  const op = new TokenStats(gpu, { vocab: V, topK: 20, maxSamples: 8 });
  const logits = createStorageFrom(gpu.device, randomF32(S * V, 8), `logits (${S}, ${V}) f32`);
  const sampling = createStorageFrom(gpu.device, plainSamplingWords(S), `sampling (${S}, 4) u32`);
  const stats = createStorage(gpu.device, S * op.layout.byteStride, `stats (${S}, stride) u32`);
  const k = op.bind({ logits, sampling, stats });
  try {
    const t0 = performance.now();
    const t = await timeEncode(gpu, (pass) => k.encode(pass, S), o);
    const wallMs = Math.round(performance.now() - t0);
    return { kernel: 'token_stats', rows: S, vocab: V, workgroupSize: op.workgroupSize, ...timingJson(t), wallMs, gbps: round4((S * V * 4) / t.medianMs / 1e6) };
  } finally {
    logits.destroy();
    sampling.destroy();
    stats.destroy();
  }
}

/** Submit of an empty command buffer + onSubmittedWorkDone, and a copy + mapAsync of 4 KiB (a step's readback size). */
async function roundTrips(gpu: Gpu, quick: boolean): Promise<object> {
  const n = quick ? 3 : 40;
  const submit = await timeCalls(n, async () => {
    gpu.device.queue.submit([gpu.device.createCommandEncoder().finish()]);
    await gpu.device.queue.onSubmittedWorkDone();
  });
  const src = createStorageFrom(gpu.device, randomF32(1024), 'readback src (1024) f32');
  const readback = await timeCalls(n, async () => void (await readBuffer(gpu, src, 4096)));
  src.destroy();
  return { submitMs: submit, readback4KiBMs: readback };
}

export async function kernelsSection(gpu: Gpu, adapter: BrowserAdapter, quick: boolean): Promise<object> {
  const o = timingFor(adapter, quick);
  const Ms = quick ? [1] : adapter === 'llvmpipe' ? [1, 8, 128] : [1, 8];
  const matmul: object[] = [];
  for (const M of Ms) {
    try {
      // Where variants compete: at 8 rows one thread per output (decode) against 8x8 register blocks (prefill, the
      // pick from 5 rows on CPU adapters); at 128 rows prefill against the GPU variant (64x64 shared-memory tiles),
      // what taking llvmpipe for a GPU would cost (Chromium hides its identity without developer features).
      const forced: MatmulVariant[] = M === 8 ? ['decode', 'prefill'] : M >= 128 ? ['prefill', 'tiled'] : [];
      matmul.push(...(await benchMatmul(gpu, M, 2048, 2048, o, forced)));
    } catch (e) {
      matmul.push({ label: 'square 2048', M, error: e instanceof Error ? e.message : String(e) });
    }
  }
  const tokenStats: object[] = [];
  for (const S of quick ? [1] : [1, 8]) {
    try {
      tokenStats.push(await benchTokenStats(gpu, S, 32000, o));
    } catch (e) {
      tokenStats.push({ kernel: 'token_stats', rows: S, error: e instanceof Error ? e.message : String(e) });
    }
  }
  const ref = DOC_CHROMIUM_GFLOPS[adapter];
  const vsDoc = matmul
    .map((r) => r as { M: number; gflops?: number; picked?: boolean })
    .filter((r) => r.picked && r.gflops !== undefined && ref[r.M] !== undefined)
    .map((r) => ({ M: r.M, gflops: r.gflops, docChromium: ref[r.M], ratio: round4(r.gflops! / ref[r.M]) }));
  return { matmul, tokenStats, vsDoc, roundTrips: await roundTrips(gpu, quick) };
}
