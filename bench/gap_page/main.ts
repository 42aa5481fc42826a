// The page half of bench/gap.ts: the same matmul timings as the Node half (bench/browser_page/kernels.ts's
// benchMatmul, src/ modules), in a Chromium launched with the flag set under test. Results go back through
// page.evaluate.
import { createGpu } from '../../src/gpu/device.js';
import { benchMatmul } from '../browser_page/kernels.js';
import type { GapCase, PrefillSource } from '../gap_cases.js';
import { gapTiming, prefillRewrite, rewriteShaders } from '../gap_cases.js';

async function matmul(o: { cases: GapCase[]; quick: boolean; prefill: PrefillSource }): Promise<{ adapter: string; results: object[] }> {
  const gpu = await createGpu({ adapter: 'llvmpipe' });
  rewriteShaders(gpu.device, prefillRewrite(o.prefill));
  try {
    const results: object[] = [];
    for (const c of o.cases) results.push(...(await benchMatmul(gpu, c.M, c.K, c.N, gapTiming(o.quick), [c.variant])));
    return { adapter: gpu.name, results };
  } finally {
    gpu.destroy();
  }
}

declare global {
  interface Window {
    forklmGap?: { matmul: typeof matmul };
  }
}

window.forklmGap = { matmul };
const el = document.getElementById('log');
if (el) el.textContent += '\nready';
