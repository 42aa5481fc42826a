// Single-path throughput through the whole engine: prefill tokens/s (a whole prompt in one step) and decode tokens/s
// (one greedy path, one row per step), for stories260K (real weights) and random weights in SmolLM2-135M's shape, on
// each CPU adapter. A step is what a user pays: plan, upload, one submit of every layer's dispatches, readback of the
// token stats. Every prefill repeat runs on an engine with an empty prefix cache, so the prompt is really recomputed.
import type { AdapterChoice } from '../src/gpu/adapter_choice.js';
import type { Gpu } from '../src/gpu/device.js';
import type { Engine } from '../src/engine.js';
import { decodeCase, LLAMA_CPP_STORIES_TOK_S, promptRun } from './common/decode.js';
import { median, round4 } from './harness.js';
import { engineFor, log, promptTokens, QUICK, runModelsAndAdapters, type BenchModel } from './bench_models.js';

/**
 * Ops one forward step encodes (model/gpu_model.ts: embedding; per layer of a Llama q|k|v with the norm folded in,
 * rope + KV write, attention, o, gate|up with the norm folded in, down with the activation folded in, o and down adding
 * into the residual stream themselves; then gather, LM head with the final norm folded in, token stats;
 * test/model/dispatch_count.test.ts). A matmul over a weight split in chunks dispatches once per chunk.
 */
function dispatchesPerStep(engine: Engine): number {
  const k = engine.model.kernels;
  return k.embed.length + k.layers.flat().length + k.head.length;
}

async function benchCase(model: BenchModel, gpu: Gpu, adapter: AdapterChoice): Promise<object> {
  const c = decodeCase(model.name, adapter, QUICK);
  const cfg = model.weights.config;
  const pages = Math.ceil((c.prompt + c.decodeSteps + 1) / 16) + 2;
  const base = await engineFor(model, gpu, { maxRows: Math.max(c.prompt, 16), maxSamples: 4, kvPages: pages });
  try {
    const prompt = promptTokens(model, c.prompt);
    log(`[${adapter}] ${model.name}: warm-up`);
    await promptRun(base, promptTokens(model, c.warmPrompt), 1);

    const prefill: number[] = [];
    const steps: number[] = [];
    const runTokS: number[] = [];
    for (let r = 0; r < Math.max(c.prefillRepeats, c.decodeRepeats); r++) {
      const run = await promptRun(base, prompt, r < c.decodeRepeats ? c.decodeSteps : 0);
      prefill.push(run.prefill);
      let line = `prefill ${c.prompt} tokens ${run.prefill.toFixed(1)} ms`;
      if (run.decode.length > 0) {
        steps.push(...run.decode);
        runTokS.push((run.decode.length / run.decode.reduce((a, b) => a + b, 0)) * 1000);
        line += `, decode ${run.decode.length} steps median ${median(run.decode).toFixed(2)} ms/step`;
      }
      log(`[${adapter}] ${model.name}: ${line}`);
    }
    const prefillMed = median(prefill);
    const stepMed = median(steps);
    const decodeTokS = 1000 / stepMed;
    return {
      model: model.name,
      adapter,
      adapterName: gpu.name,
      layers: cfg.nLayers,
      dim: cfg.dim,
      vocab: cfg.vocabSize,
      dispatchesPerStep: dispatchesPerStep(base),
      prefill: {
        promptTokens: c.prompt,
        repeats: prefill.length,
        msMedian: round4(prefillMed),
        msMin: round4(Math.min(...prefill)),
        tokensPerS: round4((c.prompt / prefillMed) * 1000),
        tokensPerSBest: round4((c.prompt / Math.min(...prefill)) * 1000),
      },
      decode: {
        contextStart: c.prompt,
        steps: c.decodeSteps,
        repeats: c.decodeRepeats,
        stepMsMedian: round4(stepMed),
        stepMsMin: round4(Math.min(...steps)),
        tokensPerS: round4(decodeTokS),
        tokensPerSRuns: runTokS.map(round4),
        ...(model.name === 'stories260K'
          ? { llamaCppTokensPerS: LLAMA_CPP_STORIES_TOK_S, vsLlamaCpp: round4(decodeTokS / LLAMA_CPP_STORIES_TOK_S) }
          : {}),
      },
    };
  } finally {
    base.destroy();
  }
}

export function run(): Promise<object> {
  return runModelsAndAdapters(
    'prefill: the whole prompt in one step, fresh KV and prefix cache each repeat; decode: one greedy path, ms per ' +
      'step (plan + upload + one submit + stats readback), tokensPerS = 1000 / median step ms. Shared 2-core machine: noisy.',
    benchCase,
  );
}
