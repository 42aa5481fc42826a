// When a layer's out-projection, MLP norm + gate|up and down run as one mlp_block dispatch (kernels/mlp_block.ts)
// instead of three matmuls, and the op that picks per step. Same bits either way (the kernel's header), so the choice
// is speed only: measured on llvmpipe in Node and on Chromium's GL route, stories260K's 16-row steps (bench/RESULTS.md "Peers").
import { onLlvmpipe } from '../gpu/adapters.js';
import type { Gpu } from '../gpu/device.js';
import { PREFILL_MIN_M } from '../kernels/matmul.js';
import { MlpBlock, mlpBlockLoopIterations, type BoundMlpBlock } from '../kernels/mlp_block.js';
import { LOOP_BUDGET } from '../kernels/token_stats.js';
import type { WeightTensor } from '../weights/gpu_tensor.js';
import type { GpuLayerWeights as GpuLayer, GpuMatrix } from './gpu_weights.js';
import type { NamedOp } from './model_options.js';
import { downSplits } from './projections.js';
import type { ModelSpec } from './spec.js';

const oneF32Chunk = (t: WeightTensor) => t.type === 'F32' && t.chunks.length === 1;
const plainMatrix = (m: GpuMatrix) => m.parts.length === 1 && oneF32Chunk(m.parts[0]);

/**
 * The block's kernel for this model's layers, or null where they keep three matmuls: only on llvmpipe (gpu/adapters.ts
 * onLlvmpipe: in Node, where a dispatch's hand-off costs about what a small projection computes, and on Chromium's GL
 * route, where the block runs written out: 0.82-0.84x the three matmuls at 16 rows, bench/RESULTS.md "Peers";
 * elsewhere unmeasured), for pre-norm RMS models
 * with a gated MLP, F32 weights in one chunk, no biases, and widths that are multiples of 4.
 */
export function mlpBlockFor(gpu: Gpu, s: ModelSpec, layers: readonly GpuLayer[]): MlpBlock | null {
  if (!onLlvmpipe(gpu)) return null;
  if (s.norm.kind !== 'rms' || s.residual.layout !== 'sequential' || !s.mlp.gated) return null;
  const qDim = s.attention.nHeads * s.attention.headDim;
  const shape = { dim: s.dim, qDim, hidden: s.mlp.hiddenDim, eps: s.norm.eps, act: s.mlp.activation };
  if ([shape.dim, shape.qDim, shape.hidden].some((v) => v % 4 !== 0)) return null;
  if (mlpBlockLoopIterations(shape) > LOOP_BUDGET) return null;
  // mlpBlockOp takes the block only at R >= PREFILL_MIN_M rows below downSplits: a model too wide for it even at the
  // fewest rows never would (SmolLM2-135M, stories15M), so it does not compile the pipeline for nothing.
  if (downSplits(PREFILL_MIN_M, shape.hidden, shape.dim)) return null;
  for (const l of layers) {
    if (!l.mlpNorm || l.mlpNorm.bias || l.attnPostNorm || l.mlpPostNorm || l.bo || l.bGateUp || l.bDown) return null;
    if (![l.wo, l.wGateUp, l.wDown].every(plainMatrix)) return null;
  }
  return new MlpBlock(gpu, shape);
}

/**
 * One op for a layer's o, gate|up and down: the block at wide steps whose down projection keeps the activation
 * folded in (the register-blocked matmuls' case that the block mirrors, below downSplits), else the three matmuls.
 */
export function mlpBlockOp(name: string, block: BoundMlpBlock, layered: readonly NamedOp[], s: ModelSpec): NamedOp {
  const useBlock = (R: number) => R >= PREFILL_MIN_M && !downSplits(R, s.mlp.hiddenDim, s.dim);
  return {
    name,
    kind: 'matmul',
    run: (pass, R, maxPages) => {
      if (useBlock(R)) block.encode(pass, R);
      else for (const op of layered) op.run(pass, R, maxPages);
    },
    destroy: () => {
      block.destroy();
      for (const op of layered) op.destroy();
    },
  };
}
