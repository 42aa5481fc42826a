// `npm run bench -- fused`: the fused decode step (kernels/decode_fused.ts) against the layered forward it replaces, on
// llvmpipe in Node and in a Chromium page (its GL route, llvmpipe through ANGLE): stories260K, greedy decode of 64
// tokens after the 256-token story prompt and the peers job (EAB exact-N, 16 samples of 64 tokens), the two engines
// (same weights) alternating for 3 rounds in each, so both see the same load (bench/common/fused_ab.ts). Each side
// first loads an engine with decodeFused 'measure' on a device that has compiled nothing: the load-time choice's
// timings and wall clock, compiles included (set MESA_SHADER_CACHE_DISABLE=true to see cold compiles: Mesa's disk
// cache hides them otherwise). FORKLM_BENCH_FUSED_SIDES=node,page picks the sides. Load averages go beside them.
import os from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { createGpu } from '../src/gpu/device.js';
import { benchModel, errorText, log, machine, modelsDir, promptTokens, QUICK } from './bench_models.js';
import { LAUNCH_ARGS } from './browser.js';
import { fusedAb } from './common/fused_ab.js';
import { round4 } from './common/timing.js';
import { startLoadMeter } from './harness.js';
import { startPageServer } from './page_server.js';

const JOB = QUICK ? { rounds: 1, steps: 4, prompt: 32, samples: 4, maxNew: 8 } : { rounds: 3, steps: 64, prompt: 256, samples: 16, maxNew: 64 };
const SIDES = (process.env.FORKLM_BENCH_FUSED_SIDES ?? 'node,page').split(',').map((s) => s.trim());

async function nodeSide(): Promise<object> {
  const model = await benchModel('stories260K');
  const gpu = await createGpu({ adapter: 'llvmpipe' });
  try {
    return await fusedAb(gpu, model.weights, model.tokenizer, { ...JOB, prompt: promptTokens(model, JOB.prompt) });
  } finally {
    gpu.destroy();
  }
}

async function pageSide(): Promise<object> {
  const { origin, close } = await startPageServer('bench/gap_page/index.html', 'bench-gap', [modelsDir()]);
  let browser: Browser | null = null;
  try {
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: [...LAUNCH_ARGS.llvmpipe] });
    const page = await browser.newPage();
    await page.goto(`${origin}/bench/gap_page/index.html`);
    await page.waitForFunction(() => window.forklmGap !== undefined, undefined, { timeout: 120_000 });
    const modelUrl = `${origin}/@fs${join(modelsDir(), 'stories260K', 'hf')}/`;
    return await page.evaluate((o) => window.forklmGap!.fused(o), { modelUrl, ...JOB });
  } finally {
    await browser?.close();
    await close();
  }
}

export async function run(): Promise<object> {
  const loadBefore = round4(os.loadavg()[0]);
  const stopMeter = await startLoadMeter();
  const out: Record<string, unknown> = {};
  for (const side of SIDES) {
    log(`fused: ${side} (load average ${round4(os.loadavg()[0])})`);
    try {
      out[side] = side === 'page' ? await pageSide() : await nodeSide();
    } catch (e) {
      out[side] = { error: errorText(e) };
    }
  }
  return {
    machine: machine(),
    job: `stories260K: greedy decode of ${JOB.steps} tokens after ${JOB.prompt} prompt tokens, and EAB exact-N ${JOB.samples} x ${JOB.maxNew}; ${JOB.rounds} alternating rounds per side`,
    mesa_shader_cache_disabled: process.env.MESA_SHADER_CACHE_DISABLE === 'true',
    ...out,
    load_average: { before: loadBefore, after: round4(os.loadavg()[0]) },
    other_load: await stopMeter(),
  };
}
