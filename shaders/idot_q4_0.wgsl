// Q4_0 step on 8-bit x (qmatmul_q8.wgsl): one 32-value block (18 bytes at an even offset o), loaded as
// wdot_q4_0.wgsl does (idot_load, once per column for all rows); qs word i holds values 4i..4i+3 (low nibbles, x
// group i) and 16+4i.. (high, group 4+i). x = d (q - 8): idot_dot gives d (dx sum q qx - 8 sx).
const DQK: u32 = QK;
const DBYTES: u32 = BLOCK_BYTES;
const DOT: u32 = 32u;
const XB: bool = false;
struct IW { d: f32, q: vec4<u32> }
fn idot_load(o: u32, h: vec4<u32>, s: u32) -> IW {
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
  return IW(d, vec4<u32>(q0, q1, q2, q3));
}
fn idot_dot(w: IW) -> f32 {
  let q0 = w.q.x;
  let q1 = w.q.y;
  let q2 = w.q.z;
  let q3 = w.q.w;
  let s0 = lo_nib(q0, xw[0].x, xw[0].y) + lo_nib(q1, xw[0].z, xw[0].w) + hi_nib(q0, xw[2].x, xw[2].y) + hi_nib(q1, xw[2].z, xw[2].w);
  let s1 = lo_nib(q2, xw[1].x, xw[1].y) + lo_nib(q3, xw[1].z, xw[1].w) + hi_nib(q2, xw[3].x, xw[3].y) + hi_nib(q3, xw[3].z, xw[3].w);
  return w.d * (xm[0].x * f32(hi16(s0) + hi16(s1)) - 8.0 * xm[0].y);
}
