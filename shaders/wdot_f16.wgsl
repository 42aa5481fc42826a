// F16 decode step: 8 weights in one 16-byte load (rows 16-byte aligned: K % 8 == 0), widened by unpack2x16float
// (core WGSL, no shader-f16 needed).
const DQK: u32 = 8u;
const DBYTES: u32 = 16u;
const DOT: u32 = 8u;
fn dot_step(o: u32, h: vec4<u32>, s: u32) -> f32 {
  let q = w4[o >> 4u];
  let t = vec4<f32>(unpack2x16float(q.x), unpack2x16float(q.y)) * xv[0];
  return dot(fma(vec4<f32>(unpack2x16float(q.z), unpack2x16float(q.w)), xv[1], t), vec4<f32>(1.0));
}
