// Causal paged attention: row r, query head h attends over positions first..positions[r] of its path, whose K/V live in
// pages pageTable[rowPath[r] * maxPages + pos / pageSize] at offset pos % pageSize. first = 0 for a global layer and
// positions[r] + 1 - window for a sliding-window layer (Mistral, Gemma 2/3: key j is seen when pos - j < window, as
// transformers masks it); the pages before the window stay in the path (the context is the model's, not the
// window's), so forks and the prefix cache need nothing special at the window's edge. Query head h reads kv head
// h / group (grouped-query attention). Softmax runs online (running max m and sum l, rescaled when m grows), so no
// invocation holds memory proportional to the context length. Scores are kept in log2 units: q is pre-multiplied by
// log2(e) * scale (scale = 1/sqrt(headDim), or the model's query scale) so that exp2 replaces exp.
// Logit soft-capping (Gemma 2): s <- cap * tanh(s / cap) on the natural-unit score; in log2 units the same map with
// cap * log2(e) (params.softcapLog2, 0 = off).
//
// Shared-prefix (cascade) attention: with params.cascade, row r's keys before cmeta[3r] (a page boundary) were attended
// by prefix_attention.wgsl, which left cmeta[3r + 2] partial softmax states at slots cmeta[3r + 1].. of `partials`; this
// kernel attends over the rest and merges those states with its own by log-sum-exp before normalising.
//
// This file holds what every variant shares (bindings, key ranges, soft-cap, the online softmax); the host prepends it
// to shaders/paged_attention.wgsl (the loop variants: per-head with private arrays, split-keys) or to a written-out
// per-head body generated for one (head dim, heads, rows) by src/kernels/paged_attention_written_out.ts.
override HD4: u32 = 16u;           // headDim / 4 (the host guards headDim % 4 == 0 and headDim <= MAX_HEAD_DIM)
const NEG_BIG: f32 = -3.0e38;      // "no key yet": finite, so differences with it never make a NaN

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;        // (rows, qStride) f32: q heads at the row's start
@group(0) @binding(2) var<storage, read> kv: array<vec4<f32>>;       // (pages, 2, kvHeads, pageSize, headDim) f32
@group(0) @binding(3) var<storage, read> rowPath: array<u32>;        // (rows) u32 step path slot
@group(0) @binding(4) var<storage, read> positions: array<u32>;      // (rows) u32 absolute position
@group(0) @binding(5) var<storage, read> pageTable: array<u32>;      // (P, maxPages) u32 page ids
@group(0) @binding(6) var<storage, read_write> out: array<vec4<f32>>; // (rows, nHeads * headDim) f32
@group(0) @binding(7) var<storage, read> cmeta: array<u32>;           // (rows, 3) u32 [ownStart, slot0, slots] when params.cascade
@group(0) @binding(8) var<storage, read> partials: array<vec4<f32>>; // (slots, nHeads, HD4 + 1): acc, then (m, l, 0, 0)

/** Keys the row sees end before this: its position plus one, capped by what the page-table width can address. */
fn keyCount(r: u32) -> u32 {
  return min(positions[r] + 1u, params.maxPages * params.pageSize);
}

/**
 * The first key this kernel reads for the row: 0, or the oldest position inside a sliding window (params.window > 0),
 * and never one the row's cascade partials cover.
 */
fn firstKey(r: u32) -> u32 {
  let p = positions[r] + 1u;
  let own = select(0u, cmeta[3u * r], params.cascade != 0u);
  return max(own, select(0u, p - min(p, params.window), params.window > 0u));
}

/** The row's cascade partials: first slot and count (none without params.cascade). */
fn partialSlots(r: u32) -> vec2<u32> {
  if (params.cascade == 0u) { return vec2<u32>(0u, 0u); }
  return vec2<u32>(cmeta[3u * r + 1u], cmeta[3u * r + 2u]);
}

/** vec4 index of the partial state of (slot, head): acc at +0..HD4-1, (m, l) at +HD4. */
fn partialBase(slot: u32, h: u32) -> u32 {
  return (slot * params.nHeads + h) * (HD4 + 1u);
}

/** Soft-capped score in log2 units: c * tanh(s / c), tanh from exp(-2|x|) <= 1 so it never overflows. */
fn softcap(s: f32) -> f32 {
  if (params.softcapLog2 <= 0.0 || s <= NEG_BIG) { return s; }
  let c = params.softcapLog2;
  let e = exp(-2.0 * abs(s / c));
  return c * sign(s) * (1.0 - e) / (1.0 + e);
}

/** vec4 index of (page, which: 0 = K / 1 = V, kvHead, offset 0, d 0) in the pool. */
fn headBase(page: u32, which: u32, kvh: u32) -> u32 {
  return ((page * 2u + which) * params.kvHeads + kvh) * params.pageSize * HD4;
}

// The running state of one query head in the per-head variants: the softmax's max m and sum l, kept beside its sums.
struct HeadState { m: f32, l: f32 }

/** One score into a head's state: the new max (rescaling factor c for what was summed) and the key's weight p. */
fn online(st: ptr<function, HeadState>, s: f32) -> vec2<f32> {
  var c = 1.0;
  if (s > (*st).m) {
    // The running max grows: rescale what was summed under the old max (exp2(NEG_BIG - s) = 0 the first time).
    c = exp2((*st).m - s);
    (*st).l = (*st).l * c;
    (*st).m = s;
  }
  let p = exp2(s - (*st).m);
  (*st).l = (*st).l + p;
  return vec2<f32>(c, p);
}

/**
 * Keys rows a and b may walk together: whole pages from the first, with the same page id in both tables and every
 * key of them seen by both rows. None in a sliding-window layer or with cascade partials (a row's first key is not 0).
 */
fn sharedKeys(a: u32, b: u32) -> u32 {
  if (params.window > 0u || params.cascade != 0u) { return 0u; }
  let ta = rowPath[a] * params.maxPages;
  let tb = rowPath[b] * params.maxPages;
  let n = min(keyCount(a), keyCount(b));
  var end = 0u;
  loop {
    if (end + params.pageSize > n) { break; }
    let k = end / params.pageSize;
    if (pageTable[ta + k] != pageTable[tb + k]) { break; }
    end += params.pageSize;
  }
  return end;
}
