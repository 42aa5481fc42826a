// The page half of the weight-read benchmark (bench/weights_browser.ts opens it in headless Chromium): the same cases
// as Node (bench/common/weights_cases.ts) on the page's adapter, wall clock only (Chromium's GPU work runs in its GPU
// process, whose CPU time a page cannot read). Results come back through page.evaluate.
import type { AdapterChoice } from '../../src/gpu/adapter_choice.js';
import { createGpu } from '../../src/gpu/device.js';
import { buildCase, CASES, summarize, timeCases } from '../common/weights_cases.js';

async function run(o: { adapter: AdapterChoice; rounds: number }): Promise<object> {
  const gpu = await createGpu({ adapter: o.adapter });
  try {
    const built = CASES.map((c) => buildCase(gpu, c));
    try {
      return { adapter: gpu.name, ...summarize(await timeCases(gpu, built, o.rounds)) };
    } finally {
      for (const b of built) b.cleanup();
    }
  } finally {
    gpu.destroy();
  }
}

declare global {
  interface Window {
    forklmWeights?: { run: typeof run };
  }
}

window.forklmWeights = { run };
const el = document.getElementById('log');
if (el) el.textContent += '\nready';
