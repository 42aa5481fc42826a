import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, PagePoolExhaustedError } from '../../src/errors.js';
import { PagePool } from '../../src/kv/page_pool.js';

describe('PagePool', () => {
  it('hands out ascending ids on a fresh pool and counts used/free', () => {
    const pool = new PagePool(5);
    expect(pool.freeCount).toBe(5);
    expect(pool.alloc(2)).toEqual([0, 1]);
    expect(pool.alloc(1)).toEqual([2]);
    expect(pool.usedCount).toBe(3);
    expect(pool.freeCount).toBe(2);
    expect(pool.freeList()).toEqual([3, 4]);
    expect([0, 1, 2, 3, 4].map((id) => pool.refCount(id))).toEqual([1, 1, 1, 0, 0]);
    expect(pool.alloc(0)).toEqual([]);
  });

  it('retain/release track owners; the last release puts the page at the tail of the free list (LRU)', () => {
    const pool = new PagePool(4);
    pool.alloc(3); // 0 1 2
    pool.retain(1);
    expect(pool.refCount(1)).toBe(2);
    expect(pool.release(1)).toBe(1);
    expect(pool.freeList()).toEqual([3]);
    expect(pool.release(1)).toBe(0);
    expect(pool.release(0)).toBe(0);
    // Freed most recently = reused last, so cached prefix pages live as long as possible.
    expect(pool.freeList()).toEqual([3, 1, 0]);
    expect(pool.alloc(2)).toEqual([3, 1]);
    expect(pool.freeList()).toEqual([0]);
  });

  it('take() pulls one free page out of the middle of the free list', () => {
    const pool = new PagePool(5);
    pool.take(2);
    expect(pool.refCount(2)).toBe(1);
    expect(pool.freeList()).toEqual([0, 1, 3, 4]);
    pool.take(4); // the tail
    pool.take(0); // the head
    expect(pool.freeList()).toEqual([1, 3]);
    expect(pool.freeCount).toBe(2);
    expect(pool.alloc(2)).toEqual([1, 3]);
    expect(pool.freeList()).toEqual([]);
    pool.release(3);
    expect(pool.freeList()).toEqual([3]);
  });

  it('throws PagePoolExhaustedError and leaves the state unchanged', () => {
    const pool = new PagePool(3);
    pool.alloc(2);
    const before = pool.snapshot();
    let err: unknown;
    try {
      pool.alloc(2);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PagePoolExhaustedError);
    expect((err as PagePoolExhaustedError).requested).toBe(2);
    expect((err as PagePoolExhaustedError).free).toBe(1);
    expect(pool.snapshot()).toEqual(before);
    expect(pool.alloc(1)).toEqual([2]);
  });

  it('rejects misuse with InvalidArgumentError: double release, retain/take of the wrong kind, bad ids', () => {
    const pool = new PagePool(2);
    const [a] = pool.alloc(1);
    pool.release(a);
    expect(() => pool.release(a)).toThrow(InvalidArgumentError);
    expect(() => pool.retain(a)).toThrow(InvalidArgumentError);
    pool.take(a);
    expect(() => pool.take(a)).toThrow(InvalidArgumentError);
    expect(() => pool.refCount(2)).toThrow(InvalidArgumentError);
    expect(() => pool.refCount(-1)).toThrow(InvalidArgumentError);
    expect(() => pool.alloc(-1)).toThrow(InvalidArgumentError);
    expect(() => new PagePool(0)).toThrow(InvalidArgumentError);
    expect(pool.snapshot()).toEqual({ refCounts: [1, 0], freeList: [1] });
  });
});
