// Matmul on 8-bit activations at every M: y[m, nOffset + n] (+)= sum_k x[m, k] * W[n, k] (+ bias[nOffset + n]) with
// W in a GGUF block type with an integer step and x as shaders/quantize_x8.wgsl quantized it per 32-value block (after the x
// prologue: x ~ dx q, q in [-127, 127], as llama.cpp quantizes activations for its quantized dot products), then the
// y epilogue (kernels/y_epilogue.ts: RoPE + KV write). Composed with wload_common, wload_<type>, idot_<type>.wgsl (DQK,
// DBYTES, DOT values per step (32, 64 or 128), XB, idot_load: one column's weight words of a step, and idot_dot: their
// integer dot product with the step's x blocks in xw, xm, scaled) and xq8.wgsl.
//
// Each invocation owns NR = 8 adjacent columns and MR rows (1 for one-row decode, 4 for small batches, 8 for prefill).
// Per step it loads each column's weight words once and serves its MR rows with them; with MR = 1 (row8) it loads each
// column's words right before their product instead, so one column's words are live at a time (Q4_K 1.3-1.5x, Q8_0
// 1.3x faster on llvmpipe than holding all eight columns' words, bench/RESULTS.md "Weights"). Why one body for every M: a
// row's result is then the same bits at any M (test/model/quant_batch_invariance.test.ts): its x blocks are quantized
// from its own values, each integer block sum is exact, and each (row, column) adds its steps' idot_dot in the same
// order whatever MR is. Why the integers (bench/RESULTS.md "Weights"): on llvmpipe every vec4 op is 4 SIMD ops, and
// the f32 body spends about four per 4-bit weight (shift, mask, convert, fma); here one u32 multiply serves two
// weights (xq8.wgsl), and x is read as 16 bytes per 8 activations. Why x is quantized by a pass of its own: each
// invocation quantizing the blocks it reads cost 1.5-2.2x the matmul time on llvmpipe, and each workgroup quantizing
// the row once (its invocations a share of the blocks each, one barrier) cost about as much as the dispatch it saves:
// 3-5 us of CPU per workgroup, 8-48 of them per projection at one row (bench/RESULTS.md "Weights").
// No shared memory and no barriers in the product (both lose on CPU adapters, webgpu-on-cpu.md; a barrier alone cost
// about 1 us per workgroup on llvmpipe, bench/RESULTS.md "Weights: act_q8"), except the x hand-off's writer, after the
// stores (xq_next.wgsl, kernels/x8_handoff.ts).
//
// One row's 8 columns are row8's (main's one-row path, and act_q8_main: the act_q8 epilogue's own one-row form,
// kernels/act_q8_epilogue.ts, where each invocation computes the gate and up columns of 32 features).
override WG: u32 = 16;
override MR: u32 = 1u;     // rows of x per invocation, <= MAX_R
const NR: u32 = 8u;        // columns per invocation (even: the y epilogue rotates whole pairs)
const MAX_R: u32 = 8u;     // const array size
const XBLK: u32 = DOT / 32u; // 32-value blocks of x per step

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> xq: array<vec4<u32>>;      // (M, K/32, 8) vec4: quantize_x8.wgsl's words
@group(0) @binding(2) var<storage, read> w4: array<vec4<u32>>;      // (n, rowBytes) bytes + spare: this chunk's rows of W
@group(0) @binding(3) var<storage, read> w1: array<u32>;            // the same buffer as w4, as words
@group(0) @binding(4) var<storage, read> bias: array<f32>;          // (N) f32, or a dummy when params.hasBias == 0
@group(0) @binding(5) var<storage, read_write> y: array<f32>;       // (M, ldy) f32; this chunk writes columns nOffset + [0, n)
// (and first reads them when params.accumulate: y += x W^T)
@group(0) @binding(6) var<storage, read> xs: array<vec2<f32>>;      // (M, K/32): (dx, sx = dx sum q) per block

/** Sums of 8 columns of one row. */
struct Row8 {
  a: vec4<f32>,
  b: vec4<f32>,
}

/**
 * One row (its first x block xr) times columns n0 .. n0 + 7 of this chunk (clamped to the last): each column's
 * words are loaded right before their dot product, so only one column's are live at a time (Q4_K 1.3-1.5x, Q8_0
 * 1.3x faster on llvmpipe than holding all eight). The same arithmetic, in the same order, as main's rows loop.
 */
fn row8(n0: u32, xr: u32) -> Row8 {
  let last = params.n - 1u;
  let o0 = min(n0 + 0u, last) * params.rowBytes;
  let o1 = min(n0 + 1u, last) * params.rowBytes;
  let o2 = min(n0 + 2u, last) * params.rowBytes;
  let o3 = min(n0 + 3u, last) * params.rowBytes;
  let o4 = min(n0 + 4u, last) * params.rowBytes;
  let o5 = min(n0 + 5u, last) * params.rowBytes;
  let o6 = min(n0 + 6u, last) * params.rowBytes;
  let o7 = min(n0 + 7u, last) * params.rowBytes;
  var a0 = 0.0;
  var a1 = 0.0;
  var a2 = 0.0;
  var a3 = 0.0;
  var a4 = 0.0;
  var a5 = 0.0;
  var a6 = 0.0;
  var a7 = 0.0;
  let blocks = params.k / DQK;
  for (var b = 0u; b < blocks; b++) {
    let bo = b * DBYTES;
    let h0 = blk_head(o0 + bo);
    let h1 = blk_head(o1 + bo);
    let h2 = blk_head(o2 + bo);
    let h3 = blk_head(o3 + bo);
    let h4 = blk_head(o4 + bo);
    let h5 = blk_head(o5 + bo);
    let h6 = blk_head(o6 + bo);
    let h7 = blk_head(o7 + bo);
    for (var s = 0u; s < DQK / DOT; s++) {
      let kb = (b * DQK + s * DOT) / 32u;
      for (var t = 0u; t < XBLK; t++) { load_x(xr + kb + t, t); }
      a0 += idot_dot(idot_load(o0 + bo, h0, s));
      a1 += idot_dot(idot_load(o1 + bo, h1, s));
      a2 += idot_dot(idot_load(o2 + bo, h2, s));
      a3 += idot_dot(idot_load(o3 + bo, h3, s));
      a4 += idot_dot(idot_load(o4 + bo, h4, s));
      a5 += idot_dot(idot_load(o5 + bo, h5, s));
      a6 += idot_dot(idot_load(o6 + bo, h6, s));
      a7 += idot_dot(idot_load(o7 + bo, h7, s));
    }
  }
  return Row8(vec4<f32>(a0, a1, a2, a3), vec4<f32>(a4, a5, a6, a7));
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  xs_prep(); // x handed over by the matmul before: the row's r from its partial sums (kernels/x8_handoff.ts)
  if (ACT_Q8) {
    act_q8_main(gid.x);
    return;
  }
  let n0 = gid.x * NR;
  let m0 = gid.y * MR;
  // Invocations past the end do not return early: rows and columns past the end are clamped, so their loads stay in
  // bounds, and only the stores below are guarded (the lanes of a SIMD batch run the loop together anyway). The
  // columns are written out by hand, not as loops over arrays, so no backend has to unroll them to keep their words in
  // registers (measured 1.4x faster on llvmpipe than the loop form).
  let last = params.n - 1u;
  let o0 = min(n0 + 0u, last) * params.rowBytes;
  let o1 = min(n0 + 1u, last) * params.rowBytes;
  let o2 = min(n0 + 2u, last) * params.rowBytes;
  let o3 = min(n0 + 3u, last) * params.rowBytes;
  let o4 = min(n0 + 4u, last) * params.rowBytes;
  let o5 = min(n0 + 5u, last) * params.rowBytes;
  let o6 = min(n0 + 6u, last) * params.rowBytes;
  let o7 = min(n0 + 7u, last) * params.rowBytes;
  var xr: array<u32, MAX_R>; // each row's first x block
  for (var i = 0u; i < MR; i++) { xr[i] = min(m0 + i, params.m - 1u) * (params.k / 32u); }
  // Explicit zeros (a declaration's implicit zero-init is not redone per loop iteration on every backend).
  var acc = array<array<f32, NR>, MAX_R>();
  let blocks = select(params.k / DQK, 0u, MR == 1u); // one row: row8
  if (MR == 1u) {
    let r = row8(n0, xr[0]);
    acc[0][0] = r.a.x;
    acc[0][1] = r.a.y;
    acc[0][2] = r.a.z;
    acc[0][3] = r.a.w;
    acc[0][4] = r.b.x;
    acc[0][5] = r.b.y;
    acc[0][6] = r.b.z;
    acc[0][7] = r.b.w;
  }
  for (var b = 0u; b < blocks; b++) {
    let bo = b * DBYTES;
    let h0 = blk_head(o0 + bo);
    let h1 = blk_head(o1 + bo);
    let h2 = blk_head(o2 + bo);
    let h3 = blk_head(o3 + bo);
    let h4 = blk_head(o4 + bo);
    let h5 = blk_head(o5 + bo);
    let h6 = blk_head(o6 + bo);
    let h7 = blk_head(o7 + bo);
    for (var s = 0u; s < DQK / DOT; s++) {
      let kb = (b * DQK + s * DOT) / 32u;
      let c0 = idot_load(o0 + bo, h0, s);
      let c1 = idot_load(o1 + bo, h1, s);
      let c2 = idot_load(o2 + bo, h2, s);
      let c3 = idot_load(o3 + bo, h3, s);
      let c4 = idot_load(o4 + bo, h4, s);
      let c5 = idot_load(o5 + bo, h5, s);
      let c6 = idot_load(o6 + bo, h6, s);
      let c7 = idot_load(o7 + bo, h7, s);
      for (var i = 0u; i < MR; i++) {
        for (var t = 0u; t < XBLK; t++) { load_x(xr[i] + kb + t, t); }
        acc[i][0] += idot_dot(c0);
        acc[i][1] += idot_dot(c1);
        acc[i][2] += idot_dot(c2);
        acc[i][3] += idot_dot(c3);
        acc[i][4] += idot_dot(c4);
        acc[i][5] += idot_dot(c5);
        acc[i][6] += idot_dot(c6);
        acc[i][7] += idot_dot(c7);
      }
    }
  }
  if (params.m == 0u) {
    // Never true (with M = 0 the dispatch has no workgroups); it makes both views of W statically used, so the
    // pipeline's bind group layout keeps bindings 2 and 3 whichever view a weight type reads.
    y[0] = f32(w4[0].x + w1[0]) + xs[0].x;
  }
  for (var i = 0u; i < MR; i++) {
    let m = m0 + i;
    if (m >= params.m) { break; }
    for (var j = 0u; j < NR; j++) {
      let n = n0 + j;
      if (n >= params.n) { break; }
      var v = acc[i][j];
      if (params.hasBias != 0u) { v += bias[params.nOffset + n]; }
      let at = m * params.ldy + params.nOffset + n;
      if (params.accumulate != 0u) { v += y[at]; }
      y[at] = v;
    }
  }
  // The y epilogue (kernels/y_epilogue.ts: RoPE + KV write after a q|k|v projection; nothing otherwise) on the
  // columns this invocation stored.
  for (var i = 0u; i < MR; i++) {
    if (m0 + i < params.m) { y_epi_block(m0 + i, n0, NR); }
  }
  // The x hand-off (kernels/x8_handoff.ts): the one-row body whose y is the residual stream quantizes it for the next
  // matmul (xq_next.wgsl, a workgroup barrier); nothing in every other pipeline.
  y_next(li, wid.x);
}
