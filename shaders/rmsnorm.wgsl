// RMSNorm (Llama): y[r, c] = x[r, c] / sqrt(mean_c(x[r, c]^2) + eps) * weight[c]; with params.accumulate, y += that
// (a post-norm adding into the residual stream; each element is read and written by one thread only).
// One workgroup per row: each thread sums the squares of a strided slice of the row, a shared-memory tree adds the
// WG partial sums (WG must be a power of two), then every thread scales its slice. Rows are few (one per token this
// step), so one workgroup each keeps the dispatch simple; a 2-D grid covers rows beyond one dimension's limit.
override WG: u32 = 16;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;       // (rows, dim) f32
@group(0) @binding(2) var<storage, read> weight: array<f32>;  // (dim) f32
@group(0) @binding(3) var<storage, read_write> y: array<f32>; // (rows, dim) f32, never the same buffer as x; read too when accumulating

var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  // Uniform across the workgroup (built from workgroup_id), so the barriers below stay in uniform control flow.
  let row = wid.x + wid.y * nwg.x;
  if (row >= params.rows) { return; }
  let dim = params.dim;
  let base = row * dim;

  var s = 0.0;
  for (var c = lid; c < dim; c += WG) {
    let v = x[base + c];
    s += v * v;
  }
  partial[lid] = s;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) { partial[lid] += partial[lid + stride]; }
    workgroupBarrier();
  }
  // 1/sqrt rather than inverseSqrt: WGSL allows inverseSqrt 2 ulp, and the division keeps the scale within ~1 ulp.
  let scale = 1.0 / sqrt(partial[0] / f32(dim) + params.eps);
  for (var c = lid; c < dim; c += WG) {
    var v = x[base + c] * scale * weight[c];
    if (params.accumulate != 0u) { v += y[base + c]; }
    y[base + c] = v;
  }
}
