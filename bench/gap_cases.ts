// What bench/gap.ts times on both sides (Node and the page import this): matmul at K = N = 2048 with the variant
// forklm runs on CPU adapters for each row count (decode: one thread per output; prefill: 8x8 register blocks).
import type { MatmulVariant } from '../src/kernels/matmul.js';
import { WGSL } from '../src/kernels/wgsl.gen.js';
import type { TimingOptions } from './common/timing.js';

export interface GapCase {
  M: number;
  K: number;
  N: number;
  variant: MatmulVariant;
}

export const GAP_CASES: GapCase[] = [
  { M: 1, K: 2048, N: 2048, variant: 'decode' },
  { M: 8, K: 2048, N: 2048, variant: 'prefill' },
  { M: 128, K: 2048, N: 2048, variant: 'prefill' },
];

/** Short per-case budgets: every configuration runs twice, interleaved, inside a few minutes. */
export function gapTiming(quick: boolean): TimingOptions {
  return quick
    ? { untimedFirst: true, minBatchMs: 0.01, warmupMs: 0, sampleMs: 20, samples: 2, minSamples: 1, budgetMs: 200 }
    : { untimedFirst: true, minBatchMs: 0.01, warmupMs: 100, sampleMs: 50, samples: 5, minSamples: 3, budgetMs: 1500 };
}

/** shaders/matmul_prefill_unrolled.wgsl: the prefill matmul written out (what Chromium's GL route runs since it shipped). */
export const PREFILL_WRITTEN_OUT: string = WGSL.matmul_prefill_unrolled;

/** shaders/matmul_prefill.wgsl as shipped (loops over function-scope arrays), for the rewrites below. */
export const PREFILL_WITH_ARRAYS: string = WGSL.matmul_prefill;

/** The function-scope arrays of PREFILL_WITH_ARRAYS, all MAX_R = 8 long. */
const PREFILL_ARRAYS = /\b(xr|wr|acc|wv|sc)\[(\w+)\](?:\[(\w+)\])?/g;

/** How the prefill matmul's WGSL is built for a measurement. */
export type PrefillSource = 'arrays' | 'written-out' | 'arrays, ANGLE clamps emulated';

/**
 * Rewrites a shader module's code so that the prefill matmul's body is `source`: the shipped array version as is,
 * the written-out candidate, or the array version with every array index clamped as ANGLE clamps it in Chromium
 * (a[i] -> a[int(clamp(float(i), 0.0, 7.0))], seen in the GLSL Mesa receives: MESA_SHADER_CAPTURE_PATH).
 */
export function prefillRewrite(source: PrefillSource): (code: string) => string {
  const body = WGSL.matmul_prefill;
  if (source === 'arrays') return (code) => code;
  const cl = (i: string) => `u32(clamp(f32(${i}), 0.0, 7.0))`;
  const other =
    source === 'written-out' ? PREFILL_WRITTEN_OUT : body.replace(PREFILL_ARRAYS, (_m, a: string, i: string, j?: string) => `${a}[${cl(i)}]${j ? `[${cl(j)}]` : ''}`);
  return (code) => (code.includes(body) ? code.replace(body, () => other) : code);
}

/** Routes every shader module `device` creates through `rewrite`. */
export function rewriteShaders(device: GPUDevice, rewrite: (code: string) => string): void {
  const create = device.createShaderModule.bind(device);
  device.createShaderModule = (d: GPUShaderModuleDescriptor) => create({ ...d, code: rewrite(d.code) });
}
