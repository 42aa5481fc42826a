// The engine benchmarks of bench/decode.ts, batch.ts, eab.ts and peaks.ts, in the page, on stories260K fetched from
// the dev server. The methods and prompts are the Node benchmarks' own (bench/common/), with counts cut to fit the
// whole Chromium run, both adapters, in about four minutes on two shared cores. Every timed prompt runs on an engine
// with an empty KV and prefix cache (freshEngine).
import { runPeaks, type PeaksResult } from '../../src/branch/peaks.js';
import { Engine } from '../../src/engine.js';
import type { Gpu } from '../../src/gpu/device.js';
import type { ModelOptions } from '../../src/model/gpu_model.js';
import type { LlamaWeights } from '../../src/model/weights.js';
import type { Tokenizer } from '../../src/tokenizer/types.js';
import { decodeCase, LLAMA_CPP_STORIES_TOK_S, promptRun } from '../common/decode.js';
import { eab, eabRatios, forkAtZero, naive, type ModeResult } from '../common/eab.js';
import { freshEngine, timedStep, withForks } from '../common/engine.js';
import { storyTokens } from '../common/prompt.js';
import { median, round4 } from '../common/timing.js';
import type { BrowserAdapter } from './api.js';

export interface BenchContext {
  gpu: Gpu;
  adapter: BrowserAdapter;
  quick: boolean;
  weights: LlamaWeights;
  tokenizer: Tokenizer;
}

async function withEngine<T>(c: BenchContext, options: ModelOptions, f: (base: Engine) => Promise<T>): Promise<T> {
  const base = await Engine.fromWeights(c.weights, c.tokenizer, { gpu: c.gpu, ...options });
  try {
    return await f(base);
  } finally {
    base.destroy();
  }
}

// ---- decode: prefill tokens/s (whole prompt in one step) and single-path greedy decode tokens/s (bench/decode.ts).
export async function decodeSection(c: BenchContext): Promise<object> {
  // bench/decode.ts's stories260K counts, so Node and Chromium numbers pair up (the warm-up runs the timed prompt).
  const { warmPrompt: _warm, ...cfg } = decodeCase('stories260K', c.adapter, c.quick);
  const kvPages = Math.ceil((cfg.prompt + cfg.decodeSteps + 1) / 16) + 2;
  return withEngine(c, { maxRows: Math.max(cfg.prompt, 16), maxSamples: 4, kvPages }, async (base) => {
    const prompt = storyTokens(c.tokenizer, cfg.prompt);
    await promptRun(base, prompt, 1); // compiles every pipeline
    const prefill: number[] = [];
    const steps: number[] = [];
    for (let r = 0; r < Math.max(cfg.prefillRepeats, cfg.decodeRepeats); r++) {
      const x = await promptRun(base, prompt, r < cfg.decodeRepeats ? cfg.decodeSteps : 0);
      prefill.push(x.prefill);
      steps.push(...x.decode);
    }
    const decodeTokS = 1000 / median(steps);
    return {
      model: 'stories260K',
      ...cfg,
      prefill: {
        promptTokens: cfg.prompt,
        msMedian: round4(median(prefill)),
        msMin: round4(Math.min(...prefill)),
        tokensPerS: round4((cfg.prompt / median(prefill)) * 1000),
      },
      decode: {
        contextStart: cfg.prompt,
        stepMsMedian: round4(median(steps)),
        stepMsMin: round4(Math.min(...steps)),
        tokensPerS: round4(decodeTokS),
        llamaCppTokensPerS: LLAMA_CPP_STORIES_TOK_S,
        vsLlamaCpp: round4(decodeTokS / LLAMA_CPP_STORIES_TOK_S),
      },
    };
  });
}

// ---- batch: B forks of one 64-token prompt decoding together; step time and aggregate tokens/s (bench/batch.ts).
export async function batchSection(c: BenchContext): Promise<object> {
  const CONTEXT = 64;
  const cfg = c.quick
    ? { batches: [1, 4], warmSteps: 1, timedSteps: 1 }
    : c.adapter === 'swiftshader'
      ? { batches: [1, 4, 16], warmSteps: 1, timedSteps: 6 }
      : { batches: [1, 4, 16], warmSteps: 2, timedSteps: 10 };
  const maxB = Math.max(...cfg.batches);
  const kvPages = CONTEXT / 16 + maxB * Math.ceil((cfg.warmSteps + cfg.timedSteps + 1) / 16 + 1) + 4;
  return withEngine(c, { maxRows: CONTEXT, maxSamples: maxB, kvPages }, async (e) => {
    const root = e.createPath(storyTokens(c.tokenizer, CONTEXT), { temperature: 1, topP: 1, seed: 7 });
    await e.step();
    e.finish(root); // keeps its pages for the forks, computes no more rows
    const rows: { B: number; ms: number[] }[] = [];
    for (const B of cfg.batches) {
      const ms = await withForks(e, root, B, async () => {
        for (let i = 0; i < cfg.warmSteps; i++) await e.step();
        const timed: number[] = [];
        for (let i = 0; i < cfg.timedSteps; i++) timed.push(await timedStep(e));
        return timed;
      });
      rows.push({ B, ms });
    }
    const t1 = median(rows[0].ms);
    return {
      model: 'stories260K',
      context: CONTEXT,
      ...cfg,
      results: rows.map(({ B, ms }) => ({
        B,
        stepMsMedian: round4(median(ms)),
        stepMsMin: round4(Math.min(...ms)),
        tokensPerS: round4((B / median(ms)) * 1000),
        ratioToB1: round4(median(ms) / t1),
      })),
    };
  });
}

// ---- eab: exact-N entropy-adaptive branching against naive and fork-at-0 (bench/eab.ts).
/** A mode as this page's JSON records it (one run each: ms rounded, no pages peak). */
function modeJson(m: ModeResult): { tokenSteps: number; steps: number; generatedTokens: number; samples: number; ms: number } {
  return { tokenSteps: m.tokenSteps, steps: m.steps, generatedTokens: m.generated, samples: m.samples, ms: round4(m.ms) };
}

export async function eabSection(c: BenchContext): Promise<object> {
  const cfg = c.quick
    ? { prompts: [32], newTokens: 8, samples: 4, entropyThreshold: 0.4 }
    : { prompts: [32, 128], newTokens: 64, samples: 8, entropyThreshold: 0.4 };
  const maxL = Math.max(...cfg.prompts);
  const kvPages = Math.ceil(maxL / 16) + cfg.samples * (Math.ceil(cfg.newTokens / 16) + 2) + 8;
  return withEngine(c, { maxRows: Math.max(maxL, 16), maxSamples: cfg.samples, kvPages }, async (base) => {
    // Compiles every pipeline (prefill and decode variants, the batched LM head) before anything is timed.
    await forkAtZero(base, storyTokens(c.tokenizer, 16), cfg.samples, 2);
    const cases: object[] = [];
    for (const L of cfg.prompts) {
      const prompt = storyTokens(c.tokenizer, L);
      const nv = modeJson(await naive(base, prompt, cfg.samples, cfg.newTokens));
      const f0 = modeJson(await forkAtZero(base, prompt, cfg.samples, cfg.newTokens));
      const { mode, r } = await eab(base, prompt, cfg.samples, cfg.newTokens, cfg.entropyThreshold);
      const eb = modeJson(mode);
      cases.push({
        promptTokens: L,
        naive: nv,
        forkAt0: f0,
        eab: { ...eb, forks: r.stats.forks, maxLivePaths: r.stats.max_live_paths },
        ratios: eabRatios(
          { naive: nv.tokenSteps, forkAt0: f0.tokenSteps, eab: eb.tokenSteps },
          { naive: nv.ms, forkAt0: f0.ms, eab: eb.ms },
        ),
      });
    }
    return { model: 'stories260K', ...cfg, cases };
  });
}

// ---- peaks: one small confidence-peak run, true branching (page-table forks) against the seed's re-encoding.
function peaksRecord(r: PeaksResult): object {
  const s = r.stats;
  return {
    traces: s.traces,
    branchTraces: s.branch_traces,
    tokensComputed: s.tokens_computed,
    tokensReencode: s.tokens_reencode,
    savingsVsReencode: round4(s.savings_vs_reencode),
    generatedTokens: s.generated_tokens,
    steps: s.steps,
    ms: round4(s.ms),
  };
}

export async function peaksSection(c: BenchContext): Promise<object> {
  const text = 'Once upon a time';
  const params = c.quick ? { initial_traces: 2, max_traces: 3, max_new_tokens: 12 } : { initial_traces: 2, max_traces: 6, max_new_tokens: 32 };
  return withEngine(c, { maxSamples: 16, kvPages: 256 }, async (base) => {
    const prompt = c.tokenizer.encode(text);
    await runPeaks(freshEngine(base), prompt, params); // compiles the pipelines of every batch shape it steps through
    const branching = await runPeaks(freshEngine(base), prompt, params);
    const simulated = await runPeaks(freshEngine(base), prompt, { ...params, regenerate: true });
    return {
      model: 'stories260K',
      prompt: text,
      promptTokens: prompt.length,
      params,
      trueBranching: peaksRecord(branching),
      simulatedBranching: peaksRecord(simulated),
      ratios: {
        rowsTrueOverSimulated: round4(branching.stats.tokens_computed / simulated.stats.tokens_computed),
        msTrueOverSimulated: round4(branching.stats.ms / simulated.stats.ms),
      },
    };
  });
}
