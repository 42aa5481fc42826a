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
      decode_fused: base.model.decodeFusedRefusal ?? 'on',
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
}

type Log = (...args: unknown[]) => void;

/**
 * wllama's native log lines that say where it computes: llama.cpp prints "<backend> model buffer size" per backend it
 * placed weights on ("CPU" when ggml's WebGPU backend registered no device). The worker forwards them only when
 * native logs are not suppressed, so they are collected here instead of printed.
 */
function logCollector(): { logger: Record<'debug' | 'log' | 'warn' | 'error', Log>; placement: string[]; errors: string[] } {
  const placement: string[] = [];
  const errors: string[] = [];
  const text = (args: unknown[]) => args.map(String).join(' ');
  const keep: Log = (...args) => {
    const t = text(args);
    if (/model buffer size|ggml_webgpu/.test(t)) placement.push(t.replace(/^\S+:\s+/, '').trim());
  };
  return { logger: { debug: keep, log: keep, warn: keep, error: (...a) => errors.push(text(a)) }, placement, errors };
}

/**
 * wllama (llama.cpp's server in WebAssembly) on the job. One completion returns one choice (its request check allows
 * n = 1 only: "Field 'n': Value must be between 1 <= value <= 1"), so the 16 samples are 16 requests:
 * - `sequential`: one after another; llama.cpp's prefix reuse computes the prompt once and the others reuse it;
 * - `concurrent`: all 16 at once into `parallel` server slots (n_parallel 16), which llama.cpp decodes as one batch;
 *   each slot computes the prompt itself.
 */
async function wllama(o: { esmUrl: string; wasmUrl: string; ggufUrl: string; promptText: string; threads: number; parallel: number; mode: 'sequential' | 'concurrent'; budgetMs: number; job: Job }): Promise<object> {
  const mod = (await import(/* @vite-ignore */ o.esmUrl)) as { Wllama: new (p: Record<string, string>, c?: object) => WllamaLike };
  const logs = logCollector();
  const w = new mod.Wllama({ default: o.wasmUrl }, { suppressNativeLog: false, logger: logs.logger });
  const { samples, maxNew, repeats } = o.job;
  const t0 = performance.now();
  // Fetched here and handed over as a Blob: wllama's own downloader misreads the dev server's answer.
  const blob = await (await fetch(o.ggufUrl)).blob();
  // n_ctx: wllama's KV cache is unified over its slots, so it holds every concurrent request's prompt and tokens.
  const nCtx = o.parallel * (o.job.prompt + maxNew + 16);
  await w.loadModel([blob], { n_ctx: Math.max(1024, nCtx), n_threads: o.threads, n_parallel: o.parallel });
  const loadMs = performance.now() - t0;
  const complete = (max: number, seed: number, temperature = 1, ignoreEos = false) =>
    w.createCompletion({ prompt: o.promptText, max_tokens: max, temperature, top_p: 1, top_k: 0, seed, ignore_eos: ignoreEos });
  // Untimed warm-up, which also leaves the prompt's KV for the sequential mode's prefix reuse.
  await complete(4, 1);
  const jobMs: number[] = [];
  let generated = 0;
  let promptTokens = 0;
  const deadline = performance.now() + o.budgetMs;
  for (let r = 0; r < repeats; r++) {
    const t = performance.now();
    const seeds = Array.from({ length: samples }, (_, i) => 100 * r + i);
    const job = async () => {
      if (o.mode === 'concurrent') return Promise.all(seeds.map((s) => complete(maxNew, s)));
      const rs = [];
      for (const s of seeds) rs.push(await complete(maxNew, s));
      return rs;
    };
    // wllama's threads busy-wait at barriers; on a loaded machine a 2-thread job can take minutes, so a run that
    // passes its budget is stopped (the worker terminated) and recorded as such rather than stalling the benchmark.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const over = new Promise<null>((done) => (timer = setTimeout(() => done(null), Math.max(0, deadline - t))));
    const results = await Promise.race([job(), over]).finally(() => clearTimeout(timer));
    if (!results) {
      await w.exit();
      return { mode: o.mode, threads: o.threads, n_parallel: o.parallel, over_budget_s: o.budgetMs / 1000, job_ms: jobMs.map(round4), load_ms: round4(loadMs) };
    }
    jobMs.push(performance.now() - t);
    generated = results.reduce((a, x) => a + x.usage.completion_tokens, 0);
    promptTokens = results[0].usage.prompt_tokens;
    show(`wllama ${o.mode} repeat ${r}: ${jobMs[r].toFixed(0)} ms`);
  }
  // Single stream (sequential mode only: with several slots the next request may land in a slot without the
  // prompt): a greedy completion of 1 token and one of maxNew + 1 after the same cached prompt; the difference is
  // maxNew decode steps.
  const one: number[] = [];
  const many: number[] = [];
  for (let r = 0; r < repeats && o.mode === 'sequential'; r++) {
    let t = performance.now();
    await complete(1, 1, 0);
    one.push(performance.now() - t);
    t = performance.now();
    await complete(maxNew + 1, 1, 0, true);
    many.push(performance.now() - t);
  }
  const decodeMs = one.length ? (median(many) - median(one)) / maxNew : null;
  const out = {
    mode: o.mode,
    threads: o.threads,
    n_parallel: o.parallel,
    multithread: w.isMultithread?.() ?? null,
    // Where llama.cpp put the weights: ggml's WebGPU backend needs the adapter's shader-f16, which neither of
    // Chromium's CPU adapters offers, so it registers no device and wllama computes in WebAssembly on the CPU.
    backend_log: [...new Set(logs.placement)],
    shader_f16: {
      default_adapter: (await navigator.gpu?.requestAdapter())?.features.has('shader-f16') ?? null,
      compatibility_adapter: (await navigator.gpu?.requestAdapter({ featureLevel: 'compatibility' } as GPURequestAdapterOptions))?.features.has('shader-f16') ?? null,
    },
    crossOriginIsolated: globalThis.crossOriginIsolated === true,
    load_ms: round4(loadMs),
    n_choices_per_request: 1,
    job_ms: jobMs.map(round4),
    job_generated: generated,
    prompt_tokens: promptTokens,
    decode_ms_per_token: decodeMs === null ? null : round4(decodeMs),
    decode_tok_s: decodeMs === null ? null : round4(1000 / decodeMs),
    errors: logs.errors.slice(0, 5),
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
