// The fused decode step against the layered forward on one GPU, Node and page alike (no Node API): single-stream
// decode and the peers job (EAB exact-N), the two engines (same weights) alternating per round so both see the same load.
import { Engine } from '../../src/engine.js';
import type { Gpu } from '../../src/gpu/device.js';
import type { ModelWeights } from '../../src/model/spec.js';
import type { LlamaWeights } from '../../src/model/weights.js';
import type { Tokenizer } from '../../src/tokenizer/index.js';
import { promptRun } from './decode.js';
import { eab } from './eab.js';
import { median, round4 } from './timing.js';

export interface FusedAbJob {
  rounds: number;
  /** Greedy decode steps after the prompt. */
  steps: number;
  prompt: number[];
  /** EAB exact-N samples and new tokens (0: no job). */
  samples: number;
  maxNew: number;
}

export async function fusedAb(gpu: Gpu, weights: ModelWeights | LlamaWeights, tokenizer: Tokenizer | null, job: FusedAbJob): Promise<object> {
  // First, on a device that has compiled nothing yet: the load-time measurement (decodeFused 'measure'), whose wall
  // clock holds the compiles of both decode forms (the fused kernel's is what a page pays once per Mesa shader cache).
  const t0 = performance.now();
  const measured = await Engine.fromWeights(weights, tokenizer, { gpu, kvPages: 512, maxSamples: 64, decodeFused: 'measure' });
  const measureLoadMs = performance.now() - t0;
  const measure = measured.model.decodeFusedMeasured;
  measured.destroy();
  const fused = await Engine.fromWeights(weights, tokenizer, { gpu, kvPages: 512, maxSamples: 64, decodeFused: 'any-adapter' });
  const layered = await Engine.fromWeights(weights, tokenizer, { gpu, kvPages: 512, maxSamples: 64, decodeFused: false });
  const engines = { fused, layered };
  try {
    if (fused.model.decodeFusedRefusal) return { refusal: fused.model.decodeFusedRefusal };
    // The first prefill compiles the prefill pipelines; the decode pipelines are compiled by the measurement above.
    const l0 = performance.now();
    await promptRun(layered, job.prompt, 2);
    const firstLayeredMs = performance.now() - l0;
    const first = await promptRun(fused, job.prompt, 2);
    for (const e of Object.values(engines)) await promptRun(e, job.prompt, 4);
    if (job.samples) for (const e of Object.values(engines)) await eab(e, job.prompt, job.samples, 8, 0.4);
    const ms: Record<string, number[]> = { fused: [], layered: [] };
    const eabMs: Record<string, number[]> = { fused: [], layered: [] };
    for (let r = 0; r < job.rounds; r++)
      for (const [k, e] of Object.entries(engines)) {
        ms[k].push(round4(median((await promptRun(e, job.prompt, job.steps)).decode)));
        if (job.samples) eabMs[k].push(round4((await eab(e, job.prompt, job.samples, job.maxNew, 0.4)).mode.ms));
      }
    return {
      adapter: gpu.name,
      isCpu: gpu.isCpu,
      measure: measure && { fused_ms: round4(measure.fusedMs), layered_ms: round4(measure.layeredMs), kept: measure.kept, total_ms: round4(measure.totalMs) },
      measured_engine_load_ms: round4(measureLoadMs),
      first_layered_run_ms: round4(firstLayeredMs),
      first_fused_decode_steps_ms: first.decode.map(round4),
      ms_per_token: ms,
      decode_tok_s: { fused: round4(1000 / median(ms.fused)), layered: round4(1000 / median(ms.layered)) },
      decode_speedup: round4(median(ms.layered) / median(ms.fused)),
      eab_ms: eabMs,
      eab_speedup: job.samples ? round4(median(eabMs.layered) / median(eabMs.fused)) : null,
    };
  } finally {
    fused.destroy();
    layered.destroy();
  }
}
