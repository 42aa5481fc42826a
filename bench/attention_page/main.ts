// The page half of bench/attention.ts: the per-head attention's forms (bench/common/attention_forms.ts) on the page's
// llvmpipe adapter (Chromium's GL route). Results go back through page.evaluate.
import { createGpu } from '../../src/gpu/device.js';
import { attentionForms } from '../common/attention_forms.js';

async function forms(o: { rounds: number; layers: number }): Promise<object> {
  const gpu = await createGpu({ adapter: 'llvmpipe' });
  try {
    return { adapter: gpu.name, registerBlocks: gpu.registerBlocks, forms: await attentionForms(gpu, o) };
  } finally {
    gpu.destroy();
  }
}

declare global {
  interface Window {
    forklmAttention?: { forms: typeof forms };
  }
}

window.forklmAttention = { forms };
const el = document.getElementById('log');
if (el) el.textContent += '\nready';
