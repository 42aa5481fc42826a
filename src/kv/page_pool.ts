// The KV page pool: page records (ids, refCounts) and the free list, and nothing else. KV memory lives on the GPU,
// indexed by page id; this file never sees it (DESIGN.md, convention 6). One owner mutates the free list: the pool.
//
// The free list is a doubly linked list threaded through two typed arrays, in LRU order: `alloc` pops from the head,
// `release` pushes to the tail. Pages freed most recently are reused last, so a page that still holds a cached prefix
// (prefix_cache.ts) survives as long as possible, and `take` can pull any one free page out of the middle in O(1).

import { InvalidArgumentError, PagePoolExhaustedError } from '../errors.js';

const NONE = -1;

export class PagePool {
  readonly numPages: number;
  private readonly refs: Uint32Array; // (numPages) refCount of each page; 0 <=> on the free list
  private readonly next: Int32Array; // (numPages) free-list successor, NONE at the tail or when in use
  private readonly prev: Int32Array; // (numPages) free-list predecessor, NONE at the head or when in use
  private head = NONE;
  private tail = NONE;
  private free = 0;

  constructor(numPages: number) {
    if (!Number.isSafeInteger(numPages) || numPages < 1) {
      throw new InvalidArgumentError(`PagePool needs a positive integer page count, got ${numPages}.`);
    }
    this.numPages = numPages;
    this.refs = new Uint32Array(numPages);
    this.next = new Int32Array(numPages).fill(NONE);
    this.prev = new Int32Array(numPages).fill(NONE);
    // Ascending ids on a fresh pool, so small scenarios get predictable page ids 0, 1, 2, ...
    for (let id = 0; id < numPages; id++) this.pushTail(id);
  }

  get freeCount(): number {
    return this.free;
  }

  get usedCount(): number {
    return this.numPages - this.free;
  }

  refCount(id: number): number {
    this.check(id);
    return this.refs[id];
  }

  /** `n` pages off the head of the free list, each at refCount 1. Throws with the pool unchanged if fewer are free. */
  alloc(n: number): number[] {
    if (!Number.isSafeInteger(n) || n < 0) {
      throw new InvalidArgumentError(`PagePool.alloc needs a non-negative integer count, got ${n}.`);
    }
    if (n > this.free) throw new PagePoolExhaustedError(n, this.free);
    const ids: number[] = [];
    for (let i = 0; i < n; i++) {
      const id = this.head;
      this.unlink(id);
      this.refs[id] = 1;
      ids.push(id);
    }
    return ids;
  }

  /** Takes one specific free page off the free list (refCount 0 -> 1): a prefix-cache hit on a freed page. */
  take(id: number): void {
    this.check(id);
    if (this.refs[id] !== 0) {
      throw new InvalidArgumentError(`PagePool.take: page ${id} is in use (refCount ${this.refs[id]}); retain it.`);
    }
    this.unlink(id);
    this.refs[id] = 1;
  }

  /** One more owner for a page in use. */
  retain(id: number): void {
    this.check(id);
    if (this.refs[id] === 0) {
      throw new InvalidArgumentError(`PagePool.retain: page ${id} is free; a free page is taken back with take().`);
    }
    this.refs[id]++;
  }

  /** One owner fewer; at refCount 0 the page goes to the tail of the free list. Returns the new refCount. */
  release(id: number): number {
    this.check(id);
    if (this.refs[id] === 0) {
      throw new InvalidArgumentError(`PagePool.release: page ${id} is already free (double release).`);
    }
    const rc = --this.refs[id];
    if (rc === 0) this.pushTail(id);
    return rc;
  }

  /**
   * Undoes alloc of a page nobody else took since (refCount 1 -> 0): it goes back to the head of the free list, so
   * the next alloc hands it out again, as if it had never been taken. Undo several in reverse allocation order.
   */
  unalloc(id: number): void {
    this.check(id);
    if (this.refs[id] !== 1) {
      throw new InvalidArgumentError(`PagePool.unalloc: page ${id} has refCount ${this.refs[id]}; only a page with one owner can be given back.`);
    }
    this.refs[id] = 0;
    this.pushHead(id);
  }

  /** The next `n` pages `alloc` would hand out, in that order (fewer when fewer are free). O(n). */
  peekFree(n: number): number[] {
    const ids: number[] = [];
    for (let id = this.head; id !== NONE && ids.length < n; id = this.next[id]) ids.push(id);
    return ids;
  }

  /** The free list from head (next to be allocated) to tail. O(free); for tests and debugging. */
  freeList(): number[] {
    const ids: number[] = [];
    for (let id = this.head; id !== NONE; id = this.next[id]) ids.push(id);
    return ids;
  }

  /** Plain copy of the whole state, deep-comparable: refCounts by id and the free list in order. */
  snapshot(): { refCounts: number[]; freeList: number[] } {
    return { refCounts: Array.from(this.refs), freeList: this.freeList() };
  }

  private check(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.numPages) {
      throw new InvalidArgumentError(`Page id ${id} is outside the pool (0..${this.numPages - 1}).`);
    }
  }

  private pushTail(id: number): void {
    this.prev[id] = this.tail;
    this.next[id] = NONE;
    if (this.tail === NONE) this.head = id;
    else this.next[this.tail] = id;
    this.tail = id;
    this.free++;
  }

  private pushHead(id: number): void {
    this.next[id] = this.head;
    this.prev[id] = NONE;
    if (this.head === NONE) this.tail = id;
    else this.prev[this.head] = id;
    this.head = id;
    this.free++;
  }

  private unlink(id: number): void {
    const p = this.prev[id];
    const n = this.next[id];
    if (p === NONE) this.head = n;
    else this.next[p] = n;
    if (n === NONE) this.tail = p;
    else this.prev[n] = p;
    this.prev[id] = NONE;
    this.next[id] = NONE;
    this.free--;
  }
}
