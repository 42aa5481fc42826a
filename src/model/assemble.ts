// Canonical ModelWeights from a file's tensors, per family and format: where each weight lives (the weight-name
// map) and how a stored layout becomes the canonical one (row-major (out, in), separate q/k/v and gate/up, q/k rows in
// rotate-half order). Every tensor is checked against the shape the spec implies before it is read.
//   Phi-3: qkv_proj (qDim + 2 kvDim, D) rows [q | k | v]; gate_up_proj (2F, D) rows [gate | up]  -> split
//   GPT-2: Conv1D weights stored (in, out): c_attn (D, 3D), c_proj, c_fc                        -> transposed, split
//   GPT-NeoX: query_key_value (3D, D) with rows per head [q_h | k_h | v_h]                       -> de-interleaved
//   GGUF llama-family (llama, mistral, granite, smollm3): q/k rows interleaved by the converter   -> permuted back
// Matrices stay as the file stores them (StoredMatrix, read when uploaded): splits and permutations move whole rows
// (of quantized blocks too), transposes move values (dense types only); vectors are read as f32.
import { ModelFormatError } from '../errors.js';
import { asStored, rowRange, selectRows, transposeStored, type StoredMatrix } from '../weights/stored_matrix.js';
import { interleavedToHalf, interleavedToHalfIndex } from './permute.js';
import { layerNormSlots, specSizes } from './spec.js';
import type { LayerWeights, ModelSpec, ModelWeights, NormWeights } from './spec.js';

/** A format's tensors by name, with row-major shapes. */
export interface TensorProvider {
  readonly label: string;
  names(): string[];
  /** null when the tensor is absent */
  shape(name: string): number[] | null;
  read(name: string): Float32Array;
  /** A 2-D tensor as stored, read lazily; providers without it serve matrices through `read` as F32. */
  stored?(name: string): StoredMatrix;
  /** Storage type as the file names it (F32, BF16, Q8_0, ...). */
  dtype(name: string): string;
}

export type WeightFormat = 'hf' | 'gguf' | 'llama2c';

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** (rows, cols) row-major -> (cols, rows). */
export function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c];
  return out;
}

/** Rows [from, to) of a (rows, cols) matrix (cols = 1 for a vector). */
const rowsOf = (a: Float32Array, cols: number, from: number, to: number) => a.slice(from * cols, to * cols);

/** GPT-NeoX's per-head [q_h | k_h | v_h] rows -> [q | k | v] (cols = 1 for the bias). */
function neoxToQkv(a: Float32Array, nHeads: number, headDim: number, cols: number): Float32Array[] {
  const parts = [0, 1, 2].map(() => new Float32Array(nHeads * headDim * cols));
  const block = headDim * cols;
  for (let h = 0; h < nHeads; h++) {
    for (let j = 0; j < 3; j++) parts[j].set(a.subarray((3 * h + j) * block, (3 * h + j + 1) * block), h * block);
  }
  return parts;
}

/** GPT-NeoX's per-head [q_h | k_h | v_h] rows -> the rows of q, k and v (source row indices). */
function neoxRowIndex(nHeads: number, headDim: number): number[][] {
  return [0, 1, 2].map((j) => Array.from({ length: nHeads * headDim }, (_, r) => (3 * Math.floor(r / headDim) + j) * headDim + (r % headDim)));
}

class Reader {
  readonly used = new Set<string>();
  constructor(
    readonly spec: ModelSpec,
    readonly p: TensorProvider,
  ) {}
  has(name: string): boolean {
    return this.p.shape(name) !== null;
  }
  take(name: string, want: number[]): Float32Array {
    this.check(name, want);
    this.used.add(name);
    return this.p.read(name);
  }
  /** Only when `present` (the spec says the tensor exists). */
  maybe(present: boolean, name: string, want: number[]): Float32Array | null {
    return present ? this.take(name, want) : null;
  }
  /** A (rows, cols) matrix as stored, checked like take; its bytes are read when uploaded. */
  matrix(name: string, want: [number, number]): StoredMatrix {
    this.check(name, want);
    this.used.add(name);
    const p = this.p;
    if (p.stored) return p.stored(name);
    return { type: 'F32', rows: want[0], cols: want[1], bytes: () => asStored(p.read(name), want[0], want[1]).bytes() };
  }
  maybeMatrix(present: boolean, name: string, want: [number, number]): StoredMatrix | null {
    return present ? this.matrix(name, want) : null;
  }
  private check(name: string, want: number[]): void {
    const shape = this.p.shape(name);
    if (!shape) throw new ModelFormatError(`${this.p.label}: tensor "${name}" is missing; the file is incomplete or not a ${this.spec.family} model.`);
    if (!sameShape(shape, want)) {
      const s = this.spec;
      throw new ModelFormatError(
        `${this.p.label}: tensor "${name}" has shape [${shape.join(', ')}], expected [${want.join(', ')}] for this config ` +
          `(${s.family}: dim ${s.dim}, heads ${s.attention.nHeads}/${s.attention.nKvHeads} of ${s.attention.headDim}, MLP ${s.mlp.hiddenDim}, vocab ${s.vocabSize}); ` +
          `the weights do not match the config.`,
      );
    }
  }
}

/** Names of one layer's tensors in one layout; null = absent in that layout. */
interface LayerNames {
  attnNorm: string | null;
  attnPostNorm: string | null;
  mlpNorm: string | null;
  mlpPostNorm: string | null;
  q: string;
  k: string;
  v: string;
  o: string;
  qNorm: string;
  kNorm: string;
  gate: string;
  up: string;
  down: string;
}

/** Reads a layer stored with separate projections (all HF llama-style families, GGUF, llama2.c). */
function readSeparate(r: Reader, n: LayerNames, withSuffix: boolean): LayerWeights {
  const s = r.spec;
  const { qDim, kvDim } = specSizes(s);
  const D = s.dim;
  const F = s.mlp.hiddenDim;
  const a = s.attention;
  const sfx = (x: string, kind: 'weight' | 'bias') => (withSuffix ? `${x}.${kind}` : x);
  const slots = layerNormSlots(s.residual);
  const norm = (present: boolean, base: string | null): NormWeights | null => {
    if (!present) return null;
    if (base === null) throw new ModelFormatError(`${r.p.label}: this format has no slot for a ${s.residual.layout} norm.`);
    return { weight: r.take(sfx(base, 'weight'), [D]), bias: r.maybe(s.norm.bias, sfx(base, 'bias'), [D]) };
  };
  const qkShape = (full: number) => (a.qkNorm === 'head' ? [a.headDim] : [full]);
  return {
    attnNorm: norm(slots.attnNorm, n.attnNorm),
    attnPostNorm: norm(slots.attnPostNorm, n.attnPostNorm),
    mlpNorm: norm(slots.mlpNorm, n.mlpNorm),
    mlpPostNorm: norm(slots.mlpPostNorm, n.mlpPostNorm),
    wq: r.matrix(sfx(n.q, 'weight'), [qDim, D]),
    wk: r.matrix(sfx(n.k, 'weight'), [kvDim, D]),
    wv: r.matrix(sfx(n.v, 'weight'), [kvDim, D]),
    bq: r.maybe(a.bias.q, sfx(n.q, 'bias'), [qDim]),
    bk: r.maybe(a.bias.k, sfx(n.k, 'bias'), [kvDim]),
    bv: r.maybe(a.bias.v, sfx(n.v, 'bias'), [kvDim]),
    wo: r.matrix(sfx(n.o, 'weight'), [D, qDim]),
    bo: r.maybe(a.bias.o, sfx(n.o, 'bias'), [D]),
    qNorm: r.maybe(a.qkNorm !== null, sfx(n.qNorm, 'weight'), qkShape(qDim)),
    kNorm: r.maybe(a.qkNorm !== null, sfx(n.kNorm, 'weight'), qkShape(kvDim)),
    wGate: r.maybeMatrix(s.mlp.gated, sfx(n.gate, 'weight'), [F, D]),
    bGate: r.maybe(s.mlp.bias.gate, sfx(n.gate, 'bias'), [F]),
    wUp: r.matrix(sfx(n.up, 'weight'), [F, D]),
    bUp: r.maybe(s.mlp.bias.up, sfx(n.up, 'bias'), [F]),
    wDown: r.matrix(sfx(n.down, 'weight'), [D, F]),
    bDown: r.maybe(s.mlp.bias.down, sfx(n.down, 'bias'), [D]),
  };
}

function hfLlamaNames(s: ModelSpec, i: number): LayerNames {
  const p = `model.layers.${i}.`;
  const sandwich = s.residual.layout === 'sandwich';
  return {
    attnNorm: `${p}input_layernorm`,
    attnPostNorm: `${p}post_attention_layernorm`,
    mlpNorm: sandwich ? `${p}pre_feedforward_layernorm` : `${p}post_attention_layernorm`,
    mlpPostNorm: `${p}post_feedforward_layernorm`,
    q: `${p}self_attn.q_proj`,
    k: `${p}self_attn.k_proj`,
    v: `${p}self_attn.v_proj`,
    o: `${p}self_attn.o_proj`,
    qNorm: `${p}self_attn.q_norm`,
    kNorm: `${p}self_attn.k_norm`,
    gate: `${p}mlp.gate_proj`,
    up: `${p}mlp.up_proj`,
    down: `${p}mlp.down_proj`,
  };
}

function ggufNames(i: number, family: ModelSpec['family']): LayerNames {
  const p = `blk.${i}.`;
  return {
    attnNorm: `${p}attn_norm`,
    attnPostNorm: `${p}post_attention_norm`,
    mlpNorm: `${p}ffn_norm`,
    mlpPostNorm: family === 'olmo2' || family === 'gemma2' || family === 'gemma3' ? `${p}post_ffw_norm` : `${p}ffn_post_norm`,
    q: `${p}attn_q`,
    k: `${p}attn_k`,
    v: `${p}attn_v`,
    o: `${p}attn_output`,
    qNorm: `${p}attn_q_norm`,
    kNorm: `${p}attn_k_norm`,
    gate: `${p}ffn_gate`,
    up: `${p}ffn_up`,
    down: `${p}ffn_down`,
  };
}

/** A part of a fused tensor: rows [at, at + shape[0]) of `from`. */
interface VirtualPart {
  shape: number[];
  data: () => Float32Array;
  stored: () => StoredMatrix;
  from: string;
}

/** A stand-in provider that serves split parts of fused tensors under the separate names readSeparate asks for. */
function withVirtual(p: TensorProvider, virtual: Map<string, VirtualPart>, used: Set<string>): TensorProvider {
  return {
    label: p.label,
    names: () => p.names(),
    shape: (n) => virtual.get(n)?.shape ?? p.shape(n),
    read: (n) => {
      const v = virtual.get(n);
      if (v) return used.add(v.from), v.data();
      return p.read(n);
    },
    stored: (n) => {
      const v = virtual.get(n);
      if (v) return used.add(v.from), v.stored();
      const rc = p.shape(n)!;
      return p.stored ? p.stored(n) : { type: 'F32', rows: rc[0], cols: rc[1], bytes: () => asStored(p.read(n), rc[0], rc[1]).bytes() };
    },
    dtype: (n) => p.dtype(virtual.get(n)?.from ?? n),
  };
}

/** Registers the parts of a fused (rows, cols) tensor, split by rows into `parts` named tensors, when it is present. */
function splitRows(
  p: TensorProvider, virtual: Map<string, VirtualPart>,
  fused: string, parts: [string, number][], cols: number | null,
): void {
  const shape = p.shape(fused);
  if (!shape) return;
  const total = parts.reduce((n, [, rows]) => n + rows, 0);
  const want = cols === null ? [total] : [total, cols];
  if (!sameShape(shape, want)) throw new ModelFormatError(`${p.label}: fused tensor "${fused}" has shape [${shape.join(', ')}], expected [${want.join(', ')}].`);
  let cached: Float32Array | null = null;
  let at = 0;
  for (const [name, rows] of parts) {
    const from = at;
    const whole = (): StoredMatrix => (p.stored ? p.stored(fused) : asStored((cached ??= p.read(fused)), total, cols ?? 1));
    virtual.set(name, {
      shape: cols === null ? [rows] : [rows, cols],
      from: fused,
      data: () => rowsOf((cached ??= p.read(fused)), cols ?? 1, from, from + rows),
      stored: () => rowRange(whole(), from, from + rows),
    });
    at += rows;
  }
}

/** HF Phi-3 and GGUF phi3/gpt2/gptneox: fused q|k|v and gate|up tensors served as separate ones. */
function unfuse(s: ModelSpec, p: TensorProvider, n: LayerNames[], fusedQkv: (i: number) => string, fusedGateUp: ((i: number) => string) | null, used: Set<string>): TensorProvider {
  const { qDim, kvDim } = specSizes(s);
  const virtual = new Map<string, VirtualPart>();
  n.forEach((names, i) => {
    for (const [kind, cols] of [['weight', s.dim], ['bias', null]] as const) {
      splitRows(p, virtual, `${fusedQkv(i)}.${kind}`, [[`${names.q}.${kind}`, qDim], [`${names.k}.${kind}`, kvDim], [`${names.v}.${kind}`, kvDim]], cols);
    }
    if (fusedGateUp) splitRows(p, virtual, `${fusedGateUp(i)}.weight`, [[`${names.gate}.weight`, s.mlp.hiddenDim], [`${names.up}.weight`, s.mlp.hiddenDim]], s.dim);
  });
  return withVirtual(p, virtual, used);
}

function finish(r: Reader, layers: LayerWeights[], embed: string, posEmbed: string | null, finalNorm: string, lmHead: string, suffix = true): ModelWeights {
  const s = r.spec;
  const w = (x: string, k: 'weight' | 'bias') => (suffix ? `${x}.${k}` : x);
  const embedW = r.matrix(embed, [s.vocabSize, s.dim]);
  return {
    spec: s,
    embed: embedW,
    posEmbed: posEmbed === null ? null : r.matrix(posEmbed, [s.maxSeqLen, s.dim]),
    layers,
    finalNorm: { weight: r.take(w(finalNorm, 'weight'), [s.dim]), bias: r.maybe(s.norm.bias, w(finalNorm, 'bias'), [s.dim]) },
    lmHead: s.tiedEmbeddings ? embedW : r.matrix(lmHead, [s.vocabSize, s.dim]),
  };
}

function hfGpt2(r: Reader): ModelWeights {
  const s = r.spec;
  const D = s.dim;
  const F = s.mlp.hiddenDim;
  const pre = r.has('transformer.wte.weight') ? 'transformer.' : '';
  const conv = (name: string, inDim: number, outDim: number) => transposeStored(r.matrix(name, [inDim, outDim]));
  const layers = Array.from({ length: s.nLayers }, (_, i): LayerWeights => {
    const p = `${pre}h.${i}.`;
    const ln = (x: string): NormWeights => ({ weight: r.take(`${p}${x}.weight`, [D]), bias: r.take(`${p}${x}.bias`, [D]) });
    const qkv = conv(`${p}attn.c_attn.weight`, D, 3 * D);
    const bqkv = r.take(`${p}attn.c_attn.bias`, [3 * D]);
    return {
      attnNorm: ln('ln_1'), attnPostNorm: null, mlpNorm: ln('ln_2'), mlpPostNorm: null,
      wq: rowRange(qkv, 0, D), wk: rowRange(qkv, D, 2 * D), wv: rowRange(qkv, 2 * D, 3 * D),
      bq: bqkv.slice(0, D), bk: bqkv.slice(D, 2 * D), bv: bqkv.slice(2 * D),
      wo: conv(`${p}attn.c_proj.weight`, D, D), bo: r.take(`${p}attn.c_proj.bias`, [D]),
      qNorm: null, kNorm: null, wGate: null, bGate: null,
      wUp: conv(`${p}mlp.c_fc.weight`, D, F), bUp: r.take(`${p}mlp.c_fc.bias`, [F]),
      wDown: conv(`${p}mlp.c_proj.weight`, F, D), bDown: r.take(`${p}mlp.c_proj.bias`, [D]),
    };
  });
  return finish(r, layers, `${pre}wte.weight`, `${pre}wpe.weight`, `${pre}ln_f`, 'lm_head.weight');
}

function hfNeox(r: Reader): ModelWeights {
  const s = r.spec;
  const D = s.dim;
  const F = s.mlp.hiddenDim;
  const a = s.attention;
  const layers = Array.from({ length: s.nLayers }, (_, i): LayerWeights => {
    const p = `gpt_neox.layers.${i}.`;
    const ln = (x: string): NormWeights => ({ weight: r.take(`${p}${x}.weight`, [D]), bias: r.take(`${p}${x}.bias`, [D]) });
    const qkv = r.matrix(`${p}attention.query_key_value.weight`, [3 * D, D]);
    const [wq, wk, wv] = neoxRowIndex(a.nHeads, a.headDim).map((index) => selectRows(qkv, index));
    const qkvBias = a.bias.q ? neoxToQkv(r.take(`${p}attention.query_key_value.bias`, [3 * D]), a.nHeads, a.headDim, 1) : [null, null, null];
    return {
      attnNorm: ln('input_layernorm'), attnPostNorm: null, mlpNorm: s.residual.sharedNorm ? null : ln('post_attention_layernorm'), mlpPostNorm: null,
      wq, wk, wv, bq: qkvBias[0], bk: qkvBias[1], bv: qkvBias[2],
      wo: r.matrix(`${p}attention.dense.weight`, [D, D]), bo: r.maybe(a.bias.o, `${p}attention.dense.bias`, [D]),
      qNorm: null, kNorm: null, wGate: null, bGate: null,
      wUp: r.matrix(`${p}mlp.dense_h_to_4h.weight`, [F, D]), bUp: r.take(`${p}mlp.dense_h_to_4h.bias`, [F]),
      wDown: r.matrix(`${p}mlp.dense_4h_to_h.weight`, [D, F]), bDown: r.take(`${p}mlp.dense_4h_to_h.bias`, [D]),
    };
  });
  return finish(r, layers, 'gpt_neox.embed_in.weight', null, 'gpt_neox.final_layer_norm', 'embed_out.weight');
}

/** GGUF families whose converter interleaved q/k rows for llama.cpp's "normal" RoPE (llama_model_rope_type NORM). */
const GGUF_INTERLEAVED: ReadonlySet<string> = new Set(['llama', 'mistral', 'granite', 'smollm3']);

export interface Assembled {
  weights: ModelWeights;
  /** Tensor names read (diagnostics: the rest are unused) */
  used: Set<string>;
}

/** Builds ModelWeights for `spec` from the tensors of `p`, stored in `format`'s layout. */
export function assembleModel(spec: ModelSpec, format: WeightFormat, p: TensorProvider): Assembled {
  const used = new Set<string>();
  const indices = Array.from({ length: spec.nLayers }, (_, i) => i);
  let weights: ModelWeights;
  if (format === 'hf' && spec.family === 'gpt2') {
    const r = new Reader(spec, p);
    weights = hfGpt2(r);
    r.used.forEach((n) => used.add(n));
  } else if (format === 'hf' && spec.family === 'gpt_neox') {
    const r = new Reader(spec, p);
    weights = hfNeox(r);
    r.used.forEach((n) => used.add(n));
  } else if (format === 'hf') {
    const names = indices.map((i) => hfLlamaNames(spec, i));
    const src = spec.family === 'phi3' ? unfuse(spec, p, names, (i) => `model.layers.${i}.self_attn.qkv_proj`, (i) => `model.layers.${i}.mlp.gate_up_proj`, used) : p;
    const r = new Reader(spec, src);
    weights = finish(r, names.map((n) => readSeparate(r, n, true)), 'model.embed_tokens.weight', null, 'model.norm', 'lm_head.weight');
    r.used.forEach((n) => (src.shape(n) && p.shape(n) ? used.add(n) : undefined));
  } else if (format === 'gguf') {
    const fusedGateUp = spec.family === 'phi3' && p.shape('blk.0.ffn_gate.weight') === null;
    // GGUF Phi-3 keeps gate|up fused in ffn_up (2F rows, gate first): its parts get names of their own.
    const names = indices.map((i) => ({ ...ggufNames(i, spec.family), ...(fusedGateUp ? { gate: `blk.${i}.ffn_gate_part`, up: `blk.${i}.ffn_up_part` } : {}) }));
    const src = unfuse(spec, p, names, (i) => `blk.${i}.attn_qkv`, fusedGateUp ? (i) => `blk.${i}.ffn_up` : null, used);
    const r = new Reader(spec, src);
    const layers = names.map((n) => readSeparate(r, n, true));
    if (GGUF_INTERLEAVED.has(spec.sourceArchitecture)) {
      const a = spec.attention;
      for (const l of layers) {
        l.wq = selectRows(l.wq as StoredMatrix, interleavedToHalfIndex(a.nHeads, a.headDim));
        l.wk = selectRows(l.wk as StoredMatrix, interleavedToHalfIndex(a.nKvHeads, a.headDim));
        if (l.bq) l.bq = interleavedToHalf(l.bq, a.nHeads, a.headDim, 1);
        if (l.bk) l.bk = interleavedToHalf(l.bk, a.nKvHeads, a.headDim, 1);
      }
    }
    weights = finish(r, layers, 'token_embd.weight', spec.positions === 'learned' ? 'position_embd.weight' : null, 'output_norm', 'output.weight');
    r.used.forEach((n) => (p.shape(n) ? used.add(n) : undefined));
  } else {
    const names = indices.map((i): LayerNames => ({
      attnNorm: `rms_att_weight.${i}`, attnPostNorm: null, mlpNorm: `rms_ffn_weight.${i}`, mlpPostNorm: null,
      q: `wq.${i}`, k: `wk.${i}`, v: `wv.${i}`, o: `wo.${i}`, qNorm: '', kNorm: '', gate: `w1.${i}`, up: `w3.${i}`, down: `w2.${i}`,
    }));
    const r = new Reader(spec, p);
    const layers = names.map((n) => readSeparate(r, n, false));
    const a = spec.attention;
    for (const l of layers) {
      l.wq = selectRows(l.wq as StoredMatrix, interleavedToHalfIndex(a.nHeads, a.headDim));
      l.wk = selectRows(l.wk as StoredMatrix, interleavedToHalfIndex(a.nKvHeads, a.headDim));
    }
    weights = finish(r, layers, 'token_embedding_table', null, 'rms_final_weight', 'wcls', false);
  }
  return { weights, used };
}
