// Q4_1 decode step: one 32-value block (20 bytes at a 4-byte aligned offset o), read as the two 16-byte loads that
// cover [o rounded down to 16, + 32) and realigned in registers; d, m f16 @0, qs @4 as Q4_0's; x = d q + m.
const DQK: u32 = QK;
const DBYTES: u32 = BLOCK_BYTES;
const DOT: u32 = 32u;
fn dot_step(o: u32, h: vec4<u32>, s: u32) -> f32 {
  let i = o >> 4u;
  let a = w4[i];
  let b = w4[i + 1u];
  let k = (o >> 2u) & 3u;
  let dm = unpack2x16float(pick4(a.x, a.y, a.z, a.w, k));
  let q0 = pick4(a.y, a.z, a.w, b.x, k);
  let q1 = pick4(a.z, a.w, b.x, b.y, k);
  let q2 = pick4(a.w, b.x, b.y, b.z, k);
  let q3 = pick4(b.x, b.y, b.z, b.w, k);
  var t = vec4<f32>(nib4(q0, 0u)) * xv[0];
  t = fma(vec4<f32>(nib4(q1, 0u)), xv[1], t);
  t = fma(vec4<f32>(nib4(q2, 0u)), xv[2], t);
  t = fma(vec4<f32>(nib4(q3, 0u)), xv[3], t);
  t = fma(vec4<f32>(nib4(q0, 4u)), xv[4], t);
  t = fma(vec4<f32>(nib4(q1, 4u)), xv[5], t);
  t = fma(vec4<f32>(nib4(q2, 4u)), xv[6], t);
  t = fma(vec4<f32>(nib4(q3, 4u)), xv[7], t);
  let sx = ((xv[0] + xv[1]) + (xv[2] + xv[3])) + ((xv[4] + xv[5]) + (xv[6] + xv[7]));
  let one = vec4<f32>(1.0);
  return dm.x * dot(t, one) + dm.y * dot(sx, one);
}
