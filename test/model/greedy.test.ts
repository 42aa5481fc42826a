// The published llama2.c output for stories260K, reproduced token for token: 200 greedy tokens after BOS, from each
// of the three file formats, on both CPU adapters.
import { afterAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine.js';
import { generate } from '../../src/generate.js';
import { decodeContinuation } from '../../src/tokenizer/stream_decoder.js';
import { gpuFor, testAdapterChoices } from '../kernels/adapters.js';
import { loadStories, referenceGreedy, tokenizerFor } from './models.js';

const ref = referenceGreedy();

describe.each(testAdapterChoices())('stories260K greedy on %s', (choice) => {
  const engines: Engine[] = [];
  afterAll(() => engines.forEach((e) => e.destroy()));

  it.each(['hf', 'gguf', 'llama2c'] as const)('reproduces llama2.c from the %s format', async (format) => {
    const gpu = await gpuFor(choice);
    const loaded = await loadStories(format);
    const engine = await Engine.fromWeights(loaded.weights, tokenizerFor(loaded), { gpu, kvPages: 64 });
    engines.push(engine);
    const r = await generate(engine, ref.prompt_token_ids, { maxNewTokens: ref.steps, temperature: 0, stopAtEos: false });
    expect(r.tokens.length).toBe(ref.steps);
    // run.c prints each piece and strips the leading space of the first piece after BOS; decode does the same.
    expect(decodeContinuation(engine.tokenizer!, ref.prompt_token_ids, r.tokens)).toBe(ref.expected_text);
    // Every page went back to the pool.
    expect(engine.pagesInUse).toBe(0);
  });
});
