// The peers benchmark in the page (bench/peers_browser.ts opens it in headless Chromium, served with cross-origin
// isolation headers so wllama may use threads): the many-samples job of issue 15 and single-stream decode, with
// forklm (src/ modules, the page's WebGPU adapter) and with wllama (llama.cpp in WebAssembly, imported from the
// bench-only install folder the runner names). Results come back through page.evaluate.
import { tokenizerFor } from '../../src/engine_load.js';
import { Engine } from '../../src/engine.js';
import type { AdapterChoice } from '../../src/gpu/adapter_choice.js';
import { createGpu } from '../../src/gpu/device.js';
import { loadModel } from '../../src/model/load.js';
import { promptRun } from '../common/decode.js';
import { eab, forkAtZero } from '../common/eab.js';
import { storyTokens } from '../common/prompt.js';
import { round4 } from '../common/timing.js';

export interface Job {
  samples: number;
  maxNew: number;
  prompt: number;
  repeats: number;
  /** EAB's normalised-entropy threshold. */
  threshold: number;
}

function show(line: string): void {
  const el = document.getElementById('log');
  if (el) el.textContent += `\n${line}`;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function forklm(o: { modelUrl: string; adapter: AdapterChoice; job: Job }): Promise<object> {
  const gpu = await createGpu({ adapter: o.adapter });
  try {
    const loaded = await loadModel(o.modelUrl);
    const tokenizer = tokenizerFor(loaded)!;
    const base = await Engine.fromWeights(loaded.weights, tokenizer, { gpu, kvPages: 512, maxSamples: 64 });
    const { samples, maxNew, repeats, threshold } = o.job;
    const prompt = storyTokens(tokenizer, o.job.prompt);
    // Untimed: compiles the pipelines of every batch shape the job steps through.
    await eab(base, prompt, samples, 8, threshold);
    await forkAtZero(base, prompt, samples, 4);
    const eabMs: number[] = [];
    const f0Ms: number[] = [];
    let generated = 0;
    for (let i = 0; i < repeats; i++) {
      const e = await eab(base, prompt, samples, maxNew, threshold);
      eabMs.push(e.mode.ms);
      generated = e.mode.generated;
      f0Ms.push((await forkAtZero(base, prompt, samples, maxNew)).ms);
      show(`forklm repeat ${i}: eab ${e.mode.ms.toFixed(0)} ms, fork-at-0 ${f0Ms[i].toFixed(0)} ms`);
    }
    const d = await promptRun(base, prompt, maxNew);
    base.destroy();
    return {
      adapter: gpu.name,
      isCpu: gpu.isCpu,
      eab_ms: eabMs.map(round4),
      eab_generated: generated,
      fork_at_0_ms: f0Ms.map(round4),
      decode_ms_per_token_median: round4(median(d.decode)),
      decode_tok_s: round4(1000 / median(d.decode)),
      prefill_ms: round4(d.prefill),
    };
  } finally {
    gpu.destroy();
  }
}

interface WllamaLike {
  loadModel(blobs: Blob[], params: Record<string, unknown>): Promise<void>;
  createCompletion(o: Record<string, unknown>): Promise<{ choices: { text: string }[]; usage: { prompt_tokens: number; completion_tokens: number } }>;
  exit(): Promise<void>;
  isMultithread?(): boolean;
  isSupportWebGPU?(): boolean;
}

async function wllama(o: { esmUrl: string; wasmUrl: string; ggufUrl: string; promptText: string; threads: number; gpuLayers: number; job: Job }): Promise<object> {
  const mod = (await import(/* @vite-ignore */ o.esmUrl)) as { Wllama: new (p: Record<string, string>, c?: object) => WllamaLike };
  const w = new mod.Wllama({ default: o.wasmUrl }, { suppressNativeLog: true });
  const { samples, maxNew, repeats } = o.job;
  const t0 = performance.now();
  // Fetched here and handed over as a Blob: wllama's own downloader misreads the dev server's answer.
  const blob = await (await fetch(o.ggufUrl)).blob();
  await w.loadModel([blob], { n_ctx: 1024, n_threads: o.threads, n_gpu_layers: o.gpuLayers, n_parallel: 1 });
  const loadMs = performance.now() - t0;
  const complete = (max: number, seed: number, temperature = 1, ignoreEos = false) =>
    w.createCompletion({ prompt: o.promptText, max_tokens: max, temperature, top_p: 1, top_k: 0, seed, ignore_eos: ignoreEos });
  // Untimed warm-up. wllama keeps the prompt's KV between requests (llama.cpp's prefix reuse), so the first request
  // of a job computes the prompt and the others reuse it.
  await complete(4, 1);
  const jobMs: number[] = [];
  let generated = 0;
  let promptTokens = 0;
  let nChoices = 0;
  // Whether one request can return n choices (llama.cpp's server can; wllama 3.13 answers with how many it gives).
  const probe = await w.createCompletion({ prompt: o.promptText, max_tokens: 2, n: 2, temperature: 1, seed: 3 });
  nChoices = probe.choices.length;
  for (let r = 0; r < repeats; r++) {
    const t = performance.now();
    generated = 0;
    for (let i = 0; i < samples; i++) {
      const res = await complete(maxNew, 100 * r + i);
      generated += res.usage.completion_tokens;
      promptTokens = res.usage.prompt_tokens;
    }
    jobMs.push(performance.now() - t);
    show(`wllama repeat ${r}: ${jobMs[r].toFixed(0)} ms`);
  }
  // Single stream: a greedy completion of 1 token and one of maxNew + 1 after the same (cached) prompt; the
  // difference is maxNew decode steps.
  const one: number[] = [];
  const many: number[] = [];
  for (let r = 0; r < repeats; r++) {
    let t = performance.now();
    await complete(1, 1, 0);
    one.push(performance.now() - t);
    t = performance.now();
    await complete(maxNew + 1, 1, 0, true);
    many.push(performance.now() - t);
  }
  const decodeMs = (median(many) - median(one)) / maxNew;
  const out = {
    threads: o.threads,
    gpu_layers: o.gpuLayers,
    multithread: w.isMultithread?.() ?? null,
    webgpu_supported: w.isSupportWebGPU?.() ?? null,
    crossOriginIsolated: globalThis.crossOriginIsolated === true,
    load_ms: round4(loadMs),
    n_choices_per_request: nChoices,
    job_ms: jobMs.map(round4),
    job_generated: generated,
    prompt_tokens: promptTokens,
    decode_ms_per_token: round4(decodeMs),
    decode_tok_s: round4(1000 / decodeMs),
  };
  await w.exit();
  return out;
}

declare global {
  interface Window {
    forklmPeers?: { forklm: typeof forklm; wllama: typeof wllama };
  }
}

window.forklmPeers = { forklm, wllama };
show('ready');
