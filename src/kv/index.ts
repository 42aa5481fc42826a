export { PagePool } from './page_pool.js';
export { KvCache, assertTokenIds } from './kv_cache.js';
export type { KvCacheOptions, KvCacheSnapshot, PageCopy } from './kv_cache.js';
export { PrefixCache, chainHash, ROOT_HASH } from './prefix_cache.js';
export type { ChainHashFn, ChainLink, PrefixCacheEntrySnapshot } from './prefix_cache.js';
