// Shared-prefix (cascade) attention, the kernel over shared page runs: partial softmax states of every query of the
// rows that share a run of whole pages, each K/V vector read once for a block of queries (shaders/
// prefix_attention.wgsl). PagedAttention then attends over each row's own keys and merges the states by log-sum-exp.
// The task lists come from src/sched/cascade.ts (packCascade). Sources: FlashInfer's cascade attention (Ye et al.,
// 2024, "Cascade Inference"), Hydragen (Juravsky et al., 2024, arXiv:2402.05099).
import { InvalidArgumentError, UnsupportedModelError } from '../errors.js';
import type { Gpu } from '../gpu/device.js';
import { defineUniform } from '../gpu/uniform.js';
import { BoundKernel, grid2d, groupsFor, shaderSource } from './kernel.js';
import { MAX_HEAD_DIM, type AttentionLayerOptions } from './paged_attention.js';

export const PrefixAttentionParams = defineUniform('Params', [
  ['items', 'u32'],
  ['nHeads', 'u32'],
  ['group', 'u32'],
  ['kvHeads', 'u32'],
  ['pageSize', 'u32'],
  ['qStride4', 'u32'],
  ['maxPages', 'u32'],
  ['pages', 'u32'],
  ['scaleLog2', 'f32'],
  ['window', 'u32'],
  ['softcapLog2', 'f32'],
  ['taskOff', 'u32'],
  ['taskRowOff', 'u32'],
  ['itemOff', 'u32'],
  ['qb', 'u32'], // QB again, as a uniform (same reason)
  ['hd4', 'u32'], // headDim / 4 again, as a uniform: loops bounded by it stay loops (unrolled ones took minutes to compile on llvmpipe)
] as const);
type Field = (typeof PrefixAttentionParams.fields)[number][0];

/** Invocations per workgroup: llvmpipe's 8 SIMD lanes; items are independent, so any size is correct. */
const WG = 8;
/**
 * llvmpipe stops an invocation's loops after 65,535 iterations in total (gpu_model.ts): a task's pages are bounded so
 * that an invocation stays under this many, counting each key as 3 * headDim / 4 iterations per query of the item
 * (the dot product, the value update, and the rescale when the running max grows) plus a few for the softmax.
 */
const LOOP_BUDGET = 50_000;

export interface PrefixAttentionShape {
  nHeads: number;
  kvHeads: number;
  headDim: number; // a multiple of 4, at most MAX_HEAD_DIM
  pageSize: number;
  qStride: number; // f32 between consecutive rows' q (the fused qkv row width), a multiple of 4
  /** Queries per invocation (default 4): each K/V load serves this many. */
  queriesPerItem?: number;
}

export interface PrefixAttentionBuffers {
  q: GPUBuffer; // (rows, qStride) f32
  kv: GPUBuffer; // (pages, 2, kvHeads, pageSize, headDim) f32
  positions: GPUBuffer; // (rows) u32
  pageTable: GPUBuffer; // (P, maxPages) u32
  meta: GPUBuffer; // u32 task lists (CascadeLists.meta)
  partials: GPUBuffer; // (slots, nHeads, headDim + 4) f32, written
}

/** The counts and offsets of one step's CascadeLists. */
export interface PrefixAttentionStep {
  items: number;
  slots: number;
  taskOff: number;
  taskRowOff: number;
  itemOff: number;
  maxPages: number;
}

export class PrefixAttention {
  readonly queriesPerItem: number;
  /** Most pages one task may span (the loop budget). */
  readonly maxTaskPages: number;
  private readonly pipeline: GPUComputePipeline;

  constructor(
    private readonly gpu: Gpu,
    readonly shape: PrefixAttentionShape,
  ) {
    const { nHeads, kvHeads, headDim, pageSize, qStride } = shape;
    for (const [k, v] of Object.entries({ nHeads, kvHeads, headDim, pageSize, qStride })) {
      if (!Number.isInteger(v) || v < 1) throw new InvalidArgumentError(`prefix_attention: ${k} must be a positive integer, got ${v}`);
    }
    if (nHeads % kvHeads !== 0) throw new InvalidArgumentError(`prefix_attention: ${nHeads} query heads cannot share ${kvHeads} kv heads evenly`);
    if (headDim % 4 !== 0 || headDim > MAX_HEAD_DIM) {
      throw new UnsupportedModelError(`prefix_attention: head dim ${headDim} must be a multiple of 4 and at most ${MAX_HEAD_DIM}`);
    }
    if (qStride % 4 !== 0 || qStride < nHeads * headDim) {
      throw new InvalidArgumentError(`prefix_attention: qStride ${qStride} must be a multiple of 4 and hold the ${nHeads * headDim} q values of a row`);
    }
    const qb = (this.queriesPerItem = shape.queriesPerItem ?? 4);
    if (!Number.isInteger(qb) || qb < 1 || qb > 16) throw new InvalidArgumentError(`prefix_attention: queriesPerItem must be 1..16, got ${qb}`);
    const hd4 = headDim / 4;
    this.maxTaskPages = Math.max(1, Math.floor(LOOP_BUDGET / ((3 * hd4 * qb + 8) * pageSize)));
    const head = `const QB: u32 = ${qb}u;\nconst HD4: u32 = ${hd4}u;\n`;
    this.pipeline = gpu.pipelines.get({ op: 'prefix_attention', variant: `qb${qb}-hd4${hd4}`, constants: { WG } }, () =>
      head + shaderSource('prefix_attention', PrefixAttentionParams),
    );
  }

  /** Bytes of the partial states of `slots` slots: nHeads * (headDim + 4) f32 each. */
  partialBytes(slots: number): number {
    return slots * this.shape.nHeads * (this.shape.headDim + 4) * 4;
  }

  bind(b: PrefixAttentionBuffers, label = 'prefix_attention', layer: AttentionLayerOptions = {}): BoundPrefixAttention {
    const s = this.shape;
    const { window = 0, scale = 1 / Math.sqrt(s.headDim), softcap = 0 } = layer;
    if (!Number.isInteger(window) || window < 0) throw new InvalidArgumentError(`prefix_attention: window must be a whole number >= 0, got ${window}`);
    if (!(Number.isFinite(scale) && scale > 0)) throw new InvalidArgumentError(`prefix_attention: scale must be a positive number, got ${scale}`);
    if (!(Number.isFinite(softcap) && softcap >= 0)) throw new InvalidArgumentError(`prefix_attention: softcap must be >= 0, got ${softcap}`);
    const pageBytes = 2 * s.kvHeads * s.pageSize * s.headDim * 4;
    const pages = Math.floor(b.kv.size / pageBytes);
    if (pages < 1) throw new InvalidArgumentError(`prefix_attention: the KV buffer (${b.kv.size} bytes) holds no whole page of ${pageBytes} bytes`);
    const k = new BoundKernel<Field>(this.gpu, this.pipeline, PrefixAttentionParams, [b.q, b.kv, b.positions, b.pageTable, b.meta, b.partials], label);
    const params: Record<Field, number> = {
      items: 0,
      nHeads: s.nHeads,
      group: s.nHeads / s.kvHeads,
      kvHeads: s.kvHeads,
      pageSize: s.pageSize,
      qStride4: s.qStride / 4,
      maxPages: 0,
      pages,
      scaleLog2: Math.LOG2E * scale,
      window,
      softcapLog2: Math.LOG2E * softcap,
      taskOff: 0,
      taskRowOff: 0,
      itemOff: 0,
      qb: this.queriesPerItem,
      hd4: s.headDim / 4,
    };
    return new BoundPrefixAttention(k, this.gpu, this, b, params);
  }
}

export class BoundPrefixAttention {
  constructor(
    private readonly k: BoundKernel<Field>,
    private readonly gpu: Gpu,
    private readonly op: PrefixAttention,
    private readonly b: PrefixAttentionBuffers,
    private readonly params: Record<Field, number>,
  ) {}

  /** Partial states of every item of the step's task lists (nothing when there is no item). */
  encode(pass: GPUComputePassEncoder, step: PrefixAttentionStep): void {
    if (step.items === 0) return;
    const metaWords = step.itemOff + 3 * step.items;
    if (this.b.meta.size < metaWords * 4) {
      throw new InvalidArgumentError(`prefix_attention: the task lists need ${metaWords * 4} bytes of meta, the bound buffer has ${this.b.meta.size}`);
    }
    if (this.b.partials.size < this.op.partialBytes(step.slots)) {
      throw new InvalidArgumentError(
        `prefix_attention: ${step.slots} partial slots need ${this.op.partialBytes(step.slots)} bytes, the bound buffer has ${this.b.partials.size}`,
      );
    }
    const p = this.params;
    p.items = step.items;
    p.maxPages = step.maxPages;
    p.taskOff = step.taskOff;
    p.taskRowOff = step.taskRowOff;
    p.itemOff = step.itemOff;
    this.k.encode(pass, p, grid2d(this.gpu, groupsFor(step.items, WG)));
  }

  destroy(): void {
    this.k.destroy();
  }
}
