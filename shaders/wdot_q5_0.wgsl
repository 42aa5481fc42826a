// Q5_0 decode step: one 32-value block (22 bytes at an even offset: 6 word loads, then halves realigned in registers).
// Byte j of qs holds value j (low nibble) and 16 + j (high); bit j of qh the 5th bit of value j; x = d (q - 16).
const DQK: u32 = QK;
const DBYTES: u32 = BLOCK_BYTES;
const DOT: u32 = 32u;
fn dot_step(o: u32, h: vec4<u32>, s: u32) -> f32 {
  let i = o >> 2u;
  let odd = (o & 2u) != 0u;
  let w0 = w1[i];
  let w1_ = w1[i + 1u];
  let qh = at2(w0, w1_, odd);
  let d = unpack2x16float(select(w0, w0 >> 16u, odd)).x;
  var prev = w1_;
  var t = vec4<f32>(0.0);
  for (var k = 0u; k < 4u; k++) {
    let next = w1[i + 2u + k];
    let q = at2(prev, next, odd);
    prev = next;
    t = fma(vec4<f32>(nib4(q, 0u) + bit4(qh, 4u * k, 16) - 16), xv[k], t);
    t = fma(vec4<f32>(nib4(q, 4u) + bit4(qh, 16u + 4u * k, 16) - 16), xv[4u + k], t);
  }
  return d * ((t.x + t.y) + (t.z + t.w));
}
