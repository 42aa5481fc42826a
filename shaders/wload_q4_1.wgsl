// Q4_1: 32 values in 20 bytes: d f16 @0, m f16 @2, qs u8[16] @4 (nibbles as Q4_0); x = d q + m. 4-byte aligned.
const QK: u32 = 32u;
const BLOCK_BYTES: u32 = 20u;
alias Blk = vec2<f32>; // (d, m)
fn blk_head(o: u32) -> Blk { return unpack2x16float(wd(o)); }
fn blk_unit(o: u32, h: Blk, u: u32) -> vec4<f32> {
  let q = (wd(o + 4u + 4u * (u & 3u)) >> (4u * (u >> 2u))) & 0x0f0f0f0fu;
  return fma(vec4<f32>(h.x), u8x4(q), vec4<f32>(h.y));
}
