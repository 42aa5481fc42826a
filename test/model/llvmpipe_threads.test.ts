// GpuOptions.cpuThreads (Node, llvmpipe): LP_NUM_THREADS reaches Mesa before the first llvmpipe device of a process,
// so 0 really leaves out llvmpipe's worker threads (counted in /proc/self/task), and the Gpu reports what its process
// runs with, also when a later device asks for another value (Mesa reads it once). An engine made from weights without
// a GPU picks the count from the model's size (gpu/cpu_threads.ts) unless told, and a value forklm sets does not stay
// in the environment for later child processes. Each case runs in a fresh process.
import { execFileSync } from 'node:child_process';
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
const [model, threads] = process.argv.slice(-2);
const weights = model === 'stories260K'
  ? (await readModel(process.env.STORIES_DIR)).weights
  : randomWeights({ ...SMOLLM2_135M, nLayers: 1, vocabSize: 512 }, 1);
const e = await Engine.fromWeights(weights, null, { adapter: 'llvmpipe', kvPages: 64, ...(threads === 'auto' ? {} : { cpuThreads: Number(threads) }) });
console.log(JSON.stringify({ cpuThreads: e.gpu.cpuThreads, env: process.env.LP_NUM_THREADS ?? null }));
e.destroy();
process.exit(0);
`;

function engineRun(model: 'stories260K' | 'smollm-layer', threads: string): { cpuThreads: number | null; env: string | null } {
  const env: NodeJS.ProcessEnv = { ...process.env, STORIES_DIR: join(sharedModelsDir(), 'stories260K/hf') };
  delete env.LP_NUM_THREADS;
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', ENGINE_SCRIPT, model, threads], { cwd: root, env, encoding: 'utf8', timeout: 120_000 });
  return JSON.parse(out.trim().split('\n').pop()!);
}

describe.runIf(existsSync('/proc/self/task'))('GpuOptions.cpuThreads on llvmpipe', () => {
  it('Engine.fromWeights: 0 for stories260K, Mesa default for a SmolLM2-135M layer, a given count wins; none stays in the environment', () => {
    expect(engineRun('stories260K', 'auto')).toEqual({ cpuThreads: 0, env: null });
    expect(engineRun('smollm-layer', 'auto')).toEqual({ cpuThreads: null, env: null });
    expect(engineRun('stories260K', '2')).toEqual({ cpuThreads: 2, env: null });
  }, 300_000);

  it('0 runs without llvmpipe worker threads; the first device of a process decides', () => {
    const zero = run('0');
    const dflt = run('default');
    expect(zero.cpuThreads).toBe(0);
    expect(zero.second).toBe(0); // asked for 3 later: Mesa has read LP_NUM_THREADS already
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
