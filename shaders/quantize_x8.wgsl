// Quantizes rows of x, as the x prologue makes them (kernels/x_prologue.ts: plain, RMSNorm, the MLP activation), to
// 8 bits per 32-value block for the integer dot products of qmatmul_q8.wgsl, as llama.cpp's Q8_1 (ggml-quants.c
// quantize_row_q8_1_ref): per block dx = max|x| / 127, q = round(x / dx) in [-127, 127], sx = dx * sum(q). With the RMS
// prologue the block of x * g is quantized and the row's r = 1 / rms(x) joins dx (the integers do not depend on a
// factor common to the row); each invocation sums the row's squares itself, K/4 loads, small beside the matmul's K N / 8
// per row. A row's words depend on its own values only, whatever M is. The q are stored as two signed 16-bit lanes per
// word, paired for the weight-side masks (see xq8.wgsl): a word (lo, hi) holds hi * 65536 + lo, so that a word of two small unsigned weights
// (w0 + w1 * 65536) times it carries w0 * hi + w1 * lo in its upper 16 bits (mod 2^32; the products below stay
// far from overflow). Per block, 32 words:
//   A (words 0..15): for each group g of values 4g..4g+3: word 2g = (q[4g+2], q[4g]), word 2g+1 = (q[4g+3], q[4g+1]),
//     matching the lanes (value j, value j+2) that `u & 0x000f000f` cuts from a word of GGUF nibbles;
//   B (words 16..31): word 16 + t = (q[t+16], q[t]), matching the lanes (t, t+16) that `(qh >> t) & 0x00010001` cuts
//     from the 5th bits of Q5_0 / Q5_1.
// This pass is the one place the 8-bit matmul reads x as f32 (one invocation per block and row).
override WG: u32 = 64;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;         // (M, K/4) vec4; (M, 2K/4) gate | up for a gated act prologue
@group(0) @binding(2) var<storage, read_write> xq: array<vec4<u32>>;  // (M, K/32, 8) vec4: 32 words per block
@group(0) @binding(3) var<storage, read_write> xs: array<vec2<f32>>;  // (M, K/32): (dx, sx) per block

/** The word holding the signed 16-bit lanes (lo, hi). */
fn pair(lo: i32, hi: i32) -> u32 {
  return bitcast<u32>(hi * 65536 + lo);
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let blocks = params.k / 32u;
  if (gid.x >= blocks || gid.y >= params.m) { return; }
  let blk = gid.y * blocks + gid.x;
  let base = x_row4(gid.y);
  if (X_RMS) {
    for (var k4 = 0u; k4 < params.k / 4u; k4++) { _ = x_at4(0u, base, k4); } // sums the row's squares
  }
  let rs = x_scale(0u); // r of the row for rms, 1 otherwise
  var v: array<vec4<f32>, 8>;
  var amax = 0.0;
  for (var i = 0u; i < 8u; i++) {
    v[i] = x_at4(0u, base, gid.x * 8u + i);
    let a = abs(v[i]);
    amax = max(amax, max(max(a.x, a.y), max(a.z, a.w)));
  }
  let inv = select(0.0, 127.0 / amax, amax > 0.0);
  var q: array<i32, 32>;
  var sum = 0;
  for (var i = 0u; i < 8u; i++) {
    let r = clamp(vec4<i32>(round(v[i] * inv)), vec4<i32>(-127), vec4<i32>(127));
    q[4u * i] = r.x;
    q[4u * i + 1u] = r.y;
    q[4u * i + 2u] = r.z;
    q[4u * i + 3u] = r.w;
    sum += (r.x + r.y) + (r.z + r.w);
  }
  for (var g = 0u; g < 8u; g += 2u) {
    let a = 4u * g;
    xq[blk * 8u + g / 2u] = vec4<u32>(pair(q[a + 2u], q[a]), pair(q[a + 3u], q[a + 1u]), pair(q[a + 6u], q[a + 4u]), pair(q[a + 7u], q[a + 5u]));
  }
  for (var t = 0u; t < 16u; t += 4u) {
    xq[blk * 8u + 4u + t / 4u] = vec4<u32>(pair(q[t + 16u], q[t]), pair(q[t + 17u], q[t + 1u]), pair(q[t + 18u], q[t + 2u]), pair(q[t + 19u], q[t + 3u]));
  }
  let dx = rs * (amax / 127.0);
  xs[blk] = vec2<f32>(dx, dx * f32(sum));
}
