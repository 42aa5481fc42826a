// The models people pick for the browser, in their real shapes with seeded random weights (the weights cannot be
// brought onto this machine): Qwen3-0.6B, Gemma-3-270m, SmolLM2-360M, GPT-2 124M, all f32 on the GPU. Per model and
// adapter: seconds to make the weights (host), seconds to load them onto the GPU and build the model (upload,
// pipelines), the prefill of a short prompt, and single-path greedy decode tokens/s. A short run: decode on CPU
// adapters costs about 1.2 GFLOP per Qwen3-0.6B token, and SwiftShader is skipped unless asked for
// (FORKLM_BENCH_ADAPTERS), at ~0.3 GFLOP/s it needs seconds per token.
import { Engine } from '../src/engine.js';
import type { AdapterChoice } from '../src/gpu/adapter_choice.js';
import { createGpu, type Gpu } from '../src/gpu/device.js';
import { GEMMA3_270M, GPT2_124M, QWEN3_06B, randomModelWeights, SMOLLM2_360M } from '../src/model/random_weights.js';
import { parameterCount, type ModelSpec } from '../src/model/spec.js';
import { randomTokens } from './common/prompt.js';
import { timedStep } from './common/engine.js';
import { errorText, hostRecord, log, QUICK } from './bench_models.js';
import { median, round4, startLoadMeter } from './harness.js';

const SHAPES: [string, ModelSpec][] = [
  ['gpt2-124m', GPT2_124M],
  ['gemma-3-270m', GEMMA3_270M],
  ['smollm2-360m', SMOLLM2_360M],
  ['qwen3-0.6b', QWEN3_06B],
];

const PROMPT = QUICK ? 4 : 16;
const DECODE = QUICK ? 2 : 8;

function adapters(): AdapterChoice[] {
  return (process.env.FORKLM_BENCH_ADAPTERS ?? 'llvmpipe').split(',').map((s) => s.trim()) as AdapterChoice[];
}

async function one(name: string, spec: ModelSpec, adapter: AdapterChoice): Promise<object> {
  const t0 = performance.now();
  const weights = randomModelWeights(spec, 1);
  const makeS = (performance.now() - t0) / 1000;
  let gpu: Gpu | null = null;
  let engine: Engine | null = null;
  try {
    gpu = await createGpu({ adapter });
    const t1 = performance.now();
    // The context is the model's; a short run needs a few pages of it (KV pages of every layer are allocated up front).
    engine = await Engine.fromWeights(weights, null, { gpu, kvPages: 4, maxRows: 32, maxSamples: 4 });
    const loadS = (performance.now() - t1) / 1000;
    log(`[${adapter}] ${name}: weights made in ${makeS.toFixed(1)} s, loaded in ${loadS.toFixed(1)} s`);
    engine.createPath(randomTokens(spec.vocabSize, spec.bosTokenId ?? 1, PROMPT, 1), { temperature: 0 });
    const prefillMs = await timedStep(engine); // also the first use of every pipeline
    const decode: number[] = [];
    for (let i = 0; i < DECODE; i++) decode.push(await timedStep(engine));
    engine.freeAll();
    const ms = median(decode);
    log(`[${adapter}] ${name}: prefill ${PROMPT} tokens ${prefillMs.toFixed(0)} ms, decode ${ms.toFixed(0)} ms/token`);
    const k = engine.model.kernels;
    return {
      model: name,
      adapter,
      family: spec.family,
      parameters: parameterCount(weights),
      weightBytes: engine.model.weights.bytes,
      opsPerStep: k.embed.length + k.layers.flat().length + k.head.length,
      makeWeightsS: round4(makeS),
      loadS: round4(loadS),
      prompt: PROMPT,
      prefillMs: round4(prefillMs),
      decodeSteps: decode.length,
      decodeMsMedian: round4(ms),
      decodeTokensPerS: round4(1000 / ms),
    };
  } catch (e) {
    return { model: name, adapter, error: errorText(e) };
  } finally {
    engine?.destroy();
    gpu?.destroy();
  }
}

export async function run(): Promise<object> {
  const load = await startLoadMeter();
  const cases: object[] = [];
  for (const [name, spec] of SHAPES) for (const adapter of adapters()) cases.push(await one(name, spec, adapter));
  return {
    date: new Date().toISOString(),
    machine: { ...hostRecord(), gpu: 'none (software WebGPU adapters)' },
    quick: QUICK,
    note: 'random uniform weights (standard deviation 0.02) in the real configs\' shapes, f32 on the GPU; one path, greedy; short run',
    cases,
    otherLoad: await load(),
  };
}
