// The x hand-off's writer (kernels/x8_handoff.ts): the one-row 8-bit matmul (qmatmul_q8.wgsl or qmatmul_q8_t8.wgsl,
// 8-invocation workgroups of 8 columns each: Q8_1_NARROW) whose outputs are the new residual stream x also writes, for
// the matmul that reads RMSNorm(x) * g next, what quantize_x8.wgsl's RMS prologue would write of it, less the row's
// r = 1 / rms(x): per 32-value block the words of x * g (xq8_block.wgsl; the integers do not depend on a factor common
// to the row) and (max|x g| / 127, sum q), and per 64-column workgroup the sum of its x^2 in the order quantize_x8
// sums that chunk. The reader (x8_handoff.ts xsSource) adds the partial sums in chunk order, forms r as x_scale does
// and multiplies it in as xq_store does: the same bits as quantize_x8 on the same x.
//
// How the work is split (on llvmpipe a workgroup of 8 is one 8-lane SIMD batch; a load or store whose address
// differs between lanes is a loop over the lanes, so the split minimizes those): each invocation puts the 8 values it
// stored into workgroup memory, with the dot(v, v) of its two vec4s; after the barrier the four invocations of each
// block quantize the block together (the same values in each) and store two of its 8 word vec4s each, and the first
// adds the dots in order.
@group(0) @binding(11) var<storage, read> xn_g: array<vec4<f32>>;        // (N/4) vec4 the next norm's weight g
@group(0) @binding(12) var<storage, read_write> xn_q: array<vec4<u32>>;  // (N/32, 8) vec4: 32 words per block
@group(0) @binding(13) var<storage, read_write> xn_s: array<vec2<f32>>;  // (N/32) (max|x g| / 127, sum q), at 2 ceil(N/64) + c chunk c's (sum x^2, 0)

var<workgroup> xn_x: array<vec4<f32>, 16>; // the workgroup's 64 columns of row 0 as stored, 0 past N
var<workgroup> xn_d: array<f32, 16>;       // dot(v, v) of each of those vec4s v

/** Columns c .. c + 3 of row 0 as this invocation stored them (c a multiple of 4; N is a multiple of 32), 0 past N. */
fn xn_y4(c: u32) -> vec4<f32> {
  if (c >= params.n) { return vec4<f32>(0.0); }
  return vec4<f32>(y[c], y[c + 1u], y[c + 2u], y[c + 3u]);
}

/** Vec4 j (0..7) of a block's words: A words 0..3, B words 4..7. */
fn xn_word(q: XqBlock, j: u32) -> vec4<u32> {
  var w = q.a0;
  w = select(w, q.a1, j == 1u);
  w = select(w, q.a2, j == 2u);
  w = select(w, q.a3, j == 3u);
  w = select(w, q.b0, j == 4u);
  w = select(w, q.b1, j == 5u);
  w = select(w, q.b2, j == 6u);
  return select(w, q.b3, j == 7u);
}

/** After every invocation stored its 8 columns of row 0 (nOffset 0, one chunk: the host guards both); wg: workgroup id. */
fn y_next(li: u32, wg: u32) {
  let col0 = wg * 64u;
  let v0 = xn_y4(col0 + 8u * li);
  let v1 = xn_y4(col0 + 8u * li + 4u);
  xn_x[2u * li] = v0;
  xn_x[2u * li + 1u] = v1;
  xn_d[2u * li] = dot(v0, v0);
  xn_d[2u * li + 1u] = dot(v1, v1);
  workgroupBarrier();
  if (li == 0u) {
    // quantize_x8.wgsl's chunk loop: each vec4's dot(v, v) in order, added to a partial from 0 (past N the vec4s are
    // 0, which adds exactly nothing to a sum >= 0).
    var p = 0.0;
    for (var i = 0u; i < 16u; i++) { p += xn_d[i]; }
    xn_s[2u * ((params.n + 63u) / 64u) + wg] = vec2<f32>(p, 0.0);
  }
  let b = li / 4u; // this invocation's block of the chunk
  if (col0 + 32u * b < params.n) {
    let k4 = 8u * b;
    let g4 = col0 / 4u + k4;
    let q = xq_block8(
      xn_x[k4] * xn_g[g4], xn_x[k4 + 1u] * xn_g[g4 + 1u], xn_x[k4 + 2u] * xn_g[g4 + 2u], xn_x[k4 + 3u] * xn_g[g4 + 3u],
      xn_x[k4 + 4u] * xn_g[g4 + 4u], xn_x[k4 + 5u] * xn_g[g4 + 5u], xn_x[k4 + 6u] * xn_g[g4 + 6u], xn_x[k4 + 7u] * xn_g[g4 + 7u],
    );
    let blk = col0 / 32u + b;
    let j = 2u * (li % 4u);
    xn_q[blk * 8u + j] = xn_word(q, j);
    xn_q[blk * 8u + j + 1u] = xn_word(q, j + 1u);
    if (j == 0u) { xn_s[blk] = q.s; }
  }
}
