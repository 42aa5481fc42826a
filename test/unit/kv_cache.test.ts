import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, PagePoolExhaustedError } from '../../src/errors.js';
import { KvCache } from '../../src/kv/kv_cache.js';

const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);

function refCounts(kv: KvCache): number[] {
  return range(kv.numPages).map((p) => kv.refCount(p));
}

describe('KvCache append', () => {
  it('reserves slots page*pageSize+offset, allocating pages only when the tail is full', () => {
    const kv = new KvCache({ numPages: 8, pageSize: 4 });
    const a = kv.createPath();
    const b = kv.createPath();
    expect(kv.length(a)).toBe(0);
    expect(kv.pages(a)).toEqual([]);
    expect(kv.append(a, [10, 11, 12, 13, 14, 15]).slots).toEqual([0, 1, 2, 3, 4, 5]);
    expect(kv.pages(a)).toEqual([0, 1]);
    expect(kv.append(b, [20, 21, 22]).slots).toEqual([8, 9, 10]);
    expect(kv.append(a, [16, 17]).slots).toEqual([6, 7]); // fills page 1, no new page
    expect(kv.pages(a)).toEqual([0, 1]);
    expect(kv.append(a, [18]).slots).toEqual([12]); // page 3
    expect(kv.pages(a)).toEqual([0, 1, 3]);
    expect(kv.tokens(a)).toEqual(range(9, 10));
    expect(kv.append(a, []).slots).toEqual([]);
    expect(refCounts(kv)).toEqual([1, 1, 1, 1, 0, 0, 0, 0]);
    expect(kv.usedCount).toBe(4);
    expect(kv.pagesPeak).toBe(4);
  });

  it('is atomic when the pool cannot serve it', () => {
    const kv = new KvCache({ numPages: 3, pageSize: 4 });
    const a = kv.createPath();
    kv.append(a, range(6)); // pages 0, 1
    const before = kv.snapshot();
    expect(() => kv.append(a, range(7))).toThrow(PagePoolExhaustedError); // 13 tokens need 4 pages, 1 free
    expect(kv.snapshot()).toEqual(before);
    expect(kv.append(a, range(6)).slots).toEqual([6, 7, 8, 9, 10, 11]);
    expect(kv.freeCount).toBe(0);
  });

  it('rejects bad token ids and unknown paths without changing anything', () => {
    const kv = new KvCache({ numPages: 4, pageSize: 4 });
    const a = kv.createPath();
    kv.append(a, [1, 2]);
    const before = kv.snapshot();
    expect(() => kv.append(a, [3, -1])).toThrow(InvalidArgumentError);
    expect(() => kv.append(a, [1.5])).toThrow(InvalidArgumentError);
    expect(() => kv.append(a, [2 ** 32])).toThrow(InvalidArgumentError);
    expect(() => kv.append(99, [1])).toThrow(InvalidArgumentError);
    expect(() => kv.fork(a, 3)).toThrow(InvalidArgumentError);
    expect(() => kv.fork(a, -1)).toThrow(InvalidArgumentError);
    expect(kv.snapshot()).toEqual(before);
    kv.free(a);
    expect(() => kv.free(a)).toThrow(InvalidArgumentError);
    expect(() => kv.tokens(a)).toThrow(InvalidArgumentError);
  });
});

describe('KvCache fork', () => {
  // Parent: 10 tokens, pageSize 4 -> pages [0, 1, 2], page 2 holds tokens 8 and 9.
  function parent10() {
    const kv = new KvCache({ numPages: 12, pageSize: 4 });
    const p = kv.createPath();
    kv.append(p, range(10, 100));
    return { kv, p };
  }

  it('at the tail inside a page: shares the full pages, copies the partial tail into a new page', () => {
    const { kv, p } = parent10();
    const { child, copies } = kv.fork(p);
    expect(copies).toEqual([{ src: 2, dst: 3 }]);
    expect(kv.pages(child)).toEqual([0, 1, 3]);
    expect(kv.tokens(child)).toEqual(kv.tokens(p));
    expect(refCounts(kv).slice(0, 5)).toEqual([2, 2, 1, 1, 0]);
    expect(kv.copiesMade).toBe(1);
    // Both keep writing into their own partial tails, never into a shared page.
    expect(kv.append(p, [1]).slots).toEqual([2 * 4 + 2]);
    expect(kv.append(child, [2]).slots).toEqual([3 * 4 + 2]);
  });

  it('at a page boundary: shares every page, no copy, the next append opens a fresh page', () => {
    const { kv, p } = parent10();
    const { child, copies } = kv.fork(p, 8);
    expect(copies).toEqual([]);
    expect(kv.pages(child)).toEqual([0, 1]);
    expect(kv.tokens(child)).toEqual(range(8, 100));
    expect(refCounts(kv).slice(0, 4)).toEqual([2, 2, 1, 0]);
    expect(kv.append(child, [7]).slots).toEqual([12]); // page 3
    expect(kv.pages(child)).toEqual([0, 1, 3]);
    expect(kv.copiesMade).toBe(0);
  });

  it('at an earlier position inside a page: copies the page holding token atLength-1', () => {
    const { kv, p } = parent10();
    const { child, copies } = kv.fork(p, 5); // token 4 is in page 1
    expect(copies).toEqual([{ src: 1, dst: 3 }]);
    expect(kv.pages(child)).toEqual([0, 3]);
    expect(kv.tokens(child)).toEqual(range(5, 100));
    expect(refCounts(kv).slice(0, 4)).toEqual([2, 1, 1, 1]);
    // The child overwrites offsets 1..3 of its copy (stale tokens 5..7 of the parent), not the parent's page.
    expect(kv.append(child, [1, 2, 3, 4]).slots).toEqual([13, 14, 15, 16]);
    expect(kv.pages(child)).toEqual([0, 3, 4]);
  });

  it('at 0 gives an empty child with no pages; at the very start of the second page shares one page', () => {
    const { kv, p } = parent10();
    const empty = kv.fork(p, 0);
    expect(empty.copies).toEqual([]);
    expect(kv.pages(empty.child)).toEqual([]);
    expect(kv.length(empty.child)).toBe(0);
    const one = kv.fork(p, 4);
    expect(kv.pages(one.child)).toEqual([0]);
    expect(one.copies).toEqual([]);
    expect(kv.append(empty.child, [5]).slots).toEqual([12]);
  });

  it('of a 500-token path allocates at most one page and lists at most one copy', () => {
    const kv = new KvCache({ numPages: 64, pageSize: 16 });
    const p = kv.createPath();
    kv.append(p, range(500));
    expect(kv.usedCount).toBe(32); // 31 full pages + 4 tokens
    for (const at of [500, 499, 496, 480, 17, 16, 1]) {
      const used = kv.usedCount;
      const { child, copies } = kv.fork(p, at);
      const partial = at % 16 !== 0;
      expect(kv.usedCount - used).toBe(partial ? 1 : 0);
      expect(copies.length).toBe(partial ? 1 : 0);
      expect(kv.pages(child).length).toBe(Math.ceil(at / 16));
      kv.free(child);
      expect(kv.usedCount).toBe(used);
    }
  });

  it('N forks at position P use ceil(P/ps) shared pages + at most N tails, plus their growth', () => {
    const ps = 16;
    for (const P of [37, 48]) {
      const kv = new KvCache({ numPages: 200, pageSize: ps });
      const root = kv.createPath();
      kv.append(root, range(P, 1000));
      const N = 9;
      const children = range(N).map(() => kv.fork(root, P).child);
      const tails = P % ps === 0 ? 0 : N;
      expect(kv.usedCount).toBe(Math.ceil(P / ps) + tails);
      for (const page of kv.pages(root).slice(0, Math.floor(P / ps))) expect(kv.refCount(page)).toBe(N + 1);
      // Growth: each child writes 20 more tokens.
      for (const c of children) kv.append(c, range(20));
      const growth = N * (Math.ceil((P + 20) / ps) - Math.ceil(P / ps));
      expect(kv.usedCount).toBe(Math.ceil(P / ps) + tails + growth);
      expect(kv.pendingCopies.length).toBe(tails);
      expect(kv.drainCopies().length).toBe(tails);
      expect(kv.drainCopies()).toEqual([]);
      for (const c of children) kv.free(c);
      expect(kv.usedCount).toBe(Math.ceil(P / ps));
      expect(kv.pagesPeak).toBe(Math.ceil(P / ps) + tails + growth);
    }
  });

  it('is atomic when no page is left for the tail copy; a boundary fork still succeeds', () => {
    const kv = new KvCache({ numPages: 3, pageSize: 4 });
    const p = kv.createPath();
    kv.append(p, range(10)); // pages 0 1 2, none free
    const before = kv.snapshot();
    expect(() => kv.fork(p, 9)).toThrow(PagePoolExhaustedError);
    expect(kv.snapshot()).toEqual(before);
    const { child } = kv.fork(p, 8);
    expect(kv.pages(child)).toEqual([0, 1]);
  });

  it('free releases pages; shared pages survive until their last owner goes', () => {
    const { kv, p } = parent10();
    const { child } = kv.fork(p, 6); // shares page 0, copies page 1 -> 3
    const grand = kv.fork(child).child; // shares page 0, copies page 3 -> 4
    expect(kv.pendingCopies).toEqual([
      { src: 1, dst: 3 },
      { src: 3, dst: 4 },
    ]);
    expect(refCounts(kv).slice(0, 6)).toEqual([3, 1, 1, 1, 1, 0]);
    kv.free(p);
    expect(refCounts(kv).slice(0, 6)).toEqual([2, 0, 0, 1, 1, 0]);
    kv.free(child);
    expect(refCounts(kv).slice(0, 6)).toEqual([1, 0, 0, 0, 1, 0]);
    // The queue keeps both copies, in order: the second reads the first's destination.
    expect(kv.drainCopies()).toEqual([
      { src: 1, dst: 3 },
      { src: 3, dst: 4 },
    ]);
    kv.free(grand);
    expect(kv.usedCount).toBe(0);
    expect(kv.freeCount).toBe(12);
    expect(kv.pagesPeak).toBe(5);
  });
});
