// llama2.c checkpoints (the "legacy" version-0 export run.c reads) and its tokenizer.bin.
// Checkpoint: 7 int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; a negative vocab_size
// means an unshared classifier), then raw f32 arrays, each stacked over layers: token_embedding (V, D),
// rms_att (L, D), wq (L, Hq*hd, D), wk (L, Hkv*hd, D), wv (L, Hkv*hd, D), wo (L, D, Hq*hd), rms_ffn (L, D),
// w1 (L, F, D), w2 (L, D, F), w3 (L, F, D), rms_final (D), freq_cis_real (T, hd/2), freq_cis_imag (T, hd/2), and
// wcls (V, D) if unshared. q/k rows are in the interleaved RoPE order (Meta's); the model loader permutes them.
import { ModelFormatError, UnsupportedModelError } from '../errors.js';
import { ByteReader, concatBytes, f32FromBytes, f32ToBytes } from './bytes.js';

export interface Llama2cHeader {
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  /** |vocab_size| */
  vocabSize: number;
  seqLen: number;
  /** vocab_size > 0 in the file: the classifier is the token embedding */
  sharedClassifier: boolean;
}

/** One stacked array of the checkpoint. */
export interface Llama2cSection {
  name: string;
  /** Absolute byte offset */
  begin: number;
  /** (layers, rows, cols) for per-layer arrays, else the array's own shape */
  shape: number[];
  perLayer: boolean;
}

export interface Llama2cCheckpoint {
  readonly label: string;
  readonly header: Llama2cHeader;
  readonly sections: ReadonlyMap<string, Llama2cSection>;
  /**
   * Tensor names: "token_embedding_table", "rms_final_weight", "wcls" (unshared only) and per layer
   * "<section>.<layer>" (e.g. "wq.3"). Shapes are row-major.
   */
  tensorShape(name: string): number[] | null;
  readF32(name: string): Float32Array;
}

const HEADER_BYTES = 28;
/** run.c's newer exports start with this magic ("ak42" little-endian); they are not the legacy format read here. */
const V1_MAGIC = 0x616b3432;

export function parseLlama2cHeader(bytes: Uint8Array, label = 'model.bin'): Llama2cHeader {
  const r = new ByteReader(bytes, label);
  if (bytes.length >= 4 && new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true) === V1_MAGIC) {
    throw new UnsupportedModelError(
      `${label}: this is a llama2.c version 1/2 export ("ak42" magic); forklm reads the legacy format. ` +
        `Export again with llama2.c's export.py --version 0.`,
    );
  }
  const names = ['dim', 'hidden_dim', 'n_layers', 'n_heads', 'n_kv_heads', 'vocab_size', 'seq_len'] as const;
  const v = names.map((n) => r.i32(`the header field ${n}`));
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, vocab, seqLen] = v;
  names.forEach((n, i) => {
    if (n !== 'vocab_size' && v[i] <= 0) throw new ModelFormatError(`${label}: header field ${n} is ${v[i]}, not positive; this is not a llama2.c checkpoint.`);
  });
  if (vocab === 0 || vocab === -2147483648) throw new ModelFormatError(`${label}: header field vocab_size is ${vocab}; this is not a llama2.c checkpoint.`);
  if (dim % nHeads !== 0 || (dim / nHeads) % 2 !== 0) {
    throw new ModelFormatError(`${label}: dim ${dim} is not n_heads ${nHeads} times an even head size; this is not a llama2.c checkpoint.`);
  }
  if (nKvHeads > nHeads || nHeads % nKvHeads !== 0) {
    throw new ModelFormatError(`${label}: n_heads ${nHeads} is not a multiple of n_kv_heads ${nKvHeads}; this is not a llama2.c checkpoint.`);
  }
  return { dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize: Math.abs(vocab), seqLen, sharedClassifier: vocab > 0 };
}

/** The stacked arrays in file order with their shapes (in f32 elements). */
function sectionShapes(h: Llama2cHeader): [string, number[], boolean][] {
  const hd = h.dim / h.nHeads;
  const q = h.nHeads * hd;
  const kv = h.nKvHeads * hd;
  const L = h.nLayers;
  const s: [string, number[], boolean][] = [
    ['token_embedding_table', [h.vocabSize, h.dim], false],
    ['rms_att_weight', [L, h.dim], true],
    ['wq', [L, q, h.dim], true],
    ['wk', [L, kv, h.dim], true],
    ['wv', [L, kv, h.dim], true],
    ['wo', [L, h.dim, q], true],
    ['rms_ffn_weight', [L, h.dim], true],
    ['w1', [L, h.hiddenDim, h.dim], true],
    ['w2', [L, h.dim, h.hiddenDim], true],
    ['w3', [L, h.hiddenDim, h.dim], true],
    ['rms_final_weight', [h.dim], false],
    ['freq_cis_real', [h.seqLen, hd / 2], false],
    ['freq_cis_imag', [h.seqLen, hd / 2], false],
  ];
  if (!h.sharedClassifier) s.push(['wcls', [h.vocabSize, h.dim], false]);
  return s;
}

/** The exact file size a header implies, computed in BigInt so hostile headers cannot overflow it. */
export function llama2cFileSize(h: Llama2cHeader): bigint {
  let n = BigInt(HEADER_BYTES);
  for (const [, shape] of sectionShapes(h)) n += 4n * shape.reduce((a, d) => a * BigInt(d), 1n);
  return n;
}

export function parseLlama2cCheckpoint(bytes: Uint8Array, label = 'model.bin'): Llama2cCheckpoint {
  const header = parseLlama2cHeader(bytes, label);
  const expected = llama2cFileSize(header);
  if (expected !== BigInt(bytes.length)) {
    const h = header;
    throw new ModelFormatError(
      `${label}: the header (dim ${h.dim}, hidden_dim ${h.hiddenDim}, n_layers ${h.nLayers}, n_heads ${h.nHeads}, ` +
        `n_kv_heads ${h.nKvHeads}, vocab_size ${h.sharedClassifier ? '' : '-'}${h.vocabSize}, seq_len ${h.seqLen}) ` +
        `implies a ${expected}-byte file, but it has ${bytes.length} bytes. The file is truncated, corrupt or not a ` +
        `legacy llama2.c checkpoint: download it again.`,
    );
  }
  const sections = new Map<string, Llama2cSection>();
  let at = HEADER_BYTES;
  for (const [name, shape, perLayer] of sectionShapes(header)) {
    sections.set(name, { name, begin: at, shape, perLayer });
    at += 4 * shape.reduce((a, d) => a * d, 1);
  }
  const locate = (name: string): { begin: number; shape: number[] } | null => {
    const dot = name.lastIndexOf('.');
    if (dot > 0) {
      const s = sections.get(name.slice(0, dot));
      const layer = Number(name.slice(dot + 1));
      if (!s?.perLayer || !Number.isInteger(layer) || layer < 0 || layer >= header.nLayers) return null;
      const shape = s.shape.slice(1);
      const size = shape.reduce((a, d) => a * d, 1);
      return { begin: s.begin + 4 * size * layer, shape };
    }
    const s = sections.get(name);
    return s && !s.perLayer ? { begin: s.begin, shape: s.shape } : null;
  };
  return {
    label,
    header,
    sections,
    tensorShape: (name) => locate(name)?.shape ?? null,
    readF32(name: string): Float32Array {
      const t = locate(name);
      if (!t) throw new ModelFormatError(`${label}: a llama2.c checkpoint has no array "${name}".`);
      return f32FromBytes(bytes, t.begin, t.shape.reduce((a, d) => a * d, 1));
    },
  };
}

/** Per-layer arrays in llama2.c's meaning and order (q/k rows already interleaved), for the writer. */
export interface Llama2cArrays {
  header: Llama2cHeader;
  tokenEmbedding: Float32Array; // (V, D)
  layers: {
    rmsAtt: Float32Array; // (D)
    wq: Float32Array; // (Hq*hd, D) interleaved rows
    wk: Float32Array; // (Hkv*hd, D) interleaved rows
    wv: Float32Array; // (Hkv*hd, D)
    wo: Float32Array; // (D, Hq*hd)
    rmsFfn: Float32Array; // (D)
    w1: Float32Array; // (F, D)
    w2: Float32Array; // (D, F)
    w3: Float32Array; // (F, D)
  }[];
  rmsFinal: Float32Array; // (D)
  /** (V, D); required when the header says the classifier is unshared */
  wcls?: Float32Array;
  /** RoPE base for the freq_cis tables run.c ignores (default 10000) */
  ropeTheta?: number;
}

/** Writes a legacy llama2.c checkpoint, with freq_cis tables as llama2.c's export computes them. */
export function encodeLlama2c(a: Llama2cArrays): Uint8Array {
  const h = a.header;
  const head = new Uint8Array(HEADER_BYTES);
  const hv = new DataView(head.buffer);
  [h.dim, h.hiddenDim, h.nLayers, h.nHeads, h.nKvHeads, h.sharedClassifier ? h.vocabSize : -h.vocabSize, h.seqLen].forEach(
    (x, i) => hv.setInt32(4 * i, x, true),
  );
  const hd = h.dim / h.nHeads;
  const theta = a.ropeTheta ?? 10000;
  const re = new Float32Array((h.seqLen * hd) / 2);
  const im = new Float32Array((h.seqLen * hd) / 2);
  for (let t = 0; t < h.seqLen; t++) {
    for (let i = 0; i < hd / 2; i++) {
      const ang = t / theta ** ((2 * i) / hd);
      re[t * (hd / 2) + i] = Math.cos(ang);
      im[t * (hd / 2) + i] = Math.sin(ang);
    }
  }
  const per = (k: keyof Llama2cArrays['layers'][number]) => a.layers.map((l) => f32ToBytes(l[k]));
  const parts = [
    head,
    f32ToBytes(a.tokenEmbedding),
    ...per('rmsAtt'), ...per('wq'), ...per('wk'), ...per('wv'), ...per('wo'),
    ...per('rmsFfn'), ...per('w1'), ...per('w2'), ...per('w3'),
    f32ToBytes(a.rmsFinal), f32ToBytes(re), f32ToBytes(im),
  ];
  if (!h.sharedClassifier) {
    if (!a.wcls) throw new ModelFormatError('encodeLlama2c: an unshared classifier needs wcls.');
    parts.push(f32ToBytes(a.wcls));
  }
  return concatBytes(parts);
}

// ---- tokenizer.bin ----

export function encodeLlama2cTokenizer(t: { tokens: readonly string[]; scores: ArrayLike<number> }): Uint8Array {
  const enc = new TextEncoder();
  const pieces = t.tokens.map((s) => enc.encode(s));
  const maxLen = pieces.reduce((m, p) => Math.max(m, p.length), 1);
  const parts: Uint8Array[] = [];
  const head = new Uint8Array(4);
  new DataView(head.buffer).setInt32(0, maxLen, true);
  parts.push(head);
  pieces.forEach((p, i) => {
    const h = new Uint8Array(8);
    const v = new DataView(h.buffer);
    v.setFloat32(0, t.scores[i], true);
    v.setInt32(4, p.length, true);
    parts.push(h, p);
  });
  return concatBytes(parts);
}
