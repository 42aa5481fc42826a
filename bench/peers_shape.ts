// The peers job on the SmolLM2-135M shape (issue 15, point 5): random weights (bench_models.ts, seed SMOL_SEED),
// forklm in Node on llvmpipe against llama-server on the very same weights, written as an F32 GGUF by
// bench/peers_gguf.ts. 16 samples of 64 tokens after a 256-token prompt of random ids, temperature 1, as the
// stories260K job; each engine runs it once after a short warm-up (a run takes seconds to tens of seconds here).
// Both engines' first greedy tokens after one prompt are recorded: equal tokens show they run the same model (random
// weights give small logit margins, so a near-tie may part them after a few tokens).
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generate } from '../src/generate.js';
import { autoCpuThreads } from '../src/gpu/cpu_threads.js';
import { createGpu } from '../src/gpu/device.js';
import { specFromLlamaConfig } from '../src/model/from_llama.js';
import { benchModel, engineFor, log, promptTokens, QUICK, SMOL_SEED } from './bench_models.js';
import { eab, forkAtZero } from './common/eab.js';
import { round4 } from './common/timing.js';
import { ensureLlamaGgufF32, weightsFingerprint } from './peers_gguf.js';
import { peersDir } from './peers_install.js';
import { llamaServer, type Job } from './peers_llama.js';

const GREEDY = { prompt: 32, length: 8 };

/** The shape's job on forklm (llvmpipe) and llama-server (1 and 2 threads), and both engines' greedy tokens. */
export async function shapeJob(job: Job & { threshold: number }): Promise<object> {
  const model = await benchModel('smollm2-135m-random');
  const prompt = promptTokens(model, job.prompt);
  const greedyPrompt = promptTokens(model, GREEDY.prompt, 7);
  const t0 = performance.now();
  const gguf = ensureLlamaGgufF32(model.weights, join(peersDir(), `smollm2-135m-random-seed${SMOL_SEED}-${weightsFingerprint(model.weights)}-f32.gguf`));
  log(`peers shape: ${gguf} ready in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  const gpu = await createGpu({ adapter: 'llvmpipe', cpuThreads: autoCpuThreads(specFromLlamaConfig(model.weights)) });
  let forklm: object;
  let forklmGreedy: number[];
  try {
    // The prompt's 16 pages, shared by every path, plus each path's own: 16 paths * 64 tokens / 16 per page = 64 (and
    // a partly filled prompt tail page each), with room to spare.
    const base = await engineFor(model, gpu, { kvPages: 192, maxSamples: 64 });
    // Warm-up: EAB widens 1 -> 3 -> 9 -> 16 paths within its first steps here (random weights, high entropy), so 8
    // tokens compile every kernel variant the timed run takes.
    await eab(base, prompt, job.samples, 8, job.threshold);
    await forkAtZero(base, prompt, job.samples, 8);
    const e = await eab(base, prompt, job.samples, job.maxNew, job.threshold);
    log(`peers shape: forklm eab ${e.mode.ms.toFixed(0)} ms`);
    const f0 = await forkAtZero(base, prompt, job.samples, job.maxNew);
    log(`peers shape: forklm fork-at-0 ${f0.ms.toFixed(0)} ms`);
    forklmGreedy = (await generate(base, greedyPrompt, { maxNewTokens: GREEDY.length, temperature: 0 })).tokens;
    forklm = { adapter: gpu.name, cpu_threads: gpu.cpuThreads, eab_ms: [round4(e.mode.ms)], eab_generated: e.mode.generated, eab_steps: e.mode.steps, fork_at_0_ms: [round4(f0.ms)] };
    base.destroy();
  } finally {
    gpu.destroy();
  }

  const once = { ...job, repeats: 1 };
  const server1 = (await llamaServer(prompt, 1, once, { gguf, decode: false, greedy: { prompt: greedyPrompt, length: GREEDY.length } })) as { greedy_tokens?: number[] };
  const server2 = await llamaServer(prompt, 2, once, { gguf, decode: false });
  const theirs = server1.greedy_tokens ?? [];
  let agree = 0;
  while (agree < forklmGreedy.length && forklmGreedy[agree] === theirs[agree]) agree++;
  return {
    model: model.source,
    gguf: { path: gguf, bytes: statSync(gguf).size },
    job: `${job.samples} samples of ${job.maxNew} tokens after ${job.prompt} random prompt tokens, temperature 1; one timed run each${QUICK ? ' (quick)' : ''}`,
    forklm_node: forklm,
    llama_server: [server1, server2],
    greedy: { prompt_tokens: GREEDY.prompt, forklm: forklmGreedy, llama_server: theirs, equal_prefix: agree },
  };
}

/**
 * shapeJob in a process of its own (bench/peers_shape_child.ts): llvmpipe's worker-thread count is fixed by a
 * process's first llvmpipe device, and the peers process made its own for stories260K.
 */
export function shapeJobInChild(job: Job & { threshold: number }): object {
  const child = join(dirname(fileURLToPath(import.meta.url)), 'peers_shape_child.ts');
  const r = spawnSync(process.execPath, ['--import', 'tsx', child, JSON.stringify(job)], { encoding: 'utf8', timeout: 1_200_000 });
  process.stderr.write(r.stderr ?? '');
  if (r.status !== 0) {
    const tail = (r.stderr ?? '').trim().split('\n').slice(-5).join(' | ');
    throw new Error(`the shape job's process ${r.error ? `failed (${r.error.message})` : `exited with ${r.status ?? r.signal}`}: ${tail}`);
  }
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as object;
}
