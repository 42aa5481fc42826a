// Small byte helpers shared by the model file readers: a bounds-checked little-endian cursor (every read past the
// end is a ModelFormatError naming what was being read, never a RangeError), and f32/f16/bf16 conversions that copy
// out of unaligned file offsets.
import { ModelFormatError } from '../errors.js';

/** All model formats here are little-endian; on a little-endian host raw bytes can be copied straight into floats. */
export const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export class ByteReader {
  private readonly view: DataView;
  pos = 0;

  constructor(
    readonly bytes: Uint8Array,
    /** File name for messages */
    readonly label: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get remaining(): number {
    return this.bytes.length - this.pos;
  }

  /** Throws unless `n` more bytes are available for `what`. */
  need(n: number, what: string): void {
    if (!(n <= this.remaining)) {
      throw new ModelFormatError(
        `${this.label}: reading ${what} needs ${n} byte(s) at offset ${this.pos}, but only ${this.remaining} remain. ` +
          `The file is truncated or corrupt: download it again.`,
      );
    }
  }

  i32(what: string): number {
    this.need(4, what);
    const v = this.view.getInt32(this.pos, true);
    this.pos += 4;
    return v;
  }

  u32(what: string): number {
    this.need(4, what);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  f32(what: string): number {
    this.need(4, what);
    const v = this.view.getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }

  /** An unsigned 64-bit integer that must fit a JS number exactly (sizes and offsets). */
  u64(what: string): number {
    this.need(8, what);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new ModelFormatError(`${this.label}: ${what} is ${v}, larger than any real file; the file is corrupt.`);
    }
    return Number(v);
  }

  /** A view (not a copy) of the next `n` bytes. */
  bytesView(n: number, what: string): Uint8Array {
    this.need(n, what);
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
}

/** Copies `count` little-endian f32 values starting at byte `offset` (any alignment) into a new array. */
export function f32FromBytes(bytes: Uint8Array, offset: number, count: number): Float32Array {
  const out = new Float32Array(count);
  if (LITTLE_ENDIAN_HOST) {
    new Uint8Array(out.buffer).set(bytes.subarray(offset, offset + count * 4));
  } else {
    const view = new DataView(bytes.buffer, bytes.byteOffset + offset, count * 4);
    for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
  }
  return out;
}

/** The little-endian bytes of `data`. */
export function f32ToBytes(data: Float32Array): Uint8Array {
  if (LITTLE_ENDIAN_HOST) return new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
  const out = new Uint8Array(data.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < data.length; i++) view.setFloat32(i * 4, data[i], true);
  return out;
}

let halfTable: Float32Array | null = null;

/** Every f16 bit pattern's f32 value, built once: a table lookup is the fastest exact conversion in JS. */
function halfToFloatTable(): Float32Array {
  if (halfTable) return halfTable;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    if (e === 0) t[h] = sign * m * 2 ** -24;
    else if (e === 31) t[h] = m ? NaN : sign * Infinity;
    else t[h] = sign * (1 + m / 1024) * 2 ** (e - 15);
  }
  halfTable = t;
  return t;
}

/** Converts `count` little-endian f16 values at byte `offset` to f32 (exact: every f16 is an f32). */
export function f16ToF32(bytes: Uint8Array, offset: number, count: number): Float32Array {
  const table = halfToFloatTable();
  const out = new Float32Array(count);
  for (let i = 0, o = offset; i < count; i++, o += 2) out[i] = table[bytes[o] | (bytes[o + 1] << 8)];
  return out;
}

/** Converts `count` little-endian bf16 values at byte `offset` to f32 (exact: bf16 is the top half of an f32). */
export function bf16ToF32(bytes: Uint8Array, offset: number, count: number): Float32Array {
  const out = new Float32Array(count);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0, o = offset; i < count; i++, o += 2) bits[i] = ((bytes[o] | (bytes[o + 1] << 8)) << 16) >>> 0;
  return out;
}

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** f32 -> f16 bits, round to nearest even, overflow to infinity, NaN kept NaN. */
export function floatToHalfBits(x: number): number {
  scratchF32[0] = x;
  const u = scratchU32[0];
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let mant = u & 0x7fffff;
  if (exp === 255) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    // subnormal half: shift the implicit-1 mantissa right, rounding to nearest even
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && h & 1)) h++;
    return sign | h;
  }
  // a rounding carry out of the mantissa correctly bumps the exponent (up to infinity)
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
  return sign | h;
}

/** f32 -> bf16 bits, round to nearest even, NaN kept NaN. */
export function floatToBf16Bits(x: number): number {
  scratchF32[0] = x;
  const u = scratchU32[0];
  if ((u & 0x7f800000) === 0x7f800000 && u & 0x7fffff) return ((u >>> 16) | 0x40) & 0xffff;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Little-endian 16-bit encodings of `data` (f16 or bf16). */
export function f32ToHalfBytes(data: Float32Array, kind: 'F16' | 'BF16'): Uint8Array {
  const out = new Uint8Array(data.length * 2);
  const conv = kind === 'F16' ? floatToHalfBits : floatToBf16Bits;
  for (let i = 0; i < data.length; i++) {
    const h = conv(data[i]);
    out[2 * i] = h & 0xff;
    out[2 * i + 1] = h >>> 8;
  }
  return out;
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Exact element-wise equality of two f32 arrays by bit pattern (so NaN payloads and -0 count). */
export function f32BitsEqual(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return false;
  return true;
}

/**
 * Exact element count of `shape`: the product over every dimension in BigInt, since a product of safe integers can
 * pass 2^53 (where a float product rounds). Compare it with a size only after multiplying everything: a running
 * product cut short once it passes a bound misses a later 0 ([4, 0] holds no element, as [0, 4] does not).
 */
export function shapeElements(shape: readonly number[]): bigint {
  let n = 1n;
  for (const d of shape) n *= BigInt(d);
  return n;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Strict UTF-8 decoding; invalid bytes are a ModelFormatError naming `what`. */
export function decodeUtf8(bytes: Uint8Array, what: string): string {
  try {
    return utf8.decode(bytes);
  } catch (cause) {
    throw new ModelFormatError(`${what} is not valid UTF-8; the file is corrupt.`, { cause });
  }
}
