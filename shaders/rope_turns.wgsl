// RoPE's rotation, shared by shaders/rope_kv.wgsl and the matmul rope_kv epilogue (kernels/y_epilogue.ts). The angle
// is never formed in radians: freq = invFreq / (2 pi) turns per position, split on the host as a + b + c + d with a, b,
// c of 7 significant bits, so pos * a, pos * b, pos * c are exact in f32 for pos < 2^17 and the reduced angle is
// within ~1e-6 rad of float64; sin and cos come from Cephes' polynomials on an exact octant reduction (the built-ins
// are off by 2e-4 on SwiftShader).
const TWO_PI: f32 = 6.283185307179586;

// (sin, cos) of 2 pi t for t in [-0.5, 0.5] turns.
fn sinCosTurns(t: f32) -> vec2<f32> {
  // Quadrant q in {-2..2} and the remainder in [-1/8, 1/8] turn; both steps are exact in f32.
  let q = round(t * 4.0);
  let a = (t - q * 0.25) * TWO_PI; // [-pi/4, pi/4]
  let z = a * a;
  let sx = ((-1.9515295891e-4 * z + 8.3321608736e-3) * z - 1.6666654611e-1) * z * a + a;
  let cx = ((2.443315711809948e-5 * z - 1.388731625493765e-3) * z + 4.166664568298827e-2) * z * z - 0.5 * z + 1.0;
  // Rotate by q quarter turns: q mod 4 from the two's complement bits (-1 -> 3, -2 -> 2).
  switch (bitcast<u32>(i32(q)) & 3u) {
    case 1u: { return vec2<f32>(cx, -sx); }
    case 2u: { return vec2<f32>(-sx, -cx); }
    case 3u: { return vec2<f32>(-cx, sx); }
    default: { return vec2<f32>(sx, cx); }
  }
}

/** (sin, cos) of position p times the frequency f (turns per position as a + b + c + d, kernels/rope_kv.ts). */
fn rotationTurns(p: f32, f: vec4<f32>) -> vec2<f32> {
  // Turns modulo 1, each partial product reduced before it is added so the sum never grows past 2.
  var turns = fract(p * f.x);
  turns = fract(turns + fract(p * f.y));
  turns = fract(turns + fract(p * f.z));
  turns = turns + p * f.w;
  return sinCosTurns(turns - round(turns));
}
