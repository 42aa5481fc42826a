// Q4_K decode step on 8-bit x (qmatmul_idecode.wgsl): one 64-value chunk c = s of a block (two 16-byte loads of qs;
// the head was loaded once per block). qs word i holds values 4i..4i+3 of sub-block 2c (low nibbles, x block 0 of
// the step, group i) and of sub-block 2c + 1 (high nibbles, x block 1). x = d sc q - dmin m per sub-block:
// d sc dx sum q qx - dmin m sx per sub-block, the x blocks being the sub-blocks.
const DQK: u32 = QK;
const DBYTES: u32 = BLOCK_BYTES;
const DOT: u32 = 64u;
const XB: bool = false;
fn idot_step(o: u32, h: vec4<u32>, s: u32) -> f32 {
  let dm = unpack2x16float(h.x);
  let a = unpack4xU8(h.y);
  let b = unpack4xU8(h.z);
  let c = unpack4xU8(h.w);
  let smLo = scale_min_k4(a, b, c, 2u * s);
  let smHi = scale_min_k4(a, b, c, 2u * s + 1u);
  let p = w4[(o + 16u + 32u * s) >> 4u];
  let q = w4[(o + 32u + 32u * s) >> 4u];
  let l0 = lo_nib(p.x, xw[0].x, xw[0].y) + lo_nib(p.y, xw[0].z, xw[0].w) + lo_nib(p.z, xw[1].x, xw[1].y) + lo_nib(p.w, xw[1].z, xw[1].w);
  let l1 = lo_nib(q.x, xw[2].x, xw[2].y) + lo_nib(q.y, xw[2].z, xw[2].w) + lo_nib(q.z, xw[3].x, xw[3].y) + lo_nib(q.w, xw[3].z, xw[3].w);
  let h0 = hi_nib(p.x, xw[8].x, xw[8].y) + hi_nib(p.y, xw[8].z, xw[8].w) + hi_nib(p.z, xw[9].x, xw[9].y) + hi_nib(p.w, xw[9].z, xw[9].w);
  let h1 = hi_nib(q.x, xw[10].x, xw[10].y) + hi_nib(q.y, xw[10].z, xw[10].w) + hi_nib(q.z, xw[11].x, xw[11].y) + hi_nib(q.w, xw[11].z, xw[11].w);
  let dLo = f32(hi16(l0) + hi16(l1));
  let dHi = f32(hi16(h0) + hi16(h1));
  return dm.x * (smLo.x * xm[0].x * dLo + smHi.x * xm[1].x * dHi) - dm.y * (smLo.y * xm[0].y + smHi.y * xm[1].y);
}
