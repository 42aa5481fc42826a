// The loop variants of paged attention (shaders/paged_attention_common.wgsl is prepended: bindings, key ranges,
// soft-cap, online softmax; its header says what the kernel computes). Chosen by SPLIT_KEYS:
// - false (CPU adapters): one invocation per (row, GQ query heads of one kv head) loops over the keys with q and the
//   output accumulators in private vec4 arrays, each K/V load feeding the GQ heads. No barriers, which software
//   adapters pay dearly for. With RB = 2 or 4 (perHeadRows) an invocation takes RB adjacent rows: the whole pages all
//   their tables hold from the first (the prompt of forked paths, the earlier keys of a prompt chunk's rows) are
//   walked once with each K/V load feeding every row's heads, then each row's own keys; per head the same operations
//   in the same order as perHead, so the output bits do not depend on the grouping.
// - true (real GPUs): one workgroup per (row, head); each block of WG keys is scored one key per thread, its max and
//   sum are reduced in workgroup memory, and the weighted V sum is split over (dimension, key subset) threads.
// In Chromium's GL route the per-head variant runs written out instead (src/kernels/paged_attention_written_out.ts):
// ANGLE clamps every dynamic index into the private arrays below, after which Mesa keeps them in memory.
override WG: u32 = 64u;            // invocations per workgroup; a power of two >= HD4 when SPLIT_KEYS
override SPLIT_KEYS: bool = false;
override GQ: u32 = 1u;             // per-head: query heads per invocation (1..3), a divisor of the GQA group; 1 when SPLIT_KEYS
override RB: u32 = 1u;             // per-head: rows per invocation (1, 2 or 4)
const MAX_HD4: u32 = 64u;          // head dim up to 256
const NO_ROW: u32 = 0xffffffffu;

var<workgroup> qs: array<vec4<f32>, MAX_HD4>; // the scaled query of this workgroup's (row, head)
var<workgroup> redMax: array<f32, WG>;        // reduction scratch for the block's max score
var<workgroup> redSum: array<f32, WG>;        // and for its sum of weights
var<workgroup> pw: array<f32, WG>;            // this block's softmax weights
var<workgroup> vrow: array<u32, WG>;          // this block's V row (vec4 index) per key, NO_ROW if none
var<workgroup> part: array<vec4<f32>, WG>;    // per-thread partial outputs for the final sum

/** Merges the row's shared-prefix partials of head h into (st, acc) and writes the head's normalised output. */
fn finishHead(r: u32, h: u32, st: ptr<function, HeadState>, acc: ptr<function, array<vec4<f32>, MAX_HD4>>) {
  let slots = partialSlots(r);
  // (m, l, acc) <- the log-sum-exp combination with each partial (m', l', acc').
  for (var e = 0u; e < slots.y; e++) {
    let base = partialBase(slots.x + e, h);
    let ml = partials[base + HD4];
    let mNew = max((*st).m, ml.x);
    let c = exp2((*st).m - mNew);
    let c2 = exp2(ml.x - mNew);
    (*st).l = (*st).l * c + ml.y * c2;
    for (var d = 0u; d < HD4; d++) { (*acc)[d] = (*acc)[d] * c + partials[base + d] * c2; }
    (*st).m = mNew;
  }
  let inv = select(0.0, 1.0 / (*st).l, (*st).l > 0.0);
  let oBase = (r * params.nHeads + h) * HD4;
  for (var d = 0u; d < HD4; d++) { out[oBase + d] = (*acc)[d] * inv; }
  xqOutHead(r, h, acc, inv); // the output on 8 bits too where the host asks (paged_attention_xq.wgsl), else nothing
}

fn perHead(id: u32) {
  if (id >= params.rows * (params.nHeads / GQ)) { return; }
  let heads = params.nHeads / GQ;
  let r = id / heads;
  let h0 = (id % heads) * GQ; // the first of this invocation's GQ query heads; GQ divides the group: one kv head
  let kvh = h0 / params.group;
  let n = keyCount(r);
  let table = rowPath[r] * params.maxPages;
  // Heads 1 and 2 are separate arrays, not a second array dimension: Mesa's GLSL path compiled a [GQ][HD4] array
  // ~10x slower to code ~3x slower (it indexes such arrays at run time), and with GQ a constant the unused heads'
  // code folds away.
  var q0: array<vec4<f32>, MAX_HD4>;
  var q1: array<vec4<f32>, MAX_HD4>;
  var q2: array<vec4<f32>, MAX_HD4>;
  var a0: array<vec4<f32>, MAX_HD4>;
  var a1: array<vec4<f32>, MAX_HD4>;
  var a2: array<vec4<f32>, MAX_HD4>;
  var s0 = HeadState(NEG_BIG, 0.0);
  var s1 = HeadState(NEG_BIG, 0.0);
  var s2 = HeadState(NEG_BIG, 0.0);
  let qBase = r * params.qStride4 + h0 * HD4;
  for (var d = 0u; d < HD4; d++) {
    q0[d] = q[qBase + d] * params.scaleLog2;
    if (GQ > 1u) { q1[d] = q[qBase + HD4 + d] * params.scaleLog2; }
    if (GQ > 2u) { q2[d] = q[qBase + 2u * HD4 + d] * params.scaleLog2; }
  }
  let first = firstKey(r);
  // Pages wholly before the window are never read.
  for (var start = first - first % params.pageSize; start < n; start += params.pageSize) {
    let page = pageTable[table + start / params.pageSize];
    // A page id outside the pool is a scheduler bug: its keys are left out rather than read from another layer's data.
    if (page >= params.pages) { continue; }
    let kBase = headBase(page, 0u, kvh);
    let vBase = headBase(page, 1u, kvh);
    let count = min(params.pageSize, n - start);
    for (var o = select(0u, first - start, first > start); o < count; o++) {
      // Each K and V vec4 is loaded once for the GQ heads: on llvmpipe a load instruction costs far more than the
      // multiply-adds it feeds, and about as much with one lane active as with eight.
      let kRow = kBase + o * HD4;
      var d0 = vec4<f32>(0.0);
      var d1 = vec4<f32>(0.0);
      var d2 = vec4<f32>(0.0);
      for (var d = 0u; d < HD4; d++) {
        let k = kv[kRow + d];
        d0 = fma(q0[d], k, d0);
        if (GQ > 1u) { d1 = fma(q1[d], k, d1); }
        if (GQ > 2u) { d2 = fma(q2[d], k, d2); }
      }
      let w0 = online(&s0, softcap(d0.x + d0.y + d0.z + d0.w));
      var w1 = vec2<f32>(1.0, 0.0);
      var w2 = vec2<f32>(1.0, 0.0);
      if (GQ > 1u) { w1 = online(&s1, softcap(d1.x + d1.y + d1.z + d1.w)); }
      if (GQ > 2u) { w2 = online(&s2, softcap(d2.x + d2.y + d2.z + d2.w)); }
      let vRow = vBase + o * HD4;
      for (var d = 0u; d < HD4; d++) {
        let v = kv[vRow + d];
        a0[d] = fma(vec4<f32>(w0.y), v, a0[d] * w0.x);
        if (GQ > 1u) { a1[d] = fma(vec4<f32>(w1.y), v, a1[d] * w1.x); }
        if (GQ > 2u) { a2[d] = fma(vec4<f32>(w2.y), v, a2[d] * w2.x); }
      }
    }
  }
  finishHead(r, h0, &s0, &a0);
  if (GQ > 1u) { finishHead(r, h0 + 1u, &s1, &a1); }
  if (GQ > 2u) { finishHead(r, h0 + 2u, &s2, &a2); }
}

/**
 * Row r's keys from k0 to its end for its GQ heads (q, acc and state by pointer: perHeadRows' rows), the loop body
 * of perHead: the same operations in the same order.
 */
fn walkRow(
  r: u32, kvh: u32, k0: u32,
  q0: ptr<function, array<vec4<f32>, MAX_HD4>>, q1: ptr<function, array<vec4<f32>, MAX_HD4>>, q2: ptr<function, array<vec4<f32>, MAX_HD4>>,
  a0: ptr<function, array<vec4<f32>, MAX_HD4>>, a1: ptr<function, array<vec4<f32>, MAX_HD4>>, a2: ptr<function, array<vec4<f32>, MAX_HD4>>,
  s0: ptr<function, HeadState>, s1: ptr<function, HeadState>, s2: ptr<function, HeadState>,
) {
  let n = keyCount(r);
  let table = rowPath[r] * params.maxPages;
  for (var start = k0 - k0 % params.pageSize; start < n; start += params.pageSize) {
    let page = pageTable[table + start / params.pageSize];
    if (page >= params.pages) { continue; }
    let kBase = headBase(page, 0u, kvh);
    let vBase = headBase(page, 1u, kvh);
    let count = min(params.pageSize, n - start);
    for (var o = select(0u, k0 - start, k0 > start); o < count; o++) {
      let kRow = kBase + o * HD4;
      var d0 = vec4<f32>(0.0);
      var d1 = vec4<f32>(0.0);
      var d2 = vec4<f32>(0.0);
      for (var d = 0u; d < HD4; d++) {
        let k = kv[kRow + d];
        d0 = fma((*q0)[d], k, d0);
        if (GQ > 1u) { d1 = fma((*q1)[d], k, d1); }
        if (GQ > 2u) { d2 = fma((*q2)[d], k, d2); }
      }
      let w0 = online(s0, softcap(d0.x + d0.y + d0.z + d0.w));
      var w1 = vec2<f32>(1.0, 0.0);
      var w2 = vec2<f32>(1.0, 0.0);
      if (GQ > 1u) { w1 = online(s1, softcap(d1.x + d1.y + d1.z + d1.w)); }
      if (GQ > 2u) { w2 = online(s2, softcap(d2.x + d2.y + d2.z + d2.w)); }
      let vRow = vBase + o * HD4;
      for (var d = 0u; d < HD4; d++) {
        let v = kv[vRow + d];
        (*a0)[d] = fma(vec4<f32>(w0.y), v, (*a0)[d] * w0.x);
        if (GQ > 1u) { (*a1)[d] = fma(vec4<f32>(w1.y), v, (*a1)[d] * w1.x); }
        if (GQ > 2u) { (*a2)[d] = fma(vec4<f32>(w2.y), v, (*a2)[d] * w2.x); }
      }
    }
  }
}

/**
 * perHead for RB (2 or 4) adjacent rows r0 .. r0 + RB - 1: the whole pages all of them hold from the first walked once,
 * each K and V load feeding every row's heads, then each row's own keys (walkRow). Rows past the last one repeat it:
 * computed, never written. Row i's heads are q<i>_*, a<i>_*, s<i>_* (separate arrays: see perHead).
 */
fn perHeadRows(id: u32) {
  let heads = params.nHeads / GQ;
  if (id >= (params.rows + RB - 1u) / RB * heads) { return; }
  let r0 = (id / heads) * RB;
  let h0 = (id % heads) * GQ;
  let kvh = h0 / params.group;
  let nr = min(RB, params.rows - r0);
  let r1 = r0 + min(1u, nr - 1u);
  let r2 = r0 + min(2u, nr - 1u);
  let r3 = r0 + min(3u, nr - 1u);
  var q0_0: array<vec4<f32>, MAX_HD4>;
  var q0_1: array<vec4<f32>, MAX_HD4>;
  var q0_2: array<vec4<f32>, MAX_HD4>;
  var a0_0: array<vec4<f32>, MAX_HD4>;
  var a0_1: array<vec4<f32>, MAX_HD4>;
  var a0_2: array<vec4<f32>, MAX_HD4>;
  var s0_0 = HeadState(NEG_BIG, 0.0);
  var s0_1 = HeadState(NEG_BIG, 0.0);
  var s0_2 = HeadState(NEG_BIG, 0.0);
  var q1_0: array<vec4<f32>, MAX_HD4>;
  var q1_1: array<vec4<f32>, MAX_HD4>;
  var q1_2: array<vec4<f32>, MAX_HD4>;
  var a1_0: array<vec4<f32>, MAX_HD4>;
  var a1_1: array<vec4<f32>, MAX_HD4>;
  var a1_2: array<vec4<f32>, MAX_HD4>;
  var s1_0 = HeadState(NEG_BIG, 0.0);
  var s1_1 = HeadState(NEG_BIG, 0.0);
  var s1_2 = HeadState(NEG_BIG, 0.0);
  var q2_0: array<vec4<f32>, MAX_HD4>;
  var q2_1: array<vec4<f32>, MAX_HD4>;
  var q2_2: array<vec4<f32>, MAX_HD4>;
  var a2_0: array<vec4<f32>, MAX_HD4>;
  var a2_1: array<vec4<f32>, MAX_HD4>;
  var a2_2: array<vec4<f32>, MAX_HD4>;
  var s2_0 = HeadState(NEG_BIG, 0.0);
  var s2_1 = HeadState(NEG_BIG, 0.0);
  var s2_2 = HeadState(NEG_BIG, 0.0);
  var q3_0: array<vec4<f32>, MAX_HD4>;
  var q3_1: array<vec4<f32>, MAX_HD4>;
  var q3_2: array<vec4<f32>, MAX_HD4>;
  var a3_0: array<vec4<f32>, MAX_HD4>;
  var a3_1: array<vec4<f32>, MAX_HD4>;
  var a3_2: array<vec4<f32>, MAX_HD4>;
  var s3_0 = HeadState(NEG_BIG, 0.0);
  var s3_1 = HeadState(NEG_BIG, 0.0);
  var s3_2 = HeadState(NEG_BIG, 0.0);
  for (var d = 0u; d < HD4; d++) {
    {
      let qb = r0 * params.qStride4 + h0 * HD4;
      q0_0[d] = q[qb + d] * params.scaleLog2;
      if (GQ > 1u) { q0_1[d] = q[qb + HD4 + d] * params.scaleLog2; }
      if (GQ > 2u) { q0_2[d] = q[qb + 2u * HD4 + d] * params.scaleLog2; }
    }
    {
      let qb = r1 * params.qStride4 + h0 * HD4;
      q1_0[d] = q[qb + d] * params.scaleLog2;
      if (GQ > 1u) { q1_1[d] = q[qb + HD4 + d] * params.scaleLog2; }
      if (GQ > 2u) { q1_2[d] = q[qb + 2u * HD4 + d] * params.scaleLog2; }
    }
    if (RB > 2u) {
      let qb = r2 * params.qStride4 + h0 * HD4;
      q2_0[d] = q[qb + d] * params.scaleLog2;
      if (GQ > 1u) { q2_1[d] = q[qb + HD4 + d] * params.scaleLog2; }
      if (GQ > 2u) { q2_2[d] = q[qb + 2u * HD4 + d] * params.scaleLog2; }
    }
    if (RB > 3u) {
      let qb = r3 * params.qStride4 + h0 * HD4;
      q3_0[d] = q[qb + d] * params.scaleLog2;
      if (GQ > 1u) { q3_1[d] = q[qb + HD4 + d] * params.scaleLog2; }
      if (GQ > 2u) { q3_2[d] = q[qb + 2u * HD4 + d] * params.scaleLog2; }
    }
  }
  // Keys every row of the block may walk together (sharedKeys of row r0 with each other row; none for one row).
  var end = select(0u, sharedKeys(r0, r1), nr > 1u);
  if (RB > 2u) { end = min(end, min(sharedKeys(r0, r2), sharedKeys(r0, r3))); }
  let table = rowPath[r0] * params.maxPages;
  for (var start = 0u; start < end; start += params.pageSize) {
    let page = pageTable[table + start / params.pageSize];
    if (page >= params.pages) { continue; }
    let kBase = headBase(page, 0u, kvh);
    let vBase = headBase(page, 1u, kvh);
    for (var o = 0u; o < params.pageSize; o++) {
      let kRow = kBase + o * HD4;
      var d0_0 = vec4<f32>(0.0);
      var d0_1 = vec4<f32>(0.0);
      var d0_2 = vec4<f32>(0.0);
      var d1_0 = vec4<f32>(0.0);
      var d1_1 = vec4<f32>(0.0);
      var d1_2 = vec4<f32>(0.0);
      var d2_0 = vec4<f32>(0.0);
      var d2_1 = vec4<f32>(0.0);
      var d2_2 = vec4<f32>(0.0);
      var d3_0 = vec4<f32>(0.0);
      var d3_1 = vec4<f32>(0.0);
      var d3_2 = vec4<f32>(0.0);
      for (var d = 0u; d < HD4; d++) {
        let k = kv[kRow + d];
        {
          d0_0 = fma(q0_0[d], k, d0_0);
          if (GQ > 1u) { d0_1 = fma(q0_1[d], k, d0_1); }
          if (GQ > 2u) { d0_2 = fma(q0_2[d], k, d0_2); }
        }
        {
          d1_0 = fma(q1_0[d], k, d1_0);
          if (GQ > 1u) { d1_1 = fma(q1_1[d], k, d1_1); }
          if (GQ > 2u) { d1_2 = fma(q1_2[d], k, d1_2); }
        }
        if (RB > 2u) {
          d2_0 = fma(q2_0[d], k, d2_0);
          if (GQ > 1u) { d2_1 = fma(q2_1[d], k, d2_1); }
          if (GQ > 2u) { d2_2 = fma(q2_2[d], k, d2_2); }
        }
        if (RB > 3u) {
          d3_0 = fma(q3_0[d], k, d3_0);
          if (GQ > 1u) { d3_1 = fma(q3_1[d], k, d3_1); }
          if (GQ > 2u) { d3_2 = fma(q3_2[d], k, d3_2); }
        }
      }
      var w0_0 = vec2<f32>(1.0, 0.0);
      var w0_1 = vec2<f32>(1.0, 0.0);
      var w0_2 = vec2<f32>(1.0, 0.0);
      {
        w0_0 = online(&s0_0, softcap(d0_0.x + d0_0.y + d0_0.z + d0_0.w));
        if (GQ > 1u) { w0_1 = online(&s0_1, softcap(d0_1.x + d0_1.y + d0_1.z + d0_1.w)); }
        if (GQ > 2u) { w0_2 = online(&s0_2, softcap(d0_2.x + d0_2.y + d0_2.z + d0_2.w)); }
      }
      var w1_0 = vec2<f32>(1.0, 0.0);
      var w1_1 = vec2<f32>(1.0, 0.0);
      var w1_2 = vec2<f32>(1.0, 0.0);
      {
        w1_0 = online(&s1_0, softcap(d1_0.x + d1_0.y + d1_0.z + d1_0.w));
        if (GQ > 1u) { w1_1 = online(&s1_1, softcap(d1_1.x + d1_1.y + d1_1.z + d1_1.w)); }
        if (GQ > 2u) { w1_2 = online(&s1_2, softcap(d1_2.x + d1_2.y + d1_2.z + d1_2.w)); }
      }
      var w2_0 = vec2<f32>(1.0, 0.0);
      var w2_1 = vec2<f32>(1.0, 0.0);
      var w2_2 = vec2<f32>(1.0, 0.0);
      if (RB > 2u) {
        w2_0 = online(&s2_0, softcap(d2_0.x + d2_0.y + d2_0.z + d2_0.w));
        if (GQ > 1u) { w2_1 = online(&s2_1, softcap(d2_1.x + d2_1.y + d2_1.z + d2_1.w)); }
        if (GQ > 2u) { w2_2 = online(&s2_2, softcap(d2_2.x + d2_2.y + d2_2.z + d2_2.w)); }
      }
      var w3_0 = vec2<f32>(1.0, 0.0);
      var w3_1 = vec2<f32>(1.0, 0.0);
      var w3_2 = vec2<f32>(1.0, 0.0);
      if (RB > 3u) {
        w3_0 = online(&s3_0, softcap(d3_0.x + d3_0.y + d3_0.z + d3_0.w));
        if (GQ > 1u) { w3_1 = online(&s3_1, softcap(d3_1.x + d3_1.y + d3_1.z + d3_1.w)); }
        if (GQ > 2u) { w3_2 = online(&s3_2, softcap(d3_2.x + d3_2.y + d3_2.z + d3_2.w)); }
      }
      let vRow = vBase + o * HD4;
      for (var d = 0u; d < HD4; d++) {
        let v = kv[vRow + d];
        {
          a0_0[d] = fma(vec4<f32>(w0_0.y), v, a0_0[d] * w0_0.x);
          if (GQ > 1u) { a0_1[d] = fma(vec4<f32>(w0_1.y), v, a0_1[d] * w0_1.x); }
          if (GQ > 2u) { a0_2[d] = fma(vec4<f32>(w0_2.y), v, a0_2[d] * w0_2.x); }
        }
        {
          a1_0[d] = fma(vec4<f32>(w1_0.y), v, a1_0[d] * w1_0.x);
          if (GQ > 1u) { a1_1[d] = fma(vec4<f32>(w1_1.y), v, a1_1[d] * w1_1.x); }
          if (GQ > 2u) { a1_2[d] = fma(vec4<f32>(w1_2.y), v, a1_2[d] * w1_2.x); }
        }
        if (RB > 2u) {
          a2_0[d] = fma(vec4<f32>(w2_0.y), v, a2_0[d] * w2_0.x);
          if (GQ > 1u) { a2_1[d] = fma(vec4<f32>(w2_1.y), v, a2_1[d] * w2_1.x); }
          if (GQ > 2u) { a2_2[d] = fma(vec4<f32>(w2_2.y), v, a2_2[d] * w2_2.x); }
        }
        if (RB > 3u) {
          a3_0[d] = fma(vec4<f32>(w3_0.y), v, a3_0[d] * w3_0.x);
          if (GQ > 1u) { a3_1[d] = fma(vec4<f32>(w3_1.y), v, a3_1[d] * w3_1.x); }
          if (GQ > 2u) { a3_2[d] = fma(vec4<f32>(w3_2.y), v, a3_2[d] * w3_2.x); }
        }
      }
    }
  }
  {
    walkRow(r0, kvh, max(firstKey(r0), end), &q0_0, &q0_1, &q0_2, &a0_0, &a0_1, &a0_2, &s0_0, &s0_1, &s0_2);
    finishHead(r0, h0, &s0_0, &a0_0);
    if (GQ > 1u) { finishHead(r0, h0 + 1u, &s0_1, &a0_1); }
    if (GQ > 2u) { finishHead(r0, h0 + 2u, &s0_2, &a0_2); }
  }
  if (nr > 1u) {
    walkRow(r1, kvh, max(firstKey(r1), end), &q1_0, &q1_1, &q1_2, &a1_0, &a1_1, &a1_2, &s1_0, &s1_1, &s1_2);
    finishHead(r1, h0, &s1_0, &a1_0);
    if (GQ > 1u) { finishHead(r1, h0 + 1u, &s1_1, &a1_1); }
    if (GQ > 2u) { finishHead(r1, h0 + 2u, &s1_2, &a1_2); }
  }
  if (RB > 2u && nr > 2u) {
    walkRow(r2, kvh, max(firstKey(r2), end), &q2_0, &q2_1, &q2_2, &a2_0, &a2_1, &a2_2, &s2_0, &s2_1, &s2_2);
    finishHead(r2, h0, &s2_0, &a2_0);
    if (GQ > 1u) { finishHead(r2, h0 + 1u, &s2_1, &a2_1); }
    if (GQ > 2u) { finishHead(r2, h0 + 2u, &s2_2, &a2_2); }
  }
  if (RB > 3u && nr > 3u) {
    walkRow(r3, kvh, max(firstKey(r3), end), &q3_0, &q3_1, &q3_2, &a3_0, &a3_1, &a3_2, &s3_0, &s3_1, &s3_2);
    finishHead(r3, h0, &s3_0, &a3_0);
    if (GQ > 1u) { finishHead(r3, h0 + 1u, &s3_1, &a3_1); }
    if (GQ > 2u) { finishHead(r3, h0 + 2u, &s3_2, &a3_2); }
  }
}

// Two scratch arrays, so that a reduction's result (slot 0) is read long before the array is written again: reusing
// one array with a barrier between the read and the next write gave stale reads on llvmpipe (Mesa) in this shader.
fn reduceMax(t: u32) -> f32 {
  for (var w = WG / 2u; w > 0u; w = w / 2u) {
    if (t < w) { redMax[t] = max(redMax[t], redMax[t + w]); }
    workgroupBarrier();
  }
  return redMax[0];
}

fn reduceSum(t: u32) -> f32 {
  for (var w = WG / 2u; w > 0u; w = w / 2u) {
    if (t < w) { redSum[t] = redSum[t] + redSum[t + w]; }
    workgroupBarrier();
  }
  return redSum[0];
}

fn splitKeys(task: u32, t: u32) {
  // task comes from the workgroup id: uniform, so the early return keeps every barrier below in uniform control flow.
  if (task >= params.rows * params.nHeads) { return; }
  let r = task / params.nHeads;
  let h = task % params.nHeads;
  let kvh = h / params.group;
  let n = keyCount(r);
  let table = rowPath[r] * params.maxPages;
  if (t < HD4) { qs[t] = q[r * params.qStride4 + h * HD4 + t] * params.scaleLog2; }
  workgroupBarrier();
  // Thread t owns output vec4 `dim` for the keys k = sub, sub + subs, ... of each block.
  let dim = t % HD4;
  let sub = t / HD4;
  let subs = WG / HD4;
  var acc = vec4<f32>(0.0);
  var m = NEG_BIG;
  var l = 0.0;
  for (var b = firstKey(r); b < n; b += WG) {
    let j = b + t;
    var s = NEG_BIG;
    var vr = NO_ROW;
    if (j < n) {
      let page = pageTable[table + j / params.pageSize];
      if (page < params.pages) {
        let off = (j % params.pageSize) * HD4;
        let kRow = headBase(page, 0u, kvh) + off;
        var dot = vec4<f32>(0.0);
        for (var d = 0u; d < HD4; d++) { dot = fma(qs[d], kv[kRow + d], dot); }
        s = softcap(dot.x + dot.y + dot.z + dot.w);
        vr = headBase(page, 1u, kvh) + off;
      }
    }
    redMax[t] = s;
    workgroupBarrier();
    let mNew = max(m, reduceMax(t));
    let p = select(0.0, exp2(s - mNew), vr != NO_ROW);
    pw[t] = p;
    vrow[t] = vr;
    redSum[t] = p;
    workgroupBarrier();
    let c = exp2(m - mNew);
    l = l * c + reduceSum(t);
    m = mNew;
    acc = acc * c;
    if (sub < subs) {
      for (var k = sub; k < WG; k += subs) {
        let row = vrow[k];
        if (row != NO_ROW) { acc = fma(vec4<f32>(pw[k]), kv[row + dim], acc); }
      }
    }
    workgroupBarrier(); // pw, vrow and redMax are rewritten by the next block
  }
  part[t] = acc;
  workgroupBarrier();
  if (t < HD4) {
    var total = vec4<f32>(0.0);
    for (var k = 0u; k < subs; k++) { total = total + part[k * HD4 + t]; }
    // Merge the shared-prefix partials as perHead does; m and l are the same in every thread.
    let slots = partialSlots(r);
    for (var e = 0u; e < slots.y; e++) {
      let base = partialBase(slots.x + e, h);
      let ml = partials[base + HD4];
      let mNew = max(m, ml.x);
      let c = exp2(m - mNew);
      let c2 = exp2(ml.x - mNew);
      l = l * c + ml.y * c2;
      total = total * c + partials[base + t] * c2;
      m = mNew;
    }
    out[(r * params.nHeads + h) * HD4 + t] = total * select(0.0, 1.0 / l, l > 0.0);
  }
}

@compute @workgroup_size(WG)
fn main(
  @builtin(global_invocation_id) gid: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  if (SPLIT_KEYS) {
    splitKeys(wid.x + wid.y * nwg.x, lid);
  } else if (RB > 1u) {
    perHeadRows(gid.x + gid.y * nwg.x * WG);
  } else {
    perHead(gid.x + gid.y * nwg.x * WG);
  }
}
