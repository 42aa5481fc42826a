// Storage types of weight tensors: the dense ones (F32, F16, BF16) and GGUF's block quantizations, with their GGUF
// type ids, block layouts and byte sizes. A quantized tensor is rows of blocks: QK consecutive values of one row share
// one block of `blockBytes` bytes, so a row of K values (K a multiple of QK) takes K / QK * blockBytes bytes.
//
// Block layouts (ggml-common.h and ggml-quants.c of llama.cpp; GGUF docs "GGML types"), byte offsets inside a block,
// f16 little endian:
//   Q8_0  (32 values, 34 B):  d f16 @0, qs int8[32] @2;                        x = d q
//   Q4_0  (32 values, 18 B):  d f16 @0, qs u8[16] @2 (value j low nibble of qs[j], value j+16 high nibble); x = d (q - 8)
//   Q4_1  (32 values, 20 B):  d f16 @0, m f16 @2, qs u8[16] @4 (as Q4_0);     x = d q + m
//   Q5_0  (32 values, 22 B):  d f16 @0, qh u32 @2 (bit j = 5th bit of value j), qs u8[16] @6 (as Q4_0); x = d (q - 16)
//   Q5_1  (32 values, 24 B):  d f16 @0, m f16 @2, qh u32 @4, qs u8[16] @8;    x = d q + m
//   Q4_K (256 values, 144 B): d f16 @0, dmin f16 @2, scales u8[12] @4 (8 sub-blocks of 32: 6-bit scale and min),
//                             qs u8[128] @16 (64-value chunk c: qs[32c + l] low nibble value 64c + l, high 64c + 32 + l);
//                             x = d sc_s q - dmin m_s, s = value / 32
//   Q5_K (256 values, 176 B): d @0, dmin @2, scales[12] @4, qh u8[32] @16 (bit (value / 32) of qh[value % 32]),
//                             qs u8[128] @48 (as Q4_K); x = d sc_s (q + 16 h) - dmin m_s
//   Q6_K (256 values, 210 B): ql u8[128] @0, qh u8[64] @128, scales int8[16] @192, d f16 @208;
//                             value v = 128 n + 32 r + l: low 4 bits ql[64 n + 32 (r & 1) + l] nibble (r >> 1),
//                             high 2 bits (qh[32 n + l] >> 2 r) & 3; x = d scales[v / 16] (q - 32)
import { UnsupportedModelError } from '../errors.js';

export const STORAGE_TYPES = ['F32', 'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q4_K', 'Q5_K', 'Q6_K'] as const;
/** A storage type forklm keeps on the GPU and reads in its kernels. */
export type StorageType = (typeof STORAGE_TYPES)[number];
export type QuantType = Exclude<StorageType, 'F32' | 'F16' | 'BF16'>;

export interface StorageLayout {
  type: StorageType;
  /** GGUF / ggml type id */
  ggmlType: number;
  /** Values per block (1 for the dense types) */
  qk: number;
  /** Bytes per block */
  blockBytes: number;
}

const LAYOUTS: Record<StorageType, StorageLayout> = {
  F32: { type: 'F32', ggmlType: 0, qk: 1, blockBytes: 4 },
  F16: { type: 'F16', ggmlType: 1, qk: 1, blockBytes: 2 },
  BF16: { type: 'BF16', ggmlType: 30, qk: 1, blockBytes: 2 },
  Q4_0: { type: 'Q4_0', ggmlType: 2, qk: 32, blockBytes: 18 },
  Q4_1: { type: 'Q4_1', ggmlType: 3, qk: 32, blockBytes: 20 },
  Q5_0: { type: 'Q5_0', ggmlType: 6, qk: 32, blockBytes: 22 },
  Q5_1: { type: 'Q5_1', ggmlType: 7, qk: 32, blockBytes: 24 },
  Q8_0: { type: 'Q8_0', ggmlType: 8, qk: 32, blockBytes: 34 },
  Q4_K: { type: 'Q4_K', ggmlType: 12, qk: 256, blockBytes: 144 },
  Q5_K: { type: 'Q5_K', ggmlType: 13, qk: 256, blockBytes: 176 },
  Q6_K: { type: 'Q6_K', ggmlType: 14, qk: 256, blockBytes: 210 },
};

/**
 * GGUF types forklm does not run, by id (ggml.h's enum ggml_type; ids 4, 5 and 31-33, 36-38 were removed upstream).
 * Named in the refusal so a user knows which file to pick instead.
 */
const OTHER_GGML_TYPES: Record<number, string> = {
  9: 'Q8_1',
  10: 'Q2_K',
  11: 'Q3_K',
  15: 'Q8_K',
  16: 'IQ2_XXS',
  17: 'IQ2_XS',
  18: 'IQ3_XXS',
  19: 'IQ1_S',
  20: 'IQ4_NL',
  21: 'IQ3_S',
  22: 'IQ2_S',
  23: 'IQ4_XS',
  24: 'I8',
  25: 'I16',
  26: 'I32',
  27: 'I64',
  28: 'F64',
  29: 'IQ1_M',
  31: 'Q4_0_4_4',
  32: 'Q4_0_4_8',
  33: 'Q4_0_8_8',
  34: 'TQ1_0',
  35: 'TQ2_0',
  36: 'IQ4_NL_4_4',
  37: 'IQ4_NL_4_8',
  38: 'IQ4_NL_8_8',
  39: 'MXFP4',
};

const BY_GGML = new Map<number, StorageLayout>(Object.values(LAYOUTS).map((l) => [l.ggmlType, l]));

export function layoutOf(type: StorageType): StorageLayout {
  return LAYOUTS[type];
}

export function isQuantized(type: StorageType): type is QuantType {
  return LAYOUTS[type].qk > 1;
}

/** The name llama.cpp gives a ggml type id (for messages), or `type <id>` for an id it does not know either. */
export function ggmlTypeName(id: number): string {
  return BY_GGML.get(id)?.type ?? OTHER_GGML_TYPES[id] ?? `type ${id}`;
}

/**
 * The storage type of a GGUF tensor's ggml type id. Throws UnsupportedModelError naming the type (IQ*, TQ*, MXFP4,
 * Q2_K, Q3_K, ...) for one forklm does not run; `what` names the tensor in the message.
 */
export function storageTypeOfGgml(id: number, what = 'a tensor'): StorageType {
  const l = BY_GGML.get(id);
  if (l) return l.type;
  throw new UnsupportedModelError(
    `${what} is stored as ${ggmlTypeName(id)}, which forklm does not run (it runs ${STORAGE_TYPES.join(', ')}). ` +
      'Download a file quantized to one of those (Q4_K_M, Q5_K_M, Q6_K, Q8_0 or F16 are common), or requantize it ' +
      "with llama.cpp's llama-quantize.",
  );
}

/**
 * Bytes of a row-major (rows, cols) tensor of `type`: cols must be a multiple of the type's block size (GGUF stores
 * rows of whole blocks; throws UnsupportedModelError otherwise).
 */
export function tensorBytes(type: StorageType, rows: number, cols: number): number {
  return rows * rowBytes(type, cols);
}

/** Bytes of one row of `cols` values. */
export function rowBytes(type: StorageType, cols: number): number {
  const l = LAYOUTS[type];
  if (cols % l.qk !== 0) {
    throw new UnsupportedModelError(`a ${type} row of ${cols} values is not a whole number of ${l.qk}-value blocks.`);
  }
  return (cols / l.qk) * l.blockBytes;
}

/**
 * Values per block as the kernels read them: the dense types in blocks of 4 (one vec4), the quantized ones in their
 * GGUF blocks. A matrix the kernels read needs rows of a whole number of these.
 */
export function kernelBlock(type: StorageType): number {
  return Math.max(4, LAYOUTS[type].qk);
}
