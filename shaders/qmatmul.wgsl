// y[m, nOffset + n] (+)= sum_k x[m, k] * W[n, k] (+ bias[nOffset + n]) with W in any storage type: the body every
// weight type shares. The host composes it with wload_common.wgsl and one wload_<type>.wgsl, which define the block
// (QK values in BLOCK_BYTES bytes), its head (fields read once per block) and sub_load, which dequantizes a sub-block
// of SUB values in registers as small numbers q with a scale and offset per half (see wload_common.wgsl). Per half,
// the thread accumulates scale * (q . x) + off * sum(x) in f32; x stays f32.
//
// Each thread owns NR adjacent output columns and MR rows of x (register blocking, no shared memory: CPU adapters
// lose on barriers, see webgpu-on-cpu.md): decode 1 x 4 (one row per path) or 4 x 4 (small batches read W about
// once), prefill 8 x 2 (many rows per dequantized sub-block). Needs K % QK == 0 (whole blocks per row).
// x is read through the x prologue (kernels/x_prologue.ts: x_row*, x_at*, x_scale): plain, RMSNorm or the MLP
// activation folded into the load; the row factor x_scale multiplies each finished sum.
override WG: u32 = 64;
override MR: u32 = 1;      // rows of x per thread, <= MAX_R
override NR: u32 = 4;      // output columns per thread, <= MAX_R
const MAX_R: u32 = 8u;     // const array size; loops run to MR and NR (pipeline constants)

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;       // (M, K/4) vec4
@group(0) @binding(2) var<storage, read> w4: array<vec4<u32>>;      // (n, rowBytes) bytes + spare: this chunk's rows of W
@group(0) @binding(3) var<storage, read> w1: array<u32>;            // the same buffer as w4, as words
@group(0) @binding(4) var<storage, read> bias: array<f32>;          // (N) f32, or a dummy when params.hasBias == 0
@group(0) @binding(5) var<storage, read_write> y: array<f32>;       // (M, ldy) f32; this chunk writes columns nOffset + [0, n)
// (and first reads them when params.accumulate: y += x W^T)

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n0 = gid.x * NR;
  let m0 = gid.y * MR;
  if (n0 >= params.n || m0 >= params.m) {
    // Never true for an invocation that matters; it makes both views of W statically used, so the pipeline's bind
    // group layout keeps bindings 2 and 3 whichever view a weight type reads.
    if (params.m == 0u) { y[0] = f32(w4[0].x + w1[0]); }
    return;
  }
  // Rows past the end are clamped to the last one: their loads stay in bounds and their sums are never stored.
  var xr: array<u32, MAX_R>;
  var wr: array<u32, MAX_R>;
  for (var i = 0u; i < MR; i++) { xr[i] = x_row4(min(m0 + i, params.m - 1u)); }
  for (var j = 0u; j < NR; j++) { wr[j] = min(n0 + j, params.n - 1u) * params.rowBytes; }

  var acc: array<array<vec4<f32>, MAX_R>, MAX_R>; // four partial sums per (row, column), one per vec4 lane
  let blocks = params.k / QK;
  for (var b = 0u; b < blocks; b++) {
    var head = array<vec4<u32>, MAX_R>();
    for (var j = 0u; j < NR; j++) { head[j] = blk_head(wr[j] + b * BLOCK_BYTES); }
    for (var s = 0u; s < QK / SUB; s++) {
      var sub = array<Sub, MAX_R>();
      for (var j = 0u; j < NR; j++) { sub[j] = sub_load(wr[j] + b * BLOCK_BYTES, head[j], s); }
      let xs = b * (QK / 4u) + s * SUB4;
      for (var i = 0u; i < MR; i++) {
        // Explicit zeros: a declaration's implicit zero-init is not redone per loop iteration on every backend
        // (SwiftShader's SPIR-V keeps the last iteration's values).
        var dLo = array<vec4<f32>, MAX_R>();
        var dHi = array<vec4<f32>, MAX_R>();
        var sxLo = vec4<f32>(0.0);
        var sxHi = vec4<f32>(0.0);
        for (var v = 0u; v < SUB4; v++) {
          let xv = x_at4(i, xr[i], xs + v);
          if (v < HALF4) {
            sxLo += xv;
            for (var j = 0u; j < NR; j++) { dLo[j] = fma(xv, sub[j].q[v], dLo[j]); }
          } else {
            sxHi += xv;
            for (var j = 0u; j < NR; j++) { dHi[j] = fma(xv, sub[j].q[v], dHi[j]); }
          }
        }
        for (var j = 0u; j < NR; j++) {
          let t = sub[j];
          acc[i][j] += t.lo * dLo[j] + t.hi * dHi[j] + t.offLo * sxLo + t.offHi * sxHi;
        }
      }
    }
  }

  var sc: array<f32, MAX_R>;
  for (var i = 0u; i < MR; i++) { sc[i] = x_scale(i); }
  for (var j = 0u; j < NR; j++) {
    let n = n0 + j;
    if (n >= params.n) { break; }
    var bv = 0.0;
    if (params.hasBias != 0u) { bv = bias[params.nOffset + n]; }
    for (var i = 0u; i < MR; i++) {
      let m = m0 + i;
      if (m >= params.m) { break; }
      let a = acc[i][j];
      let at = m * params.ldy + params.nOffset + n;
      var v = ((a.x + a.y) + (a.z + a.w)) * sc[i] + bv;
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
