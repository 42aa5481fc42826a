// F32 decode step: 4 weights, one 16-byte load.
const DQK: u32 = 4u;
const DBYTES: u32 = 16u;
const DOT: u32 = 4u;
fn dot_step(o: u32, h: vec4<u32>, s: u32) -> f32 {
  return dot(bitcast<vec4<f32>>(w4[o >> 4u]), xv[0]);
}
