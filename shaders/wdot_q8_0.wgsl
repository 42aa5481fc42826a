// Q8_0 decode step: one 32-value block (34 bytes at an even offset o), read as the three 16-byte loads that cover
// [o rounded down to 16, + 48) and realigned in registers (cheaper on llvmpipe than nine word loads); x = d q.
const DQK: u32 = QK;
const DBYTES: u32 = BLOCK_BYTES;
const DOT: u32 = 32u;
fn dot_step(o: u32, h: vec4<u32>, s: u32) -> f32 {
  let i = o >> 4u;
  let a = w4[i];
  let b = w4[i + 1u];
  let c = w4[i + 2u];
  let k = (o >> 2u) & 3u;
  let odd = (o & 2u) != 0u;
  // u<j>: word k + j of the 12 words a|b|c, the word holding byte o + 4 j (or its lower half, when o is odd)
  let u0 = pick4(a.x, a.y, a.z, a.w, k);
  let u1 = pick4(a.y, a.z, a.w, b.x, k);
  let u2 = pick4(a.z, a.w, b.x, b.y, k);
  let u3 = pick4(a.w, b.x, b.y, b.z, k);
  let u4 = pick4(b.x, b.y, b.z, b.w, k);
  let u5 = pick4(b.y, b.z, b.w, c.x, k);
  let u6 = pick4(b.z, b.w, c.x, c.y, k);
  let u7 = pick4(b.w, c.x, c.y, c.z, k);
  let u8 = pick4(c.x, c.y, c.z, c.w, k);
  let d = unpack2x16float(select(u0, u0 >> 16u, odd)).x;
  var t = vec4<f32>(sbyte4(at2(u0, u1, odd))) * xv[0];
  t = fma(vec4<f32>(sbyte4(at2(u1, u2, odd))), xv[1], t);
  t = fma(vec4<f32>(sbyte4(at2(u2, u3, odd))), xv[2], t);
  t = fma(vec4<f32>(sbyte4(at2(u3, u4, odd))), xv[3], t);
  t = fma(vec4<f32>(sbyte4(at2(u4, u5, odd))), xv[4], t);
  t = fma(vec4<f32>(sbyte4(at2(u5, u6, odd))), xv[5], t);
  t = fma(vec4<f32>(sbyte4(at2(u6, u7, odd))), xv[6], t);
  t = fma(vec4<f32>(sbyte4(at2(u7, u8, odd))), xv[7], t);
  return d * ((t.x + t.y) + (t.z + t.w));
}
