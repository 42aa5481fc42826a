// Q8_0: 32 values in 34 bytes: d f16 @0, qs int8[32] @2; x = d q. Blocks are only 2-byte aligned: wd2.
const QK: u32 = 32u;
const BLOCK_BYTES: u32 = 34u;
alias Blk = f32;
fn blk_head(o: u32) -> Blk { return half_at(o); }
fn blk_unit(o: u32, d: Blk, u: u32) -> vec4<f32> {
  return d * i8x4(wd2(o + 2u + 4u * u));
}
