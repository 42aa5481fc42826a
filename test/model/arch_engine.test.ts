// The engine's promises on every decoder family of ../shared/fixtures/arch (the real spec of each, random weights):
// batching is invisible (a path alone and the same path among 15 others), a fork equals recomputing from scratch at
// positions inside a sliding window, at its edge and beyond it, a later request reuses cached prefix pages exactly,
// and EAB and confidence-peak branching run to the end and give every page back. The same for a Q4_K_M GGUF (Q4_K
// and Q6_K matrices run as stored), whose engine must keep the promises f32 models keep.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runEab } from '../../src/branch/eab.js';
import { runPeaks } from '../../src/branch/peaks.js';
import { Engine } from '../../src/engine.js';
import { loadModel, type LoadedModel } from '../../src/model/load.js';
import { specSizes } from '../../src/model/spec.js';
import { gpuFor, testAdapterChoices } from '../kernels/adapters.js';
import { sharedModelsDir } from '../ref/shared_models.js';
import { mulberry32, testSeed } from '../ref/random.js';
import { row, rowError, sameGreedyToken } from './step_helpers.js';

const archDir = join(sharedModelsDir(), '../fixtures/arch');
const QUANTIZED = 'gguf/llama256-Q4_K_M.gguf';
const FOLDERS = [...readdirSync(archDir).filter((d) => existsSync(join(archDir, d, 'reference.json'))).sort(), QUANTIZED];

// Two GPU computations of the same position differ only in summation order (another matmul variant for another row
// count, rows in another order): each is within ~6e-6 of transformers' logits of magnitude 1-5 (arch_gpu.test.ts),
// so relative to the row's largest logit they agree within ~5e-6; 4e-5 leaves room, and attending one key too many or
// too few (a window edge off by one, a stale page) moves logits by > 1e-3.
const TOL = 4e-5;

const loaded = new Map<string, Promise<LoadedModel>>();
function load(folder: string): Promise<LoadedModel> {
  let p = loaded.get(folder);
  if (!p) loaded.set(folder, (p = loadModel(folder === QUANTIZED ? join(archDir, '..', folder) : join(archDir, folder))));
  return p;
}

function randomPrompt(rand: () => number, n: number, V: number): number[] {
  return [1, ...Array.from({ length: n - 1 }, () => 3 + Math.floor(rand() * (V - 3)))];
}

describe.each(testAdapterChoices())('engine on every family (%s)', (choice) => {
  // The Q4_K_M engine on llvmpipe only: SwiftShader compiles and runs its stored-type kernels 10-20x slower (about 3
  // minutes for these four tests on 2 busy cores); it runs the same file's logits in gguf_quant_gpu.test.ts.
  describe.each(choice === 'swiftshader' ? FOLDERS.filter((f) => f !== QUANTIZED) : FOLDERS)('%s', (folder) => {
    let m: LoadedModel;
    const engines: Engine[] = [];
    beforeAll(async () => {
      m = await load(folder);
    });
    afterAll(() => engines.forEach((e) => e.destroy()));
    async function engine(): Promise<Engine> {
      const e = await Engine.fromWeights(m.modelWeights, null, { gpu: await gpuFor(choice), kvPages: 80, maxRows: 160, maxSamples: 32 });
      engines.push(e);
      return e;
    }
    /** Logits and greedy tokens of each path at its first `samples` sampling steps. */
    async function greedyLogits(e: Engine, prompts: number[][], samples: number): Promise<{ logits: Float32Array; token: number }[][]> {
      const V = e.config.vocabSize;
      const ids = prompts.map((p) => e.createPath(p, { temperature: 0 }));
      const out: { logits: Float32Array; token: number }[][] = prompts.map(() => []);
      while (out.some((o) => o.length < samples)) {
        const r = (await e.step({ logits: true }))!;
        r.results.forEach((res, i) => {
          const o = out[ids.indexOf(res.pathId)];
          if (o.length < samples) o.push({ logits: row(r.logits!, i, V).slice(), token: res.token });
        });
      }
      for (const id of ids) e.free(id);
      return out;
    }

    it('batching is invisible: one path alone and among 15 others', async () => {
      const seed = testSeed();
      const rand = mulberry32(seed);
      const V = m.spec.vocabSize;
      const prompts = Array.from({ length: 16 }, (_, i) => randomPrompt(rand, i === 0 ? 30 : 2 + Math.floor(rand() * 45), V));
      const together = await greedyLogits(await engine(), prompts, 4);
      const alone = await greedyLogits(await engine(), [prompts[0]], 4);
      for (let s = 0; s < 4; s++) {
        const [t, a] = [together[0][s], alone[0][s]];
        expect(rowError(t.logits, a.logits), `step ${s} seed ${seed}`).toBeLessThanOrEqual(TOL);
        if (!sameGreedyToken(t.logits, t.token, a.logits, a.token, TOL, `step ${s} seed ${seed}`)) break;
      }
    });

    it('a fork equals recomputing from scratch inside the window, at its edge and beyond', async () => {
      const seed = testSeed();
      const rand = mulberry32(seed);
      const e = await engine();
      const V = e.config.vocabSize;
      const W = specSizes(m.spec).maxWindow ?? 16;
      const parent = e.createPath(randomPrompt(rand, 2 * W + 12, V), { temperature: 0 });
      for (let s = 0; s < 4; s++) await e.step();
      const tokens = [...e.path(parent).tokens];
      e.finish(parent);
      const scratch = await engine();
      // keep = t: the child holds the parent's first t tokens and recomputes token t - 1 at position t - 1, whose
      // window starts at t - W: inside (the window covers the whole prefix), exactly at its edge, one past, beyond.
      for (const keep of [W - 3, W, W + 1, 2 * W + 5]) {
        const child = e.fork(parent, { keep });
        const fresh = scratch.createPath(tokens.slice(0, keep), { temperature: 0 });
        for (let s = 0; s < 3; s++) {
          const a = (await e.step({ logits: true }))!;
          const b = (await scratch.step({ logits: true }))!;
          expect(rowError(row(a.logits!, 0, V), row(b.logits!, 0, V)), `keep=${keep} step ${s} seed ${seed}`).toBeLessThanOrEqual(TOL);
          if (!sameGreedyToken(row(a.logits!, 0, V), a.results[0].token, row(b.logits!, 0, V), b.results[0].token, TOL, `keep=${keep} step ${s} seed ${seed}`)) break;
        }
        e.free(child);
        scratch.free(fresh);
      }
      e.free(parent);
      expect(e.pagesInUse).toBe(0);
    });

    it('a later request reuses the cached prefix pages and gets the same logits', async () => {
      const e = await engine();
      const V = e.config.vocabSize;
      const prompt = randomPrompt(mulberry32(testSeed()), 40, V);
      const first = e.createPath(prompt, { temperature: 0 });
      const a = (await e.step({ logits: true }))!;
      e.free(first);
      const rows0 = e.stats.rows;
      const second = e.createPath(prompt, { temperature: 0 });
      expect(e.path(second).reusedTokens).toBe(32); // 2 full pages of 16
      const b = (await e.step({ logits: true }))!;
      expect(e.stats.rows - rows0).toBe(8);
      expect(rowError(row(b.logits!, 0, V), row(a.logits!, 0, V))).toBeLessThanOrEqual(TOL);
      e.free(second);
      expect(e.pagesInUse).toBe(0);
    });

    it('EAB and confidence-peak branching run to the end and free every page', async () => {
      const e = await engine();
      const prompt = randomPrompt(mulberry32(testSeed()), 12, m.spec.vocabSize);
      // Random weights give nearly flat distributions: every step is uncertain, so EAB forks up to its path budget.
      const eab = await runEab(e, prompt, { max_new_tokens: 10, entropy_threshold: 0.3, branch_factor: 2, max_paths: 4, temperature: 1, seed: 3 });
      expect(eab.stats.forks).toBeGreaterThan(0);
      expect(eab.samples.length).toBeGreaterThan(1);
      expect(e.pagesInUse).toBe(0);
      // Any local maximum of the smoothed confidence is a peak (threshold 0): a trace has none only if it ends within its
      // first few tokens (EOS has p ~ 0.25% a token on these random weights), about 1 trace in 100. Two traces both did
      // in ~1e-4 of draws per family and adapter (~3e-3 of suite runs); four all do in ~1e-8.
      const peaks = await runPeaks(e, prompt, {
        initial_traces: 4, max_traces: 6, max_new_tokens: 16, temperature: 0.9, confidence_threshold: 0, peak_window: 3, seed: 5,
      });
      expect(peaks.traces.some((t) => t.depth > 0)).toBe(true);
      expect(e.pagesInUse).toBe(0);
    });
  });
});
