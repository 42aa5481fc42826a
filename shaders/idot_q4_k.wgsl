// Q4_K step on 8-bit x (qmatmul_q8.wgsl): one 64-value chunk c = s of a block (two 16-byte loads of qs;
// the head was loaded once per block). qs word i holds values 4i..4i+3 of sub-block 2c (low nibbles, x block 0 of
// the step, group i) and of sub-block 2c + 1 (high nibbles, x block 1). x = d sc q - dmin m per sub-block:
// d sc dx sum q qx - dmin m sx per sub-block, the x blocks being the sub-blocks.
// The 6-bit scales and mins of sub-blocks 2c and 2c + 1 are cut from the head's words with shifts by amounts that
// depend only on the step (the same in every lane): bytes 2c, 2c + 1 of h.y (scales) and h.z (mins) for c < 2, and for
// c >= 2 the nibbles of bytes 2c - 4, 2c - 3 of h.w with the top two bits of the same bytes of h.y and h.z
// (get_scale_min_k4 in ggml-quants.c), without unpacking bytes or indexing a vector by a variable.
const DQK: u32 = QK;
const DBYTES: u32 = BLOCK_BYTES;
const DOT: u32 = 64u;
const XB: bool = false;
struct IW { dm: vec2<f32>, sc: u32, mn: u32, p: vec4<u32>, q: vec4<u32> }
fn idot_load(o: u32, h: vec4<u32>, s: u32) -> IW {
  let dm = unpack2x16float(h.x);
  let sh = 16u * (s & 1u); // bytes 2c, 2c + 1 of a word: bits sh .. sh + 15
  let lowHalf = s < 2u;
  let sc6 = (h.y >> sh) & 0x3f3fu;
  let m6 = (h.z >> sh) & 0x3f3fu;
  let nib = h.w >> sh;
  let scHi = (nib & 0x0f0fu) | (((h.y >> sh) >> 2u) & 0x3030u);
  let mHi = ((nib >> 4u) & 0x0f0fu) | (((h.z >> sh) >> 2u) & 0x3030u);
  let sc = select(scHi, sc6, lowHalf); // scale of sub-block 2c in bits 0..5, of 2c + 1 in bits 8..13
  let mn = select(mHi, m6, lowHalf);
  let p = w4[(o + 16u + 32u * s) >> 4u];
  let q = w4[(o + 32u + 32u * s) >> 4u];
  return IW(dm, sc, mn, p, q);
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
  let iLo = (hi16(l0) + hi16(l1)) * i32(sc & 0xffu);
  let iHi = (hi16(h0) + hi16(h1)) * i32(sc >> 8u);
  return dm.x * (xm[0].x * f32(iLo) + xm[1].x * f32(iHi)) - dm.y * (f32(mn & 0xffu) * xm[0].y + f32(mn >> 8u) * xm[1].y);
}
