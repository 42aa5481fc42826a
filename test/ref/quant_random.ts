// Random weight tensors in any storage type, for kernel tests and benchmarks: quants are uniformly random bits (every
// bit pattern a block can hold, not just what a quantizer happens to produce), scales are f16 values of random sign
// and a magnitude that keeps dequantized weights around 0.01-1 like trained ones.
import { floatToHalfBits } from '../../src/io/bytes.js';
import { layoutOf, rowBytes, type StorageType } from '../../src/weights/types.js';

function putHalf(b: Uint8Array, o: number, x: number): void {
  const h = floatToHalfBits(x);
  b[o] = h & 0xff;
  b[o + 1] = h >> 8;
}

/** A random f16 scale of either sign, |s| in [lo, hi). */
function scale(rand: () => number, lo: number, hi: number): number {
  return (rand() < 0.5 ? -1 : 1) * (lo + (hi - lo) * rand());
}

/** The bytes of a random (rows, cols) tensor of `type`, cols a whole number of blocks. */
export function randomWeights(type: StorageType, rows: number, cols: number, rand: () => number): Uint8Array {
  const bytes = new Uint8Array(rows * rowBytes(type, cols));
  const view = new DataView(bytes.buffer);
  if (type === 'F32') {
    for (let i = 0; i < rows * cols; i++) view.setFloat32(4 * i, rand() * 2 - 1, true);
    return bytes;
  }
  if (type === 'F16' || type === 'BF16') {
    for (let i = 0; i < rows * cols; i++) {
      const x = rand() * 2 - 1;
      if (type === 'F16') putHalf(bytes, 2 * i, x);
      else view.setUint16(2 * i, new Uint32Array(new Float32Array([x]).buffer)[0] >>> 16, true);
    }
    return bytes;
  }
  for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(rand() * 256);
  const { blockBytes } = layoutOf(type);
  for (let o = 0; o < bytes.length; o += blockBytes) {
    switch (type) {
      case 'Q8_0':
        putHalf(bytes, o, scale(rand, 1 / 512, 1 / 128));
        break;
      case 'Q4_0':
      case 'Q5_0':
        putHalf(bytes, o, scale(rand, 1 / 32, 1 / 8));
        break;
      case 'Q4_1':
      case 'Q5_1':
        putHalf(bytes, o, scale(rand, 1 / 32, 1 / 8));
        putHalf(bytes, o + 2, scale(rand, 1 / 4, 1));
        break;
      case 'Q4_K':
      case 'Q5_K':
        putHalf(bytes, o, scale(rand, 1 / 1024, 1 / 256)); // times 6-bit scales (< 64) and 4-5 bit quants
        putHalf(bytes, o + 2, scale(rand, 1 / 256, 1 / 64)); // times 6-bit mins
        break;
      case 'Q6_K':
        putHalf(bytes, o + 208, scale(rand, 1 / 2048, 1 / 512)); // times int8 scales and q - 32 in [-32, 31]
        break;
    }
  }
  return bytes;
}
