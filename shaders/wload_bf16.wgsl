// BF16 weights: blocks of 4 values, 8 bytes; a bf16 is the top half of an f32, so widening is a shift.
const QK: u32 = 4u;
const BLOCK_BYTES: u32 = 8u;
alias Blk = u32;
fn blk_head(o: u32) -> Blk { return 0u; }
fn blk_unit(o: u32, h: Blk, u: u32) -> vec4<f32> {
  let a = w[o >> 2u];
  let b = w[(o >> 2u) + 1u];
  return bitcast<vec4<f32>>(vec4<u32>(a << 16u, a & 0xffff0000u, b << 16u, b & 0xffff0000u));
}
