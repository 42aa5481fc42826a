// Seeded randomness, one stream per path: seed + path id -> a small fast generator (splitmix32), so a branching run
// replays exactly whatever order paths are created or stepped in. Each path draws the 32-bit `randomBits` of its
// token_stats row from its own stream; the kernel expands them into per-token Gumbel noise with a hash.
import { InvalidArgumentError } from '../errors.js';

/** MurmurHash3's 32-bit finaliser: a bijection on u32 with full avalanche. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function checkId(name: string, v: number): void {
  if (!Number.isSafeInteger(v)) {
    throw new InvalidArgumentError(`${name} must be a safe integer (|${name}| < 2^53), got ${v}`);
  }
}

/** The two 32-bit words of a safe integer (two's complement for negatives), so every bit of it matters. */
function words(v: number): [number, number] {
  const lo = v >>> 0; // ToUint32: v mod 2^32, also for negatives
  const hi = Math.floor((v - lo) / 2 ** 32) >>> 0;
  return [lo, hi];
}

/**
 * splitmix32: a Weyl sequence (state += golden ratio) through a strong mixer. Period 2^32 per stream, which is far
 * more than one path ever draws (one or two words per token); distinct (seed, path) pairs get unrelated streams
 * because the starting state is itself a hash of both.
 */
export class PathRng {
  private state: number;

  constructor(
    readonly seed: number,
    readonly pathId: number,
  ) {
    checkId('seed', seed);
    checkId('pathId', pathId);
    const [s0, s1] = words(seed);
    const [p0, p1] = words(pathId);
    let h = fmix32(s0 ^ 0x2545f491);
    h = fmix32(h ^ s1);
    h = fmix32(h ^ Math.imul(p0 ^ 0x9e3779b9, 0x27d4eb2f));
    this.state = fmix32(h ^ p1);
  }

  /** The next uniform 32-bit unsigned integer. */
  nextU32(): number {
    this.state = (this.state + 0x9e3779b9) >>> 0;
    return fmix32(this.state);
  }

  /** A uniform double in [0, 1) with 53 random bits. */
  nextFloat(): number {
    const hi = this.nextU32() >>> 5; // 27 bits
    const lo = this.nextU32() >>> 6; // 26 bits
    return (hi * 2 ** 26 + lo) / 2 ** 53;
  }
}

/** The stream of path `pathId` in a run seeded with `seed`. */
export function pathRng(seed: number, pathId: number): PathRng {
  return new PathRng(seed, pathId);
}
