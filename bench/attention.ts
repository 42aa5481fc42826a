// `npm run bench -- attention`: the per-head paged attention's forms (bench/common/attention_forms.ts: loops or written
// out, one or two rows per invocation) on llvmpipe in Node and in a Chromium page on its GL route (llvmpipe through
// ANGLE, which clamps every dynamic index into the loop form's private arrays), at the peers job's wide step (16
// forked paths at position 287) for stories260K and the SmolLM2-135M shape. Forms alternate within each round; the
// JSON gives each form's median and fastest ms per dispatch and, per side and shape, each form's median over the
// loop form with one row (`vs_loops_one_row`). FORKLM_BENCH_ATTENTION_SIDES=node,page picks the sides.
import os from 'node:os';
import { chromium, type Browser } from 'playwright-core';
import { createGpu } from '../src/gpu/device.js';
import { errorText, log, machine, QUICK } from './bench_models.js';
import { LAUNCH_ARGS } from './browser.js';
import { attentionForms } from './common/attention_forms.js';
import { round4 } from './common/timing.js';
import { startLoadMeter } from './harness.js';
import { startPageServer } from './page_server.js';

const RUN = QUICK ? { rounds: 2, layers: 2 } : { rounds: 30, layers: 20 };
const SIDES = (process.env.FORKLM_BENCH_ATTENTION_SIDES ?? 'node,page').split(',').map((s) => s.trim());

type Row = { shape: string; registerBlocks: string; rowsPerInvocation: number; median_ms: number };

async function nodeSide(): Promise<object> {
  const gpu = await createGpu({ adapter: 'llvmpipe' });
  try {
    return { adapter: gpu.name, registerBlocks: gpu.registerBlocks, forms: await attentionForms(gpu, RUN) };
  } finally {
    gpu.destroy();
  }
}

async function pageSide(): Promise<object> {
  const { origin, close } = await startPageServer('bench/attention_page/index.html', 'bench-attention');
  let browser: Browser | null = null;
  try {
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: [...LAUNCH_ARGS.llvmpipe] });
    const page = await browser.newPage();
    await page.goto(`${origin}/bench/attention_page/index.html`);
    await page.waitForFunction(() => window.forklmAttention !== undefined, undefined, { timeout: 120_000 });
    return await page.evaluate((o) => window.forklmAttention!.forms(o), RUN);
  } finally {
    await browser?.close();
    await close();
  }
}

/** Each form's median over the loop form with one row per invocation, per shape. */
function relative(forms: Row[]): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (const r of forms) {
    const base = forms.find((b) => b.shape === r.shape && b.registerBlocks === 'loops' && b.rowsPerInvocation === 1);
    if (base) (out[r.shape] ??= {})[`${r.registerBlocks}, ${r.rowsPerInvocation} row(s)`] = round4(r.median_ms / base.median_ms);
  }
  return out;
}

export async function run(): Promise<object> {
  const stopMeter = await startLoadMeter();
  const out: Record<string, unknown> = {};
  for (const side of SIDES) {
    const loadavg1m = round4(os.loadavg()[0]);
    log(`attention: ${side} (load average ${loadavg1m})`);
    try {
      const r = (side === 'page' ? await pageSide() : await nodeSide()) as { forms: Row[] };
      out[side] = { loadavg1m, ...r, vs_loops_one_row: relative(r.forms) };
    } catch (e) {
      out[side] = { loadavg1m, error: errorText(e) };
    }
  }
  return {
    machine: machine(),
    what: `per-head paged attention, ms per dispatch: 16 paths at position 287 (256 shared prompt keys + 32 own), pages of 16 keys; ${RUN.layers} dispatches per submit, ${RUN.rounds} rounds, forms alternating`,
    ...out,
    load_average_after: round4(os.loadavg()[0]),
    other_load: await stopMeter(),
  };
}
