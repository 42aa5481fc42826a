// GGUF files: metadata and tensor infos through @huggingface/gguf, tensor data read here with every range checked
// against the file. The package only parses by URL (fetch with Range requests, or a local path in Node), so an
// in-memory file is served to it through a fetch stub; its own error messages are wrapped in ModelFormatError.
// A small writer (encodeGguf) makes synthetic files for tests and exports.
import { GGMLQuantizationType, GGUFValueType, gguf } from '@huggingface/gguf';
import type { MetadataValue } from '@huggingface/gguf';
import { ForkLMError, ModelFormatError, UnsupportedModelError } from '../errors.js';
import { bf16ToF32, concatBytes, f16ToF32, f32FromBytes, f32ToBytes, f32ToHalfBytes, shapeElements } from './bytes.js';
import { ggmlTypeName, layoutOf, storageTypeOfGgml, STORAGE_TYPES, type StorageType } from '../weights/types.js';
import { dequantize } from '../weights/dequant.js';

export type { MetadataValue } from '@huggingface/gguf';
export { GGUFValueType } from '@huggingface/gguf';

const GGUF_MAGIC = 0x46554747; // "GGUF" read as little-endian u32
const DEFAULT_ALIGNMENT = 32;
/** ggml type id -> storage type, for the types forklm runs (src/weights/types.ts: block sizes and layouts) */
const STORED = new Map<number, StorageType>(STORAGE_TYPES.map((t) => [layoutOf(t).ggmlType, t]));
/** The package serves the header in 2 MB chunks and may prefetch one chunk past the end; more means a runaway header. */
const CHUNK = 2_000_000;

export interface GgufTensor {
  name: string;
  /** ggml type id (0 F32, 1 F16, 30 BF16, others quantized) */
  ggmlType: number;
  typeName: string;
  /** The storage type, or null for a ggml type forklm does not run (IQ*, TQ*, MXFP4, Q2_K, ...) */
  storage: StorageType | null;
  /** Row-major, outermost first: GGUF's ne[] reversed, so a (out, in) matrix reads [out, in] like safetensors */
  shape: number[];
  /** Absolute byte offset in the file */
  begin: number;
  /** Byte length; null for types forklm does not run */
  byteLength: number | null;
}

export interface GgufFile {
  readonly label: string;
  readonly version: number;
  readonly metadata: Readonly<Record<string, MetadataValue>>;
  readonly tensors: ReadonlyMap<string, GgufTensor>;
  readonly alignment: number;
  /** Absolute offset of the tensor data section */
  readonly dataOffset: number;
  /** The values of a tensor as f32 (a quantized one dequantized: meant for vectors; matrices stay stored: `stored`). */
  readF32(name: string): Float32Array;
  /** The raw stored bytes of a tensor (any storage type), e.g. to compare two tensors without converting. */
  rawBytes(name: string): Uint8Array;
  /** A tensor as stored: its type, row-major shape and bytes (a view of the file, nothing copied or widened). */
  stored(name: string): { type: StorageType; shape: number[]; bytes: Uint8Array };
}

function fail(label: string, msg: string, cause?: unknown): never {
  throw new ModelFormatError(`${label}: ${msg}. The GGUF file is corrupt or truncated: download it again.`, { cause });
}

/** Serves `bytes` to the package's Range-request reader. */
function memoryFetch(bytes: Uint8Array, label: string): typeof fetch {
  let pastEnd = 0;
  return (async (_url: unknown, init?: { headers?: Record<string, string> }) => {
    const m = /bytes=(\d+)-(\d+)/.exec(init?.headers?.Range ?? '');
    if (!m) throw new ModelFormatError(`${label}: internal: unexpected GGUF read request.`);
    const start = Number(m[1]);
    const end = Math.min(Number(m[2]) + 1, bytes.length);
    if (start >= bytes.length && ++pastEnd > 1) {
      fail(label, `the header runs past the end of the ${bytes.length}-byte file`);
    }
    const body = start < end ? bytes.slice(start, end) : new Uint8Array(0);
    return new Response(body, {
      status: 206,
      headers: { 'content-range': `bytes ${start}-${Math.max(start, end - 1)}/${bytes.length}` },
    });
  }) as typeof fetch;
}

function toSafeNumber(v: bigint | number, label: string, what: string): number {
  const n = typeof v === 'bigint' ? Number(v) : v;
  if (!Number.isSafeInteger(n) || n < 0) fail(label, `${what} is ${v}, not a plausible size or offset`);
  return n;
}

export async function parseGguf(bytes: Uint8Array, label = 'model.gguf'): Promise<GgufFile> {
  if (bytes.length < 24) fail(label, `the file has ${bytes.length} bytes, fewer than a GGUF header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== GGUF_MAGIC) fail(label, 'it does not start with the GGUF magic bytes');
  const version = view.getUint32(4, true);
  if (version !== 2 && version !== 3) {
    if ((version & 0xffff) === 0) throw new UnsupportedModelError(`${label}: big-endian GGUF files are not supported; use a little-endian conversion.`);
    throw new UnsupportedModelError(`${label}: GGUF version ${version} is not supported (only 2 and 3); convert the model again with a current llama.cpp.`);
  }
  // Bound the counts by the file size before the package loops over them: a tensor info is at least 24 bytes
  // (name length 8, n_dims 4, type 4, offset 8) and a key/value at least 13 (key length 8, type 4, one byte).
  const tensorCount = view.getBigUint64(8, true);
  const kvCount = view.getBigUint64(16, true);
  if (tensorCount > BigInt(Math.floor(bytes.length / 24))) fail(label, `it declares ${tensorCount} tensors, more than its ${bytes.length} bytes can describe`);
  if (kvCount > BigInt(Math.floor(bytes.length / 13))) fail(label, `it declares ${kvCount} metadata entries, more than its ${bytes.length} bytes can hold`);

  let parsed: Awaited<ReturnType<typeof gguf>>;
  try {
    parsed = await gguf('https://in-memory.invalid/model.gguf', { fetch: memoryFetch(bytes, label) });
  } catch (cause) {
    if (cause instanceof ForkLMError) throw cause;
    fail(label, `its header does not parse (${cause instanceof Error ? cause.message : String(cause)})`, cause);
  }
  // The package reads zeros past the end of what it was served; a header that ends beyond the file was read partly
  // from nothing. Its reads go strictly forward, so checking where the header ends covers every read.
  const headerEnd = parsed.tensorInfoByteRange[1];
  if (headerEnd > bytes.length) fail(label, `the header ends at byte ${headerEnd}, past the end of the ${bytes.length}-byte file`);
  const metadata = parsed.metadata as Record<string, MetadataValue>;
  const rawAlignment = metadata['general.alignment'] ?? DEFAULT_ALIGNMENT;
  if (typeof rawAlignment !== 'number' && typeof rawAlignment !== 'bigint') fail(label, 'general.alignment is not an integer');
  const alignment = toSafeNumber(rawAlignment, label, 'general.alignment');
  if (alignment === 0 || alignment % 8 !== 0 || alignment > 1 << 20) fail(label, `general.alignment ${alignment} is not a multiple of 8 up to 1 MiB`);
  const dataOffset = Math.ceil(headerEnd / alignment) * alignment;
  if (dataOffset > bytes.length) fail(label, `the tensor data would start at byte ${dataOffset}, past the end of the file`);
  const dataLen = bytes.length - dataOffset;

  const tensors = new Map<string, GgufTensor>();
  for (const info of parsed.tensorInfos) {
    const t = `tensor "${info.name}"`;
    if (tensors.has(info.name)) fail(label, `${t} is listed twice`);
    const dims = info.shape.map((d, i) => toSafeNumber(d, label, `${t} dimension ${i}`));
    const rel = toSafeNumber(info.offset, label, `${t} offset`);
    if (rel % alignment !== 0) fail(label, `${t}: offset ${rel} is not a multiple of the alignment ${alignment}`);
    const storage = STORED.get(info.dtype) ?? null;
    let byteLength: number | null = null;
    if (storage) {
      const { qk, blockBytes } = layoutOf(storage);
      // GGUF's ne[0] (dims[0]) is the row: quantized rows are whole blocks.
      if (dims.length > 0 && dims[0] % qk !== 0) fail(label, `${t}: ${storage} rows of ${dims[0]} values are not whole ${qk}-value blocks`);
      const need = (shapeElements(dims) / BigInt(qk)) * BigInt(blockBytes);
      if (BigInt(rel) + need > BigInt(dataLen)) {
        fail(label, `${t}: ${storage} shape [${[...dims].reverse().join(', ')}] at data offset ${rel} runs past the ${dataLen}-byte data section (it needs ${need} bytes)`);
      }
      byteLength = Number(need); // at most dataLen: exact
    } else if (rel > dataLen) {
      fail(label, `${t}: data offset ${rel} is past the ${dataLen}-byte data section`);
    }
    tensors.set(info.name, {
      name: info.name,
      ggmlType: info.dtype,
      typeName: ggmlTypeName(info.dtype),
      storage,
      shape: [...dims].reverse(),
      begin: dataOffset + rel,
      byteLength,
    });
  }
  // Against the furthest end so far, not only the previous tensor: a zero-element tensor between two others must not
  // hide their overlap.
  const sized = [...tensors.values()].filter((t) => t.byteLength !== null).sort((a, b) => a.begin - b.begin);
  let reach: GgufTensor | null = null;
  for (const b of sized) {
    if (reach && b.byteLength! > 0 && reach.begin + reach.byteLength! > b.begin) fail(label, `tensor "${b.name}" overlaps tensor "${reach.name}"`);
    if (!reach || b.begin + b.byteLength! > reach.begin + reach.byteLength!) reach = b;
  }

  const get = (name: string): GgufTensor & { byteLength: number } => {
    const t = tensors.get(name);
    if (!t) throw new ModelFormatError(`${label}: no tensor named "${name}".`);
    if (t.byteLength === null || t.storage === null) storageTypeOfGgml(t.ggmlType, `${label}: tensor "${name}"`);
    return t as GgufTensor & { byteLength: number };
  };
  return {
    label,
    version,
    metadata,
    tensors,
    alignment,
    dataOffset,
    readF32(name: string): Float32Array {
      const t = get(name);
      const count = t.shape.reduce((a, b) => a * b, 1);
      if (t.storage === 'F32') return f32FromBytes(bytes, t.begin, count);
      if (t.storage === 'F16') return f16ToF32(bytes, t.begin, count);
      if (t.storage === 'BF16') return bf16ToF32(bytes, t.begin, count);
      // A quantized vector (norms and biases are F32 in llama.cpp's files, but nothing forbids otherwise).
      return Float32Array.from(dequantize(t.storage!, bytes.subarray(t.begin, t.begin + t.byteLength), count));
    },
    stored(name: string) {
      const t = get(name);
      return { type: t.storage!, shape: [...t.shape], bytes: bytes.subarray(t.begin, t.begin + t.byteLength) };
    },
    rawBytes(name: string): Uint8Array {
      const t = get(name);
      return bytes.subarray(t.begin, t.begin + t.byteLength);
    },
  };
}



// ---- writer ----

export interface GgufKv {
  key: string;
  type: GGUFValueType;
  value: MetadataValue;
  /** element type of an ARRAY */
  subType?: GGUFValueType;
}

export interface GgufTensorInput {
  name: string;
  /** Row-major (outermost first); written as GGUF's reversed ne[] */
  shape: number[];
  data: Float32Array; // (shape) f32, row-major
  dtype?: 'F32' | 'F16' | 'BF16';
}

const enc = new TextEncoder();

function encodeValue(type: GGUFValueType, value: MetadataValue, subType?: GGUFValueType): Uint8Array {
  const b = (n: number, f: (v: DataView) => void): Uint8Array => {
    const out = new Uint8Array(n);
    f(new DataView(out.buffer));
    return out;
  };
  switch (type) {
    case GGUFValueType.UINT8: return b(1, (v) => v.setUint8(0, Number(value)));
    case GGUFValueType.INT8: return b(1, (v) => v.setInt8(0, Number(value)));
    case GGUFValueType.UINT16: return b(2, (v) => v.setUint16(0, Number(value), true));
    case GGUFValueType.INT16: return b(2, (v) => v.setInt16(0, Number(value), true));
    case GGUFValueType.UINT32: return b(4, (v) => v.setUint32(0, Number(value), true));
    case GGUFValueType.INT32: return b(4, (v) => v.setInt32(0, Number(value), true));
    case GGUFValueType.FLOAT32: return b(4, (v) => v.setFloat32(0, Number(value), true));
    case GGUFValueType.BOOL: return b(1, (v) => v.setUint8(0, value ? 1 : 0));
    case GGUFValueType.UINT64: return b(8, (v) => v.setBigUint64(0, BigInt(value as number), true));
    case GGUFValueType.INT64: return b(8, (v) => v.setBigInt64(0, BigInt(value as number), true));
    case GGUFValueType.FLOAT64: return b(8, (v) => v.setFloat64(0, Number(value), true));
    case GGUFValueType.STRING: {
      const s = enc.encode(String(value));
      return concatBytes([encodeValue(GGUFValueType.UINT64, s.length), s]);
    }
    case GGUFValueType.ARRAY: {
      const items = value as MetadataValue[];
      const st = subType ?? GGUFValueType.STRING;
      return concatBytes([
        encodeValue(GGUFValueType.UINT32, st),
        encodeValue(GGUFValueType.UINT64, items.length),
        ...items.map((x) => encodeValue(st, x)),
      ]);
    }
  }
}

/** Writes a GGUF v3 little-endian file with F32/F16/BF16 tensors, in the given order. */
export function encodeGguf(kvs: readonly GgufKv[], tensors: readonly GgufTensorInput[], alignment = DEFAULT_ALIGNMENT): Uint8Array {
  const parts: Uint8Array[] = [
    encodeValue(GGUFValueType.UINT32, GGUF_MAGIC),
    encodeValue(GGUFValueType.UINT32, 3),
    encodeValue(GGUFValueType.UINT64, tensors.length),
    encodeValue(GGUFValueType.UINT64, kvs.length),
  ];
  for (const kv of kvs) {
    parts.push(encodeValue(GGUFValueType.STRING, kv.key), encodeValue(GGUFValueType.UINT32, kv.type), encodeValue(kv.type, kv.value, kv.subType));
  }
  const blobs: Uint8Array[] = [];
  let offset = 0;
  for (const t of tensors) {
    const dtype = t.dtype ?? 'F32';
    const blob = dtype === 'F32' ? f32ToBytes(t.data) : f32ToHalfBytes(t.data, dtype);
    const type = dtype === 'F32' ? GGMLQuantizationType.F32 : dtype === 'F16' ? GGMLQuantizationType.F16 : GGMLQuantizationType.BF16;
    parts.push(encodeValue(GGUFValueType.STRING, t.name), encodeValue(GGUFValueType.UINT32, t.shape.length));
    for (const d of [...t.shape].reverse()) parts.push(encodeValue(GGUFValueType.UINT64, d));
    parts.push(encodeValue(GGUFValueType.UINT32, type), encodeValue(GGUFValueType.UINT64, offset));
    const padded = Math.ceil(blob.length / alignment) * alignment;
    const p = new Uint8Array(padded);
    p.set(blob);
    blobs.push(p);
    offset += padded;
  }
  const header = concatBytes(parts);
  const pad = new Uint8Array(Math.ceil(header.length / alignment) * alignment - header.length);
  return concatBytes([header, pad, ...blobs]);
}
