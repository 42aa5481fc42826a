// Prefix reuse across separate requests, vLLM's way: every FULL page is indexed by a hash chained with the hash of
// the page before it, so equal hashes mean (almost surely) equal token prefixes, and a new prompt reuses the longest
// run of leading pages whose chained hashes are cached.
//
// "Almost surely" is not enough: a hash collision must never hand a path K/V computed for other tokens. So each cached
// page also records its own tokens and the content id (cid) of the page before it, and a hit must match both. Content
// ids are handed out once per distinct verified (parent cid, tokens) pair and never reused, so by induction a matched
// run of pages holds exactly the prompt's tokens. A collision only costs a miss.
//
// Cached pages keep their entry after their last owner frees them (they sit on the pool's free list, counted as free);
// the entry is dropped lazily, when the pool hands the page out for new tokens (KvCache calls `evict`).

/** 53-bit hash of one page's tokens chained with its parent page's hash (cyrb53's two 32-bit lanes, seeded by it). */
export type ChainHashFn = (parentHash: number, tokens: ArrayLike<number>, start: number, end: number) => number;

export const chainHash: ChainHashFn = (parentHash, tokens, start, end) => {
  let h1 = 0xdeadbeef ^ (parentHash >>> 0);
  let h2 = 0x41c6ce57 ^ Math.floor(parentHash / 4294967296);
  for (let i = start; i < end; i++) {
    const t = tokens[i];
    h1 = Math.imul(h1 ^ t, 2654435761);
    h2 = Math.imul(h2 ^ t, 1597334677);
  }
  h1 ^= end - start;
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (0x1fffff & h2) + (h1 >>> 0);
};

/** The hash seeding the first page of every path. */
export const ROOT_HASH = 0;
/** The content id standing for "nothing before this page". */
const ROOT_CID = 0;

/**
 * What a path knows about one of its full pages: the chained hash, and the content id when the content is verified
 * (the page, or another page with the same verified content, is in the cache), else -1. Once a link is -1 every later
 * page of that path is -1 too: its parent cannot be named, so it could never be matched.
 */
export interface ChainLink {
  readonly hash: number;
  readonly cid: number;
}

interface Entry {
  readonly page: number;
  readonly hash: number;
  readonly cid: number;
  readonly parentCid: number;
  readonly tokens: Uint32Array; // (pageSize) the page's tokens, compared on every hit
}

export interface PrefixCacheEntrySnapshot {
  page: number;
  hash: number;
  cid: number;
  parentCid: number;
  tokens: number[];
}

export class PrefixCache {
  private readonly byHash = new Map<number, Entry>();
  private readonly byPage = new Map<number, Entry>();
  private nextCid = ROOT_CID + 1;
  private readonly hash: ChainHashFn;

  constructor(hash: ChainHashFn = chainHash) {
    this.hash = hash;
  }

  /** Number of cached pages (in use or free). */
  get size(): number {
    return this.byPage.size;
  }

  has(page: number): boolean {
    return this.byPage.has(page);
  }

  /**
   * Records that `page` now holds tokens[start, end), following the page described by `parent` (null: first page).
   * Returns the link for the path's chain. When another page already caches the same content the link names that
   * content and `page` stays uncached (one page per content); when a different content owns the hash (a collision)
   * the link is unverified (-1).
   */
  register(page: number, parent: ChainLink | null, tokens: ArrayLike<number>, start: number, end: number): ChainLink {
    const hash = this.hash(parent ? parent.hash : ROOT_HASH, tokens, start, end);
    const parentCid = parent ? parent.cid : ROOT_CID;
    if (parentCid < 0) return { hash, cid: -1 };
    const existing = this.byHash.get(hash);
    if (existing) {
      const same = existing.parentCid === parentCid && sameTokens(existing.tokens, tokens, start, end);
      return { hash, cid: same ? existing.cid : -1 };
    }
    if (this.byPage.has(page)) {
      // A page gets its entry when it becomes full and loses it when reallocated; it cannot become full twice.
      throw new Error(`PrefixCache: page ${page} is cached already (internal invariant broken).`);
    }
    const entry: Entry = { page, hash, cid: this.nextCid++, parentCid, tokens: Uint32Array.from(slice(tokens, start, end)) };
    this.byHash.set(hash, entry);
    this.byPage.set(page, entry);
    return { hash, cid: entry.cid };
  }

  /** The cached page holding tokens[start, end) right after the content `parent` names, or null. */
  match(
    parent: ChainLink | null,
    tokens: ArrayLike<number>,
    start: number,
    end: number,
  ): { link: ChainLink; page: number } | null {
    const parentCid = parent ? parent.cid : ROOT_CID;
    if (parentCid < 0) return null;
    const hash = this.hash(parent ? parent.hash : ROOT_HASH, tokens, start, end);
    const e = this.byHash.get(hash);
    if (!e || e.parentCid !== parentCid || !sameTokens(e.tokens, tokens, start, end)) return null;
    return { link: { hash, cid: e.cid }, page: e.page };
  }

  /** Drops the page's entry (the page is about to hold other tokens). Returns whether it had one. */
  evict(page: number): boolean {
    const e = this.byPage.get(page);
    if (!e) return false;
    this.byPage.delete(page);
    if (this.byHash.get(e.hash) === e) this.byHash.delete(e.hash);
    return true;
  }

  /** The page's cached tokens, or undefined when it has no entry. */
  tokensOf(page: number): readonly number[] | undefined {
    const e = this.byPage.get(page);
    return e ? Array.from(e.tokens) : undefined;
  }

  snapshot(): { nextCid: number; entries: PrefixCacheEntrySnapshot[] } {
    const entries = [...this.byPage.values()]
      .map((e) => ({ page: e.page, hash: e.hash, cid: e.cid, parentCid: e.parentCid, tokens: Array.from(e.tokens) }))
      .sort((a, b) => a.page - b.page);
    return { nextCid: this.nextCid, entries };
  }
}

function sameTokens(cached: Uint32Array, tokens: ArrayLike<number>, start: number, end: number): boolean {
  if (cached.length !== end - start) return false;
  for (let i = start; i < end; i++) if (cached[i - start] !== tokens[i]) return false;
  return true;
}

function slice(tokens: ArrayLike<number>, start: number, end: number): number[] {
  const out: number[] = [];
  for (let i = start; i < end; i++) out.push(tokens[i]);
  return out;
}
