// How many worker threads llvmpipe should run a model's kernels on when the caller does not say (GpuOptions.cpuThreads,
// Mesa's LP_NUM_THREADS). llvmpipe hands every dispatch to its workers and waits for them: on this project's 2-core
// machine that hand-off costs 20-130 us a dispatch (two thread wake-ups; the long ones when a core had gone idle),
// more than a small model's kernel does. A small model's steps run faster on the submitting thread alone; a large
// one's matmuls need every core.
import { specSizes, type ModelSpec } from '../model/spec.js';

/**
 * Weights per layer (the q|k|v, o and MLP matrices) below which a model's kernels run on the submitting thread.
 * Measured at its two sides only (bench/RESULTS.md, "llvmpipe threads"): stories260K (0.05M per layer) ran its 16-path
 * job in 0.69-0.72x the time with 0 workers and decoded 1.5x as fast; the SmolLM2-135M shape (3.5M per layer) took
 * 1.5-3x as long for prefill and 16-path steps. Where between them the line really lies is not measured.
 */
export const INLINE_LAYER_WEIGHTS = 1 << 20;

/** The matmul weights of one layer of `spec`: D * (q + 2 kv) + q * D + (3 or 2) * D * F. */
export function layerWeights(spec: ModelSpec): number {
  const z = specSizes(spec);
  const D = spec.dim;
  return D * z.qkvDim + z.qDim * D + (spec.mlp.gated ? 3 : 2) * D * spec.mlp.hiddenDim;
}

/**
 * The llvmpipe worker-thread count for a model when nobody chose one: 0 (kernels on the submitting thread) for models
 * whose layers hold fewer than INLINE_LAYER_WEIGHTS weights, undefined (Mesa's default: a worker per core) otherwise.
 * Only Node's llvmpipe route reads it, and only at the process's first llvmpipe device (adapters.ts).
 */
export function autoCpuThreads(spec: ModelSpec): number | undefined {
  return layerWeights(spec) < INLINE_LAYER_WEIGHTS ? 0 : undefined;
}
