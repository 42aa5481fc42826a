// Q6_K step on 8-bit x (qmatmul_q8.wgsl): half a block, n = s: 128 values 128 n + 32 r + l (x block r < 4 of the
// step, l < 32), loaded as wdot_q6_k.wgsl does (16-byte pieces through ld16, once per column for all rows). Low 4 bits
// in ql[64 n + 32 (r & 1) + l] (nibble r >> 1): qs words 8 (r & 1) + g of the half's 64 ql bytes for x group g; high
// 2 bits (qh[32 n + l] >> 2 r) & 3: qh word g; int8 scale scales[8 n + 2 r + l / 16]; x = d scale (q - 32).
// With q - 32 = lo + 16 (hi - 2), a 16-value half adds sc (sum lo qx + 16 sum (hi - 2) qx), both sums on the A words as
// the 4-bit types do: the nibble lanes as Q4_K's (16 products of at most 15 * 127 in the upper 16 bits: 30480 < 2^15),
// the 2-bit lanes made signed by subtracting 0x00020002 as one 32-bit number (the low lane's borrow makes it signed;
// 16 products of at most 2 * 127). Per x block sc0 S0 + sc1 S1 <= 2 * 128 * 16 * 32 * 127 < 2^24: exact in i32 and f32.
const DQK: u32 = QK;
const DBYTES: u32 = BLOCK_BYTES;
const DOT: u32 = 128u;
const XB: bool = false;
const M2: u32 = 0x00030003u;
const TWO2: u32 = 0x00020002u;
struct IW { d: f32, sa: u32, sb: u32, l0: vec4<u32>, l1: vec4<u32>, l2: vec4<u32>, l3: vec4<u32>, h0: vec4<u32>, h1: vec4<u32> }
fn idot_load(o: u32, h: vec4<u32>, s: u32) -> IW {
  let l0 = ld16(o + 64u * s);
  let l1 = ld16(o + 64u * s + 16u);
  let l2 = ld16(o + 64u * s + 32u);
  let l3 = ld16(o + 64u * s + 48u);
  let h0 = ld16(o + 128u + 32u * s);
  let h1 = ld16(o + 144u + 32u * s);
  // the 8 int8 scales of this half: scales[8 s + 0..3] in sa, [8 s + 4..7] in sb
  let sa = wd2(o + 192u + 8u * s);
  let sb = wd2(o + 196u + 8u * s);
  return IW(half_at(o + 208u), sa, sb, l0, l1, l2, l3, h0, h1);
}

/** sum of lo qx over 4 words of ql nibbles (already shifted to bits 0..3 of each byte), x groups A words a, b. */
fn q6_lo(l: vec4<u32>, a: vec4<u32>, b: vec4<u32>) -> u32 {
  return (lo_nib(l.x, a.x, a.y) + lo_nib(l.y, a.z, a.w)) + (lo_nib(l.z, b.x, b.y) + lo_nib(l.w, b.z, b.w));
}

/** The same for hi - 2 of 4 words of qh pieces (already shifted to bits 0..1 of each byte). */
fn q6_hi(h: vec4<u32>, a: vec4<u32>, b: vec4<u32>) -> u32 {
  let s0 = ((h.x & M2) - TWO2) * a.x + (((h.x >> 8u) & M2) - TWO2) * a.y;
  let s1 = ((h.y & M2) - TWO2) * a.z + (((h.y >> 8u) & M2) - TWO2) * a.w;
  let s2 = ((h.z & M2) - TWO2) * b.x + (((h.z >> 8u) & M2) - TWO2) * b.y;
  let s3 = ((h.w & M2) - TWO2) * b.z + (((h.w >> 8u) & M2) - TWO2) * b.w;
  return (s0 + s1) + (s2 + s3);
}

/** The int8 at byte j of v. */
fn sb8(v: u32, j: u32) -> i32 {
  return (bitcast<i32>(v) << (24u - 8u * j)) >> 24u;
}

/** sc0 S0 + sc1 S1 of x block t: ql words la (groups 0..3), lb (4..7), qh words ha, hb, scales in bytes j, j + 1 of sc. */
fn q6_blk(la: vec4<u32>, lb: vec4<u32>, ha: vec4<u32>, hb: vec4<u32>, t: u32, sc: u32, j: u32) -> i32 {
  let x = 8u * t;
  let s0 = hi16(q6_lo(la, xw[x], xw[x + 1u])) + 16 * hi16(q6_hi(ha, xw[x], xw[x + 1u]));
  let s1 = hi16(q6_lo(lb, xw[x + 2u], xw[x + 3u])) + 16 * hi16(q6_hi(hb, xw[x + 2u], xw[x + 3u]));
  return sb8(sc, j) * s0 + sb8(sc, j + 1u) * s1;
}

fn idot_dot(w: IW) -> f32 {
  let m4 = vec4<u32>(0x0f0f0f0fu);
  let i0 = q6_blk(w.l0 & m4, w.l1 & m4, w.h0, w.h1, 0u, w.sa, 0u);
  let i1 = q6_blk(w.l2 & m4, w.l3 & m4, w.h0 >> vec4<u32>(2u), w.h1 >> vec4<u32>(2u), 1u, w.sa, 2u);
  let i2 = q6_blk(w.l0 >> vec4<u32>(4u), w.l1 >> vec4<u32>(4u), w.h0 >> vec4<u32>(4u), w.h1 >> vec4<u32>(4u), 2u, w.sb, 0u);
  let i3 = q6_blk(w.l2 >> vec4<u32>(4u), w.l3 >> vec4<u32>(4u), w.h0 >> vec4<u32>(6u), w.h1 >> vec4<u32>(6u), 3u, w.sb, 2u);
  return w.d * ((xm[0].x * f32(i0) + xm[1].x * f32(i1)) + (xm[2].x * f32(i2) + xm[3].x * f32(i3)));
}
