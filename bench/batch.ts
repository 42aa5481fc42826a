// Batched decoding: the step time and aggregate tokens/s with B = 1..32 live paths, all decoding, contexts about 64
// tokens. The goal is that a step reads the weights once whatever B is, so t(B=16) <= 4 x t(B=1). The B paths are
// forks of one 64-token prompt computed once (full pages shared), each fed its own next token: rows, attention reads
// and sampling are those of B independent paths, without computing B prompts.
import type { AdapterChoice } from '../src/gpu/adapter_choice.js';
import type { Gpu } from '../src/gpu/device.js';
import type { Engine } from '../src/engine.js';
import { timedStep, withForks } from './common/engine.js';
import { median, round4, type TimingOptions } from './harness.js';
import { profileStep, type StepProfile } from './step_profile.js';
import { engineFor, log, promptTokens, QUICK, runModelsAndAdapters, type BenchModel, type ModelName } from './bench_models.js';

const CONTEXT = 64;
const ALL_B = [1, 2, 4, 8, 16, 32];
/** The goal: 16 paths cost at most 4 single-path steps. */
const GOAL_B = 16;
const GOAL_RATIO = 4;

interface BatchCase {
  batches: number[];
  /**
   * Rounds over all B, each round forking B paths and timing `stepsPerRound` steps per B: interleaving the B values
   * spreads the shared machine's bursts of load over all of them instead of spoiling one.
   */
  rounds: number;
  stepsPerRound: number;
  /** B values that get one untimed step before the rounds (compiles the matmul variants): all, except on SwiftShader. */
  warm?: number[];
  /** Time the step's kernels by category at each B in the last round (bench/step_profile.ts): where the time goes. */
  profile: boolean;
}

const PROFILE_TIMING: TimingOptions = { warmupMs: 30, sampleMs: 40, samples: 5, minSamples: 3, budgetMs: 600 };

/**
 * SwiftShader takes seconds per SmolLM2-shaped step (16-50 s at B=16 seen here): one timed step per B, no B=32, and
 * no profile (a category costs seconds per sample), in quick runs too.
 */
function caseFor(model: ModelName, adapter: AdapterChoice): BatchCase {
  if (QUICK) return { batches: [1, 2, 8], rounds: 1, stepsPerRound: 1, profile: model === 'stories260K' || adapter !== 'swiftshader' };
  if (model === 'stories260K')
    return adapter === 'swiftshader'
      ? { batches: ALL_B, rounds: 3, stepsPerRound: 2, profile: true }
      : { batches: ALL_B, rounds: 5, stepsPerRound: 3, profile: true };
  return adapter === 'swiftshader'
    ? { batches: [1, 2, 4, 8, 16], rounds: 1, stepsPerRound: 1, warm: [1, 4], profile: false }
    : { batches: ALL_B, rounds: 3, stepsPerRound: 1, profile: true };
}

/** Step milliseconds of B forks of `root` decoding together (and their profile); the forks are freed afterwards. */
function stepsAt(e: Engine, root: number, B: number, timed: number, profile: boolean): Promise<{ ms: number[]; profile: StepProfile | null }> {
  return withForks(e, root, B, async (kids) => {
    const ms: number[] = [];
    for (let i = 0; i < timed; i++) ms.push(await timedStep(e));
    const prof = profile && timed > 0 ? await profileStep(e.model, B, B, e.pages(kids[0]).length, PROFILE_TIMING) : null;
    return { ms, profile: prof };
  });
}

async function benchCase(model: BenchModel, gpu: Gpu, adapter: AdapterChoice): Promise<object> {
  const c = caseFor(model.name, adapter);
  const maxB = Math.max(...c.batches);
  const kvPages = CONTEXT / 16 + maxB * (Math.ceil(c.stepsPerRound / 16) + 1) + 4;
  const e = await engineFor(model, gpu, { maxRows: CONTEXT, maxSamples: maxB, kvPages });
  try {
    const root = e.createPath(promptTokens(model, CONTEXT), { temperature: 1, topP: 1, seed: 7 });
    await e.step();
    e.finish(root); // keeps its pages for the forks, computes no more rows
    // Warm-up: one untimed step per B compiles the matmul variants the sweep will use (the root's 64-row prefill
    // compiled the wide projection variant already; SwiftShader skips B >= 5 and pays the LM head's compile there).
    for (const B of c.warm ?? c.batches) await stepsAt(e, root, B, 1, false);
    const ms = new Map<number, number[]>(c.batches.map((B) => [B, []]));
    const profiles = new Map<number, StepProfile>();
    for (let r = 0; r < c.rounds; r++) {
      for (const B of c.batches) {
        const got = await stepsAt(e, root, B, c.stepsPerRound, c.profile && r === c.rounds - 1);
        ms.get(B)!.push(...got.ms);
        if (got.profile) profiles.set(B, got.profile);
      }
      log(`[${adapter}] ${model.name}: round ${r + 1}/${c.rounds}: ` + c.batches.map((B) => `B=${B} ${median(ms.get(B)!).toFixed(1)}`).join(', ') + ' ms/step');
    }
    const t1 = median(ms.get(1) ?? [NaN]);
    const t1Min = Math.min(...(ms.get(1) ?? [NaN]));
    const qkv = e.model.kernels.layers[0].find((op) => op.name.endsWith('.qkv'))!;
    const results = c.batches.map((B) => {
      const xs = ms.get(B)!;
      const t = median(xs);
      const tMin = Math.min(...xs);
      const profile = profiles.get(B);
      return {
        B,
        stepMsMedian: round4(t),
        stepMsMin: round4(tMin),
        steps: xs.length,
        tokensPerS: round4((B / t) * 1000),
        ratioToB1: round4(t / t1),
        ratioToB1Min: round4(tMin / t1Min),
        matmulVariant: qkv.variantFor!(B),
        ...(profile ? { profile: { ...profile, hostMs: round4(tMin - profile.forwardMs) } } : {}),
      };
    });
    const goalRow = results.find((r) => r.B === GOAL_B);
    return {
      model: model.name,
      adapter,
      adapterName: gpu.name,
      context: CONTEXT,
      rounds: c.rounds,
      results,
      goal: goalRow
        ? {
            B: GOAL_B,
            maxRatio: GOAL_RATIO,
            ratio: goalRow.ratioToB1,
            ratioMin: goalRow.ratioToB1Min,
            met: goalRow.ratioToB1 <= GOAL_RATIO,
            metMin: goalRow.ratioToB1Min <= GOAL_RATIO,
          }
        : { B: GOAL_B, maxRatio: GOAL_RATIO, ratio: null, met: null },
    };
  } finally {
    e.destroy();
  }
}

export function run(): Promise<object> {
  return runModelsAndAdapters(
    `B paths forked from one ${CONTEXT}-token prompt, all decoding (temperature 1); ms per engine step, median of the ` +
      'timed steps (B values interleaved over rounds); tokensPerS = B / median step; ratioToB1 = t(B) / t(1) from ' +
      'medians, ratioToB1Min from the fastest steps; goal t(16) <= 4 t(1). profile: fastest ms per category, kernels ' +
      're-encoded many times per submit (bench/step_profile.ts); hostMs = fastest step - forward (plan, upload, ' +
      'submit, readback, JS). Shared 2-core machine: noisy.',
    benchCase,
  );
}
