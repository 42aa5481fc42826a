// Matmul on 8-bit activations at every M for Q5_0 held in 8-row tiles (src/weights/tiles.ts, wload_q5_0.wgsl):
// y[m, nOffset + n] (+)= sum_k x[m, k] * W[n, k] (+ bias), x as quantize_x8.wgsl left it (x ~ dx qx per 32 values),
// then the y epilogue. The same contract as qmatmul_q8.wgsl (one body for every M: a row's bits do not depend on MR),
// with a tile's 8 columns per invocation.
//
// Per 32-value block an invocation makes 11 aligned 16-byte loads that serve the tile's 8 columns and its MR rows (the
// 5 word planes of 4 rows each, twice, and the 8 d), against three unaligned loads per column and their realignment
// in GGUF's row layout; on llvmpipe a load whose address differs between the lanes of a SIMD batch is a loop over the
// lanes (bench/RESULTS.md "Weights"). Each column's block then costs 16 u32 multiplies: a pair word (two whole 5-bit
// values q in 16-bit lanes, cut by one shift and mask) times the x word of the same two values (quantize_x8.wgsl's A word p:
// (qx of the pair's high value, qx of its low value)) holds q_lo qx_lo + q_hi qx_hi in its upper 16 bits. Four
// products sum to at most 8 * 31 * 127 = 31496 < 2^15 in the upper half and 4 * 31 * 127 in the lower, so hi16 of each
// group of four is exact; with x = d (q - 16) a block adds d (dx sum q qx - 16 sx), sx = dx sum qx.
override WG: u32 = 16;
override MR: u32 = 1u;     // rows of x per invocation, <= MAX_R
const MAX_R: u32 = 8u;     // const array size
const XBLK: u32 = 1u;      // one 32-value x block per step (xq8.wgsl)
const XB: bool = false;    // the 5th bits sit in the pair words: no B words

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> xq: array<vec4<u32>>;      // (M, K/32, 8) vec4: quantize_x8.wgsl's words
@group(0) @binding(2) var<storage, read> w4: array<vec4<u32>>;      // (ceil(n / 8), K/32) tile blocks of 176 bytes + spare
@group(0) @binding(3) var<storage, read> w1: array<u32>;            // the same buffer as w4, as words
@group(0) @binding(4) var<storage, read> bias: array<f32>;          // (N) f32, or a dummy when params.hasBias == 0
@group(0) @binding(5) var<storage, read_write> y: array<f32>;       // (M, ldy) f32; this chunk writes columns nOffset + [0, n)
// (and first reads them when params.accumulate: y += x W^T)
@group(0) @binding(6) var<storage, read> xs: array<vec2<f32>>;      // (M, K/32): (dx, sx = dx sum qx) per block

/** One column's block: its five words w0..w4 and d, against the x block in xw[0..3], xm[0]. */
fn col(w0: u32, w1: u32, w2: u32, w3: u32, w4: u32, d: f32) -> f32 {
  let s0 = (w0 & M5) * xw[0].x + ((w0 >> 5u) & M5) * xw[0].y + ((w0 >> 10u) & M5) * xw[0].z + (w1 & M5) * xw[0].w;
  let s1 = ((w1 >> 5u) & M5) * xw[1].x + ((w1 >> 10u) & M5) * xw[1].y + (w2 & M5) * xw[1].z + ((w2 >> 5u) & M5) * xw[1].w;
  let s2 = ((w2 >> 10u) & M5) * xw[2].x + (w3 & M5) * xw[2].y + ((w3 >> 5u) & M5) * xw[2].z + ((w3 >> 10u) & M5) * xw[2].w;
  let s3 = (w4 & M5) * xw[3].x + ((w4 >> 5u) & M5) * xw[3].y + ((w4 >> 10u) & M5) * xw[3].z + q5_pair15(w0, w1, w2, w3, w4) * xw[3].w;
  return d * (xm[0].x * f32((hi16(s0) + hi16(s1)) + (hi16(s2) + hi16(s3))) - 16.0 * xm[0].y);
}

/** Sums of 8 columns of one row. */
struct Row8 {
  a: vec4<f32>,
  b: vec4<f32>,
}

/**
 * One row (its first x block xr) times the tile of columns n0 .. n0 + 7 (n0 a multiple of 8; past the last tile, the
 * last): the same arithmetic, in the same order, as main's rows loop. main's one-row path and act_q8_main (the act_q8
 * epilogue's one-row form, kernels/act_q8_epilogue.ts) run it.
 */
fn row8(n0: u32, xr: u32) -> Row8 {
  let tile = min(n0 / 8u, (params.n - 1u) / 8u);
  let blocks = params.k / 32u;
  var a = vec4<f32>(0.0);
  var c = vec4<f32>(0.0);
  for (var b = 0u; b < blocks; b++) {
    let base = (tile * blocks + b) * 11u;
    let p0 = w4[base];
    let q0 = w4[base + 1u];
    let p1 = w4[base + 2u];
    let q1 = w4[base + 3u];
    let p2 = w4[base + 4u];
    let q2 = w4[base + 5u];
    let p3 = w4[base + 6u];
    let q3 = w4[base + 7u];
    let p4 = w4[base + 8u];
    let q4 = w4[base + 9u];
    let dd = w4[base + 10u];
    let d01 = unpack2x16float(dd.x);
    let d23 = unpack2x16float(dd.y);
    let d45 = unpack2x16float(dd.z);
    let d67 = unpack2x16float(dd.w);
    load_x(xr + b, 0u);
    a.x += col(p0.x, p1.x, p2.x, p3.x, p4.x, d01.x);
    a.y += col(p0.y, p1.y, p2.y, p3.y, p4.y, d01.y);
    a.z += col(p0.z, p1.z, p2.z, p3.z, p4.z, d23.x);
    a.w += col(p0.w, p1.w, p2.w, p3.w, p4.w, d23.y);
    c.x += col(q0.x, q1.x, q2.x, q3.x, q4.x, d45.x);
    c.y += col(q0.y, q1.y, q2.y, q3.y, q4.y, d45.y);
    c.z += col(q0.z, q1.z, q2.z, q3.z, q4.z, d67.x);
    c.w += col(q0.w, q1.w, q2.w, q3.w, q4.w, d67.y);
  }
  return Row8(a, c);
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  xs_prep(); // x handed over by the matmul before: the row's r (kernels/x8_handoff.ts)
  if (ACT_Q8) {
    act_q8_main(gid.x);
    return;
  }
  // Invocations past the last tile read the last one (in bounds) and store nothing; rows past the end are clamped.
  let tile = min(gid.x, (params.n - 1u) / 8u);
  let n0 = gid.x * 8u;
  let m0 = gid.y * MR;
  let blocks = params.k / 32u;
  var xr: array<u32, MAX_R>;
  for (var i = 0u; i < MR; i++) { xr[i] = min(m0 + i, params.m - 1u) * blocks; } // each row's first x block
  var acc = array<array<f32, 8>, MAX_R>();
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
  for (var b = 0u; b < select(blocks, 0u, MR == 1u); b++) { // one row: row8
    let base = (tile * blocks + b) * 11u; // in 16-byte words: a tile block is 176 bytes
    let p0 = w4[base];
    let q0 = w4[base + 1u];
    let p1 = w4[base + 2u];
    let q1 = w4[base + 3u];
    let p2 = w4[base + 4u];
    let q2 = w4[base + 5u];
    let p3 = w4[base + 6u];
    let q3 = w4[base + 7u];
    let p4 = w4[base + 8u];
    let q4 = w4[base + 9u];
    let dd = w4[base + 10u];
    let d01 = unpack2x16float(dd.x);
    let d23 = unpack2x16float(dd.y);
    let d45 = unpack2x16float(dd.z);
    let d67 = unpack2x16float(dd.w);
    for (var i = 0u; i < MR; i++) {
      load_x(xr[i] + b, 0u);
      acc[i][0] += col(p0.x, p1.x, p2.x, p3.x, p4.x, d01.x);
      acc[i][1] += col(p0.y, p1.y, p2.y, p3.y, p4.y, d01.y);
      acc[i][2] += col(p0.z, p1.z, p2.z, p3.z, p4.z, d23.x);
      acc[i][3] += col(p0.w, p1.w, p2.w, p3.w, p4.w, d23.y);
      acc[i][4] += col(q0.x, q1.x, q2.x, q3.x, q4.x, d45.x);
      acc[i][5] += col(q0.y, q1.y, q2.y, q3.y, q4.y, d45.y);
      acc[i][6] += col(q0.z, q1.z, q2.z, q3.z, q4.z, d67.x);
      acc[i][7] += col(q0.w, q1.w, q2.w, q3.w, q4.w, d67.y);
    }
  }
  if (params.m == 0u) {
    // Never true (with M = 0 the dispatch has no workgroups); keeps w1 statically used, so the bind group layout
    // matches the other bodies'.
    y[0] = f32(w1[0]) + xs[0].x;
  }
  for (var i = 0u; i < MR; i++) {
    let m = m0 + i;
    if (m >= params.m) { break; }
    for (var j = 0u; j < 8u; j++) {
      let n = n0 + j;
      if (n >= params.n) { break; }
      var v = acc[i][j];
      if (params.hasBias != 0u) { v += bias[params.nOffset + n]; }
      let at = m * params.ldy + params.nOffset + n;
      if (params.accumulate != 0u) { v += y[at]; }
      y[at] = v;
    }
  }
  for (var i = 0u; i < MR; i++) {
    if (m0 + i < params.m) { y_epi_block(m0 + i, n0, 8u); }
  }
  y_next(li, wid.x); // the x hand-off's writer (xq_next.wgsl) in that pipeline only, as in qmatmul_q8.wgsl
}
