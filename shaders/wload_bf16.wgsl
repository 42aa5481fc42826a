// BF16 weights: sub-blocks of 4 values (8 bytes); a bf16 is the top half of an f32, so widening is a shift.
const QK: u32 = 4u;
const BLOCK_BYTES: u32 = 8u;
const SUB: u32 = 4u;
fn blk_head(o: u32) -> vec4<u32> { return vec4<u32>(0u); }
fn sub_load(o: u32, h: vec4<u32>, s: u32) -> Sub {
  let v = w4[o >> 4u];
  let p = select(v.xy, v.zw, (o & 8u) != 0u);
  return plain(bitcast<vec4<f32>>(vec4<u32>(p.x << 16u, p.x & 0xffff0000u, p.y << 16u, p.y & 0xffff0000u)));
}
