// Temperature semantics end to end on stories260K (issue 10 part 2). Temperature 0 is greedy everywhere: the sampling
// distribution is a point mass with entropy 0, so EAB never branches and exact-N returns N copies of the greedy sample.
// At every temperature the proposal log-probabilities (and so the importance weights) are those of the distribution
// actually sampled, after temperature and top-p, and the branching entropy is that distribution's: both checked
// against a float64 forward.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runEab, type EabEvent, type EabResult } from '../../src/branch/eab.js';
import { main } from '../../src/cli/main.js';
import { Engine } from '../../src/engine.js';
import { generate } from '../../src/generate.js';
import type { LoadedModel } from '../../src/model/load.js';
import { gpuFor } from '../kernels/adapters.js';
import { refForward } from '../ref/llama_ref.js';
import { loadStories, tokenizerFor } from './models.js';

let loaded: LoadedModel;
const engines: Engine[] = [];
async function engine(): Promise<Engine> {
  const e = await Engine.fromWeights(loaded.weights, tokenizerFor(loaded), { gpu: await gpuFor('llvmpipe'), kvPages: 512 });
  engines.push(e);
  return e;
}
beforeAll(async () => {
  loaded = await loadStories('hf');
});
afterAll(() => engines.forEach((e) => e.destroy()));

/** The tempered top-p distribution of one float64 logit row: log q per token (-Infinity outside the nucleus). */
function samplingLogq(row: ArrayLike<number>, T: number, topP: number): Float64Array {
  const V = row.length;
  let m = -Infinity;
  for (let i = 0; i < V; i++) m = Math.max(m, row[i]);
  const order = Array.from({ length: V }, (_, i) => i).sort((a, b) => row[b] - row[a] || a - b);
  const w = order.map((i) => Math.exp((row[i] - m) / T));
  const z = w.reduce((a, b) => a + b, 0);
  let n = V;
  if (topP < 1) {
    let c = 0;
    n = 0;
    while (n < V && c < topP) c += w[n++] / z;
    while (n < V && row[order[n]] === row[order[n - 1]]) n++; // ties at the cut are kept
  }
  const zn = w.slice(0, n).reduce((a, b) => a + b, 0);
  const out = new Float64Array(V).fill(-Infinity);
  for (let j = 0; j < n; j++) out[order[j]] = Math.log(w[j] / zn);
  return out;
}

function entropyOf(logq: Float64Array): number {
  let h = 0;
  for (const l of logq) if (l > -Infinity) h -= Math.exp(l) * l;
  return h;
}

describe('temperature 0 is greedy everywhere', () => {
  it('issue 10.2: forklm generate --mode eab --temperature 0 --num-samples 4 gives 4 copies of the greedy sample', async () => {
    const out: string[] = [];
    const io = { stdout: (t: string) => void out.push(t), stderr: () => undefined, env: {} };
    const argv = ['generate', '--mode', 'eab', '--temperature', '0', '--num-samples', '4', '--max-new-tokens', '40', '--prompt', 'Once upon a time', '--json'];
    // The CLI picks its adapter from the process environment; llvmpipe, as this file's engines use.
    const before = process.env.FORKLM_ADAPTER;
    process.env.FORKLM_ADAPTER = 'llvmpipe';
    try {
      expect(await main(argv, io)).toBe(0);
    } finally {
      if (before === undefined) delete process.env.FORKLM_ADAPTER;
      else process.env.FORKLM_ADAPTER = before;
    }
    const r = JSON.parse(out.join('')) as Pick<EabResult, 'samples' | 'tree' | 'stats'>;
    const e = await engine();
    const greedy = await generate(e, e.tokenizer!.encode('Once upon a time'), { maxNewTokens: 40, temperature: 0 });
    expect(r.samples.length).toBe(4);
    for (const s of r.samples) {
      expect(s.tokens).toEqual(greedy.tokens);
      expect(s.proposal_log_probability).toBe(0);
      expect(s.log_importance_weight).toBe(s.log_probability);
      expect(s.branch_points).toEqual([]);
      expect(s.entropies.every((h) => h === 0)).toBe(true);
    }
    // One path computed once: no fork, no second root.
    expect(r.stats.forks).toBe(0);
    expect(r.tree.length).toBe(1);
  });

  it('EAB at temperature 0 never branches, even at threshold 0 with max_paths 8; generate and EAB agree', async () => {
    const e = await engine();
    const prompt = e.tokenizer!.encode('Lily wanted to');
    const events: EabEvent[] = [];
    const r = await runEab(e, prompt, { temperature: 0, entropy_threshold: 0, max_paths: 8, max_new_tokens: 30, seed: 4 }, (ev) => events.push(ev));
    expect(r.stats.forks).toBe(0);
    expect(events.some((ev) => ev.type === 'fork')).toBe(false);
    expect(r.samples.length).toBe(1);
    const g = await generate(e, prompt, { maxNewTokens: 30, temperature: 0, seed: 99 });
    expect(r.samples[0].tokens).toEqual(g.tokens);
    // The same run at temperature 1 does branch: threshold 0 is not why nothing forked above.
    expect((await runEab(e, prompt, { temperature: 1, entropy_threshold: 0, max_paths: 8, max_new_tokens: 30, seed: 4 })).stats.forks).toBeGreaterThan(0);
  });
});

// Thresholds low enough that each run branches (the tempered, top-p distribution is narrower than the model's).
describe.each([
  { temperature: 1, top_p: 1, entropy_threshold: 0.3 },
  { temperature: 0.7, top_p: 0.9, entropy_threshold: 0.08 },
])('proposal log-probabilities and branching entropy at %o, against a float64 forward', (sampling) => {
  it('every sample: log q = sum of float64 log q(token) less the without-replacement terms; entropies on q', async () => {
    const e = await engine();
    const prompt = e.tokenizer!.encode('Once upon a time');
    const forks: Extract<EabEvent, { type: 'fork' }>[] = [];
    const r = await runEab(e, prompt, { ...sampling, branch_factor: 3, max_paths: 8, max_new_tokens: 30, seed: 21 }, (ev) => {
      if (ev.type === 'fork') forks.push(ev);
    });
    expect(forks.length).toBeGreaterThan(0);
    const V = e.config.vocabSize;
    const nodes = new Map(r.tree.map((n) => [n.path, n]));
    for (const s of r.samples.slice(0, 4)) {
      // The path of this sample's lineage that produced its token at generated position g.
      const cover = (g: number) => [...s.lineage].reverse().find((id) => nodes.get(id)!.fork_position <= g)!;
      const logits = refForward(loaded.weights, [...prompt, ...s.tokens].slice(0, -1));
      let logq = 0;
      let entErr = 0;
      for (let g = 0; g < s.tokens.length; g++) {
        const q = samplingLogq(logits[prompt.length - 1 + g], sampling.temperature, sampling.top_p);
        logq += q[s.tokens[g]];
        // A branch drew its siblings in order without replacement: the j-th had the earlier ones' mass removed.
        const fork = forks.find((f) => f.position === g && [f.parent, ...f.children].includes(cover(g)));
        if (fork) {
          const j = [fork.parent, ...fork.children].indexOf(cover(g));
          const taken = fork.tokens.slice(0, j).reduce((a, t) => a + Math.exp(q[t]), 0);
          logq -= Math.log1p(-taken);
        }
        entErr = Math.max(entErr, Math.abs(s.entropies[g] - entropyOf(q) / Math.log(V)));
      }
      // GPU logits are within 2e-5 of the row's largest |logit| (< 30 here) of float64: a log-prob within ~1.2e-3 at
      // T = 1 (eab.test.ts), 1/T times that tempered; over 30 tokens the errors (of both signs) stay inside 1e-2.
      expect(Math.abs(s.proposal_log_probability - logq), `sample ${s.path}: log q`).toBeLessThan(1e-2);
      expect(s.log_importance_weight).toBeCloseTo(s.log_probability - s.proposal_log_probability, 9);
      // The entropy EAB branched on is q's (normalised by ln V), not the model's: within 2e-3 of float64's.
      expect(entErr, `sample ${s.path}: sampling entropy`).toBeLessThan(2e-3);
    }
  });
});
