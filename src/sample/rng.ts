// Seeded randomness, one stream per path, named by the path's lineage (DESIGN.md convention 9):
//
//   root r of a request seeded s:           key = H(ROOT, s, r)
//   child of a path with key K, forked at
//   position p as sibling i:                key = H(kind, K, p, i)     kind: NEXT (EAB sibling) or KEEP (prefix branch)
//
// A stream is a function of its key alone, never of engine-wide path ids, creation order or batch composition, so a
// seeded request replays bit for bit whatever else the engine runs. Draw j of a stream is MurmurHash3(key, j): a
// counter-based generator, so two streams never overlap however long they run (a shared-state generator such as
// splitmix32 started at hashed points can: all its streams are shifted copies of one sequence). Keys are 128 bits so
// the paths of a run (thousands at most) collide with probability below 2^-100. Each path draws the 32-bit
// `randomBits` of its token_stats row from its stream; the kernel expands them into per-token Gumbel noise.
import { InvalidArgumentError } from '../errors.js';

/** A stream's name: four u32 words. */
export type StreamKey = readonly [number, number, number, number];

/** What a child's stream is derived for: an EAB sibling (fork with nextToken) or a prefix branch (fork with keep). */
export type ForkKind = 'next' | 'keep';

const DOMAIN = { root: 0x524f4f54, next: 0x4e455854, keep: 0x4b454550 } as const; // 'ROOT', 'NEXT', 'KEEP'

/** MurmurHash3's 32-bit finaliser: a bijection on u32 with full avalanche. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** MurmurHash3 x86_32 of a sequence of u32 words (each a 4-byte little-endian block) with `seed`. */
export function murmur3Words(words: readonly number[], seed: number): number {
  let h = seed >>> 0;
  for (const w of words) {
    let k = Math.imul(w >>> 0, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  return fmix32(h ^ (words.length * 4));
}

/** Four independent 32-bit hashes of the same words (murmur3 under four seeds): a 128-bit key. */
function key128(words: readonly number[]): StreamKey {
  return [
    murmur3Words(words, 0x9e3779b9),
    murmur3Words(words, 0x85ebca6b),
    murmur3Words(words, 0xc2b2ae35),
    murmur3Words(words, 0x27d4eb2f),
  ];
}

function checkInt(name: string, v: number, min: number): void {
  if (!Number.isSafeInteger(v) || v < min) {
    throw new InvalidArgumentError(`${name} must be an integer >= ${min} below 2^53, got ${v}`);
  }
}

/** The two 32-bit words of a safe integer (two's complement for negatives), so every bit of it matters. */
function words(v: number): [number, number] {
  const lo = v >>> 0; // ToUint32: v mod 2^32, also for negatives
  const hi = Math.floor((v - lo) / 2 ** 32) >>> 0;
  return [lo, hi];
}

/** The key of root `root` (0 for a request's first path) of a request seeded `seed`. */
export function rootKey(seed: number, root = 0): StreamKey {
  if (!Number.isSafeInteger(seed)) throw new InvalidArgumentError(`seed must be an integer with |seed| < 2^53, got ${seed}`);
  checkInt('root', root, 0);
  return key128([DOMAIN.root, ...words(seed), ...words(root)]);
}

/**
 * The key of a child forked from a path keyed `parent` at token position `position` (where the child first may differ
 * from its parent: the position of its nextToken, or the `keep` length) as sibling `sibling` (its index among the
 * children forked from that parent at that position).
 */
export function childKey(parent: StreamKey, kind: ForkKind, position: number, sibling: number): StreamKey {
  checkInt('fork position', position, 0);
  checkInt('sibling', sibling, 0);
  return key128([DOMAIN[kind], ...parent, ...words(position), ...words(sibling)]);
}

/** A path's random stream: draw j is murmur3(key, j). */
export class PathRng {
  private counter = 0;

  constructor(readonly key: StreamKey) {}

  /** Words drawn so far. */
  get drawn(): number {
    return this.counter;
  }

  /** The next uniform 32-bit unsigned integer. */
  nextU32(): number {
    const c = this.counter++;
    return murmur3Words([this.key[0], this.key[1], this.key[2], this.key[3], c >>> 0, Math.floor(c / 2 ** 32)], 0x3c6ef372);
  }

  /** Takes back the last word drawn: the next nextU32() returns it again (a speculative step that was undone). */
  unread(): void {
    if (this.counter === 0) throw new InvalidArgumentError('PathRng.unread: nothing has been drawn.');
    this.counter--;
  }

  /** A uniform double in [0, 1) with 53 random bits. */
  nextFloat(): number {
    const hi = this.nextU32() >>> 5; // 27 bits
    const lo = this.nextU32() >>> 6; // 26 bits
    return (hi * 2 ** 26 + lo) / 2 ** 53;
  }
}

/** The stream of root `root` of a request seeded `seed`. */
export function rootRng(seed: number, root = 0): PathRng {
  return new PathRng(rootKey(seed, root));
}
