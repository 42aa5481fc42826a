// Kernel benchmark: median ms per call on each CPU adapter, GFLOP/s for matmul (the shapes webgpu-on-cpu.md measured
// and SmolLM2-135M's projections), GB/s for the other kernels in src/kernels. Other kernels are loaded with a
// dynamic import and driven through their bind/encode surface, so a missing or changed kernel is recorded as an
// error entry and the rest still runs. FORKLM_BENCH_ADAPTERS=llvmpipe (comma list) narrows the adapters;
// FORKLM_BENCH_QUICK=1 times a few shapes briefly (numbers meaningless).
import type { AdapterChoice } from '../src/gpu/adapter_choice.js';
import { createStorage, createStorageFrom } from '../src/gpu/buffers.js';
import { createGpu, type Gpu } from '../src/gpu/device.js';
import { destroySplit, uploadSplit } from '../src/gpu/split_tensor.js';
import { Matmul, type MatmulVariant } from '../src/kernels/matmul.js';
import { benchAdapters, hostRecord, QUICK } from './bench_models.js';
import { plainSamplingWords, randomF32, round4, startLoadMeter, timeEncode, timingJson, type TimingOptions } from './harness.js';

/** SmolLM2-135M: hidden 576, MLP 1536, 9 query heads and 3 kv heads of 64, vocabulary 49152. */
const SMOL = { D: 576, F: 1536, heads: 9, kvHeads: 3, hd: 64, V: 49152 };
const QKV = (SMOL.heads + 2 * SMOL.kvHeads) * SMOL.hd; // 960

/** GFLOP/s from shared/webgpu-on-cpu.md (Node, K=N=2048, one thread per output for M=1 and 8, 64x64/4x4 for 128). */
const REFERENCE_GFLOPS: Record<string, Record<number, number>> = {
  llvmpipe: { 1: 3.0, 8: 5.0, 128: 4.7 },
  swiftshader: { 1: 0.27, 8: 0.6, 128: 0.32 },
};

interface MatmulCase {
  label: string;
  M: number;
  K: number;
  N: number;
}
/** The shapes for this adapter: SwiftShader (seconds per 128-row call here) skips the 128-row SmolLM2 shapes. */
function matmulCases(gpu: Gpu): MatmulCase[] {
  if (QUICK) return [...[1, 8].map((M) => ({ label: 'square 2048', M, K: 2048, N: 2048 })), { label: 'smollm2 qkv', M: 1, K: SMOL.D, N: QKV }];
  const slow = gpu.kind === 'swiftshader';
  return [
    ...[1, 8, 128].map((M) => ({ label: 'square 2048', M, K: 2048, N: 2048 })),
    ...(slow ? [1, 8] : [1, 8, 128]).flatMap((M) => [
      { label: 'smollm2 qkv', M, K: SMOL.D, N: QKV },
      { label: 'smollm2 o', M, K: SMOL.D, N: SMOL.D },
      { label: 'smollm2 gate|up', M, K: SMOL.D, N: 2 * SMOL.F },
      { label: 'smollm2 down', M, K: SMOL.F, N: SMOL.D },
    ]),
    ...(slow ? [1] : [1, 8]).map((M) => ({ label: 'smollm2 lm_head', M, K: SMOL.D, N: SMOL.V })),
  ];
}
/** Rows where decode and prefill cross (llvmpipe): both variants forced, K=N=2048. */
const SWEEP_M = QUICK ? [1, 8] : [1, 2, 3, 4, 5, 6, 8, 12, 16];

function timingFor(gpu: Gpu): TimingOptions {
  if (QUICK) return { warmupMs: 0, sampleMs: 20, samples: 2, minSamples: 1, budgetMs: 200 };
  // SwiftShader runs a 2048^2 x 128 matmul in seconds: fewer, longer samples within a per-case budget.
  return gpu.kind === 'swiftshader'
    ? { warmupMs: 0, sampleMs: 100, samples: 5, minSamples: 3, budgetMs: 2500 }
    : { warmupMs: 150, sampleMs: 50, samples: 7, minSamples: 5, budgetMs: 1500 };
}

/** One matmul shape; `variant` forces one, else the bound object's own pick. */
async function benchMatmul(gpu: Gpu, c: MatmulCase, variants: (MatmulVariant | undefined)[]): Promise<object[]> {
  const x = createStorageFrom(gpu.device, randomF32(c.M * c.K), `x (${c.M}, ${c.K}) f32`);
  const w = uploadSplit(gpu, randomF32(c.N * c.K, 0.05), c.N, c.K, `w (${c.N}, ${c.K}) f32`);
  const y = createStorage(gpu.device, c.M * c.N * 4, `y (${c.M}, ${c.N}) f32`);
  const mm = new Matmul(gpu, { K: c.K, N: c.N, bias: false, variants: ['decode', gpu.isCpu ? 'prefill' : 'tiled'] });
  const bound = mm.bind({ x, w, y }, c.label);
  const out: object[] = [];
  for (const forced of variants) {
    const variant = forced ?? bound.variantFor(c.M);
    const t = await timeEncode(gpu, (pass) => bound.encode(pass, c.M, variant), timingFor(gpu));
    const flop = 2 * c.M * c.K * c.N;
    out.push({
      ...c,
      variant,
      chunks: w.chunks.length,
      ...timingJson(t),
      gflops: round4(flop / t.medianMs / 1e6),
      gflopsBest: round4(flop / t.minMs / 1e6),
    });
  }
  bound.destroy();
  destroySplit(w);
  x.destroy();
  y.destroy();
  return out;
}

// ---- The other kernels, through a structural view of their classes (they are other people's files).
type KernelCtor = new (
  gpu: Gpu,
  opts?: unknown,
) => { bind(b: Record<string, unknown>, arg?: unknown): { encode(pass: GPUComputePassEncoder, arg: unknown): void }; layout?: { byteStride: number } };

interface KernelSetup {
  encode: (pass: GPUComputePassEncoder) => void;
  /** Bytes one call must read and write at minimum. */
  bytes: number;
  buffers: GPUBuffer[];
}
interface KernelCase {
  file: string;
  className: string;
  rows: number[];
  setup(gpu: Gpu, K: KernelCtor, rows: number): KernelSetup;
}

const f32 = (gpu: Gpu, n: number, label: string, scale = 1): GPUBuffer => createStorageFrom(gpu.device, randomF32(n, scale), label);
const u32 = (gpu: Gpu, values: number[], label: string): GPUBuffer => createStorageFrom(gpu.device, new Uint32Array(values), label);
const range = (n: number, f: (i: number) => number): number[] => Array.from({ length: n }, (_, i) => f(i));

const { D, F, V } = SMOL;
const KERNEL_CASES: KernelCase[] = [
  {
    file: 'residual_add', className: 'ResidualAdd', rows: [1, 128],
    setup(gpu, K, R) {
      const x = f32(gpu, R * D, 'x'), y = f32(gpu, R * D, 'y', 1e-3);
      const k = new K(gpu).bind({ x, y });
      return { encode: (p) => k.encode(p, R * D), bytes: 3 * R * D * 4, buffers: [x, y] };
    },
  },
  {
    file: 'rmsnorm', className: 'RmsNorm', rows: [1, 128],
    setup(gpu, K, R) {
      const x = f32(gpu, R * D, 'x'), weight = f32(gpu, D, 'weight'), y = createStorage(gpu.device, R * D * 4, 'y');
      const k = new K(gpu, { dim: D, eps: 1e-5 }).bind({ x, weight, y });
      return { encode: (p) => k.encode(p, R), bytes: (2 * R * D + D) * 4, buffers: [x, weight, y] };
    },
  },
  {
    file: 'layernorm', className: 'LayerNorm', rows: [1, 128],
    setup(gpu, K, R) {
      const x = f32(gpu, R * D, 'x'), weight = f32(gpu, D, 'weight'), bias = f32(gpu, D, 'bias');
      const y = createStorage(gpu.device, R * D * 4, 'y');
      const k = new K(gpu, { dim: D, eps: 1e-5 }).bind({ x, weight, bias, y });
      return { encode: (p) => k.encode(p, R), bytes: (2 * R * D + 2 * D) * 4, buffers: [x, weight, bias, y] };
    },
  },
  {
    // q/k RoPE and the KV write of k and v in one dispatch, as the model runs it (no q/k norm: SmolLM2 has none).
    file: 'rope_kv', className: 'RopeKv', rows: [1, 128],
    setup(gpu, K, R) {
      const pageSize = 16;
      const pages = Math.ceil(R / pageSize);
      const qkv = f32(gpu, R * QKV, 'qkv'), positions = u32(gpu, range(R, (i) => i), 'positions');
      const slots = u32(gpu, range(R, (i) => i), 'slots');
      const kv = createStorage(gpu.device, pages * 2 * SMOL.kvHeads * pageSize * SMOL.hd * 4, 'kv');
      const op = new K(gpu, { nHeads: SMOL.heads, kvHeads: SMOL.kvHeads, headDim: SMOL.hd, pageSize, qkvStride: QKV, qkNorm: 'none' });
      const invFreq = Array.from({ length: SMOL.hd / 2 }, (_, i) => 1e5 ** ((-2 * i) / SMOL.hd));
      const k = op.bind({ qkv, positions, slots, kv }, { invFreq });
      const heads = SMOL.heads + SMOL.kvHeads;
      return { encode: (p) => k.encode(p, R), bytes: (2 * R * heads * SMOL.hd + 2 * R * SMOL.kvHeads * SMOL.hd + 2 * R) * 4, buffers: [qkv, positions, slots, kv] };
    },
  },
  {
    file: 'mlp_act', className: 'MlpAct', rows: [1, 128],
    setup(gpu, K, R) {
      const input = f32(gpu, R * 2 * F, 'gateUp'), out = createStorage(gpu.device, R * F * 4, 'out');
      const k = new K(gpu, { hidden: F }).bind({ input, out });
      return { encode: (p) => k.encode(p, R), bytes: 3 * R * F * 4, buffers: [input, out] };
    },
  },
  {
    file: 'embedding', className: 'Embedding', rows: [1, 128],
    setup(gpu, K, R) {
      const vocab = 8192; // the gather's cost does not depend on the table's length
      const table = uploadSplit(gpu, randomF32(vocab * D), vocab, D, 'table');
      const ids = u32(gpu, range(R, () => Math.floor(Math.random() * vocab)), 'ids');
      const out = createStorage(gpu.device, R * D * 4, 'out');
      const k = new K(gpu, { dim: D }).bind({ table, ids, out });
      return { encode: (p) => k.encode(p, R), bytes: (2 * R * D + R) * 4, buffers: [...table.chunks.map((c) => c.buffer), ids, out] };
    },
  },
  {
    // Decode: R paths, one row each, every row at position 511 of its own 512-token context.
    file: 'paged_attention', className: 'PagedAttention', rows: [1, 8],
    setup(gpu, K, R) {
      const pageSize = 16, ctx = 512, maxPages = ctx / pageSize;
      const q = f32(gpu, R * QKV, 'qkv');
      const kv = f32(gpu, R * maxPages * 2 * SMOL.kvHeads * pageSize * SMOL.hd, 'kv');
      const rowPath = u32(gpu, range(R, (i) => i), 'rowPath');
      const positions = u32(gpu, range(R, () => ctx - 1), 'positions');
      const pageTable = u32(gpu, range(R * maxPages, (i) => i), 'pageTable');
      const out = createStorage(gpu.device, R * D * 4, 'out');
      const k = new K(gpu, { nHeads: SMOL.heads, kvHeads: SMOL.kvHeads, headDim: SMOL.hd, pageSize, qStride: QKV })
        .bind({ q, kv, rowPath, positions, pageTable, out });
      return {
        encode: (p) => k.encode(p, { rows: R, maxPages }),
        bytes: (R * ctx * 2 * SMOL.kvHeads * SMOL.hd + 2 * R * D) * 4,
        buffers: [q, kv, rowPath, positions, pageTable, out],
      };
    },
  },
  {
    // S rows of SmolLM2's 49152 logits; temperature 1, top-p 1, one sample each.
    file: 'token_stats', className: 'TokenStats', rows: [1, 8],
    setup(gpu, K, S) {
      const op = new K(gpu, { vocab: V, topK: 5, maxSamples: 4 });
      const logits = f32(gpu, S * V, 'logits', 8);
      const sampling = createStorageFrom(gpu.device, plainSamplingWords(S), 'sampling');
      const stats = createStorage(gpu.device, S * (op.layout?.byteStride ?? 4096), 'stats');
      const k = op.bind({ logits, sampling, stats });
      return { encode: (p) => k.encode(p, S), bytes: S * V * 4, buffers: [logits, sampling, stats] };
    },
  },
];

async function benchKernel(gpu: Gpu, c: KernelCase): Promise<object[]> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(new URL(`../src/kernels/${c.file}.ts`, import.meta.url).href)) as Record<string, unknown>;
  } catch (e) {
    return [{ kernel: c.file, skipped: `not loadable: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}` }];
  }
  const ctor = mod[c.className];
  if (typeof ctor !== 'function') return [{ kernel: c.file, skipped: `no export ${c.className}` }];
  const out: object[] = [];
  for (const rows of QUICK ? c.rows.slice(0, 1) : c.rows) {
    let s: KernelSetup | undefined;
    try {
      s = c.setup(gpu, ctor as KernelCtor, rows);
      const setup = s;
      const t = await timeEncode(gpu, (p) => setup.encode(p), timingFor(gpu));
      out.push({ kernel: c.file, rows, bytes: s.bytes, ...timingJson(t), gbps: round4(s.bytes / t.medianMs / 1e6) });
    } catch (e) {
      out.push({ kernel: c.file, rows, error: e instanceof Error ? e.message.split('\n')[0] : String(e) });
    } finally {
      for (const b of s?.buffers ?? []) b.destroy();
    }
  }
  return out;
}

async function benchAdapter(choice: AdapterChoice): Promise<object> {
  let gpu: Gpu;
  try {
    gpu = await createGpu({ adapter: choice });
  } catch (e) {
    return { adapter: choice, error: e instanceof Error ? e.message : String(e) };
  }
  const log = (s: string): void => void console.error(`  [${choice}] ${s}`);
  const stopMeter = await startLoadMeter();
  const matmul: object[] = [];
  for (const c of matmulCases(gpu)) {
    log(`matmul ${c.label} M=${c.M}`);
    matmul.push(...(await benchMatmul(gpu, c, [undefined])));
  }
  const sweep: object[] = [];
  if (choice === 'llvmpipe') {
    for (const M of SWEEP_M) {
      log(`sweep M=${M}`);
      sweep.push(...(await benchMatmul(gpu, { label: 'sweep 2048', M, K: 2048, N: 2048 }, ['decode', 'prefill'])));
    }
  }
  const kernels: object[] = [];
  for (const c of KERNEL_CASES) {
    log(c.file);
    kernels.push(...(await benchKernel(gpu, c)));
  }
  const ref = REFERENCE_GFLOPS[choice] ?? {};
  const vsReference = matmul
    .map((r) => r as { label: string; M: number; gflops: number })
    .filter((r) => r.label === 'square 2048' && ref[r.M] !== undefined)
    .map((r) => ({ M: r.M, gflops: r.gflops, reference: ref[r.M], ratio: round4(r.gflops / ref[r.M]) }));
  // The share of the machine other processes used meanwhile: medians on a shared machine depend on it.
  const otherLoad = await stopMeter();
  const result = { adapter: choice, name: gpu.name, isCpu: gpu.isCpu, otherLoad, vsReference, matmul, sweep, kernels };
  gpu.destroy();
  return result;
}

export async function run(): Promise<object> {
  const adapters: object[] = [];
  for (const choice of benchAdapters()) adapters.push(await benchAdapter(choice));
  return {
    date: new Date().toISOString(),
    machine: hostRecord(),
    quick: QUICK,
    note: 'ms per call: median and min of several batched samples; gflops from the median, gflopsBest from the min',
    adapters,
  };
}
