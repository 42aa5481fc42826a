// Decode matmul on 8-bit activations (M = 1): y[m, nOffset + n] (+)= sum_k x[m, k] * W[n, k] (+ bias) with x
// quantized per 32-value block by shaders/quantize_x8.wgsl (x ~ dx q, q in [-127, 127], as llama.cpp quantizes
// activations for its quantized dot products) and W in a 4- or 5-bit GGUF type. Composed as qmatmul_decode.wgsl with
// wload_common, wload_<type> and idot_<type>.wgsl, which defines DQK, DBYTES, DOT (values per step, 32 or 64), XB
// (whether the step reads the B words of x, the 5th-bit pairing) and idot_step: the dot product of DOT weights of one
// row with the x words this body holds in `xw` and the block scales in `xm`.
//
// Why (bench/RESULTS.md "Weights"): on llvmpipe every vec4 op is 4 SIMD ops, and the f32 path spends about four per
// 4-bit weight (shift, mask, convert, fma). Here one u32 multiply serves two weights: a word of two 4-bit weights in
// 16-bit lanes (w0 + w1 * 65536, cut from the GGUF nibbles by one mask) times a word of two 8-bit activations
// (x1 + x0 * 65536) holds w0 x0 + w1 x1 in its upper half. Eight such products (16 weights) sum to at most
// 16 * 15 * 127 < 2^15 in the upper half and 8 * 15 * 127 < 2^15 in the lower, so the u32 sum taken as i32 is exact and
// (s + 2^15) >> 16 recovers the dot product (hi16); a weight then costs about two ops. x is read as 16 bytes per 8
// activations, half the f32 path's bytes. The shape is qmatmul_decode.wgsl's (NR = 8 columns per invocation, no
// shared memory), and the f32 input row is read only by quantize_x8.wgsl.
override WG: u32 = 16;
override NR: u32 = 8u;      // output columns per invocation: 4 or 8, written out by hand below (see the header)
const XBLK: u32 = DOT / 32u; // 32-value blocks of x per step
const XV: u32 = select(4u, 8u, XB); // vec4s of xq read per block: the A words, and the B words when the type has 5th bits

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> xq: array<vec4<u32>>;     // (M, K/32, 8) vec4: quantize_x8.wgsl's words
@group(0) @binding(2) var<storage, read> w4: array<vec4<u32>>;      // (n, rowBytes) bytes + spare: this chunk's rows of W
@group(0) @binding(3) var<storage, read> w1: array<u32>;            // the same buffer as w4, as words
@group(0) @binding(4) var<storage, read> bias: array<f32>;          // (N) f32, or a dummy when params.hasBias == 0
@group(0) @binding(5) var<storage, read_write> y: array<f32>;       // (M, ldy) f32; this chunk writes columns nOffset + [0, n)
// (and first reads them when params.accumulate: y += x W^T)
@group(0) @binding(6) var<storage, read> xs: array<vec2<f32>>;      // (M, K/32): (dx, sx = dx sum q) per block

/** The words of the current step's x blocks (block j at 8 j: A words at 8 j + 0..3, B at 8 j + 4..7), shared by the NR columns. */
var<private> xw: array<vec4<u32>, 8u * XBLK>;
/** (dx, sx) of the current step's x blocks. */
var<private> xm: array<vec2<f32>, XBLK>;

const M4: u32 = 0x000f000fu;
const H2: u32 = 0x00010001u;

/** Products of the low nibbles of the qs word u (4 values of one group) with that group's A words a, b. */
fn lo_nib(u: u32, a: u32, b: u32) -> u32 {
  return (u & M4) * a + ((u >> 8u) & M4) * b;
}

/** The same for the high nibbles of u. */
fn hi_nib(u: u32, a: u32, b: u32) -> u32 {
  return ((u >> 4u) & M4) * a + ((u >> 12u) & M4) * b;
}

/** The dot product in the upper 16 bits of a sum of lane products (exact while both halves stay below 2^15). */
fn hi16(s: u32) -> i32 {
  return (bitcast<i32>(s) + 0x8000) >> 16u;
}

/** sum_v h_v q_v over a 32-value block, h_v bit v of qh (the 5th bits of Q5_0 / Q5_1), through the block's B words. */
fn h_dot(qh: u32) -> i32 {
  var s = (qh & H2) * xw[4].x + ((qh >> 1u) & H2) * xw[4].y + ((qh >> 2u) & H2) * xw[4].z + ((qh >> 3u) & H2) * xw[4].w;
  s += ((qh >> 4u) & H2) * xw[5].x + ((qh >> 5u) & H2) * xw[5].y + ((qh >> 6u) & H2) * xw[5].z + ((qh >> 7u) & H2) * xw[5].w;
  s += ((qh >> 8u) & H2) * xw[6].x + ((qh >> 9u) & H2) * xw[6].y + ((qh >> 10u) & H2) * xw[6].z + ((qh >> 11u) & H2) * xw[6].w;
  s += ((qh >> 12u) & H2) * xw[7].x + ((qh >> 13u) & H2) * xw[7].y + ((qh >> 14u) & H2) * xw[7].z + ((qh >> 15u) & H2) * xw[7].w;
  return hi16(s);
}

fn store(m: u32, n: u32, acc: f32) {
  if (n >= params.n) { return; }
  var v = acc;
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
  let xrow = m * (params.k / 32u);
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
      let xb = xrow + (b * DQK + s * DOT) / 32u;
      for (var j = 0u; j < XBLK; j++) {
        xm[j] = xs[xb + j];
        for (var v = 0u; v < XV; v++) { xw[8u * j + v] = xq[8u * (xb + j) + v]; }
      }
      a0 += idot_step(o0 + bo, h0, s);
      a1 += idot_step(o1 + bo, h1, s);
      a2 += idot_step(o2 + bo, h2, s);
      a3 += idot_step(o3 + bo, h3, s);
      if (NR > 4u) {
        a4 += idot_step(o4 + bo, h4, s);
        a5 += idot_step(o5 + bo, h5, s);
        a6 += idot_step(o6 + bo, h6, s);
        a7 += idot_step(o7 + bo, h7, s);
      }
    }
  }
  if (params.m == 0u) {
    // Never true (with M = 0 the dispatch has no workgroups); it makes both views of W (and xs) statically used, so the pipeline's bind group layout
    // keeps bindings 2 and 3 whichever view a weight type reads.
    y[0] = f32(w4[0].x + w1[0]) + xs[0].x;
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
}
