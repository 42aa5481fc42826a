// Q5_K: 256 values in 176 bytes: d @0, dmin @2, scales u8[12] @4 (as Q4_K), qh u8[32] @16 (bit s of qh[l] is the 5th
// bit of value 32 s + l), qs u8[128] @48 (nibbles as Q4_K); x = d sc_s (q + 16 h) - dmin m_s. 4-byte aligned.
const QK: u32 = 256u;
const BLOCK_BYTES: u32 = 176u;
struct Blk { sc: array<f32, 8>, mn: array<f32, 8> }
fn blk_head(o: u32) -> Blk {
  let dm = unpack2x16float(wd(o));
  let a = unpack4xU8(wd(o + 4u));
  let b = unpack4xU8(wd(o + 8u));
  let c = unpack4xU8(wd(o + 12u));
  var h: Blk;
  for (var j = 0u; j < 4u; j++) {
    h.sc[j] = dm.x * f32(a[j] & 63u);
    h.mn[j] = dm.y * f32(b[j] & 63u);
    h.sc[j + 4u] = dm.x * f32((c[j] & 0xfu) | ((a[j] >> 6u) << 4u));
    h.mn[j + 4u] = dm.y * f32((c[j] >> 4u) | ((b[j] >> 6u) << 4u));
  }
  return h;
}
fn blk_unit(o: u32, h: Blk, u: u32) -> vec4<f32> {
  let s = u >> 3u; // sub-block of 32
  let l = 4u * (u & 7u);
  let lo = (wd(o + 48u + 32u * (u >> 4u) + l) >> (4u * (s & 1u))) & 0x0f0f0f0fu;
  let hi = (wd(o + 16u + l) >> s) & 0x01010101u;
  return fma(vec4<f32>(h.sc[s]), u8x4(lo | (hi << 4u)), vec4<f32>(-h.mn[s]));
}
