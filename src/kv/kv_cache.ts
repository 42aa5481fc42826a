// Per-path page tables over the page pool: the host half of the paged KV cache. Pure data; the GPU half is a buffer
// (pages, 2, kvHeads, pageSize, headDim) indexed by the page ids handed out here.
//
// What must stay true (checked by test/unit/kv_properties.test.ts after every command of random sequences):
// - a path of length L holds ceil(L / pageSize) pages; token i lives at slot pages[i / pageSize] * pageSize + i % pageSize;
// - each page's refCount is the number of page tables holding it; the free list holds exactly the pages at refCount 0
//   (pages still cached for prefix reuse are free);
// - a page is written (append) only while its refCount is 1: shared pages are always full, so a path's next token
//   goes to its own partial tail or to a new page. fork copies the partial tail instead of sharing it;
// - every operation either succeeds or throws leaving the whole state as it was (PagePoolExhaustedError included).

import { InvalidArgumentError } from '../errors.js';
import { PagePool } from './page_pool.js';
import { type ChainHashFn, type ChainLink, PrefixCache, type PrefixCacheEntrySnapshot } from './prefix_cache.js';

/** A whole-page copy for the GPU to run, in list order, before the next step's forward. */
export interface PageCopy {
  src: number;
  dst: number;
}

export interface KvCacheOptions {
  /** Pages in the pool; the GPU KV buffer holds this many pages. */
  numPages: number;
  /** Tokens per page (default 16). */
  pageSize?: number;
  /** Hash full pages so new prompts reuse cached prefixes (default true). */
  prefixCaching?: boolean;
  /** Replaces the chained page hash; tests inject a colliding one to prove collisions cannot corrupt. */
  hash?: ChainHashFn;
  /** Called for every slot `append` reserves, with the page's refCount at that moment (instrumentation for tests). */
  onSlotWrite?: (page: number, offset: number, refCount: number) => void;
}

interface PathRecord {
  readonly tokens: number[]; // (L) every token whose K/V is in the cache or scheduled in the step being built
  readonly pages: number[]; // (ceil(L / pageSize)) the page table, append-only
  readonly chain: ChainLink[]; // (floor(L / pageSize)) prefix-cache links of the full pages; empty without caching
}

export interface KvCacheSnapshot {
  pool: { refCounts: number[]; freeList: number[] };
  paths: { id: number; tokens: number[]; pages: number[]; chain: ChainLink[] }[];
  pendingCopies: PageCopy[];
  prefix: { nextCid: number; entries: PrefixCacheEntrySnapshot[] } | null;
  counters: { nextPath: number; copiesMade: number; pagesPeak: number; prefixHitPages: number };
}

export class KvCache {
  readonly pageSize: number;
  private readonly pool: PagePool;
  private readonly prefix: PrefixCache | null;
  private readonly onSlotWrite: KvCacheOptions['onSlotWrite'];
  private readonly paths = new Map<number, PathRecord>();
  private pending: PageCopy[] = [];
  private nextPath = 0;
  private copies = 0;
  private peak = 0;
  private hitPages = 0;

  constructor(options: KvCacheOptions) {
    const pageSize = options.pageSize ?? 16;
    if (!Number.isSafeInteger(pageSize) || pageSize < 1) {
      throw new InvalidArgumentError(`KvCache pageSize must be a positive integer, got ${pageSize}.`);
    }
    this.pageSize = pageSize;
    this.pool = new PagePool(options.numPages);
    if (options.numPages * pageSize > 2 ** 32) {
      throw new InvalidArgumentError(`KvCache: numPages * pageSize must fit in u32 slots; use fewer or smaller pages.`);
    }
    this.prefix = options.prefixCaching === false ? null : new PrefixCache(options.hash);
    this.onSlotWrite = options.onSlotWrite;
  }

  get numPages(): number {
    return this.pool.numPages;
  }
  /** Pages at refCount 0, cached prefix pages included (they are handed out when nothing else is free). */
  get freeCount(): number {
    return this.pool.freeCount;
  }
  get usedCount(): number {
    return this.pool.usedCount;
  }
  /** Page copies listed by forks so far (whether or not they were drained). */
  get copiesMade(): number {
    return this.copies;
  }
  /** The most pages ever in use at once. */
  get pagesPeak(): number {
    return this.peak;
  }
  /** Pages taken from the prefix cache by createPathWithPrefix so far. */
  get prefixHitPages(): number {
    return this.hitPages;
  }
  /** Pages holding a prefix-cache entry right now (in use or free). */
  get cachedPages(): number {
    return this.prefix ? this.prefix.size : 0;
  }

  refCount(page: number): number {
    return this.pool.refCount(page);
  }
  /** The free list, next-allocated first. O(free); for tests and debugging. */
  freeList(): number[] {
    return this.pool.freeList();
  }
  /** Whether `page` still holds a prefix-cache entry. */
  isCached(page: number): boolean {
    return this.prefix !== null && this.prefix.has(page);
  }

  /**
   * Whether one of the next `n` pages the pool hands out still holds a prefix-cache entry (which taking it would
   * evict). Pipelined steps do not speculate onto such a page: an undone row would give it back without its entry.
   */
  nextAllocEvicts(n: number): boolean {
    const prefix = this.prefix;
    return prefix !== null && this.pool.peekFree(n).some((page) => prefix.has(page));
  }

  has(path: number): boolean {
    return this.paths.has(path);
  }
  /** Live path ids, ascending. */
  pathIds(): number[] {
    return [...this.paths.keys()].sort((a, b) => a - b);
  }
  tokens(path: number): readonly number[] {
    return this.get(path).tokens;
  }
  length(path: number): number {
    return this.get(path).tokens.length;
  }
  pages(path: number): readonly number[] {
    return this.get(path).pages;
  }

  /** An empty path (no tokens, no pages). */
  createPath(): number {
    const id = this.nextPath++;
    this.paths.set(id, { tokens: [], pages: [], chain: [] });
    return id;
  }

  /**
   * A path holding the longest cached run of leading full pages of `prompt`. At most floor((len - 1) / pageSize)
   * pages are reused so that the last prompt token is still computed (its logits pick the first new token). The
   * path's tokens are the reused ones; the caller appends the rest. Allocates no page, so it cannot exhaust the pool.
   */
  createPathWithPrefix(prompt: readonly number[]): { path: number; reusedTokens: number } {
    assertTokenIds(prompt);
    const ps = this.pageSize;
    const pages: number[] = [];
    const chain: ChainLink[] = [];
    if (this.prefix) {
      const maxPages = Math.max(0, Math.floor((prompt.length - 1) / ps));
      for (let k = 0; k < maxPages; k++) {
        const hit = this.prefix.match(k === 0 ? null : chain[k - 1], prompt, k * ps, (k + 1) * ps);
        if (!hit) break;
        pages.push(hit.page);
        chain.push(hit.link);
      }
      for (const page of pages) {
        if (this.pool.refCount(page) === 0) this.pool.take(page);
        else this.pool.retain(page);
      }
      this.hitPages += pages.length;
      this.notePeak();
    }
    const reusedTokens = pages.length * ps;
    const path = this.nextPath++;
    this.paths.set(path, { tokens: prompt.slice(0, reusedTokens), pages, chain });
    return { path, reusedTokens };
  }

  /** New pages `append(path, n tokens)` would allocate. */
  pagesNeeded(path: number, n: number): number {
    const rec = this.get(path);
    return Math.ceil((rec.tokens.length + n) / this.pageSize) - rec.pages.length;
  }

  /**
   * Reserves one slot per new token (slot = page * pageSize + offset), allocating pages as needed. Atomic: when the
   * pool cannot serve it, throws PagePoolExhaustedError and nothing changes. `register: false` leaves pages that
   * become full out of the prefix cache until registerFull() (a speculative row whose token is not known yet: see
   * setToken and truncate). `fresh`: pages allocated.
   */
  append(path: number, tokenIds: readonly number[], options: { register?: boolean } = {}): { slots: number[]; fresh: number } {
    const rec = this.get(path);
    assertTokenIds(tokenIds);
    const ps = this.pageSize;
    const len = rec.tokens.length;
    if (len % ps !== 0) {
      const tail = rec.pages[rec.pages.length - 1];
      if (this.pool.refCount(tail) !== 1) {
        throw new Error(`KvCache: partial tail page ${tail} of path ${path} is shared (internal invariant broken).`);
      }
    }
    const fresh = this.allocPages(this.pagesNeeded(path, tokenIds.length));
    for (const page of fresh) rec.pages.push(page);
    const slots: number[] = [];
    for (let i = 0; i < tokenIds.length; i++) {
      const pos = len + i;
      const page = rec.pages[Math.floor(pos / ps)];
      const offset = pos % ps;
      this.onSlotWrite?.(page, offset, this.pool.refCount(page));
      slots.push(page * ps + offset);
      rec.tokens.push(tokenIds[i]);
    }
    if (options.register !== false) this.registerFull(path);
    return { slots, fresh: fresh.length };
  }

  /**
   * Enters the path's full pages among its first `length` tokens (default all) that are not in its prefix chain yet
   * into the prefix cache.
   */
  registerFull(path: number, length?: number): void {
    if (!this.prefix) return;
    const rec = this.get(path);
    const ps = this.pageSize;
    const full = Math.floor(Math.min(length ?? rec.tokens.length, rec.tokens.length) / ps);
    for (let k = rec.chain.length; k < full; k++) {
      rec.chain.push(this.prefix.register(rec.pages[k], k === 0 ? null : rec.chain[k - 1], rec.tokens, k * ps, (k + 1) * ps));
    }
  }

  /**
   * Sets the token at position `pos` of the path: the token of a row appended with `register: false` before it was
   * sampled (pipelined steps). The page holding it must not be in the prefix cache yet.
   */
  setToken(path: number, pos: number, token: number): void {
    const rec = this.get(path);
    assertTokenIds([token]);
    if (!Number.isInteger(pos) || pos < 0 || pos >= rec.tokens.length)
      throw new InvalidArgumentError(`setToken: position ${pos} is outside path ${path} (length ${rec.tokens.length}).`);
    if (Math.floor(pos / this.pageSize) < rec.chain.length)
      throw new Error(`KvCache.setToken: page of position ${pos} of path ${path} is registered already (internal invariant broken).`);
    rec.tokens[pos] = token;
  }

  /**
   * Shortens the path to `length` tokens: undoes appends (made with `register: false`) whose step was discarded. Pages
   * past ceil(length / pageSize) go back to the head of the free list (PagePool.unalloc); their old prefix-cache
   * entries are gone (append evicted them and the discarded step may have written them). Undo the appends of several
   * paths in reverse order to give the pool back its order.
   */
  truncate(path: number, length: number): void {
    const rec = this.get(path);
    if (!Number.isInteger(length) || length < 0 || length > rec.tokens.length)
      throw new InvalidArgumentError(`truncate: length must be an integer in [0, ${rec.tokens.length}], got ${length}.`);
    if (rec.chain.length > Math.floor(length / this.pageSize))
      throw new Error(`KvCache.truncate: path ${path} has registered pages past length ${length} (internal invariant broken).`);
    const keep = Math.ceil(length / this.pageSize);
    for (let k = keep; k < rec.pages.length; k++)
      if (this.pool.refCount(rec.pages[k]) !== 1) throw new Error(`KvCache.truncate: page ${rec.pages[k]} of path ${path} is shared (internal invariant broken).`);
    rec.tokens.length = length;
    while (rec.pages.length > keep) this.pool.unalloc(rec.pages.pop()!);
  }

  /**
   * A child path holding the parent's first `atLength` tokens. Full pages among them are shared (refCount + 1); a
   * partial last page is not shared but copied into a new page, listed in `copies` (and queued for drainCopies).
   * Costs at most one page whatever the length. Atomic on exhaustion.
   * Never fork a path whose step has not run yet: queued copies run before the next step's K/V writes, so tokens
   * appended for a step in flight would be missing from the copied tail (the Scheduler refuses fork() of a path in
   * the plan in flight; paths outside it may fork).
   */
  fork(path: number, atLength?: number): { child: number; copies: PageCopy[] } {
    const rec = this.get(path);
    const at = atLength ?? rec.tokens.length;
    if (!Number.isInteger(at) || at < 0 || at > rec.tokens.length) {
      throw new InvalidArgumentError(`fork: atLength must be an integer in [0, ${rec.tokens.length}], got ${atLength}.`);
    }
    const full = Math.floor(at / this.pageSize);
    const partial = at % this.pageSize !== 0;
    const fresh = this.allocPages(partial ? 1 : 0);
    const pages = rec.pages.slice(0, full);
    for (const page of pages) this.pool.retain(page);
    const copies: PageCopy[] = [];
    if (partial) {
      const copy = { src: rec.pages[full], dst: fresh[0] };
      pages.push(copy.dst);
      copies.push(copy);
      this.pending.push({ ...copy });
      this.copies++;
    }
    const child = this.nextPath++;
    this.paths.set(child, { tokens: rec.tokens.slice(0, at), pages, chain: rec.chain.slice(0, full) });
    return { child, copies };
  }

  /** Releases the path's pages; pages at refCount 0 return to the free list (keeping any prefix-cache entry). */
  free(path: number): void {
    const rec = this.get(path);
    this.paths.delete(path);
    // Queued copies stay even when their destination is freed here: a later queued copy may read that page (a fork
    // of a fork), and running the queue in order before any K/V write is what makes it equal to copying at fork time.
    for (const page of rec.pages) this.pool.release(page);
  }

  /** Page copies queued by forks since the last drain, in order; the queue is emptied. */
  drainCopies(): PageCopy[] {
    const out = this.pending;
    this.pending = [];
    return out;
  }
  get pendingCopies(): readonly PageCopy[] {
    return this.pending;
  }

  /** A plain deep copy of the whole state, for deep-equality checks in tests and for debugging. */
  snapshot(): KvCacheSnapshot {
    return {
      pool: this.pool.snapshot(),
      paths: this.pathIds().map((id) => {
        const r = this.get(id);
        return { id, tokens: [...r.tokens], pages: [...r.pages], chain: r.chain.map((l) => ({ ...l })) };
      }),
      pendingCopies: this.pending.map((c) => ({ ...c })),
      prefix: this.prefix ? this.prefix.snapshot() : null,
      counters: { nextPath: this.nextPath, copiesMade: this.copies, pagesPeak: this.peak, prefixHitPages: this.hitPages },
    };
  }

  private get(path: number): PathRecord {
    const rec = this.paths.get(path);
    if (!rec) throw new InvalidArgumentError(`Unknown KV path ${path}: it was never created or has been freed.`);
    return rec;
  }

  /** Pops pages for new tokens; a popped page's old prefix-cache entry is dropped (lazy eviction). */
  private allocPages(n: number): number[] {
    const ids = this.pool.alloc(n);
    if (this.prefix) for (const id of ids) this.prefix.evict(id);
    this.notePeak();
    return ids;
  }

  private notePeak(): void {
    if (this.pool.usedCount > this.peak) this.peak = this.pool.usedCount;
  }
}

/** Token ids are u32 (they are uploaded as Uint32Array). Throws InvalidArgumentError naming the first bad one. */
export function assertTokenIds(tokenIds: readonly number[]): void {
  for (let i = 0; i < tokenIds.length; i++) {
    const t = tokenIds[i];
    if (!Number.isInteger(t) || t < 0 || t > 0xffffffff) {
      throw new InvalidArgumentError(`Token id ${t} at index ${i} is not an integer in [0, 2^32).`);
    }
  }
}
