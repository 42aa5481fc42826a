// The cases of the weight-read benchmark (bench/weights.ts in Node, bench/weights_page/ in Chromium): the
// projections of one decode step (M = 1) of a SmolLM2-135M-shaped model with the weights in each storage type, built
// on a Gpu, and their timing in interleaved rounds. Environment-free (no node: imports), so the page runs it as is.
import { createStorage, createStorageFrom } from '../../src/gpu/buffers.js';
import type { Gpu } from '../../src/gpu/device.js';
import { destroySplit, uploadSplit } from '../../src/gpu/split_tensor.js';
import { Matmul } from '../../src/kernels/matmul.js';
import { QMatmul, type DecodeActivations } from '../../src/kernels/qmatmul.js';
import { destroyWeights, uploadWeights } from '../../src/weights/gpu_tensor.js';
import { kernelBlock, type StorageType } from '../../src/weights/types.js';
import { randomWeights } from '../../test/ref/quant_random.js';
import { mulberry32 } from '../../test/ref/random.js';
import { median, round4, runBatch } from './timing.js';

export const LAYERS = 30;
/** Adapters where a step takes seconds: fewer rounds, so the whole benchmark stays within a few minutes. */
export const SLOW = new Set<string>(['swiftshader']);
/** (K, N) of one layer's projections, then the LM head. */
export const LAYER_SHAPES: [string, number, number][] = [
  ['qkv', 576, 960],
  ['o', 576, 576],
  ['gate|up', 576, 3072],
  ['down', 1536, 576],
];
export const HEAD: [string, number, number] = ['lm_head', 576, 49152];

/** llama-quantize's per-tensor fallback when a row is not whole blocks of the type (llama-quant.cpp). */
function fallback(type: StorageType, K: number): StorageType {
  if (K % kernelBlock(type) === 0) return type;
  return ({ Q4_K: 'Q5_0', Q5_K: 'Q5_1', Q6_K: 'Q8_0' } as Record<string, StorageType>)[type] ?? 'F16';
}

export interface Case {
  /** 'F32 (matmul.ts)' is the f32 baseline through the dense kernel the model uses today. */
  label: string;
  type: StorageType | 'baseline';
  /** Decode activations for the QMatmul cases (default 'q8': 8-bit x where the type has an integer dot step). */
  activations?: DecodeActivations;
}
export const CASES: Case[] = [
  { label: 'F32 (kernels/matmul.ts, today)', type: 'baseline' },
  { label: 'F32', type: 'F32' },
  { label: 'F16', type: 'F16' },
  { label: 'Q8_0', type: 'Q8_0' },
  { label: 'Q5_0', type: 'Q5_0' },
  // What the model runs (its default, activations 'q8'): 8-bit x at every M (quantize_x8 + qmatmul_q8).
  { label: 'Q4_K (8-bit x: the model)', type: 'Q4_K' },
  { label: 'Q4_K (f32 x, dot step)', type: 'Q4_K', activations: 'f32' },
  // What the model runs with activations: 'f32': f32 x through the register-blocked body at every M.
  { label: 'Q4_K (f32 x, blocked: activations f32)', type: 'Q4_K', activations: 'f32-blocked' },
];

export interface Built {
  label: string;
  types: Record<string, string>;
  bytesPerStep: number;
  encode: (pass: GPUComputePassEncoder) => void;
  cleanup: () => void;
}

export function buildCase(gpu: Gpu, c: Case): Built {
  const rand = mulberry32(7);
  const shapes = [...LAYER_SHAPES, HEAD];
  const x = createStorageFrom(gpu.device, new Float32Array(1536).map(() => rand() - 0.5), 'x (1, 1536) f32');
  const y = createStorage(gpu.device, 49152 * 4, 'y (1, 49152) f32');
  const encoders: ((pass: GPUComputePassEncoder) => void)[] = [];
  const cleanup: (() => void)[] = [() => (x.destroy(), y.destroy())];
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
      const b = new QMatmul(gpu, { type, K, N, bias: false, variants: ['decode'], activations: c.activations }).bind({ x, w, y });
      encoders.push((p) => { for (let i = 0; i < reps; i++) b.encode(p, 1); });
      bytesPerStep += reps * bytes.length;
      types[name] = type;
      cleanup.push(() => (b.destroy(), destroyWeights(w)));
    }
  }
  // One layer's weights serve all 30 encodes (same bytes read 30 times: what matters is the bytes each step reads).
  return { label: c.label, types, bytesPerStep, encode: (p) => encoders.forEach((e) => e(p)), cleanup: () => cleanup.forEach((f) => f()) };
}

/**
 * Times every case in interleaved rounds (one step of each case per round), so that all cases see the same load
 * from other processes. `cpuMs` (Node: this process's CPU time, where the adapters' worker threads run; none in a
 * page, whose GPU process is another process) adds CPU time per step, which other processes' load disturbs much less
 * than wall time on a shared machine.
 */
export async function timeCases(gpu: Gpu, built: Built[], rounds: number, cpuMs?: () => number): Promise<CaseResult[]> {
  const wall: number[][] = built.map(() => []);
  const cpu: number[][] = built.map(() => []);
  for (const b of built) await runBatch(gpu, b.encode, 1); // warmup: first use of every pipeline
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < built.length; i++) {
      const c0 = cpuMs?.() ?? 0;
      wall[i].push(await runBatch(gpu, built[i].encode, 1));
      if (cpuMs) cpu[i].push(cpuMs() - c0);
    }
  }
  return built.map((b, i) => {
    const ms = median(wall[i]);
    return {
      label: b.label,
      types: b.types,
      msPerStep: round4(ms),
      minMsPerStep: round4(Math.min(...wall[i])),
      ...(cpuMs ? { cpuMsPerStep: round4(median(cpu[i])), minCpuMsPerStep: round4(Math.min(...cpu[i])) } : {}),
      projectionTokensPerSecond: round4(1000 / ms),
      weightBytesPerStep: b.bytesPerStep,
      gbPerSecond: round4(b.bytesPerStep / ms / 1e6),
      samples: wall[i].length,
    };
  });
}

export interface CaseResult {
  label: string;
  types: Record<string, string>;
  msPerStep: number;
  minMsPerStep: number;
  cpuMsPerStep?: number;
  minCpuMsPerStep?: number;
  projectionTokensPerSecond: number;
  weightBytesPerStep: number;
  gbPerSecond: number;
  samples: number;
}

/**
 * Goal (issue 12): Q4_K decode >= 3x F32 decode. Each case against the best F32 forklm has (the faster of
 * kernels/matmul.ts and the stored-type kernel, in this run), in wall clock and, where measured, in CPU time.
 */
export function summarize(results: CaseResult[]): object {
  const f32s = results.slice(0, 2);
  const bestWall = Math.min(...f32s.map((r) => r.msPerStep));
  const out: Record<string, unknown> = {
    results,
    speedupOverBestF32: Object.fromEntries(results.map((r) => [r.label, round4(bestWall / r.msPerStep)])),
  };
  if (results.every((r) => r.cpuMsPerStep !== undefined)) {
    const bestCpu = Math.min(...f32s.map((r) => r.cpuMsPerStep!));
    out.speedupOverBestF32Cpu = Object.fromEntries(results.map((r) => [r.label, round4(bestCpu / r.cpuMsPerStep!)]));
  }
  out.goal = 3;
  return out;
}
