// y[m, nOffset + n] (+)= sum_k x[m, k] * w[n, k] (+ bias[nOffset + n]) for many rows on a real GPU: the classic
// shared-memory tiling. A 16 x 16 workgroup computes a 64 x 64 block of y, each thread 4 x 4 outputs strided by 16
// (so neighbouring threads write neighbouring columns); x and W are staged through workgroup memory TK columns of K
// at a time with coalesced loads. On CPU adapters barriers and shared tiles lose (webgpu-on-cpu.md), so the host
// only picks this on hardware adapters; the tests still run it on both CPU adapters. Scalar loads: any K.
// x is staged through the x prologue (kernels/x_prologue.ts: x_tile_prep, x_tile): plain, RMSNorm (row scales of
// the tile computed first) or the MLP activation, applied once per staged element.
const TILE: u32 = 64u;      // rows of x and rows of W per workgroup
const TK: u32 = 16u;        // columns of K per stage
const PAD: u32 = 17u;       // TK + 1: threads reading one column of a tile hit different banks
const THREADS: u32 = 256u;  // 16 x 16

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;             // (M, K) f32
@group(0) @binding(2) var<storage, read> w: array<f32>;             // (n, K) f32, this chunk's rows of W
@group(0) @binding(3) var<storage, read> bias: array<f32>;          // (N) f32, or a dummy when params.hasBias == 0
@group(0) @binding(4) var<storage, read_write> y: array<f32>;       // (M, ldy) f32; this chunk writes columns nOffset + [0, n)
// (and first reads them when params.accumulate: y += x W^T)

var<workgroup> xs: array<array<f32, PAD>, TILE>; // (64 rows of x, 16 of K)
var<workgroup> ws: array<array<f32, PAD>, TILE>; // (64 rows of W, 16 of K)

@compute @workgroup_size(16, 16)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  let mBase = wid.y * TILE;
  let nBase = wid.x * TILE;
  let K = params.k;
  var acc: array<array<f32, 4>, 4>;
  x_tile_prep(mBase, li);
  workgroupBarrier();
  // No early return: every thread must reach every barrier. The loop bound is uniform (a uniform-buffer value).
  for (var k0 = 0u; k0 < K; k0 += TK) {
    for (var t = 0u; t < (TILE * TK) / THREADS; t++) {
      let e = li + t * THREADS;
      let r = e / TK;
      let c = e % TK;
      let k = k0 + c;
      let m = mBase + r;
      let n = nBase + r;
      var xv = 0.0;
      if (m < params.m && k < K) { xv = x_tile(r, m, k); }
      var wv = 0.0;
      if (n < params.n && k < K) { wv = w[n * K + k]; }
      xs[r][c] = xv;
      ws[r][c] = wv;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < TK; kk++) {
      var a: array<f32, 4>;
      var b: array<f32, 4>;
      for (var i = 0u; i < 4u; i++) { a[i] = xs[lid.y + 16u * i][kk]; }
      for (var j = 0u; j < 4u; j++) { b[j] = ws[lid.x + 16u * j][kk]; }
      for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) { acc[i][j] = fma(a[i], b[j], acc[i][j]); }
      }
    }
    workgroupBarrier();
  }

  for (var j = 0u; j < 4u; j++) {
    let n = nBase + lid.x + 16u * j;
    if (n >= params.n) { continue; }
    var b = 0.0;
    if (params.hasBias != 0u) { b = bias[params.nOffset + n]; }
    for (var i = 0u; i < 4u; i++) {
      let m = mBase + lid.y + 16u * i;
      if (m < params.m) {
        let at = m * params.ldy + params.nOffset + n;
        var v = acc[i][j] + b;
        if (params.accumulate != 0u) { v += y[at]; }
        y[at] = v;
      }
    }
  }
  // The y epilogue (kernels/y_epilogue.ts) works on column pairs another thread of the tile may have stored: a
  // storage barrier first, in uniform control flow (Y_EPI is a const, so other pipelines have neither).
  if (Y_EPI) {
    storageBarrier();
    y_epi_tile(mBase, nBase, li);
  }
}
