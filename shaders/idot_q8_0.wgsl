// Q8_0 step on 8-bit x (qmatmul_q8.wgsl): one 32-value block (34 bytes at an even offset o), loaded as
// wdot_q8_0.wgsl does (three 16-byte loads realigned in registers, once per column for all rows); qs word i holds the
// signed bytes of values 4i..4i+3 (x group i). x = d q: d dx sum q qx.
// Each qs word becomes two words of signed 16-bit lanes, (q[4i], q[4i+2]) and (q[4i+1], q[4i+3]), the lanes quantize_x8's
// A words pair: ((u & 0x00ff00ff) ^ 0x00800080) holds q + 128 in each lane, and subtracting 0x00800080 as one 32-bit
// number leaves the lane pair q_lo + 65536 q_hi (the low lane's borrow is what makes it signed). A product with an A
// word then holds two 8-bit products in its upper 16 bits: at most 2 * 128 * 127 = 32512 < 2^15, and one in the lower
// (16256), so hi16 of each product is exact, but not of a sum of two (the 4-bit types sum 8 products first).
const DQK: u32 = QK;
const DBYTES: u32 = BLOCK_BYTES;
const DOT: u32 = 32u;
const XB: bool = false;
struct IW { d: f32, p: vec4<u32>, q: vec4<u32> }
fn idot_load(o: u32, h: vec4<u32>, s: u32) -> IW {
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
  let p = vec4<u32>(at2(u0, u1, odd), at2(u1, u2, odd), at2(u2, u3, odd), at2(u3, u4, odd));
  let q = vec4<u32>(at2(u4, u5, odd), at2(u5, u6, odd), at2(u6, u7, odd), at2(u7, u8, odd));
  return IW(d, p, q);
}

/** sum of q qx over the 4 values of the qs word u, against their A words a (values 0, 2) and b (values 1, 3). */
fn q8_word(u: u32, a: u32, b: u32) -> i32 {
  let e = ((u & 0x00ff00ffu) ^ 0x00800080u) - 0x00800080u;
  let f = (((u >> 8u) & 0x00ff00ffu) ^ 0x00800080u) - 0x00800080u;
  return hi16(e * a) + hi16(f * b);
}

fn idot_dot(w: IW) -> f32 {
  let p = w.p;
  let q = w.q;
  let s0 = (q8_word(p.x, xw[0].x, xw[0].y) + q8_word(p.y, xw[0].z, xw[0].w)) + (q8_word(p.z, xw[1].x, xw[1].y) + q8_word(p.w, xw[1].z, xw[1].w));
  let s1 = (q8_word(q.x, xw[2].x, xw[2].y) + q8_word(q.y, xw[2].z, xw[2].w)) + (q8_word(q.z, xw[3].x, xw[3].y) + q8_word(q.w, xw[3].z, xw[3].w));
  return w.d * (xm[0].x * f32(s0 + s1));
}
