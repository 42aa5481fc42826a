// Q5_0 decode step: one 32-value block (22 bytes at an even offset o), read as the three 16-byte loads that cover
// [o rounded down to 16, + 48) and realigned in registers. Byte j of qs (@6) holds value j (low nibble) and 16 + j
// (high); bit j of qh (@2) the 5th bit of value j; x = d (q - 16).
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
  let d = unpack2x16float(select(u0, u0 >> 16u, odd)).x;
  let qh = at2(u0, u1, odd);
  // qs word j (bytes 6 + 4 j) is the upper half of u<1+j> and the lower of u<2+j>, or u<2+j> itself when o is odd.
  let q0 = at2(u1, u2, odd);
  let q1 = at2(u2, u3, odd);
  let q2 = at2(u3, u4, odd);
  let q3 = at2(u4, u5, odd);
  var t = vec4<f32>(nib4(q0, 0u) + bit4(qh, 0u, 16) - 16) * xv[0];
  t = fma(vec4<f32>(nib4(q1, 0u) + bit4(qh, 4u, 16) - 16), xv[1], t);
  t = fma(vec4<f32>(nib4(q2, 0u) + bit4(qh, 8u, 16) - 16), xv[2], t);
  t = fma(vec4<f32>(nib4(q3, 0u) + bit4(qh, 12u, 16) - 16), xv[3], t);
  t = fma(vec4<f32>(nib4(q0, 4u) + bit4(qh, 16u, 16) - 16), xv[4], t);
  t = fma(vec4<f32>(nib4(q1, 4u) + bit4(qh, 20u, 16) - 16), xv[5], t);
  t = fma(vec4<f32>(nib4(q2, 4u) + bit4(qh, 24u, 16) - 16), xv[6], t);
  t = fma(vec4<f32>(nib4(q3, 4u) + bit4(qh, 28u, 16) - 16), xv[7], t);
  return d * ((t.x + t.y) + (t.z + t.w));
}
