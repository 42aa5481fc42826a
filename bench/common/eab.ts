// The three ways of getting N samples that the EAB benchmark compares, same model, prompt and N, shared by
// bench/eab.ts (Node) and the Chromium page (bench/browser_page/engine_benches.ts); they need only an Engine.
//   naive     N samples one after another, each on an engine with an empty KV and prefix cache, so every sample
//             recomputes the prompt (what the seed document compares against);
//   fork-at-0 the prompt once, then N paths sharing its pages (N-1 forks that recompute only the last prompt token to
//             draw their own first token), all decoded in one batched step: iid samples, like naive;
//   eab       runEab in exact-N mode (num_samples = N): forks only where the normalised entropy exceeds the threshold.
// Token steps are rows the engine computed (exact, from its counters); wall clock is the whole generation.
import { runEab, type EabResult } from '../../src/branch/eab.js';
import type { Engine } from '../../src/engine.js';
import { generate } from '../../src/generate.js';
import { freshEngine } from './engine.js';
import { round4 } from './timing.js';

/** Seed of every sampling stream (sample i of naive uses EAB_SEED + i): runs replay exactly. */
export const EAB_SEED = 11;

export interface ModeResult {
  /** Rows the engine computed. */
  tokenSteps: number;
  steps: number;
  generated: number;
  samples: number;
  ms: number;
  pagesPeak: number;
}

export async function naive(base: Engine, prompt: number[], N: number, maxNew: number): Promise<ModeResult> {
  const out: ModeResult = { tokenSteps: 0, steps: 0, generated: 0, samples: N, ms: 0, pagesPeak: 0 };
  const t0 = performance.now();
  for (let i = 0; i < N; i++) {
    const e = freshEngine(base);
    const r = await generate(e, prompt, { maxNewTokens: maxNew, temperature: 1, topP: 1, seed: EAB_SEED + i });
    out.tokenSteps += e.stats.rows;
    out.steps += e.stats.steps;
    out.generated += r.tokens.length;
    out.pagesPeak = Math.max(out.pagesPeak, e.stats.pagesPeak);
  }
  out.ms = performance.now() - t0;
  return out;
}

/** The prompt once, then N iid paths over its pages, decoded together until each has maxNew tokens or an EOS. */
export async function forkAtZero(base: Engine, prompt: number[], N: number, maxNew: number): Promise<ModeResult> {
  const e = freshEngine(base);
  const eos = new Set(e.config.eosTokenIds);
  const t0 = performance.now();
  const counts = new Map<number, number>();
  const root = e.createPath(prompt, { temperature: 1, topP: 1, seed: EAB_SEED }, { reserve: maxNew });
  counts.set(root, 0);
  let forked = false;
  let generated = 0;
  for (;;) {
    const r = await e.step();
    if (!r) break;
    for (const res of r.results) {
      const n = (counts.get(res.pathId) ?? 0) + 1;
      counts.set(res.pathId, n);
      generated++;
      if (eos.has(res.token) || n >= maxNew) e.finish(res.pathId);
    }
    if (!forked) {
      // keep = prompt length: each child recomputes the last prompt token (one row) and draws its own first token.
      for (let i = 1; i < N; i++) counts.set(e.fork(root, { keep: prompt.length, sibling: i }), 0);
      forked = true;
    }
  }
  const ms = performance.now() - t0;
  const out = { tokenSteps: e.stats.rows, steps: e.stats.steps, generated, samples: counts.size, ms, pagesPeak: e.stats.pagesPeak };
  e.freeAll();
  return out;
}

/** Exact-N entropy-adaptive branching (branch factor 3, temperature 1: runEab's defaults); `options.pipeline`: EngineOptions.pipeline. */
export async function eab(
  base: Engine,
  prompt: number[],
  N: number,
  maxNew: number,
  threshold: number,
  options: { pipeline?: boolean } = {},
): Promise<{ mode: ModeResult; r: EabResult }> {
  const e = freshEngine(base, options);
  const t0 = performance.now();
  const r = await runEab(e, prompt, { num_samples: N, max_new_tokens: maxNew, entropy_threshold: threshold, seed: EAB_SEED });
  const ms = performance.now() - t0;
  e.freeAll();
  const generated = r.samples.reduce((a, s) => a + s.tokens.length, 0);
  return {
    r,
    mode: { tokenSteps: r.stats.token_steps, steps: r.stats.steps, generated, samples: r.stats.samples, ms, pagesPeak: r.stats.pages_peak },
  };
}

/** Token steps and wall clock of fork-at-0 and EAB relative to naive (and to each other), as the JSON records them. */
export function eabRatios(
  steps: { naive: number; forkAt0: number; eab: number },
  ms: { naive: number; forkAt0: number; eab: number },
): Record<string, number> {
  return {
    eabTokenStepsVsNaive: round4(steps.eab / steps.naive),
    forkAt0TokenStepsVsNaive: round4(steps.forkAt0 / steps.naive),
    naiveWallOverEab: round4(ms.naive / ms.eab),
    naiveWallOverForkAt0: round4(ms.naive / ms.forkAt0),
    forkAt0WallOverEab: round4(ms.forkAt0 / ms.eab),
  };
}
