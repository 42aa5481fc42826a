// Q4_K: 256 values in 144 bytes: d f16 @0, dmin f16 @2, scales u8[12] @4 (6-bit scale and min of 8 sub-blocks of
// 32), qs u8[128] @16 (chunk c of 64 values: qs[32c + l] low nibble is value 64c + l, high nibble 64c + 32 + l);
// x = d sc_s q - dmin m_s with s = value / 32. The head unpacks the 8 scales and mins once per block (as
// get_scale_min_k4 in ggml-quants.c). 4-byte aligned.
const QK: u32 = 256u;
const BLOCK_BYTES: u32 = 144u;
struct Blk { sc: array<f32, 8>, mn: array<f32, 8> }
fn blk_head(o: u32) -> Blk {
  let dm = unpack2x16float(wd(o));
  let a = unpack4xU8(wd(o + 4u));  // scales[0..4]
  let b = unpack4xU8(wd(o + 8u));  // scales[4..8]
  let c = unpack4xU8(wd(o + 12u)); // scales[8..12]
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
  // values 4u..4u+3: chunk u / 16, high nibble when (u / 8) is odd, bytes 4 (u % 8) of the chunk's 32
  let q = (wd(o + 16u + 32u * (u >> 4u) + 4u * (u & 7u)) >> (4u * ((u >> 3u) & 1u))) & 0x0f0f0f0fu;
  let s = u >> 3u;
  return fma(vec4<f32>(h.sc[s]), u8x4(q), vec4<f32>(-h.mn[s]));
}
