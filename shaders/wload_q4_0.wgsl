// Q4_0: 32 values in 18 bytes: d f16 @0, qs u8[16] @2 (value j: low nibble of qs[j], value 16 + j: high nibble);
// x = d (q - 8). 2-byte aligned: ld4.
const QK: u32 = 32u;
const BLOCK_BYTES: u32 = 18u;
const SUB: u32 = 32u;
fn blk_head(o: u32) -> vec4<u32> { return vec4<u32>(0u); }
fn sub_load(o: u32, h: vec4<u32>, s: u32) -> Sub {
  let q = ld4(o + 2u);
  var r = Sub();
  for (var k = 0u; k < 4u; k++) {
    r.q[k] = u8x4(q[k] & 0x0f0f0f0fu) - 8.0;
    r.q[k + 4u] = u8x4((q[k] >> 4u) & 0x0f0f0f0fu) - 8.0;
  }
  r.lo = half_at(o);
  r.hi = r.lo;
  return r;
}
