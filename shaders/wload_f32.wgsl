// F32 weights: blocks of 4 values, 16 bytes (rows of K values, K % 4 == 0).
const QK: u32 = 4u;
const BLOCK_BYTES: u32 = 16u;
alias Blk = u32;
fn blk_head(o: u32) -> Blk { return 0u; }
fn blk_unit(o: u32, h: Blk, u: u32) -> vec4<f32> {
  let i = o >> 2u;
  return bitcast<vec4<f32>>(vec4<u32>(w[i], w[i + 1u], w[i + 2u], w[i + 3u]));
}
