// Quantizes rows of x, as the x prologue makes them (kernels/x_prologue.ts: plain, RMSNorm, the MLP activation), to
// 8 bits per 32-value block for the integer dot products of qmatmul_q8.wgsl, as llama.cpp's Q8_1 (ggml-quants.c
// quantize_row_q8_1_ref): per block dx = max|x| / 127, q = round(x / dx) in [-127, 127], sx = dx * sum(q). With the RMS
// prologue the block of x * g is quantized and the row's r = 1 / rms(x) joins dx (the integers do not depend on a
// factor common to the row); each invocation sums the row's squares itself (in 64-value chunks, see main), K/4 loads,
// small beside the matmul's K N / 8 per row. A row's words depend on its own values only, whatever M is. The q are stored as two signed 16-bit lanes per
// word, paired for the weight-side masks (see xq8.wgsl): a word (lo, hi) holds hi * 65536 + lo, so that a word of two small unsigned weights
// (w0 + w1 * 65536) times it carries w0 * hi + w1 * lo in its upper 16 bits (mod 2^32; the products below stay
// far from overflow). Per block, 32 words:
//   A (words 0..15): for each group g of values 4g..4g+3: word 2g = (q[4g+2], q[4g]), word 2g+1 = (q[4g+3], q[4g+1]),
//     matching the lanes (value j, value j+2) that `u & 0x000f000f` cuts from a word of GGUF nibbles;
//   B (words 16..31): word 16 + t = (q[t+16], q[t]), matching the lanes (t, t+16) that `(qh >> t) & 0x00010001` cuts
//     from the 5th bits of Q5_0 / Q5_1.
// The block arithmetic is xq8_block.wgsl's (shared with the attention that quantizes its output for the out-projection).
// One invocation per block and row.
override WG: u32 = 64;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;         // (M, K/4) vec4; (M, 2K/4) gate | up for a gated act prologue
@group(0) @binding(2) var<storage, read_write> xq: array<vec4<u32>>;  // (M, K/32, 8) vec4: 32 words per block
@group(0) @binding(3) var<storage, read_write> xs: array<vec2<f32>>;  // (M, K/32): (dx, sx) per block

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let blocks = params.k / 32u;
  if (gid.x >= blocks || gid.y >= params.m) { return; }
  let blk = gid.y * blocks + gid.x;
  let base = x_row4(gid.y);
  if (X_RMS) {
    // The row's sum of squares in chunks of 64 values (16 vec4s), each summed from 0 in order, the chunks added in
    // order: the order in which a matmul that writes x hands it over (xq_next.wgsl, one partial per 64-column
    // workgroup), so a row's r is the same bits whichever of the two quantized it.
    let k4s = params.k / 4u;
    var ss = 0.0;
    for (var c = 0u; c < k4s; c += 16u) {
      var p = 0.0;
      for (var k4 = c; k4 < min(c + 16u, k4s); k4++) { let v = x[base + k4]; p += dot(v, v); }
      ss += p;
    }
    x_ss_set(0u, ss);
  }
  let rs = x_scale(0u); // r of the row for rms, 1 otherwise
  let k4 = gid.x * 8u;
  let q = xq_block8(
    x_at4(0u, base, k4), x_at4(0u, base, k4 + 1u), x_at4(0u, base, k4 + 2u), x_at4(0u, base, k4 + 3u),
    x_at4(0u, base, k4 + 4u), x_at4(0u, base, k4 + 5u), x_at4(0u, base, k4 + 6u), x_at4(0u, base, k4 + 7u),
  );
  xq_store(blk, q, rs);
}
