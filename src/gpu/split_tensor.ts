// A row-major (rows, cols) f32 matrix in one or more GPU buffers of whole rows, each within the adapter's
// maxStorageBufferBindingSize (128 MiB on llvmpipe: a 151,936 x 896 LM head needs 5 chunks). Kernels that read a
// SplitTensor dispatch once per chunk.
import type { Gpu } from './device.js';
import { createStorage, writeBuffer } from './buffers.js';

export interface TensorChunk {
  buffer: GPUBuffer; // (rows, cols) f32, rows [rowStart, rowStart + rows) of the whole matrix
  rowStart: number;
  rows: number;
}

export interface SplitTensor {
  rows: number;
  cols: number;
  chunks: TensorChunk[];
}

/** Rows per chunk so that one chunk fits one storage binding (and 256-byte offsets are never needed). */
export function rowsPerChunk(gpu: Gpu, cols: number, maxBytes = gpu.limits.maxStorageBufferBindingSize): number {
  const perRow = cols * 4;
  const rows = Math.floor(Math.min(maxBytes, gpu.limits.maxBufferSize) / perRow);
  if (rows < 1) throw new RangeError(`a row of ${cols} f32 does not fit one storage binding`);
  return rows;
}

/** Uploads `data` (rows, cols) as a SplitTensor. `maxBytes` lets tests force splitting on small matrices. */
export function uploadSplit(gpu: Gpu, data: Float32Array, rows: number, cols: number, label: string, maxBytes?: number): SplitTensor {
  if (data.length !== rows * cols) throw new RangeError(`${label}: ${data.length} values for a (${rows}, ${cols}) matrix`);
  const per = rowsPerChunk(gpu, cols, maxBytes);
  const chunks: TensorChunk[] = [];
  for (let r = 0; r < rows; r += per) {
    const n = Math.min(per, rows - r);
    const buffer = createStorage(gpu.device, n * cols * 4, `${label}[${r}:${r + n}] (${n}, ${cols}) f32`);
    writeBuffer(gpu.device, buffer, data.subarray(r * cols, (r + n) * cols));
    chunks.push({ buffer, rowStart: r, rows: n });
  }
  return { rows, cols, chunks };
}

/** Wraps an existing single buffer (e.g. activations) as a one-chunk SplitTensor. */
export function wholeTensor(buffer: GPUBuffer, rows: number, cols: number): SplitTensor {
  return { rows, cols, chunks: [{ buffer, rowStart: 0, rows }] };
}

export function destroySplit(t: SplitTensor): void {
  for (const c of t.chunks) c.buffer.destroy();
}
