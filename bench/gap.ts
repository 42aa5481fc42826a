// `npm run bench -- gap`: why the same step was slower in Chromium than in Node (issue 15). Both run Dawn's OpenGL ES
// backend on Mesa's llvmpipe; in Chromium, Dawn's GLSL goes through ANGLE, which rewrites every dynamically indexed
// array access a[i] as a[int(clamp(float(i), 0.0, N - 1.0))] (seen in the GLSL Mesa receives, MESA_SHADER_CAPTURE_PATH),
// and Dawn's robustness transform clamps buffer indices on both sides unless its `disable_robustness` toggle is on.
// This benchmark times the matmuls that showed the gap (K = N = 2048; M = 1 decode, M = 8 and 128 prefill:
// bench/gap_cases.ts) under each configuration, interleaved over ROUNDS rounds so every configuration sees the same
// load: Node and Chromium (browser.ts LAUNCH_ARGS.llvmpipe) with the shipped prefill shader (loops over arrays) and
// with a written-out candidate (gap_cases.ts PREFILL_WRITTEN_OUT), in Node also with ANGLE's clamps emulated in the
// shipped WGSL, and each side with Dawn's robustness off (GpuOptions.dawnFlags; --enable-dawn-features). GFLOP/s per case and configuration (best of the
// rounds' medians) and the ratio to Node's in the JSON (bench/results/gap.json). FORKLM_BENCH_QUICK=1 runs tiny counts;
// FORKLM_BENCH_GAP_JOB=1 adds the whole peers job in the page (shipped and loop register blocks) and in Node (`jobs`);
// FORKLM_BENCH_GAP_JOB=only runs just that, in the page with the shipped form and in Node.
import os from 'node:os';
import { chromium, type Browser } from 'playwright-core';
import { createGpu } from '../src/gpu/device.js';
import { errorText, log, machine, QUICK } from './bench_models.js';
import { benchMatmul } from './browser_page/kernels.js';
import { LAUNCH_ARGS } from './browser.js';
import { round4 } from './common/timing.js';
import { GAP_CASES, gapTiming, prefillRewrite, rewriteShaders, type PrefillSource } from './gap_cases.js';
import { startLoadMeter } from './harness.js';
import { startPageServer } from './page_server.js';
import { benchModel, engineFor, modelsDir, promptTokens } from './bench_models.js';
import { GAP_JOB, gapJob } from './gap_job.js';
import { join } from 'node:path';
import type { RegisterBlocksChoice } from '../src/gpu/register_blocks.js';

const ROUNDS = QUICK ? 1 : 2;
const JOB_ONLY = process.env.FORKLM_BENCH_GAP_JOB === 'only';

interface Config {
  name: string;
  side: 'node' | 'chromium';
  /** Dawn create() flags (Node) or extra Chromium switches. */
  flags: string[];
  /** Which prefill matmul runs (gap_cases.ts prefillRewrite); default the shipped array version. */
  prefill?: PrefillSource;
}

const CONFIGS: Config[] = [
  { name: 'node', side: 'node', flags: [] },
  { name: 'node, prefill written out', side: 'node', flags: [], prefill: 'written-out' },
  { name: 'node, ANGLE clamps emulated', side: 'node', flags: [], prefill: 'arrays, ANGLE clamps emulated' },
  { name: 'node, disable_robustness', side: 'node', flags: ['enable-dawn-features=disable_robustness'] },
  { name: 'chromium', side: 'chromium', flags: [] },
  { name: 'chromium, prefill written out', side: 'chromium', flags: [], prefill: 'written-out' },
  { name: 'chromium, written out, disable_robustness', side: 'chromium', flags: ['--enable-dawn-features=disable_robustness'], prefill: 'written-out' },
];

type Row = { M: number; variant: string; gflops?: number; error?: string };

async function nodeRun(c: Config): Promise<{ adapter: string; results: object[] }> {
  const gpu = await createGpu({ adapter: 'llvmpipe', dawnFlags: c.flags, registerBlocks: 'loops' });
  rewriteShaders(gpu.device, prefillRewrite(c.prefill ?? 'arrays'));
  try {
    const results: object[] = [];
    for (const k of GAP_CASES) results.push(...(await benchMatmul(gpu, k.M, k.K, k.N, gapTiming(QUICK), [k.variant])));
    return { adapter: gpu.name, results };
  } finally {
    gpu.destroy();
  }
}

async function chromiumRun(c: Config, origin: string): Promise<{ adapter: string; results: object[] }> {
  let browser: Browser | null = null;
  try {
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: [...LAUNCH_ARGS.llvmpipe, ...c.flags] });
    const page = await browser.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error') log(`[gap page] ${m.text()}`);
    });
    await page.goto(`${origin}/bench/gap_page/index.html`);
    await page.waitForFunction(() => window.forklmGap !== undefined, undefined, { timeout: 120_000 });
    return await page.evaluate((o) => window.forklmGap!.matmul(o), { cases: GAP_CASES, quick: QUICK, prefill: c.prefill ?? 'arrays' });
  } finally {
    await browser?.close();
  }
}

/**
 * FORKLM_BENCH_GAP_JOB=1: the peers job and its steps taken apart (gap_job.ts) in the page with the shipped
 * register-block form and with the loop form, and in Node, interleaved in that order.
 */
const JOB_SIDES: { side: 'node' | 'chromium'; registerBlocks: RegisterBlocksChoice }[] = [
  { side: 'chromium', registerBlocks: 'auto' },
  { side: 'chromium', registerBlocks: 'loops' },
  { side: 'node', registerBlocks: 'auto' },
];

async function jobRun(c: (typeof JOB_SIDES)[number], origin: string): Promise<object> {
  const job = GAP_JOB(QUICK);
  if (c.side === 'node') {
    const model = await benchModel('stories260K');
    const gpu = await createGpu({ adapter: 'llvmpipe', registerBlocks: c.registerBlocks });
    try {
      const base = await engineFor(model, gpu, { kvPages: 512, maxSamples: 64 });
      const r = await gapJob(base, promptTokens(model, job.prompt), job);
      base.destroy();
      return { adapter: gpu.name, registerBlocks: gpu.registerBlocks, ...r };
    } finally {
      gpu.destroy();
    }
  }
  let browser: Browser | null = null;
  try {
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: [...LAUNCH_ARGS.llvmpipe] });
    const page = await browser.newPage();
    await page.goto(`${origin}/bench/gap_page/index.html`);
    await page.waitForFunction(() => window.forklmGap !== undefined, undefined, { timeout: 120_000 });
    const modelUrl = `${origin}/@fs${join(modelsDir(), 'stories260K', 'hf')}/`;
    return await page.evaluate((o) => window.forklmGap!.job(o), { modelUrl, registerBlocks: c.registerBlocks, job });
  } finally {
    await browser?.close();
  }
}

export async function run(): Promise<object> {
  const load = await startLoadMeter();
  const { origin, close } = await startPageServer('bench/gap_page/index.html', 'bench-gap', [modelsDir()]);
  const jobs: object[] = [];
  const runs: { round: number; config: string; loadavg1m: number; adapter?: string; results?: object[]; error?: string }[] = [];
  try {
    for (let round = 0; round < (JOB_ONLY ? 0 : ROUNDS); round++) {
      for (const c of CONFIGS) {
        const loadavg1m = round4(os.loadavg()[0]);
        log(`gap: round ${round}, ${c.name} (load average ${loadavg1m})`);
        try {
          const r = c.side === 'node' ? await nodeRun(c) : await chromiumRun(c, origin);
          runs.push({ round, config: c.name, loadavg1m, ...r });
        } catch (e) {
          runs.push({ round, config: c.name, loadavg1m, error: errorText(e) });
          log(`gap: ${c.name} failed: ${errorText(e)}`);
        }
      }
    }
    if (process.env.FORKLM_BENCH_GAP_JOB === '1' || JOB_ONLY) {
      for (const c of JOB_SIDES.filter((x) => !JOB_ONLY || x.registerBlocks === 'auto')) {
        log(`gap: job, ${c.side}, registerBlocks ${c.registerBlocks} (load average ${round4(os.loadavg()[0])})`);
        try {
          jobs.push({ ...c, loadavg1m: round4(os.loadavg()[0]), ...(await jobRun(c, origin)) });
        } catch (e) {
          jobs.push({ ...c, error: errorText(e) });
        }
      }
    }
  } finally {
    await close();
  }
  // Best of the rounds' medians per configuration and case, and the ratio to Node's default.
  const gflops: Record<string, Record<string, number | null>> = {};
  for (const c of CONFIGS) {
    gflops[c.name] = {};
    for (const k of GAP_CASES) {
      const v = runs
        .filter((r) => r.config === c.name && r.results)
        .flatMap((r) => r.results as Row[])
        .filter((x) => x.M === k.M && x.variant === k.variant && typeof x.gflops === 'number')
        .map((x) => x.gflops!);
      gflops[c.name][`M=${k.M} ${k.variant}`] = v.length ? Math.max(...v) : null;
    }
  }
  const base = gflops.node;
  const vsNodeDefault = Object.fromEntries(
    Object.entries(gflops).map(([name, rec]) => [name, Object.fromEntries(Object.entries(rec).map(([k, v]) => [k, v && base[k] ? round4(v / base[k]!) : null]))]),
  );
  return {
    date: new Date().toISOString(),
    machine: machine(),
    quick: QUICK,
    what: 'matmul GFLOP/s, K = N = 2048, llvmpipe (Dawn GL ES), best of the rounds\' medians; Node and Chromium configurations interleaved',
    rounds: ROUNDS,
    configs: CONFIGS,
    gflops,
    vs_node: vsNodeDefault,
    runs,
    jobs,
    other_load: await load(),
  };
}
