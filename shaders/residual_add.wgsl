// x[i] += y[i] for i < params.n. One thread per element; a 2-D grid when n exceeds one dimension's workgroup limit.
override WG: u32 = 256;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>; // (n) f32, updated in place
@group(0) @binding(2) var<storage, read> y: array<f32>;       // (n) f32

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= params.n) { return; }
  x[i] = x[i] + y[i];
}
