// Entropy-adaptive branching against the two ways of getting N samples without it (naive and fork-at-0, run by
// bench/common/eab.ts, which the browser page shares), same model, prompt and N, on each CPU adapter and prompt length.
// Token steps are rows the engine computed (exact, from its counters); wall clock is the whole generation.
import type { AdapterChoice } from '../src/gpu/adapter_choice.js';
import type { Gpu } from '../src/gpu/device.js';
import type { EabResult } from '../src/branch/eab.js';
import { eab, eabRatios, forkAtZero, naive, type ModeResult } from './common/eab.js';
import { median, round4 } from './harness.js';
import { engineFor, log, promptTokens, QUICK, runModelsAndAdapters, type BenchModel, type ModelName } from './bench_models.js';

interface EabCase {
  prompts: number[];
  newTokens: number;
  samples: number;
  /** EAB entropy thresholds to run (0.4 is the seed's "balanced" default). */
  thresholds: number[];
  /** Runs of every mode, interleaved (naive, fork-at-0, EAB, naive, ...); wall clock is their median. */
  repeats: number;
}

/**
 * stories260K (context 512) takes prompt 256 + 64 new tokens. Random SmolLM2-shaped weights run on llvmpipe only, with
 * 4 samples of 16 tokens: a naive sample there costs seconds of prefill (in quick runs too).
 */
function caseFor(model: ModelName, adapter: AdapterChoice): EabCase | null {
  if (model !== 'stories260K' && adapter !== 'llvmpipe') return null;
  if (QUICK) return { prompts: [32], newTokens: 8, samples: 4, thresholds: [0.4], repeats: 1 };
  if (model === 'stories260K')
    return adapter === 'swiftshader'
      ? { prompts: [32, 128, 256], newTokens: 64, samples: 8, thresholds: [0.4], repeats: 2 }
      : { prompts: [32, 128, 256], newTokens: 64, samples: 16, thresholds: [0.4, 0.25], repeats: 3 };
  return { prompts: [128], newTokens: 16, samples: 4, thresholds: [0.4], repeats: 1 };
}

/** Counts from the first run (seeded: every run computes the same rows), wall clock as the median of the runs. */
function modeJson(runs: ModeResult[]): Record<string, number | number[] | boolean> {
  const m = runs[0];
  const ms = median(runs.map((r) => r.ms));
  return {
    tokenSteps: m.tokenSteps,
    steps: m.steps,
    samples: m.samples,
    generatedTokens: m.generated,
    ms: round4(ms),
    msRuns: runs.map((r) => round4(r.ms)),
    msPerGeneratedToken: round4(ms / Math.max(1, m.generated)),
    pagesPeak: m.pagesPeak,
    sameTokenStepsEveryRun: runs.every((r) => r.tokenSteps === m.tokenSteps),
  };
}

function meanEntropy(r: EabResult): number {
  const all = r.samples.flatMap((s) => s.entropies);
  return all.length ? all.reduce((a, b) => a + b, 0) / all.length : NaN;
}

async function benchCase(model: BenchModel, gpu: Gpu, adapter: AdapterChoice, c: EabCase): Promise<object[]> {
  const maxL = Math.max(...c.prompts);
  const kvPages = Math.ceil(maxL / 16) + c.samples * (Math.ceil(c.newTokens / 16) + 2) + 8;
  const base = await engineFor(model, gpu, { maxRows: Math.max(maxL, 16), maxSamples: c.samples, kvPages });
  const out: object[] = [];
  try {
    // Compiles every pipeline (prefill and decode matmul variants, batched LM head) before anything is timed.
    await forkAtZero(base, promptTokens(model, 16), c.samples, 2);
    for (const L of c.prompts) {
      const prompt = promptTokens(model, L);
      const nv: ModeResult[] = [];
      const f0: ModeResult[] = [];
      const eb = c.thresholds.map(() => [] as { mode: ModeResult; r: EabResult }[]);
      for (let rep = 0; rep < c.repeats; rep++) {
        nv.push(await naive(base, prompt, c.samples, c.newTokens));
        f0.push(await forkAtZero(base, prompt, c.samples, c.newTokens));
        for (let i = 0; i < c.thresholds.length; i++) eb[i].push(await eab(base, prompt, c.samples, c.newTokens, c.thresholds[i]));
        log(
          `[${adapter}] ${model.name} L=${L} run ${rep + 1}/${c.repeats}: naive ${nv[rep].ms.toFixed(0)} ms (${nv[rep].tokenSteps} token steps), ` +
            `fork-at-0 ${f0[rep].ms.toFixed(0)} ms (${f0[rep].tokenSteps}), ` +
            c.thresholds.map((t, i) => `eab@${t} ${eb[i][rep].mode.ms.toFixed(0)} ms (${eb[i][rep].mode.tokenSteps}, ${eb[i][rep].r.stats.forks} forks)`).join(', '),
        );
      }
      const nvMs = median(nv.map((m) => m.ms));
      const f0Ms = median(f0.map((m) => m.ms));
      c.thresholds.forEach((threshold, i) => {
        const runs = eb[i];
        const r = runs[0].r;
        const ebMs = median(runs.map((x) => x.mode.ms));
        const ebSteps = runs[0].mode.tokenSteps;
        out.push({
          model: model.name,
          adapter,
          promptTokens: L,
          newTokens: c.newTokens,
          samples: c.samples,
          entropyThreshold: threshold,
          repeats: c.repeats,
          naive: modeJson(nv),
          forkAt0: modeJson(f0),
          eab: {
            ...modeJson(runs.map((x) => x.mode)),
            forks: r.stats.forks,
            maxLivePaths: r.stats.max_live_paths,
            reusedPromptTokens: r.stats.reused_prompt_tokens,
            selfReportedNaiveTokenSteps: r.stats.naive_token_steps,
            selfReportedTokenStepsRatio: round4(r.stats.token_steps_ratio),
            meanNormEntropy: round4(meanEntropy(r)),
            // Generated-token index of each fork (0 = the first new token): how much of the samples is shared.
            forkPositions: r.tree.filter((n) => n.parent !== null).map((n) => n.fork_position).sort((a, b) => a - b),
            finishReasons: countBy(r.samples.map((s) => s.finish_reason)),
          },
          ratios: eabRatios({ naive: nv[0].tokenSteps, forkAt0: f0[0].tokenSteps, eab: ebSteps }, { naive: nvMs, forkAt0: f0Ms, eab: ebMs }),
        });
      });
    }
  } finally {
    base.destroy();
  }
  return out;
}

function countBy(xs: string[]): Record<string, number> {
  const m: Record<string, number> = {};
  for (const x of xs) m[x] = (m[x] ?? 0) + 1;
  return m;
}

export function run(): Promise<object> {
  return runModelsAndAdapters(
    'tokenSteps: rows the engine computed (prompt rows + decode rows, exact). naive: N samples in sequence, each ' +
      'recomputing the prompt; forkAt0: prompt once, N paths batched; eab: exact-N entropy-adaptive branching ' +
      '(branch_factor 3, temperature 1). All stop at EOS or newTokens. ms: median of the interleaved runs (msRuns). ' +
      'Shared 2-core machine: wall clock is noisy.',
    (model, gpu, adapter) => benchCase(model, gpu, adapter, caseFor(model.name, adapter)!),
    (model, adapter) => caseFor(model, adapter) !== null,
  );
}
