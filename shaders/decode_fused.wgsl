// A whole decode forward up to the final hidden state in one dispatch, for small Llama-shaped models on CPU adapters
// (kernels/decode_fused.ts says when, and why: a dispatch costs ~30 us on llvmpipe, more than a stories260K kernel's
// own work). One workgroup per row; every row is the only row of its path this step, so no row reads K/V another
// row writes. Per layer, as the layered forward runs it (model/gpu_model.ts), each phase separated by barriers that
// kernels/decode_fused.ts writes into the entry point (a barrier inside a helper gave wrong results on llvmpipe):
//   qkv_L      RMSNorm folded into q|k|v, RoPE on the q and k pairs, K/V written into the layer's pool at the row's slot
//   attn_L     one invocation per query head over its path's pages, online softmax (paged_attention.wgsl, per-head)
//   oBlock     out-projection added into the residual stream
//   guBlock    RMSNorm folded into gate|up
//   downBlock  act(gate) * up folded into the down projection, added into the residual stream
// An invocation computes blocks of 4 columns, so that every store writes whole vec4s (lanes writing parts of one vec4
// would race).
// Each value is computed with the same operations in the same order as in the layered kernels (matmul_decode.wgsl at
// one row with NR = 2, the x prologue and y epilogue, paged_attention.wgsl per-head, qembedding.wgsl for F32), so a
// row's bits do not depend on whether its step ran fused or layered (test/kernels/decode_fused.test.ts checks this
// bit for bit). The host prepends the shape constants (WG, D4, QKV4, QD4, F4, GU4, NH, HD4, E_*, X_EPS, ACT,
// W_EMB), shaders/activation.wgsl and shaders/rope_turns.wgsl, and appends the section after the marker once per layer
// with `_L` replaced by the layer's index and its W_*_L, E_HALF_L, E_SCALE_L constants.
const NEG_BIG: f32 = -3.0e38;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> W: array<vec4<f32>>;            // every weight the kernel reads, packed (kernels/decode_fused.ts)
@group(0) @binding(2) var<storage, read> tokenIds: array<u32>;           // (rows) u32
@group(0) @binding(3) var<storage, read> positions: array<u32>;          // (rows) u32
@group(0) @binding(4) var<storage, read> slots: array<u32>;              // (rows) u32 page * pageSize + offset
@group(0) @binding(5) var<storage, read> rowPath: array<u32>;            // (rows) u32 step path slot
@group(0) @binding(6) var<storage, read> pageTable: array<u32>;          // (P, maxPages) u32
@group(0) @binding(7) var<storage, read_write> hidden: array<vec4<f32>>; // (rows, D/4) the residual stream

var<workgroup> wq: array<vec4<f32>, QKV4>; // this row's q|k|v after RoPE
var<workgroup> wa: array<vec4<f32>, QD4>;  // attention output
var<workgroup> wgu: array<vec4<f32>, GU4>; // gate | up

/** Sums of four columns over K (two of the decode body's NR = 2 blocks) and the sum of x^2 of the same loads. */
struct Acc4 {
  a0: vec4<f32>,
  a1: vec4<f32>,
  a2: vec4<f32>,
  a3: vec4<f32>,
  ss: f32,
}

/** The finished column: the decode body's ((a.x + a.y) + (a.z + a.w)) * x_scale + b, b = 0 (no bias). */
fn finish(a: vec4<f32>, sc: f32, b: f32) -> f32 {
  return ((a.x + a.y) + (a.z + a.w)) * sc + b;
}

/** The four finished columns of an Acc4. */
fn finish4(s: Acc4, sc: f32) -> vec4<f32> {
  let z = params.zero;
  return vec4<f32>(finish(s.a0, sc, z), finish(s.a1, sc, z), finish(s.a2, sc, z), finish(s.a3, sc, z));
}

/** x_scale of the rms prologue: 1 / sqrt(mean x^2 + eps). */
fn rmsScale(ss: f32) -> f32 {
  return 1.0 / sqrt(ss / f32(params.dim) + X_EPS);
}

/** W rows w0 .. w0 + 3 (row stride D4 from vec4 offset w0) against RMSNorm(hidden row at hb) * g (g at go). */
fn dotRms(hb: u32, go: u32, w0: u32) -> Acc4 {
  var r = Acc4(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), 0.0);
  for (var k = 0u; k < D4; k++) {
    let wv0 = W[w0 + k];
    let wv1 = W[w0 + D4 + k];
    let wv2 = W[w0 + 2u * D4 + k];
    let wv3 = W[w0 + 3u * D4 + k];
    let v = hidden[hb + k];
    r.ss += dot(v, v);
    let xv = v * W[go + k];
    r.a0 = fma(xv, wv0, r.a0);
    r.a1 = fma(xv, wv1, r.a1);
    r.a2 = fma(xv, wv2, r.a2);
    r.a3 = fma(xv, wv3, r.a3);
  }
  return r;
}

/** The row's token embedding (F32 table at vec4 offset W_EMB), zeros for an id outside the vocabulary. */
fn embed(r: u32, lid: u32) {
  let id = tokenIds[r];
  for (var c = lid; c < D4; c += WG) {
    var x = vec4<f32>(0.0);
    if (id < params.vocab) { x = W[W_EMB + id * D4 + c]; }
    hidden[r * D4 + c] = x;
  }
}

/** Columns 4 c4 .. 4 c4 + 3 of o (K = qDim, plain x from wa), added into hidden: y += x W^T. */
fn oBlock(r: u32, wo: u32, c4: u32) {
  let w0 = wo + 4u * c4 * QD4;
  var s = Acc4(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), 0.0);
  for (var k = 0u; k < QD4; k++) {
    let wv0 = W[w0 + k];
    let wv1 = W[w0 + QD4 + k];
    let wv2 = W[w0 + 2u * QD4 + k];
    let wv3 = W[w0 + 3u * QD4 + k];
    let xv = wa[k];
    s.a0 = fma(xv, wv0, s.a0);
    s.a1 = fma(xv, wv1, s.a1);
    s.a2 = fma(xv, wv2, s.a2);
    s.a3 = fma(xv, wv3, s.a3);
  }
  let i = r * D4 + c4;
  hidden[i] = finish4(s, 1.0) + hidden[i];
}

/** Columns 4 c4 .. 4 c4 + 3 of gate|up (K = D, RMSNorm by the weight at gn folded in), into wgu. */
fn guBlock(r: u32, gn: u32, wgu0: u32, c4: u32) {
  let s = dotRms(r * D4, gn, wgu0 + 4u * c4 * D4);
  wgu[c4] = finish4(s, rmsScale(s.ss));
}

/** Columns 4 c4 .. 4 c4 + 3 of down (K = F, act(gate) * up from wgu), added into hidden. */
fn downBlock(r: u32, wd: u32, c4: u32) {
  let w0 = wd + 4u * c4 * F4;
  var s = Acc4(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), 0.0);
  for (var k = 0u; k < F4; k++) {
    let wv0 = W[w0 + k];
    let wv1 = W[w0 + F4 + k];
    let wv2 = W[w0 + 2u * F4 + k];
    let wv3 = W[w0 + 3u * F4 + k];
    let xv = act4(wgu[k]) * wgu[F4 + k];
    s.a0 = fma(xv, wv0, s.a0);
    s.a1 = fma(xv, wv1, s.a1);
    s.a2 = fma(xv, wv2, s.a2);
    s.a3 = fma(xv, wv3, s.a3);
  }
  let i = r * D4 + c4;
  hidden[i] = finish4(s, 1.0) + hidden[i];
}

/**
 * paged_attention.wgsl's soft-cap, never active here (the host passes 0): without this call, Mesa compiles the score
 * sum differently and attention differs from the layered kernel's in the last bit.
 */
fn softcap(s: f32) -> f32 {
  if (params.softcapLog2 <= 0.0 || s <= NEG_BIG) { return s; }
  let c = params.softcapLog2;
  let e = exp(-2.0 * abs(s / c));
  return c * sign(s) * (1.0 - e) / (1.0 + e);
}
// ---- per layer ----
@group(0) @binding(BINDING_L) var<storage, read_write> kv_L: array<vec4<f32>>; // (pages, 2, Hkv, pageSize, hd) layer L's pool

/** RoPE on the q or k pair (c, c + 1) of row r (y_epi of kernels/y_epilogue.ts); other columns pass. */
fn rope_L(r: u32, c: u32, v: vec2<f32>) -> vec2<f32> {
  let d = c % E_HD;
  if (c < E_QDIM + E_KVDIM && d < 2u * E_HALF_L) {
    let sc = rotationTurns(f32(positions[r]), W[W_FQ_L + d / 2u]) * E_SCALE_L;
    let r0 = v.x * sc.y - v.y * sc.x;
    let r1 = v.y * sc.y + v.x * sc.x;
    return vec2<f32>(r0, r1);
  }
  return v;
}

/** Columns 4 c4 .. 4 c4 + 3 of q|k|v (RMSNorm folded in), RoPE'd into wq; k and v also into the pool at the row's slot. */
fn qkv_L(r: u32, c4: u32) {
  let s = dotRms(r * D4, W_AN_L, W_QKV_L + 4u * c4 * D4);
  let y = finish4(s, rmsScale(s.ss));
  let c = 4u * c4;
  let v = vec4<f32>(rope_L(r, c, y.xy), rope_L(r, c + 2u, y.zw));
  wq[c4] = v;
  if (c < E_QDIM) { return; }
  // Four columns of one head of K or of V (E_HD and E_KVDIM are multiples of 4).
  let kvc = c - E_QDIM;
  let which = kvc / E_KVDIM;
  let h = (kvc % E_KVDIM) / E_HD;
  let slot = slots[r];
  let page = slot / E_PAGE;
  if (page >= E_PAGES) { return; }
  let dst = (((page * 2u + which) * E_KVH + h) * E_PAGE + slot % E_PAGE) * E_HD + c % E_HD;
  kv_L[dst / 4u] = v;
}

/** Query head h of row r over its path's keys (paged_attention.wgsl perHead, global layer, no cascade). */
fn attn_L(r: u32, h: u32) {
  let kvh = h / params.group;
  let n = min(positions[r] + 1u, params.maxPages * params.pageSize);
  let table = rowPath[r] * params.maxPages;
  var qv: array<vec4<f32>, HD4>;
  var acc: array<vec4<f32>, HD4>;
  for (var d = 0u; d < HD4; d++) {
    qv[d] = wq[h * HD4 + d] * params.scaleLog2;
    acc[d] = vec4<f32>(0.0);
  }
  var m = NEG_BIG;
  var l = 0.0;
  for (var start = 0u; start < n; start += params.pageSize) {
    let page = pageTable[table + start / params.pageSize];
    if (page >= params.pages) { continue; }
    let kBase = ((page * 2u) * E_KVH + kvh) * params.pageSize * HD4;
    let vBase = ((page * 2u + 1u) * E_KVH + kvh) * params.pageSize * HD4;
    let count = min(params.pageSize, n - start);
    for (var o = 0u; o < count; o++) {
      let kRow = kBase + o * HD4;
      var dt = vec4<f32>(0.0);
      for (var d = 0u; d < HD4; d++) { dt = fma(qv[d], kv_L[kRow + d], dt); }
      let s = softcap(dt.x + dt.y + dt.z + dt.w);
      if (s > m) {
        let c = exp2(m - s);
        l = l * c;
        for (var d = 0u; d < HD4; d++) { acc[d] = acc[d] * c; }
        m = s;
      }
      let p = exp2(s - m);
      l = l + p;
      let vRow = vBase + o * HD4;
      for (var d = 0u; d < HD4; d++) { acc[d] = fma(vec4<f32>(p), kv_L[vRow + d], acc[d]); }
    }
  }
  let inv = select(0.0, 1.0 / l, l > 0.0);
  for (var d = 0u; d < HD4; d++) { wa[h * HD4 + d] = acc[d] * inv; }
}
