// Q5_0 decode step on f32 x (qmatmul_decode.wgsl): one 32-value block of a row held in 8-row tiles
// (src/weights/tiles.ts, wload_q5_0.wgsl): five aligned words of 5-bit pairs and d, h = blk_head's tile offsets.
// x = d (q - 16); q5_group gives values 4 g .. 4 g + 3, the x of xv[g].
const DQK: u32 = QK;
const DBYTES: u32 = BLOCK_BYTES;
const DOT: u32 = 32u;
fn dot_step(o: u32, h: vec4<u32>, s: u32) -> f32 {
  let p = q5_pairs(h.x);
  var t = (q5_group(p[0], p[1]) - 16.0) * xv[0];
  t = fma(q5_group(p[2], p[3]) - 16.0, xv[1], t);
  t = fma(q5_group(p[4], p[5]) - 16.0, xv[2], t);
  t = fma(q5_group(p[6], p[7]) - 16.0, xv[3], t);
  t = fma(q5_group(p[8], p[9]) - 16.0, xv[4], t);
  t = fma(q5_group(p[10], p[11]) - 16.0, xv[5], t);
  t = fma(q5_group(p[12], p[13]) - 16.0, xv[6], t);
  t = fma(q5_group(p[14], p[15]) - 16.0, xv[7], t);
  return half_at(h.y) * ((t.x + t.y) + (t.z + t.w));
}
