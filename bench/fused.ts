// `npm run bench -- fused`: single-stream decode with the fused decode step (kernels/decode_fused.ts) against the
// layered forward it replaces, in one process on llvmpipe: stories260K, greedy decode of 64 tokens after the
// 256-token story prompt, the two engines (same weights) alternating for 3 rounds, so both see the same load.
// ms per token is each round's median step; the load meter and `uptime`-style load average go beside them.
import os from 'node:os';
import { createGpu } from '../src/gpu/device.js';
import { Engine } from '../src/engine.js';
import { benchModel, machine, promptTokens, QUICK } from './bench_models.js';
import { promptRun } from './common/decode.js';
import { median, round4 } from './common/timing.js';
import { startLoadMeter } from './harness.js';

export async function run(): Promise<object> {
  const rounds = QUICK ? 1 : 3;
  const steps = QUICK ? 4 : 64;
  const model = await benchModel('stories260K');
  const gpu = await createGpu({ adapter: 'llvmpipe' });
  const loadBefore = os.loadavg()[0];
  const stopMeter = await startLoadMeter();
  try {
    const engines = {
      fused: await Engine.fromWeights(model.weights, model.tokenizer, { gpu, kvPages: 512, maxSamples: 64 }),
      layered: await Engine.fromWeights(model.weights, model.tokenizer, { gpu, kvPages: 512, maxSamples: 64, decodeFused: false }),
    };
    if (engines.fused.model.decodeFusedRefusal) throw new Error(`stories260K does not run fused: ${engines.fused.model.decodeFusedRefusal}`);
    const prompt = promptTokens(model, QUICK ? 32 : 256);
    for (const e of Object.values(engines)) await promptRun(e, prompt, 4); // compiles every pipeline
    const ms: Record<string, number[]> = { fused: [], layered: [] };
    for (let r = 0; r < rounds; r++)
      for (const [k, e] of Object.entries(engines)) ms[k].push(round4(median((await promptRun(e, prompt, steps)).decode)));
    for (const e of Object.values(engines)) e.destroy();
    const tokS = (k: string) => round4(1000 / median(ms[k]));
    return {
      machine: machine(),
      adapter: gpu.name,
      job: `stories260K, greedy decode of ${steps} tokens after ${prompt.length} prompt tokens, ${rounds} alternating rounds`,
      ms_per_token: ms,
      decode_tok_s: { fused: tokS('fused'), layered: tokS('layered') },
      speedup: round4(median(ms.layered) / median(ms.fused)),
      load_average: { before: round4(loadBefore), after: round4(os.loadavg()[0]) },
      other_load: await stopMeter(),
    };
  } finally {
    gpu.destroy();
  }
}
