// Q4_0 decode step: one 32-value block (18 bytes at an even offset: 5 word loads); x = d (q - 8).
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
  for (var k = 0u; k < 4u; k++) {
    let next = w1[i + 1u + k];
    let q = at2(prev, next, odd);
    prev = next;
    t = fma(vec4<f32>(nib4(q, 0u) - 8), xv[k], t);
    t = fma(vec4<f32>(nib4(q, 4u) - 8), xv[4u + k], t);
  }
  return d * ((t.x + t.y) + (t.z + t.w));
}
