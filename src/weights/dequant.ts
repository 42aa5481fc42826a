// Host-side reference dequantization, in float64, written from the block formats in ./types.ts (llama.cpp's
// dequantize_row_* in ggml-quants.c compute the same values in float32). Tests compare the GPU kernels and gguf-py's
// values with it; nothing on the model's load path calls it (weights stay in their storage type on the GPU).
import { InvalidArgumentError } from '../errors.js';
import { layoutOf, type StorageType } from './types.js';

const HALF = (() => {
  const t = new Float64Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    t[h] = e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15);
  }
  return t;
})();

function f16(b: Uint8Array, o: number): number {
  return HALF[b[o] | (b[o + 1] << 8)];
}

/** 6-bit scale and min of sub-block j of a Q4_K / Q5_K block (get_scale_min_k4 in ggml-quants.c); q = the 12 bytes. */
function scaleMinK4(b: Uint8Array, q: number, j: number): [number, number] {
  if (j < 4) return [b[q + j] & 63, b[q + j + 4] & 63];
  return [(b[q + j + 4] & 0xf) | ((b[q + j - 4] >> 6) << 4), (b[q + j + 4] >> 4) | ((b[q + j] >> 6) << 4)];
}

/** Dequantizes one block at byte `o` into out[at .. at + qk). */
function block(type: StorageType, b: Uint8Array, o: number, out: Float64Array, at: number, mag: Float64Array | null): void {
  switch (type) {
    case 'F32':
      out[at] = new DataView(b.buffer, b.byteOffset + o, 4).getFloat32(0, true);
      return;
    case 'F16':
      out[at] = f16(b, o);
      return;
    case 'BF16': {
      const f = new Float32Array(new Uint32Array([((b[o] | (b[o + 1] << 8)) << 16) >>> 0]).buffer);
      out[at] = f[0];
      return;
    }
    case 'Q8_0': {
      const d = f16(b, o);
      for (let j = 0; j < 32; j++) out[at + j] = d * ((b[o + 2 + j] << 24) >> 24);
      return;
    }
    case 'Q4_0':
    case 'Q4_1': {
      const d = f16(b, o);
      const q1 = type === 'Q4_1';
      const m = q1 ? f16(b, o + 2) : 0;
      const qs = o + (q1 ? 4 : 2);
      for (let j = 0; j < 16; j++) {
        const lo = b[qs + j] & 0xf;
        const hi = b[qs + j] >> 4;
        out[at + j] = q1 ? d * lo + m : d * (lo - 8);
        out[at + j + 16] = q1 ? d * hi + m : d * (hi - 8);
        if (mag && q1) {
          mag[at + j] = Math.abs(d * lo) + Math.abs(m);
          mag[at + j + 16] = Math.abs(d * hi) + Math.abs(m);
        }
      }
      return;
    }
    case 'Q5_0':
    case 'Q5_1': {
      const d = f16(b, o);
      const q1 = type === 'Q5_1';
      const m = q1 ? f16(b, o + 2) : 0;
      const h = o + (q1 ? 4 : 2);
      const qh = (b[h] | (b[h + 1] << 8) | (b[h + 2] << 16) | (b[h + 3] << 24)) >>> 0;
      const qs = h + 4;
      for (let j = 0; j < 16; j++) {
        const lo = (b[qs + j] & 0xf) | (((qh >>> j) & 1) << 4);
        const hi = (b[qs + j] >> 4) | (((qh >>> (j + 16)) & 1) << 4);
        out[at + j] = q1 ? d * lo + m : d * (lo - 16);
        out[at + j + 16] = q1 ? d * hi + m : d * (hi - 16);
        if (mag && q1) {
          mag[at + j] = Math.abs(d * lo) + Math.abs(m);
          mag[at + j + 16] = Math.abs(d * hi) + Math.abs(m);
        }
      }
      return;
    }
    case 'Q4_K':
    case 'Q5_K': {
      const d = f16(b, o);
      const dmin = f16(b, o + 2);
      const five = type === 'Q5_K';
      const qh = o + 16;
      const qs = o + (five ? 48 : 16);
      for (let v = 0; v < 256; v++) {
        const c = v >> 6; // 64-value chunk
        const l = v & 31;
        const high = (v >> 5) & 1; // second half of the chunk: high nibble
        let q = (b[qs + 32 * c + l] >> (4 * high)) & 0xf;
        if (five) q += ((b[qh + l] >> (v >> 5)) & 1) << 4;
        const [sc, mn] = scaleMinK4(b, o + 4, v >> 5);
        out[at + v] = d * sc * q - dmin * mn;
        if (mag) mag[at + v] = Math.abs(d * sc * q) + Math.abs(dmin * mn);
      }
      return;
    }
    case 'Q6_K': {
      const d = f16(b, o + 208);
      for (let v = 0; v < 256; v++) {
        const n = v >> 7;
        const r = (v >> 5) & 3;
        const l = v & 31;
        const lo = (b[o + 64 * n + 32 * (r & 1) + l] >> (4 * (r >> 1))) & 0xf;
        const hi = (b[o + 128 + 32 * n + l] >> (2 * r)) & 3;
        const sc = (b[o + 192 + (v >> 4)] << 24) >> 24;
        out[at + v] = d * sc * ((lo | (hi << 4)) - 32);
      }
      return;
    }
  }
}

/**
 * Dequantizes `count` values (a multiple of the type's block size) stored as `type` at the start of `bytes`, in
 * float64: products of an f16 scale and small integers are exact, and the one subtraction of Q4_K / Q5_K rounds at 2^-53.
 */
export function dequantize(type: StorageType, bytes: Uint8Array, count: number): Float64Array {
  return dequantizeWithMagnitude(type, bytes, count).values;
}

/**
 * As dequantize, plus each value's magnitude: |d q| + |m| for the types that add an offset (Q4_1, Q5_1, Q4_K, Q5_K),
 * where the value is a difference of two terms that can cancel; |value| for the others. An f32 dequantization errs
 * by a few ulp of the magnitude, not of the value, so kernel tests scale their tolerance by it.
 */
export function dequantizeWithMagnitude(type: StorageType, bytes: Uint8Array, count: number): { values: Float64Array; magnitude: Float64Array } {
  const { qk, blockBytes } = layoutOf(type);
  if (count % qk !== 0) throw new InvalidArgumentError(`dequantize: ${count} values is not a whole number of ${qk}-value ${type} blocks.`);
  const blocks = count / qk;
  if (bytes.length < blocks * blockBytes) {
    throw new InvalidArgumentError(`dequantize: ${count} ${type} values need ${blocks * blockBytes} bytes, got ${bytes.length}.`);
  }
  const out = new Float64Array(count);
  const mag = new Float64Array(count);
  for (let i = 0; i < blocks; i++) block(type, bytes, i * blockBytes, out, i * qk, mag);
  if (!['Q4_1', 'Q5_1', 'Q4_K', 'Q5_K'].includes(type)) for (let i = 0; i < count; i++) mag[i] = Math.abs(out[i]);
  return { values: out, magnitude: mag };
}
