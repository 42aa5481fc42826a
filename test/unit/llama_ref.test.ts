// The float64 reference forward, proven on published output: greedy decoding of karpathy's stories260K from BOS must
// print llama2.c's expected text exactly. The checkpoint is read by a tiny parser here (the project's loaders are
// tested on their own), which also turns llama2.c's interleaved RoPE rows into the rotate-half order LlamaWeights uses.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { deriveConfig } from '../../src/model/config.js';
import type { LlamaLayerWeights, LlamaWeights } from '../../src/model/weights.js';
import { argmax, refForward, RefSession, ropeRotateHalf } from '../ref/llama_ref.js';
import { mulberry32, randomNormal, testSeed } from '../ref/random.js';

const SHARED = new URL('../../../shared/', import.meta.url);
const CHECKPOINT = new URL('models/stories260K/llama2c/stories260K.bin', SHARED);
const TOKENIZER = new URL('models/stories260K/llama2c/tok512.bin', SHARED);
const EXPECTED = new URL('reference/stories260K-greedy.json', SHARED);

/** Rows (2i, 2i+1) of each head (llama2.c's interleaved RoPE pairs) moved to (i, i + hd/2) (rotate-half pairs). */
function interleavedToHalf(w: Float32Array, heads: number, headDim: number, cols: number): Float32Array {
  const out = new Float32Array(w.length);
  const half = headDim / 2;
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      const base = h * headDim;
      out.set(w.subarray((base + 2 * i) * cols, (base + 2 * i + 1) * cols), (base + i) * cols);
      out.set(w.subarray((base + 2 * i + 1) * cols, (base + 2 * i + 2) * cols), (base + i + half) * cols);
    }
  }
  return out;
}

/** llama2.c checkpoint: 7 int32 (dim, hidden, layers, heads, kvHeads, vocab (negative: own classifier), seqLen), f32s. */
function readLlama2c(bytes: Uint8Array, permute = true): LlamaWeights {
  const head = new Int32Array(bytes.buffer, bytes.byteOffset, 7);
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSigned, maxSeqLen] = Array.from(head);
  const vocabSize = Math.abs(vocabSigned);
  const f = new Float32Array(bytes.buffer.slice(bytes.byteOffset + 28, bytes.byteOffset + bytes.byteLength));
  const config = deriveConfig({
    architecture: 'llama',
    dim,
    hiddenDim,
    nLayers,
    nHeads,
    nKvHeads,
    vocabSize,
    maxSeqLen,
    normEps: 1e-5,
    ropeTheta: 10000,
    tiedEmbeddings: vocabSigned > 0,
    qkvBias: false,
    bosTokenId: 1,
    eosTokenIds: [2],
  });
  const { headDim: hd, kvDim } = config;
  let at = 0;
  const take = (n: number) => f.subarray(at, (at += n));
  const perLayer = (n: number) => Array.from({ length: nLayers }, () => take(n));
  const embed = take(vocabSize * dim);
  const attnNorm = perLayer(dim);
  const wq = perLayer(dim * dim);
  const wk = perLayer(kvDim * dim);
  const wv = perLayer(kvDim * dim);
  const wo = perLayer(dim * dim);
  const mlpNorm = perLayer(dim);
  const w1 = perLayer(hiddenDim * dim);
  const w2 = perLayer(dim * hiddenDim);
  const w3 = perLayer(hiddenDim * dim);
  const finalNorm = take(dim);
  take(maxSeqLen * hd); // freq_cis_real and freq_cis_imag (seqLen * hd/2 each): recomputed from ropeTheta instead
  const lmHead = config.tiedEmbeddings ? embed : take(vocabSize * dim);
  expect(at, 'checkpoint size matches its header').toBe(f.length);
  const layers: LlamaLayerWeights[] = Array.from({ length: nLayers }, (_, l) => ({
    attnNorm: attnNorm[l],
    wq: permute ? interleavedToHalf(wq[l], nHeads, hd, dim) : wq[l],
    wk: permute ? interleavedToHalf(wk[l], nKvHeads, hd, dim) : wk[l],
    wv: wv[l],
    wo: wo[l],
    mlpNorm: mlpNorm[l],
    wGate: w1[l],
    wUp: w3[l],
    wDown: w2[l],
  }));
  return { config, embed, layers, finalNorm, lmHead };
}

/** llama2.c tokenizer: int32 maxTokenLength, then per token f32 score, int32 length, that many bytes. */
function readVocab(bytes: Uint8Array, vocabSize: number): Uint8Array[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const pieces: Uint8Array[] = [];
  let at = 4;
  for (let i = 0; i < vocabSize; i++) {
    const len = view.getInt32(at + 4, true);
    pieces.push(bytes.subarray(at + 8, at + 8 + len));
    at += 8 + len;
  }
  expect(at, 'tokenizer file fully read').toBe(bytes.byteLength);
  return pieces;
}

/** The bytes run.c prints for `token` after `prev`: no leading space after BOS, <0xHH> as its byte, no control bytes. */
function decodePiece(vocab: Uint8Array[], prev: number, token: number): number[] {
  let piece = Array.from(vocab[token]);
  if (prev === 1 && piece[0] === 0x20) piece = piece.slice(1);
  const m = /^<0x([0-9A-Fa-f]{2})>$/.exec(String.fromCharCode(...piece));
  if (m) piece = [parseInt(m[1], 16)];
  if (piece.length === 1) {
    const b = piece[0];
    const printable = (b >= 0x20 && b < 0x7f) || (b >= 0x09 && b <= 0x0d);
    if (!printable) return [];
  }
  return piece;
}

/** llama2.c's `run -t 0 -n steps`: argmax decoding from BOS at positions 0..steps-1, stopping at BOS. */
function greedy(weights: LlamaWeights, vocab: Uint8Array[], steps: number): { ids: number[]; text: string } {
  const session = new RefSession(weights);
  const bytes: number[] = [];
  const ids: number[] = [];
  let token = 1;
  for (let pos = 0; pos < steps; pos++) {
    const next = argmax(session.step(token));
    if (next === 1) break;
    ids.push(next);
    bytes.push(...decodePiece(vocab, token, next));
    token = next;
  }
  return { ids, text: new TextDecoder().decode(new Uint8Array(bytes)) };
}

function load(permute = true): { weights: LlamaWeights; vocab: Uint8Array[]; expected: { expected_text: string; steps: number } } {
  const weights = readLlama2c(readFileSync(CHECKPOINT), permute);
  const vocab = readVocab(readFileSync(TOKENIZER), weights.config.vocabSize);
  const expected = JSON.parse(readFileSync(EXPECTED, 'utf8')) as { expected_text: string; steps: number };
  return { weights, vocab, expected };
}

describe('float64 Llama reference on stories260K', () => {
  it('greedy-decodes llama2.c expected text exactly from BOS', () => {
    const { weights, vocab, expected } = load();
    expect(weights.config).toMatchObject({ dim: 64, hiddenDim: 172, nLayers: 5, nHeads: 8, nKvHeads: 4, vocabSize: 512 });
    expect(expected.steps).toBe(200);
    const { ids, text } = greedy(weights, vocab, expected.steps);
    expect(ids.length, 'no BOS inside the 200 steps').toBe(200);
    expect(text).toBe(expected.expected_text);
  });

  it('fails on llama2.c rows left in interleaved RoPE order (the test can tell the conventions apart)', () => {
    const { weights, vocab, expected } = load(false);
    const { text } = greedy(weights, vocab, 40);
    expect(expected.expected_text.startsWith(text)).toBe(false);
  });

  it('refForward from scratch equals the incremental session at every position', () => {
    const { weights } = load();
    const tokens = [1, 403, 407, 261, 378, 9, 13];
    const all = refForward(weights, tokens);
    const s = new RefSession(weights);
    tokens.forEach((t, i) => expect(Array.from(s.step(t))).toEqual(Array.from(all[i])));
    expect(s.position).toBe(tokens.length);
    // Context sensitivity: the same token at position 1 after a different first token gives different logits.
    const other = refForward(weights, [2, tokens[1]]);
    expect(Array.from(other[1])).not.toEqual(Array.from(all[1]));
  });
});

describe('ropeRotateHalf', () => {
  it('equals the interleaved rotation of the permuted vector and keeps the norm', () => {
    const seed = testSeed();
    const rand = mulberry32(seed);
    const heads = 3;
    const hd = 16;
    const theta = 10000;
    for (const pos of [0, 1, 7, 300]) {
      const inter = Float64Array.from(randomNormal(rand, heads * hd));
      // Interleaved (llama2.c): pairs (2i, 2i+1) turn by pos * theta^(-2i/hd).
      const half = new Float64Array(heads * hd);
      for (let h = 0; h < heads; h++)
        for (let i = 0; i < hd / 2; i++) {
          half[h * hd + i] = inter[h * hd + 2 * i];
          half[h * hd + i + hd / 2] = inter[h * hd + 2 * i + 1];
        }
      const norm0 = Math.hypot(...half);
      ropeRotateHalf(half, heads, hd, pos, theta);
      for (let h = 0; h < heads; h++)
        for (let i = 0; i < hd / 2; i++) {
          const a = pos * Math.pow(theta, (-2 * i) / hd);
          const x0 = inter[h * hd + 2 * i];
          const x1 = inter[h * hd + 2 * i + 1];
          // Same float64 operations in both conventions apart from order: agreement to a few ulps.
          expect(Math.abs(half[h * hd + i] - (x0 * Math.cos(a) - x1 * Math.sin(a))), `seed ${seed}`).toBeLessThan(1e-12);
          expect(Math.abs(half[h * hd + i + hd / 2] - (x1 * Math.cos(a) + x0 * Math.sin(a))), `seed ${seed}`).toBeLessThan(1e-12);
        }
      // A rotation: the norm is preserved up to float64 rounding.
      expect(Math.abs(Math.hypot(...half) - norm0) / norm0, `seed ${seed}`).toBeLessThan(1e-12);
    }
  });
});
