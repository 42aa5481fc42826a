// The in-page benchmark runner: bench/browser.ts opens this page in headless Chromium (one launch per software
// adapter), calls window.forklmBench.setup() to create the GPU and fetch stories260K from the dev server, then
// run(section) for each section, collecting JSON through page.evaluate. Everything uses src/ modules directly.
import { tokenizerFor } from '../../src/engine_load.js';
import { createGpu, type Gpu } from '../../src/gpu/device.js';
import { loadModel } from '../../src/model/load.js';
import type { AdapterRecord, BenchApi, Section, SetupOptions } from './api.js';
import { batchSection, decodeSection, eabSection, peaksSection, type BenchContext } from './engine_benches.js';
import { kernelsSection } from './kernels.js';
import { round4 } from '../common/timing.js';

const LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupStorageSize',
] as const;

let ctx: BenchContext | null = null;

function show(line: string): void {
  const el = document.getElementById('log');
  if (el) el.textContent += `\n${line}`;
}

function adapterRecord(gpu: Gpu, o: SetupOptions): Omit<AdapterRecord, 'model'> {
  const info = gpu.adapter.info;
  const fallback = (info as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter;
  return {
    name: gpu.name,
    kind: gpu.kind,
    isCpu: gpu.isCpu,
    info: { vendor: info.vendor, architecture: info.architecture, device: info.device, description: info.description },
    isFallbackAdapter: typeof fallback === 'boolean' ? fallback : null,
    matchesLaunch: new RegExp(o.adapter, 'i').test(gpu.name),
    features: [...gpu.adapter.features].sort(),
    limits: Object.fromEntries(LIMITS.map((k) => [k, (gpu.limits as unknown as Record<string, number>)[k]])),
    userAgent: navigator.userAgent,
    crossOriginIsolated: globalThis.crossOriginIsolated === true,
  };
}

const api: BenchApi = {
  async setup(o) {
    api.teardown();
    const gpu = await createGpu({ adapter: o.adapter });
    const t0 = performance.now();
    const loaded = await loadModel(o.modelUrl);
    const loadMs = performance.now() - t0;
    const tokenizer = tokenizerFor(loaded);
    if (!tokenizer) throw new Error(`${o.modelUrl} came without a tokenizer; the benchmarks need stories260K's tokenizer.json`);
    ctx = { gpu, adapter: o.adapter, quick: o.quick, weights: loaded.weights, tokenizer };
    const cfg = loaded.config;
    show(`setup: ${gpu.name}`);
    return {
      ...adapterRecord(gpu, o),
      model: { url: o.modelUrl, loadMs: round4(loadMs), layers: cfg.nLayers, dim: cfg.dim, vocab: cfg.vocabSize, maxSeqLen: cfg.maxSeqLen },
    };
  },
  async run(section: Section) {
    if (!ctx) throw new Error('forklmBench.run: call setup() first');
    const c = ctx;
    show(`${section}: running`);
    const t0 = performance.now();
    const out =
      section === 'kernels'
        ? await kernelsSection(c.gpu, c.adapter, c.quick)
        : section === 'decode'
          ? await decodeSection(c)
          : section === 'batch'
            ? await batchSection(c)
            : section === 'eab'
              ? await eabSection(c)
              : await peaksSection(c);
    const ms = performance.now() - t0;
    show(`${section}: done in ${(ms / 1000).toFixed(1)} s`);
    return { ...out, sectionMs: round4(ms) };
  },
  teardown() {
    ctx?.gpu.destroy();
    ctx = null;
  },
};

window.forklmBench = api;
