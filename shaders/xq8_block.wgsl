// One 32-value block of activations on 8 bits, as llama.cpp's Q8_1 (ggml-quants.c quantize_row_q8_1_ref):
// dx = max|x| / 127, q = round(x / dx) in [-127, 127], sx = dx sum(q), in the word layout the 8-bit matmul bodies
// multiply (xq8.wgsl; quantize_x8.wgsl's header gives it). Shared by shaders/quantize_x8.wgsl, the per-head
// attention that quantizes its output for the out-projection (paged_attention_xq.wgsl), the one-row gate|up
// matmul's act epilogue (kernels/act_q8_epilogue.ts) and the x hand-off's writer (xq_next.wgsl), so all give the same
// bits. The store is xq8_store.wgsl (the 8-bit bodies bind xq read-only and store through their own).
// Written out without private arrays (llvmpipe keeps an indexed private array in memory, lane by lane).

/** The block: its A words (vec4s 0..3), B words (4..7) and (max|x| / 127, sum q). */
struct XqBlock {
  a0: vec4<u32>,
  a1: vec4<u32>,
  a2: vec4<u32>,
  a3: vec4<u32>,
  b0: vec4<u32>,
  b1: vec4<u32>,
  b2: vec4<u32>,
  b3: vec4<u32>,
  s: vec2<f32>,
}

/** q of 4 values, inv = 1 / dx. */
fn xq_round(v: vec4<f32>, inv: f32) -> vec4<i32> {
  return clamp(vec4<i32>(round(v * inv)), vec4<i32>(-127), vec4<i32>(127));
}

/** The A words of groups r (values 4g..4g+3) and t (the next 4): words (lo, hi) = (r.z, r.x), (r.w, r.y), (t.z, t.x), (t.w, t.y). */
fn xq_pack_a(r: vec4<i32>, t: vec4<i32>) -> vec4<u32> {
  return bitcast<vec4<u32>>(vec4<i32>(r.x, r.y, t.x, t.y) * 65536 + vec4<i32>(r.z, r.w, t.z, t.w));
}

/** Values 0..31 of a block as v0..v7 (4 each) on 8 bits. */
fn xq_block8(v0: vec4<f32>, v1: vec4<f32>, v2: vec4<f32>, v3: vec4<f32>, v4: vec4<f32>, v5: vec4<f32>, v6: vec4<f32>, v7: vec4<f32>) -> XqBlock {
  // max is exact, so the order of the maxima changes nothing.
  let m = max(max(max(abs(v0), abs(v1)), max(abs(v2), abs(v3))), max(max(abs(v4), abs(v5)), max(abs(v6), abs(v7))));
  let amax = max(max(m.x, m.y), max(m.z, m.w));
  let inv = select(0.0, 127.0 / amax, amax > 0.0);
  let r0 = xq_round(v0, inv);
  let r1 = xq_round(v1, inv);
  let r2 = xq_round(v2, inv);
  let r3 = xq_round(v3, inv);
  let r4 = xq_round(v4, inv);
  let r5 = xq_round(v5, inv);
  let r6 = xq_round(v6, inv);
  let r7 = xq_round(v7, inv);
  let t = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7)); // integers: exact in any order
  return XqBlock(
    xq_pack_a(r0, r1),
    xq_pack_a(r2, r3),
    xq_pack_a(r4, r5),
    xq_pack_a(r6, r7),
    // B word t = (lo, hi) = (q[t + 16], q[t]): values 16.. (groups 4..7) under values 0..15 (groups 0..3).
    bitcast<vec4<u32>>(r0 * 65536 + r4),
    bitcast<vec4<u32>>(r1 * 65536 + r5),
    bitcast<vec4<u32>>(r2 * 65536 + r6),
    bitcast<vec4<u32>>(r3 * 65536 + r7),
    vec2<f32>(amax / 127.0, f32((t.x + t.y) + (t.z + t.w))),
  );
}
