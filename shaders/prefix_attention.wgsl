// Shared-prefix (cascade) attention, first half: partial attention over a run of whole KV pages for every query that
// shares them (FlashInfer's cascade / Hydragen). Each invocation owns QB queries of one task and one kv head: the
// queries of the rows that share the task's pages, for the query heads of that kv head (GQA), and it reads each key
// and value vector of the run once for all QB of them. On CPU adapters a storage load is a per-lane gather that costs
// far more than an fma, so blocking QB queries on one load is what makes shared pages cheap; a path that owns its
// pages alone gets single-row tasks, which split its keys over several invocations (flash-decoding).
//
// A task's output per (row, query head) is a partial softmax state in log2 units, written to `partials`: the running
// max m, the sum l of exp2(s - m) and acc = sum exp2(s - m) v (not normalised). paged_attention.wgsl merges a row's
// partials with its own keys by log-sum-exp. A query whose keys all lie before its sliding window gets l = 0.
//
// Scores exactly as paged_attention.wgsl: q pre-multiplied by log2(e) * scale, the optional soft-cap on each score,
// keys before the row's sliding window left out.
//
// meta (u32): tasks (T, 5) at params.taskOff: [keyStart, keyEnd, tablePath, rowBegin, rowCount], keys a run of whole
// pages read through page-table row tablePath; taskRows (., 2) at params.taskRowOff: [row, partial slot];
// items (I, 3) at params.itemOff: [task, kvHead, first query], query qi of a task being row taskRows[rowBegin +
// qi / group], head kvHead * group + qi % group.
override WG: u32 = 8u;
// QB and HD4 are written in front of this file by the host (function-scope arrays need a const size):
// const QB: u32  queries per invocation; const HD4: u32  headDim / 4.
const NEG_BIG: f32 = -3.0e38; // "no key yet": finite, so differences with it never make a NaN

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;              // (rows, qStride) f32
@group(0) @binding(2) var<storage, read> kv: array<vec4<f32>>;             // (pages, 2, kvHeads, pageSize, headDim) f32
@group(0) @binding(3) var<storage, read> positions: array<u32>;            // (rows) u32
@group(0) @binding(4) var<storage, read> pageTable: array<u32>;            // (P, maxPages) u32
@group(0) @binding(5) var<storage, read> cmeta: array<u32>;                 // tasks, taskRows, items (see above)
@group(0) @binding(6) var<storage, read_write> partials: array<vec4<f32>>; // (slots, nHeads, HD4 + 1): acc, then (m, l, 0, 0)

fn softcap(s: f32) -> f32 {
  if (params.softcapLog2 <= 0.0) { return s; }
  let c = params.softcapLog2;
  let e = exp(-2.0 * abs(s / c));
  return c * sign(s) * (1.0 - e) / (1.0 + e);
}

fn headBase(page: u32, which: u32, kvh: u32) -> u32 {
  return ((page * 2u + which) * params.kvHeads + kvh) * params.pageSize * HD4;
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let item = gid.x + gid.y * nwg.x * WG;
  if (item >= params.items) { return; }
  let it = params.itemOff + item * 3u;
  let task = params.taskOff + cmeta[it] * 5u;
  let kvh = cmeta[it + 1u];
  let q0 = cmeta[it + 2u];
  let keyStart = cmeta[task];
  let keyEnd = cmeta[task + 1u];
  let table = cmeta[task + 2u] * params.maxPages;
  let rowBegin = cmeta[task + 3u];
  let nq = min(QB, cmeta[task + 4u] * params.group - q0);

  var qv: array<vec4<f32>, QB * HD4>;
  var acc: array<vec4<f32>, QB * HD4>;
  var m: array<f32, QB>;
  var l: array<f32, QB>;
  var first: array<u32, QB>;
  for (var b = 0u; b < QB; b++) {
    m[b] = NEG_BIG;
    l[b] = 0.0;
    // Unused query slots repeat the last real one (loads in bounds) and are never written back.
    let qi = q0 + min(b, nq - 1u);
    let r = cmeta[params.taskRowOff + (rowBegin + qi / params.group) * 2u];
    let h = kvh * params.group + qi % params.group;
    let p = positions[r] + 1u;
    first[b] = select(0u, p - min(p, params.window), params.window > 0u);
    let qBase = r * params.qStride4 + h * HD4;
    for (var d = 0u; d < HD4; d++) {
      qv[b * HD4 + d] = q[qBase + d] * params.scaleLog2;
      acc[b * HD4 + d] = vec4<f32>(0.0);
    }
  }

  for (var start = keyStart; start < keyEnd; start += params.pageSize) {
    let page = pageTable[table + start / params.pageSize];
    // A page id outside the pool is a scheduler bug: its keys are left out rather than read from another layer's data.
    if (page >= params.pages) { continue; }
    let kBase = headBase(page, 0u, kvh);
    let vBase = headBase(page, 1u, kvh);
    for (var o = 0u; o < params.pageSize; o++) {
      var dot: array<vec4<f32>, QB>;
      // Zeroed explicitly: SwiftShader kept the previous key's sums in a loop-scoped array left to default init.
      for (var b = 0u; b < QB; b++) { dot[b] = vec4<f32>(0.0); }
      let kRow = kBase + o * HD4;
      for (var d = 0u; d < HD4; d++) {
        let k = kv[kRow + d];
        for (var b = 0u; b < QB; b++) { dot[b] = fma(qv[b * HD4 + d], k, dot[b]); }
      }
      var p: array<f32, QB>;
      for (var b = 0u; b < QB; b++) {
        var s = softcap(dot[b].x + dot[b].y + dot[b].z + dot[b].w);
        if (start + o < first[b]) { s = NEG_BIG; }
        if (s > m[b]) {
          // The running max grows: rescale what was summed under the old max (exp2(NEG_BIG - s) = 0 the first time).
          let c = exp2(m[b] - s);
          l[b] = l[b] * c;
          for (var d = 0u; d < HD4; d++) { acc[b * HD4 + d] = acc[b * HD4 + d] * c; }
          m[b] = s;
        }
        p[b] = select(0.0, exp2(s - m[b]), s > NEG_BIG);
        l[b] = l[b] + p[b];
      }
      let vRow = vBase + o * HD4;
      for (var d = 0u; d < HD4; d++) {
        let v = kv[vRow + d];
        for (var b = 0u; b < QB; b++) { acc[b * HD4 + d] = fma(vec4<f32>(p[b]), v, acc[b * HD4 + d]); }
      }
    }
  }

  for (var b = 0u; b < nq; b++) {
    let qi = q0 + b;
    let slot = cmeta[params.taskRowOff + (rowBegin + qi / params.group) * 2u + 1u];
    let h = kvh * params.group + qi % params.group;
    let base = (slot * params.nHeads + h) * (HD4 + 1u);
    for (var d = 0u; d < HD4; d++) { partials[base + d] = acc[b * HD4 + d]; }
    partials[base + HD4] = vec4<f32>(m[b], l[b], 0.0, 0.0);
  }
}
