// y[m, nOffset + n] (+)= sum_k x[m, k] * w[n, k] (+ bias[nOffset + n]) for many rows (prompt chunks, wide batches) on
// CPU adapters: register blocking. Each thread computes an MR x NR block of y from MR rows of x and NR rows of W,
// so per vec4 step it issues MR + NR loads for MR * NR fused multiply-adds. On llvmpipe loads (bounds clamp plus a
// per-lane gather) dominate, and 8 x 8 blocks run about 1.6x faster than 4 x 4 (bench/RESULTS.md), spilled
// accumulators notwithstanding. No barriers and no shared memory: on CPU adapters those lose (webgpu-on-cpu.md).
// Needs K % 4 == 0 (vec4 rows); the host routes other K to the decode shader.
// x is read through the x prologue (kernels/x_prologue.ts: x_row*, x_at*, x_scale): plain, RMSNorm or the MLP
// activation folded into the load; the row factor x_scale multiplies each finished sum.
override WG: u32 = 64;
override MR: u32 = 8;      // rows of x per thread, <= MAX_R
override NR: u32 = 8;      // output columns per thread, <= MAX_R
const MAX_R: u32 = 8u;     // const array size; loops run to MR and NR (pipeline constants) and unroll fully

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;       // (M, K/4) vec4
@group(0) @binding(2) var<storage, read> w: array<vec4<f32>>;       // (n, K/4) vec4, this chunk's rows of W
@group(0) @binding(3) var<storage, read> bias: array<f32>;          // (N) f32, or a dummy when params.hasBias == 0
@group(0) @binding(4) var<storage, read_write> y: array<f32>;       // (M, ldy) f32; this chunk writes columns nOffset + [0, n)
// (and first reads them when params.accumulate: y += x W^T)

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n0 = gid.x * NR;
  let m0 = gid.y * MR;
  if (n0 >= params.n || m0 >= params.m) { return; }
  // Rows past the end are clamped to the last one: their loads stay in bounds and their sums are never stored.
  let k4 = params.k / 4u;
  var xr: array<u32, MAX_R>;
  var wr: array<u32, MAX_R>;
  for (var i = 0u; i < MR; i++) { xr[i] = x_row4(min(m0 + i, params.m - 1u)); }
  for (var j = 0u; j < NR; j++) { wr[j] = min(n0 + j, params.n - 1u) * k4; }

  var acc: array<array<vec4<f32>, MAX_R>, MAX_R>; // four partial sums per (row, column), one per vec4 lane
  for (var k = 0u; k < k4; k++) {
    var wv: array<vec4<f32>, MAX_R>;
    for (var j = 0u; j < NR; j++) { wv[j] = w[wr[j] + k]; }
    for (var i = 0u; i < MR; i++) {
      let xv = x_at4(i, xr[i], k);
      for (var j = 0u; j < NR; j++) { acc[i][j] = fma(xv, wv[j], acc[i][j]); }
    }
  }

  var sc: array<f32, MAX_R>;
  for (var i = 0u; i < MR; i++) { sc[i] = x_scale(i); }
  for (var j = 0u; j < NR; j++) {
    let n = n0 + j;
    if (n >= params.n) { break; }
    var b = 0.0;
    if (params.hasBias != 0u) { b = bias[params.nOffset + n]; }
    for (var i = 0u; i < MR; i++) {
      let m = m0 + i;
      if (m >= params.m) { break; }
      let a = acc[i][j];
      let at = m * params.ldy + params.nOffset + n;
      var v = ((a.x + a.y) + (a.z + a.w)) * sc[i] + b;
      if (params.accumulate != 0u) { v += y[at]; }
      y[at] = v;
    }
  }

  // The y epilogue (kernels/y_epilogue.ts: RoPE + KV write after a q|k|v projection; nothing otherwise) on the
  // columns this invocation stored.
  for (var i = 0u; i < MR; i++) {
    if (m0 + i < params.m) { y_epi_block(m0 + i, n0, NR); }
  }
}
