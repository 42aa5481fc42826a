// Bad input and bad luck get typed errors and leave no leaked pages: a prompt longer than the context, a token outside
// the vocabulary, an exhausted page pool (with EAB pruning its way through), a lost device.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runEab } from '../../src/branch/eab.js';
import { Engine } from '../../src/engine.js';
import { ContextOverflowError, DeviceLostError, ForkLMError, InvalidArgumentError, PagePoolExhaustedError } from '../../src/errors.js';
import { createGpu } from '../../src/gpu/device.js';
import type { LoadedModel } from '../../src/model/load.js';
import { gpuFor } from '../kernels/adapters.js';
import { loadStories, tokenizerFor } from './models.js';

let loaded: LoadedModel;
const engines: Engine[] = [];
async function engineWith(kvPages: number): Promise<Engine> {
  const e = await Engine.fromWeights(loaded.weights, tokenizerFor(loaded), { gpu: await gpuFor('llvmpipe'), kvPages });
  engines.push(e);
  return e;
}
beforeAll(async () => {
  loaded = await loadStories('hf');
});
afterAll(() => engines.forEach((e) => e.destroy()));

describe('typed errors and clean state', () => {
  it('a prompt longer than the context is a ContextOverflowError', async () => {
    const e = await engineWith(64);
    const ctx = e.config.maxSeqLen;
    expect(() => e.createPath(new Array(ctx + 1).fill(5))).toThrow(ContextOverflowError);
    expect(() => e.createPath(new Array(ctx - 10).fill(5), {}, { reserve: 20 })).toThrow(/lower max_new_tokens/);
    expect(() => e.createPath([1, 9999])).toThrow(InvalidArgumentError);
    expect(() => e.createPath([1], { temperature: -1 })).toThrow(InvalidArgumentError);
    expect(e.livePaths().length).toBe(0);
    expect(e.pagesInUse).toBe(0);
  });

  it('an exhausted pool throws PagePoolExhaustedError and leaves the state as it was', async () => {
    const e = await engineWith(4); // 4 pages = 64 tokens
    const a = e.createPath(new Array(40).fill(7));
    await e.step();
    const used = e.pagesInUse;
    const b = e.createPath(new Array(40).fill(9));
    await expect(e.step()).rejects.toThrow(PagePoolExhaustedError);
    expect(e.pagesInUse).toBe(used);
    e.free(b);
    const r = await e.step(); // path a goes on
    expect(r!.results.map((x) => x.pathId)).toEqual([a]);
    e.free(a);
    expect(e.pagesInUse).toBe(0);
  });

  it('EAB on a small pool prunes the least probable paths instead of failing', async () => {
    const e = await engineWith(12);
    const prompt = e.tokenizer!.encode('Once upon a time, there was a big red ball');
    const r = await runEab(e, prompt, { max_new_tokens: 48, entropy_threshold: 0, branch_factor: 3, max_paths: 16, seed: 4 });
    expect(r.samples.length).toBeGreaterThan(0);
    expect(r.stats.pruned).toBeGreaterThan(0);
    expect(r.stats.pages_peak).toBeLessThanOrEqual(12);
    expect(e.pagesInUse).toBe(0);
  });

  it('a model option outside its values is an InvalidArgumentError naming them', async () => {
    const gpu = await gpuFor('llvmpipe');
    const bad = [
      [{ activations: 'int8' }, /activations must be 'q8' or 'f32', got int8/],
      [{ decodeFused: 'off' }, /decodeFused must be true, false, 'measure' or 'any-adapter', got off/],
      [{ decodeFused: 0 }, /decodeFused must be true, false, 'measure' or 'any-adapter', got 0/],
    ] as const;
    for (const [options, message] of bad) {
      const made = Engine.fromWeights(loaded.weights, tokenizerFor(loaded), { gpu, kvPages: 16, ...(options as object) });
      await expect(made).rejects.toThrow(InvalidArgumentError);
      await expect(made).rejects.toThrow(message);
    }
  });

  it('a step that fails frees every path and refuses further work with a typed error', async () => {
    const gpu = await createGpu({ adapter: 'llvmpipe' });
    const e = await Engine.fromWeights(loaded.weights, tokenizerFor(loaded), { gpu, kvPages: 16 });
    e.createPath([1, 5, 6]);
    e.createPath([1, 7]);
    await e.step();
    const queue = gpu.device.queue as { submit: GPUQueue['submit'] };
    queue.submit = () => {
      throw new Error('simulated driver failure');
    };
    await expect(e.step()).rejects.toThrow(/simulated driver failure.*Create a new engine/);
    expect(e.pagesInUse).toBe(0);
    expect(e.livePaths().length).toBe(0);
    expect(() => e.createPath([1])).toThrow(ForkLMError);
    gpu.destroy();
  });

  it('a lost device is a DeviceLostError on the next step', async () => {
    const gpu = await createGpu({ adapter: 'llvmpipe' });
    const e = await Engine.fromWeights(loaded.weights, tokenizerFor(loaded), { gpu, kvPages: 16 });
    e.createPath([1, 5, 6]);
    await e.step();
    gpu.device.destroy();
    await gpu.device.lost;
    await expect(e.step()).rejects.toThrow(DeviceLostError);
    await expect(e.step()).rejects.toThrow(/create a new engine/);
  });
});
