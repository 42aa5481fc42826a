// Q5_K step on 8-bit x (qmatmul_q8.wgsl): one 64-value chunk c = s of a block, as idot_q4_k.wgsl (the same head, scales
// and mins, qs nibbles: low of sub-block 2c, high of 2c + 1) plus the 5th bits: bit 2c of qh[l] for value l of
// sub-block 2c, bit 2c + 1 for sub-block 2c + 1 (qh @16, two 16-byte loads: qh word g holds l = 4g..4g+3, x group g).
// x = d sc (q + 16 h) - dmin m per sub-block: d sc dx (sum q qx + 16 sum h qx) - dmin m sx, the bit sums on the A words
// as the nibble sums (16 products of at most 127 each).
const DQK: u32 = QK;
const DBYTES: u32 = BLOCK_BYTES;
const DOT: u32 = 64u;
const XB: bool = false;
struct IW { dm: vec2<f32>, sc: u32, mn: u32, p: vec4<u32>, q: vec4<u32>, e0: vec4<u32>, e1: vec4<u32> }
fn idot_load(o: u32, h: vec4<u32>, s: u32) -> IW {
  let dm = unpack2x16float(h.x);
  let sh = 16u * (s & 1u); // bytes 2c, 2c + 1 of a word: bits sh .. sh + 15 (get_scale_min_k4, as idot_q4_k.wgsl)
  let lowHalf = s < 2u;
  let sc6 = (h.y >> sh) & 0x3f3fu;
  let m6 = (h.z >> sh) & 0x3f3fu;
  let nib = h.w >> sh;
  let scHi = (nib & 0x0f0fu) | (((h.y >> sh) >> 2u) & 0x3030u);
  let mHi = ((nib >> 4u) & 0x0f0fu) | (((h.z >> sh) >> 2u) & 0x3030u);
  let sc = select(scHi, sc6, lowHalf); // scale of sub-block 2c in bits 0..5, of 2c + 1 in bits 8..13
  let mn = select(mHi, m6, lowHalf);
  let p = w4[(o + 48u + 32u * s) >> 4u];
  let q = w4[(o + 64u + 32u * s) >> 4u];
  // the 5th bits of sub-blocks 2c (bit 0 of each byte) and 2c + 1 (bit 1)
  let e0 = w4[(o + 16u) >> 4u] >> vec4<u32>(2u * s);
  let e1 = w4[(o + 32u) >> 4u] >> vec4<u32>(2u * s);
  return IW(dm, sc, mn, p, q, e0, e1);
}

/** sum h qx over 16 values: bit 0 of each byte of the qh words e (groups 0..3 of an x block), A words a, b. */
fn q5k_h(e: vec4<u32>, a: vec4<u32>, b: vec4<u32>) -> u32 {
  let s0 = (e.x & H2) * a.x + ((e.x >> 8u) & H2) * a.y + (e.y & H2) * a.z + ((e.y >> 8u) & H2) * a.w;
  let s1 = (e.z & H2) * b.x + ((e.z >> 8u) & H2) * b.y + (e.w & H2) * b.z + ((e.w >> 8u) & H2) * b.w;
  return s0 + s1;
}

fn idot_dot(w: IW) -> f32 {
  let p = w.p;
  let q = w.q;
  let sc = w.sc;
  let mn = w.mn;
  let dm = w.dm;
  let l0 = lo_nib(p.x, xw[0].x, xw[0].y) + lo_nib(p.y, xw[0].z, xw[0].w) + lo_nib(p.z, xw[1].x, xw[1].y) + lo_nib(p.w, xw[1].z, xw[1].w);
  let l1 = lo_nib(q.x, xw[2].x, xw[2].y) + lo_nib(q.y, xw[2].z, xw[2].w) + lo_nib(q.z, xw[3].x, xw[3].y) + lo_nib(q.w, xw[3].z, xw[3].w);
  let h0 = hi_nib(p.x, xw[8].x, xw[8].y) + hi_nib(p.y, xw[8].z, xw[8].w) + hi_nib(p.z, xw[9].x, xw[9].y) + hi_nib(p.w, xw[9].z, xw[9].w);
  let h1 = hi_nib(q.x, xw[10].x, xw[10].y) + hi_nib(q.y, xw[10].z, xw[10].w) + hi_nib(q.z, xw[11].x, xw[11].y) + hi_nib(q.w, xw[11].z, xw[11].w);
  let bLo = hi16(q5k_h(w.e0, xw[0], xw[1])) + hi16(q5k_h(w.e1, xw[2], xw[3]));
  let bHi = hi16(q5k_h(w.e0 >> vec4<u32>(1u), xw[8], xw[9])) + hi16(q5k_h(w.e1 >> vec4<u32>(1u), xw[10], xw[11]));
  let iLo = (hi16(l0) + hi16(l1) + 16 * bLo) * i32(sc & 0xffu);
  let iHi = (hi16(h0) + hi16(h1) + 16 * bHi) * i32(sc >> 8u);
  return dm.x * (xm[0].x * f32(iLo) + xm[1].x * f32(iHi)) - dm.y * (f32(mn & 0xffu) * xm[0].y + f32(mn >> 8u) * xm[1].y);
}
