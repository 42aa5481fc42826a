// The spec, config readers and weight loaders of every family, checked without a GPU: a float64 forward over the
// loaded spec and weights (test/ref/spec_forward.ts) against transformers' logits at every position of each
// ../shared/fixtures/arch folder, and against llama.cpp's log-probs for the GGUF conversions of the same checkpoints.
// A wrong switch (norm offset, RoPE pairing or scaling, window edge, soft-cap, a transposed or mis-split fused tensor)
// moves logits by far more than the tolerances below.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel } from '../../src/model/load.js';
import { sharedModelsDir } from '../ref/shared_models.js';
import { argmax } from '../ref/llama_ref.js';
import { specRefForward } from '../ref/spec_forward.js';

const fixtures = join(sharedModelsDir(), '../fixtures');
const archDir = join(fixtures, 'arch');
const ggufDir = join(fixtures, 'gguf');

interface ArchReference {
  family: string;
  prompt_ids: number[];
  greedy_ids: number[];
  margins: number[];
  logits_shape: [number, number];
}

const FOLDERS = readdirSync(archDir).filter((d) => existsSync(join(archDir, d, 'reference.json'))).sort();

function logSoftmax(z: Float64Array): Float64Array {
  const m = Math.max(...z);
  const lse = m + Math.log(z.reduce((a, x) => a + Math.exp(x - m), 0));
  return z.map((x) => x - lse);
}

describe('every arch fixture: float64 forward over the loaded spec vs transformers', () => {
  it('has all 14 families', () => expect(FOLDERS.length).toBe(14));

  it.each(FOLDERS)('%s', async (folder) => {
    const ref = JSON.parse(readFileSync(join(archDir, folder, 'reference.json'), 'utf8')) as ArchReference;
    const [T, V] = ref.logits_shape;
    const bytes = readFileSync(join(archDir, folder, 'logits.f32'));
    const want = new Float32Array(bytes.buffer, bytes.byteOffset, T * V);
    const m = await loadModel(join(archDir, folder));
    expect(m.unusedTensors).toEqual([]);
    const tokens = [...ref.prompt_ids, ...ref.greedy_ids];
    expect(tokens.length).toBe(T);
    const got = specRefForward(m.modelWeights, tokens);
    // transformers computed in float32 over the file's values; this forward computes in float64 over the same values.
    // The difference is transformers' own float32 rounding through 3 layers of width 64-192 at logits of magnitude
    // 1-5: measured at most 2.8e-6 (gemma3), 1-2.5e-6 for the others. 2e-5 leaves 7x room and is still 1000x below
    // what any wrong switch does (the smallest, a window off by one position or a missed 1+w, moves logits by >1e-2).
    let worst = 0;
    for (let t = 0; t < T; t++) for (let v = 0; v < V; v++) worst = Math.max(worst, Math.abs(got[t][v] - want[t * V + v]));
    expect(worst, `${folder}: max |logit - transformers|`).toBeLessThan(2e-5);
    // Greedy ids equal transformers' up to the first near-tie (margin < 0.02, the fixtures README).
    const P = ref.prompt_ids.length;
    for (let i = 0; i < ref.greedy_ids.length && ref.margins[i] >= 0.02; i++) {
      expect(argmax(got[P - 1 + i]), `${folder} greedy step ${i}`).toBe(ref.greedy_ids[i]);
    }
  });

});

interface GgufReference {
  cases: { prompt_ids: number[]; greedy_ids: number[]; logprob_margins: number[]; steps: { id: number; logprob: number; top: [number, number][] }[] }[];
}

const GGUF_FILES = readdirSync(ggufDir).filter((f) => /^arch-.*\.gguf$/.test(f)).sort();

describe('every arch GGUF: float64 forward over the loaded spec vs llama.cpp', () => {
  it('has the 7 converted families', () => expect(GGUF_FILES.length).toBe(7));

  it.each(GGUF_FILES)('%s', async (file) => {
    const ref = JSON.parse(readFileSync(join(ggufDir, file.replace(/\.gguf$/, '.reference.json')), 'utf8')) as GgufReference;
    const m = await loadModel(join(ggufDir, file));
    expect(m.format).toBe('gguf');
    for (const c of ref.cases) {
      const tokens = [...c.prompt_ids, ...c.greedy_ids];
      const got = specRefForward(m.modelWeights, tokens.slice(0, -1));
      const P = c.prompt_ids.length;
      expect(c.steps.length).toBeGreaterThan(20);
      let worst = 0;
      // llama.cpp's server leaves out the step of a token that ends inside a UTF-8 sequence (its text is merged into
      // the next step): match each step to its greedy position by id, skipping such positions.
      let j = 0;
      for (let i = 0; i < c.steps.length; i++, j++) {
        while (j < c.greedy_ids.length && c.greedy_ids[j] !== c.steps[i].id) j++;
        expect(j, `${file}: step ${i} (id ${c.steps[i].id}) is not among the greedy ids`).toBeLessThan(c.greedy_ids.length);
        const lp = logSoftmax(got[P - 1 + j]);
        for (const [id, want] of c.steps[i].top) worst = Math.max(worst, Math.abs(lp[id] - want));
        if (c.logprob_margins[i] >= 0.05) expect(argmax(lp), `${file} greedy step ${i}`).toBe(c.steps[i].id);
      }
      // llama.cpp differs from float64 by more than transformers does (~1e-3 here, per token and without a common
      // offset, the same on its HF twin above whose weights are identical): its CPU attention keeps K/V in f16 and
      // converts q to f16 for the dot products (2^-11 relative each), and log-probs come through its sampler in
      // float32. Measured: at most 3.5e-3 (OLMo 2, whose q/k norms give the largest scores), 1.5e-3 elsewhere; 5e-3
      // bounds that; a wrong switch (RoPE pairing, NoPE layer, norm, scaling) moves these
      // log-probs by 1e-2 to 1.
      expect(worst, `${file}: max |log-prob - llama.cpp| over the top 5 of every step`).toBeLessThan(5e-3);
    }
  });

  // The GGUF files hold the arch checkpoints' own values (F32, converted by llama.cpp), so the spec and weights read
  // from them must compute what the HF folder computes, to float64 rounding: this pins the GGUF side to the
  // transformers reference exactly, not only to llama.cpp's 5e-3.
  it.each(GGUF_FILES)('%s computes what its HF folder computes', async (file) => {
    const folder = file.replace(/^arch-|\.gguf$/g, '');
    const [g, h] = await Promise.all([loadModel(join(ggufDir, file)), loadModel(join(archDir, folder))]);
    const tokens = JSON.parse(readFileSync(join(archDir, folder, 'reference.json'), 'utf8')).prompt_ids.slice(0, 20) as number[];
    if (folder === 'smollm3-nope') {
      // llama.cpp hard-codes SmolLM3's NoPE step to 4 (no GGUF key): this 3-layer file ropes every layer there,
      // while transformers skips RoPE in layer 1. forklm runs each file as its own reference runs it.
      expect(h.spec.layers.map((l) => l.rope !== null)).toEqual([true, false, true]);
      expect(g.spec.layers.map((l) => l.rope !== null)).toEqual([true, true, true]);
      return;
    }
    const a = specRefForward(g.modelWeights, tokens);
    const b = specRefForward(h.modelWeights, tokens);
    // Same values, same math. Only Llama 3's RoPE differs in rounding: GGUF stores its scaling as f32 frequency
    // divisors (rope_freqs, 6e-8 relative), which turns positions < 80 by < 1e-8 rad more or less (measured 4.6e-9).
    let worst = 0;
    for (let t = 0; t < tokens.length; t++) for (let v = 0; v < a[t].length; v++) worst = Math.max(worst, Math.abs(a[t][v] - b[t][v]));
    expect(worst).toBeLessThan(1e-7);
  });
});
