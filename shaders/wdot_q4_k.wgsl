// Q4_K decode step: one 64-value chunk c = s of a block (32 bytes of qs, two 16-byte loads; the head was loaded once
// per block): its low nibbles are sub-block 2c, the high ones 2c + 1; x = d sc q - dmin m per sub-block. Written
// out without loops or arrays (measured: an array indexed in a loop here cost 2x on llvmpipe).
const DQK: u32 = QK;
const DBYTES: u32 = BLOCK_BYTES;
const DOT: u32 = 64u;
fn dot_step(o: u32, h: vec4<u32>, s: u32) -> f32 {
  let dm = unpack2x16float(h.x);
  let a = unpack4xU8(h.y);
  let b = unpack4xU8(h.z);
  let c = unpack4xU8(h.w);
  let smLo = scale_min_k4(a, b, c, 2u * s);
  let smHi = scale_min_k4(a, b, c, 2u * s + 1u);
  let p = w4[(o + 16u + 32u * s) >> 4u];
  let q = w4[(o + 32u + 32u * s) >> 4u];
  var lo = vec4<f32>(nib4(p.x, 0u)) * xv[0];
  lo = fma(vec4<f32>(nib4(p.y, 0u)), xv[1], lo);
  lo = fma(vec4<f32>(nib4(p.z, 0u)), xv[2], lo);
  lo = fma(vec4<f32>(nib4(p.w, 0u)), xv[3], lo);
  lo = fma(vec4<f32>(nib4(q.x, 0u)), xv[4], lo);
  lo = fma(vec4<f32>(nib4(q.y, 0u)), xv[5], lo);
  lo = fma(vec4<f32>(nib4(q.z, 0u)), xv[6], lo);
  lo = fma(vec4<f32>(nib4(q.w, 0u)), xv[7], lo);
  var hi = vec4<f32>(nib4(p.x, 4u)) * xv[8];
  hi = fma(vec4<f32>(nib4(p.y, 4u)), xv[9], hi);
  hi = fma(vec4<f32>(nib4(p.z, 4u)), xv[10], hi);
  hi = fma(vec4<f32>(nib4(p.w, 4u)), xv[11], hi);
  hi = fma(vec4<f32>(nib4(q.x, 4u)), xv[12], hi);
  hi = fma(vec4<f32>(nib4(q.y, 4u)), xv[13], hi);
  hi = fma(vec4<f32>(nib4(q.z, 4u)), xv[14], hi);
  hi = fma(vec4<f32>(nib4(q.w, 4u)), xv[15], hi);
  let sLo = ((xv[0] + xv[1]) + (xv[2] + xv[3])) + ((xv[4] + xv[5]) + (xv[6] + xv[7]));
  let sHi = ((xv[8] + xv[9]) + (xv[10] + xv[11])) + ((xv[12] + xv[13]) + (xv[14] + xv[15]));
  let one = vec4<f32>(1.0);
  return dm.x * (smLo.x * dot(lo, one) + smHi.x * dot(hi, one)) - dm.y * (smLo.y * dot(sLo, one) + smHi.y * dot(sHi, one));
}
