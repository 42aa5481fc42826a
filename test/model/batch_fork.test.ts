// Batching and forking must be invisible: a path's logits do not depend on which other paths share its steps, nor on
// whether its prefix came from a copy-on-write fork or was computed from scratch. And a fork is cheap: one page copy.
import { afterAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine.js';
import type { Gpu } from '../../src/gpu/device.js';
import { gpuFor, testAdapterChoices } from '../kernels/adapters.js';
import { mulberry32, testSeed } from '../ref/random.js';
import { loadStories, tokenizerFor } from './models.js';
import { row, rowError, sameGreedyToken } from './step_helpers.js';

// Same float64 argument as forward_ref.test.ts: every logit vector here is within 2e-5 (row scale) of the exact one,
// so two computations of the same position agree within 4e-5. Batching changes which matmul variant runs (rows per
// step) and so the summation order, never the math.
const TOL = 4e-5;

/** Whether two f32 vectors hold the same bits. */
function sameBits(a: Float32Array, b: Float32Array): boolean {
  const [x, y] = [new Uint32Array(a.buffer, a.byteOffset, a.length), new Uint32Array(b.buffer, b.byteOffset, b.length)];
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

async function engineOn(gpu: Gpu, kvPages = 256, maxRows = 256): Promise<Engine> {
  const loaded = await loadStories('hf');
  return Engine.fromWeights(loaded.weights, tokenizerFor(loaded), { gpu, kvPages, maxRows, maxSamples: 64 });
}

/** Logits and greedy tokens of each path at its first `samples` sampling steps (long prompts may take several steps). */
async function runGreedy(engine: Engine, prompts: number[][], samples: number): Promise<{ logits: Float32Array; token: number }[][]> {
  const V = engine.config.vocabSize;
  const ids = prompts.map((p) => engine.createPath(p, { temperature: 0 }));
  const out: { logits: Float32Array; token: number }[][] = prompts.map(() => []);
  while (out.some((o) => o.length < samples)) {
    const r = await engine.step({ logits: true });
    r!.results.forEach((res, i) => {
      const o = out[ids.indexOf(res.pathId)];
      if (o.length < samples) o.push({ logits: row(r!.logits!, i, V).slice(), token: res.token });
    });
  }
  for (const id of ids) engine.free(id);
  return out;
}

describe.each(testAdapterChoices())('batching and forks on %s', (choice) => {
  const engines: Engine[] = [];
  afterAll(() => engines.forEach((e) => e.destroy()));

  it('batching is invisible for B = 1..16 paths of different lengths', async () => {
    const gpu = await gpuFor(choice);
    const seed = testSeed();
    const rand = mulberry32(seed);
    for (const B of [1, 2, 5, 16]) {
      const prompts = Array.from({ length: B }, () => [1, ...Array.from({ length: Math.floor(rand() * 40) }, () => 3 + Math.floor(rand() * 500))]);
      const together = await engineOn(gpu);
      engines.push(together);
      const batched = await runGreedy(together, prompts, 5);
      for (let b = 0; b < B; b++) {
        const alone = await engineOn(gpu);
        engines.push(alone);
        const single = (await runGreedy(alone, [prompts[b]], 5))[0];
        expect(batched[b].length).toBe(5);
        for (let s = 0; s < 5; s++) {
          const [t, a] = [batched[b][s], single[s]];
          expect(rowError(t.logits, a.logits), `B=${B} path ${b} step ${s} seed ${seed}`).toBeLessThanOrEqual(TOL);
          // Stronger on stories260K: the same bits. Every kernel runs one body per row at every row count (matmul
          // variants, the fused decode step of 1-2 rows, the down projection with the activation folded in or from
          // an mlp_act dispatch: model/gpu_model.ts downSplits), so a path rounds the same batched or alone, prefill and decode.
          expect(sameBits(t.logits, a.logits), `bits: B=${B} path ${b} step ${s} seed ${seed}`).toBe(true);
          if (!sameGreedyToken(t.logits, t.token, a.logits, a.token, TOL, `B=${B} path ${b} step ${s} seed ${seed}`)) break;
        }
        alone.destroy();
        engines.pop();
      }
      expect(together.pagesInUse).toBe(0);
    }
  });

  it('forks decoded together over their shared pages give each fork its alone bits', async () => {
    // 16 forks of one prompt share its full pages: a wide step's attention walks those pages once per pair of rows
    // (kernels/paged_attention.ts rowsPerInvocation), a fork alone in a decode step walks them by itself; prompt
    // lengths put the fork point inside a page and on a boundary.
    const gpu = await gpuFor(choice);
    const engine = await engineOn(gpu);
    engines.push(engine);
    const V = engine.config.vocabSize;
    const seed = testSeed();
    const rand = mulberry32(seed);
    for (const len of [48, 37 + Math.floor(rand() * 40)]) {
      const prompt = [1, ...Array.from({ length: len - 1 }, () => 3 + Math.floor(rand() * 500))];
      const root = engine.createPath(prompt, { temperature: 0 });
      await engine.step();
      engine.finish(root);
      const next = Array.from({ length: 16 }, () => 3 + Math.floor(rand() * 500));
      const kids = next.map((t, i) => engine.fork(root, { nextToken: t, sibling: i }));
      const together = (await engine.step({ logits: true }))!;
      for (const k of kids) engine.free(k);
      for (let i = 0; i < 16; i++) {
        const alone = engine.fork(root, { nextToken: next[i], sibling: i });
        const a = (await engine.step({ logits: true }))!;
        const j = together.results.findIndex((x) => x.pathId === kids[i]);
        expect(sameBits(row(together.logits!, j, V), row(a.logits!, 0, V)), `prompt ${len}, fork ${i}, seed ${seed}`).toBe(true);
        engine.free(alone);
      }
      engine.free(root);
    }
    expect(engine.pagesInUse).toBe(0);
  });

  it('a fork at the tail or at an earlier position equals recomputing from scratch', async () => {
    const gpu = await gpuFor(choice);
    const engine = await engineOn(gpu);
    engines.push(engine);
    const V = engine.config.vocabSize;
    const seed = testSeed();
    const rand = mulberry32(seed);
    const prompt = [1, ...Array.from({ length: 40 }, () => 3 + Math.floor(rand() * 500))];
    const parent = engine.createPath(prompt, { temperature: 0 });
    for (let s = 0; s < 8; s++) await engine.step(); // 41 prompt tokens computed, then 7 decode rows: 48 computed
    const parentTokens = [...engine.path(parent).tokens];
    engine.finish(parent);
    // keep = t: the child holds the parent's first t tokens. 16/32/48 are page boundaries, 20 and 41 inside pages.
    // From scratch: a second engine, so that no prefix-cache page of the parent can be reused.
    const scratch = await engineOn(gpu);
    engines.push(scratch);
    for (const keep of [1, 16, 20, 32, 41, 48, parentTokens.length]) {
      const child = engine.fork(parent, { keep });
      const fresh = scratch.createPath(parentTokens.slice(0, keep), { temperature: 0 });
      // The child recomputes its last kept token and samples the next; the fresh path prefills all of them.
      for (let s = 0; s < 3; s++) {
        const a = (await engine.step({ logits: true }))!;
        const b = (await scratch.step({ logits: true }))!;
        expect(a.results.map((x) => x.pathId)).toEqual([child]);
        expect(b.results.map((x) => x.pathId)).toEqual([fresh]);
        expect(rowError(row(a.logits!, 0, V), row(b.logits!, 0, V)), `keep=${keep} step ${s} seed ${seed}`).toBeLessThanOrEqual(TOL);
        if (!sameGreedyToken(row(a.logits!, 0, V), a.results[0].token, row(b.logits!, 0, V), b.results[0].token, TOL, `keep=${keep} step ${s} seed ${seed}`)) break;
      }
      expect(engine.path(child).tokens.slice(0, keep)).toEqual(parentTokens.slice(0, keep));
      engine.free(child);
      scratch.free(fresh);
    }
    engine.free(parent);
    expect(engine.pagesInUse).toBe(0);
  });

  it('a later request with the same prompt reuses its cached full pages and gets the same logits', async () => {
    const gpu = await gpuFor(choice);
    const engine = await engineOn(gpu);
    engines.push(engine);
    const V = engine.config.vocabSize;
    const rand = mulberry32(testSeed());
    const prompt = [1, ...Array.from({ length: 39 }, () => 3 + Math.floor(rand() * 500))];
    const first = engine.createPath(prompt, { temperature: 0 });
    const a = (await engine.step({ logits: true }))!;
    engine.free(first); // its pages go back to the pool but keep their hashes until reused
    const rows0 = engine.stats.rows;
    const second = engine.createPath(prompt, { temperature: 0 });
    // 40 tokens = 2 full pages of 16 + 8: the 32 tokens of the full pages are reused, 8 rows are computed.
    expect(engine.path(second).reusedTokens).toBe(32);
    const b = (await engine.step({ logits: true }))!;
    expect(engine.stats.rows - rows0).toBe(8);
    expect(rowError(row(b.logits!, 0, V), row(a.logits!, 0, V))).toBeLessThanOrEqual(TOL);
    sameGreedyToken(row(b.logits!, 0, V), b.results[0].token, row(a.logits!, 0, V), a.results[0].token, TOL, 'reused prefix');
    engine.free(second);
    expect(engine.pagesInUse).toBe(0);
  });

  it('forking a 500-token path copies at most one page; N forks cost at most N tail pages', async () => {
    const gpu = await gpuFor(choice);
    const engine = await engineOn(gpu, 512, 512);
    engines.push(engine);
    const ps = engine.model.pageSize;
    const rand = mulberry32(testSeed());
    const prompt = [1, ...Array.from({ length: 499 }, () => 3 + Math.floor(rand() * 500))];
    const parent = engine.createPath(prompt, { temperature: 0 });
    await engine.step(); // prefill 500 tokens in one pass; token 501 sampled, not yet computed
    const P = engine.path(parent).computed;
    expect(P).toBe(500);
    const before = engine.stats;
    const pagesBefore = engine.pagesInUse;
    expect(pagesBefore).toBe(Math.ceil(P / ps));
    const N = 6;
    const kids = Array.from({ length: N }, (_, i) => engine.fork(parent, { nextToken: 10 + i }));
    // 500 = 31 full pages + 4 tokens: each child shares the 31 full pages and gets one copied tail page.
    expect(engine.pagesInUse - pagesBefore).toBeLessThanOrEqual(N);
    expect(engine.pagesInUse).toBeLessThanOrEqual(Math.ceil(P / ps) + N);
    await engine.step();
    const after = engine.stats;
    const onePage = engine.model.pageBytes * engine.config.nLayers;
    expect(after.pageCopies - before.pageCopies).toBe(N);
    expect(after.bytesCopied - before.bytesCopied).toBe(N * onePage);
    expect((after.bytesCopied - before.bytesCopied) / N).toBeLessThanOrEqual(onePage);
    for (const k of kids) engine.free(k);
    engine.free(parent);
    expect(engine.pagesInUse).toBe(0);
  });
});
