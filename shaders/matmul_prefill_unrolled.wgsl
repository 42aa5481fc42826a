// matmul_prefill.wgsl written out: the same 8 x 8 register-blocked y[m, nOffset + n] (+)= sum_k x[m, k] * w[n, k]
// (+ bias[nOffset + n]), with 64 named accumulators and no function-scope arrays. Chosen by Gpu.registerBlocks
// (src/gpu/register_blocks.ts): in Chromium's GL route (llvmpipe through ANGLE), ANGLE rewrites every dynamically
// indexed array access of the GLSL as a[int(clamp(float(i), 0.0, N - 1.0))], after which Mesa keeps the loop version's
// arrays in memory instead of registers (8x slower, bench/RESULTS.md "Why the same step is slower in Chromium");
// constant indices are left alone. Elsewhere the loop version stays: in Node on llvmpipe both run alike, and
// SwiftShader compiles this one about 10x slower.
// The sums are the same operations in the same order as the loop version's (k outer, then row i, column j), so both
// give the same bits. Needs K % 4 == 0 (vec4 rows); the host routes other K to the decode shader.
// x is read through the x prologue (kernels/x_prologue.ts: x_row*, x_at*, x_scale): plain, RMSNorm or the MLP
// activation folded into the load; the row factor x_scale multiplies each finished sum.
override WG: u32 = 64;
override MR: u32 = 8;     // the host passes 8 (Config.mr); the block below is written for 8
override NR: u32 = 8;     // the host passes 8 (Config.nr)

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;       // (M, K/4) vec4
@group(0) @binding(2) var<storage, read> w: array<vec4<f32>>;       // (n, K/4) vec4, this chunk's rows of W
@group(0) @binding(3) var<storage, read> bias: array<f32>;          // (N) f32, or a dummy when params.hasBias == 0
@group(0) @binding(4) var<storage, read_write> y: array<f32>;       // (M, ldy) f32; this chunk writes columns nOffset + [0, n)
// (and first reads them when params.accumulate: y += x W^T)

// Stores one finished sum: block row i (row m0 + i), block column j (column n0 + j of this chunk); outside the
// matrix it does nothing.
fn put(m0: u32, n0: u32, i: u32, j: u32, a: vec4<f32>) {
  let m = m0 + i;
  let n = n0 + j;
  if (n >= params.n || m >= params.m) { return; }
  var b = 0.0;
  if (params.hasBias != 0u) { b = bias[params.nOffset + n]; }
  let at = m * params.ldy + params.nOffset + n;
  var v = ((a.x + a.y) + (a.z + a.w)) * x_scale(i) + b;
  if (params.accumulate != 0u) { v += y[at]; }
  y[at] = v;
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n0 = gid.x * NR;
  let m0 = gid.y * MR;
  if (n0 >= params.n || m0 >= params.m) { return; }
  // Rows past the end are clamped to the last one: their loads stay in bounds and their sums are never stored.
  let k4 = params.k / 4u;
  let lastM = params.m - 1u;
  let lastN = params.n - 1u;
  let xr0 = x_row4(min(m0 + 0u, lastM));
  let xr1 = x_row4(min(m0 + 1u, lastM));
  let xr2 = x_row4(min(m0 + 2u, lastM));
  let xr3 = x_row4(min(m0 + 3u, lastM));
  let xr4 = x_row4(min(m0 + 4u, lastM));
  let xr5 = x_row4(min(m0 + 5u, lastM));
  let xr6 = x_row4(min(m0 + 6u, lastM));
  let xr7 = x_row4(min(m0 + 7u, lastM));
  let wr0 = min(n0 + 0u, lastN) * k4;
  let wr1 = min(n0 + 1u, lastN) * k4;
  let wr2 = min(n0 + 2u, lastN) * k4;
  let wr3 = min(n0 + 3u, lastN) * k4;
  let wr4 = min(n0 + 4u, lastN) * k4;
  let wr5 = min(n0 + 5u, lastN) * k4;
  let wr6 = min(n0 + 6u, lastN) * k4;
  let wr7 = min(n0 + 7u, lastN) * k4;
  // a<i><j>: four partial sums (one per vec4 lane) for row m0 + i, column n0 + j.
  var a00 = vec4<f32>(); var a01 = vec4<f32>(); var a02 = vec4<f32>(); var a03 = vec4<f32>();
  var a04 = vec4<f32>(); var a05 = vec4<f32>(); var a06 = vec4<f32>(); var a07 = vec4<f32>();
  var a10 = vec4<f32>(); var a11 = vec4<f32>(); var a12 = vec4<f32>(); var a13 = vec4<f32>();
  var a14 = vec4<f32>(); var a15 = vec4<f32>(); var a16 = vec4<f32>(); var a17 = vec4<f32>();
  var a20 = vec4<f32>(); var a21 = vec4<f32>(); var a22 = vec4<f32>(); var a23 = vec4<f32>();
  var a24 = vec4<f32>(); var a25 = vec4<f32>(); var a26 = vec4<f32>(); var a27 = vec4<f32>();
  var a30 = vec4<f32>(); var a31 = vec4<f32>(); var a32 = vec4<f32>(); var a33 = vec4<f32>();
  var a34 = vec4<f32>(); var a35 = vec4<f32>(); var a36 = vec4<f32>(); var a37 = vec4<f32>();
  var a40 = vec4<f32>(); var a41 = vec4<f32>(); var a42 = vec4<f32>(); var a43 = vec4<f32>();
  var a44 = vec4<f32>(); var a45 = vec4<f32>(); var a46 = vec4<f32>(); var a47 = vec4<f32>();
  var a50 = vec4<f32>(); var a51 = vec4<f32>(); var a52 = vec4<f32>(); var a53 = vec4<f32>();
  var a54 = vec4<f32>(); var a55 = vec4<f32>(); var a56 = vec4<f32>(); var a57 = vec4<f32>();
  var a60 = vec4<f32>(); var a61 = vec4<f32>(); var a62 = vec4<f32>(); var a63 = vec4<f32>();
  var a64 = vec4<f32>(); var a65 = vec4<f32>(); var a66 = vec4<f32>(); var a67 = vec4<f32>();
  var a70 = vec4<f32>(); var a71 = vec4<f32>(); var a72 = vec4<f32>(); var a73 = vec4<f32>();
  var a74 = vec4<f32>(); var a75 = vec4<f32>(); var a76 = vec4<f32>(); var a77 = vec4<f32>();
  for (var k = 0u; k < k4; k++) {
    let w0 = w[wr0 + k];
    let w1 = w[wr1 + k];
    let w2 = w[wr2 + k];
    let w3 = w[wr3 + k];
    let w4 = w[wr4 + k];
    let w5 = w[wr5 + k];
    let w6 = w[wr6 + k];
    let w7 = w[wr7 + k];
    var xv: vec4<f32>;
    xv = x_at4(0u, xr0, k);
    a00 = fma(xv, w0, a00); a01 = fma(xv, w1, a01); a02 = fma(xv, w2, a02); a03 = fma(xv, w3, a03);
    a04 = fma(xv, w4, a04); a05 = fma(xv, w5, a05); a06 = fma(xv, w6, a06); a07 = fma(xv, w7, a07);
    xv = x_at4(1u, xr1, k);
    a10 = fma(xv, w0, a10); a11 = fma(xv, w1, a11); a12 = fma(xv, w2, a12); a13 = fma(xv, w3, a13);
    a14 = fma(xv, w4, a14); a15 = fma(xv, w5, a15); a16 = fma(xv, w6, a16); a17 = fma(xv, w7, a17);
    xv = x_at4(2u, xr2, k);
    a20 = fma(xv, w0, a20); a21 = fma(xv, w1, a21); a22 = fma(xv, w2, a22); a23 = fma(xv, w3, a23);
    a24 = fma(xv, w4, a24); a25 = fma(xv, w5, a25); a26 = fma(xv, w6, a26); a27 = fma(xv, w7, a27);
    xv = x_at4(3u, xr3, k);
    a30 = fma(xv, w0, a30); a31 = fma(xv, w1, a31); a32 = fma(xv, w2, a32); a33 = fma(xv, w3, a33);
    a34 = fma(xv, w4, a34); a35 = fma(xv, w5, a35); a36 = fma(xv, w6, a36); a37 = fma(xv, w7, a37);
    xv = x_at4(4u, xr4, k);
    a40 = fma(xv, w0, a40); a41 = fma(xv, w1, a41); a42 = fma(xv, w2, a42); a43 = fma(xv, w3, a43);
    a44 = fma(xv, w4, a44); a45 = fma(xv, w5, a45); a46 = fma(xv, w6, a46); a47 = fma(xv, w7, a47);
    xv = x_at4(5u, xr5, k);
    a50 = fma(xv, w0, a50); a51 = fma(xv, w1, a51); a52 = fma(xv, w2, a52); a53 = fma(xv, w3, a53);
    a54 = fma(xv, w4, a54); a55 = fma(xv, w5, a55); a56 = fma(xv, w6, a56); a57 = fma(xv, w7, a57);
    xv = x_at4(6u, xr6, k);
    a60 = fma(xv, w0, a60); a61 = fma(xv, w1, a61); a62 = fma(xv, w2, a62); a63 = fma(xv, w3, a63);
    a64 = fma(xv, w4, a64); a65 = fma(xv, w5, a65); a66 = fma(xv, w6, a66); a67 = fma(xv, w7, a67);
    xv = x_at4(7u, xr7, k);
    a70 = fma(xv, w0, a70); a71 = fma(xv, w1, a71); a72 = fma(xv, w2, a72); a73 = fma(xv, w3, a73);
    a74 = fma(xv, w4, a74); a75 = fma(xv, w5, a75); a76 = fma(xv, w6, a76); a77 = fma(xv, w7, a77);
  }

  put(m0, n0, 0u, 0u, a00); put(m0, n0, 1u, 0u, a10); put(m0, n0, 2u, 0u, a20); put(m0, n0, 3u, 0u, a30);
  put(m0, n0, 4u, 0u, a40); put(m0, n0, 5u, 0u, a50); put(m0, n0, 6u, 0u, a60); put(m0, n0, 7u, 0u, a70);
  put(m0, n0, 0u, 1u, a01); put(m0, n0, 1u, 1u, a11); put(m0, n0, 2u, 1u, a21); put(m0, n0, 3u, 1u, a31);
  put(m0, n0, 4u, 1u, a41); put(m0, n0, 5u, 1u, a51); put(m0, n0, 6u, 1u, a61); put(m0, n0, 7u, 1u, a71);
  put(m0, n0, 0u, 2u, a02); put(m0, n0, 1u, 2u, a12); put(m0, n0, 2u, 2u, a22); put(m0, n0, 3u, 2u, a32);
  put(m0, n0, 4u, 2u, a42); put(m0, n0, 5u, 2u, a52); put(m0, n0, 6u, 2u, a62); put(m0, n0, 7u, 2u, a72);
  put(m0, n0, 0u, 3u, a03); put(m0, n0, 1u, 3u, a13); put(m0, n0, 2u, 3u, a23); put(m0, n0, 3u, 3u, a33);
  put(m0, n0, 4u, 3u, a43); put(m0, n0, 5u, 3u, a53); put(m0, n0, 6u, 3u, a63); put(m0, n0, 7u, 3u, a73);
  put(m0, n0, 0u, 4u, a04); put(m0, n0, 1u, 4u, a14); put(m0, n0, 2u, 4u, a24); put(m0, n0, 3u, 4u, a34);
  put(m0, n0, 4u, 4u, a44); put(m0, n0, 5u, 4u, a54); put(m0, n0, 6u, 4u, a64); put(m0, n0, 7u, 4u, a74);
  put(m0, n0, 0u, 5u, a05); put(m0, n0, 1u, 5u, a15); put(m0, n0, 2u, 5u, a25); put(m0, n0, 3u, 5u, a35);
  put(m0, n0, 4u, 5u, a45); put(m0, n0, 5u, 5u, a55); put(m0, n0, 6u, 5u, a65); put(m0, n0, 7u, 5u, a75);
  put(m0, n0, 0u, 6u, a06); put(m0, n0, 1u, 6u, a16); put(m0, n0, 2u, 6u, a26); put(m0, n0, 3u, 6u, a36);
  put(m0, n0, 4u, 6u, a46); put(m0, n0, 5u, 6u, a56); put(m0, n0, 6u, 6u, a66); put(m0, n0, 7u, 6u, a76);
  put(m0, n0, 0u, 7u, a07); put(m0, n0, 1u, 7u, a17); put(m0, n0, 2u, 7u, a27); put(m0, n0, 3u, 7u, a37);
  put(m0, n0, 4u, 7u, a47); put(m0, n0, 5u, 7u, a57); put(m0, n0, 6u, 7u, a67); put(m0, n0, 7u, 7u, a77);

  // The y epilogue (kernels/y_epilogue.ts: RoPE + KV write after a q|k|v projection; nothing otherwise) on the
  // columns this invocation stored.
  for (var i = 0u; i < MR; i++) {
    if (m0 + i < params.m) { y_epi_block(m0 + i, n0, NR); }
  }
}
