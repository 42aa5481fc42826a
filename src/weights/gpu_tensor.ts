// A (rows, cols) weight matrix on the GPU in its storage type: the bytes of whole rows exactly as stored (GGUF blocks,
// f16/bf16 halves, f32), in one or more buffers of whole rows each within maxStorageBufferBindingSize (128 MiB on
// llvmpipe). Each chunk is rounded up to 16 bytes (the kernels also read it as vec4<u32>) with 16 spare bytes, so
// their reads of a word past an unaligned field (ld4, ld8 in shaders/wload_common.wgsl) never leave the buffer.
// Nothing here converts values: the kernels dequantize in registers. One type is repacked (same bytes, another order):
// Q5_0, in tiles of 8 rows (src/weights/tiles.ts); its chunks hold whole tiles, the last one padded with zero rows.
import type { Gpu } from '../gpu/device.js';
import { createStorage } from '../gpu/buffers.js';
import type { TensorChunk } from '../gpu/split_tensor.js';
import { InvalidArgumentError } from '../errors.js';
import { rowBytes as rowBytesOf, type StorageType } from './types.js';
import { tileRows, writeTiledRows } from './tiles.js';

export interface WeightTensor {
  type: StorageType;
  rows: number;
  cols: number;
  /** Bytes of one row (cols / QK blocks). */
  rowBytes: number;
  /** Each buffer: (rows, rowBytes) bytes + spare (chunkBytes), rows [rowStart, rowStart + rows) of the whole matrix. */
  chunks: TensorChunk[];
}

/** Bytes of a chunk buffer of `rows` rows (padded to whole tiles of `tile` rows): rounded up to 16, plus 16 spare. */
export function chunkBytes(rows: number, rowBytes: number, tile = 1): number {
  return Math.ceil((Math.ceil(rows / tile) * tile * rowBytes) / 16) * 16 + 16;
}

/**
 * Rows per chunk of `type` within `limitBytes` (less the 32 bytes of rounding and spare): whole tiles of the type, and
 * an even count when `even` (kernels/y_epilogue.ts pairs columns); 0 when not one row (tile) fits.
 */
export function rowsPerChunk(type: StorageType, rowBytes: number, limitBytes: number, even = false): number {
  const fit = Math.floor((limitBytes - 32) / rowBytes);
  const t = tileRows(type);
  if (t > 1) return fit - (fit % t);
  return even && fit > 1 ? fit - (fit % 2) : fit;
}

/** Bytes the GPU holds for a weight tensor (rows plus each chunk's rounding and spare word). */
export function weightGpuBytes(t: WeightTensor): number {
  return t.chunks.reduce((s, c) => s + c.buffer.size, 0);
}

/**
 * Allocates a weight tensor (zeros) for `type`, split in chunks of whole rows; fill it with writeWeightRows.
 * `maxBytes` lets tests force splitting on small matrices. Throws UnsupportedModelError when cols is not a whole
 * number of blocks.
 */
/** `evenChunks`: every chunk but the last holds an even number of rows (kernels/y_epilogue.ts pairs columns). */
export function allocWeights(gpu: Gpu, type: StorageType, rows: number, cols: number, label: string, maxBytes?: number, evenChunks = false): WeightTensor {
  const rb = rowBytesOf(type, cols);
  const per = rowsPerChunk(type, rb, Math.min(maxBytes ?? gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize), evenChunks);
  const tile = tileRows(type);
  if (per < 1) throw new InvalidArgumentError(`${label}: ${tile} ${type} row(s) of ${cols} values (${rb} bytes each) do not fit one storage binding.`);
  const chunks: TensorChunk[] = [];
  for (let r = 0; r < rows; r += per) {
    const n = Math.min(per, rows - r);
    const tiled = tile > 1 ? `, ${tile}-row tiles` : '';
    const buffer = createStorage(gpu.device, chunkBytes(n, rb, tile), `${label}[${r}:${r + n}] (${n}, ${cols}) ${type}${tiled}`);
    chunks.push({ buffer, rowStart: r, rows: n });
  }
  return { type, rows, cols, rowBytes: rb, chunks };
}

/**
 * Writes `bytes`, whole rows of the tensor's storage type, at row `rowStart`; the rows may span chunks. Streaming
 * loaders call it once per piece read, so the host never holds more than one piece.
 */
export function writeWeightRows(gpu: Gpu, t: WeightTensor, rowStart: number, bytes: Uint8Array): void {
  if (bytes.length % t.rowBytes !== 0) {
    throw new InvalidArgumentError(`writeWeightRows: ${bytes.length} bytes is not a whole number of ${t.rowBytes}-byte ${t.type} rows.`);
  }
  const rowEnd = rowStart + bytes.length / t.rowBytes;
  if (rowStart < 0 || rowEnd > t.rows) throw new InvalidArgumentError(`writeWeightRows: rows [${rowStart}, ${rowEnd}) outside the tensor's ${t.rows}.`);
  if (tileRows(t.type) > 1) {
    writeTiledRows(gpu, t, rowStart, bytes);
    return;
  }
  for (const c of t.chunks) {
    const a = Math.max(rowStart, c.rowStart);
    const b = Math.min(rowEnd, c.rowStart + c.rows);
    if (a >= b) continue;
    const piece = bytes.subarray((a - rowStart) * t.rowBytes, (b - rowStart) * t.rowBytes);
    const offset = (a - c.rowStart) * t.rowBytes;
    // writeBuffer needs 4-byte offsets: with 2-byte-aligned rows (Q8_0, Q4_0, Q5_0, Q6_K blocks of an odd count) a
    // piece must start at an even row of its chunk. A padded tail is overwritten by the next piece (pieces go in row order).
    if (offset % 4 !== 0) {
      throw new InvalidArgumentError(`writeWeightRows: row ${a} of ${t.rowBytes} bytes does not start on a 4-byte boundary; write an even number of rows per piece.`);
    }
    const padded = piece.length % 4 === 0 ? piece : copyPadded(piece);
    gpu.device.queue.writeBuffer(c.buffer, offset, padded as Uint8Array<ArrayBuffer>);
  }
}

function copyPadded(b: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.ceil(b.length / 4) * 4);
  out.set(b);
  return out;
}

/** Allocates and fills a weight tensor from all its bytes at once (tests; small tensors). */
export function uploadWeights(
  gpu: Gpu,
  type: StorageType,
  bytes: Uint8Array,
  rows: number,
  cols: number,
  label: string,
  maxBytes?: number,
): WeightTensor {
  const t = allocWeights(gpu, type, rows, cols, label, maxBytes);
  if (bytes.length !== rows * t.rowBytes) {
    throw new InvalidArgumentError(`${label}: ${bytes.length} bytes for a (${rows}, ${cols}) ${type} matrix of ${rows * t.rowBytes}.`);
  }
  for (const c of t.chunks) writeWeightRows(gpu, t, c.rowStart, bytes.subarray(c.rowStart * t.rowBytes, (c.rowStart + c.rows) * t.rowBytes));
  return t;
}

export function destroyWeights(t: WeightTensor): void {
  for (const c of t.chunks) c.buffer.destroy();
}
