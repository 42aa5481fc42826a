// Float64 references for the KV write and paged attention kernels, and the plain causal attention of one head that
// the Llama reference forward shares with them.

/** The paged layout both kernels use; all sizes in elements. */
export interface PagedShape {
  nHeads: number; // Hq
  kvHeads: number; // Hkv
  headDim: number; // hd
  pageSize: number;
}

/** What the pool layout depends on. */
export type PoolShape = Pick<PagedShape, 'kvHeads' | 'headDim' | 'pageSize'>;

/** Element index of (page, which: 0 = K / 1 = V, kvHead, offset, 0) in a (pages, 2, Hkv, pageSize, hd) pool. */
export function poolIndex(s: PoolShape, page: number, which: number, head: number, offset: number): number {
  return (((page * 2 + which) * s.kvHeads + head) * s.pageSize + offset) * s.headDim;
}

/**
 * Copies every row's k and v heads out of `qkv` (rows, qkvStride) into a copy of `kv` (pages, 2, Hkv, pageSize, hd)
 * at slots[r] = page * pageSize + offset. Slots must be distinct: the GPU gives no order between rows writing one slot.
 */
export function kvWriteRef(
  s: PoolShape & { qkvStride: number; kOffset: number; vOffset: number },
  qkv: ArrayLike<number>, // (rows, qkvStride)
  slots: ArrayLike<number>, // (rows)
  kv: Float32Array, // (pages, 2, Hkv, pageSize, hd)
): Float32Array {
  const out = Float32Array.from(kv);
  for (let r = 0; r < slots.length; r++) {
    const page = Math.floor(slots[r] / s.pageSize);
    const off = slots[r] % s.pageSize;
    for (let which = 0; which < 2; which++) {
      const src0 = r * s.qkvStride + (which === 0 ? s.kOffset : s.vOffset);
      for (let h = 0; h < s.kvHeads; h++) {
        const dst = poolIndex(s, page, which, h, off);
        for (let d = 0; d < s.headDim; d++) out[dst + d] = qkv[src0 + h * s.headDim + d];
      }
    }
  }
  return out;
}

/** Per-layer attention switches: sliding window, score scale, logit soft-cap (see AttentionLayerOptions). */
export interface AttentionSwitches {
  /** A query at position p sees keys p - window + 1 .. p; 0 = all keys 0..p. */
  window?: number;
  /** Default 1 / sqrt(headDim). */
  scale?: number;
  /** score <- cap * tanh(score / cap) after scaling; 0 = off. */
  softcap?: number;
}

/**
 * softmax(q . k_j * scale) weighted sum of v_j over first <= j < n, in float64, added into `out` at `outAt`. `keyAt(j)`
 * and `valueAt(j)` give the element index of key / value j's first element in `k` / `v`. With a soft-cap, each score
 * becomes cap * tanh(score / cap) before the softmax (Gemma 2).
 */
export function attendHead(
  q: ArrayLike<number>,
  qAt: number,
  k: ArrayLike<number>,
  keyAt: (j: number) => number,
  v: ArrayLike<number>,
  valueAt: (j: number) => number,
  n: number,
  headDim: number,
  out: Float64Array,
  outAt: number,
  sw: AttentionSwitches & { first?: number } = {},
): void {
  const scale = sw.scale ?? 1 / Math.sqrt(headDim);
  const cap = sw.softcap ?? 0;
  const first = sw.first ?? 0;
  const scores = new Float64Array(n);
  let max = -Infinity;
  for (let j = first; j < n; j++) {
    const kj = keyAt(j);
    let s = 0;
    for (let d = 0; d < headDim; d++) s += q[qAt + d] * k[kj + d];
    scores[j] = cap > 0 ? cap * Math.tanh((s * scale) / cap) : s * scale;
    if (scores[j] > max) max = scores[j];
  }
  let sum = 0;
  for (let j = first; j < n; j++) {
    scores[j] = Math.exp(scores[j] - max);
    sum += scores[j];
  }
  for (let j = first; j < n; j++) {
    const w = scores[j] / sum;
    const vj = valueAt(j);
    for (let d = 0; d < headDim; d++) out[outAt + d] += w * v[vj + d];
  }
}

export interface PagedAttentionRefArgs {
  q: ArrayLike<number>; // (rows, qStride): q heads of row r start at r * qStride
  qStride: number;
  kv: ArrayLike<number>; // (pages, 2, Hkv, pageSize, hd)
  rowPath: ArrayLike<number>; // (rows)
  positions: ArrayLike<number>; // (rows)
  pageTable: ArrayLike<number>; // (P, maxPages)
  maxPages: number;
  rows: number;
}

/** First visible key of a query at `pos`: 0, or pos + 1 - window for a sliding-window layer. */
export function firstVisible(pos: number, window = 0): number {
  return window > 0 ? Math.max(0, pos + 1 - window) : 0;
}

/**
 * Causal attention of each row over positions first..positions[r] of its path, read through the page table
 * (first = 0, or the start of the row's sliding window).
 */
export function pagedAttentionRef(s: PagedShape, a: PagedAttentionRefArgs, sw: AttentionSwitches = {}): Float64Array {
  const { nHeads, kvHeads, headDim, pageSize } = s;
  const group = nHeads / kvHeads;
  const out = new Float64Array(a.rows * nHeads * headDim); // (rows, Hq*hd)
  for (let r = 0; r < a.rows; r++) {
    const table = a.rowPath[r] * a.maxPages;
    const at = (which: number, h: number) => (j: number) =>
      poolIndex(s, a.pageTable[table + Math.floor(j / pageSize)], which, h, j % pageSize);
    for (let h = 0; h < nHeads; h++) {
      const kvh = Math.floor(h / group);
      const qAt = r * a.qStride + h * headDim;
      const first = firstVisible(a.positions[r], sw.window);
      attendHead(a.q, qAt, a.kv, at(0, kvh), a.kv, at(1, kvh), a.positions[r] + 1, headDim, out, (r * nHeads + h) * headDim, {
        ...sw,
        first,
      });
    }
  }
  return out;
}

/**
 * The largest sum_i |q_i k_i| / sqrt(hd) over every (row, head, visible key): the conditioning of the scores, from which
 * a test derives the error an f32 dot product may make (about hd * 2^-24 times this).
 */
export function pagedScoreMagnitude(s: PagedShape, a: PagedAttentionRefArgs, scale = 1 / Math.sqrt(s.headDim)): number {
  const { nHeads, kvHeads, headDim, pageSize } = s;
  const group = nHeads / kvHeads;
  let worst = 0;
  for (let r = 0; r < a.rows; r++) {
    const table = a.rowPath[r] * a.maxPages;
    for (let h = 0; h < nHeads; h++) {
      const qAt = r * a.qStride + h * headDim;
      for (let j = 0; j <= a.positions[r]; j++) {
        const kAt = poolIndex(s, a.pageTable[table + Math.floor(j / pageSize)], 0, Math.floor(h / group), j % pageSize);
        let sum = 0;
        for (let d = 0; d < headDim; d++) sum += Math.abs(a.q[qAt + d] * a.kv[kAt + d]);
        worst = Math.max(worst, sum);
      }
    }
  }
  return worst * scale;
}
