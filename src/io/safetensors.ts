// A small strict safetensors reader (and writer, for tests and exports). Layout: u64 LE header length N, N bytes of
// JSON {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {str: str}}, then the data section; offsets
// are relative to the data section. Like the reference implementation, the tensors must tile the data section exactly
// (no overlap, no gap, nothing after the last one). Every violation names the tensor and what is wrong.
import { ModelFormatError, UnsupportedModelError } from '../errors.js';
import { bf16ToF32, concatBytes, decodeUtf8, f16ToF32, f32FromBytes, f32ToBytes, f32ToHalfBytes, shapeElements } from './bytes.js';

/** Byte sizes of the dtypes the format defines; only F32, F16 and BF16 can be read. */
const DTYPE_SIZE: Record<string, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U64: 8, U32: 4, U16: 2, U8: 1, BOOL: 1,
  F8_E4M3: 1, F8_E5M2: 1, F8_E8M0: 1,
};
const READABLE = new Set(['F32', 'F16', 'BF16']);

export type SafetensorsDtype = 'F32' | 'F16' | 'BF16';

export interface SafetensorsTensor {
  name: string;
  /** As written in the header; only F32/F16/BF16 can be read */
  dtype: string;
  /** Row-major, outermost first */
  shape: number[];
  /** Absolute byte range in the file */
  begin: number;
  end: number;
}

export interface SafetensorsFile {
  readonly label: string;
  readonly metadata: Readonly<Record<string, string>> | null;
  readonly tensors: ReadonlyMap<string, SafetensorsTensor>;
  /** The tensor's values as a new f32 array (F16/BF16 converted exactly). */
  readF32(name: string): Float32Array;
  /** An F32, F16 or BF16 tensor as stored: its type and a view of its bytes (nothing copied or widened). */
  stored(name: string): { type: SafetensorsDtype; shape: number[]; bytes: Uint8Array };
}

function fail(label: string, msg: string): never {
  throw new ModelFormatError(`${label}: ${msg}. The file is corrupt or not a safetensors file: download or export it again.`);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isIndex(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

export function parseSafetensors(bytes: Uint8Array, label = 'model.safetensors'): SafetensorsFile {
  if (bytes.length < 8) fail(label, `the file has ${bytes.length} bytes, fewer than the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const declared = view.getBigUint64(0, true);
  if (declared > BigInt(bytes.length - 8)) {
    fail(label, `the header length is ${declared} bytes but only ${bytes.length - 8} bytes follow it`);
  }
  const headerLen = Number(declared);
  const text = decodeUtf8(bytes.subarray(8, 8 + headerLen), `${label}: the JSON header`);
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (cause) {
    throw new ModelFormatError(`${label}: the header is not valid JSON (${(cause as Error).message}); the file is corrupt.`, {
      cause,
    });
  }
  if (!isPlainObject(header)) fail(label, 'the JSON header is not an object');

  const dataStart = 8 + headerLen;
  const dataLen = bytes.length - dataStart;
  let metadata: Record<string, string> | null = null;
  const tensors = new Map<string, SafetensorsTensor>();
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (!isPlainObject(entry)) fail(label, '__metadata__ is not an object');
      for (const [k, v] of Object.entries(entry)) {
        if (typeof v !== 'string') fail(label, `__metadata__["${k}"] is not a string`);
      }
      metadata = entry as Record<string, string>;
      continue;
    }
    const t = `tensor "${name}"`;
    if (!isPlainObject(entry)) fail(label, `${t}: its header entry is not an object`);
    const { dtype, shape, data_offsets: offsets } = entry;
    if (typeof dtype !== 'string') fail(label, `${t}: dtype is missing or not a string`);
    if (!Array.isArray(shape) || !shape.every(isIndex)) fail(label, `${t}: shape is not a list of non-negative integers`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isIndex)) {
      fail(label, `${t}: data_offsets is not a pair of non-negative integers`);
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end) fail(label, `${t}: data_offsets [${begin}, ${end}] end before they begin`);
    if (end > dataLen) fail(label, `${t}: data_offsets [${begin}, ${end}] run past the ${dataLen}-byte data section`);
    const size = DTYPE_SIZE[dtype];
    if (size !== undefined) {
      const need = shapeElements(shape as number[]) * BigInt(size);
      if (need !== BigInt(end - begin)) {
        fail(label, `${t}: shape [${shape.join(', ')}] of ${dtype} needs ${need} bytes, but data_offsets [${begin}, ${end}] hold ${end - begin}`);
      }
    }
    tensors.set(name, { name, dtype, shape: shape as number[], begin: dataStart + begin, end: dataStart + end });
  }

  // The tensors must tile the data section: sorting by offset handles headers in any key order.
  const sorted = [...tensors.values()].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = dataStart;
  let prev: SafetensorsTensor | null = null;
  for (const t of sorted) {
    if (t.begin < at) {
      fail(label, `tensor "${t.name}" (bytes ${t.begin - dataStart}..${t.end - dataStart}) overlaps tensor "${prev?.name}" (ending at ${at - dataStart})`);
    }
    if (t.begin > at) fail(label, `${t.begin - at} unused byte(s) before tensor "${t.name}" at data offset ${t.begin - dataStart}`);
    at = t.end;
    prev = t;
  }
  if (at !== bytes.length) fail(label, `${bytes.length - at} byte(s) after the last tensor are not described by the header`);

  return {
    label,
    metadata,
    tensors,
    stored(name: string) {
      const t = tensors.get(name);
      if (!t) throw new ModelFormatError(`${label}: no tensor named "${name}".`);
      if (!READABLE.has(t.dtype)) this.readF32(name); // refuses by name
      return { type: t.dtype as SafetensorsDtype, shape: [...t.shape], bytes: bytes.subarray(t.begin, t.end) };
    },
    readF32(name: string): Float32Array {
      const t = tensors.get(name);
      if (!t) throw new ModelFormatError(`${label}: no tensor named "${name}".`);
      const count = (t.end - t.begin) / (DTYPE_SIZE[t.dtype] ?? 1);
      switch (t.dtype) {
        case 'F32':
          return f32FromBytes(bytes, t.begin, count);
        case 'F16':
          return f16ToF32(bytes, t.begin, count);
        case 'BF16':
          return bf16ToF32(bytes, t.begin, count);
        default:
          throw new UnsupportedModelError(
            `${label}: tensor "${name}" has dtype ${t.dtype}; forklm reads only ${[...READABLE].join(', ')} safetensors. ` +
              `Convert the model to float32, float16 or bfloat16 first.`,
          );
      }
    },
  };
}

export interface SafetensorsInput {
  name: string;
  shape: number[];
  data: Float32Array; // (shape) f32, row-major
  /** Stored dtype (default F32); F16/BF16 round to nearest even. */
  dtype?: SafetensorsDtype;
}

/** Writes a safetensors file; tensors are stored in the given order. */
export function encodeSafetensors(tensors: readonly SafetensorsInput[], metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  const blobs: Uint8Array[] = [];
  let offset = 0;
  for (const t of tensors) {
    const dtype = t.dtype ?? 'F32';
    const blob = dtype === 'F32' ? f32ToBytes(t.data) : f32ToHalfBytes(t.data, dtype);
    header[t.name] = { dtype, shape: t.shape, data_offsets: [offset, offset + blob.length] };
    blobs.push(blob);
    offset += blob.length;
  }
  // Pad the header with spaces to a multiple of 8 so f32 data stays aligned, as the reference writer does.
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, BigInt(json.length), true);
  return concatBytes([len, json, ...blobs]);
}
