// What the 8-bit-activation matmul bodies (qmatmul_q8.wgsl, qmatmul_q8_t8.wgsl) share: the x blocks of a step, as
// shaders/quantize_x8.wgsl left them (x ~ dx q per 32 values, q in [-127, 127]; its header gives the word layout:
// A words at vec4s 0..3 of a block, B words at 4..7), and the integer helpers that multiply two weights per u32 multiply.
// The body defines XBLK (x blocks per step) and XB (whether its steps read the B words) and binds xq and xs; its main
// calls xs_prep() first (kernels/x8_handoff.ts).

/** The words of the current step's x blocks (block j at 8 j: A words at 8 j + 0..3, B at 8 j + 4..7). */
var<private> xw: array<vec4<u32>, 8u * XBLK>;
/** (dx, sx = dx sum q) of the current step's x blocks: x ~ dx q. */
var<private> xm: array<vec2<f32>, XBLK>;

/**
 * Loads x block xb (the (row, block) index into quantize_x8's words and scales) as block j of xw, xm. Its scales go
 * through xs_at (kernels/x8_handoff.ts: xs itself, or a handed-over block's times the row's r).
 */
fn load_x(xb: u32, j: u32) {
  xm[j] = xs_at(xb);
  for (var v = 0u; v < select(4u, 8u, XB); v++) { xw[8u * j + v] = xq[8u * xb + v]; }
}

const M4: u32 = 0x000f000fu;
const H2: u32 = 0x00010001u;

/** The dot product in the upper 16 bits of a sum of lane products (exact while both halves stay below 2^15). */
fn hi16(s: u32) -> i32 {
  return (bitcast<i32>(s) + 0x8000) >> 16u;
}

/** Products of the low nibbles of the qs word u (4 values of one group) with that group's A words a, b. */
fn lo_nib(u: u32, a: u32, b: u32) -> u32 {
  return (u & M4) * a + ((u >> 8u) & M4) * b;
}

/** The same for the high nibbles of u. */
fn hi_nib(u: u32, a: u32, b: u32) -> u32 {
  return ((u >> 4u) & M4) * a + ((u >> 12u) & M4) * b;
}

/** sum_v h_v q_v over a 32-value block, h_v bit v of qh (the 5th bits of Q5_0 / Q5_1), through block 0's B words. */
fn h_dot(qh: u32) -> i32 {
  var s = (qh & H2) * xw[4].x + ((qh >> 1u) & H2) * xw[4].y + ((qh >> 2u) & H2) * xw[4].z + ((qh >> 3u) & H2) * xw[4].w;
  s += ((qh >> 4u) & H2) * xw[5].x + ((qh >> 5u) & H2) * xw[5].y + ((qh >> 6u) & H2) * xw[5].z + ((qh >> 7u) & H2) * xw[5].w;
  s += ((qh >> 8u) & H2) * xw[6].x + ((qh >> 9u) & H2) * xw[6].y + ((qh >> 10u) & H2) * xw[6].z + ((qh >> 11u) & H2) * xw[6].w;
  s += ((qh >> 12u) & H2) * xw[7].x + ((qh >> 13u) & H2) * xw[7].y + ((qh >> 14u) & H2) * xw[7].z + ((qh >> 15u) & H2) * xw[7].w;
  return hi16(s);
}
