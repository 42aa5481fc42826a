// Q8_0: 32 values in 34 bytes: d f16 @0, qs int8[32] @2; x = d q. Blocks are only 2-byte aligned: ld8.
const QK: u32 = 32u;
const BLOCK_BYTES: u32 = 34u;
const SUB: u32 = 32u;
fn blk_head(o: u32) -> vec4<u32> { return vec4<u32>(0u); }
fn sub_load(o: u32, h: vec4<u32>, s: u32) -> Sub {
  let q = ld8(o + 2u);
  var r = Sub();
  for (var k = 0u; k < 8u; k++) { r.q[k] = i8x4(q[k]); }
  r.lo = half_at(o);
  r.hi = r.lo;
  return r;
}
