// Q4_K: 256 values in 144 bytes: d f16 @0, dmin f16 @2, scales u8[12] @4 (6-bit scale and min of 8 sub-blocks of
// 32), qs u8[128] @16 (chunk c of 64 values: qs[32c + l] low nibble is value 64c + l, high nibble 64c + 32 + l);
// x = d sc_s q - dmin m_s with s = value / 32. Blocks and rows are 16-byte aligned: the head is one 16-byte load
// and a 32-value sub-block (the low or high nibbles of 32 bytes) two more.
const QK: u32 = 256u;
const BLOCK_BYTES: u32 = 144u;
const SUB: u32 = 32u;
fn blk_head(o: u32) -> vec4<u32> { return w4[o >> 4u]; }

/** Scale (x) and min (y) of 32-value sub-block j from the 12 scale bytes a|b|c (get_scale_min_k4 in ggml-quants.c). */
fn scale_min_k4(a: vec4<u32>, b: vec4<u32>, c: vec4<u32>, j: u32) -> vec2<f32> {
  if (j < 4u) { return vec2<f32>(f32(a[j] & 63u), f32(b[j] & 63u)); }
  let i = j - 4u;
  return vec2<f32>(f32((c[i] & 0xfu) | ((a[i] >> 6u) << 4u)), f32((c[i] >> 4u) | ((b[i] >> 6u) << 4u)));
}

fn sub_load(o: u32, h: vec4<u32>, s: u32) -> Sub {
  let dm = unpack2x16float(h.x);
  let sm = scale_min_k4(unpack4xU8(h.y), unpack4xU8(h.z), unpack4xU8(h.w), s);
  // sub-block s: the low (s even) or high (s odd) nibbles of the 32 bytes of chunk s / 2
  let q0 = w4[(o + 16u + 32u * (s >> 1u)) >> 4u];
  let q1 = w4[(o + 32u + 32u * (s >> 1u)) >> 4u];
  let sh = 4u * (s & 1u);
  var r = Sub();
  r.q[0] = u8x4((q0.x >> sh) & 0x0f0f0f0fu);
  r.q[1] = u8x4((q0.y >> sh) & 0x0f0f0f0fu);
  r.q[2] = u8x4((q0.z >> sh) & 0x0f0f0f0fu);
  r.q[3] = u8x4((q0.w >> sh) & 0x0f0f0f0fu);
  r.q[4] = u8x4((q1.x >> sh) & 0x0f0f0f0fu);
  r.q[5] = u8x4((q1.y >> sh) & 0x0f0f0f0fu);
  r.q[6] = u8x4((q1.z >> sh) & 0x0f0f0f0fu);
  r.q[7] = u8x4((q1.w >> sh) & 0x0f0f0f0fu);
  r.lo = dm.x * sm.x;
  r.hi = r.lo;
  r.offLo = -dm.y * sm.y;
  r.offHi = r.offLo;
  return r;
}
