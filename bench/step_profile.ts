// Where a decode step's time goes: the model's own bound kernels re-encoded on the buffers the last step left behind,
// timed by category with the harness (many encodes per submit, so the submit round trip is amortised). The forward
// in one encode (the dispatch list of model/forward.ts) against the engine's step time gives the host side: plan,
// upload, submit, readback, JavaScript. Each category reports the fastest of its samples: on the shared machine other
// processes only ever add time, so the minimum is the steadiest estimate of what the kernels cost.
//
// Only call this right after engine.step() with the paths still live and free them afterwards: the forward is
// idempotent (embedding rewrites the residual stream), but the projections category adds into the residual stream
// at every re-encode (o and down accumulate) and rewrites the K/V of the last step's rows (the q|k|v epilogue), as the
// "other" category's rope_kv does for the q/k-norm families.
import type { GpuModel, NamedOp } from '../src/model/gpu_model.js';
import { round4, timeEncode, type TimingOptions } from './common/timing.js';

/** Milliseconds per step, fastest sample of each category. */
export interface StepProfile {
  /** The whole forward (every dispatch of one step), one encode. */
  forwardMs: number;
  /** q|k|v, o, gate|up and down projections of every layer (M = rows). */
  matmulMs: number;
  /** The LM head (M = sampling rows, N = vocabulary). */
  lmHeadMs: number;
  /** Paged attention of every layer. */
  attentionMs: number;
  /** token_stats over the sampling rows' logits. */
  tokenStatsMs: number;
  /** Embedding, the final gather, and what is not folded into a matmul: LayerNorms, post-norms, rope_kv of q/k-norm families. */
  otherMs: number;
}

/** Times the categories for a step of `rows` rows, `samples` sampling rows and page tables `maxPages` wide. */
export async function profileStep(model: GpuModel, rows: number, samples: number, maxPages: number, opts: TimingOptions): Promise<StepProfile> {
  const k = model.kernels;
  const R = rows;
  const S = samples;
  type Category = 'matmul' | 'lmHead' | 'attention' | 'tokenStats' | 'other';
  type Dispatch = [Category, (p: GPUComputePassEncoder) => void];
  // The dispatch order of model/forward.ts encodeForward, each dispatch with its category.
  const category = (op: NamedOp): Category =>
    op.name === 'lm_head' ? 'lmHead' : op.kind === 'token_stats' ? 'tokenStats' : op.kind === 'attention' ? 'attention' : op.kind === 'matmul' ? 'matmul' : 'other';
  const dispatches: Dispatch[] = [
    ...k.embed.map((op): Dispatch => [category(op), (p) => op.run(p, R, maxPages)]),
    ...k.layers.flat().map((op): Dispatch => [category(op), (p) => op.run(p, R, maxPages)]),
    ...k.head.map((op): Dispatch => [category(op), (p) => op.run(p, S, maxPages)]),
  ];
  /** One encode of every dispatch of `category` (all of them: the whole forward), in forward order. */
  const only = (category?: Category) => (p: GPUComputePassEncoder) => {
    for (const [c, f] of dispatches) if (category === undefined || c === category) f(p);
  };
  const gpu = model.gpu;
  const t = async (f: (p: GPUComputePassEncoder) => void) => round4((await timeEncode(gpu, f, opts)).minMs);
  // The forward first, while the buffers hold exactly what the last step computed; "other" last (see above).
  const forwardMs = await t(only());
  const tokenStatsMs = await t(only('tokenStats'));
  const lmHeadMs = await t(only('lmHead'));
  const matmulMs = await t(only('matmul'));
  const attentionMs = await t(only('attention'));
  const otherMs = await t(only('other'));
  return { forwardMs, matmulMs, lmHeadMs, attentionMs, tokenStatsMs, otherMs };
}
