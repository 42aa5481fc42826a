// Q5_1 step on 8-bit x (qmatmul_q8.wgsl): one 32-value block (24 bytes at an 8-byte aligned offset o),
// loaded as wdot_q5_1.wgsl does; nibbles as Q4_0's, 5th bits as Q5_0's. x = d q + m: d dx sum q qx + m sx.
const DQK: u32 = QK;
const DBYTES: u32 = BLOCK_BYTES;
const DOT: u32 = 32u;
const XB: bool = true;
struct IW { dm: vec2<f32>, qh: u32, q: vec4<u32> }
fn idot_load(o: u32, h: vec4<u32>, s: u32) -> IW {
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
  return IW(dm, qh, vec4<u32>(q0, q1, q2, q3));
}
fn idot_dot(w: IW) -> f32 {
  let dm = w.dm;
  let qh = w.qh;
  let q0 = w.q.x;
  let q1 = w.q.y;
  let q2 = w.q.z;
  let q3 = w.q.w;
  let s0 = lo_nib(q0, xw[0].x, xw[0].y) + lo_nib(q1, xw[0].z, xw[0].w) + hi_nib(q0, xw[2].x, xw[2].y) + hi_nib(q1, xw[2].z, xw[2].w);
  let s1 = lo_nib(q2, xw[1].x, xw[1].y) + lo_nib(q3, xw[1].z, xw[1].w) + hi_nib(q2, xw[3].x, xw[3].y) + hi_nib(q3, xw[3].z, xw[3].w);
  return dm.x * xm[0].x * f32(hi16(s0) + hi16(s1) + 16 * h_dot(qh)) + dm.y * xm[0].y;
}
