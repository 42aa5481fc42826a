// The SmolLM2-135M-shaped random model of the peers benchmark as an F32 GGUF, so llama.cpp runs the very weights
// forklm runs (issue 15: "llama.cpp gets the same weights as an F32 GGUF written by a bench helper"). Written once into
// the peers cache folder (about 540 MB) and reused while the weights' seed and shape stay the same.
// Layout as llama.cpp's convert_hf_to_gguf writes a Llama: token_embd / blk.N.* / output_norm (output.weight left out
// when the embeddings are tied), q and k rows in the interleaved RoPE order (model/permute.ts), and a stand-in
// SentencePiece vocabulary ("llama": <unk>, <s>, </s>, then pieces "t<id>") of the model's size: the job sends token
// ids and reads token ids, so no text passes through it.
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { encodeGguf, GGUFValueType, type GgufKv, type GgufTensorInput } from '../src/io/gguf.js';
import { halfToInterleaved } from '../src/model/permute.js';
import type { LlamaWeights } from '../src/model/weights.js';

function llamaKvs(w: LlamaWeights): GgufKv[] {
  const c = w.config;
  const u32 = (key: string, value: number): GgufKv => ({ key, type: GGUFValueType.UINT32, value });
  const f32 = (key: string, value: number): GgufKv => ({ key, type: GGUFValueType.FLOAT32, value });
  const V = c.vocabSize;
  // token_type 3 (control) for the specials, 1 (normal) for the rest, as llama.cpp's vocabulary loader reads them.
  const tokens = Array.from({ length: V }, (_, i) => (i === 0 ? '<unk>' : i === 1 ? '<s>' : i === 2 ? '</s>' : `t${i}`));
  return [
    { key: 'general.architecture', type: GGUFValueType.STRING, value: 'llama' },
    { key: 'general.name', type: GGUFValueType.STRING, value: 'forklm bench random weights' },
    u32('llama.context_length', c.maxSeqLen),
    u32('llama.embedding_length', c.dim),
    u32('llama.feed_forward_length', c.hiddenDim),
    u32('llama.block_count', c.nLayers),
    u32('llama.attention.head_count', c.nHeads),
    u32('llama.attention.head_count_kv', c.nKvHeads),
    u32('llama.rope.dimension_count', c.headDim),
    f32('llama.rope.freq_base', c.ropeTheta),
    f32('llama.attention.layer_norm_rms_epsilon', c.normEps),
    u32('llama.vocab_size', V),
    { key: 'tokenizer.ggml.model', type: GGUFValueType.STRING, value: 'llama' },
    { key: 'tokenizer.ggml.tokens', type: GGUFValueType.ARRAY, subType: GGUFValueType.STRING, value: tokens },
    { key: 'tokenizer.ggml.scores', type: GGUFValueType.ARRAY, subType: GGUFValueType.FLOAT32, value: tokens.map((_, i) => -i) },
    { key: 'tokenizer.ggml.token_type', type: GGUFValueType.ARRAY, subType: GGUFValueType.INT32, value: tokens.map((_, i) => (i < 3 ? 3 : 1)) },
    u32('tokenizer.ggml.unknown_token_id', 0),
    u32('tokenizer.ggml.bos_token_id', c.bosTokenId ?? 1),
    u32('tokenizer.ggml.eos_token_id', c.eosTokenIds?.[0] ?? 2),
    { key: 'tokenizer.ggml.add_bos_token', type: GGUFValueType.BOOL, value: false },
  ];
}

function llamaTensors(w: LlamaWeights): GgufTensorInput[] {
  const c = w.config;
  const D = c.dim;
  const out: GgufTensorInput[] = [{ name: 'token_embd.weight', shape: [c.vocabSize, D], data: w.embed }];
  w.layers.forEach((l, i) => {
    const b = `blk.${i}.`;
    out.push(
      { name: `${b}attn_norm.weight`, shape: [D], data: l.attnNorm },
      { name: `${b}attn_q.weight`, shape: [c.qDim, D], data: halfToInterleaved(l.wq, c.nHeads, c.headDim, D) },
      { name: `${b}attn_k.weight`, shape: [c.kvDim, D], data: halfToInterleaved(l.wk, c.nKvHeads, c.headDim, D) },
      { name: `${b}attn_v.weight`, shape: [c.kvDim, D], data: l.wv },
      { name: `${b}attn_output.weight`, shape: [D, c.qDim], data: l.wo },
      { name: `${b}ffn_norm.weight`, shape: [D], data: l.mlpNorm },
      { name: `${b}ffn_gate.weight`, shape: [c.hiddenDim, D], data: l.wGate },
      { name: `${b}ffn_up.weight`, shape: [c.hiddenDim, D], data: l.wUp },
      { name: `${b}ffn_down.weight`, shape: [D, c.hiddenDim], data: l.wDown },
    );
  });
  out.push({ name: 'output_norm.weight', shape: [D], data: w.finalNorm });
  if (!c.tiedEmbeddings) out.push({ name: 'output.weight', shape: [c.vocabSize, D], data: w.lmHead });
  return out;
}

/**
 * Bumped whenever the layout above changes, so a cached file from an older writer is not reused; also whenever what
 * it calls changes the bytes written (model/permute.ts halfToInterleaved, io/gguf.ts encodeGguf): the fingerprint
 * below samples the weights, not the code.
 */
const WRITER_VERSION = 2;

/**
 * A short fingerprint of the weights and the writer (FNV-1a over the writer version, the config and a sample of
 * every tensor's values as held in memory: the writer's layout is covered by WRITER_VERSION), part of the cached
 * file's name: other weights, or the same seed after a change in random_weights.ts, get a new file instead of
 * silently running the old one.
 */
export function weightsFingerprint(w: LlamaWeights): string {
  let h = 0x811c9dc5;
  const mix = (x: number) => {
    h = Math.imul(h ^ (x >>> 0), 0x01000193) >>> 0;
  };
  mix(WRITER_VERSION);
  for (const ch of JSON.stringify(w.config)) mix(ch.charCodeAt(0));
  const arrays = [w.embed, w.finalNorm, w.lmHead, ...w.layers.flatMap((l) => [l.attnNorm, l.wq, l.wk, l.wv, l.wo, l.mlpNorm, l.wGate, l.wUp, l.wDown])];
  for (const t of arrays) {
    const bits = new Uint32Array(t.buffer, t.byteOffset, t.length);
    const step = Math.max(1, Math.floor(bits.length / 64));
    for (let i = 0; i < bits.length; i += step) mix(bits[i]);
    mix(bits[bits.length - 1]);
  }
  return h.toString(16).padStart(8, '0');
}

/**
 * Writes `w` (a Llama-architecture model without biases) as an F32 GGUF at `path` unless a file is there already
 * (name the path with weightsFingerprint(w) so that a file of other weights is never reused); returns the path. The
 * file is written under a temporary name and renamed, so an interrupted write leaves none.
 */
export function ensureLlamaGgufF32(w: LlamaWeights, path: string): string {
  if (existsSync(path)) return path;
  if (w.config.architecture !== 'llama' || w.config.qkvBias) throw new Error('ensureLlamaGgufF32 writes Llama models without q/k/v biases');
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.partial`;
  writeFileSync(tmp, encodeGguf(llamaKvs(w), llamaTensors(w)));
  renameSync(tmp, path);
  return path;
}
