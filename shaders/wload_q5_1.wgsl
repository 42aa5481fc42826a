// Q5_1: 32 values in 24 bytes: d f16 @0, m f16 @2, qh u32 @4, qs u8[16] @8; x = d q + m. 4-byte aligned.
const QK: u32 = 32u;
const BLOCK_BYTES: u32 = 24u;
struct Blk { dm: vec2<f32>, qh: u32 }
fn blk_head(o: u32) -> Blk { return Blk(unpack2x16float(wd(o)), wd(o + 4u)); }
fn blk_unit(o: u32, h: Blk, u: u32) -> vec4<f32> {
  let lo = (wd(o + 8u + 4u * (u & 3u)) >> (4u * (u >> 2u))) & 0x0f0f0f0fu;
  let q = lo | (bits4(h.qh >> (4u * u)) << 4u);
  return fma(vec4<f32>(h.dm.x), u8x4(q), vec4<f32>(h.dm.y));
}
