// BF16 decode step: 8 weights in one 16-byte load (K % 8 == 0); a bf16 is the top half of an f32.
const DQK: u32 = 8u;
const DBYTES: u32 = 16u;
const DOT: u32 = 8u;
fn dot_step(o: u32, h: vec4<u32>, s: u32) -> f32 {
  let q = w4[o >> 4u];
  let lo = bitcast<vec4<f32>>(vec4<u32>(q.x << 16u, q.x & 0xffff0000u, q.y << 16u, q.y & 0xffff0000u));
  let hi = bitcast<vec4<f32>>(vec4<u32>(q.z << 16u, q.z & 0xffff0000u, q.w << 16u, q.w & 0xffff0000u));
  return dot(fma(hi, xv[1], lo * xv[0]), vec4<f32>(1.0));
}
