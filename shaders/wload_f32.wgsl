// F32 weights: sub-blocks (and blocks) of 4 values, one 16-byte load (rows of K values, K % 4 == 0).
const QK: u32 = 4u;
const BLOCK_BYTES: u32 = 16u;
const SUB: u32 = 4u;
fn blk_head(o: u32) -> vec4<u32> { return vec4<u32>(0u); }
fn sub_load(o: u32, h: vec4<u32>, s: u32) -> Sub {
  return plain(bitcast<vec4<f32>>(w4[o >> 4u]));
}
