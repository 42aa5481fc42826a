// Q6_K: 256 values in 210 bytes: ql u8[128] @0, qh u8[64] @128, scales int8[16] @192, d f16 @208. Value
// v = 128 n + 32 r + l: low 4 bits in ql[64 n + 32 (r & 1) + l] (nibble r >> 1), high 2 bits (qh[32 n + l] >> 2 r) & 3;
// x = d scales[v / 16] (q - 32). Blocks are only 2-byte aligned: wd2.
const QK: u32 = 256u;
const BLOCK_BYTES: u32 = 210u;
struct Blk { sc: array<f32, 16> }
fn blk_head(o: u32) -> Blk {
  let d = half_at(o + 208u);
  var h: Blk;
  for (var i = 0u; i < 4u; i++) {
    let s = i8x4(wd2(o + 192u + 4u * i));
    h.sc[4u * i] = d * s.x;
    h.sc[4u * i + 1u] = d * s.y;
    h.sc[4u * i + 2u] = d * s.z;
    h.sc[4u * i + 3u] = d * s.w;
  }
  return h;
}
fn blk_unit(o: u32, h: Blk, u: u32) -> vec4<f32> {
  let n = u >> 5u;
  let r = (u >> 3u) & 3u;
  let l = 4u * (u & 7u);
  let lo = (wd2(o + 64u * n + 32u * (r & 1u) + l) >> (4u * (r >> 1u))) & 0x0f0f0f0fu;
  let hi = (wd2(o + 128u + 32u * n + l) >> (2u * r)) & 0x03030303u;
  return h.sc[u >> 2u] * (u8x4(lo | (hi << 4u)) - 32.0);
}
