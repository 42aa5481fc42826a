// Q6_K: 256 values in 210 bytes: ql u8[128] @0, qh u8[64] @128, scales int8[16] @192, d f16 @208. Value
// v = 128 n + 32 r + l: low 4 bits in ql[64 n + 32 (r & 1) + l] (nibble r >> 1), high 2 bits (qh[32 n + l] >> 2 r) & 3;
// x = d scales[v / 16] (q - 32). Sub-block s = 4 n + r holds 32 values with two scales (its 16-value halves).
// Blocks are only 2-byte aligned: ld8.
const QK: u32 = 256u;
const BLOCK_BYTES: u32 = 210u;
const SUB: u32 = 32u;
fn blk_head(o: u32) -> vec4<u32> { return vec4<u32>(0u); }
fn sub_load(o: u32, h: vec4<u32>, s: u32) -> Sub {
  let n = s >> 2u;
  let rr = s & 3u;
  let ql = ld8(o + 64u * n + 32u * (rr & 1u));
  let qh = ld8(o + 128u + 32u * n);
  var r = Sub();
  for (var k = 0u; k < 8u; k++) {
    let lo = (ql[k] >> (4u * (rr >> 1u))) & 0x0f0f0f0fu;
    let hi = (qh[k] >> (2u * rr)) & 0x03030303u;
    r.q[k] = u8x4(lo | (hi << 4u)) - 32.0;
  }
  let d = half_at(o + 208u);
  let so = o + 192u + 2u * s; // the two int8 scales of this sub-block, at an even offset
  let sc = unpack4xI8(w1[so >> 2u] >> ((so & 2u) * 8u));
  r.lo = d * f32(sc.x);
  r.hi = d * f32(sc.y);
  return r;
}
