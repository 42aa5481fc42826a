// The model's attention ops: paged attention per layer, its variant chosen once per model, and shared-prefix
// (cascade) attention when the model is built with `cascade`. Kept apart from gpu_model.ts so that the per-step state
// (the cascade task lists) has one owner.
//
// Variant per model: llvmpipe silently stops an invocation's loops after 65,535 iterations in total (one counter over
// every loop back edge), and the per-head variant (no barriers, the fast one on CPU adapters) loops over every key of
// its head in one invocation. Mesa unrolls a loop with a constant trip count of at most 32 (HD4, an override
// constant, is one), so up to head dim 128 a key costs one iteration, plus two per page (the page loop's back edge and
// the key loop's exit, measured: test/kernels/paged_attention_loop_limit.test.ts fails at pages of 1-5 keys with one); above, its q.k, weighted-V
// and rescale loops run as loops, about 3*headDim/4 + 2 iterations per key. Per-head runs when the most keys any layer
// can see (the context, or the widest sliding window) keep an invocation under that; otherwise every step takes the
// split-keys variant, which spreads one head's keys over a workgroup. Real GPUs always take split-keys.
// The choice is per model, not per step: the two variants round differently, and a path's bits must not depend on
// how long the other paths of its batch are (the README promises the same tokens "batched with any others").
import { createStorage, writeBuffer } from '../gpu/buffers.js';
import type { Gpu } from '../gpu/device.js';
import { InvalidArgumentError } from '../errors.js';
import {
  canQuantizeOut,
  type AttentionLayerOptions,
  type BoundPagedAttention,
  defaultRowsPerInvocation,
  headsPerInvocation,
  PagedAttention,
  type PagedAttentionVariant,
} from '../kernels/paged_attention.js';
import { type BoundPrefixAttention, PrefixAttention } from '../kernels/prefix_attention.js';
import type { QuantizedX } from '../kernels/quantize_x8.js';
import { type CascadeLists, type CascadeShape, cascadeMetaWords, packCascade, prefixTree } from '../sched/cascade.js';
import type { StepPlan } from '../sched/step_plan.js';
import type { NamedOp } from './gpu_model.js';

/** Iterations of the per-head variant's loops an invocation may run (llvmpipe's limit is 65,535). */
const PER_HEAD_ITERATIONS = 60_000;
/** The largest headDim / 4 whose per-key loops Mesa unrolls (its NIR unroll limit of 32 iterations). */
const UNROLLED_HD4 = 32;
/** Loop iterations one key costs the per-head variant at `headDim` (the file header says how they are counted). */
function perKeyIterations(headDim: number): number {
  return headDim / 4 <= UNROLLED_HD4 ? 1 : (3 * headDim) / 4 + 2;
}

/**
 * The most keys the per-head variant may see at `headDim` on a CPU adapter with pages of `pageSize` keys (llvmpipe's
 * loop limit; the file header says how each key and page is counted). test/kernels/paged_attention_loop_limit.test.ts
 * runs per-head at this many keys with scores rising at every key (the rescale loop runs each time) against float64.
 */
export function perHeadKeyLimit(headDim: number, pageSize: number): number {
  return Math.floor(PER_HEAD_ITERATIONS / (perKeyIterations(headDim) + 2 / pageSize));
}

/**
 * The most keys each row may see when one per-head invocation attends for a block of `rows` >= 2 rows
 * (kernels/paged_attention.ts, rowsPerInvocation). The block first compares row 0's page table with each other row's
 * (sharedKeys in shaders/paged_attention_common.wgsl: up to keys / pageSize + 2 iterations each), walks the pages all rows
 * share once, then each row's own keys, each in a loop of its own. llvmpipe's counter is per SIMD batch of
 * invocations and a loop runs as long as its longest lane, so the worst case is a batch whose invocations differ: one
 * whose rows share every page (a full shared walk) beside one whose rows share none (every own walk full): rows + 1
 * walks of every key. test/kernels/paged_attention_loop_limit.test.ts runs that mix at this many keys against float64.
 */
export function blockKeyLimit(rows: number, headDim: number, pageSize: number): number {
  if (rows <= 1) return perHeadKeyLimit(headDim, pageSize);
  const perKey = (rows + 1) * (perKeyIterations(headDim) + 2 / pageSize) + (rows - 1) / pageSize;
  return Math.floor((PER_HEAD_ITERATIONS - 2 * (rows - 1)) / perKey);
}

/** Partial states per row at most: a row's shared runs beyond them are attended by paged attention as before. */
const MAX_SLOTS_PER_ROW = 8;
/** Pages per prefix-attention task: a 512-token prompt is 4 tasks, enough to keep two cores busy at one path. */
const CHUNK_PAGES = 8;

export interface ModelAttentionShape {
  nHeads: number;
  kvHeads: number;
  headDim: number;
  pageSize: number;
  qStride: number;
  maxRows: number;
}

export interface ModelAttentionBuffers {
  q: GPUBuffer; // (R, qStride) f32 the fused qkv rows
  positions: GPUBuffer; // (R) u32
  rowPath: GPUBuffer; // (R) u32
  pageTable: GPUBuffer; // (P, maxPages) u32
  out: GPUBuffer; // (R, nHeads * headDim) f32
}

export class ModelAttention {
  /** The paged-attention variant every step of this model runs. */
  readonly variant: PagedAttentionVariant;
  /**
   * Whether every layer's attention also writes its output on 8 bits (options.quantizeOut where the per-head loop
   * form runs it: kernels/paged_attention.ts canQuantizeOut), into the scratch bind takes.
   */
  readonly quantizesOut: boolean;
  /** Per-head: the most rows one invocation takes (2 or 4: blocks walk their shared pages once, in wide steps). */
  get rowsPerInvocation(): number {
    return this.perHead?.rowsPerInvocation ?? 1;
  }
  private readonly perHead: PagedAttention | null;
  private readonly splitKeys: PagedAttention | null;
  private readonly prefix: PrefixAttention | null;
  private readonly cascadeShape: CascadeShape | null;
  private readonly meta: GPUBuffer | null;
  private readonly partials: GPUBuffer | null;
  /** This step's task lists, or null: no cascade this step. */
  private lists: CascadeLists | null = null;
  private cascadeOn: boolean;

  /**
   * `cascade`: allocate shared-prefix attention (meta and partial-state buffers, the prefix kernel) and use it;
   * `longestKeys`: the most keys any layer sees (maxSeqLen, or the widest window), which decides whether split-keys
   * is ever needed; `variant`: force one (per-head only within its key limit).
   */
  constructor(
    private readonly gpu: Gpu,
    readonly shape: ModelAttentionShape,
    private readonly b: ModelAttentionBuffers,
    options: { cascade: boolean; longestKeys: number; variant?: PagedAttentionVariant; quantizeOut?: boolean },
  ) {
    const s = shape;
    const base = { nHeads: s.nHeads, kvHeads: s.kvHeads, headDim: s.headDim, pageSize: s.pageSize, qStride: s.qStride };
    const limit = perHeadKeyLimit(s.headDim, s.pageSize);
    if (options.variant === 'per-head' && options.longestKeys > limit) {
      throw new InvalidArgumentError(
        `attention: the per-head variant handles at most ${limit} keys at head dim ${s.headDim} (llvmpipe's loop limit) but this model sees ${options.longestKeys}; leave attentionVariant unset`,
      );
    }
    const needSplit = options.variant ? options.variant === 'split-keys' : !gpu.isCpu || options.longestKeys > limit;
    this.variant = needSplit ? 'split-keys' : 'per-head';
    // A block of r rows per invocation walks all r rows' keys in one invocation when they share none: only where
    // that (and the page-table comparisons before it) still fits llvmpipe's loop limit.
    const fit = [4, 2].find((r) => options.longestKeys <= blockKeyLimit(r, s.headDim, s.pageSize)) ?? 1;
    const gq = headsPerInvocation(s.nHeads, s.kvHeads, s.headDim);
    const pairs = { rowsPerInvocation: Math.min(fit, defaultRowsPerInvocation(gpu, s.headDim, gq)) };
    this.quantizesOut = !needSplit && (options.quantizeOut ?? false) && canQuantizeOut(gpu, s.headDim, gpu.registerBlocks);
    this.perHead = needSplit ? null : new PagedAttention(gpu, { ...base, variant: 'per-head', ...pairs, quantizeOut: this.quantizesOut });
    this.splitKeys = needSplit ? new PagedAttention(gpu, { ...base, variant: 'split-keys' }) : null;
    this.cascadeOn = options.cascade;
    if (options.cascade) {
      // Each query block is unrolled over headDim on llvmpipe: 4 queries per load at headDim <= 32, one above (4 at
      // headDim 64 took minutes to compile there).
      this.prefix = new PrefixAttention(gpu, { ...base, queriesPerItem: s.headDim <= 32 ? 4 : 1 });
      this.cascadeShape = {
        pageSize: s.pageSize,
        kvHeads: s.kvHeads,
        group: s.nHeads / s.kvHeads,
        queriesPerItem: this.prefix.queriesPerItem,
        chunkPages: Math.min(CHUNK_PAGES, this.prefix.maxTaskPages),
        maxSlotsPerRow: MAX_SLOTS_PER_ROW,
      };
      this.meta = createStorage(gpu.device, cascadeMetaWords(s.maxRows, this.cascadeShape) * 4, 'cascade meta u32');
      this.partials = createStorage(gpu.device, this.prefix.partialBytes(s.maxRows * MAX_SLOTS_PER_ROW), 'cascade partials (slots, Hq, hd + 4) f32');
    } else {
      this.prefix = null;
      this.cascadeShape = null;
      this.meta = null;
      this.partials = null;
    }
  }

  /** Whether steps use shared-prefix attention (settable only on a model built with `cascade`). */
  get cascade(): boolean {
    return this.cascadeOn;
  }

  set cascade(on: boolean) {
    if (on && !this.prefix) throw new InvalidArgumentError('cascade: this model was built without shared-prefix attention; pass cascade: true when creating it');
    this.cascadeOn = on;
    if (!on) this.lists = null;
  }

  /** Whether the last prepared step runs shared-prefix attention. */
  get cascadeUsed(): boolean {
    return this.lists !== null;
  }

  /**
   * Builds and uploads this step's cascade task lists (before the step's forward is encoded). Without `cascade`, or
   * when no decode row has a whole page before its own, the step runs plain paged attention.
   */
  prepare(plan: StepPlan): void {
    this.lists = null;
    if (!this.cascadeOn || !this.cascadeShape || !this.meta) return;
    const nodes = prefixTree(plan, this.shape.pageSize);
    if (nodes.length === 0) return;
    const lists = packCascade(plan, nodes, this.cascadeShape);
    if (lists.items === 0) return;
    writeBuffer(this.gpu.device, this.meta, lists.meta);
    this.lists = lists;
  }

  /** The attention op of one layer over its KV pool; `xq` (exactly when quantizesOut) receives the output on 8 bits. */
  bind(kv: GPUBuffer, layer: AttentionLayerOptions, label: string, xq?: QuantizedX): NamedOp {
    const b = { ...this.b, kv, ...(this.meta && this.partials ? { meta: this.meta, partials: this.partials } : {}), ...(xq ? { xq } : {}) };
    const perHead = this.perHead?.bind(b, `${label}:per-head`, layer) ?? null;
    const split = this.splitKeys?.bind(b, `${label}:split-keys`, layer) ?? null;
    const prefix: BoundPrefixAttention | null =
      this.prefix && this.meta && this.partials
        ? this.prefix.bind({ q: b.q, kv, positions: b.positions, pageTable: b.pageTable, meta: this.meta, partials: this.partials }, `${label}:prefix`, layer)
        : null;
    const variant: BoundPagedAttention = (perHead ?? split)!;
    return {
      name: label,
      kind: 'attention',
      run: (pass, rows, maxPages) => {
        const lists = this.lists;
        if (lists && prefix) prefix.encode(pass, { ...lists, maxPages });
        variant.encode(pass, { rows, maxPages, cascade: lists !== null && prefix !== null });
      },
      destroy: () => {
        perHead?.destroy();
        split?.destroy();
        prefix?.destroy();
      },
    };
  }

  destroy(): void {
    this.perHead?.destroy();
    this.splitKeys?.destroy();
    this.meta?.destroy();
    this.partials?.destroy();
  }
}
