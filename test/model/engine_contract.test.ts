// The engine's contract with code that drives it: errors surface as they happened, every exit of a run releases its
// pages, the context bound holds without poisoning the engine, seeds replay on a reused engine, and an engine that
// made its own device destroys it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runEab, streamEab } from '../../src/branch/eab.js';
import { runPeaks, streamPeaks } from '../../src/branch/peaks.js';
import { Engine } from '../../src/engine.js';
import { ContextOverflowError, InvalidArgumentError } from '../../src/errors.js';
import { createGpu } from '../../src/gpu/device.js';
import { generate } from '../../src/generate.js';
import type { LoadedModel } from '../../src/model/load.js';
import { gpuFor } from '../kernels/adapters.js';
import { loadStories, tokenizerFor } from './models.js';

let loaded: LoadedModel;
const engines: Engine[] = [];
async function engine(kvPages = 256): Promise<Engine> {
  const e = await Engine.fromWeights(loaded.weights, tokenizerFor(loaded), { gpu: await gpuFor('llvmpipe'), kvPages });
  engines.push(e);
  return e;
}
beforeAll(async () => {
  loaded = await loadStories('hf');
});
afterAll(() => engines.forEach((e) => e.destroy()));

const EAB = { max_new_tokens: 24, entropy_threshold: 0.3, branch_factor: 3, max_paths: 6, seed: 3 };

describe('engine contract', () => {
  it('a run that fails mid-way reports the failure itself, not a clean-up error', async () => {
    const gpu = await createGpu({ adapter: 'llvmpipe' });
    const e = await Engine.fromWeights(loaded.weights, tokenizerFor(loaded), { gpu, kvPages: 64 });
    const queue = gpu.device.queue as { submit: GPUQueue['submit'] };
    const submit = queue.submit.bind(queue);
    let calls = 0;
    queue.submit = (buffers) => {
      if (++calls === 4) throw new Error('simulated driver failure');
      return submit(buffers);
    };
    await expect(runEab(e, [1, 5, 6], EAB)).rejects.toThrow(/simulated driver failure/);
    expect(e.pagesInUse).toBe(0);
    e.destroy();
  });

  it.each(['eab', 'peaks'] as const)('a %s consumer that stops iterating early leaves no paths or pages', async (mode) => {
    const e = await engine();
    const prompt = e.tokenizer!.encode('Once upon a time');
    const gen = mode === 'eab' ? streamEab(e, prompt, EAB) : streamPeaks(e, prompt, { max_new_tokens: 24, initial_traces: 3, max_traces: 6 });
    let n = 0;
    for await (const _ of gen) if (++n === 12) break;
    expect(n).toBe(12);
    expect(e.livePaths().length).toBe(0);
    expect(e.pagesInUse).toBe(0);
  });

  it('refuses to step a path past the context and stays usable', async () => {
    const e = await engine();
    const ctx = e.config.maxSeqLen;
    const p = e.createPath(new Array(ctx).fill(7), { temperature: 0 }); // fits, but its first sample would not
    // Prefill (in chunks under the row budget) ends by sampling token ctx+1, which cannot be computed.
    while ((await e.step())!.results.length === 0);
    await expect(e.step()).rejects.toThrow(ContextOverflowError);
    e.free(p);
    const r = await generate(e, [1, 5], { maxNewTokens: 3, temperature: 0 });
    expect(r.tokens.length).toBe(3);
    expect(e.pagesInUse).toBe(0);
  });

  it('replays a seed on an engine that has run other work before', async () => {
    const e = await engine();
    const prompt = e.tokenizer!.encode('Lily saw a');
    const a = await generate(e, prompt, { maxNewTokens: 20, seed: 7 });
    const ea = await runEab(e, prompt, EAB);
    await runPeaks(e, prompt, { max_new_tokens: 16, initial_traces: 2, max_traces: 4 });
    const b = await generate(e, prompt, { maxNewTokens: 20, seed: 7 });
    const eb = await runEab(e, prompt, EAB);
    expect(b.tokens).toEqual(a.tokens);
    expect(eb.samples.map((s) => s.tokens)).toEqual(ea.samples.map((s) => s.tokens));
  });

  it('rejects a fork whose next token is outside the vocabulary', async () => {
    const e = await engine();
    const p = e.createPath([1, 5]);
    await e.step();
    expect(() => e.fork(p, { nextToken: e.config.vocabSize })).toThrow(InvalidArgumentError);
    e.free(p);
    expect(e.pagesInUse).toBe(0);
  });

  it('destroys the device it created', async () => {
    const e = await Engine.fromWeights(loaded.weights, tokenizerFor(loaded), { adapter: 'llvmpipe', kvPages: 16 });
    e.destroy();
    expect((await e.gpu.device.lost).reason).toBe('destroyed');
  });
});
