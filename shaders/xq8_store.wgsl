// Stores a block of xq8_block.wgsl (kept apart: a body that binds xq read-only, the 8-bit matmul, cannot include it;
// the act_q8 epilogue includes it with its own buffer names, kernels/act_q8_epilogue.ts).

/**
 * Stores block `blk`: its 8 vec4 words at xq[8 blk..] and (dx, dx sum q) at xs[blk], with dx = rs max|x| / 127 (rs: a
 * factor common to the row, the RMS prologue's 1 / rms; 1.0 otherwise, which leaves max|x| / 127 exact). The including
 * shader declares `xq: array<vec4<u32>>` and `xs: array<vec2<f32>>` as read_write storage.
 */
fn xq_store(blk: u32, q: XqBlock, rs: f32) {
  let o = blk * 8u;
  xq[o] = q.a0;
  xq[o + 1u] = q.a1;
  xq[o + 2u] = q.a2;
  xq[o + 3u] = q.a3;
  xq[o + 4u] = q.b0;
  xq[o + 5u] = q.b1;
  xq[o + 6u] = q.b2;
  xq[o + 7u] = q.b3;
  let dx = rs * q.s.x;
  xs[blk] = vec2<f32>(dx, dx * q.s.y);
}
