// Q8_0 decode step: one 32-value block (34 bytes at an even offset: 9 word loads); x = d q.
const DQK: u32 = QK;
const DBYTES: u32 = BLOCK_BYTES;
const DOT: u32 = 32u;
fn dot_step(o: u32, h: vec4<u32>, s: u32) -> f32 {
  let i = o >> 2u;
  let odd = (o & 2u) != 0u;
  let w0 = w1[i];
  let d = unpack2x16float(select(w0, w0 >> 16u, odd)).x;
  var prev = w0;
  var t = vec4<f32>(0.0);
  for (var k = 0u; k < 8u; k++) {
    let next = w1[i + 1u + k];
    t = fma(vec4<f32>(sbyte4(at2(prev, next, odd))), xv[k], t);
    prev = next;
  }
  return d * ((t.x + t.y) + (t.z + t.w));
}
