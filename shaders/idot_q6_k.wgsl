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
/** Four words from five consecutive ones, realigned by 2 bytes when odd (as ld16). */
fn al4(a: u32, b: u32, c: u32, d: u32, e: u32, odd: bool) -> vec4<u32> {
  let v = vec4<u32>(a, b, c, d);
  return select(v, (v >> vec4<u32>(16u)) | (vec4<u32>(b, c, d, e) << vec4<u32>(16u)), odd);
}

/** The 32 bytes at the even offset q as 8 words, from the three 16-byte loads that cover them. */
fn ld32(q: u32) -> array<vec4<u32>, 2> {
  let i = q >> 4u;
  let k = (q >> 2u) & 3u;
  let odd = (q & 2u) != 0u;
  let a = w4[i];
  let b = w4[i + 1u];
  let c = w4[i + 2u];
  let u0 = pick4(a.x, a.y, a.z, a.w, k);
  let u1 = pick4(a.y, a.z, a.w, b.x, k);
  let u2 = pick4(a.z, a.w, b.x, b.y, k);
  let u3 = pick4(a.w, b.x, b.y, b.z, k);
  let u4 = pick4(b.x, b.y, b.z, b.w, k);
  let u5 = pick4(b.y, b.z, b.w, c.x, k);
  let u6 = pick4(b.z, b.w, c.x, c.y, k);
  let u7 = pick4(b.w, c.x, c.y, c.z, k);
  let u8 = pick4(c.x, c.y, c.z, c.w, k);
  return array<vec4<u32>, 2>(al4(u0, u1, u2, u3, u4, odd), al4(u4, u5, u6, u7, u8, odd));
}

fn idot_load(o: u32, h: vec4<u32>, s: u32) -> IW {
  // ql: 64 bytes from five 16-byte loads (four ld16 would make eight), qh: 32 bytes from three; llvmpipe pays per load.
  let q = o + 64u * s;
  let i = q >> 4u;
  let k = (q >> 2u) & 3u;
  let odd = (q & 2u) != 0u;
  let a = w4[i];
  let b = w4[i + 1u];
  let c = w4[i + 2u];
  let d = w4[i + 3u];
  let e = w4[i + 4u];
  let u0 = pick4(a.x, a.y, a.z, a.w, k);
  let u1 = pick4(a.y, a.z, a.w, b.x, k);
  let u2 = pick4(a.z, a.w, b.x, b.y, k);
  let u3 = pick4(a.w, b.x, b.y, b.z, k);
  let u4 = pick4(b.x, b.y, b.z, b.w, k);
  let u5 = pick4(b.y, b.z, b.w, c.x, k);
  let u6 = pick4(b.z, b.w, c.x, c.y, k);
  let u7 = pick4(b.w, c.x, c.y, c.z, k);
  let u8 = pick4(c.x, c.y, c.z, c.w, k);
  let u9 = pick4(c.y, c.z, c.w, d.x, k);
  let u10 = pick4(c.z, c.w, d.x, d.y, k);
  let u11 = pick4(c.w, d.x, d.y, d.z, k);
  let u12 = pick4(d.x, d.y, d.z, d.w, k);
  let u13 = pick4(d.y, d.z, d.w, e.x, k);
  let u14 = pick4(d.z, d.w, e.x, e.y, k);
  let u15 = pick4(d.w, e.x, e.y, e.z, k);
  let u16 = pick4(e.x, e.y, e.z, e.w, k);
  let hq = ld32(o + 128u + 32u * s);
  // the 8 int8 scales of this half (scales[8 s + 0..3] in sa, [8 s + 4..7] in sb) and d: bytes 192 .. 209, two loads
  let so = o + 192u;
  let j = so >> 4u;
  let f = w4[j];
  let g = w4[j + 1u];
  let m = (so >> 2u) & 3u;
  let sOdd = (so & 2u) != 0u;
  let v0 = pick4(f.x, f.y, f.z, f.w, m); // word m + t of f|g: the word holding byte 192 + 4 t (its lower half when odd)
  let v1 = pick4(f.y, f.z, f.w, g.x, m);
  let v2 = pick4(f.z, f.w, g.x, g.y, m);
  let v3 = pick4(f.w, g.x, g.y, g.z, m);
  let v4 = pick4(g.x, g.y, g.z, g.w, m);
  let sc = al4(v0, v1, v2, v3, v4, sOdd); // scales 0..15
  let dw = select(v4, v4 >> 16u, sOdd); // d (bytes 208, 209) in the low half
  let sa = select(sc.x, sc.z, s == 1u);
  let sb = select(sc.y, sc.w, s == 1u);
  return IW(unpack2x16float(dw).x, sa, sb, al4(u0, u1, u2, u3, u4, odd), al4(u4, u5, u6, u7, u8, odd),
    al4(u8, u9, u10, u11, u12, odd), al4(u12, u13, u14, u15, u16, odd), hq[0], hq[1]);
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
