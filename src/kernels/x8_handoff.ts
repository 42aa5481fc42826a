// The x hand-off between two 8-bit matmuls of a one-row decode step on llvmpipe: the matmul whose epilogue writes the
// residual stream x (a layer's out-projection or down projection, accumulating into x) also quantizes the next
// matmul's input RMSNorm(x) * g (the post-attention norm's gate|up, the next layer's q|k|v), which then needs no
// quantize_x8 dispatch of its own: 2 of the 8 dispatches of a quantized Llama layer (~30-40 us of CPU each there).
//
// Why this splits cleanly: the 8-bit integers of a block of RMSNorm(x) * g do not depend on the row's r = 1 / rms(x)
// (quantize_x8.wgsl's RMS prologue quantizes x * g and lets r join the block's dx). The writer (shaders/xq_next.wgsl,
// in the 8-invocation workgroups of 64 columns of qmatmul_q8.wgsl or qmatmul_q8_t8.wgsl at one row) stores each block's words and (max|x g| / 127, sum q)
// without r, and per workgroup the sum of x^2 over its 64 columns; the reader (xsSource below, in qmatmul_q8.wgsl and
// qmatmul_q8_t8.wgsl) adds those partial sums, forms r as x_scale does and multiplies it in as xq_store does. What
// changes bits and what does not:
//   - the words and max|x g| / 127: the same f32 values x * g through the same xq8_block.wgsl arithmetic: the same bits;
//   - r: quantize_x8 sums a row's squares in the same chunks of 64 values (each from 0, in order, chunks added in
//     order), so the same bits too; dx = r * (max / 127) and sx = dx * sum q are the same products.
// So a row's logits do not depend on whether its step handed x over (one row) or quantized it (more rows: batched ==
// single, test/model/quant_batch_invariance.test.ts); test/kernels/x8_handoff.test.ts compares words and y bit for bit.
import type { Gpu } from '../gpu/device.js';
import { createStorage } from '../gpu/buffers.js';
import { X8_BLOCK } from './quantize_x8.js';
import { wgslFloat } from './x_prologue.js';
import { WGSL } from './wgsl.gen.js';

/** Columns of one writer workgroup (8 invocations of 8 columns), the chunk of one partial sum of squares. */
export const HANDOFF_CHUNK = 64;
/** Storage buffers of the writer: the one-row body's 6 and the norm weight, words and scales it writes. */
export const WRITER_STORAGE_BUFFERS = 9;

/** One row of x on 8 bits as a writer left it: words as quantize_x8's, scales without r, then the partial sums. */
export interface X8Handoff {
  xq: GPUBuffer; // (K/32, 8) vec4<u32>: 32 words per block
  xs: GPUBuffer; // (2 C + C) vec2<f32>, C = ceil(K/64): (max|x g| / 127, sum q) per block, then (sum x^2, 0) per chunk
  K: number;
}

/** Bytes of a hand-off of K values. */
export function handoffBytes(K: number): { words: number; scales: number } {
  const chunks = Math.ceil(K / HANDOFF_CHUNK);
  return { words: K * 4, scales: 3 * chunks * 8 };
}

export function createX8Handoff(gpu: Gpu, K: number, label: string): X8Handoff {
  const b = handoffBytes(K);
  return {
    xq: createStorage(gpu.device, b.words, `${label}:xq (${K / X8_BLOCK}, 32) u32`),
    xs: createStorage(gpu.device, b.scales, `${label}:xs (3 ceil(${K}/64)) vec2<f32>`),
    K,
  };
}

/**
 * The x-scale side of the 8-bit bodies: xs_prep() at the start of main and xs_at(xb), the (dx, sx) of x block xb.
 * Without `eps` xs as quantize_x8 wrote it; with eps (a reader of a hand-off, whose matmul's prologue is RMS with this
 * eps) the row's r from the partial sums (K = params.k, one row) times each block's scales.
 */
export function xsSource(eps: number | null): string {
  if (eps === null) return 'fn xs_prep() {}\nfn xs_at(xb: u32) -> vec2<f32> { return xs[xb]; }';
  return `// x handed over (kernels/x8_handoff.ts), RMS eps ${eps}
const XR_EPS: f32 = ${wgslFloat(eps)};
var<private> xr_r: f32; // the row's r = 1 / rms(x)
fn xs_prep() {
  let chunks = (params.k + 63u) / 64u;
  var ss = 0.0;
  for (var c = 0u; c < chunks; c++) { ss += xs[2u * chunks + c].x; }
  xr_r = 1.0 / sqrt(ss / f32(params.k) + XR_EPS); // x_prologue.ts x_scale
}
fn xs_at(xb: u32) -> vec2<f32> {
  let s = xs[xb];
  let dx = xr_r * s.x; // xq8_store.wgsl xq_store: dx = rs max / 127, sx = dx sum q
  return vec2<f32>(dx, dx * s.y);
}`;
}

/** The writer's epilogue (shaders/xq_next.wgsl) or the empty hook every other 8-bit pipeline calls. */
export function yNextSource(write: boolean): string {
  return write ? `${WGSL.xq8_block}\n${WGSL.xq_next}` : 'fn y_next(li: u32, wg: u32) {}';
}
