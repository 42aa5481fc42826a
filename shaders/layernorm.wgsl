// LayerNorm (GPT-2): y[r, c] = (x[r, c] - mean) / sqrt(var + eps) * weight[c] + bias[c], with the biased variance
// var = mean_c((x[r, c] - mean)^2). With params.accumulate, y += that (each element read and written by one thread).
// One workgroup per row, two shared-memory tree reductions (WG a power of two): first the mean, then the variance
// around it. Two passes rather than E[x^2] - E[x]^2: activations often have a mean far from zero, and the one-pass
// form loses the variance to cancellation in f32.
// The two reductions are written out in `main` on purpose: with the tree in a helper function that calls
// workgroupBarrier, llvmpipe (Dawn's OpenGL ES backend) returned wrong sums for rows longer than one workgroup.
override WG: u32 = 16;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;       // (rows, dim) f32
@group(0) @binding(2) var<storage, read> weight: array<f32>;  // (dim) f32
@group(0) @binding(3) var<storage, read> bias: array<f32>;    // (dim) f32
@group(0) @binding(4) var<storage, read_write> y: array<f32>; // (rows, dim) f32, never the same buffer as x

var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  // Uniform across the workgroup (built from workgroup_id), so the barriers stay in uniform control flow.
  let row = wid.x + wid.y * nwg.x;
  if (row >= params.rows) { return; }
  let dim = params.dim;
  let base = row * dim;
  let n = f32(dim);

  var s = 0.0;
  for (var c = lid; c < dim; c += WG) { s += x[base + c]; }
  partial[lid] = s;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) { partial[lid] += partial[lid + stride]; }
    workgroupBarrier();
  }
  let mean = partial[0] / n;
  // Everyone must read the total before the second reduction overwrites `partial`.
  workgroupBarrier();

  var q = 0.0;
  for (var c = lid; c < dim; c += WG) {
    let d = x[base + c] - mean;
    q += d * d;
  }
  partial[lid] = q;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) { partial[lid] += partial[lid + stride]; }
    workgroupBarrier();
  }
  let rstd = 1.0 / sqrt(partial[0] / n + params.eps);

  for (var c = lid; c < dim; c += WG) {
    var v = (x[base + c] - mean) * rstd * weight[c] + bias[c];
    if (params.accumulate != 0u) { v += y[base + c]; }
    y[base + c] = v;
  }
}
