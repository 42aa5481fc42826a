// y[m, nOffset + n] (+)= sum_k x[m, k] * w[n, k] (+ bias[nOffset + n]) for small M (decode steps: one row per path).
// Each thread owns NR adjacent output columns and MR rows of x, so every weight vector it loads is used MR times:
// on a CPU adapter a decode matmul is bound by weight loads, and a batch of up to MR rows then costs about what one
// row does. Workgroups of WG threads run along n; grid y walks the blocks of MR rows when M > MR.
//
// VEC4 (K % 4 == 0) reads x and w as vec4: on llvmpipe that is twice as fast as four scalar loads (one bounds clamp
// and one 16-byte gather per lane instead of four). WGSL cannot change a binding's type by override, so both views
// are declared; the host binds the pair this pipeline does not read to a 16-byte dummy buffer.
// x is read through the x prologue (kernels/x_prologue.ts: x_row*, x_at*, x_scale): plain, RMSNorm or the MLP
// activation folded into the load; the row factor x_scale multiplies each finished sum.
override WG: u32 = 64;
override MR: u32 = 1;      // rows of x per thread, <= MAX_R
override NR: u32 = 2;      // output columns per thread, <= MAX_R
override VEC4: bool = true;
// Accumulator arrays need a const size; loops run to MR and NR (pipeline constants, so they unroll fully) and the
// slots beyond them are dead code.
const MAX_R: u32 = 4u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;      // (M, K/4) vec4 when VEC4, else a dummy
@group(0) @binding(2) var<storage, read> w4: array<vec4<f32>>;      // (n, K/4) vec4, this chunk's rows of W; or a dummy
@group(0) @binding(3) var<storage, read> x1: array<f32>;            // (M, K) f32 when !VEC4, else a dummy
@group(0) @binding(4) var<storage, read> w1: array<f32>;            // (n, K) f32 when !VEC4, else a dummy
@group(0) @binding(5) var<storage, read> bias: array<f32>;          // (N) f32, or a dummy when params.hasBias == 0
@group(0) @binding(6) var<storage, read_write> y: array<f32>;       // (M, ldy) f32; this chunk writes columns nOffset + [0, n)
// (and first reads them when params.accumulate: y += x W^T)

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n0 = gid.x * NR;
  let m0 = gid.y * MR;
  if (n0 >= params.n || m0 >= params.m) { return; }
  // Rows past the end are clamped to the last one: their loads stay in bounds and their sums are never stored.
  let kStride = select(params.k, params.k / 4u, VEC4);
  var xr: array<u32, MAX_R>;
  var wr: array<u32, MAX_R>;
  for (var i = 0u; i < MR; i++) {
    let r = min(m0 + i, params.m - 1u);
    xr[i] = select(x_row1(r), x_row4(r), VEC4);
  }
  for (var j = 0u; j < NR; j++) { wr[j] = min(n0 + j, params.n - 1u) * kStride; }

  // acc[i][j] holds four partial sums of row m0+i, column n0+j (one per vec4 lane; only .x on the scalar path).
  var acc: array<array<vec4<f32>, MAX_R>, MAX_R>;
  if (VEC4) {
    for (var k = 0u; k < kStride; k++) {
      var wv: array<vec4<f32>, MAX_R>;
      for (var j = 0u; j < NR; j++) { wv[j] = w4[wr[j] + k]; }
      for (var i = 0u; i < MR; i++) {
        let xv = x_at4(i, xr[i], k);
        for (var j = 0u; j < NR; j++) { acc[i][j] = fma(xv, wv[j], acc[i][j]); }
      }
    }
  } else {
    for (var k = 0u; k < kStride; k++) {
      var wv: array<f32, MAX_R>;
      for (var j = 0u; j < NR; j++) { wv[j] = w1[wr[j] + k]; }
      for (var i = 0u; i < MR; i++) {
        let xv = x_at1(i, xr[i], k);
        for (var j = 0u; j < NR; j++) { acc[i][j].x = fma(xv, wv[j], acc[i][j].x); }
      }
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
