// Paged attention: every row of a step (prompt-chunk rows and decode rows of many paths together) attends causally
// over its own path's K/V, read through that path's page table, so forked paths share the pages they have in common.
// The rows' own K/V were written by KvWrite in an earlier dispatch of the same pass. With shared-prefix (cascade)
// attention, the keys before each row's own start were attended by PrefixAttention (prefix_attention.ts) earlier in the
// pass, and this kernel merges those partial states into its own.
import { createStorage } from '../gpu/buffers.js';
import { InvalidArgumentError, UnsupportedModelError } from '../errors.js';
import type { Gpu } from '../gpu/device.js';
import { defineUniform } from '../gpu/uniform.js';
import { BoundKernel, grid2d, groupsFor, shaderSource } from './kernel.js';
import { onLlvmpipe } from '../gpu/adapters.js';
import type { RegisterBlocks } from '../gpu/register_blocks.js';
import { writtenOutFits, writtenOutPerHead } from './paged_attention_written_out.js';
import { quantizedXBytes, X8_BLOCK, type QuantizedX } from './quantize_x8.js';
import { WGSL } from './wgsl.gen.js';

/** xqOutHead of a pipeline that does not quantize its output (paged_attention_xq.wgsl has the one that does). */
const XQ_OUT_NONE = 'fn xqOutHead(r: u32, h: u32, acc: ptr<function, array<vec4<f32>, MAX_HD4>>, inv: f32) {}';

export const PagedAttentionParams = defineUniform('Params', [
  ['rows', 'u32'],
  ['nHeads', 'u32'],
  ['group', 'u32'], // nHeads / kvHeads: query heads per kv head
  ['kvHeads', 'u32'],
  ['pageSize', 'u32'],
  ['qStride4', 'u32'], // qStride / 4: q rows in vec4 units
  ['maxPages', 'u32'],
  ['pages', 'u32'], // pages in the pool: page ids beyond it are skipped, never read out of place
  ['scaleLog2', 'f32'], // log2(e) * scale: scores in log2 units for exp2
  ['window', 'u32'], // sliding window in keys (a row sees positions pos - window + 1 .. pos); 0 = global
  ['softcapLog2', 'f32'], // attention logit soft-cap in log2 units (cap * log2(e)); 0 = off
  ['cascade', 'u32'], // 1: read each row's own start and partials from meta (shared-prefix attention ran first)
] as const);
type Field = (typeof PagedAttentionParams.fields)[number][0];

/** Largest head dim: the CPU variant keeps q and the output of one head in private arrays of this size. */
export const MAX_HEAD_DIM = 256;

/**
 * `per-head`: one invocation per (row, head), no barriers (software adapters).
 * `split-keys`: one workgroup per (row, head), keys split over its threads (real GPUs).
 */
export type PagedAttentionVariant = 'per-head' | 'split-keys';

/**
 * Per-head invocations per workgroup: one SIMD batch of llvmpipe's 8 lanes, so that a decode step's few invocations
 * still spread over the cores.
 */
const WG_PER_HEAD = 8;
/**
 * Per-head: the most query heads of one GQA group an invocation attends for (each K/V vec4 it loads feeds them all;
 * on llvmpipe a load instruction costs ~70 cycles with one lane active, ~160 with eight, while a vec4 FMA costs a few),
 * and the largest head dim where it does: q and the accumulators of every head stay in private arrays indexed only by
 * constants once Mesa unrolls the head-dim loops (an array indexed at run time would live in memory read one lane at a
 * time), and more of them cost compile time on SwiftShader.
 */
const MAX_HEADS_PER_INVOCATION = 3;
const MAX_GROUPED_HEAD_DIM = 64;
/**
 * Per-head: 2 or 4 rows per invocation (RB) read the whole pages all of them hold once (each K/V load feeds every
 * row's GQ heads): the prompt of forked paths, the earlier keys of a prompt chunk. Its private arrays are RB times a
 * row's, so only for small heads (headDim x GQ at most this: stories260K's 8 x 2), and a step takes the widest
 * grouping whose blocks still fill two workgroups (rowsFor), so a few rows keep both cores (the widest grouping
 * where llvmpipe runs kernels on the submitting thread).
 */
const MAX_PAIRED_HEAD_FLOATS = 32;
/** Split-keys threads per workgroup: a power of two >= headDim / 4. */
const WG_SPLIT = 64;

export interface PagedAttentionShape {
  nHeads: number; // Hq
  kvHeads: number; // Hkv, divides Hq
  headDim: number; // hd, a multiple of 4, at most MAX_HEAD_DIM
  pageSize: number; // tokens per page
  qStride: number; // f32 between the q of consecutive rows (the fused qkv row width), a multiple of 4
  /** Defaults from the adapter: per-head on software adapters, split-keys on real GPUs. */
  variant?: PagedAttentionVariant;
  /** Per-head only: query heads per invocation, a divisor of nHeads / kvHeads; default headsPerInvocation(). */
  headsPerInvocation?: number;
  /**
   * Per-head only: the most rows an invocation takes, 1, 2 or 4 (a block walks the pages all its rows hold once);
   * default 4 on llvmpipe for heads of at most MAX_PAIRED_HEAD_FLOATS values per invocation, else 1. Same output bits
   * either way.
   * Rows that share no page are all walked in one invocation: on llvmpipe (65,535 loop iterations per invocation)
   * take r only where r times the longest key run fits (model/attention_ops.ts does).
   */
  rowsPerInvocation?: number;
  /**
   * Per-head only: `unrolled` runs the per-head pipelines written out (paged_attention_written_out.ts) where the
   * shape fits writtenOutFits, `loops` the private-array version; same bits. Default the device's Gpu.registerBlocks
   * (`unrolled` on Chromium's GL route).
   */
  registerBlocks?: RegisterBlocks;
  /**
   * Per-head, loop form (registerBlocks `loops`), headDim % 32 == 0: also write the output on 8 bits, as
   * kernels/quantize_x8.ts would quantize it with the plain prologue (the same words and scales, bit for bit:
   * shaders/paged_attention_xq.wgsl), into the `xq` scratch bind takes, for an out-projection on 8-bit activations
   * (QMatmul xqReady: one dispatch fewer per layer). Default false.
   */
  quantizeOut?: boolean;
}

/** Storage buffers of the per-head attention that writes its output on 8 bits (bindings 1-10). */
const XQ_OUT_STORAGE_BUFFERS = 10;

/**
 * Whether a per-head attention with this head dim and register-block form can write its output on 8 bits on this
 * device: the loop form, whole 32-value blocks per head, and two more storage buffers than the plain kernel's eight.
 */
export function canQuantizeOut(gpu: Gpu, headDim: number, blocks: RegisterBlocks): boolean {
  return headDim % X8_BLOCK === 0 && blocks === 'loops' && gpu.limits.maxStorageBuffersPerShaderStage >= XQ_OUT_STORAGE_BUFFERS;
}

/**
 * Query heads one per-head invocation attends for by default: the largest divisor of the GQA group up to
 * MAX_HEADS_PER_INVOCATION at head dims up to MAX_GROUPED_HEAD_DIM, else 1. The heads' arithmetic is the same as one
 * head per invocation, in the same order, so the output bits do not depend on it.
 */
export function headsPerInvocation(nHeads: number, kvHeads: number, headDim: number): number {
  const group = nHeads / kvHeads;
  if (headDim > MAX_GROUPED_HEAD_DIM) return 1;
  for (let g = Math.min(group, MAX_HEADS_PER_INVOCATION); g > 1; g--) if (group % g === 0) return g;
  return 1;
}

/** What differs between layers of one model: each bound kernel carries its own. */
export interface AttentionLayerOptions {
  /** Sliding window in tokens: a row at position p sees keys p - window + 1 .. p. 0 or absent: global. */
  window?: number;
  /** Score multiplier before softmax; default 1 / sqrt(headDim). Gemma 2/3: query_pre_attn_scalar^-0.5, Granite: attention_multiplier. */
  scale?: number;
  /** Attention logit soft-cap: score <- cap * tanh(score / cap) after scaling (Gemma 2). 0 or absent: off. */
  softcap?: number;
}

export interface PagedAttentionBuffers {
  q: GPUBuffer; // (rows, qStride) f32: the qkv buffer, q heads (Hq*hd) at the start of each row
  kv: GPUBuffer; // (pages, 2, kvHeads, pageSize, headDim) f32, K at index 0 and V at 1
  rowPath: GPUBuffer; // (rows) u32 step path slot of each row
  positions: GPUBuffer; // (rows) u32 absolute position of each row
  pageTable: GPUBuffer; // (P, maxPages) u32 page ids of each step path
  out: GPUBuffer; // (rows, nHeads * headDim) f32
  /** Shared-prefix attention: (rows, 3) u32 [ownStart, first partial slot, slots] at the start; absent: never cascade. */
  meta?: GPUBuffer;
  /** (slots, nHeads, headDim + 4) f32 partial states PrefixAttention wrote; absent: never cascade. */
  partials?: GPUBuffer;
  /** With quantizeOut (and only then): out on 8 bits, rows of nHeads * headDim values (kernels/quantize_x8.ts). */
  xq?: QuantizedX;
}

/**
 * Per-head rows per invocation by default: 4 on llvmpipe for heads of at most MAX_PAIRED_HEAD_FLOATS values per
 * invocation (headDim x GQ), else 1. llvmpipe: in Node by name; in a page, where the adapter may be anonymous, by the
 * GL route's register-block form (`unrolled` only on a compatibility-only CPU adapter, gpu/register_blocks.ts).
 * SwiftShader keeps 1: each block pipeline costs seconds of compile time there for an unmeasured gain.
 */
export function defaultRowsPerInvocation(gpu: Gpu, headDim: number, headsPerInvocation: number): number {
  const llvmpipe = onLlvmpipe(gpu);
  return llvmpipe && headDim * headsPerInvocation <= MAX_PAIRED_HEAD_FLOATS ? 4 : 1;
}

function positiveInt(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) {
    throw new InvalidArgumentError(`paged_attention: ${name} must be a positive integer, got ${v}`);
  }
}

export class PagedAttention {
  readonly variant: PagedAttentionVariant;
  /** Query heads per per-head invocation (1 for split-keys). */
  readonly headsPerInvocation: number;
  /** Per-head: the most rows an invocation takes (1, 2 or 4; a step takes rowsFor(rows)). */
  readonly rowsPerInvocation: number;
  /** Per-head: whether one row per invocation runs written out (blocks of rows too where they fit writtenOutFits). */
  readonly writtenOut: boolean;
  /** Whether the output is also written on 8 bits (PagedAttentionShape.quantizeOut). */
  readonly quantizeOut: boolean;
  private readonly pipeline: GPUComputePipeline;
  /** The pipelines of 2 and 4 rows per invocation (RB), up to rowsPerInvocation. */
  private readonly blockPipelines: Map<number, GPUComputePipeline> = new Map();
  private readonly wg: number;
  /** llvmpipe runs every kernel on the submitting thread (Gpu.cpuThreads 0): no cores to keep busy (rowsFor). */
  private readonly inline: boolean;
  /** Bound in place of meta and partials for kernels that never cascade. */
  private dummy: GPUBuffer | null = null;

  constructor(
    private readonly gpu: Gpu,
    readonly shape: PagedAttentionShape,
  ) {
    const { nHeads, kvHeads, headDim, pageSize, qStride } = shape;
    for (const [k, v] of Object.entries({ nHeads, kvHeads, headDim, pageSize, qStride })) positiveInt(k, v);
    if (nHeads % kvHeads !== 0) {
      throw new InvalidArgumentError(
        `paged_attention: ${nHeads} query heads cannot share ${kvHeads} kv heads evenly; nHeads must be a multiple of kvHeads`,
      );
    }
    if (headDim % 4 !== 0 || headDim > MAX_HEAD_DIM) {
      throw new UnsupportedModelError(
        `paged_attention: head dim ${headDim} is not supported; it must be a multiple of 4 and at most ${MAX_HEAD_DIM}`,
      );
    }
    if (qStride % 4 !== 0 || qStride < nHeads * headDim) {
      throw new InvalidArgumentError(
        `paged_attention: qStride ${qStride} must be a multiple of 4 and hold the ${nHeads * headDim} q values of a row`,
      );
    }
    this.variant = shape.variant ?? (gpu.isCpu ? 'per-head' : 'split-keys');
    const split = this.variant === 'split-keys';
    this.wg = split ? WG_SPLIT : WG_PER_HEAD;
    const gq = split ? 1 : (shape.headsPerInvocation ?? headsPerInvocation(nHeads, kvHeads, headDim));
    if (!Number.isInteger(gq) || gq < 1 || (nHeads / kvHeads) % gq !== 0 || gq > MAX_HEADS_PER_INVOCATION) {
      throw new InvalidArgumentError(
        `paged_attention: headsPerInvocation ${gq} must divide the GQA group of ${nHeads / kvHeads} heads and be at most ${MAX_HEADS_PER_INVOCATION}`,
      );
    }
    if (split && shape.headsPerInvocation !== undefined && shape.headsPerInvocation !== 1) {
      throw new InvalidArgumentError('paged_attention: headsPerInvocation applies to the per-head variant only; leave it unset for split-keys');
    }
    this.headsPerInvocation = gq;
    const rb = split ? 1 : (shape.rowsPerInvocation ?? defaultRowsPerInvocation(gpu, headDim, gq));
    if (rb !== 1 && rb !== 2 && rb !== 4) throw new InvalidArgumentError(`paged_attention: rowsPerInvocation must be 1, 2 or 4, got ${rb}`);
    if (split && shape.rowsPerInvocation !== undefined && shape.rowsPerInvocation !== 1) {
      throw new InvalidArgumentError('paged_attention: rowsPerInvocation applies to the per-head variant only; leave it unset for split-keys');
    }
    this.rowsPerInvocation = rb;
    this.inline = gpu.cpuThreads === 0;
    if (shape.registerBlocks !== undefined && shape.registerBlocks !== 'loops' && shape.registerBlocks !== 'unrolled') {
      throw new InvalidArgumentError(`paged_attention: registerBlocks must be loops or unrolled, got ${String(shape.registerBlocks)}`);
    }
    const blocks = split ? 'loops' : (shape.registerBlocks ?? gpu.registerBlocks);
    this.quantizeOut = shape.quantizeOut ?? false;
    if (this.quantizeOut && (split || !canQuantizeOut(gpu, headDim, blocks))) {
      throw new InvalidArgumentError(
        `paged_attention: quantizeOut needs the per-head variant in its loop form, a head dim that is whole blocks of ${X8_BLOCK} and ${XQ_OUT_STORAGE_BUFFERS} storage buffers per stage (got ${this.variant}, ${blocks}, head dim ${headDim}, ${gpu.limits.maxStorageBuffersPerShaderStage}); use canQuantizeOut`,
      );
    }
    // The per-head loop form's finishHead calls xqOutHead: the quantizing one, or one that does nothing.
    const xq = this.quantizeOut ? `${WGSL.xq8_block}\n${WGSL.xq8_store}\n${WGSL.paged_attention_xq}` : XQ_OUT_NONE;
    const constants = { HD4: headDim / 4, WG: this.wg, SPLIT_KEYS: split ? 1 : 0, GQ: gq };
    const build = (r: number): GPUComputePipeline => {
      if (blocks === 'unrolled' && writtenOutFits(headDim, gq, r)) {
        const key = { op: 'paged_attention', variant: `per-head-written-out-gq${gq}-rb${r}`, constants: { HD4: headDim / 4, WG: this.wg } };
        return gpu.pipelines.get(key, () => `${shaderSource('paged_attention_common', PagedAttentionParams)}\n${writtenOutPerHead(headDim / 4, gq, r)}`);
      }
      const key = { op: 'paged_attention', variant: `${this.variant}${this.quantizeOut ? ':xq' : ''}`, constants: r > 1 ? { ...constants, RB: r } : constants };
      return gpu.pipelines.get(key, () => `${shaderSource('paged_attention_common', PagedAttentionParams)}\n${xq}\n${WGSL.paged_attention}`);
    };
    this.writtenOut = blocks === 'unrolled' && writtenOutFits(headDim, gq, 1);
    this.pipeline = build(1);
    for (const r of [2, 4].filter((r) => r <= rb)) this.blockPipelines.set(r, build(r));
  }

  /** Bytes of one page of one layer: K and V of every kv head. */
  get pageBytes(): number {
    return 2 * this.shape.kvHeads * this.shape.pageSize * this.shape.headDim * 4;
  }

  bind(b: PagedAttentionBuffers, label = 'paged_attention', layer: AttentionLayerOptions = {}): BoundPagedAttention {
    const { window = 0, scale = 1 / Math.sqrt(this.shape.headDim), softcap = 0 } = layer;
    if (!Number.isInteger(window) || window < 0) {
      throw new InvalidArgumentError(`paged_attention: window must be a whole number of tokens >= 0 (0 = global), got ${window}`);
    }
    if (!(Number.isFinite(scale) && scale > 0)) throw new InvalidArgumentError(`paged_attention: scale must be a positive number, got ${scale}`);
    if (!(Number.isFinite(softcap) && softcap >= 0)) throw new InvalidArgumentError(`paged_attention: softcap must be >= 0 (0 = off), got ${softcap}`);
    const pages = Math.floor(b.kv.size / this.pageBytes);
    if (pages < 1) {
      throw new InvalidArgumentError(
        `paged_attention: the KV buffer (${b.kv.size} bytes) holds no whole page of ${this.pageBytes} bytes`,
      );
    }
    this.dummy ??= createStorage(this.gpu.device, 16, 'paged_attention:no-cascade');
    if (this.quantizeOut !== (b.xq !== undefined)) {
      throw new InvalidArgumentError(`paged_attention: ${this.quantizeOut ? 'quantizeOut needs the xq scratch' : 'xq is bound only with quantizeOut'}`);
    }
    const buffers = [b.q, b.kv, b.rowPath, b.positions, b.pageTable, b.out, b.meta ?? this.dummy, b.partials ?? this.dummy, ...(b.xq ? [b.xq.xq, b.xq.xs] : [])];
    const k = new BoundKernel<Field>(this.gpu, this.pipeline, PagedAttentionParams, buffers, label);
    const blocks = new Map([...this.blockPipelines].map(([r, p]) => [r, new BoundKernel<Field>(this.gpu, p, PagedAttentionParams, buffers, `${label}:rows${r}`)]));
    return new BoundPagedAttention(k, blocks, this.gpu, this, b, pages, { window, scaleLog2: Math.LOG2E * scale, softcapLog2: Math.LOG2E * softcap });
  }

  destroy(): void {
    this.dummy?.destroy();
    this.dummy = null;
  }

  /**
   * Rows per invocation for a step of `rows` rows: 4 where those blocks fill four workgroups (a prompt chunk), 2 where
   * pairs fill two (16 forks of stories260K), else 1, within rowsPerInvocation; where llvmpipe runs kernels on the
   * submitting thread, the widest grouping the rows allow (4 from 4 rows, 2 from 2). At 16 stories260K rows on llvmpipe
   * (attention per layer, CPU time, load ~4): 1 row 435 us, pairs 352, blocks of 4 327 but only two workgroups; at
   * 256 rows 2,340 / 1,805 / 1,537 us.
   */
  rowsFor(rows: number): number {
    const perRow = this.shape.nHeads / this.headsPerInvocation;
    // Kernels on the submitting thread (llvmpipe with cpuThreads 0): one core runs every workgroup, so the widest
    // grouping wins. 16 stories260K rows, attention of 5 layers, quiet machine (lead's scratch timing of each op alone,
    // bench/RESULTS.md "llvmpipe threads"): blocks of 4 790-815 us, pairs 950-1,020.
    if (this.inline) return this.rowsPerInvocation >= 4 && rows >= 4 ? 4 : this.rowsPerInvocation >= 2 && rows >= 2 ? 2 : 1;
    if (this.rowsPerInvocation >= 4 && Math.ceil(rows / 4) * perRow >= 4 * this.wg) return 4;
    if (this.rowsPerInvocation >= 2 && Math.ceil(rows / 2) * perRow >= 2 * this.wg) return 2;
    return 1;
  }

  /** Workgroups for `rows` rows, before the 2-D split. */
  groups(rows: number): number {
    const tasks = rows * this.shape.nHeads;
    if (this.variant === 'split-keys') return tasks;
    const blocks = Math.ceil(rows / this.rowsFor(rows));
    return groupsFor((blocks * this.shape.nHeads) / this.headsPerInvocation, this.wg);
  }
}

export class BoundPagedAttention {
  private readonly params: Record<Field, number>;

  constructor(
    private readonly k: BoundKernel<Field>,
    /** The same bindings on the 2- and 4-row pipelines (RB), where built. */
    private readonly blocks: Map<number, BoundKernel<Field>>,
    private readonly gpu: Gpu,
    private readonly op: PagedAttention,
    private readonly b: PagedAttentionBuffers,
    pages: number,
    layer: { window: number; scaleLog2: number; softcapLog2: number },
  ) {
    const s = op.shape;
    this.params = {
      rows: 0,
      nHeads: s.nHeads,
      group: s.nHeads / s.kvHeads,
      kvHeads: s.kvHeads,
      pageSize: s.pageSize,
      qStride4: s.qStride / 4,
      maxPages: 0,
      pages,
      ...layer,
      cascade: 0,
    };
  }

  /**
   * Attention of rows 0..rows-1; `maxPages` is the width of the bound page table. `cascade`: merge the partials that
   * PrefixAttention wrote this pass for the keys before each row's own start (meta and partials must be bound).
   */
  encode(pass: GPUComputePassEncoder, { rows, maxPages, cascade = false }: { rows: number; maxPages: number; cascade?: boolean }): void {
    const s = this.op.shape;
    if (!Number.isInteger(rows) || rows < 0) throw new InvalidArgumentError(`paged_attention: rows must be a count, got ${rows}`);
    if (rows === 0) return;
    positiveInt('maxPages', maxPages);
    const need: [string, GPUBuffer, number][] = [
      ['q', this.b.q, ((rows - 1) * s.qStride + s.nHeads * s.headDim) * 4],
      ['rowPath', this.b.rowPath, rows * 4],
      ['positions', this.b.positions, rows * 4],
      ['pageTable', this.b.pageTable, maxPages * 4],
      ['out', this.b.out, rows * s.nHeads * s.headDim * 4],
    ];
    if (this.b.xq) {
      const bytes = quantizedXBytes(rows, s.nHeads * s.headDim);
      need.push(['xq words', this.b.xq.xq, bytes.words], ['xq scales', this.b.xq.xs, bytes.scales]);
    }
    if (cascade) {
      if (!this.b.meta || !this.b.partials) {
        throw new InvalidArgumentError('paged_attention: cascade needs the meta and partials buffers bound; bind them or encode without cascade');
      }
      need.push(['meta', this.b.meta, rows * 3 * 4]);
    }
    for (const [name, buf, bytes] of need) {
      if (buf.size < bytes) {
        throw new InvalidArgumentError(
          `paged_attention: ${rows} rows with maxPages ${maxPages} need ${bytes} bytes of ${name}, the bound buffer has ${buf.size}`,
        );
      }
    }
    this.params.rows = rows;
    this.params.maxPages = maxPages;
    this.params.cascade = cascade ? 1 : 0;
    const k = this.blocks.get(this.op.rowsFor(rows)) ?? this.k;
    k.encode(pass, this.params, grid2d(this.gpu, this.op.groups(rows)));
  }

  destroy(): void {
    this.k.destroy();
    for (const b of this.blocks.values()) b.destroy();
  }
}
