// GpuOptions.cpuThreads (Node, llvmpipe): LP_NUM_THREADS reaches Mesa before the first llvmpipe device of a process,
// so 0 really leaves out llvmpipe's worker threads (counted in /proc/self/task), and the Gpu reports what its process
// runs with, also when a later device asks for another value (the first adapter's count holds for the process, also
// on a new screen after the first device is collected). An engine made from weights without
// a GPU picks the count from the model's size (gpu/cpu_threads.ts) unless told, and a value forklm sets does not stay
// in the environment for later child processes. Each case runs in a fresh process.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { sharedModelsDir } from '../ref/shared_models.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

const SCRIPT = `
import { readdirSync } from 'node:fs';
import { createGpu } from './src/gpu/device.ts';
const threads = () => readdirSync('/proc/self/task').length;
const before = threads();
const arg = process.argv[process.argv.length - 1];
const gpu = await createGpu({ adapter: 'llvmpipe', ...(arg === 'default' ? {} : { cpuThreads: Number(arg) }) });
// Mesa starts its workers with the screen; a dispatch makes sure the compute pool exists too.
const enc = gpu.device.createCommandEncoder();
gpu.device.queue.submit([enc.finish()]);
await gpu.device.queue.onSubmittedWorkDone();
const added = threads() - before;
const second = await createGpu({ adapter: 'llvmpipe', cpuThreads: 3 });
console.log(JSON.stringify({ cpuThreads: gpu.cpuThreads, second: second.cpuThreads, added }));
second.destroy();
gpu.destroy();
process.exit(0);
`;

function run(arg: string): { cpuThreads: number | null; second: number | null; added: number } {
  const env = { ...process.env };
  delete env.LP_NUM_THREADS;
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', SCRIPT, arg], { cwd: root, env, encoding: 'utf8', timeout: 90_000 });
  return JSON.parse(out.trim().split('\n').pop()!);
}

const ENGINE_SCRIPT = `
import { Engine } from './src/engine.ts';
import { readModel } from './src/engine_load.ts';
import { randomWeights, SMOLLM2_135M } from './src/model/random_weights.ts';
const [models, threads] = process.argv.slice(-2);
const out = [];
for (const model of models.split(',')) {
  const weights = model === 'stories260K'
    ? (await readModel(process.env.STORIES_DIR)).weights
    : randomWeights({ ...SMOLLM2_135M, nLayers: 2, vocabSize: 512 }, 1);
  const e = await Engine.fromWeights(weights, null, { adapter: 'llvmpipe', kvPages: 64, ...(threads === 'auto' ? {} : { cpuThreads: Number(threads) }) });
  out.push(e.gpu.cpuThreads);
  e.destroy();
}
console.log(JSON.stringify({ cpuThreads: out, env: process.env.LP_NUM_THREADS ?? null }));
process.exit(0);
`;

/** Engines made one after another in one fresh process: each one's Gpu.cpuThreads, LP_NUM_THREADS after, stderr. */
function engineRun(models: string, threads: string): { cpuThreads: (number | null)[]; env: string | null; stderr: string } {
  const env: NodeJS.ProcessEnv = { ...process.env, STORIES_DIR: join(sharedModelsDir(), 'stories260K/hf') };
  delete env.LP_NUM_THREADS;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', ENGINE_SCRIPT, models, threads], { cwd: root, env, encoding: 'utf8', timeout: 180_000 });
  if (r.status !== 0) throw new Error(`engine script failed: ${r.stderr}`);
  return { ...JSON.parse(r.stdout.trim().split('\n').pop()!), stderr: r.stderr };
}

// Mesa reads LP_NUM_THREADS at every new llvmpipe screen, and a screen outlives its devices only while one is alive:
// after the first device is destroyed and collected, the next adapter makes a new screen, which must get the count
// the process started with (forklm sets it again for that moment).
const RESCREEN_SCRIPT = `
import { readdirSync } from 'node:fs';
import { createGpu } from './src/gpu/device.ts';
const threads = () => readdirSync('/proc/self/task').length;
async function device(opts) {
  const gpu = await createGpu({ adapter: 'llvmpipe', ...opts });
  const enc = gpu.device.createCommandEncoder();
  gpu.device.queue.submit([enc.finish()]);
  await gpu.device.queue.onSubmittedWorkDone();
  return gpu;
}
const before = threads();
let first = await device({ cpuThreads: Number(process.argv[process.argv.length - 1]) });
const afterFirst = threads() - before;
first.destroy();
first = null; // collectable: its Dawn instance (and Mesa's screen) go with it
for (let i = 0; i < 5; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 50)); }
const base = threads();
const second = await device({});
console.log(JSON.stringify({ afterFirst, second: threads() - base, reported: second.cpuThreads, env: process.env.LP_NUM_THREADS ?? null }));
second.destroy();
process.exit(0);
`;

function rescreen(threads: number): { afterFirst: number; second: number; reported: number | null; env: string | null } {
  const env = { ...process.env };
  delete env.LP_NUM_THREADS;
  const out = execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', '--input-type=module', '-e', RESCREEN_SCRIPT, String(threads)], { cwd: root, env, encoding: 'utf8', timeout: 90_000 });
  return JSON.parse(out.trim().split('\n').pop()!);
}

describe.runIf(existsSync('/proc/self/task'))('GpuOptions.cpuThreads on llvmpipe', () => {
  it('Engine.fromWeights: 0 for stories260K, Mesa default for two SmolLM2-135M layers, a given count wins; none stays in the environment', () => {
    expect(engineRun('stories260K', 'auto')).toMatchObject({ cpuThreads: [0], env: null });
    expect(engineRun('smollm-layers', 'auto')).toMatchObject({ cpuThreads: [null], env: null });
    expect(engineRun('stories260K', '2')).toMatchObject({ cpuThreads: [2], env: null });
    // The process's first llvmpipe adapter fixes the count: the larger model after stories260K runs inline, and says so.
    const both = engineRun('stories260K,smollm-layers', 'auto');
    expect(both.cpuThreads).toEqual([0, 0]);
    expect(both.stderr).toMatch(/forklm: llvmpipe runs this process's kernels on the submitting thread/);
    expect(engineRun('smollm-layers', 'auto').stderr).not.toMatch(/submitting thread/);
  }, 600_000);

  it('a new llvmpipe screen after the first device is collected keeps the process count', () => {
    const inline = rescreen(0);
    const pooled = rescreen(2);
    expect(pooled.afterFirst).toBeGreaterThan(inline.afterFirst); // the pool's workers start with a screen
    expect(inline).toMatchObject({ reported: 0, env: null });
    expect(pooled).toMatchObject({ reported: 2, env: null });
    // The second device's new screen (threads started again) has no workers when the first had none.
    expect(inline.second).toBeLessThan(pooled.second);
  }, 300_000);

  it('0 runs without llvmpipe worker threads; the first device of a process decides', () => {
    const zero = run('0');
    const dflt = run('default');
    expect(zero.cpuThreads).toBe(0);
    expect(zero.second).toBe(0); // asked for 3 later: the process keeps its first adapter's count
    expect(dflt.cpuThreads).toBeNull();
    expect(dflt.second).toBeNull();
    // Mesa's default starts worker threads per core (rasteriser and compute pools); with 0 it starts none of them.
    expect(zero.added).toBeLessThan(dflt.added);
  });

  it('rejects a thread count that is not an integer >= 0', async () => {
    const { createGpu } = await import('../../src/gpu/device.js');
    await expect(createGpu({ adapter: 'llvmpipe', cpuThreads: -1 })).rejects.toThrow(/cpuThreads=-1/);
  });
});
