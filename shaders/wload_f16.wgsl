// F16 weights: sub-blocks of 4 values (8 bytes: half of one 16-byte load), widened by unpack2x16float (core WGSL).
const QK: u32 = 4u;
const BLOCK_BYTES: u32 = 8u;
const SUB: u32 = 4u;
fn blk_head(o: u32) -> vec4<u32> { return vec4<u32>(0u); }
fn sub_load(o: u32, h: vec4<u32>, s: u32) -> Sub {
  let v = w4[o >> 4u];
  let p = select(v.xy, v.zw, (o & 8u) != 0u);
  return plain(vec4<f32>(unpack2x16float(p.x), unpack2x16float(p.y)));
}
