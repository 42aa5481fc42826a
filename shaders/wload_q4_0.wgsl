// Q4_0: 32 values in 18 bytes: d f16 @0, qs u8[16] @2 (value j: low nibble of qs[j], value 16 + j: high nibble);
// x = d (q - 8). Units 0-3 are low nibbles, 4-7 high nibbles of the same bytes.
const QK: u32 = 32u;
const BLOCK_BYTES: u32 = 18u;
alias Blk = f32;
fn blk_head(o: u32) -> Blk { return half_at(o); }
fn blk_unit(o: u32, d: Blk, u: u32) -> vec4<f32> {
  let q = (wd2(o + 2u + 4u * (u & 3u)) >> (4u * (u >> 2u))) & 0x0f0f0f0fu;
  return d * (u8x4(q) - 8.0);
}
