// Q5_0: 32 values in 22 bytes: d f16 @0, qh u32 @2 (bit j: 5th bit of value j), qs u8[16] @6 (nibbles as Q4_0);
// x = d (q - 16). 2-byte aligned: wd2.
const QK: u32 = 32u;
const BLOCK_BYTES: u32 = 22u;
struct Blk { d: f32, qh: u32 }
fn blk_head(o: u32) -> Blk { return Blk(half_at(o), wd2(o + 2u)); }
fn blk_unit(o: u32, h: Blk, u: u32) -> vec4<f32> {
  let lo = (wd2(o + 6u + 4u * (u & 3u)) >> (4u * (u >> 2u))) & 0x0f0f0f0fu;
  let q = lo | (bits4(h.qh >> (4u * u)) << 4u);
  return h.d * (u8x4(q) - 16.0);
}
