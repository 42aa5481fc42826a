// Q5_0: 32 values in 22 bytes: d f16 @0, qh u32 @2 (bit j: 5th bit of value j), qs u8[16] @6 (nibbles as Q4_0);
// x = d (q - 16). 2-byte aligned: wd2 and ld4.
const QK: u32 = 32u;
const BLOCK_BYTES: u32 = 22u;
const SUB: u32 = 32u;
fn blk_head(o: u32) -> vec4<u32> { return vec4<u32>(0u); }
fn sub_load(o: u32, h: vec4<u32>, s: u32) -> Sub {
  let qh = wd2(o + 2u);
  let q = ld4(o + 6u);
  var r = Sub();
  for (var k = 0u; k < 4u; k++) {
    r.q[k] = u8x4((q[k] & 0x0f0f0f0fu) | (bits4(qh >> (4u * k)) << 4u)) - 16.0;
    r.q[k + 4u] = u8x4(((q[k] >> 4u) & 0x0f0f0f0fu) | (bits4(qh >> (16u + 4u * k)) << 4u)) - 16.0;
  }
  r.lo = half_at(o);
  r.hi = r.lo;
  return r;
}
