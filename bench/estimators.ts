// Do branched samples estimate what independent samples estimate? For a few stories260K prompts and a short horizon,
// three quantities of the continuation are measured with 20,000 independent samples (the reference), then estimated
// by many seeded runs of each sampler: EAB at several entropy thresholds (prune_policy 'none', where the inclusion
// weights are unbiased, and the default keep_most_probable, where they are marked biased), fork-at-0 (independent
// samples sharing the prompt) and confidence-peak branching. Each run's estimate is taken with the proper weights
// (inclusion weights for EAB, 1/n for independent samples; peaks has none), with today's weights (probability,
// importance) and unweighted. Over the runs: bias (z against the reference), variance, token steps per run, and the
// token steps needed for one standard error, relative to independent samples.
//
// Quantities: the probability of the reference's most frequent first word; the probability that the continuation
// contains a given word (the word whose reference probability is nearest 0.3); the mean number of generated tokens up
// to and including the first one holding a period (the horizon when none does).
import { expectation } from '../src/analysis/estimators.js';
import { aggregate } from '../src/analysis/aggregate.js';
import type { WeightMode } from '../src/analysis/index.js';
import { runEab } from '../src/branch/eab.js';
import { runPeaks } from '../src/branch/peaks.js';
import type { Engine } from '../src/engine.js';
import { createGpu } from '../src/gpu/device.js';
import { decodeContinuation } from '../src/tokenizer/stream_decoder.js';
import { benchModel, engineFor, log, machine, QUICK } from './bench_models.js';
import { freshEngine } from './common/engine.js';
import { round4, startLoadMeter } from './harness.js';

// Prompts that end where the next word is uncertain ("Once upon a time" continues with ", there was" nearly always).
const PROMPTS = ['Lily wanted to play with', 'One day, a little', 'The little dog was'];
// The default run is sized for a shared 2-core machine: 5,000 reference samples per prompt (the issue asks for 20,000:
// FORKLM_BENCH_IID=20000, about 8 minutes per prompt on llvmpipe here), two prompts (FORKLM_BENCH_PROMPTS=3 for all),
// 60 runs per estimator (FORKLM_BENCH_RUNS).
const env = (k: string, d: number) => (process.env[k] ? Number(process.env[k]) : d);
const CFG = QUICK
  ? { prompts: PROMPTS.slice(0, 1), horizon: 8, iid: 500, runs: 8, thresholds: [0.4], iidN: 8 }
  : {
      prompts: PROMPTS.slice(0, env('FORKLM_BENCH_PROMPTS', 2)),
      horizon: 12,
      iid: env('FORKLM_BENCH_IID', 5000),
      runs: env('FORKLM_BENCH_RUNS', 60),
      thresholds: [0.25, 0.4, 0.55],
      iidN: 8,
    };
const MAX_PATHS = 16;
const BATCH = 500;

interface Sample {
  tokens: number[];
  text: string;
  log_probability: number;
  probability: number;
  log_importance_weight?: number;
  log_inclusion_weight?: number;
}

interface Quantity {
  name: string;
  f: (s: Sample) => number;
}

/** One run's estimate of every quantity under every weighting it supports, and its cost. */
interface RunEstimates {
  steps: number;
  samples: number;
  /** weighting -> one value per quantity. */
  values: Partial<Record<Weighting, number[]>>;
  /** The standard error the proper estimator reported, per quantity. */
  ses?: number[];
  /** Whether the run's own design was marked unbiased (EAB). */
  unbiased?: boolean;
}
type Weighting = 'proper' | 'probability' | 'importance' | 'uniform';

function textOf(engine: Engine, prompt: number[], tokens: number[]): string {
  const eos = new Set(engine.config.eosTokenIds);
  const body = tokens.length > 0 && eos.has(tokens[tokens.length - 1]) ? tokens.slice(0, -1) : tokens;
  return decodeContinuation(engine.tokenizer!, prompt, body);
}

/** N independent samples sharing the prompt's pages (fork-at-0), `horizon` tokens or up to EOS. */
async function iidRun(base: Engine, prompt: number[], N: number, horizon: number, seed: number): Promise<{ samples: Sample[]; steps: number }> {
  const e = freshEngine(base);
  const eos = new Set(e.config.eosTokenIds);
  const toks = new Map<number, number[]>();
  const lps = new Map<number, number>();
  const root = e.createPath(prompt, { temperature: 1, topP: 1, seed }, { reserve: horizon });
  toks.set(root, []);
  lps.set(root, 0);
  let forked = false;
  for (;;) {
    const r = await e.step();
    if (!r) break;
    for (const res of r.results) {
      const t = toks.get(res.pathId)!;
      t.push(res.token);
      lps.set(res.pathId, lps.get(res.pathId)! + res.stats.sampledLogprobs[0]);
      if (eos.has(res.token) || t.length >= horizon) e.finish(res.pathId);
    }
    if (!forked) {
      for (let i = 1; i < N; i++) {
        const id = e.fork(root, { keep: prompt.length, sibling: i });
        toks.set(id, []);
        lps.set(id, 0);
      }
      forked = true;
    }
  }
  const steps = e.stats.rows;
  e.freeAll();
  const samples = [...toks].map(([id, tokens]) => {
    const lp = lps.get(id)!;
    return { tokens, text: textOf(e, prompt, tokens), log_probability: lp, probability: Math.exp(lp) };
  });
  return { samples, steps };
}

function firstWord(text: string): string | null {
  const m = /[A-Za-z']+/.exec(text);
  return m ? m[0].toLowerCase() : null;
}

function quantities(engine: Engine, reference: Sample[], horizon: number): Quantity[] {
  const count = new Map<string, number>();
  for (const s of reference) {
    const w = firstWord(s.text) ?? '(none)';
    count.set(w, (count.get(w) ?? 0) + 1);
  }
  const top = [...count].sort((a, b) => b[1] - a[1])[0][0];
  // The word (from the reference's continuations) whose probability of occurring is nearest 0.3.
  const docs = new Map<string, number>();
  for (const s of reference) for (const w of new Set(s.text.toLowerCase().match(/[a-z']+/g) ?? [])) docs.set(w, (docs.get(w) ?? 0) + 1);
  const word = [...docs].sort((a, b) => Math.abs(a[1] / reference.length - 0.3) - Math.abs(b[1] / reference.length - 0.3))[0][0];
  const wordRe = new RegExp(`\\b${word}\\b`, 'i');
  const pieces = new Map<number, boolean>();
  const hasPeriod = (t: number): boolean => {
    let v = pieces.get(t);
    if (v === undefined) pieces.set(t, (v = engine.tokenizer!.decode([t]).includes('.')));
    return v;
  };
  return [
    { name: `P(first word = "${top}")`, f: (s) => +((firstWord(s.text) ?? '(none)') === top) },
    { name: `P(contains "${word}")`, f: (s) => +wordRe.test(s.text) },
    {
      name: 'E[tokens to first period]',
      f: (s) => {
        const i = s.tokens.findIndex(hasPeriod);
        return i >= 0 ? i + 1 : horizon;
      },
    },
  ];
}

function legacy(samples: Sample[], qs: Quantity[], modes: WeightMode[]): Partial<Record<Weighting, number[]>> {
  const out: Partial<Record<Weighting, number[]>> = {};
  for (const m of modes) out[m as Weighting] = qs.map((q) => aggregate(samples, (s) => q.f(s), { weight: m }).mean);
  return out;
}

async function eabRun(base: Engine, prompt: number[], qs: Quantity[], threshold: number, prune: 'none' | 'keep_most_probable', seed: number): Promise<RunEstimates> {
  const r = await runEab(freshEngine(base), prompt, {
    max_new_tokens: CFG.horizon,
    entropy_threshold: threshold,
    branch_factor: 3,
    max_paths: MAX_PATHS,
    prune_policy: prune,
    temperature: 1,
    top_p: 1,
    seed,
  });
  const est = qs.map((q) => expectation(r, (s) => q.f(s)));
  const values = legacy(r.samples, qs, ['probability', 'importance', 'uniform']);
  values.proper = est.map((e) => e.value);
  return { steps: r.stats.token_steps, samples: r.samples.length, values, ses: est.map((e) => e.se), unbiased: est[0].unbiased };
}

async function forkAt0Run(base: Engine, prompt: number[], qs: Quantity[], seed: number): Promise<RunEstimates> {
  const { samples, steps } = await iidRun(base, prompt, CFG.iidN, CFG.horizon, seed);
  const est = qs.map((q) => expectation(samples, (s) => q.f(s)));
  const values = legacy(samples, qs, ['probability', 'uniform']);
  values.proper = est.map((e) => e.value);
  return { steps, samples: samples.length, values, ses: est.map((e) => e.se), unbiased: true };
}

async function peaksRun(base: Engine, prompt: number[], qs: Quantity[], seed: number): Promise<RunEstimates> {
  const e = freshEngine(base);
  const rows0 = e.stats.rows;
  const r = await runPeaks(e, prompt, { initial_traces: 4, max_traces: 12, max_new_tokens: CFG.horizon, temperature: 1, seed, peak_window: 4, min_peak_distance: 2 });
  const samples: Sample[] = r.traces.map((t) => ({ ...t, tokens: t.token_ids }));
  return { steps: e.stats.rows - rows0, samples: samples.length, values: legacy(samples, qs, ['probability', 'importance', 'uniform']) };
}

function summarize(runs: RunEstimates[], qi: number, w: Weighting, ref: { mean: number; se: number }) {
  const xs = runs.map((r) => r.values[w]![qi]);
  const n = xs.length;
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  const variance = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1);
  const steps = runs.reduce((a, r) => a + r.steps, 0) / n;
  const z = (mean - ref.mean) / Math.sqrt(variance / n + ref.se ** 2);
  const ses = runs.every((r) => r.ses) && w === 'proper' ? runs.map((r) => r.ses![qi]) : null;
  return {
    weighting: w,
    mean: round4(mean),
    bias: round4(mean - ref.mean),
    z: round4(z),
    unbiasedHere: Math.abs(z) < 4,
    sd: round4(Math.sqrt(variance)),
    tokenStepsPerRun: round4(steps),
    samplesPerRun: round4(runs.reduce((a, r) => a + r.samples, 0) / n),
    /** Token steps for a standard error of 0.01: (steps per run) * (variance per run) / 0.01^2. */
    tokenStepsForSe001: round4((steps * variance) / 1e-4),
    /** Mean reported standard error squared over the runs' variance: 1 = calibrated, < 1 = optimistic. */
    seCalibration: ses ? round4(ses.reduce((a, s) => a + s * s, 0) / n / variance) : null,
  };
}

export async function run(): Promise<object> {
  const load = await startLoadMeter();
  const model = await benchModel('stories260K');
  const gpu = await createGpu({ adapter: 'llvmpipe' });
  const base = await engineFor(model, gpu, { maxRows: BATCH + 64, maxSamples: BATCH, kvPages: 4096 });
  const out: object[] = [];
  try {
    for (const text of CFG.prompts) {
      const prompt = base.tokenizer!.encode(text);
      const t0 = performance.now();
      const reference: Sample[] = [];
      for (let b = 0; reference.length < CFG.iid; b++) {
        reference.push(...(await iidRun(base, prompt, Math.min(BATCH, CFG.iid - reference.length), CFG.horizon, 1_000_000 + b)).samples);
      }
      log(`"${text}": ${reference.length} independent samples in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      const qs = quantities(base, reference, CFG.horizon);
      const refs = qs.map((q) => {
        const xs = reference.map(q.f);
        const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
        const v = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1);
        return { mean, se: Math.sqrt(v / xs.length) };
      });
      const methods: { method: string; runs: RunEstimates[] }[] = [];
      const seeds = Array.from({ length: CFG.runs }, (_, i) => i + 1);
      for (const t of CFG.thresholds) {
        const runs: RunEstimates[] = [];
        for (const s of seeds) runs.push(await eabRun(base, prompt, qs, t, 'none', s));
        methods.push({ method: `eab@${t} prune none`, runs });
      }
      const kmp: RunEstimates[] = [];
      for (const s of seeds) kmp.push(await eabRun(base, prompt, qs, CFG.thresholds[Math.floor(CFG.thresholds.length / 2)], 'keep_most_probable', s));
      methods.push({ method: `eab@${CFG.thresholds[Math.floor(CFG.thresholds.length / 2)]} keep_most_probable`, runs: kmp });
      const f0: RunEstimates[] = [];
      for (const s of seeds) f0.push(await forkAt0Run(base, prompt, qs, s));
      methods.push({ method: `fork-at-0 (${CFG.iidN} independent)`, runs: f0 });
      const pk: RunEstimates[] = [];
      for (const s of seeds) pk.push(await peaksRun(base, prompt, qs, s));
      methods.push({ method: 'peaks', runs: pk });
      log(`"${text}": ${methods.length} samplers x ${CFG.runs} runs in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

      out.push({
        prompt: text,
        promptTokens: prompt.length,
        quantities: qs.map((q, qi) => {
          const rows = methods.flatMap((m) =>
            (Object.keys(m.runs[0].values) as Weighting[]).map((w) => ({
              method: m.method,
              ...summarize(m.runs, qi, w, refs[qi]),
              designMarkedUnbiased: w === 'proper' ? m.runs.filter((r) => r.unbiased).length / m.runs.length : null,
            })),
          );
          const iid = rows.find((r) => r.method.startsWith('fork-at-0') && r.weighting === 'proper')!;
          return {
            name: q.name,
            reference: { mean: round4(refs[qi].mean), se: round4(refs[qi].se), samples: reference.length },
            estimators: rows.map((r) => ({
              ...r,
              // Token steps independent samples need for the same standard error, over this estimator's (>1: saves).
              savingVsIndependent:
                r.unbiasedHere && r.tokenStepsForSe001 > 0 && iid.tokenStepsForSe001 > 0 ? round4(iid.tokenStepsForSe001 / r.tokenStepsForSe001) : null,
            })),
          };
        }),
      });
    }
  } finally {
    base.destroy();
    gpu.destroy();
  }
  return {
    date: new Date().toISOString(),
    machine: machine(),
    quick: QUICK,
    adapter: 'llvmpipe',
    params: { ...CFG, maxPaths: MAX_PATHS, branchFactor: 3, temperature: 1, topP: 1 },
    prompts: out,
    otherLoad: await load(),
  };
}
