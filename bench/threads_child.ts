// One process of `npm run bench -- threads` (bench/threads.ts): the forklm half of the peers job on llvmpipe, with the
// llvmpipe thread count the parent put in LP_NUM_THREADS (Mesa reads it once per process, hence a process per mode).
// Prints one JSON line: EAB exact-N and fork-at-0 wall ms, single-stream greedy decode ms per step (pipeline off and
// on), this process's CPU ms per decode step, and where a decode step's time goes (host phases vs the forward).
import { createGpu } from '../src/gpu/device.js';
import { encodeForward, uploadPlan } from '../src/model/forward.js';
import { benchModel, engineFor, promptTokens, QUICK } from './bench_models.js';
import { promptRun } from './common/decode.js';
import { freshEngine } from './common/engine.js';
import { eab, forkAtZero } from './common/eab.js';
import { median, round4 } from './common/timing.js';

const JOB = QUICK ? { samples: 4, maxNew: 8, prompt: 32 } : { samples: 16, maxNew: 64, prompt: 256 };
const model = await benchModel('stories260K');
const gpu = await createGpu({ adapter: 'llvmpipe' });
const base = await engineFor(model, gpu, { kvPages: 512, maxSamples: 64 });
const prompt = promptTokens(model, JOB.prompt);
await eab(base, prompt, JOB.samples, 8, 0.4); // warm-up: compiles every pipeline
const eabMs = (await eab(base, prompt, JOB.samples, JOB.maxNew, 0.4)).mode.ms;
const forkAt0Ms = (await forkAtZero(base, prompt, JOB.samples, JOB.maxNew)).ms;

/** Greedy decode of one path after the prompt: ms per step (median) and CPU ms per step of this process. */
async function decode(pipeline: boolean): Promise<{ ms: number; cpuMs: number }> {
  const e = freshEngine(base, { pipeline });
  e.createPath(prompt, { temperature: 0 });
  await e.step();
  const steps: number[] = [];
  const c0 = process.cpuUsage();
  for (let i = 0; i < JOB.maxNew; i++) {
    const t0 = performance.now();
    await e.step();
    steps.push(performance.now() - t0);
  }
  const c = process.cpuUsage(c0);
  e.freeAll();
  return { ms: median(steps), cpuMs: (c.user + c.system) / 1000 / JOB.maxNew };
}
const off = await decode(false);
const on = await decode(true);
const run = await promptRun(base, prompt, JOB.maxNew); // the peers bench's own decode measurement

/**
 * One decode step taken apart: plan, upload (queue writes), encode (JavaScript recording the 29 dispatches), submit
 * (on llvmpipe's GL route the forward runs inside queue.submit), map (the stats readback's round trip), and the
 * forward alone (20 forwards in one submit, per forward).
 */
async function phases(): Promise<Record<string, number>> {
  const e = freshEngine(base);
  e.createPath(prompt, { temperature: 0 });
  await e.step();
  const m = e.model;
  const dev = gpu.device;
  const acc: Record<string, number[]> = { plan: [], upload: [], encode: [], submit: [], map: [] };
  const sampling = [{ temperature: 0, topP: 1, randomBits: 1, nSamples: 1 }];
  const bytes = m.statsLayout.stride * 4;
  for (let i = 0; i < JOB.maxNew; i++) {
    const t0 = performance.now();
    const plan = e.sched.plan()!;
    const t1 = performance.now();
    uploadPlan(m, plan, sampling);
    const t2 = performance.now();
    const enc = dev.createCommandEncoder();
    const pass = enc.beginComputePass();
    encodeForward(m, pass, plan);
    pass.end();
    m.statsReadback.copyFrom(enc, m.stats, bytes);
    const cb = enc.finish();
    const t3 = performance.now();
    dev.queue.submit([cb]);
    const t4 = performance.now();
    const buf = await m.statsReadback.read(bytes);
    const t5 = performance.now();
    e.sched.commit(plan, [new Uint32Array(buf)[m.statsLayout.offsets.sampledIds]]);
    for (const [k, v] of [['plan', t1 - t0], ['upload', t2 - t1], ['encode', t3 - t2], ['submit', t4 - t3], ['map', t5 - t4]] as const) acc[k].push(v);
  }
  const plan = e.sched.plan()!;
  uploadPlan(m, plan, sampling);
  let best = Infinity;
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    const enc = dev.createCommandEncoder();
    const pass = enc.beginComputePass();
    for (let i = 0; i < 20; i++) encodeForward(m, pass, plan);
    pass.end();
    dev.queue.submit([enc.finish()]);
    await dev.queue.onSubmittedWorkDone();
    best = Math.min(best, (performance.now() - t0) / 20);
  }
  e.sched.commit(plan, [1]);
  e.freeAll();
  return { ...Object.fromEntries(Object.entries(acc).map(([k, v]) => [`${k}Ms`, round4(median(v))])), forwardMinMs: round4(best) };
}
const stepPhases = await phases();
const k = base.model.kernels;
console.log(
  JSON.stringify({
    lpNumThreads: process.env.LP_NUM_THREADS ?? null,
    cpuThreads: gpu.cpuThreads,
    dispatchesPerStep: k.embed.length + k.layers.flat().length + k.head.length,
    eabMs: round4(eabMs),
    forkAt0Ms: round4(forkAt0Ms),
    decodeMs: round4(median(run.decode)),
    decodeTokS: round4(1000 / median(run.decode)),
    decodePipelineOffMs: round4(off.ms),
    decodePipelineOnMs: round4(on.ms),
    decodeCpuMsPerStep: round4(off.cpuMs),
    stepPhases,
  }),
);
base.destroy();
gpu.destroy();
process.exit(0);
