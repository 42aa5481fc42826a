import { describe, expect, it } from 'vitest';
import { KvCache } from '../../src/kv/kv_cache.js';
import { type ChainHashFn, chainHash } from '../../src/kv/prefix_cache.js';

const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);

/** A request as the scheduler runs it: reuse what is cached, compute (append) the rest. */
function prefill(kv: KvCache, prompt: number[]) {
  const { path, reusedTokens } = kv.createPathWithPrefix(prompt);
  kv.append(path, prompt.slice(reusedTokens));
  return { path, reusedTokens };
}

describe('chainHash', () => {
  it('is a deterministic 53-bit integer that depends on the parent hash, the tokens and their order', () => {
    const t = [5, 6, 7, 8];
    const h = chainHash(0, t, 0, 4);
    expect(Number.isSafeInteger(h) && h >= 0).toBe(true);
    expect(chainHash(0, [9, 5, 6, 7, 8], 1, 5)).toBe(h);
    const others = [
      chainHash(1, t, 0, 4),
      chainHash(h, t, 0, 4),
      chainHash(0, [5, 6, 8, 7], 0, 4),
      chainHash(0, [5, 6, 7, 9], 0, 4),
      chainHash(0, t, 0, 3),
      chainHash(2 ** 40, t, 0, 4),
    ];
    expect(new Set([h, ...others]).size).toBe(7);
  });

  it('spreads 100k distinct pages without a collision', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 100_000; i++) seen.add(chainHash(i % 7, [i & 255, i >> 8, 3, i % 11], 0, 4));
    expect(seen.size).toBe(100_000);
  });
});

describe('prefix reuse across requests', () => {
  it('reuses the full leading pages of an identical prompt, sharing them (refCount 2)', () => {
    const kv = new KvCache({ numPages: 16, pageSize: 4 });
    const prompt = range(10, 50);
    const a = prefill(kv, prompt);
    expect(a.reusedTokens).toBe(0);
    expect(kv.pages(a.path)).toEqual([0, 1, 2]);
    expect(kv.cachedPages).toBe(2); // page 2 is partial: not cached
    const b = kv.createPathWithPrefix(prompt);
    expect(b.reusedTokens).toBe(8);
    expect(kv.pages(b.path)).toEqual([0, 1]);
    expect(kv.tokens(b.path)).toEqual(prompt.slice(0, 8));
    expect([0, 1, 2].map((p) => kv.refCount(p))).toEqual([2, 2, 1]);
    expect(kv.append(b.path, prompt.slice(8)).slots).toEqual([12, 13]); // its own page 3
    expect(kv.prefixHitPages).toBe(2);
  });

  it('never covers the whole prompt: the last token is always computed', () => {
    const kv = new KvCache({ numPages: 16, pageSize: 4 });
    prefill(kv, range(12));
    expect(kv.createPathWithPrefix(range(12)).reusedTokens).toBe(8); // floor(11/4) = 2 pages
    expect(kv.createPathWithPrefix(range(9)).reusedTokens).toBe(8);
    expect(kv.createPathWithPrefix(range(8)).reusedTokens).toBe(4);
    expect(kv.createPathWithPrefix(range(5)).reusedTokens).toBe(4);
    expect(kv.createPathWithPrefix(range(4)).reusedTokens).toBe(0);
    expect(kv.createPathWithPrefix([0]).reusedTokens).toBe(0);
    expect(kv.createPathWithPrefix([]).reusedTokens).toBe(0);
  });

  it('stops at the first page that differs, even when later pages are equal', () => {
    const kv = new KvCache({ numPages: 16, pageSize: 4 });
    prefill(kv, [1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 9]);
    expect(kv.createPathWithPrefix([1, 1, 1, 1, 2, 2, 2, 7, 3, 3, 3, 3, 9]).reusedTokens).toBe(4);
    expect(kv.createPathWithPrefix([1, 1, 1, 0, 2, 2, 2, 2, 3, 3, 3, 3, 9]).reusedTokens).toBe(0);
    expect(kv.createPathWithPrefix([1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4]).reusedTokens).toBe(12);
  });

  it('pages filled by decoding and by fork children are cached too', () => {
    const kv = new KvCache({ numPages: 16, pageSize: 4 });
    const a = prefill(kv, range(6)).path;
    const child = kv.fork(a).child; // copy of the partial tail
    kv.append(child, [70, 71]); // fills the copied page
    kv.append(a, [80, 81]);
    expect(kv.createPathWithPrefix([...range(6), 70, 71, 0]).reusedTokens).toBe(8);
    expect(kv.pages(kv.createPathWithPrefix([...range(6), 80, 81, 0]).path)).toEqual(kv.pages(a));
  });

  it('keeps the cache on freed pages; a hit takes the page back off the free list (refCount 1)', () => {
    const kv = new KvCache({ numPages: 6, pageSize: 4 });
    const prompt = range(9, 30);
    const a = prefill(kv, prompt);
    expect(kv.pages(a.path)).toEqual([0, 1, 2]);
    kv.free(a.path);
    expect(kv.freeCount).toBe(6);
    expect(kv.freeList()).toEqual([3, 4, 5, 0, 1, 2]);
    expect(kv.cachedPages).toBe(2);
    const b = kv.createPathWithPrefix(prompt);
    expect(b.reusedTokens).toBe(8);
    expect(kv.pages(b.path)).toEqual([0, 1]);
    expect([0, 1].map((p) => kv.refCount(p))).toEqual([1, 1]);
    expect(kv.freeList()).toEqual([3, 4, 5, 2]);
  });

  it('evicts lazily: a cached free page handed out for new tokens drops its entry (least recently freed first)', () => {
    const kv = new KvCache({ numPages: 4, pageSize: 4 });
    const p1 = prefill(kv, range(5, 10)).path; // pages 0 (cached), 1
    const p2 = prefill(kv, range(5, 20)).path; // pages 2 (cached), 3
    kv.free(p1);
    kv.free(p2);
    expect(kv.freeList()).toEqual([0, 1, 2, 3]);
    const x = kv.createPath();
    kv.append(x, range(3, 90)); // pops page 0 (and does not fill it): the p1 prefix is gone
    expect(kv.isCached(0)).toBe(false);
    expect(kv.isCached(2)).toBe(true);
    expect(kv.createPathWithPrefix(range(5, 10)).reusedTokens).toBe(0);
    expect(kv.createPathWithPrefix(range(5, 20)).reusedTokens).toBe(4);
  });

  it('a collision cannot hand out wrong K/V: every hash the same', () => {
    const constant: ChainHashFn = () => 42;
    const kv = new KvCache({ numPages: 16, pageSize: 2, hash: constant });
    const a = prefill(kv, [1, 2, 3, 4, 5]).path; // page 0 owns hash 42; page 1 collides, stays uncached
    expect(kv.cachedPages).toBe(1);
    expect(kv.createPathWithPrefix([1, 2, 3, 4, 5]).reusedTokens).toBe(2);
    expect(kv.createPathWithPrefix([1, 9, 3, 4, 5]).reusedTokens).toBe(0);
    expect(kv.createPathWithPrefix([3, 4, 3, 4, 5]).reusedTokens).toBe(0);
    expect(kv.pages(a)).toEqual([0, 1, 2]);
  });

  it('a collision cannot hand out wrong K/V: same page tokens after a different prefix', () => {
    // This hash ignores the parent: page [2,2,2,2] after [1,1,1,1] and after [3,3,3,3] collide.
    const parentBlind: ChainHashFn = (_parent, t, s, e) => chainHash(0, t, s, e);
    const kv = new KvCache({ numPages: 16, pageSize: 4, hash: parentBlind });
    prefill(kv, [1, 1, 1, 1, 2, 2, 2, 2, 9]);
    const b = prefill(kv, [3, 3, 3, 3, 2, 2, 2, 2, 9]);
    expect(b.reusedTokens).toBe(0);
    const c = kv.createPathWithPrefix([3, 3, 3, 3, 2, 2, 2, 2, 8]);
    // Tokens of page 1 match the cached [2,2,2,2] page, but that page's K/V was computed after [1,1,1,1].
    expect(c.reusedTokens).toBe(4);
    expect(kv.pages(c.path)).toEqual([kv.pages(b.path)[0]]);
    expect(kv.createPathWithPrefix([1, 1, 1, 1, 2, 2, 2, 2, 8]).reusedTokens).toBe(8);
  });

  it('can be switched off', () => {
    const kv = new KvCache({ numPages: 16, pageSize: 4, prefixCaching: false });
    prefill(kv, range(12));
    expect(kv.createPathWithPrefix(range(12)).reusedTokens).toBe(0);
    expect(kv.cachedPages).toBe(0);
  });
});
