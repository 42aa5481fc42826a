// Q5_1: 32 values in 24 bytes: d f16 @0, m f16 @2, qh u32 @4, qs u8[16] @8; x = d q + m. 4-byte aligned.
const QK: u32 = 32u;
const BLOCK_BYTES: u32 = 24u;
const SUB: u32 = 32u;
fn blk_head(o: u32) -> vec4<u32> { return vec4<u32>(0u); }
fn sub_load(o: u32, h: vec4<u32>, s: u32) -> Sub {
  let dm = unpack2x16float(wd(o));
  let qh = wd(o + 4u);
  var r = Sub();
  for (var k = 0u; k < 4u; k++) {
    let q = wd(o + 8u + 4u * k);
    r.q[k] = u8x4((q & 0x0f0f0f0fu) | (bits4(qh >> (4u * k)) << 4u));
    r.q[k + 4u] = u8x4(((q >> 4u) & 0x0f0f0f0fu) | (bits4(qh >> (16u + 4u * k)) << 4u));
  }
  r.lo = dm.x;
  r.hi = dm.x;
  r.offLo = dm.y;
  r.offHi = dm.y;
  return r;
}
