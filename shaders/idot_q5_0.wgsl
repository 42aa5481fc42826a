// Q5_0 decode step on 8-bit x (qmatmul_idecode.wgsl): one 32-value block (22 bytes at an even offset o), loaded as
// wdot_q5_0.wgsl does; the nibbles as Q4_0's, the 5th bits (qh) through the B words of x (h_dot).
// x = d (q - 16): d (dx (sum nib qx + 16 sum h qx) - 16 sx).
const DQK: u32 = QK;
const DBYTES: u32 = BLOCK_BYTES;
const DOT: u32 = 32u;
const XB: bool = true;
fn idot_step(o: u32, h: vec4<u32>, s: u32) -> f32 {
  let i = o >> 4u;
  let a = w4[i];
  let b = w4[i + 1u];
  let c = w4[i + 2u];
  let k = (o >> 2u) & 3u;
  let odd = (o & 2u) != 0u;
  let u0 = pick4(a.x, a.y, a.z, a.w, k);
  let u1 = pick4(a.y, a.z, a.w, b.x, k);
  let u2 = pick4(a.z, a.w, b.x, b.y, k);
  let u3 = pick4(a.w, b.x, b.y, b.z, k);
  let u4 = pick4(b.x, b.y, b.z, b.w, k);
  let u5 = pick4(b.y, b.z, b.w, c.x, k);
  let d = unpack2x16float(select(u0, u0 >> 16u, odd)).x;
  let qh = at2(u0, u1, odd);
  let q0 = at2(u1, u2, odd);
  let q1 = at2(u2, u3, odd);
  let q2 = at2(u3, u4, odd);
  let q3 = at2(u4, u5, odd);
  let s0 = lo_nib(q0, xw[0].x, xw[0].y) + lo_nib(q1, xw[0].z, xw[0].w) + hi_nib(q0, xw[2].x, xw[2].y) + hi_nib(q1, xw[2].z, xw[2].w);
  let s1 = lo_nib(q2, xw[1].x, xw[1].y) + lo_nib(q3, xw[1].z, xw[1].w) + hi_nib(q2, xw[3].x, xw[3].y) + hi_nib(q3, xw[3].z, xw[3].w);
  return d * (xm[0].x * f32(hi16(s0) + hi16(s1) + 16 * h_dot(qh)) - 16.0 * xm[0].y);
}
