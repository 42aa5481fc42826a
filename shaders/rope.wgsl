// Rotary position embedding, Hugging Face rotate-half layout, in place on the first nHeads heads of each row:
// for i < half = headDim/2, angle = pos * theta^(-2i/headDim),
//   x[i]        <- x[i] cos(angle) - x[i+half] sin(angle)
//   x[i + half] <- x[i+half] cos(angle) + x[i] sin(angle)
// One thread per (row, head, i) pair; a 2-D grid when there are more pairs than one dimension's workgroups cover.
//
// Precision: the angle reaches pos * 1 rad = 32k rad, where one f32 ulp is 0.004 rad, and sin/cos are only accurate
// on [-pi, pi]. So the angle is never formed in radians: `freq[i]` holds the frequency in turns per position,
// f = theta^(-2i/headDim) / (2 pi), computed in float64 on the host and split as f = a + b + c + d, where a, b, c
// have at most 7 significant bits each and d is the f32 remainder. For pos < 2^17, pos * a, pos * b and pos * c are
// exact in f32 (17 + 7 <= 24 bits) and so are their fractional parts; pos * d is below 0.01 turn. Adding the
// fractional parts modulo 1 costs a few 2^-25 turn roundings, so the reduced angle is within ~1e-6 rad of the
// float64 one, whatever theta is. Beyond 2^17 the products round and the error grows like pos * 2^-24 turns.
// Nor are the built-in sin and cos used: WGSL only promises 2^-11 absolute error on [-pi, pi], and SwiftShader's
// are off by 2e-4. `sinCosTurns` reduces to an octant exactly and evaluates Cephes' sinf/cosf polynomials (about
// 1 ulp on [-pi/4, pi/4]), so the rotation is within ~1e-6 of float64 on every backend.
override WG: u32 = 256;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;     // (rows, rowStride) f32, rotated in place
@group(0) @binding(2) var<storage, read> positions: array<u32>;   // (rows) u32
@group(0) @binding(3) var<storage, read> freq: array<vec4<f32>>;  // (headDim / 2) turns per position as a + b + c + d

const TWO_PI: f32 = 6.283185307179586;

// (sin, cos) of 2 pi t for t in [-0.5, 0.5] turns.
fn sinCosTurns(t: f32) -> vec2<f32> {
  // Quadrant q in {-2..2} and the remainder in [-1/8, 1/8] turn; both steps are exact in f32.
  let q = round(t * 4.0);
  let x = (t - q * 0.25) * TWO_PI; // [-pi/4, pi/4]
  let z = x * x;
  let sx = ((-1.9515295891e-4 * z + 8.3321608736e-3) * z - 1.6666654611e-1) * z * x + x;
  let cx = ((2.443315711809948e-5 * z - 1.388731625493765e-3) * z + 4.166664568298827e-2) * z * z - 0.5 * z + 1.0;
  // Rotate by q quarter turns: q mod 4 from the two's complement bits (-1 -> 3, -2 -> 2).
  switch (bitcast<u32>(i32(q)) & 3u) {
    case 1u: { return vec2<f32>(cx, -sx); }
    case 2u: { return vec2<f32>(-sx, -cx); }
    case 3u: { return vec2<f32>(-cx, sx); }
    default: { return vec2<f32>(sx, cx); }
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = gid.x + gid.y * nwg.x * WG;
  let half = params.headDim / 2u;
  if (t >= params.rows * params.nHeads * half) { return; }
  let i = t % half;
  let rowHead = t / half;
  let head = rowHead % params.nHeads;
  let row = rowHead / params.nHeads;

  let p = f32(positions[row]);
  let f = freq[i];
  // Turns modulo 1, each partial product reduced before it is added so the sum never grows past 2.
  var turns = fract(p * f.x);
  turns = fract(turns + fract(p * f.y));
  turns = fract(turns + fract(p * f.z));
  turns = turns + p * f.w;
  let sc = sinCosTurns(turns - round(turns));
  let s = sc.x;
  let c = sc.y;

  let lo = row * params.rowStride + head * params.headDim + i;
  let hi = lo + half;
  let x0 = x[lo];
  let x1 = x[hi];
  x[lo] = x0 * c - x1 * s;
  x[hi] = x1 * c + x0 * s;
}
