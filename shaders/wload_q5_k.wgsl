// Q5_K: 256 values in 176 bytes: d @0, dmin @2, scales u8[12] @4 (as Q4_K), qh u8[32] @16 (bit s of qh[l] is the 5th
// bit of value 32 s + l), qs u8[128] @48 (nibbles as Q4_K); x = d sc_s (q + 16 h) - dmin m_s. 16-byte aligned;
// 32-value sub-blocks as Q4_K, plus the two 16-byte loads of qh.
const QK: u32 = 256u;
const BLOCK_BYTES: u32 = 176u;
const SUB: u32 = 32u;
fn blk_head(o: u32) -> vec4<u32> { return w4[o >> 4u]; }

fn scale_min_k4(a: vec4<u32>, b: vec4<u32>, c: vec4<u32>, j: u32) -> vec2<f32> {
  if (j < 4u) { return vec2<f32>(f32(a[j] & 63u), f32(b[j] & 63u)); }
  let i = j - 4u;
  return vec2<f32>(f32((c[i] & 0xfu) | ((a[i] >> 6u) << 4u)), f32((c[i] >> 4u) | ((b[i] >> 6u) << 4u)));
}

fn sub_load(o: u32, h: vec4<u32>, s: u32) -> Sub {
  let dm = unpack2x16float(h.x);
  let sm = scale_min_k4(unpack4xU8(h.y), unpack4xU8(h.z), unpack4xU8(h.w), s);
  let h0 = w4[(o + 16u) >> 4u];
  let h1 = w4[(o + 32u) >> 4u];
  let q0 = w4[(o + 48u + 32u * (s >> 1u)) >> 4u];
  let q1 = w4[(o + 64u + 32u * (s >> 1u)) >> 4u];
  let sh = 4u * (s & 1u);
  var r = Sub();
  r.q[0] = u8x4(((q0.x >> sh) & 0x0f0f0f0fu) | (((h0.x >> s) & 0x01010101u) << 4u));
  r.q[1] = u8x4(((q0.y >> sh) & 0x0f0f0f0fu) | (((h0.y >> s) & 0x01010101u) << 4u));
  r.q[2] = u8x4(((q0.z >> sh) & 0x0f0f0f0fu) | (((h0.z >> s) & 0x01010101u) << 4u));
  r.q[3] = u8x4(((q0.w >> sh) & 0x0f0f0f0fu) | (((h0.w >> s) & 0x01010101u) << 4u));
  r.q[4] = u8x4(((q1.x >> sh) & 0x0f0f0f0fu) | (((h1.x >> s) & 0x01010101u) << 4u));
  r.q[5] = u8x4(((q1.y >> sh) & 0x0f0f0f0fu) | (((h1.y >> s) & 0x01010101u) << 4u));
  r.q[6] = u8x4(((q1.z >> sh) & 0x0f0f0f0fu) | (((h1.z >> s) & 0x01010101u) << 4u));
  r.q[7] = u8x4(((q1.w >> sh) & 0x0f0f0f0fu) | (((h1.w >> s) & 0x01010101u) << 4u));
  r.lo = dm.x * sm.x;
  r.hi = r.lo;
  r.offLo = -dm.y * sm.y;
  r.offHi = r.offLo;
  return r;
}
