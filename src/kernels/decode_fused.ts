// decode_fused: every layer of a decode step in one dispatch, one workgroup per row (shaders/decode_fused.wgsl), for
// small Llama-shaped models on CPU adapters. On llvmpipe a dispatch costs ~30 us of hand-off to Mesa's worker threads
// (bench/RESULTS.md, "Single-stream decode"), more than a stories260K kernel's own work: the layered forward's
// 1 + 5 L dispatches become one. Only steps where each row is the only row of its path (decode steps) may run it.
// Each value is computed exactly as the layered kernels compute it (the shader's header), so it changes no bits.
//
// Bindings: 1 W: the packed weights (vec4 offsets in DecodeFusedLayout); 2 tokenIds, 3 positions, 4 slots, 5 rowPath
// (rows) u32; 6 pageTable (P, maxPages) u32; 7 hidden (rows, D) f32 written; 8 .. 8 + L - 1 each layer's KV pool
// (pages, 2, Hkv, pageSize, hd) f32.
import type { Gpu } from '../gpu/device.js';
import { InvalidArgumentError } from '../errors.js';
import { defineUniform } from '../gpu/uniform.js';
import { BoundKernel, checkFloats } from './kernel.js';
import { ACT_CODE, type Activation } from './mlp_act.js';
import { WGSL } from './wgsl.gen.js';

export const DecodeFusedParams = defineUniform('Params', [
  ['rows', 'u32'],
  ['dim', 'u32'], // D: the RMS norms' mean divides by it, as the layered prologue's params.k
  ['group', 'u32'], // nHeads / kvHeads
  ['pageSize', 'u32'],
  ['maxPages', 'u32'], // page-table width of this step
  ['pages', 'u32'], // pages in the pool: a page id beyond it is skipped
  ['vocab', 'u32'], // token ids >= vocab embed as zeros
  ['scaleLog2', 'f32'], // log2(e) * the query scale
  ['softcapLog2', 'f32'], // 0: the layered kernel's soft-cap test runs (and changes how its scores compile: below)
  ['zero', 'f32'], // 0: the bias the layered body adds (a uniform there too, so the same additions run)
] as const);
type Field = (typeof DecodeFusedParams.fields)[number][0];

/** Threads per workgroup (one row): blocks of 4 columns and query heads are spread over them. */
const WG = 32;
/** Loop iterations one invocation may run (llvmpipe's limit is 65,535: kernels/token_stats.ts LOOP_BUDGET). */
export const DECODE_FUSED_LOOP_BUDGET = 60_000;
/** Workgroup memory the row's q|k|v, attention output and gate|up may take (adapters guarantee 16 KiB). */
const WORKGROUP_BYTES = 16 * 1024;

export interface DecodeFusedLayer {
  /** Rotated pairs per head (0: a NoPE layer) and the cos/sin factor (yarn's attention factor, else 1). */
  rotaryHalf: number;
  ropeScale: number;
}

export interface DecodeFusedShape {
  dim: number; // D
  hidden: number; // F, the MLP's intermediate size (gated: gate|up is 2F)
  nHeads: number;
  kvHeads: number;
  headDim: number;
  vocab: number;
  pageSize: number;
  pages: number; // KV pool pages per layer
  eps: number; // RMSNorm epsilon
  act: Activation;
  queryScale: number;
  /** The most keys a row may attend over (the context): bounds the loop count. */
  maxKeys: number;
  layers: DecodeFusedLayer[];
}

/** Vec4 offsets of every tensor in the packed weight buffer. */
export interface DecodeFusedLayout {
  embed: number; // (V, D)
  layers: {
    attnNorm: number; // (D)
    qkv: number; // (qkvDim, D), q and k rows pair-ordered as the RoPE epilogue reads them
    o: number; // (D, qDim)
    mlpNorm: number; // (D)
    gateUp: number; // (2F, D)
    down: number; // (D, F)
    freq: number; // (max(rotaryHalf, 1), 4) kernels/rope_kv.ts splitFrequencies
  }[];
  /** Floats in the buffer. */
  floats: number;
}

const qkvDim = (s: DecodeFusedShape) => (s.nHeads + 2 * s.kvHeads) * s.headDim;

/** Where each tensor goes in the packed buffer (every offset a whole vec4). */
export function decodeFusedLayout(s: DecodeFusedShape): DecodeFusedLayout {
  let at = 0;
  const take = (floats: number) => {
    const o = at;
    at += Math.ceil(floats / 4) * 4;
    return o / 4;
  };
  const D = s.dim;
  const embed = take(s.vocab * D);
  const layers = s.layers.map((l) => ({
    attnNorm: take(D),
    qkv: take(qkvDim(s) * D),
    o: take(D * s.nHeads * s.headDim),
    mlpNorm: take(D),
    gateUp: take(2 * s.hidden * D),
    down: take(D * s.hidden),
    freq: take(Math.max(1, l.rotaryHalf) * 4),
  }));
  return { embed, layers, floats: at };
}

/** Loop iterations one invocation runs at most (every loop back edge, over all layers; HD4 loops unroll up to 32). */
export function decodeFusedIterations(s: DecodeFusedShape): number {
  const D4 = s.dim / 4;
  const blocks = (n4: number) => Math.ceil(n4 / WG);
  const hd4 = s.headDim / 4;
  const perKey = 1 + (hd4 > 32 ? 3 * hd4 : 0);
  const attention = Math.ceil(s.nHeads / WG) * (hd4 * 2 + Math.ceil(s.maxKeys / s.pageSize) + s.maxKeys * perKey);
  const perLayer =
    blocks(qkvDim(s) / 4) * (D4 + 1) + attention + blocks(D4) * ((s.nHeads * s.headDim) / 4 + 1) + blocks((2 * s.hidden) / 4) * (D4 + 1) + blocks(D4) * (s.hidden / 4 + 1) + 5;
  return blocks(D4) + s.layers.length * perLayer;
}

/**
 * Why this shape cannot run fused on `gpu` (a sentence), or null when it can: dims in whole vec4s, the workgroup
 * arrays within 16 KiB, one storage binding per layer's pool besides the 7 others, llvmpipe's loop limit.
 */
export function decodeFusedRefusal(gpu: Gpu, s: DecodeFusedShape): string | null {
  const qDim = s.nHeads * s.headDim;
  if ([s.dim, s.hidden, s.headDim].some((v) => !Number.isInteger(v) || v < 4 || v % 4 !== 0)) return 'D, F and the head dim must be multiples of 4';
  if (s.nHeads % s.kvHeads !== 0) return 'query heads must be a multiple of kv heads';
  if (s.layers.some((l) => 2 * l.rotaryHalf > s.headDim)) return 'more rotated pairs than a head holds';
  if (!(s.act in ACT_CODE)) return `unknown activation ${s.act}`;
  if ((qkvDim(s) + qDim + 2 * s.hidden) * 4 > WORKGROUP_BYTES) return 'the row does not fit 16 KiB of workgroup memory';
  if (7 + s.layers.length > gpu.limits.maxStorageBuffersPerShaderStage) return `${s.layers.length} layers need more storage bindings than the adapter allows`;
  if (decodeFusedIterations(s) > DECODE_FUSED_LOOP_BUDGET) return "an invocation would pass llvmpipe's loop limit";
  if (decodeFusedLayout(s).floats * 4 > gpu.limits.maxStorageBufferBindingSize) return 'the packed weights exceed one storage binding';
  return null;
}

/** The shader: shape constants, activation and RoPE helpers, the common part, one section per layer, the entry. */
export function decodeFusedSource(s: DecodeFusedShape, layout: DecodeFusedLayout): string {
  const [common, perLayer] = WGSL.decode_fused.split('// ---- per layer ----');
  const u = (v: number) => `${v}u`;
  const qDim = s.nHeads * s.headDim;
  const kvDim = s.kvHeads * s.headDim;
  const consts = [
    `const WG: u32 = ${u(WG)};`,
    `const D4: u32 = ${u(s.dim / 4)};`,
    `const QKV4: u32 = ${u(qkvDim(s) / 4)};`,
    `const QD4: u32 = ${u(qDim / 4)};`,
    `const F4: u32 = ${u(s.hidden / 4)};`,
    `const GU4: u32 = ${u(s.hidden / 2)};`,
    `const NH: u32 = ${u(s.nHeads)};`,
    `const HD4: u32 = ${u(s.headDim / 4)};`,
    `const E_QDIM: u32 = ${u(qDim)};`,
    `const E_KVDIM: u32 = ${u(kvDim)};`,
    `const E_HD: u32 = ${u(s.headDim)};`,
    `const E_KVH: u32 = ${u(s.kvHeads)};`,
    `const E_PAGE: u32 = ${u(s.pageSize)};`,
    `const E_PAGES: u32 = ${u(s.pages)};`,
    // The same literals as the layered prologue and epilogue (kernels/x_prologue.ts, kernels/y_epilogue.ts).
    `const X_EPS: f32 = ${s.eps.toExponential()};`,
    `const ACT: u32 = ${ACT_CODE[s.act]}u;`,
    `const W_EMB: u32 = ${u(layout.embed)};`,
  ];
  const layers = s.layers.map((l, i) => {
    const o = layout.layers[i];
    const c = [
      `const W_AN_${i}: u32 = ${u(o.attnNorm)};`,
      `const W_QKV_${i}: u32 = ${u(o.qkv)};`,
      `const W_O_${i}: u32 = ${u(o.o)};`,
      `const W_MN_${i}: u32 = ${u(o.mlpNorm)};`,
      `const W_GU_${i}: u32 = ${u(o.gateUp)};`,
      `const W_DN_${i}: u32 = ${u(o.down)};`,
      `const W_FQ_${i}: u32 = ${u(o.freq)};`,
      `const E_HALF_${i}: u32 = ${u(l.rotaryHalf)};`,
      `const E_SCALE_${i}: f32 = ${l.ropeScale.toExponential()};`,
    ];
    return `${c.join('\n')}\n${perLayer.replace(/BINDING_L/g, `${8 + i}`).replace(/_L\b/g, `_${i}`)}`;
  });
  // Barriers only here, in the entry point (a barrier inside a helper gave wrong results on llvmpipe).
  const body = s.layers.map((_, i) =>
    [
      `  for (var c4 = lid; c4 < QKV4; c4 += WG) { qkv_${i}(r, c4); }`,
      '  storageBarrier();',
      '  workgroupBarrier();',
      `  for (var h = lid; h < NH; h += WG) { attn_${i}(r, h); }`,
      '  workgroupBarrier();',
      `  for (var c4 = lid; c4 < D4; c4 += WG) { oBlock(r, W_O_${i}, c4); }`,
      '  storageBarrier();',
      `  for (var c4 = lid; c4 < GU4; c4 += WG) { guBlock(r, W_MN_${i}, W_GU_${i}, c4); }`,
      '  workgroupBarrier();',
      `  for (var c4 = lid; c4 < D4; c4 += WG) { downBlock(r, W_DN_${i}, c4); }`,
      '  storageBarrier();',
    ].join('\n'),
  );
  const main = [
    '@compute @workgroup_size(WG)',
    'fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {',
    '  let r = wid.x;',
    '  embed(r, lid);',
    '  storageBarrier();',
    ...body,
    '}',
  ].join('\n');
  return [DecodeFusedParams.wgsl, consts.join('\n'), WGSL.activation, WGSL.rope_turns, common, ...layers, main].join('\n');
}

export interface DecodeFusedBuffers {
  weights: GPUBuffer; // the packed weights (DecodeFusedLayout)
  tokenIds: GPUBuffer; // (R) u32
  positions: GPUBuffer; // (R) u32
  slots: GPUBuffer; // (R) u32
  rowPath: GPUBuffer; // (R) u32
  pageTable: GPUBuffer; // (P, maxPages) u32
  hidden: GPUBuffer; // (R, D) f32
  kv: GPUBuffer[]; // per layer (pages, 2, Hkv, pageSize, hd) f32
}

export class DecodeFused {
  readonly layout: DecodeFusedLayout;
  private readonly pipeline: GPUComputePipeline;

  constructor(
    private readonly gpu: Gpu,
    readonly shape: DecodeFusedShape,
  ) {
    const why = decodeFusedRefusal(gpu, shape);
    if (why) throw new InvalidArgumentError(`decode_fused: ${why}; run the layered forward.`);
    this.layout = decodeFusedLayout(shape);
    const key = `${JSON.stringify(shape)}`;
    this.pipeline = gpu.pipelines.get({ op: 'decode_fused', variant: key, constants: {} }, () => decodeFusedSource(shape, this.layout));
  }

  bind(b: DecodeFusedBuffers, label = 'decode_fused'): BoundDecodeFused {
    const s = this.shape;
    if (b.kv.length !== s.layers.length) throw new InvalidArgumentError(`${label}: ${s.layers.length} KV pools needed, ${b.kv.length} given.`);
    checkFloats(label, 'weights', b.weights, this.layout.floats);
    const pageBytes = 2 * s.kvHeads * s.pageSize * s.headDim * 4;
    for (const kv of b.kv) if (kv.size < s.pages * pageBytes) throw new InvalidArgumentError(`${label}: a KV pool holds fewer than ${s.pages} pages.`);
    const k = new BoundKernel<Field>(this.gpu, this.pipeline, DecodeFusedParams, [b.weights, b.tokenIds, b.positions, b.slots, b.rowPath, b.pageTable, b.hidden, ...b.kv], label);
    return new BoundDecodeFused(k, b, s, label);
  }
}

export class BoundDecodeFused {
  private readonly params: Record<Field, number>;

  constructor(
    private readonly k: BoundKernel<Field>,
    private readonly b: DecodeFusedBuffers,
    private readonly s: DecodeFusedShape,
    private readonly label: string,
  ) {
    this.params = {
      rows: 0,
      dim: s.dim,
      group: s.nHeads / s.kvHeads,
      pageSize: s.pageSize,
      maxPages: 0,
      pages: s.pages,
      vocab: s.vocab,
      scaleLog2: Math.LOG2E * s.queryScale,
      zero: 0,
      softcapLog2: 0,
    };
  }

  /** Rows 0..rows-1, each the only row of its path; `maxPages` the width of the bound page table. */
  encode(pass: GPUComputePassEncoder, rows: number, maxPages: number): void {
    if (!Number.isInteger(rows) || rows < 0) throw new InvalidArgumentError(`${this.label}: rows must be a count, got ${rows}.`);
    if (rows === 0) return;
    if (!Number.isInteger(maxPages) || maxPages < 1) throw new InvalidArgumentError(`${this.label}: maxPages must be a positive integer, got ${maxPages}.`);
    for (const [name, buf, n] of [['tokenIds', this.b.tokenIds, rows], ['positions', this.b.positions, rows], ['slots', this.b.slots, rows], ['rowPath', this.b.rowPath, rows], ['pageTable', this.b.pageTable, maxPages], ['hidden', this.b.hidden, rows * this.s.dim]] as const)
      checkFloats(this.label, name, buf, n);
    this.params.rows = rows;
    this.params.maxPages = maxPages;
    this.k.encode(pass, this.params, [rows]);
  }

  destroy(): void {
    this.k.destroy();
  }
}
