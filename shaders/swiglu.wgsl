// SwiGLU: out[r, c] = silu(gate[r, c]) * up[r, c], gate = gateUp[r, 0:hidden], up = gateUp[r, hidden:2*hidden].
// One thread per output element; a 2-D grid when there are more than one dimension's workgroups cover.
override WG: u32 = 256;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> gateUp: array<f32>;  // (rows, 2 * hidden) f32
@group(0) @binding(2) var<storage, read_write> out: array<f32>; // (rows, hidden) f32

// a * sigmoid(a) with the sigmoid from exp(-|a|) <= 1: never overflows, and keeps full relative precision for
// large negative a, where 1 / (1 + exp(-a)) would meet exp(-a) = inf.
fn silu(a: f32) -> f32 {
  let e = exp(-abs(a));
  let s = select(e / (1.0 + e), 1.0 / (1.0 + e), a >= 0.0);
  return a * s;
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  let hidden = params.hidden;
  if (i >= params.rows * hidden) { return; }
  let r = i / hidden;
  let c = i - r * hidden;
  let g = r * 2u * hidden + c;
  out[i] = silu(gateUp[g]) * gateUp[g + hidden];
}
