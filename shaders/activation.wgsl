// The MLP activations, act(v) by ACT: 0 SiLU, 1 GELU tanh form (gelu_pytorch_tanh, gelu_new), 2 GELU erf form
// (exact GELU). Composed before a body that declares ACT: kernels/mlp_act.ts (an override constant) and the matmul
// x-prologue of the down projection (kernels/x_prologue.ts, a const), so both compute the same function.

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

fn act4(v: vec4<f32>) -> vec4<f32> {
  return vec4<f32>(act(v.x), act(v.y), act(v.z), act(v.w));
}
