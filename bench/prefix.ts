// Shared-prefix decoding (issue 15, point 3): B paths forked from one long prompt, all decoding, on the SmolLM2-135M
// shape at context 512. Times t(B) / t(1) per engine step in three modes in the same run (interleaved rounds, so all
// see the same load): per-path attention in the variant the model picks, the same with the split-keys variant forced
// (a second engine: the variant is fixed per model), and shared-prefix (cascade) attention; and where each step's time
// goes (bench/step_profile.ts). goal.perPath is issue 15's "16 paths <= 2.5x one path per step".
import type { AdapterChoice } from '../src/gpu/adapter_choice.js';
import type { Gpu } from '../src/gpu/device.js';
import type { Engine } from '../src/engine.js';
import { timedStep, withForks } from './common/engine.js';
import { median, round4, type TimingOptions } from './harness.js';
import { profileStep, type StepProfile } from './step_profile.js';
import { engineFor, log, promptTokens, QUICK, runModelsAndAdapters, type BenchModel } from './bench_models.js';

/** Prompt tokens: the "context 512". */
const CONTEXT = QUICK ? 64 : 512;
const BATCHES = [1, 16];
const ROUNDS = QUICK ? 1 : 3;
const STEPS_PER_ROUND = QUICK ? 1 : 2;
const PROFILE_TIMING: TimingOptions = { warmupMs: 30, sampleMs: 40, samples: 3, minSamples: 2, budgetMs: 2_000 };

type Mode = 'per-path' | 'split-keys' | 'cascade';
const ALL_MODES: Mode[] = ['per-path', 'split-keys', 'cascade'];
/**
 * FORKLM_PREFIX_MODES=per-path (a comma list): only these modes, per-path always among them (the goal is its ratio);
 * split-keys and cascade steps at B=16 take most of a full run's time on llvmpipe.
 */
const MODES: Mode[] = ((): Mode[] => {
  const want = (process.env.FORKLM_PREFIX_MODES ?? ALL_MODES.join(',')).split(',').map((m) => m.trim());
  const bad = want.filter((m) => !ALL_MODES.includes(m as Mode));
  if (bad.length > 0) throw new Error(`FORKLM_PREFIX_MODES: unknown mode(s) ${bad.join(', ')}; use ${ALL_MODES.join(', ')}`);
  return ALL_MODES.filter((m) => m === 'per-path' || want.includes(m));
})();

/** The engine a mode runs on (split-keys has its own), with cascade set as the mode wants. */
function setMode(engines: { main: Engine; split: Engine | null }, mode: Mode): Engine {
  const e = mode === 'split-keys' ? engines.split! : engines.main;
  e.model.attention.cascade = mode === 'cascade';
  return e;
}

/** The prompt's root path, prefilled and finished, for forks. */
async function promptRoot(e: Engine, model: BenchModel): Promise<number> {
  const root = e.createPath(promptTokens(model, CONTEXT), { temperature: 1, topP: 1, seed: 7 });
  while (e.path(root).state === 'prefill') await e.step();
  e.finish(root);
  return root;
}

async function stepsAt(e: Engine, root: number, B: number, steps: number, profile: boolean): Promise<{ ms: number[]; profile: StepProfile | null }> {
  return withForks(e, root, B, async (kids) => {
    const ms: number[] = [];
    for (let i = 0; i < steps; i++) ms.push(await timedStep(e));
    const prof = profile ? await profileStep(e.model, B, B, e.pages(kids[0]).length, PROFILE_TIMING) : null;
    return { ms, profile: prof };
  });
}

async function benchCase(model: BenchModel, gpu: Gpu, adapter: AdapterChoice): Promise<object> {
  const maxB = Math.max(...BATCHES);
  const kvPages = CONTEXT / 16 + maxB * 2 + 4;
  const opts = { maxRows: 128, maxSamples: maxB, kvPages };
  const main = await engineFor(model, gpu, { ...opts, cascade: true });
  const split = !MODES.includes('split-keys')
    ? null
    : await engineFor(model, gpu, { ...opts, attentionVariant: 'split-keys' }).catch((err: unknown) => {
        main.destroy();
        throw err;
      });
  const engines = { main, split };
  try {
    const roots = new Map([[main, await promptRoot(main, model)]]);
    if (split) roots.set(split, await promptRoot(split, model));
    const modes = MODES;
    for (const mode of modes) for (const B of BATCHES) { const e = setMode(engines, mode); await stepsAt(e, roots.get(e)!, B, 1, false); }
    const ms = new Map<string, number[]>();
    const profiles = new Map<string, StepProfile>();
    for (let r = 0; r < ROUNDS; r++) {
      for (const mode of modes) {
        const e = setMode(engines, mode);
        for (const B of BATCHES) {
          const got = await stepsAt(e, roots.get(e)!, B, STEPS_PER_ROUND, r === ROUNDS - 1);
          const key = `${mode} B=${B}`;
          ms.set(key, [...(ms.get(key) ?? []), ...got.ms]);
          if (got.profile) profiles.set(key, got.profile);
        }
      }
      log(`[${adapter}] ${model.name}: round ${r + 1}/${ROUNDS}: ` + [...ms].map(([k, v]) => `${k} ${median(v).toFixed(1)}`).join(', ') + ' ms/step');
    }
    const results = modes.map((mode) => {
      const attentionVariant = (mode === 'split-keys' ? split! : main).model.attention.variant;
      const t1 = median(ms.get(`${mode} B=1`)!);
      const t1Min = Math.min(...ms.get(`${mode} B=1`)!);
      return {
        mode,
        attentionVariant,
        rows: BATCHES.map((B) => {
          const xs = ms.get(`${mode} B=${B}`)!;
          return {
            B,
            stepMsMedian: round4(median(xs)),
            stepMsMin: round4(Math.min(...xs)),
            steps: xs.length,
            ratioToB1: round4(median(xs) / t1),
            ratioToB1Min: round4(Math.min(...xs) / t1Min),
            profile: profiles.get(`${mode} B=${B}`) ?? null,
          };
        }),
      };
    });
    const cascade = results.find((r) => r.mode === 'cascade')?.rows ?? null;
    const plain = results.find((r) => r.mode === 'per-path')!.rows;
    const splitRows = results.find((r) => r.mode === 'split-keys')?.rows ?? null;
    return {
      model: model.name,
      adapter,
      adapterName: gpu.name,
      context: CONTEXT,
      rounds: ROUNDS,
      results,
      // The target: t(16) <= 2.5 t(1) per path as the model runs by default (perPath, medians); the forced
      // split-keys variant and cascade beside it, each against per-path at the same B.
      goal: {
        maxRatio: 2.5,
        perPath: plain[1].ratioToB1,
        met: plain[1].ratioToB1 <= 2.5,
        splitKeys: splitRows ? splitRows[1].ratioToB1 : null,
        splitKeysOverPerPath: splitRows ? BATCHES.map((B, i) => ({ B, ratio: round4(splitRows[i].stepMsMedian / plain[i].stepMsMedian) })) : null,
        cascadeOverPerPath16: cascade ? round4(cascade[1].stepMsMedian / plain[1].stepMsMedian) : null,
      },
    };
  } finally {
    main.destroy();
    split?.destroy();
  }
}

export function run(): Promise<object> {
  return runModelsAndAdapters(
    `B paths forked from one ${CONTEXT}-token prompt (all its pages shared), each fed its own token, all decoding; ms ` +
      'per engine step, median of the timed steps; modes (per-path in the model\'s attention variant, split-keys forced, ' +
      'cascade) and B interleaved over rounds; ratioToB1 = t(B) / t(1) ' +
      'within a mode. profile: fastest ms per category of the last round (bench/step_profile.ts). Shared 2-core machine.',
    benchCase,
    (m, a) => m === 'smollm2-135m-random' && a === 'llvmpipe',
  );
}
