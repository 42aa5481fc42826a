// The rows of a speculative plan (pipelined steps; Scheduler.planAhead decides whether there is one): one decode row
// per path, at the position of the token the plan in flight samples for it. Pure data over KvCache.
import type { KvCache } from '../kv/kv_cache.js';
import type { PathRecord } from './path.js';
import type { StepPlan } from './step_plan.js';

/**
 * Appends one placeholder token (0, kept out of the prefix cache until the real token is known) to each path of
 * `order`, in that order, and returns the plan of those rows: feed[r] is the sampling row of the plan in flight whose
 * first draw row r feeds (the GPU copies it into tokenIds), rows maps path id -> the row's position. The caller has
 * checked that the pool holds the new pages.
 */
export function aheadPlan(kv: KvCache, order: readonly { rec: PathRecord; s: number }[]): { plan: StepPlan; feed: Uint32Array; rows: Map<number, number> } {
  const P = order.length;
  const tokenIds = new Uint32Array(P); // (R = P) placeholders: the GPU writes each row's token
  const positions = new Uint32Array(P); // (R)
  const rowPath = new Uint32Array(P); // (R)
  const slots = new Uint32Array(P); // (R)
  const seqLen = new Uint32Array(P); // (P)
  const sampleRow = new Uint32Array(P); // (S = P)
  const samplePath = new Uint32Array(P); // (S)
  const feed = new Uint32Array(P); // (R) the previous plan's sampling row whose first draw row r feeds
  const rows = new Map<number, number>();
  let maxPages = 0;
  order.forEach(({ rec, s }, p) => {
    const pos = rec.tokens.length;
    const { slots: got } = kv.append(rec.kvPath, [0], { register: false });
    positions[p] = pos;
    rowPath[p] = p;
    slots[p] = got[0];
    rec.computed = pos + 1;
    seqLen[p] = pos + 1;
    sampleRow[p] = p;
    samplePath[p] = p;
    feed[p] = s;
    rows.set(rec.id, pos);
    maxPages = Math.max(maxPages, kv.pages(rec.kvPath).length);
  });
  const pageTable = new Uint32Array(P * maxPages); // (P, maxPages), unused entries 0
  order.forEach(({ rec }, p) => pageTable.set(kv.pages(rec.kvPath), p * maxPages));
  const plan: StepPlan = {
    rows: P,
    paths: P,
    samples: P,
    maxPages,
    tokenIds,
    positions,
    rowPath,
    slots,
    pageTable,
    seqLen,
    sampleRow,
    samplePath,
    pathIds: order.map((o) => o.rec.id),
    copies: kv.drainCopies(),
  };
  return { plan, feed, rows };
}
