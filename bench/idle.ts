// GPU idle per step (issue 15, point 2): how long the GPU waits for the host in each step of stories260K decode and of
// the EAB job (16 samples of 64 tokens after a 256-token prompt). Per step:
//   wall ms  = time between the ends of consecutive steps (the step period a user sees: plan, upload, submit, GPU
//              work, stats readback, and the controller's host work before the next step); the first step (the
//              prefill) is counted from its start;
//   busy ms  = the GPU's own time for that step's forward. Where the adapter has `timestamp-query` (SwiftShader; not
//              llvmpipe), from timestamps the engine writes at the start and end of the step's forward pass, and
//              idle ms = the GPU clock's gap from the end of the previous step's pass to the start of this one (what
//              the GPU spent waiting; 0 when the step was queued). Otherwise measured separately: after the job, each
//              distinct step shape (rows, sampling rows, page-table width) is re-uploaded from the step's own plan
//              and its forward timed alone with the kernel harness (many encodes per submit), median, and
//              idle ms = wall - busy.
import type { AdapterChoice } from '../src/gpu/adapter_choice.js';
import type { Gpu } from '../src/gpu/device.js';
import type { Engine, StepTrace } from '../src/engine.js';
import { encodeForward, uploadPlan } from '../src/model/forward.js';
import { runEab } from '../src/branch/eab.js';
import { freshEngine } from './common/engine.js';
import { EAB_SEED } from './common/eab.js';
import { median, round4, timeEncode } from './harness.js';
import { engineFor, log, promptTokens, QUICK, runModelsAndAdapters, type BenchModel } from './bench_models.js';

/** Runs of each job per mode, off and on alternating (the median run is reported). */
const REPEATS = QUICK ? 1 : 5;

interface StepRow {
  rows: number;
  samples: number;
  wallMs: number;
  busyMs: number;
  idleMs: number;
}

/** Runs `job` on a fresh engine over `base`'s model, recording every step's plan and timestamps. */
async function traced(base: Engine, pipeline: boolean, job: (e: Engine) => Promise<void>): Promise<{ traces: StepTrace[]; ms: number; pipe: Engine['pipelineStats'] }> {
  const e = freshEngine(base, { pipeline });
  e.timestampSteps = base.gpu.timestamps;
  const traces: StepTrace[] = [];
  e.onStep = (t) => traces.push(t);
  const t0 = performance.now();
  await job(e);
  const ms = performance.now() - t0;
  e.freeAll();
  return { traces, ms, pipe: e.pipelineStats };
}

/** The forward's own GPU time for each distinct step shape of `traces`, timed alone (see the header). */
async function busyByShape(gpu: Gpu, base: Engine, traces: StepTrace[], memo: Map<string, number>): Promise<number[]> {
  const key = (t: StepTrace) => `${t.plan.rows}:${t.plan.samples}:${t.plan.maxPages}`;
  const out: number[] = [];
  for (const t of traces) {
    const k = key(t);
    let ms = memo.get(k);
    if (ms === undefined) {
      uploadPlan(base.model, t.plan, t.sampling);
      const opts = QUICK ? { warmupMs: 5, sampleMs: 5, samples: 1, minSamples: 1 } : { warmupMs: 30, sampleMs: 40, samples: 3, minSamples: 3 };
      ms = (await timeEncode(gpu, (pass) => encodeForward(base.model, pass, t.plan), opts)).medianMs;
      memo.set(k, ms);
    }
    out.push(ms);
  }
  return out;
}

function stepRows(traces: StepTrace[], busy: number[]): StepRow[] {
  return traces.map((t, i) => {
    const wall = t.endMs - (i === 0 ? t.startMs : traces[i - 1].endMs);
    const prev = traces[i - 1]?.gpuNs;
    // GPU timestamps: busy from the pass's own start and end, idle as the gap since the previous pass ended.
    if (t.gpuNs) {
      const gpuBusy = (t.gpuNs[1] - t.gpuNs[0]) / 1e6;
      const gap = prev ? Math.max(0, (t.gpuNs[0] - prev[1]) / 1e6) : wall - gpuBusy;
      return { rows: t.plan.rows, samples: t.plan.samples, wallMs: round4(wall), busyMs: round4(gpuBusy), idleMs: round4(gap) };
    }
    return { rows: t.plan.rows, samples: t.plan.samples, wallMs: round4(wall), busyMs: round4(busy[i]), idleMs: round4(wall - busy[i]) };
  });
}

/**
 * Steps whose successor was submitted before their own stats were back: the GPU had the next step queued when it
 * finished this one, so it never waited for the host's readback, plan and upload (pipelined steps that were used).
 */
function queuedAhead(traces: StepTrace[]): number {
  let n = 0;
  for (let i = 0; i + 1 < traces.length; i++) if (traces[i + 1].submitMs < traces[i].endMs) n++;
  return n;
}

/** Sums over the steps after the first (the prefill): what the steady state costs. */
function summary(steps: StepRow[], ms: number): Record<string, number> {
  const rest = steps.slice(1);
  const sum = (f: (s: StepRow) => number) => rest.reduce((a, s) => a + f(s), 0);
  const wall = sum((s) => s.wallMs);
  const busy = sum((s) => s.busyMs);
  return {
    steps: steps.length,
    jobMs: round4(ms),
    wallMsPerStepMedian: round4(median(rest.map((s) => s.wallMs))),
    busyMsPerStepMedian: round4(median(rest.map((s) => s.busyMs))),
    idleMsPerStepMedian: round4(median(rest.map((s) => s.idleMs))),
    idleShare: round4(sum((s) => s.idleMs) / wall),
  };
}

async function benchCase(model: BenchModel, gpu: Gpu, adapter: AdapterChoice): Promise<object[]> {
  const promptLen = QUICK ? 32 : 256;
  const newTokens = QUICK ? 8 : 64;
  const samples = QUICK ? 4 : 16;
  const kvPages = Math.ceil(promptLen / 16) + samples * (Math.ceil(newTokens / 16) + 2) + 8;
  const base = await engineFor(model, gpu, { maxRows: promptLen, maxSamples: samples, kvPages });
  const prompt = promptTokens(model, promptLen);
  const jobs: Record<string, (e: Engine) => Promise<void>> = {
    decode: async (e) => {
      e.createPath(prompt, { temperature: 0 }, { reserve: newTokens });
      for (let i = 0; i <= newTokens; i++) await e.step();
    },
    eab: async (e) => {
      await runEab(e, prompt, { num_samples: samples, max_new_tokens: newTokens, entropy_threshold: 0.4, seed: EAB_SEED });
    },
  };
  const memo = new Map<string, number>();
  const out: object[] = [];
  try {
    // Compiles every pipeline the jobs use before anything is timed.
    for (const job of Object.values(jobs)) await traced(base, false, job);
    for (const [name, job] of Object.entries(jobs)) {
      const modes: Record<string, { summary: Record<string, number | number[]>; steps: StepRow[] }> = {};
      // Off and on alternate, REPEATS runs each, so load that drifts during the run hits both alike; the run with the
      // median job time is the one whose steps are reported.
      const runs: Record<'off' | 'on', Awaited<ReturnType<typeof traced>>[]> = { off: [], on: [] };
      for (let rep = 0; rep < REPEATS; rep++) for (const pipeline of [false, true]) runs[pipeline ? 'on' : 'off'].push(await traced(base, pipeline, job));
      for (const pipeline of [false, true]) {
        const all = runs[pipeline ? 'on' : 'off'];
        const { traces, ms, pipe } = [...all].sort((a, b) => a.ms - b.ms)[all.length >> 1];
        const steps = stepRows(traces, gpu.timestamps ? [] : await busyByShape(gpu, base, traces, memo));
        const s = { ...summary(steps, ms), nextQueuedBeforeReadback: queuedAhead(traces) };
        log(`[${adapter}] ${name} pipeline ${pipeline ? 'on' : 'off'}: ${JSON.stringify(s)}`);
        for (const [i, r] of steps.entries())
          log(`  step ${i}: rows ${r.rows} wall ${r.wallMs.toFixed(3)} ms busy ${r.busyMs.toFixed(3)} ms idle ${r.idleMs.toFixed(3)} ms`);
        const jobMsRuns = all.map((r) => round4(r.ms));
        modes[pipeline ? 'pipelineOn' : 'pipelineOff'] = { summary: { ...s, jobMsRuns, ...(pipeline ? pipe : {}) }, steps };
      }
      const off = modes.pipelineOff.summary as Record<string, number>;
      const on = modes.pipelineOn.summary as Record<string, number>;
      out.push({
        model: model.name,
        adapter,
        adapterName: gpu.name,
        job: name,
        ratios: {
          jobMsOnOverOff: round4(on.jobMs / off.jobMs),
          wallMsMedianOnOverOff: round4(on.wallMsPerStepMedian / off.wallMsPerStepMedian),
          idleMsMedianOnOverOff: round4(on.idleMsPerStepMedian / off.idleMsPerStepMedian),
        },
        busyFrom: gpu.timestamps ? 'timestamp-query around each step\'s forward pass' : 'forward timed alone per step shape (no timestamp-query)',
        ...modes,
      });
    }
  } finally {
    base.destroy();
  }
  return out;
}

export function run(): Promise<object> {
  return runModelsAndAdapters(
    'GPU idle per step: wall (step period) - busy (the step shape\'s forward timed alone), stories260K decode (greedy, ' +
      'prompt 256, 64 steps) and EAB exact-N 16 samples of 64 tokens, engine option pipeline off and on (ratios from one run; shared machine).',
    benchCase,
    (m) => m === 'stories260K',
    { timestamps: true },
  );
}
