// Mutation fuzzing of every reader: truncations, bit flips, overwritten bytes and hostile integers in the header
// regions of the real stories260K files and of small synthetic models. Every input must either load or fail with a
// ForkLMError subclass: no RangeError, TypeError or hang, and no allocation driven by a declared size (the readers
// bound every size by the file length first). Runs are seeded; a failure prints the seed and the shrunk mutation.
import { sharedModelsDir } from '../ref/shared_models.js';
import { existsSync, readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ForkLMError } from '../../src/errors.js';
import { GGUFValueType, encodeGguf, parseGguf } from '../../src/io/gguf.js';
import { encodeLlama2c, encodeLlama2cTokenizer } from '../../src/io/llama2c.js';
import { parseLlama2cTokenizer } from '../../src/tokenizer/llama2c.js';
import { encodeSafetensors, parseSafetensors } from '../../src/io/safetensors.js';
import { memoryFiles } from '../../src/io/source.js';
import { specFromHf } from '../../src/model/hf_config.js';
import { specSizes } from '../../src/model/spec.js';
import { loadGgufBytes, loadModel } from '../../src/model/load.js';
import { SMOLLM2_135M, randomWeights, withConfig } from '../../src/model/random_weights.js';
import { localModelDirs } from '../../src/model/resolve.js';
import { GGUF_NAMES, HF_NAMES, LAYER_SLOTS, expectedShape } from '../../src/model/weight_maps.js';
import { testSeed } from '../ref/random.js';

const seed = testSeed();
const stories = `${sharedModelsDir()}/stories260K`;
const read = (p: string) => new Uint8Array(readFileSync(p));

type Mutation =
  | { kind: 'truncate'; at: number }
  | { kind: 'flip'; bits: [number, number][] }
  | { kind: 'overwrite'; at: number; bytes: number[] }
  | { kind: 'int'; at: number; value: number; width: 4 | 8 }
  | { kind: 'splice'; at: number; remove: number; insert: number[] };

/** Mutations of a file of `len` bytes, concentrated on [0, region) where the structure lives. */
function mutation(len: number, region: number): fc.Arbitrary<Mutation> {
  const pos = fc.nat({ max: Math.max(0, region - 1) });
  const interesting = fc.constantFrom(0, 1, 2, 7, 0x7fffffff, 0x80000000, 0xffffffff, len, len - 8, len + 1, 2 ** 40, 2 ** 53 - 1);
  return fc.oneof(
    fc.record({ kind: fc.constant('truncate' as const), at: fc.nat({ max: Math.max(0, len - 1) }) }),
    fc.record({ kind: fc.constant('flip' as const), bits: fc.array(fc.tuple(pos, fc.nat({ max: 7 })), { minLength: 1, maxLength: 8 }) }),
    fc.record({ kind: fc.constant('overwrite' as const), at: pos, bytes: fc.array(fc.nat({ max: 255 }), { minLength: 1, maxLength: 16 }) }),
    fc.record({ kind: fc.constant('int' as const), at: pos, value: fc.oneof(interesting, fc.nat()), width: fc.constantFrom(4 as const, 8 as const) }),
    fc.record({ kind: fc.constant('splice' as const), at: pos, remove: fc.nat({ max: 16 }), insert: fc.array(fc.nat({ max: 255 }), { maxLength: 16 }) }),
  );
}

function apply(src: Uint8Array, m: Mutation): Uint8Array {
  switch (m.kind) {
    case 'truncate':
      return src.slice(0, m.at);
    case 'flip': {
      const b = src.slice();
      for (const [p, bit] of m.bits) if (p < b.length) b[p] ^= 1 << bit;
      return b;
    }
    case 'overwrite': {
      const b = src.slice();
      m.bytes.forEach((x, i) => {
        if (m.at + i < b.length) b[m.at + i] = x;
      });
      return b;
    }
    case 'int': {
      const b = src.slice();
      if (m.at + m.width <= b.length) {
        const v = new DataView(b.buffer);
        if (m.width === 4) v.setUint32(m.at, m.value >>> 0, true);
        else v.setBigUint64(m.at, BigInt(m.value), true);
      }
      return b;
    }
    case 'splice': {
      const at = Math.min(m.at, src.length);
      const b = new Uint8Array(src.length - Math.min(m.remove, src.length - at) + m.insert.length);
      b.set(src.subarray(0, at));
      b.set(m.insert, at);
      b.set(src.subarray(Math.min(src.length, at + m.remove)), at + m.insert.length);
      return b;
    }
  }
}

/** Runs `load` on `runs` mutations of `src`; anything but success or a ForkLMError fails with the seed. */
async function fuzz(name: string, src: Uint8Array, region: number, runs: number, load: (b: Uint8Array) => Promise<unknown> | unknown): Promise<{ loaded: number; failed: number }> {
  let loaded = 0;
  let failed = 0;
  await fc.assert(
    fc.asyncProperty(mutation(src.length, region), async (m) => {
      try {
        await load(apply(src, m));
        loaded++;
      } catch (e) {
        if (!(e instanceof ForkLMError)) throw new Error(`${name}: ${(e as Error)?.name}: ${(e as Error)?.message}`, { cause: e });
        failed++;
      }
    }),
    // a bounded case: a hang or a runaway allocation shows up as a timeout
    { numRuns: runs, seed, timeout: 5000, endOnFailure: true },
  );
  return { loaded, failed };
}

// A small GQA model so synthetic files are tiny and load fully when unmutated.
const tiny = withConfig(SMOLLM2_135M, { dim: 8, hiddenDim: 12, nLayers: 1, nHeads: 2, nKvHeads: 1, vocabSize: 11, maxSeqLen: 6, tiedEmbeddings: false });
const w = randomWeights(tiny, seed);
const shapeOf = (s: Parameters<typeof expectedShape>[1]) => expectedShape(tiny, s);
const layerTensors = (names: typeof HF_NAMES) => LAYER_SLOTS.map((s) => ({ name: names.layer[s](0), shape: shapeOf(s), data: w.layers[0][s]! }));
const hfConfig = JSON.stringify({
  architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 8, intermediate_size: 12, num_hidden_layers: 1,
  num_attention_heads: 2, num_key_value_heads: 1, vocab_size: 11, max_position_embeddings: 6, bos_token_id: 1, eos_token_id: 2,
});
const tinySafetensors = encodeSafetensors([
  { name: HF_NAMES.global.embed, shape: shapeOf('embed'), data: w.embed },
  ...layerTensors(HF_NAMES),
  { name: HF_NAMES.global.finalNorm, shape: shapeOf('finalNorm'), data: w.finalNorm },
  { name: HF_NAMES.global.lmHead, shape: shapeOf('lmHead'), data: w.lmHead, dtype: 'F16' },
]);
const u32 = (key: string, value: number) => ({ key, type: GGUFValueType.UINT32, value });
const tinyGguf = encodeGguf(
  [
    { key: 'general.architecture', type: GGUFValueType.STRING, value: 'llama' },
    u32('llama.embedding_length', 8), u32('llama.feed_forward_length', 12), u32('llama.block_count', 1),
    u32('llama.attention.head_count', 2), u32('llama.attention.head_count_kv', 1), u32('llama.context_length', 6),
    { key: 'tokenizer.ggml.tokens', type: GGUFValueType.ARRAY, subType: GGUFValueType.STRING, value: Array.from({ length: 11 }, (_, i) => `t${i}`) },
    { key: 'tokenizer.ggml.scores', type: GGUFValueType.ARRAY, subType: GGUFValueType.FLOAT32, value: Array.from({ length: 11 }, (_, i) => -i) },
    u32('tokenizer.ggml.bos_token_id', 1), u32('tokenizer.ggml.eos_token_id', 2),
  ],
  [
    { name: GGUF_NAMES.global.embed, shape: shapeOf('embed'), data: w.embed },
    ...layerTensors(GGUF_NAMES),
    { name: GGUF_NAMES.global.finalNorm, shape: shapeOf('finalNorm'), data: w.finalNorm, dtype: 'F16' },
    { name: GGUF_NAMES.global.lmHead, shape: shapeOf('lmHead'), data: w.lmHead, dtype: 'BF16' },
  ],
);
const tinyLlama2c = encodeLlama2c({
  header: { dim: 8, hiddenDim: 12, nLayers: 1, nHeads: 2, nKvHeads: 1, vocabSize: 11, seqLen: 6, sharedClassifier: false },
  tokenEmbedding: w.embed,
  layers: [{ rmsAtt: w.layers[0].attnNorm, wq: w.layers[0].wq, wk: w.layers[0].wk, wv: w.layers[0].wv, wo: w.layers[0].wo, rmsFfn: w.layers[0].mlpNorm, w1: w.layers[0].wGate, w2: w.layers[0].wDown, w3: w.layers[0].wUp }],
  rmsFinal: w.finalNorm,
  wcls: w.lmHead,
});
const tinyTokenizer = encodeLlama2cTokenizer({ tokens: ['<unk>', '<s>', '</s>', 'a', 'bb', 'ccc', ' d', 'é', 'ff', 'g', 'h'], scores: Array.from({ length: 11 }, (_, i) => -i) });

const loadHf = (st: Uint8Array, config = hfConfig) => loadModel(memoryFiles({ 'config.json': config, 'model.safetensors': st }));
const loadL2c = (bin: Uint8Array, tok: Uint8Array) => loadModel(memoryFiles({ 'model.bin': bin, 'tokenizer.bin': tok }));

describe(`reader fuzzing (seed ${seed}; FORKLM_TEST_SEED replays)`, () => {
  it('the unmutated synthetic files load', async () => {
    expect((await loadHf(tinySafetensors)).format).toBe('hf');
    expect((await loadGgufBytes(tinyGguf, 'tiny.gguf')).format).toBe('gguf');
    expect((await loadL2c(tinyLlama2c, tinyTokenizer)).tokenizer?.kind).toBe('llama2c');
  });

  it('safetensors: synthetic file and config.json', async () => {
    const r = await fuzz('tiny safetensors', tinySafetensors, tinySafetensors.length, 2000, (b) => loadHf(b));
    // the mutations reach past the first check: some inputs still load (flips in float data), most fail
    expect(r.failed).toBeGreaterThan(0);
    const cfg = new TextEncoder().encode(hfConfig);
    await fuzz('config.json', cfg, cfg.length, 1000, (b) => loadHf(tinySafetensors, new TextDecoder().decode(b)));
  });

  it('gguf: synthetic file', async () => {
    const r = await fuzz('tiny gguf', tinyGguf, tinyGguf.length, 2000, (b) => loadGgufBytes(b, 'tiny.gguf'));
    expect(r.failed).toBeGreaterThan(0);
  });

  it('llama2.c: synthetic checkpoint and tokenizer', async () => {
    await fuzz('tiny llama2c', tinyLlama2c, 64, 1500, (b) => loadL2c(b, tinyTokenizer));
    await fuzz('tiny tokenizer.bin', tinyTokenizer, tinyTokenizer.length, 1500, (b) => loadL2c(tinyLlama2c, b));
  });

  it('real stories260K files: header regions and truncations', async () => {
    const st = read(`${stories}/hf/model.safetensors`);
    const config = readFileSync(`${stories}/hf/config.json`, 'utf8');
    const stHeader = 8 + Number(new DataView(st.buffer).getBigUint64(0, true));
    await fuzz('stories260K safetensors', st, stHeader, 500, (b) => loadHf(b, config));
    const gg = read(`${stories}/gguf/stories260K.gguf`);
    await fuzz('stories260K gguf', gg, 14176, 500, (b) => loadGgufBytes(b, 'stories260K.gguf'));
    const bin = read(`${stories}/llama2c/stories260K.bin`);
    const tok = read(`${stories}/llama2c/tok512.bin`);
    await fuzz('stories260K llama2c', bin, 28, 500, (b) => loadL2c(b, tok));
    await fuzz('tok512.bin', tok, tok.length, 1500, (b) => parseLlama2cTokenizer(b, 512));
  });

  it('zero-element tensors: a 0 in every position of shapes up to rank 4, beside real tensors, in both formats', async () => {
    // Other dimensions include 2^31 (the gguf package allows up to 2^32): a product of the rest passes any data size
    // and 2^53, so only an exact product over all dimensions sees the 0. The same shape with the 0 made a 1 holds
    // elements, so [x, x] offsets must be refused.
    const dim = fc.oneof(fc.integer({ min: 1, max: 5 }), fc.constant(2 ** 31));
    const zeroShape = fc
      .tuple(fc.array(dim, { minLength: 0, maxLength: 3 }), fc.nat({ max: 3 }))
      .map(([rest, at]) => {
        const shape = [...rest];
        shape.splice(Math.min(at, rest.length), 0, 0);
        return shape;
      });
    const real = fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 2 });
    await fc.assert(
      fc.asyncProperty(zeroShape, real, fc.boolean(), fc.constantFrom('F32' as const, 'F16' as const, 'BF16' as const), async (zero, shape, zeroFirst, dtype) => {
        const n = shape.reduce((a, b) => a * b, 1);
        const data = Float32Array.from({ length: n }, (_, i) => i + 1); // small integers: exact in every dtype
        const z = { name: 'z', shape: zero, data: new Float32Array(0), dtype };
        const r = { name: 'r', shape, data };
        const list = zeroFirst ? [z, r] : [r, z];
        const st = parseSafetensors(encodeSafetensors(list), 'zero.safetensors');
        const gg = await parseGguf(encodeGguf([], list), 'zero.gguf');
        for (const f of [st, gg]) {
          expect(f.tensors.get('z')!.shape).toEqual(zero);
          expect(f.readF32('z').length).toBe(0);
          expect(Array.from(f.readF32('r'))).toEqual(Array.from(data));
        }
        const one = zero.map((d) => (d === 0 ? 1 : d));
        const header = { z: { dtype, shape: one, data_offsets: [0, 0] } };
        const json = new TextEncoder().encode(JSON.stringify(header));
        const file = new Uint8Array(8 + json.length);
        new DataView(file.buffer).setBigUint64(0, BigInt(json.length), true);
        file.set(json, 8);
        expect(() => parseSafetensors(file, 'one.safetensors')).toThrow(ForkLMError);
      }),
      { numRuns: 300, seed },
    );
  });

  it('config.json objects with random values in random keys', () => {
    const base = JSON.parse(hfConfig) as Record<string, unknown>;
    const keys = [...Object.keys(base), 'rope_scaling', 'head_dim', 'sliding_window', 'tie_word_embeddings', 'rope_theta', 'rms_norm_eps'];
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom(...keys), fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.integer(), fc.constant(undefined)), { maxKeys: 4 }), (changes) => {
        try {
          const c = specFromHf({ config: { ...base, ...changes } });
          // anything accepted is internally consistent
          expect(Number.isSafeInteger(c.attention.headDim) && c.attention.headDim > 0).toBe(true);
          expect(c.attention.nHeads % c.attention.nKvHeads).toBe(0);
          expect(specSizes(c).qDim).toBe(c.attention.nHeads * c.attention.headDim);
          for (const l of c.layers) if (l.rope) expect(l.rope.rotaryDim % 2 === 0 && l.rope.rotaryDim <= c.attention.headDim).toBe(true);
        } catch (e) {
          if (!(e instanceof ForkLMError)) throw e;
        }
      }),
      { numRuns: 2000, seed },
    );
  });
});
