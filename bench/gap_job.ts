// The whole-job half of bench/gap.ts, run the same way in Node and in the page (no Node API): the peers job (EAB
// exact-N on stories260K after a 256-token prompt, bench/peers.ts) and where a step's time goes at 1 and 16 paths
// (bench/step_profile.ts), so the page-against-Node gap is measured on what users run, not only on one matmul.
import { runEab } from '../src/branch/eab.js';
import type { Engine } from '../src/engine.js';
import type { Gpu } from '../src/gpu/device.js';
import { encodeForward, uploadPlan } from '../src/model/forward.js';
import { eab, EAB_SEED } from './common/eab.js';
import { freshEngine, timedStep, withForks } from './common/engine.js';
import { median, round4, type TimingOptions } from './common/timing.js';
import { profileStep, type StepProfile } from './step_profile.js';

export interface GapJob {
  samples: number;
  maxNew: number;
  prompt: number;
  repeats: number;
  threshold: number;
}

export const GAP_JOB = (quick: boolean): GapJob =>
  quick ? { samples: 4, maxNew: 8, prompt: 32, repeats: 1, threshold: 0.4 } : { samples: 16, maxNew: 64, prompt: 256, repeats: 3, threshold: 0.4 };

const PROFILE: TimingOptions = { warmupMs: 30, sampleMs: 40, samples: 5, minSamples: 3, budgetMs: 600 };

export interface GapJobResult {
  eab_ms: number[];
  /** One EAB job's steps grouped by rows (engine.onStep): how many, their summed and fastest ms; and the host's share. */
  eab_steps: { by_rows: { rows: number; steps: number; sum_ms: number; min_ms: number }[]; steps_sum_ms: number; between_steps_ms: number };
  /** Median ms of a submit + wait with 0, 30 and 100 one-invocation dispatches (a step's fixed and per-dispatch costs). */
  round_trip: Record<string, number>;
  eab_pipelined_ms: number[];
  prefill_ms: number;
  prefill_profile: StepProfile;
  /** Median step ms (engine.step: plan, upload, submit, readback) at B paths, and the kernels' profile there. */
  steps: { B: number; step_ms: number; phases: Record<string, number>; profile: StepProfile }[];
}

/**
 * A step of the live paths taken apart (medians of `n` steps, ms): plan, upload (queue writes), encode (recording the
 * dispatches), submit (on llvmpipe's GL route in Node the forward runs inside queue.submit; in a page it is handed to
 * the GPU process), map (from submit until the stats are on the host).
 */
async function stepPhases(e: Engine, n: number): Promise<Record<string, number>> {
  const m = e.model;
  const dev = m.gpu.device;
  const acc: Record<string, number[]> = { plan: [], upload: [], encode: [], submit: [], map: [], again_done: [], again_map: [], again5_done: [] };
  const bytes = m.statsLayout.stride * 4;
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const plan = e.sched.plan()!;
    const sampling = Array.from({ length: plan.samples }, () => ({ temperature: 0, topP: 1, randomBits: 1, nSamples: 1 }));
    const t1 = performance.now();
    uploadPlan(m, plan, sampling);
    const t2 = performance.now();
    const enc = dev.createCommandEncoder();
    const pass = enc.beginComputePass();
    encodeForward(m, pass, plan);
    pass.end();
    m.statsReadback.copyFrom(enc, m.stats, bytes * plan.samples);
    const cb = enc.finish();
    const t3 = performance.now();
    dev.queue.submit([cb]);
    const t4 = performance.now();
    const buf = new Uint32Array(await m.statsReadback.read(bytes * plan.samples));
    const t5 = performance.now();
    // The same forward again (its buffers still hold this plan), waited for by onSubmittedWorkDone, by a map, and
    // five in one submit: per-submit and per-map costs apart from the forward's.
    const again = async (n: number, map: boolean) => {
      const t = performance.now();
      const en = dev.createCommandEncoder();
      const p = en.beginComputePass();
      for (let r = 0; r < n; r++) encodeForward(m, p, plan);
      p.end();
      if (map) m.statsReadback.copyFrom(en, m.stats, bytes * plan.samples);
      dev.queue.submit([en.finish()]);
      if (map) await m.statsReadback.read(bytes * plan.samples);
      else await dev.queue.onSubmittedWorkDone();
      return (performance.now() - t) / n;
    };
    acc.again_done.push(await again(1, false));
    acc.again_map.push(await again(1, true));
    acc.again5_done.push(await again(5, false));
    const ids = Array.from({ length: plan.samples }, (_, s) => buf[s * m.statsLayout.stride + m.statsLayout.offsets.sampledIds]);
    e.sched.commit(plan, ids);
    for (const [k, v] of [['plan', t1 - t0], ['upload', t2 - t1], ['encode', t3 - t2], ['submit', t4 - t3], ['map', t5 - t4]] as const) acc[k].push(v);
  }
  return Object.fromEntries(Object.entries(acc).map(([k, v]) => [`${k}_ms`, round4(median(v))]));
}

/** One EAB job with every step's wall clock (plan to stats read back) grouped by the step's rows. */
async function eabSteps(base: Engine, prompt: number[], job: GapJob): Promise<GapJobResult['eab_steps']> {
  const e = freshEngine(base);
  const steps: { rows: number; ms: number; gap: number }[] = [];
  let last = -1;
  e.onStep = (t) => {
    steps.push({ rows: t.plan.rows, ms: t.endMs - t.startMs, gap: last < 0 ? 0 : t.startMs - last });
    last = t.endMs;
  };
  await runEab(e, prompt, { num_samples: job.samples, max_new_tokens: job.maxNew, entropy_threshold: job.threshold, seed: EAB_SEED });
  e.onStep = null;
  e.freeAll();
  const rows = [...new Set(steps.map((s) => s.rows))].sort((a, b) => a - b);
  const sum = (xs: number[]) => round4(xs.reduce((a, x) => a + x, 0));
  return {
    by_rows: rows.map((r) => {
      const ms = steps.filter((s) => s.rows === r).map((s) => s.ms);
      return { rows: r, steps: ms.length, sum_ms: sum(ms), min_ms: round4(Math.min(...ms)) };
    }),
    steps_sum_ms: sum(steps.map((s) => s.ms)),
    between_steps_ms: sum(steps.map((s) => s.gap)),
  };
}

/** Submit + wait (map of 256 bytes, or onSubmittedWorkDone) with n one-invocation dispatches, median of 40. */
async function roundTrip(gpu: Gpu): Promise<Record<string, number>> {
  const dev = gpu.device;
  const buf = dev.createBuffer({ size: 256, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
  const staging = dev.createBuffer({ size: 256, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const module = dev.createShaderModule({ code: '@group(0) @binding(0) var<storage, read_write> b: array<u32>;\n@compute @workgroup_size(1) fn main() { b[0] = b[0] + 1u; }' });
  const pipeline = dev.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const bg = dev.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: buf } }] });
  const out: Record<string, number> = {};
  try {
    for (const n of [0, 30, 100])
      for (const map of [true, false]) {
        const ms: number[] = [];
        for (let i = 0; i < 43; i++) {
          const t = performance.now();
          const enc = dev.createCommandEncoder();
          const pass = enc.beginComputePass();
          for (let d = 0; d < n; d++) (pass.setPipeline(pipeline), pass.setBindGroup(0, bg), pass.dispatchWorkgroups(1));
          pass.end();
          if (map) enc.copyBufferToBuffer(buf, 0, staging, 0, 256);
          dev.queue.submit([enc.finish()]);
          if (map) (await staging.mapAsync(GPUMapMode.READ), staging.unmap());
          else await dev.queue.onSubmittedWorkDone();
          if (i >= 3) ms.push(performance.now() - t);
        }
        out[`${n}_dispatches_${map ? 'map' : 'done'}_ms`] = round4(median(ms));
      }
  } finally {
    buf.destroy();
    staging.destroy();
  }
  return out;
}

/** The job on `base` (stories260K, its prompt), then B = 1 and 16 forked paths after the prompt. */
export async function gapJob(base: Engine, prompt: number[], job: GapJob): Promise<GapJobResult> {
  await eab(base, prompt, job.samples, 8, job.threshold);
  const eabMs: number[] = [];
  const pipeMs: number[] = [];
  // Interleaved, synchronous and pipelined steps (EngineOptions.pipeline): in a page the forward runs in the GPU
  // process, so the host's work and the map round trip can overlap it there (not in Node's GL route, where the forward
  // runs inside queue.submit).
  await eab(base, prompt, job.samples, 8, job.threshold, { pipeline: true });
  for (let i = 0; i < job.repeats; i++) {
    eabMs.push(round4((await eab(base, prompt, job.samples, job.maxNew, job.threshold)).mode.ms));
    pipeMs.push(round4((await eab(base, prompt, job.samples, job.maxNew, job.threshold, { pipeline: true })).mode.ms));
  }
  const eabTrace = await eabSteps(base, prompt, job);
  const rt = await roundTrip(base.gpu);
  const e = freshEngine(base);
  const root = e.createPath(prompt, { temperature: 1, topP: 1, seed: 7 });
  const prefill = await timedStep(e);
  // Right after the prefill step its buffers hold the prompt's rows (bench/step_profile.ts).
  const prefillProfile = await profileStep(e.model, prompt.length, 1, e.pages(root).length, PROFILE);
  e.finish(root);
  const steps: GapJobResult['steps'] = [];
  for (const B of [1, job.samples]) {
    steps.push(
      await withForks(e, root, B, async (kids) => {
        await timedStep(e);
        const ms: number[] = [];
        for (let i = 0; i < 5; i++) ms.push(await timedStep(e));
        const phases = await stepPhases(e, 5);
        const profile = await profileStep(e.model, B, B, e.pages(kids[0]).length, PROFILE);
        return { B, step_ms: round4(median(ms)), phases, profile };
      }),
    );
  }
  e.freeAll();
  return { eab_ms: eabMs, eab_steps: eabTrace, round_trip: rt, eab_pipelined_ms: pipeMs, prefill_ms: round4(prefill), prefill_profile: prefillProfile, steps };
}
