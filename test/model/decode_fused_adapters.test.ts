// The fused decode step on adapters not known to be CPU ones (isCpu false: a page reaching Chromium's GL route
// without naming llvmpipe, a GPU). Such adapters default to split-keys attention, which the fused step does not
// mirror, so where the fused step is asked for ('measure', the default on an anonymous adapter, 'any-adapter') the
// model takes per-head attention: review finding of 2026-11-30, when the measurement at load never ran there. Run on
// llvmpipe dressed as such an adapter (the kernels are the same; only the choices read isCpu and anonymous).
import { resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine.js';
import type { Gpu } from '../../src/gpu/device.js';
import { loadModel, type LoadedModel } from '../../src/model/load.js';
import type { ModelOptions } from '../../src/model/gpu_model.js';
import { gpuFor } from '../kernels/adapters.js';

const MODELS = resolve(process.env.FORKLM_MODELS ?? resolve(__dirname, '../../../shared/models'));

describe('fused decode on adapters not known to be CPU ones (stories260K)', () => {
  const engines: Engine[] = [];
  let loaded: LoadedModel;
  afterAll(() => engines.forEach((e) => e.destroy()));
  const engine = async (gpu: Gpu, options: ModelOptions) => {
    loaded ??= await loadModel(resolve(MODELS, 'stories260K/hf'));
    const e = await Engine.fromWeights(loaded.weights, null, { gpu, kvPages: 64, ...options });
    engines.push(e);
    return e;
  };

  it('anonymous: measured at load over per-head attention; a named GPU: off and split-keys unless asked', async () => {
    const real = await gpuFor('llvmpipe');
    const anonymous = await engine({ ...real, isCpu: false, anonymous: true }, {});
    expect(anonymous.model.attention.variant).toBe('per-head');
    expect(anonymous.model.decodeFusedMeasured, `refusal: ${anonymous.model.decodeFusedRefusal}`).not.toBeNull();
    expect(anonymous.model.decodeFusedPending).toBeNull();

    const named: Gpu = { ...real, isCpu: false, anonymous: false };
    const plain = await engine(named, {});
    expect(plain.model.attention.variant).toBe('split-keys');
    expect(plain.model.decodeFused).toBeNull();
    // The model's own reasons come before the adapter's (decode_fused.ts): split-keys attention is the first.
    expect(plain.model.decodeFusedRefusal).toMatch(/not plain per-head/);
    const measured = await engine(named, { decodeFused: 'measure' });
    expect(measured.model.attention.variant).toBe('per-head');
    expect(measured.model.decodeFusedMeasured).not.toBeNull();
    // A forced variant wins: split-keys leaves the fused step out, with the reason.
    const forced = await engine(named, { decodeFused: 'measure', attentionVariant: 'split-keys' });
    expect(forced.model.decodeFusedMeasured).toBeNull();
    expect(forced.model.decodeFusedRefusal).toMatch(/per-head/);
  });

  it('fused and layered steps give the same greedy and sampled tokens there', async () => {
    const gpu: Gpu = { ...(await gpuFor('llvmpipe')), isCpu: false, anonymous: true };
    const run = async (options: ModelOptions) => {
      const e = await engine(gpu, options);
      const ids = [e.createPath([1], { temperature: 0 }), e.createPath([1, 403, 407], { temperature: 1, topP: 1, seed: 3 })];
      const got = new Map<number, number[]>(ids.map((i) => [i, []]));
      for (let s = 0; s < 120; s++) {
        const r = await e.step();
        if (!r) break;
        for (const x of r.results) got.get(x.pathId)!.push(x.token);
      }
      return { tokens: ids.map((i) => got.get(i)!), fused: e.model.decodeFused !== null };
    };
    const fused = await run({ decodeFused: 'any-adapter' });
    const layered = await run({ decodeFused: false, attentionVariant: 'per-head' });
    expect(fused.fused).toBe(true);
    expect(layered.fused).toBe(false);
    expect(fused.tokens[0].length).toBeGreaterThan(100);
    expect(fused.tokens).toEqual(layered.tokens);
  });
});
