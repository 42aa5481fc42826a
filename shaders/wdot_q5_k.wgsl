// Q5_K decode step: one 64-value chunk c = s of a block: qs bytes @48 + 32 c (low nibbles sub-block 2 c, high
// 2 c + 1, as Q4_K) and the 32 qh bytes @16 (bit 2 c of qh[l]: 5th bit of value 64 c + l, bit 2 c + 1: of 64 c + 32 + l);
// x = d sc (q + 16 h) - dmin m per sub-block. 16-byte aligned: four 16-byte loads per step.
const DQK: u32 = QK;
const DBYTES: u32 = BLOCK_BYTES;
const DOT: u32 = 64u;

/** The 5th bits of four values: bit b of each byte of v, as 0 or 16. */
fn hb4(v: u32, b: u32) -> vec4<i32> {
  return vec4<i32>(((vec4<u32>(v) >> vec4<u32>(b, b + 8u, b + 16u, b + 24u)) & vec4<u32>(1u)) << vec4<u32>(4u));
}

fn dot_step(o: u32, h: vec4<u32>, s: u32) -> f32 {
  let dm = unpack2x16float(h.x);
  let a = unpack4xU8(h.y);
  let b = unpack4xU8(h.z);
  let c = unpack4xU8(h.w);
  let smLo = scale_min_k4(a, b, c, 2u * s);
  let smHi = scale_min_k4(a, b, c, 2u * s + 1u);
  let e0 = w4[(o + 16u) >> 4u];
  let e1 = w4[(o + 32u) >> 4u];
  let p = w4[(o + 48u + 32u * s) >> 4u];
  let q = w4[(o + 64u + 32u * s) >> 4u];
  let bl = 2u * s;
  let bh = 2u * s + 1u;
  var lo = vec4<f32>(nib4(p.x, 0u) + hb4(e0.x, bl)) * xv[0];
  lo = fma(vec4<f32>(nib4(p.y, 0u) + hb4(e0.y, bl)), xv[1], lo);
  lo = fma(vec4<f32>(nib4(p.z, 0u) + hb4(e0.z, bl)), xv[2], lo);
  lo = fma(vec4<f32>(nib4(p.w, 0u) + hb4(e0.w, bl)), xv[3], lo);
  lo = fma(vec4<f32>(nib4(q.x, 0u) + hb4(e1.x, bl)), xv[4], lo);
  lo = fma(vec4<f32>(nib4(q.y, 0u) + hb4(e1.y, bl)), xv[5], lo);
  lo = fma(vec4<f32>(nib4(q.z, 0u) + hb4(e1.z, bl)), xv[6], lo);
  lo = fma(vec4<f32>(nib4(q.w, 0u) + hb4(e1.w, bl)), xv[7], lo);
  var hi = vec4<f32>(nib4(p.x, 4u) + hb4(e0.x, bh)) * xv[8];
  hi = fma(vec4<f32>(nib4(p.y, 4u) + hb4(e0.y, bh)), xv[9], hi);
  hi = fma(vec4<f32>(nib4(p.z, 4u) + hb4(e0.z, bh)), xv[10], hi);
  hi = fma(vec4<f32>(nib4(p.w, 4u) + hb4(e0.w, bh)), xv[11], hi);
  hi = fma(vec4<f32>(nib4(q.x, 4u) + hb4(e1.x, bh)), xv[12], hi);
  hi = fma(vec4<f32>(nib4(q.y, 4u) + hb4(e1.y, bh)), xv[13], hi);
  hi = fma(vec4<f32>(nib4(q.z, 4u) + hb4(e1.z, bh)), xv[14], hi);
  hi = fma(vec4<f32>(nib4(q.w, 4u) + hb4(e1.w, bh)), xv[15], hi);
  let sLo = ((xv[0] + xv[1]) + (xv[2] + xv[3])) + ((xv[4] + xv[5]) + (xv[6] + xv[7]));
  let sHi = ((xv[8] + xv[9]) + (xv[10] + xv[11])) + ((xv[12] + xv[13]) + (xv[14] + xv[15]));
  let one = vec4<f32>(1.0);
  return dm.x * (smLo.x * dot(lo, one) + smHi.x * dot(hi, one)) - dm.y * (smLo.y * dot(sLo, one) + smHi.y * dot(sHi, one));
}
