// Weight-read benchmark: the projections of one decode step (M = 1) of a SmolLM2-135M-shaped model (30 layers of
// q|k|v 576->960, o 576->576, gate|up 576->3072, down 1536->576, then the tied 576->49152 LM head) with the weights
// in each storage type, through the matmul that reads them (src/kernels/qmatmul.ts; the f32 kernels/matmul.ts as the
// baseline). Random weights from test/ref/quant_random.ts. A type whose block does not divide a row falls back per
// tensor as llama-quantize does (Q4_K -> Q5_0 and Q6_K -> Q8_0 for the 576-wide rows; only down's 1536-wide rows
// stay Q4_K); "Q5_0" is every matrix in Q5_0. The 4- and 5-bit types run on 8-bit activations (qmatmul.ts,
// activations 'q8', what the model runs); the "f32 x" cases keep x in f32 for comparison. Reports ms per step (wall
// and this process's CPU time, median and fastest), the projections-only tokens/s bound, GB/s of weights read, and
// every case's speed over the best F32 of the run. Then, on llvmpipe, whole-model decode steps (ms per token through
// Engine.step) of the same shape in F32, Q4_K and the per-tensor mix of a llama-quantize Q4_K_M file
// (bench/common/model_decode.ts), under `model`, each with its step profile by category (bench/step_profile.ts). The
// per-matrix cases then run in headless Chromium on each adapter (bench/weights_browser.ts, wall clock only), recorded
// under `chromium`.
// FORKLM_BENCH_ADAPTERS=llvmpipe (comma list) narrows the adapters (Node and Chromium); FORKLM_BENCH_WEIGHTS_CHROMIUM=0
// leaves Chromium out; FORKLM_BENCH_QUICK=1 times briefly.
import type { AdapterChoice } from '../src/gpu/adapter_choice.js';
import { createGpu } from '../src/gpu/device.js';
import type { BrowserAdapter } from './browser_page/api.js';
import { benchAdapters, hostRecord, QUICK } from './bench_models.js';
import { buildCase, CASES, HEAD, LAYER_SHAPES, LAYERS, SLOW, summarize, timeCases } from './common/weights_cases.js';
import { MODEL_CASES, timeModelDecode } from './common/model_decode.js';
import { median } from './common/timing.js';
import { startLoadMeter } from './harness.js';
import { weightsInChromium } from './weights_browser.js';

const round = (v: number): number => Math.round(v * 1e4) / 1e4;
const rounds = (adapter: string): number => (QUICK ? 2 : SLOW.has(adapter) ? 3 : 7);

/** This process's CPU time in ms (the adapters' worker threads run in it). */
const cpuMs = (): number => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
};

export async function run(): Promise<object> {
  const stopMeter = await startLoadMeter();
  const adapters: Record<string, object> = {};
  const choices = benchAdapters() as AdapterChoice[];
  for (const choice of choices) {
    const gpu = await createGpu({ adapter: choice });
    console.error(`bench weights: ${choice}`);
    const built = CASES.map((c) => buildCase(gpu, c));
    const results = await timeCases(gpu, built, rounds(choice), cpuMs);
    for (const b of built) b.cleanup();
    adapters[choice] = summarize(results);
    if (choice === 'llvmpipe') {
      console.error('bench weights: whole-model decode on llvmpipe');
      // Then each case's step by category (bench/step_profile.ts): where the time goes besides the projections.
      // 9 rounds of 3 steps: medians of 9 steps (3 x 3) swung 2.7-3.4x between quiet runs (bench/RESULTS.md).
      const steps = await timeModelDecode(gpu, QUICK ? 1 : 9, QUICK ? 2 : 3, cpuMs, { warmupMs: 100, sampleMs: 150, samples: 5, minSamples: 3, budgetMs: 3000 });
      const f32 = steps[0];
      // Issue 12's goal on the model: Q4_K decode >= 3x F32 decode, here per token through Engine.step (and for
      // the Q4_K_M mix users download).
      // `pairedWall`: the median over rounds of F32's round median / this case's (rounds ran back to back).
      const paired = (r: (typeof steps)[number]): number => round(median(r.roundMs.map((ms, k) => f32.roundMs[k] / ms)));
      const speedup = Object.fromEntries(
        steps.map((r) => [r.label, { wall: round(f32.msPerToken / r.msPerToken), pairedWall: paired(r), fastest: round(f32.minMsPerToken / r.minMsPerToken), cpu: round(f32.cpuMsPerToken! / r.cpuMsPerToken!) }]),
      );
      adapters[`${choice}:model`] = { cases: MODEL_CASES.map((c) => c.label), results: steps, speedupOverF32: speedup, goal: 3 };
    }
    gpu.destroy();
  }
  const inPage = choices.filter((c): c is BrowserAdapter => c === 'llvmpipe' || c === 'swiftshader');
  const chromium = process.env.FORKLM_BENCH_WEIGHTS_CHROMIUM === '0' ? { skipped: 'FORKLM_BENCH_WEIGHTS_CHROMIUM=0' } : await weightsInChromium(inPage, rounds);
  return { host: hostRecord(), otherProcessesLoad: await stopMeter(), shape: { layers: LAYERS, layer: LAYER_SHAPES, head: HEAD }, adapters, chromium };
}
