// What the Node engine benchmarks (decode, batch, eab, peaks) share and the browser page cannot use (files, process,
// os): the two models, their prompts, the adapters to run, the machine record and the loop over models and adapters.
// Models are loaded once per process, so `bench/run.ts decode batch eab` generates SmolLM2-shaped random weights
// (about 4 s) once. What needs only an Engine lives in bench/common/, shared with the browser page.
import { existsSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Engine } from '../src/engine.js';
import { readModel, tokenizerFor } from '../src/engine_load.js';
import type { AdapterChoice } from '../src/gpu/adapter_choice.js';
import { createGpu, type Gpu } from '../src/gpu/device.js';
import type { ModelOptions } from '../src/model/gpu_model.js';
import { randomWeights, SMOLLM2_135M } from '../src/model/random_weights.js';
import type { LlamaWeights } from '../src/model/weights.js';
import type { Tokenizer } from '../src/tokenizer/types.js';
import { randomTokens, storyTokens } from './common/prompt.js';
import { round4, startLoadMeter } from './harness.js';

export type ModelName = 'stories260K' | 'smollm2-135m-random';

export interface BenchModel {
  name: ModelName;
  /** How the weights came about, for the records. */
  source: string;
  weights: LlamaWeights;
  tokenizer: Tokenizer | null;
}

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Where the shared test models live: FORKLM_MODELS, else ../shared/models beside the repository (as the tests). */
export function modelsDir(): string {
  const dir = process.env.FORKLM_MODELS ?? join(repoRoot, '../shared/models');
  if (!existsSync(dir)) throw new Error(`benchmark models not found at ${dir}; set FORKLM_MODELS to the folder holding stories260K/`);
  return dir;
}

const cache = new Map<ModelName, Promise<BenchModel>>();

/** Seed of the random SmolLM2-shaped weights: fixed, so every run times the same model. */
export const SMOL_SEED = 135;

export function benchModel(name: ModelName): Promise<BenchModel> {
  let p = cache.get(name);
  if (!p) {
    p =
      name === 'stories260K'
        ? readModel(join(modelsDir(), 'stories260K/hf')).then((m) => ({
            name,
            source: 'karpathy stories260K, hf safetensors f32 (../shared/models)',
            weights: m.weights,
            tokenizer: tokenizerFor(m),
          }))
        : Promise.resolve({
            name,
            source: `random N(0, 0.02) weights in SmolLM2-135M's shape (seed ${SMOL_SEED}): dim 576, 30 layers, 9/3 heads, hidden 1536, vocab 49152, tied`,
            weights: randomWeights(SMOLLM2_135M, SMOL_SEED),
            tokenizer: null,
          });
    cache.set(name, p);
  }
  return p;
}

/** An engine for `model` on `gpu` (weights uploaded once; common/engine.ts freshEngine makes more engines over them). */
export function engineFor(model: BenchModel, gpu: Gpu, options: ModelOptions): Promise<Engine> {
  return Engine.fromWeights(model.weights, model.tokenizer, { gpu, ...options });
}

/** Exactly `n` prompt tokens: the story (BOS first) for a model with a tokenizer, seeded random ids otherwise. */
export function promptTokens(model: BenchModel, n: number, seed = 1): number[] {
  const cfg = model.weights.config;
  return model.tokenizer ? storyTokens(model.tokenizer, n) : randomTokens(cfg.vocabSize, cfg.bosTokenId ?? 1, n, seed);
}

/** Adapters to benchmark: FORKLM_BENCH_ADAPTERS (comma list) or both CPU adapters. */
export function benchAdapters(): AdapterChoice[] {
  return (process.env.FORKLM_BENCH_ADAPTERS ?? 'llvmpipe,swiftshader').split(',').map((s) => s.trim()) as AdapterChoice[];
}

/** FORKLM_BENCH_QUICK=1: tiny counts, to check that a benchmark runs end to end (numbers are meaningless). */
export const QUICK = process.env.FORKLM_BENCH_QUICK === '1';

/** The host: CPU model, cores, memory, Node version. */
export function hostRecord(): Record<string, string | number> {
  return { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, memGiB: round4(os.totalmem() / 2 ** 30), node: process.version };
}

export function machine(): Record<string, string | number> {
  return { ...hostRecord(), gpu: 'none (software WebGPU adapters)' };
}

export function log(s: string): void {
  console.error(`  ${s}`);
}

export function errorText(e: unknown): string {
  return e instanceof Error ? e.message.split('\n')[0] : String(e);
}

/**
 * Runs `bench` on every model (stories260K, then the SmolLM2 shape) and adapter of benchAdapters(), one GPU per
 * pair, destroyed afterwards; a pair that `applies` refuses is skipped before any GPU is made. A pair that throws is
 * recorded as { model, adapter, error } and the rest still run. Returns the suite record: date, machine, quick, the
 * note, each model's source, every case, and the share of the CPU other processes used meanwhile.
 */
export async function runModelsAndAdapters(
  note: string,
  bench: (model: BenchModel, gpu: Gpu, adapter: AdapterChoice) => Promise<object | object[]>,
  applies: (model: ModelName, adapter: AdapterChoice) => boolean = () => true,
  gpuOptions: { timestamps?: boolean } = {},
): Promise<object> {
  const load = await startLoadMeter();
  const cases: object[] = [];
  const models: Record<string, string> = {};
  for (const name of ['stories260K', 'smollm2-135m-random'] as const) {
    const model = await benchModel(name);
    models[name] = model.source;
    for (const adapter of benchAdapters()) {
      if (!applies(name, adapter)) continue;
      let gpu: Gpu | null = null;
      try {
        gpu = await createGpu({ adapter, ...gpuOptions });
        const got = await bench(model, gpu, adapter);
        cases.push(...(Array.isArray(got) ? got : [got]));
      } catch (e) {
        cases.push({ model: name, adapter, error: errorText(e) });
      } finally {
        gpu?.destroy();
      }
    }
  }
  return { date: new Date().toISOString(), machine: machine(), quick: QUICK, note, models, cases, otherLoad: await load() };
}
