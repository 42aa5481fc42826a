// The page half of bench/gap.ts: the same matmul timings as the Node half (bench/browser_page/kernels.ts's
// benchMatmul, src/ modules), in a Chromium launched with the flag set under test. Results go back through
// page.evaluate.
import { tokenizerFor } from '../../src/engine_load.js';
import { Engine } from '../../src/engine.js';
import { createGpu } from '../../src/gpu/device.js';
import type { RegisterBlocksChoice } from '../../src/gpu/register_blocks.js';
import { loadModel } from '../../src/model/load.js';
import { storyTokens } from '../common/prompt.js';
import { benchMatmul } from '../browser_page/kernels.js';
import type { GapCase, PrefillSource } from '../gap_cases.js';
import { gapTiming, prefillRewrite, rewriteShaders } from '../gap_cases.js';
import { gapJob, type GapJob } from '../gap_job.js';
import { fusedAb } from '../common/fused_ab.js';

async function matmul(o: { cases: GapCase[]; quick: boolean; prefill: PrefillSource }): Promise<{ adapter: string; results: object[] }> {
  // The loop form, which prefillRewrite then replaces as the configuration asks.
  const gpu = await createGpu({ adapter: 'llvmpipe', registerBlocks: 'loops' });
  rewriteShaders(gpu.device, prefillRewrite(o.prefill));
  try {
    const results: object[] = [];
    for (const c of o.cases) results.push(...(await benchMatmul(gpu, c.M, c.K, c.N, gapTiming(o.quick), [c.variant])));
    return { adapter: gpu.name, results };
  } finally {
    gpu.destroy();
  }
}

/** The peers job and step profiles (bench/gap_job.ts) on stories260K fetched from `modelUrl`. */
async function job(o: { modelUrl: string; registerBlocks: RegisterBlocksChoice; job: GapJob }): Promise<object> {
  const gpu = await createGpu({ adapter: 'llvmpipe', registerBlocks: o.registerBlocks });
  try {
    const loaded = await loadModel(o.modelUrl);
    const tokenizer = tokenizerFor(loaded)!;
    const base = await Engine.fromWeights(loaded.weights, tokenizer, { gpu, kvPages: 512, maxSamples: 64 });
    const r = await gapJob(base, storyTokens(tokenizer, o.job.prompt), o.job);
    base.destroy();
    const i = gpu.adapter.info;
    const info = { vendor: i.vendor, architecture: i.architecture, device: i.device, description: i.description, features: [...gpu.adapter.features] };
    return { adapter: gpu.name, info, registerBlocks: gpu.registerBlocks, ...r };
  } finally {
    gpu.destroy();
  }
}

/** The fused decode step against the layered forward in the page (bench/fused.ts's page side). */
async function fused(o: { modelUrl: string; rounds: number; steps: number; prompt: number; samples: number; maxNew: number }): Promise<object> {
  const gpu = await createGpu({ adapter: 'llvmpipe' });
  try {
    const loaded = await loadModel(o.modelUrl);
    const tokenizer = tokenizerFor(loaded)!;
    return await fusedAb(gpu, loaded.weights, tokenizer, { ...o, prompt: storyTokens(tokenizer, o.prompt) });
  } finally {
    gpu.destroy();
  }
}

declare global {
  interface Window {
    forklmGap?: { matmul: typeof matmul; job: typeof job; fused: typeof fused };
  }
}

window.forklmGap = { matmul, job, fused };
const el = document.getElementById('log');
if (el) el.textContent += '\nready';
