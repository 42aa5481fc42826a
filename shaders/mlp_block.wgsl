// The end of a pre-norm Llama layer for a block of 8 rows in one dispatch, on CPU adapters (kernels/mlp_block.ts says
// when): three matmuls that the layered forward runs as three dispatches (model/gpu_model.ts), one after another in
// the workgroup that owns the rows, separated by barriers:
//   o        hidden += attnOut Wo^T                      (K = qDim)
//   gate|up  gateUp  = RMSNorm(hidden) * g Wgu^T         (K = D, the norm folded in as the matmul's x prologue)
//   down     hidden += (act(gate) * up) Wdown^T          (K = F, the activation folded in)
// Each phase computes blocks of 8 rows x 8 columns exactly as shaders/matmul_prefill.wgsl does with its x prologue
// (kernels/x_prologue.ts): per column four partial sums, one per vec4 lane, fma'd over K in order, finished as
// ((a.x + a.y) + (a.z + a.w)) * x_scale + bias, where bias is the uniform zero (the layered kernel adds 0.0 too,
// which turns -0 into +0), then + y when accumulating. So a row's bits do not depend on whether its step ran the
// block or the three matmuls (test/kernels/mlp_block.test.ts). A workgroup owns whole rows (every column of each
// phase), so the rows a phase reads were written by this workgroup's previous phase: a storage barrier suffices.
// The host prepends the uniform struct, `override ACT` and shaders/activation.wgsl.
override WG: u32 = 8;
const MR: u32 = 8u;
const NR: u32 = 8u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> attnOut: array<vec4<f32>>;   // (M, qDim/4) the attention output
@group(0) @binding(2) var<storage, read> wo: array<vec4<f32>>;        // (D, qDim/4)
@group(0) @binding(3) var<storage, read_write> hidden: array<vec4<f32>>; // (M, D/4) the residual stream
@group(0) @binding(4) var<storage, read> g: array<vec4<f32>>;         // (D/4) the MLP's RMSNorm weight
@group(0) @binding(5) var<storage, read> wgu: array<vec4<f32>>;       // (2F, D/4) gate rows, then up rows
@group(0) @binding(6) var<storage, read_write> gateUp: array<vec4<f32>>; // (M, 2F/4) gate | up
@group(0) @binding(7) var<storage, read> wd: array<vec4<f32>>;        // (D, F/4)

// Stores write one float at a time into the vec4 arrays: a thread owns 8 columns (two whole vec4s) of each of its
// rows, so no other invocation writes a part of a vec4 it writes.

// The finished column as matmul_prefill stores it.
fn finish(a: vec4<f32>, sc: f32) -> f32 {
  return ((a.x + a.y) + (a.z + a.w)) * sc + params.zero;
}

// Columns n0 .. n0 + 7 of o for rows m0 .. m0 + 7, added into hidden.
fn oBlock(m0: u32, n0: u32) {
  let k4 = params.qDim / 4u;
  var xr: array<u32, MR>;
  var wr: array<u32, NR>;
  for (var i = 0u; i < MR; i++) { xr[i] = min(m0 + i, params.m - 1u) * k4; }
  for (var j = 0u; j < NR; j++) { wr[j] = min(n0 + j, params.dim - 1u) * k4; }
  var acc: array<array<vec4<f32>, NR>, MR>;
  for (var k = 0u; k < k4; k++) {
    var wv: array<vec4<f32>, NR>;
    for (var j = 0u; j < NR; j++) { wv[j] = wo[wr[j] + k]; }
    for (var i = 0u; i < MR; i++) {
      let xv = attnOut[xr[i] + k];
      for (var j = 0u; j < NR; j++) { acc[i][j] = fma(xv, wv[j], acc[i][j]); }
    }
  }
  for (var j = 0u; j < NR; j++) {
    let n = n0 + j;
    if (n >= params.dim) { break; }
    for (var i = 0u; i < MR; i++) {
      let m = m0 + i;
      if (m >= params.m) { break; }
      let at = m * params.dim + n;
      var v = finish(acc[i][j], 1.0);
      v += hidden[at / 4u][at % 4u];
      hidden[at / 4u][at % 4u] = v;
    }
  }
}

// Columns n0 .. n0 + 7 of gate|up for rows m0 .. m0 + 7 from RMSNorm(hidden) * g, into gateUp.
fn guBlock(m0: u32, n0: u32) {
  let k4 = params.dim / 4u;
  let n2 = 2u * params.hidden;
  var xr: array<u32, MR>;
  var wr: array<u32, NR>;
  for (var i = 0u; i < MR; i++) { xr[i] = min(m0 + i, params.m - 1u) * k4; }
  for (var j = 0u; j < NR; j++) { wr[j] = min(n0 + j, n2 - 1u) * k4; }
  var acc: array<array<vec4<f32>, NR>, MR>;
  var ss: array<f32, MR>;
  for (var k = 0u; k < k4; k++) {
    var wv: array<vec4<f32>, NR>;
    for (var j = 0u; j < NR; j++) { wv[j] = wgu[wr[j] + k]; }
    for (var i = 0u; i < MR; i++) {
      let v = hidden[xr[i] + k];
      ss[i] += dot(v, v);
      let xv = v * g[k];
      for (var j = 0u; j < NR; j++) { acc[i][j] = fma(xv, wv[j], acc[i][j]); }
    }
  }
  var sc: array<f32, MR>;
  for (var i = 0u; i < MR; i++) { sc[i] = 1.0 / sqrt(ss[i] / f32(params.dim) + params.eps); }
  for (var j = 0u; j < NR; j++) {
    let n = n0 + j;
    if (n >= n2) { break; }
    for (var i = 0u; i < MR; i++) {
      let m = m0 + i;
      if (m >= params.m) { break; }
      let at = m * n2 + n;
      gateUp[at / 4u][at % 4u] = finish(acc[i][j], sc[i]);
    }
  }
}

// Columns n0 .. n0 + 7 of down for rows m0 .. m0 + 7 from act(gate) * up, added into hidden.
fn downBlock(m0: u32, n0: u32) {
  let k4 = params.hidden / 4u;
  var xr: array<u32, MR>;
  var wr: array<u32, NR>;
  for (var i = 0u; i < MR; i++) { xr[i] = min(m0 + i, params.m - 1u) * (2u * k4); }
  for (var j = 0u; j < NR; j++) { wr[j] = min(n0 + j, params.dim - 1u) * k4; }
  var acc: array<array<vec4<f32>, NR>, MR>;
  for (var k = 0u; k < k4; k++) {
    var wv: array<vec4<f32>, NR>;
    for (var j = 0u; j < NR; j++) { wv[j] = wd[wr[j] + k]; }
    for (var i = 0u; i < MR; i++) {
      let xv = act4(gateUp[xr[i] + k]) * gateUp[xr[i] + k4 + k];
      for (var j = 0u; j < NR; j++) { acc[i][j] = fma(xv, wv[j], acc[i][j]); }
    }
  }
  for (var j = 0u; j < NR; j++) {
    let n = n0 + j;
    if (n >= params.dim) { break; }
    for (var i = 0u; i < MR; i++) {
      let m = m0 + i;
      if (m >= params.m) { break; }
      let at = m * params.dim + n;
      var v = finish(acc[i][j], 1.0);
      v += hidden[at / 4u][at % 4u];
      hidden[at / 4u][at % 4u] = v;
    }
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let m0 = wid.x * MR;
  let dBlocks = (params.dim + NR - 1u) / NR;
  let guBlocks = (2u * params.hidden + NR - 1u) / NR;
  for (var c = lid; c < dBlocks; c += WG) { oBlock(m0, c * NR); }
  storageBarrier();
  workgroupBarrier();
  for (var c = lid; c < guBlocks; c += WG) { guBlock(m0, c * NR); }
  storageBarrier();
  workgroupBarrier();
  for (var c = lid; c < dBlocks; c += WG) { downBlock(m0, c * NR); }
}
