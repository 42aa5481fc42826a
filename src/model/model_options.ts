// The options a model takes at construction (the engine passes them through) and the step-op types its kernels are
// bound as (model/gpu_model.ts builds them, model/forward.ts runs them).
import type { DecodeFusedOption } from './decode_fused_rule.js';
import type { PagedAttentionVariant } from '../kernels/paged_attention.js';
import type { UploadProgress } from './gpu_weights.js';
import type { WeightsMode } from '../weights/stored_matrix.js';

export interface ModelOptions {
  /** Rows one step may compute (prompt-chunk rows + decode rows). Default 256. */
  maxRows?: number;
  /** Paths that may sample in one step. Default 64. */
  maxSamples?: number;
  /** KV tokens per page. Default 16. */
  pageSize?: number;
  /** KV pages in the pool; default: as many as fit kvBudgetBytes. */
  kvPages?: number;
  /** Bytes for the KV pool across layers when kvPages is not given. Default 256 MiB. */
  kvBudgetBytes?: number;
  /** top-k kept by token_stats (DeepConf uses 20). Default 20. */
  topK?: number;
  /** Most tokens drawn without replacement for one path in one step (the largest branch factor). Default 8. */
  maxBranch?: number;
  /**
   * How the GPU holds weight matrices: 'as-stored' (default: each in its file's type, F16/BF16 and GGUF quantizations
   * dequantized inside the kernels), 'f16' (every matrix F16) or 'f32' (every matrix F32: most precise, most memory).
   */
  weights?: WeightsMode;
  /**
   * How projections on Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K and Q6_K weights take their input: 'q8' (default)
   * quantized to 8 bits per 32 values, as llama.cpp does for its quantized dot products, with integer products (faster
   * on CPU adapters: bench/RESULTS.md "Weights"); 'f32' in f32 (closer to the float64 forward over the same weights). Either way a
   * path's logits do not depend on its batch. Other weight types always take f32.
   */
  activations?: ModelActivations;
  /** Called after each tensor is written to the GPU. */
  onUpload?: (p: UploadProgress) => void;
  /**
   * Shared-prefix (cascade) attention: decode rows that share whole KV pages (a prompt, a generated prefix) attend
   * over them together, each K/V read once per block of queries, merged with each row's own keys by log-sum-exp
   * (model/attention_ops.ts). Same results to float rounding. Default false: on llvmpipe it is slower than per-path
   * attention (bench/RESULTS.md, Shared prefix); it allocates a few MB of task lists and partial states.
   */
  cascade?: boolean;
  /**
   * Paged attention's variant for every step (benchmarks compare them): default per-head on CPU adapters where
   * llvmpipe's loop limit allows the model's context (model/attention_ops.ts), split-keys otherwise. Forcing per-head
   * beyond that limit throws InvalidArgumentError.
   */
  attentionVariant?: PagedAttentionVariant;
  /**
   * Decode steps in one dispatch (kernels/decode_fused.ts) where the model and adapter allow it (small F32 Llama-shaped
   * models on CPU adapters: `decodeFusedRefusal` says why not otherwise). Same bits as the layered forward. Default
   * true: on CPU adapters, measured at load on an adapter that does not name itself (Chromium's llvmpipe without
   * developer features), off on GPUs; false always runs the layered forward (tests compare the two); 'measure' times
   * both at load on any adapter and keeps the faster (model/decode_fused_rule.ts, decode_fused_choice.ts);
   * 'any-adapter' takes it unmeasured wherever the model fits (tests). Where it may run on an adapter not known to be
   * a CPU one, attention is per-head (the variant the fused step mirrors) unless `attentionVariant` says otherwise,
   * and stays per-head if the measurement keeps the layered forward (split-keys, a GPU's usual variant, is then not
   * timed: on a GPU pass `attentionVariant: 'split-keys'` with 'measure' off if that is what you want).
   * 'measure' works only through Engine.fromWeights (it measures at load); a GpuModel built with it directly runs
   * layered until measureDecodeFused(model) is called.
   */
  decodeFused?: DecodeFusedOption;
}

/** How quantized projections take their input (ModelOptions.activations). */
export type ModelActivations = 'q8' | 'f32';

/** One dispatch (or one bound op's dispatches) of a step: rows this step, and the page-table width. */
export type StepOp = (pass: GPUComputePassEncoder, rows: number, maxPages: number) => void;

/** A named op, so profiles and tests can tell them apart. */
export interface NamedOp {
  /** `embed`, `l3.qkv`, `l3.attention`, `lm_head`, ...: the layer and what the op is. */
  name: string;
  /** What kind of work: projections and the LM head are matmuls (profiles group by it). */
  kind: 'matmul' | 'attention' | 'token_stats' | 'other';
  run: StepOp;
  destroy(): void;
  /** Matmuls only: the variant an encode of M rows uses. */
  variantFor?: (M: number) => string;
}
