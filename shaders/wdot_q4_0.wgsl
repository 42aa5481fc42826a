// Q4_0 decode step: one 32-value block (18 bytes at an even offset o), read as the two 16-byte loads that cover
// [o rounded down to 16, + 32) and realigned in registers; qs @2 as Q5_0's, x = d (q - 8).
const DQK: u32 = QK;
const DBYTES: u32 = BLOCK_BYTES;
const DOT: u32 = 32u;
fn dot_step(o: u32, h: vec4<u32>, s: u32) -> f32 {
  let i = o >> 4u;
  let a = w4[i];
  let b = w4[i + 1u];
  let k = (o >> 2u) & 3u;
  let odd = (o & 2u) != 0u;
  let u0 = pick4(a.x, a.y, a.z, a.w, k);
  let u1 = pick4(a.y, a.z, a.w, b.x, k);
  let u2 = pick4(a.z, a.w, b.x, b.y, k);
  let u3 = pick4(a.w, b.x, b.y, b.z, k);
  let u4 = pick4(b.x, b.y, b.z, b.w, k);
  let d = unpack2x16float(select(u0, u0 >> 16u, odd)).x;
  let q0 = at2(u0, u1, odd);
  let q1 = at2(u1, u2, odd);
  let q2 = at2(u2, u3, odd);
  let q3 = at2(u3, u4, odd);
  var t = vec4<f32>(nib4(q0, 0u) - 8) * xv[0];
  t = fma(vec4<f32>(nib4(q1, 0u) - 8), xv[1], t);
  t = fma(vec4<f32>(nib4(q2, 0u) - 8), xv[2], t);
  t = fma(vec4<f32>(nib4(q3, 0u) - 8), xv[3], t);
  t = fma(vec4<f32>(nib4(q0, 4u) - 8), xv[4], t);
  t = fma(vec4<f32>(nib4(q1, 4u) - 8), xv[5], t);
  t = fma(vec4<f32>(nib4(q2, 4u) - 8), xv[6], t);
  t = fma(vec4<f32>(nib4(q3, 4u) - 8), xv[7], t);
  return d * ((t.x + t.y) + (t.z + t.w));
}
