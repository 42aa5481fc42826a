// A weight matrix on the host as the file stores it: (rows, cols) row-major in a storage type (F32, F16, BF16 or a
// GGUF block quantization), its bytes produced on demand. Loaders hand these to the GPU upload one at a time, so the
// host holds the file and at most one tensor's rearranged bytes, never a widened copy of the model.
//
// Layout changes a loader needs are done on the stored bytes, by whole rows: a row of a quantized tensor is a whole
// number of blocks (GGUF stores ne[0] in whole blocks; parseGguf checks it), so selecting, permuting or splitting rows
// moves whole blocks and never re-quantizes. GPT-2's transposed Conv1D weights need a per-value transpose: the dense
// types only (safetensors holds no block quantizations).
import { InvalidArgumentError } from '../errors.js';
import { f16ToF32, bf16ToF32, f32FromBytes, f32ToBytes, f32ToHalfBytes } from '../io/bytes.js';
import { dequantize } from './dequant.js';
import { layoutOf, rowBytes, type StorageType } from './types.js';

export interface StoredMatrix {
  readonly type: StorageType;
  readonly rows: number;
  readonly cols: number;
  /** The rows' bytes, rows * rowBytes(type, cols): a view of the file or built by this call (drop it after use). */
  bytes(): Uint8Array;
}

/** A weight matrix either as f32 values (random weights, references) or as stored. */
export type WeightMatrix = Float32Array | StoredMatrix;

/** How the GPU holds weight matrices: as the file stores them (default), or all F16, or all F32. */
export type WeightsMode = 'as-stored' | 'f16' | 'f32';
export const WEIGHTS_MODES: readonly WeightsMode[] = ['as-stored', 'f16', 'f32'];

export function isStored(m: WeightMatrix): m is StoredMatrix {
  return !(m instanceof Float32Array);
}

/** The matrix as stored; an f32 array becomes F32 (its bytes are a view, nothing copied on little-endian hosts). */
export function asStored(m: WeightMatrix, rows: number, cols: number): StoredMatrix {
  if (isStored(m)) return m;
  if (m.length !== rows * cols) throw new InvalidArgumentError(`a (${rows}, ${cols}) matrix has ${rows * cols} values, got ${m.length}.`);
  return { type: 'F32', rows, cols, bytes: () => (LE ? new Uint8Array(m.buffer, m.byteOffset, m.byteLength) : f32ToBytes(m)) };
}
const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Bytes of the stored matrix (what the GPU holds of it as stored, before chunk padding). */
export function storedBytes(m: StoredMatrix): number {
  return m.rows * rowBytes(m.type, m.cols);
}

/** The values as f32 (dense types exactly; quantized through the float64 dequantization, rounded once). */
export function matrixF32(m: WeightMatrix): Float32Array {
  if (!isStored(m)) return m;
  const n = m.rows * m.cols;
  const b = m.bytes();
  if (m.type === 'F32') return f32FromBytes(b, 0, n);
  if (m.type === 'F16') return f16ToF32(b, 0, n);
  if (m.type === 'BF16') return bf16ToF32(b, 0, n);
  return Float32Array.from(dequantize(m.type, b, n));
}

/** Rows `index[i]` of `m`, in that order, as stored (whole rows of blocks). */
export function selectRows(m: StoredMatrix, index: readonly number[]): StoredMatrix {
  const rb = rowBytes(m.type, m.cols);
  for (const r of index) if (!Number.isInteger(r) || r < 0 || r >= m.rows) throw new InvalidArgumentError(`selectRows: row ${r} outside [0, ${m.rows}).`);
  return {
    type: m.type,
    rows: index.length,
    cols: m.cols,
    bytes: () => {
      const src = m.bytes();
      const out = new Uint8Array(index.length * rb);
      index.forEach((r, i) => out.set(src.subarray(r * rb, (r + 1) * rb), i * rb));
      return out;
    },
  };
}

/** Rows [from, to): a view of the source rows, nothing copied. */
export function rowRange(m: StoredMatrix, from: number, to: number): StoredMatrix {
  if (from < 0 || to > m.rows || from > to) throw new InvalidArgumentError(`rowRange: [${from}, ${to}) outside [0, ${m.rows}).`);
  const rb = rowBytes(m.type, m.cols);
  return { type: m.type, rows: to - from, cols: m.cols, bytes: () => m.bytes().subarray(from * rb, to * rb) };
}

/** (rows, cols) -> (cols, rows), value by value: dense types only (a block cannot be split across rows). */
export function transposeStored(m: StoredMatrix): StoredMatrix {
  const size = layoutOf(m.type).qk === 1 ? layoutOf(m.type).blockBytes : 0;
  if (size === 0) throw new InvalidArgumentError(`transposeStored: a ${m.type} matrix cannot be transposed value by value.`);
  const { rows, cols } = m;
  return {
    type: m.type,
    rows: cols,
    cols: rows,
    bytes: () => {
      const src = m.bytes();
      const out = new Uint8Array(src.length);
      for (let r = 0; r < rows; r++) {
        for (let c = 0; c < cols; c++) {
          const s = (r * cols + c) * size;
          const d = (c * rows + r) * size;
          for (let k = 0; k < size; k++) out[d + k] = src[s + k];
        }
      }
      return out;
    },
  };
}

/**
 * The matrix times `scale` (Granite's residual multiplier folded into a projection). F32 stays F32; any other type is
 * widened to F32 (a block's scale cannot absorb the factor without rounding it to f16), only this tensor and only
 * when its bytes are asked for.
 */
export function scaledStored(m: StoredMatrix, scale: number): StoredMatrix {
  if (scale === 1) return m;
  return {
    type: 'F32',
    rows: m.rows,
    cols: m.cols,
    bytes: () => {
      const v = matrixF32(m);
      const out = new Float32Array(v.length);
      for (let i = 0; i < v.length; i++) out[i] = v[i] * scale;
      return f32ToBytes(out);
    },
  };
}

/**
 * Checks a `weights` load option given from JavaScript (the CLI checks its flag itself).
 * @throws InvalidArgumentError for anything but 'as-stored', 'f16', 'f32' or undefined.
 */
export function checkWeightsMode(mode: unknown): void {
  if (mode !== undefined && !(WEIGHTS_MODES as readonly unknown[]).includes(mode))
    throw new InvalidArgumentError(`weights must be one of ${WEIGHTS_MODES.map((m) => `'${m}'`).join(', ')} (default 'as-stored'), got ${JSON.stringify(mode)}.`, { param: 'weights' });
}

/** The storage type a matrix of `type` gets on the GPU under `mode`. */
export function gpuTypeFor(type: StorageType, mode: WeightsMode): StorageType {
  if (mode === 'f32') return 'F32';
  if (mode === 'f16') return 'F16';
  return type;
}

/** The matrix converted to `type` (F32 or F16; the identity when it already is), one tensor at a time. */
export function convertStored(m: StoredMatrix, type: StorageType): StoredMatrix {
  if (m.type === type) return m;
  if (type !== 'F32' && type !== 'F16') throw new InvalidArgumentError(`convertStored: forklm converts weights only to F32 or F16, not ${type}.`);
  return {
    type,
    rows: m.rows,
    cols: m.cols,
    bytes: () => (type === 'F32' ? f32ToBytes(matrixF32(m)) : f32ToHalfBytes(matrixF32(m), 'F16')),
  };
}
