// loadModel on synthetic models written in every format from seeded random weights: each must load back bit-exactly
// (which also proves the q/k permutation round trip), and every broken model must fail with an error that names
// the problem.
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ModelFormatError, ModelNotFoundError, UnsupportedModelError } from '../../src/errors.js';
import { f32BitsEqual, f16ToF32, f32ToHalfBytes } from '../../src/io/bytes.js';
import { GGUFValueType, encodeGguf } from '../../src/io/gguf.js';
import type { GgufKv } from '../../src/io/gguf.js';
import { encodeLlama2c, encodeLlama2cTokenizer } from '../../src/io/llama2c.js';
import { encodeSafetensors } from '../../src/io/safetensors.js';
import type { SafetensorsInput } from '../../src/io/safetensors.js';
import { memoryFiles } from '../../src/io/source.js';
import type { ByteProgress } from '../../src/io/source.js';
import type { ModelConfig } from '../../src/model/config.js';
import { loadModel } from '../../src/model/load.js';
import { halfToInterleaved } from '../../src/model/permute.js';
import { QWEN25_05B, SMOLLM2_135M, randomWeights, withConfig } from '../../src/model/random_weights.js';
import { BIAS_SLOTS, GGUF_NAMES, HF_NAMES, LAYER_SLOTS } from '../../src/model/weight_maps.js';
import type { LlamaWeights } from '../../src/model/weights.js';
import { testSeed } from '../ref/random.js';

const seed = testSeed();
// GQA (4 query heads on 2 KV heads), head size 4, sizes that are no power of two
const llamaCfg = withConfig(SMOLLM2_135M, { dim: 16, hiddenDim: 24, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: 37, maxSeqLen: 32, tiedEmbeddings: false });
const qwenCfg = withConfig(QWEN25_05B, { dim: 24, hiddenDim: 40, nLayers: 2, nHeads: 6, nKvHeads: 2, vocabSize: 41, maxSeqLen: 64, bosTokenId: 3, eosTokenIds: [4, 5] });

function hfConfigJson(c: ModelConfig): string {
  return JSON.stringify({
    architectures: [{ llama: 'LlamaForCausalLM', mistral: 'MistralForCausalLM', qwen2: 'Qwen2ForCausalLM' }[c.architecture]],
    model_type: c.architecture,
    hidden_size: c.dim,
    intermediate_size: c.hiddenDim,
    num_hidden_layers: c.nLayers,
    num_attention_heads: c.nHeads,
    num_key_value_heads: c.nKvHeads,
    vocab_size: c.vocabSize,
    max_position_embeddings: c.maxSeqLen,
    rms_norm_eps: c.normEps,
    rope_theta: c.ropeTheta,
    tie_word_embeddings: c.tiedEmbeddings,
    bos_token_id: c.bosTokenId,
    eos_token_id: c.eosTokenIds.length === 1 ? c.eosTokenIds[0] : c.eosTokenIds,
  });
}

/** (name, shape, data) of every tensor under HF names. */
function hfTensors(w: LlamaWeights): SafetensorsInput[] {
  const c = w.config;
  const out: SafetensorsInput[] = [{ name: HF_NAMES.global.embed, shape: [c.vocabSize, c.dim], data: w.embed }];
  const shapes: Record<string, number[]> = {
    attnNorm: [c.dim], wq: [c.qDim, c.dim], wk: [c.kvDim, c.dim], wv: [c.kvDim, c.dim], bq: [c.qDim], bk: [c.kvDim], bv: [c.kvDim],
    wo: [c.dim, c.qDim], mlpNorm: [c.dim], wGate: [c.hiddenDim, c.dim], wUp: [c.hiddenDim, c.dim], wDown: [c.dim, c.hiddenDim],
  };
  w.layers.forEach((l, i) => {
    for (const s of [...LAYER_SLOTS, ...(c.qkvBias ? BIAS_SLOTS : [])]) out.push({ name: HF_NAMES.layer[s](i), shape: shapes[s], data: l[s]! });
  });
  out.push({ name: HF_NAMES.global.finalNorm, shape: [c.dim], data: w.finalNorm });
  if (!c.tiedEmbeddings) out.push({ name: HF_NAMES.global.lmHead, shape: [c.vocabSize, c.dim], data: w.lmHead });
  return out;
}

function hfFolder(w: LlamaWeights, edit: (t: SafetensorsInput[]) => SafetensorsInput[] = (t) => t, config = hfConfigJson(w.config)) {
  return memoryFiles({ 'config.json': config, 'model.safetensors': encodeSafetensors(edit(hfTensors(w))) }, 'synthetic-hf');
}

/** A GGUF file the way llama.cpp's converter writes it: llama-family q/k permuted to interleaved order. */
function ggufBytes(w: LlamaWeights, opts: { writeOutputForTied?: boolean } = {}): Uint8Array {
  const c = w.config;
  const arch = c.architecture === 'qwen2' ? 'qwen2' : 'llama';
  const u32 = (key: string, value: number): GgufKv => ({ key: `${arch}.${key}`, type: GGUFValueType.UINT32, value });
  const kvs: GgufKv[] = [
    { key: 'general.architecture', type: GGUFValueType.STRING, value: arch },
    u32('embedding_length', c.dim), u32('feed_forward_length', c.hiddenDim), u32('block_count', c.nLayers),
    u32('attention.head_count', c.nHeads), u32('attention.head_count_kv', c.nKvHeads), u32('context_length', c.maxSeqLen),
    { key: `${arch}.attention.layer_norm_rms_epsilon`, type: GGUFValueType.FLOAT32, value: c.normEps },
    { key: `${arch}.rope.freq_base`, type: GGUFValueType.FLOAT32, value: c.ropeTheta },
    { key: 'tokenizer.ggml.model', type: GGUFValueType.STRING, value: 'llama' },
    { key: 'tokenizer.ggml.tokens', type: GGUFValueType.ARRAY, subType: GGUFValueType.STRING, value: Array.from({ length: c.vocabSize }, (_, i) => `tok${i}`) },
    { key: 'tokenizer.ggml.bos_token_id', type: GGUFValueType.UINT32, value: c.bosTokenId },
    { key: 'tokenizer.ggml.eos_token_id', type: GGUFValueType.UINT32, value: c.eosTokenIds[0] },
  ];
  const permute = arch !== 'qwen2';
  const tensors = hfTensors(w).map((t) => {
    const m = /^model\.layers\.(\d+)\.(.*)$/.exec(t.name);
    let name = t.name;
    let data = t.data;
    if (m) {
      const slot = Object.entries(HF_NAMES.layer).find(([, f]) => f(Number(m[1])) === t.name)![0] as keyof typeof GGUF_NAMES.layer;
      name = GGUF_NAMES.layer[slot](Number(m[1]));
      const heads = slot === 'wq' || slot === 'bq' ? c.nHeads : slot === 'wk' || slot === 'bk' ? c.nKvHeads : 0;
      if (permute && heads) data = halfToInterleaved(data, heads, c.headDim, t.shape.length === 2 ? c.dim : 1);
    } else {
      name = t.name === HF_NAMES.global.embed ? GGUF_NAMES.global.embed : t.name === HF_NAMES.global.finalNorm ? GGUF_NAMES.global.finalNorm : GGUF_NAMES.global.lmHead;
    }
    return { name, shape: t.shape, data };
  });
  if (c.tiedEmbeddings && opts.writeOutputForTied) tensors.push({ name: GGUF_NAMES.global.lmHead, shape: [c.vocabSize, c.dim], data: w.embed });
  return encodeGguf(kvs, tensors);
}

function llama2cBytes(w: LlamaWeights): Uint8Array {
  const c = w.config;
  const perm = (x: Float32Array, heads: number) => halfToInterleaved(x, heads, c.headDim, c.dim);
  return encodeLlama2c({
    header: { dim: c.dim, hiddenDim: c.hiddenDim, nLayers: c.nLayers, nHeads: c.nHeads, nKvHeads: c.nKvHeads, vocabSize: c.vocabSize, seqLen: c.maxSeqLen, sharedClassifier: c.tiedEmbeddings },
    tokenEmbedding: w.embed,
    layers: w.layers.map((l) => ({ rmsAtt: l.attnNorm, wq: perm(l.wq, c.nHeads), wk: perm(l.wk, c.nKvHeads), wv: l.wv, wo: l.wo, rmsFfn: l.mlpNorm, w1: l.wGate, w2: l.wDown, w3: l.wUp })),
    rmsFinal: w.finalNorm,
    wcls: c.tiedEmbeddings ? undefined : w.lmHead,
  });
}

/** Every array of `a` and `b` equal bit for bit, naming the first that differs. */
function expectSameWeights(a: LlamaWeights, b: LlamaWeights, what: string): void {
  const check = (x: Float32Array | undefined, y: Float32Array | undefined, name: string) => {
    expect(x === undefined, `${what}: ${name} presence`).toBe(y === undefined);
    if (x && y) expect(f32BitsEqual(x, y), `${what}: ${name} differs (seed ${seed})`).toBe(true);
  };
  check(a.embed, b.embed, 'embed');
  check(a.finalNorm, b.finalNorm, 'finalNorm');
  check(a.lmHead, b.lmHead, 'lmHead');
  expect(a.layers.length).toBe(b.layers.length);
  a.layers.forEach((l, i) => {
    for (const s of [...LAYER_SLOTS, ...BIAS_SLOTS]) check(l[s], b.layers[i][s], `layer ${i} ${s}`);
  });
}

describe(`loadModel round trips (seed ${seed})`, () => {
  const llamaW = randomWeights(llamaCfg, seed, { std: 1 });
  const qwenW = randomWeights(qwenCfg, seed + 1, { std: 1, biasStd: 1 });

  it('HF safetensors: llama untied, qwen2 tied with biases', async () => {
    const a = await loadModel(hfFolder(llamaW));
    expect(a.format).toBe('hf');
    expect(a.config).toEqual(llamaCfg);
    expectSameWeights(a.weights, llamaW, 'hf llama');
    expect(a.weights.lmHead).not.toBe(a.weights.embed);
    expect(a.unusedTensors).toEqual([]);
    const q = await loadModel(hfFolder(qwenW));
    expect(q.config).toEqual(qwenCfg);
    expectSameWeights(q.weights, qwenW, 'hf qwen2');
    expect(q.weights.lmHead).toBe(q.weights.embed);
  });

  it('GGUF: llama q/k come back from interleaved order; qwen2 is stored unpermuted', async () => {
    const a = await loadModel(memoryFiles({ 'm.gguf': ggufBytes(llamaW) }), {});
    expect(a.format).toBe('gguf');
    expect(a.config).toEqual(llamaCfg);
    expectSameWeights(a.weights, llamaW, 'gguf llama');
    expect(a.tokenizer?.kind).toBe('gguf');
    const q = await loadModel(memoryFiles({ 'q.gguf': ggufBytes(qwenW, { writeOutputForTied: true }) }));
    // eos: GGUF holds one id; the qwen config above had two
    expect(q.config).toEqual({ ...qwenCfg, eosTokenIds: [4] });
    expectSameWeights(q.weights, qwenW, 'gguf qwen2');
    // an output.weight that copies the embedding is recognised as tied
    expect(q.weights.lmHead).toBe(q.weights.embed);
    expect(q.unusedTensors).toEqual([]);
  });

  it('llama2.c: unshared classifier, q/k from interleaved order, tokenizer found next to it', async () => {
    const tok = encodeLlama2cTokenizer({ tokens: Array.from({ length: 37 }, (_, i) => `p${i}`), scores: new Float32Array(37) });
    const a = await loadModel(memoryFiles({ 'model.bin': llama2cBytes(llamaW), 'tokenizer.bin': tok }));
    expect(a.format).toBe('llama2c');
    expect(a.config).toEqual({ ...llamaCfg, normEps: 1e-5, ropeTheta: 10000, eosTokenIds: [2] });
    expectSameWeights(a.weights, llamaW, 'llama2c');
    expect(a.tokenizer?.kind === 'llama2c' && a.tokenizer.bytes).toEqual(tok);
    // a tokenizer of another vocabulary is an error, not a silent mismatch
    const wrong = encodeLlama2cTokenizer({ tokens: ['a', 'b'], scores: [0, 0] });
    await expect(loadModel(memoryFiles({ 'model.bin': llama2cBytes(llamaW), 'tok37.bin': wrong }))).rejects.toThrow(ModelFormatError);
  });

  it('F16 and BF16 safetensors load as their exactly converted values', async () => {
    for (const dtype of ['F16', 'BF16'] as const) {
      const m = await loadModel(hfFolder(llamaW, (ts) => ts.map((t) => ({ ...t, dtype }))));
      const want = dtype === 'F16' ? f16ToF32(f32ToHalfBytes(llamaW.layers[1].wUp, 'F16'), 0, llamaW.layers[1].wUp.length) : null;
      if (want) expect(f32BitsEqual(m.weights.layers[1].wUp, want)).toBe(true);
      // 16-bit storage rounds: the values differ from f32 but stay within bf16's 2^-8 relative step
      const x = m.weights.layers[0].wq;
      for (let i = 0; i < x.length; i++) expect(Math.abs(x[i] - llamaW.layers[0].wq[i])).toBeLessThanOrEqual(Math.abs(llamaW.layers[0].wq[i]) * 2 ** -8 + 2 ** -24);
    }
  });

  it('sharded safetensors through model.safetensors.index.json', async () => {
    const ts = hfTensors(llamaW);
    const half = Math.floor(ts.length / 2);
    const shards = { 'model-00001-of-00002.safetensors': ts.slice(0, half), 'model-00002-of-00002.safetensors': ts.slice(half) };
    const weightMap = Object.fromEntries(Object.entries(shards).flatMap(([file, list]) => list.map((t) => [t.name, file])));
    const files = memoryFiles({
      'config.json': hfConfigJson(llamaCfg),
      'model.safetensors.index.json': JSON.stringify({ metadata: {}, weight_map: weightMap }),
      ...Object.fromEntries(Object.entries(shards).map(([f, list]) => [f, encodeSafetensors(list)])),
    });
    expectSameWeights((await loadModel(files)).weights, llamaW, 'sharded');
    const escaping = memoryFiles({ 'config.json': hfConfigJson(llamaCfg), 'model.safetensors.index.json': JSON.stringify({ weight_map: { a: '../x.safetensors' } }) });
    await expect(loadModel(escaping)).rejects.toThrow(/no valid weight_map/);
  });

  it('by URL (folder and single file) through an injected fetch, with progress', async () => {
    const served: Record<string, Uint8Array> = {
      'https://hub.invalid/r/resolve/main/config.json': new TextEncoder().encode(hfConfigJson(llamaCfg)),
      'https://hub.invalid/r/resolve/main/model.safetensors': encodeSafetensors(hfTensors(llamaW)),
      'https://hub.invalid/g/model.gguf': ggufBytes(llamaW),
    };
    const requested: string[] = [];
    const fakeFetch = (async (url: string) => {
      requested.push(url);
      const b = served[url];
      return b ? new Response(b as Uint8Array<ArrayBuffer>, { headers: { 'content-length': String(b.length) } }) : new Response('no', { status: 404 });
    }) as unknown as typeof fetch;
    const progress: ByteProgress[] = [];
    const folder = await loadModel('https://hub.invalid/r/resolve/main', { fetch: fakeFetch, onProgress: (p) => progress.push(p) });
    expectSameWeights(folder.weights, llamaW, 'url folder');
    expect(requested).toContain('https://hub.invalid/r/resolve/main/generation_config.json');
    const last = progress.filter((p) => p.file.endsWith('model.safetensors')).at(-1)!;
    expect(last.loaded).toBe(last.total);
    expect(last.loaded).toBe(served['https://hub.invalid/r/resolve/main/model.safetensors'].length);
    expectSameWeights((await loadModel('https://hub.invalid/g/model.gguf', { fetch: fakeFetch })).weights, llamaW, 'url gguf');
    await expect(loadModel('https://hub.invalid/missing/model.gguf', { fetch: fakeFetch })).rejects.toThrow(ModelNotFoundError);
  });

  it('from a browser File/Blob', async () => {
    const file = new File([ggufBytes(llamaW) as Uint8Array<ArrayBuffer>], 'picked.gguf');
    const m = await loadModel(file);
    expect(m.label).toContain('picked.gguf');
    expectSameWeights(m.weights, llamaW, 'blob');
  });

  describe('from disk', () => {
    const dir = mkdtempSync(join(tmpdir(), 'forklm-load-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('finds the model file of a folder, and refuses ambiguous or missing ones', async () => {
      writeFileSync(join(dir, 'model.bin'), llama2cBytes(llamaW));
      writeFileSync(join(dir, 'tok37.bin'), encodeLlama2cTokenizer({ tokens: Array.from({ length: 37 }, (_, i) => `q${i}`), scores: new Float32Array(37) }));
      const m = await loadModel(dir);
      expect(m.format).toBe('llama2c');
      expect(m.tokenizer?.kind).toBe('llama2c');
      expectSameWeights(m.weights, llamaW, 'disk folder');
      expectSameWeights((await loadModel(join(dir, 'model.bin'))).weights, llamaW, 'disk file');
      writeFileSync(join(dir, 'other.gguf'), ggufBytes(llamaW));
      await expect(loadModel(dir)).rejects.toThrow(/cannot tell which file is the model/);
      await expect(loadModel(join(dir, 'nope.gguf'))).rejects.toThrow(ModelNotFoundError);
    });
  });
});

describe(`loadModel errors name the problem (seed ${seed})`, () => {
  const w = randomWeights(llamaCfg, seed + 2);

  it('a missing tensor', async () => {
    const drop = (ts: SafetensorsInput[]) => ts.filter((t) => t.name !== 'model.layers.1.mlp.up_proj.weight');
    await expect(loadModel(hfFolder(w, drop))).rejects.toThrow(/tensor "model.layers.1.mlp.up_proj.weight" is missing/);
    await expect(loadModel(hfFolder(w, drop))).rejects.toBeInstanceOf(ModelFormatError);
  });

  it('a tensor of the wrong shape, with expected and actual shapes', async () => {
    const transpose = (ts: SafetensorsInput[]) => ts.map((t) => (t.name === 'model.layers.0.self_attn.o_proj.weight' ? t : t.name === 'model.layers.0.mlp.down_proj.weight' ? { ...t, shape: [24, 16] } : t));
    await expect(loadModel(hfFolder(w, transpose))).rejects.toThrow(/"model.layers.0.mlp.down_proj.weight" has shape \[24, 16\], expected \[16, 24\]/);
  });

  it('a tied model missing its lm_head is fine; an untied one is not', async () => {
    const noHead = (ts: SafetensorsInput[]) => ts.filter((t) => t.name !== 'lm_head.weight');
    await expect(loadModel(hfFolder(w, noHead))).rejects.toThrow(/"lm_head.weight" is missing/);
    const tiedCfg = hfConfigJson(withConfig(llamaCfg, { tiedEmbeddings: true }));
    const m = await loadModel(hfFolder(w, (ts) => ts, tiedCfg));
    expect(m.weights.lmHead).toBe(m.weights.embed);
    expect(m.unusedTensors).toEqual(['lm_head.weight']);
  });

  it('an unknown architecture', async () => {
    const cfg = JSON.stringify({ ...JSON.parse(hfConfigJson(llamaCfg)), model_type: 'falcon', architectures: ['FalconForCausalLM'] });
    await expect(loadModel(hfFolder(w, (t) => t, cfg))).rejects.toBeInstanceOf(UnsupportedModelError);
  });

  it('a tensor in an unsupported dtype (I32)', async () => {
    const files = hfFolder(w);
    const st = (await files.tryRead('model.safetensors'))!;
    // rewrite the dtype of one 4-byte-element tensor in the header: same size, so only the dtype is wrong
    const text = new TextDecoder().decode(st.subarray(8, 8 + Number(new DataView(st.buffer, st.byteOffset).getBigUint64(0, true))));
    const header = JSON.parse(text) as Record<string, { dtype: string }>;
    header['model.norm.weight'].dtype = 'I32';
    const json = new TextEncoder().encode(JSON.stringify(header).padEnd(text.length, ' '));
    const patched = st.slice();
    patched.set(json, 8);
    const m = loadModel(memoryFiles({ 'config.json': hfConfigJson(llamaCfg), 'model.safetensors': patched }));
    await expect(m).rejects.toBeInstanceOf(UnsupportedModelError);
    await expect(m).rejects.toThrow(/"model.norm.weight" has dtype I32/);
  });

  it('missing config.json, PyTorch-only weights and inconsistent configs', async () => {
    await expect(loadModel(memoryFiles({ 'config.json': hfConfigJson(llamaCfg), 'pytorch_model.bin': new Uint8Array(4) }))).rejects.toBeInstanceOf(UnsupportedModelError);
    await expect(loadModel(memoryFiles({ 'model.safetensors': encodeSafetensors(hfTensors(w)) }), {})).rejects.toThrow(/config.json is missing/);
    const bad = JSON.stringify({ ...JSON.parse(hfConfigJson(llamaCfg)), num_key_value_heads: 3 });
    await expect(loadModel(hfFolder(w, (t) => t, bad))).rejects.toThrow(/not a multiple of the 3 key\/value heads/);
    await expect(loadModel(hfFolder(w, (t) => t, '{"model_type": "llama",'))).rejects.toThrow(/config.json is not valid JSON/);
  });
});

describe(`random weights (seed ${seed})`, () => {
  it('are deterministic per seed, differ across seeds, and are N(0, std) with unit norms', () => {
    const cfg = withConfig(SMOLLM2_135M, { nLayers: 2, vocabSize: 100 });
    const a = randomWeights(cfg, seed);
    const b = randomWeights(cfg, seed);
    const c = randomWeights(cfg, seed + 1);
    expectSameWeights(a, b, 'same seed');
    expect(f32BitsEqual(a.layers[1].wDown, c.layers[1].wDown)).toBe(false);
    // distinct tensors are distinct streams
    expect(f32BitsEqual(a.layers[0].wGate, a.layers[0].wUp)).toBe(false);
    expect(a.lmHead).toBe(a.embed);
    expect(a.layers[0].attnNorm.every((x) => x === 1)).toBe(true);
    const x = a.layers[1].wUp; // 884,736 samples
    let sum = 0;
    let sq = 0;
    for (const v of x) {
      sum += v;
      sq += v * v;
    }
    const mean = sum / x.length;
    const std = Math.sqrt(sq / x.length - mean * mean);
    // standard errors: mean 0.02/sqrt(n) = 2e-5, std about 0.02/sqrt(2n) = 1.5e-5; allow ~10 of them
    expect(Math.abs(mean)).toBeLessThan(2e-4);
    expect(Math.abs(std - 0.02)).toBeLessThan(2e-4);
  });

  it('give qwen2 shapes their biases', () => {
    const w = randomWeights(withConfig(QWEN25_05B, { nLayers: 1, hiddenDim: 8, vocabSize: 64, bosTokenId: 1, eosTokenIds: [2] }), seed);
    expect(w.layers[0].bq?.length).toBe(896);
    expect(w.layers[0].bk?.length).toBe(128);
    expect(w.layers[0].wq.length).toBe(896 * 896);
    expect(w.layers[0].wk.length).toBe(128 * 896);
  });
});
