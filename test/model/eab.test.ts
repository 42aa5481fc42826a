// Entropy-adaptive branching on stories260K: replay, tree consistency, log-probabilities against a plain float64
// forward, the threshold extremes, exact-N, accounting identities and clean-up.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runEab, streamEab, type EabResult } from '../../src/branch/eab.js';
import { Engine } from '../../src/engine.js';
import { CancelledError, InvalidArgumentError } from '../../src/errors.js';
import { generate } from '../../src/generate.js';
import type { LoadedModel } from '../../src/model/load.js';
import { gpuFor } from '../kernels/adapters.js';
import { expectEabLineage } from '../ref/eab_tree.js';
import { refForward } from '../ref/llama_ref.js';
import { loadStories, tokenizerFor } from './models.js';

// One adapter keeps this file fast; the forward itself is tested on both in forward_ref/batch_fork.
const ADAPTER = 'llvmpipe';
let loaded: LoadedModel;
const engines: Engine[] = [];
async function fresh(): Promise<Engine> {
  const e = await Engine.fromWeights(loaded.weights, tokenizerFor(loaded), { gpu: await gpuFor(ADAPTER), kvPages: 512 });
  engines.push(e);
  return e;
}
beforeAll(async () => {
  loaded = await loadStories('hf');
});
afterAll(() => engines.forEach((e) => e.destroy()));

const BASE = { max_new_tokens: 40, entropy_threshold: 0.35, branch_factor: 3, max_paths: 10, temperature: 1, top_p: 1 };

function prompt(engine: Engine): number[] {
  return engine.tokenizer!.encode('Once upon a time, there was a little dog');
}

describe('EAB on stories260K', () => {
  it('replays bit for bit with the same seed; another seed differs', async () => {
    const a = await runEab(await fresh(), prompt(await fresh()), { ...BASE, seed: 11 });
    const b = await runEab(await fresh(), prompt(await fresh()), { ...BASE, seed: 11 });
    const c = await runEab(await fresh(), prompt(await fresh()), { ...BASE, seed: 12 });
    const strip = (r: EabResult) => JSON.stringify({ samples: r.samples, tree: r.tree, steps: r.stats.token_steps });
    expect(strip(a)).toBe(strip(b));
    expect(strip(a)).not.toBe(strip(c));
  });

  it('keeps the tree consistent, the accounting exact, and log-probabilities equal to a plain forward', async () => {
    const engine = await fresh();
    const p = prompt(engine);
    const rows0 = engine.stats.rows;
    const events: string[] = [];
    const r = await runEab(engine, p, { ...BASE, seed: 3 }, (e) => events.push(e.type));
    expect(r.stats.forks).toBeGreaterThan(0);
    expect(r.samples.length).toBe(events.filter((e) => e === 'finish').length);
    expectEabLineage(r, BASE.entropy_threshold);
    // Exact accounting: every path computes one row per token it feeds; its last sampled token is never fed.
    const prefillRows = p.length - r.stats.reused_prompt_tokens;
    const decodeRows = r.tree.reduce((a, n) => a + Math.max(0, n.tokens.length - 1), 0);
    expect(r.stats.token_steps).toBe(engine.stats.rows - rows0);
    expect(r.stats.token_steps).toBe(prefillRows + decodeRows);
    expect(r.stats.naive_token_steps).toBe(r.samples.reduce((a, s) => a + p.length + s.tokens.length, 0));
    expect(r.stats.naive_pages).toBe(r.samples.reduce((a, s) => a + Math.ceil((p.length + s.tokens.length) / 16), 0));
    expect(r.stats.token_steps).toBeLessThan(r.stats.naive_token_steps);
    expect(r.stats.pages_peak).toBeLessThanOrEqual(r.stats.naive_pages);
    expect(engine.pagesInUse).toBe(0);
    // log_probability = sum of log-softmax at temperature 1 along the sample, by a float64 forward over prompt+sample.
    // GPU logits are within 2e-5 of the row's largest |logit| (forward_ref.test.ts); with |logits| < 30 here a token's
    // log-prob is within ~1.2e-3, and over 40 tokens the errors (of both signs) stay well inside 5e-3 (measured: 1.1e-5).
    for (const s of r.samples.slice(0, 4)) {
      const seq = [...p, ...s.tokens];
      const logits = refForward(loaded.weights, seq.slice(0, -1));
      let want = 0;
      for (let i = 0; i < s.tokens.length; i++) {
        const row = logits[p.length - 1 + i];
        let m = -Infinity;
        for (const v of row) m = Math.max(m, v);
        let z = 0;
        for (const v of row) z += Math.exp(v - m);
        want += row[s.tokens[i]] - m - Math.log(z);
      }
      expect(Math.abs(s.log_probability - want)).toBeLessThan(5e-3);
    }
  });

  it('threshold 1 never branches and equals plain sampling with the same seed', async () => {
    const a = await fresh();
    const r = await runEab(a, prompt(a), { ...BASE, entropy_threshold: 1, seed: 5 });
    expect(r.stats.forks).toBe(0);
    expect(r.samples.length).toBe(1);
    const b = await fresh();
    const g = await generate(b, prompt(b), { maxNewTokens: BASE.max_new_tokens, temperature: 1, seed: 5 });
    expect(r.samples[0].tokens).toEqual(g.tokens);
  });

  it('threshold 0 reaches max_paths', async () => {
    const e = await fresh();
    const r = await runEab(e, prompt(e), { ...BASE, entropy_threshold: 0, max_paths: 7, seed: 1 });
    expect(r.stats.max_live_paths).toBe(7);
    expect(e.pagesInUse).toBe(0);
  });

  it('at max_paths, keep_most_probable replaces the least probable path; none never does', async () => {
    const reasons = async (policy: 'keep_most_probable' | 'none') => {
      const e = await fresh();
      const prunes: string[] = [];
      const r = await runEab(e, prompt(e), { ...BASE, entropy_threshold: 0.2, max_paths: 4, prune_policy: policy, seed: 8 }, (ev) => {
        if (ev.type === 'prune') prunes.push(ev.reason);
      });
      expect(r.stats.max_live_paths).toBeLessThanOrEqual(4);
      expect(e.pagesInUse).toBe(0);
      return prunes.filter((x) => x === 'max_paths').length;
    };
    expect(await reasons('keep_most_probable')).toBeGreaterThan(2);
    expect(await reasons('none')).toBe(0);
  });

  it.each([1, 5, 12])('exact-N mode returns exactly %i samples', async (n) => {
    const e = await fresh();
    const r = await runEab(e, prompt(e), { ...BASE, num_samples: n, seed: 9 });
    expect(r.samples.length).toBe(n);
    expect(r.stats.max_live_paths).toBeLessThanOrEqual(n);
    expect(e.pagesInUse).toBe(0);
  });

  it('rejects bad parameters with typed errors and frees everything when cancelled', async () => {
    const e = await fresh();
    await expect(runEab(e, prompt(e), { entropy_threshold: 2 })).rejects.toThrow(InvalidArgumentError);
    await expect(runEab(e, prompt(e), { branch_factor: 1 })).rejects.toThrow(InvalidArgumentError);
    await expect(runEab(e, prompt(e), { max_paths: 0 })).rejects.toThrow(InvalidArgumentError);
    const ac = new AbortController();
    const gen = streamEab(e, prompt(e), { ...BASE, seed: 2, signal: ac.signal });
    await gen.next();
    ac.abort();
    await expect((async () => { for (;;) if ((await gen.next()).done) break; })()).rejects.toThrow(CancelledError);
    expect(e.pagesInUse).toBe(0);
    expect(e.livePaths().length).toBe(0);
  });
});
