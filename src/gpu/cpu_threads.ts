// How many worker threads llvmpipe should run a model's kernels on when the caller does not say (GpuOptions.cpuThreads,
// Mesa's LP_NUM_THREADS). llvmpipe hands every dispatch to its workers and waits for them: on this project's 2-core
// machine that hand-off costs 20-130 us a dispatch (two thread wake-ups; the long ones when a core had gone idle),
// more than a small model's kernel does. A small model's steps run faster on the submitting thread alone; a large
// one's matmuls need every core. On a machine busy with other work the submitting thread alone also gets a smaller
// share of the cores (under load average ~10 the 16-path job took 2.16x as long with 0 workers: bench/RESULTS.md,
// "Single-stream decode"); `cpuThreads` or LP_NUM_THREADS overrides the choice.
import { specSizes, type ModelSpec } from '../model/spec.js';
import type { Gpu } from './device.js';

/**
 * Matmul weights per token (every layer's q|k|v, o and MLP matrices, and the LM head) below which a model's kernels
 * run on the submitting thread. Measured at two sizes only (bench/RESULTS.md, "llvmpipe threads"): stories260K (0.26M)
 * ran its 16-path job in 0.54-0.69x the time with 0 workers and decoded 1.5x as fast; the SmolLM2-135M shape (134M)
 * was up to ~3x slower in prefill and 16-path steps without the workers. The line between them is a guess: 4M keeps
 * stories15M (15M, a 9.2M LM head whose one dispatch is milliseconds of work) on the worker pool.
 */
export const INLINE_TOKEN_WEIGHTS = 4_000_000;

/** The matmul weights of one layer of `spec`: D * (q + 2 kv) + q * D + (3 or 2) * D * F. */
export function layerWeights(spec: ModelSpec): number {
  const z = specSizes(spec);
  const D = spec.dim;
  return D * z.qkvDim + z.qDim * D + (spec.mlp.gated ? 3 : 2) * D * spec.mlp.hiddenDim;
}

/** The matmul weights one token's forward reads: nLayers * layerWeights + the LM head's V * D. */
export function tokenWeights(spec: ModelSpec): number {
  return spec.nLayers * layerWeights(spec) + spec.vocabSize * spec.dim;
}

/**
 * The llvmpipe worker-thread count for a model when nobody chose one: 0 (kernels on the submitting thread) for models
 * under INLINE_TOKEN_WEIGHTS, undefined (Mesa's default: a worker per core) otherwise. Only Node's llvmpipe route
 * reads it, and the process's first llvmpipe adapter fixes the count for the whole process (gpu/adapters.ts): a
 * larger model loaded later in a process that made its GPU for a small one runs on the submitting thread too.
 */
export function autoCpuThreads(spec: ModelSpec): number | undefined {
  return tokenWeights(spec) < INLINE_TOKEN_WEIGHTS ? 0 : undefined;
}

let warned = false;

/**
 * Warns once per process when a model that autoCpuThreads gives the worker pool (`auto` undefined) runs on a device
 * without it (Gpu.cpuThreads 0): the process's first llvmpipe adapter was made for a smaller model, and Mesa keeps one
 * count per process.
 */
export function warnIfInlineForLargeModel(auto: number | undefined, gpu: Gpu): void {
  if (warned || auto !== undefined || gpu.cpuThreads !== 0) return;
  warned = true;
  console.warn(
    "forklm: llvmpipe runs this process's kernels on the submitting thread (chosen for an earlier, smaller model), " +
      'which is slower for this one. Load it in a process of its own, or set LP_NUM_THREADS (or cpuThreads) before the first engine.',
  );
}
