// The MLP's activation, one thread per output element (a 2-D grid when there are more than one dimension covers):
//   gated (GATED, SwiGLU / GeGLU): out[r, c] = act(gate[r, c]) * up[r, c], gate = in[r, 0:hidden], up = in[r, hidden:2*hidden]
//   plain (GPT-2, GPT-NeoX):       out[r, c] = act(in[r, c]), in (rows, hidden)
// act by ACT: 0 SiLU, 1 GELU tanh form (gelu_pytorch_tanh, gelu_new), 2 GELU erf form (exact GELU).
override WG: u32 = 256;
override ACT: u32 = 0u;
override GATED: bool = true;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> inp: array<f32>;       // (rows, 2 * hidden) f32 gate | up when GATED, else (rows, hidden)
@group(0) @binding(2) var<storage, read_write> out: array<f32>; // (rows, hidden) f32

// Sigmoid from exp(-|a|) <= 1: never overflows, and keeps full relative precision for large negative a, where
// 1 / (1 + exp(-a)) would meet exp(-a) = inf.
fn sigmoid(a: f32) -> f32 {
  let e = exp(-abs(a));
  return select(e / (1.0 + e), 1.0 / (1.0 + e), a >= 0.0);
}

const SQRT_2_OVER_PI: f32 = 0.7978845608028654;
const INV_SQRT_2: f32 = 0.7071067811865476;

// erfc(z) by Numerical Recipes' erfcc (Chebyshev fit, relative error < 1.2e-7 for every z): the exp of a polynomial,
// so erfc keeps its relative precision in the tail, where 1 - erf would cancel.
fn erfc(z: f32) -> f32 {
  let a = abs(z);
  let t = 1.0 / (1.0 + 0.5 * a);
  let p = -a * a - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 +
    t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  let r = t * exp(p);
  return select(2.0 - r, r, z >= 0.0);
}

fn act(v: f32) -> f32 {
  if (ACT == 1u) {
    // 0.5 v (1 + tanh(u)) = v * sigmoid(2u): no tanh (NaN for large |u| on some backends, and 1 + tanh(u) cancels
    // for negative v). Beyond |v| = 15 the sigmoid is exactly 0 or 1 in f32, so the clamp only keeps v^3 finite.
    let c = clamp(v, -15.0, 15.0);
    return v * sigmoid(2.0 * SQRT_2_OVER_PI * c * (1.0 + 0.044715 * c * c));
  }
  if (ACT == 2u) {
    // 0.5 v (1 + erf(v / sqrt 2)) = 0.5 v erfc(-v / sqrt 2); clamped where erfc is exactly 0 or 2 in f32.
    return 0.5 * v * erfc(-clamp(v, -15.0, 15.0) * INV_SQRT_2);
  }
  return v * sigmoid(v);
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  let hidden = params.hidden;
  if (i >= params.rows * hidden) { return; }
  if (GATED) {
    let r = i / hidden;
    let g = r * 2u * hidden + (i - r * hidden);
    out[i] = act(inp[g]) * inp[g + hidden];
  } else {
    out[i] = act(inp[i]);
  }
}
