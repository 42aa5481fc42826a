// Weight-read benchmark: the projections of one decode step (M = 1) of a SmolLM2-135M-shaped model (30 layers of
// q|k|v 576->960, o 576->576, gate|up 576->3072, down 1536->576, then the tied 576->49152 LM head) with the weights
// in each storage type, through the matmul that reads them (src/kernels/qmatmul.ts; the f32 kernels/matmul.ts as the
// baseline). Random weights from test/ref/quant_random.ts. A type whose block does not divide a row falls back per
// tensor as llama-quantize does (Q4_K -> Q5_0 and Q6_K -> Q8_0 for the 576-wide rows; only down's 1536-wide rows
// stay Q4_K). Reports ms per step, the projections-only tokens/s bound, and GB/s of weights read.
// FORKLM_BENCH_ADAPTERS=llvmpipe (comma list) narrows the adapters; FORKLM_BENCH_QUICK=1 times briefly.
import type { AdapterChoice } from '../src/gpu/adapter_choice.js';
import { createStorage, createStorageFrom } from '../src/gpu/buffers.js';
import { createGpu, type Gpu } from '../src/gpu/device.js';
import { destroySplit, uploadSplit } from '../src/gpu/split_tensor.js';
import { Matmul } from '../src/kernels/matmul.js';
import { QMatmul } from '../src/kernels/qmatmul.js';
import { destroyWeights, uploadWeights } from '../src/weights/gpu_tensor.js';
import { kernelBlock, type StorageType } from '../src/weights/types.js';
import { randomWeights } from '../test/ref/quant_random.js';
import { mulberry32 } from '../test/ref/random.js';
import { benchAdapters, hostRecord, QUICK } from './bench_models.js';
import { round4, startLoadMeter, timeEncode } from './harness.js';

const LAYERS = 30;
/** (K, N) of one layer's projections, then the LM head. */
const LAYER_SHAPES: [string, number, number][] = [
  ['qkv', 576, 960],
  ['o', 576, 576],
  ['gate|up', 576, 3072],
  ['down', 1536, 576],
];
const HEAD: [string, number, number] = ['lm_head', 576, 49152];

/** llama-quantize's per-tensor fallback when a row is not whole blocks of the type (llama-quant.cpp). */
function fallback(type: StorageType, K: number): StorageType {
  if (K % kernelBlock(type) === 0) return type;
  return ({ Q4_K: 'Q5_0', Q5_K: 'Q5_1', Q6_K: 'Q8_0' } as Record<string, StorageType>)[type] ?? 'F16';
}

interface Case {
  /** 'F32 (matmul.ts)' is the f32 baseline through the dense kernel the model uses today. */
  label: string;
  type: StorageType | 'baseline';
}
const CASES: Case[] = [
  { label: 'F32 (kernels/matmul.ts, today)', type: 'baseline' },
  { label: 'F32', type: 'F32' },
  { label: 'F16', type: 'F16' },
  { label: 'Q8_0', type: 'Q8_0' },
  { label: 'Q4_K', type: 'Q4_K' },
];

async function benchCase(gpu: Gpu, c: Case): Promise<object> {
  const rand = mulberry32(7);
  const shapes = [...LAYER_SHAPES, HEAD];
  const x = createStorageFrom(gpu.device, new Float32Array(1536).map(() => rand() - 0.5), 'x (1, 1536) f32');
  const y = createStorage(gpu.device, 49152 * 4, 'y (1, 49152) f32');
  const encoders: ((pass: GPUComputePassEncoder) => void)[] = [];
  const cleanup: (() => void)[] = [];
  let bytesPerStep = 0;
  const types: Record<string, string> = {};
  for (const [name, K, N] of shapes) {
    const reps = name === 'lm_head' ? 1 : LAYERS;
    if (c.type === 'baseline') {
      const w = uploadSplit(gpu, new Float32Array(N * K).map(() => (rand() - 0.5) * 0.1), N, K, name);
      const b = new Matmul(gpu, { K, N, bias: false }).bind({ x, w, y });
      encoders.push((p) => { for (let i = 0; i < reps; i++) b.encode(p, 1); });
      bytesPerStep += reps * N * K * 4;
      types[name] = 'F32';
      cleanup.push(() => (b.destroy(), destroySplit(w)));
    } else {
      const type = fallback(c.type, K);
      const bytes = randomWeights(type, N, K, rand);
      const w = uploadWeights(gpu, type, bytes, N, K, name);
      const b = new QMatmul(gpu, { type, K, N, bias: false, variants: ['decode'] }).bind({ x, w, y });
      encoders.push((p) => { for (let i = 0; i < reps; i++) b.encode(p, 1); });
      bytesPerStep += reps * bytes.length;
      types[name] = type;
      cleanup.push(() => (b.destroy(), destroyWeights(w)));
    }
  }
  // One layer's weights serve all 30 encodes (same bytes read 30 times: what matters is the bytes each step reads).
  const opts = QUICK ? { warmupMs: 0, sampleMs: 20, samples: 2, minSamples: 1, budgetMs: 300 } : { warmupMs: 300, sampleMs: 300, samples: 5, minSamples: 3, budgetMs: 8000 };
  const t = await timeEncode(gpu, (p) => encoders.forEach((e) => e(p)), opts);
  for (const f of cleanup) f();
  x.destroy();
  y.destroy();
  return {
    label: c.label,
    types,
    msPerStep: round4(t.medianMs),
    minMsPerStep: round4(t.minMs),
    projectionTokensPerSecond: round4(1000 / t.medianMs),
    weightBytesPerStep: bytesPerStep,
    gbPerSecond: round4(bytesPerStep / t.medianMs / 1e6),
    samples: t.samples,
  };
}

export async function run(): Promise<object> {
  const stopMeter = await startLoadMeter();
  const adapters: Record<string, object> = {};
  for (const choice of benchAdapters() as AdapterChoice[]) {
    const gpu = await createGpu({ adapter: choice });
    const results: object[] = [];
    for (const c of CASES) {
      console.error(`bench weights: ${choice} ${c.label}`);
      results.push(await benchCase(gpu, c));
    }
    const f32 = results[1] as { msPerStep: number };
    const q4k = results[4] as { msPerStep: number };
    adapters[choice] = { results, q4kSpeedupOverF32: round4(f32.msPerStep / q4k.msPerStep), goal: 3 };
    gpu.destroy();
  }
  return { host: hostRecord(), otherProcessesLoad: await stopMeter(), shape: { layers: LAYERS, layer: LAYER_SHAPES, head: HEAD }, adapters };
}
