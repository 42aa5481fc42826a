// The model end to end in Chromium (software WebGPU): stories260K fetched over HTTP from the test server, loaded from
// each of the three formats, and llama2.c's published greedy text reproduced token for token.
import { describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine.js';
import { tokenizerFor } from '../../src/engine_load.js';
import { generate } from '../../src/generate.js';
import { loadModel } from '../../src/model/load.js';
import { decodeContinuation } from '../../src/tokenizer/stream_decoder.js';
import { gpuFor } from '../kernels/adapters.js';

declare const __FORKLM_SHARED_MODELS__: string;
const base = (rel: string) => new URL(`/@fs${__FORKLM_SHARED_MODELS__}/${rel}`, location.origin).href;

describe('stories260K greedy in Chromium', () => {
  it.each(['stories260K/hf/', 'stories260K/gguf/stories260K.gguf', 'stories260K/llama2c/stories260K.bin'])('reproduces llama2.c from %s', async (rel) => {
    const ref = await (await fetch(base('../reference/stories260K-greedy.json'))).json();
    const loaded = await loadModel(base(rel));
    const engine = await Engine.fromWeights(loaded.weights, tokenizerFor(loaded), { gpu: await gpuFor('auto'), kvPages: 64 });
    try {
      const r = await generate(engine, ref.prompt_token_ids, { maxNewTokens: ref.steps, temperature: 0, stopAtEos: false });
      expect(decodeContinuation(engine.tokenizer!, ref.prompt_token_ids, r.tokens)).toBe(ref.expected_text);
      expect(engine.pagesInUse).toBe(0);
    } finally {
      engine.destroy();
    }
  });
});
