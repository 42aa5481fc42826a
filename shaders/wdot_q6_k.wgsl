// Q6_K decode step: half a block, n = s (128 values 128 n + 32 r + l, r < 4, l < 32): low 4 bits in
// ql[64 n + 32 (r & 1) + l] (nibble r >> 1), high 2 bits (qh[32 n + l] >> 2 r) & 3, int8 scale scales[8 n + 2 r + l / 16];
// x = d scale (q - 32). Blocks are 2-byte aligned: 16-byte pieces through ld16, realigned in registers.
const DQK: u32 = QK;
const DBYTES: u32 = BLOCK_BYTES;
const DOT: u32 = 128u;

/** Four values (low nibbles of ql at shift sl, 2-bit pieces of qh at shift sh) minus 32, as f32. */
fn q6(l: u32, sl: u32, hb: u32, sh: u32) -> vec4<f32> {
  let hi = (vec4<u32>(hb) >> vec4<u32>(sh, sh + 8u, sh + 16u, sh + 24u)) & vec4<u32>(3u);
  return vec4<f32>(nib4(l, sl) + vec4<i32>(hi << vec4<u32>(4u)) - 32);
}

fn dot_step(o: u32, h: vec4<u32>, s: u32) -> f32 {
  let l0 = ld16(o + 64u * s);
  let l1 = ld16(o + 64u * s + 16u);
  let l2 = ld16(o + 64u * s + 32u);
  let l3 = ld16(o + 64u * s + 48u);
  let h0 = ld16(o + 128u + 32u * s);
  let h1 = ld16(o + 144u + 32u * s);
  let sc = ld16(o + 192u);
  let d = half_at(o + 208u);
  // the 8 scales of this half: scales[8 s + j], j < 8
  let sA = vec4<f32>(sbyte4(select(sc.x, sc.z, s == 1u)));
  let sB = vec4<f32>(sbyte4(select(sc.y, sc.w, s == 1u)));
  var t00 = q6(l0.x, 0u, h0.x, 0u) * xv[0];
  t00 = fma(q6(l0.y, 0u, h0.y, 0u), xv[1], t00);
  t00 = fma(q6(l0.z, 0u, h0.z, 0u), xv[2], t00);
  t00 = fma(q6(l0.w, 0u, h0.w, 0u), xv[3], t00);
  var t01 = q6(l1.x, 0u, h1.x, 0u) * xv[4];
  t01 = fma(q6(l1.y, 0u, h1.y, 0u), xv[5], t01);
  t01 = fma(q6(l1.z, 0u, h1.z, 0u), xv[6], t01);
  t01 = fma(q6(l1.w, 0u, h1.w, 0u), xv[7], t01);
  var t10 = q6(l2.x, 0u, h0.x, 2u) * xv[8];
  t10 = fma(q6(l2.y, 0u, h0.y, 2u), xv[9], t10);
  t10 = fma(q6(l2.z, 0u, h0.z, 2u), xv[10], t10);
  t10 = fma(q6(l2.w, 0u, h0.w, 2u), xv[11], t10);
  var t11 = q6(l3.x, 0u, h1.x, 2u) * xv[12];
  t11 = fma(q6(l3.y, 0u, h1.y, 2u), xv[13], t11);
  t11 = fma(q6(l3.z, 0u, h1.z, 2u), xv[14], t11);
  t11 = fma(q6(l3.w, 0u, h1.w, 2u), xv[15], t11);
  var t20 = q6(l0.x, 4u, h0.x, 4u) * xv[16];
  t20 = fma(q6(l0.y, 4u, h0.y, 4u), xv[17], t20);
  t20 = fma(q6(l0.z, 4u, h0.z, 4u), xv[18], t20);
  t20 = fma(q6(l0.w, 4u, h0.w, 4u), xv[19], t20);
  var t21 = q6(l1.x, 4u, h1.x, 4u) * xv[20];
  t21 = fma(q6(l1.y, 4u, h1.y, 4u), xv[21], t21);
  t21 = fma(q6(l1.z, 4u, h1.z, 4u), xv[22], t21);
  t21 = fma(q6(l1.w, 4u, h1.w, 4u), xv[23], t21);
  var t30 = q6(l2.x, 4u, h0.x, 6u) * xv[24];
  t30 = fma(q6(l2.y, 4u, h0.y, 6u), xv[25], t30);
  t30 = fma(q6(l2.z, 4u, h0.z, 6u), xv[26], t30);
  t30 = fma(q6(l2.w, 4u, h0.w, 6u), xv[27], t30);
  var t31 = q6(l3.x, 4u, h1.x, 6u) * xv[28];
  t31 = fma(q6(l3.y, 4u, h1.y, 6u), xv[29], t31);
  t31 = fma(q6(l3.z, 4u, h1.z, 6u), xv[30], t31);
  t31 = fma(q6(l3.w, 4u, h1.w, 6u), xv[31], t31);
  let one = vec4<f32>(1.0);
  return d * (sA.x * dot(t00, one) + sA.y * dot(t01, one) + sA.z * dot(t10, one) + sA.w * dot(t11, one)
    + sB.x * dot(t20, one) + sB.y * dot(t21, one) + sB.z * dot(t30, one) + sB.w * dot(t31, one));
}
