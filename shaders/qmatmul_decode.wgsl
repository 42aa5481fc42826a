// Decode matmul (one row of x per invocation row, small M): y[m, nOffset + n] (+)= sum_k x[m, k] * W[n, k]
// (+ bias[nOffset + n]) with W in its storage type. Composed with wload_common.wgsl, the type's wload_<type>.wgsl (QK,
// BLOCK_BYTES, blk_head) and wdot_<type>.wgsl, which defines DQK values in DBYTES bytes per block of this body (the
// type's block; 4 or 8 values for the dense types), DOT (values per step, DQK % DOT == 0) and dot_step: the dot
// product of DOT consecutive weights of one row with the x values this body holds in `xv`, dequantizing in registers.
//
// Why this shape (measured on llvmpipe, bench/RESULTS.md "Weights"): llvmpipe runs invocations as SIMD lanes and
// turns each storage load into a loop over the lanes, so a load costs far more than an arithmetic op. Per DOT values
// an invocation loads the x chunk once and serves NR = 8 output columns with it (4 for the dense types), and reads
// each column's weights in 16-byte words (one per 32 values of Q4_K, 8 of F16, 4 of F32; 2-byte-aligned blocks
// through the 2-3 aligned words that cover them). What is left is the arithmetic of dequantizing each weight. No
// shared memory and no barriers (both lose on CPU adapters, webgpu-on-cpu.md); the columns are written out by hand,
// not as a loop over arrays, so no backend has to unroll them to keep the accumulators in registers.
// x is read through the x prologue (kernels/x_prologue.ts): plain, RMSNorm or the MLP activation folded into the
// load; x_scale multiplies the finished sums.
override WG: u32 = 16;
override NR: u32 = 8u;      // output columns per invocation: 4 or 8, written out by hand below (see the header)
const DOT4: u32 = DOT / 4u; // vec4s of x per step

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;       // (M, K/4) vec4
@group(0) @binding(2) var<storage, read> w4: array<vec4<u32>>;      // (n, rowBytes) bytes + spare: this chunk's rows of W
@group(0) @binding(3) var<storage, read> w1: array<u32>;            // the same buffer as w4, as words
@group(0) @binding(4) var<storage, read> bias: array<f32>;          // (N) f32, or a dummy when params.hasBias == 0
@group(0) @binding(5) var<storage, read_write> y: array<f32>;       // (M, ldy) f32; this chunk writes columns nOffset + [0, n)
// (and first reads them when params.accumulate: y += x W^T)

/** x[m, k0 + 4 v .. + 4 v + 3] for v < DOT4: the x values of the current step, shared by the NR columns. */
var<private> xv: array<vec4<f32>, DOT4>;

fn store(m: u32, n: u32, acc: f32) {
  if (n >= params.n) { return; }
  var v = acc * x_scale(0u);
  if (params.hasBias != 0u) { v += bias[params.nOffset + n]; }
  let at = m * params.ldy + params.nOffset + n;
  if (params.accumulate != 0u) { v += y[at]; }
  y[at] = v;
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n0 = gid.x * NR;
  // Invocations past the end do not return early: rows and columns past the end are clamped, so their loads stay
  // in bounds, and only the stores below are guarded (the lanes of a SIMD batch run the loop together anyway).
  let m = min(gid.y, params.m - 1u);
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
  let xrow = x_row4(m);
  let blocks = params.k / DQK;
  for (var b = 0u; b < blocks; b++) {
    let bo = b * DBYTES;
    let h0 = blk_head(o0 + bo);
    let h1 = blk_head(o1 + bo);
    let h2 = blk_head(o2 + bo);
    let h3 = blk_head(o3 + bo);
    var h4 = vec4<u32>(0u);
    var h5 = vec4<u32>(0u);
    var h6 = vec4<u32>(0u);
    var h7 = vec4<u32>(0u);
    if (NR > 4u) {
      h4 = blk_head(o4 + bo);
      h5 = blk_head(o5 + bo);
      h6 = blk_head(o6 + bo);
      h7 = blk_head(o7 + bo);
    }
    for (var s = 0u; s < DQK / DOT; s++) {
      let xo = b * (DQK / 4u) + s * DOT4;
      for (var v = 0u; v < DOT4; v++) { xv[v] = x_at4(0u, xrow, xo + v); }
      a0 += dot_step(o0 + bo, h0, s);
      a1 += dot_step(o1 + bo, h1, s);
      a2 += dot_step(o2 + bo, h2, s);
      a3 += dot_step(o3 + bo, h3, s);
      if (NR > 4u) {
        a4 += dot_step(o4 + bo, h4, s);
        a5 += dot_step(o5 + bo, h5, s);
        a6 += dot_step(o6 + bo, h6, s);
        a7 += dot_step(o7 + bo, h7, s);
      }
    }
  }
  if (params.m == 0u) {
    // Never true (with M = 0 the dispatch has no workgroups); it makes both views of W statically used, so the pipeline's bind group layout
    // keeps bindings 2 and 3 whichever view a weight type reads.
    y[0] = f32(w4[0].x + w1[0]);
  }
  if (gid.y >= params.m) { return; }
  store(m, n0 + 0u, a0);
  store(m, n0 + 1u, a1);
  store(m, n0 + 2u, a2);
  store(m, n0 + 3u, a3);
  if (NR > 4u) {
    store(m, n0 + 4u, a4);
    store(m, n0 + 5u, a5);
    store(m, n0 + 6u, a6);
    store(m, n0 + 7u, a7);
  }
  y_epi_block(m, n0, NR); // the y epilogue (kernels/y_epilogue.ts), on the columns stored above
}
