// Q5_1 decode step: one 32-value block (24 bytes at an 8-byte aligned offset o), read as the two 16-byte loads that
// cover [o rounded down to 16, + 32); d, m f16 @0, qh @4, qs @8 (as Q5_0's); x = d q + m.
const DQK: u32 = QK;
const DBYTES: u32 = BLOCK_BYTES;
const DOT: u32 = 32u;
fn dot_step(o: u32, h: vec4<u32>, s: u32) -> f32 {
  let i = o >> 4u;
  let a = w4[i];
  let b = w4[i + 1u];
  let k = (o >> 2u) & 3u;
  let dm = unpack2x16float(pick4(a.x, a.y, a.z, a.w, k));
  let qh = pick4(a.y, a.z, a.w, b.x, k);
  let q0 = pick4(a.z, a.w, b.x, b.y, k);
  let q1 = pick4(a.w, b.x, b.y, b.z, k);
  let q2 = pick4(b.x, b.y, b.z, b.w, k);
  let q3 = pick4(b.y, b.z, b.w, b.w, k); // k is 0 or 2 (8-byte aligned blocks): never past b.w
  var t = vec4<f32>(nib4(q0, 0u) + bit4(qh, 0u, 16)) * xv[0];
  t = fma(vec4<f32>(nib4(q1, 0u) + bit4(qh, 4u, 16)), xv[1], t);
  t = fma(vec4<f32>(nib4(q2, 0u) + bit4(qh, 8u, 16)), xv[2], t);
  t = fma(vec4<f32>(nib4(q3, 0u) + bit4(qh, 12u, 16)), xv[3], t);
  t = fma(vec4<f32>(nib4(q0, 4u) + bit4(qh, 16u, 16)), xv[4], t);
  t = fma(vec4<f32>(nib4(q1, 4u) + bit4(qh, 20u, 16)), xv[5], t);
  t = fma(vec4<f32>(nib4(q2, 4u) + bit4(qh, 24u, 16)), xv[6], t);
  t = fma(vec4<f32>(nib4(q3, 4u) + bit4(qh, 28u, 16)), xv[7], t);
  let sx = ((xv[0] + xv[1]) + (xv[2] + xv[3])) + ((xv[4] + xv[5]) + (xv[6] + xv[7]));
  let one = vec4<f32>(1.0);
  return dm.x * dot(t, one) + dm.y * dot(sx, one);
}
