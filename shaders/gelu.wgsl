// GELU, tanh form: y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), elementwise over n values.
// Computed as x * sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3), which is the same function (0.5 (1 + tanh u) =
// sigmoid(2u)) without tanh: WGSL's tanh may be built from exp(u) and return NaN for large |u| on some backends,
// and 1 + tanh(u) cancels for negative x. The sigmoid comes from exp(-|2u|) <= 1, which never overflows.
override WG: u32 = 256;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;       // (n) f32
@group(0) @binding(2) var<storage, read_write> y: array<f32>; // (n) f32

const SQRT_2_OVER_PI: f32 = 0.7978845608028654;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= params.n) { return; }
  let v = x[i];
  // Beyond |x| = 15 the sigmoid is exactly 0 or 1 in f32 (exp(-264) underflows), so clamping only keeps x^3 from
  // overflowing: WGSL lets implementations assume no infinities.
  let xc = clamp(v, -15.0, 15.0);
  let u2 = 2.0 * SQRT_2_OVER_PI * xc * (1.0 + 0.044715 * xc * xc);
  let e = exp(-abs(u2));
  let s = select(e / (1.0 + e), 1.0 / (1.0 + e), u2 >= 0.0);
  y[i] = v * s;
}
