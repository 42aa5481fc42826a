// A whole-model decode step (ms per token) of the SmolLM2-135M shape with its matrices in F32 or in a quantized type,
// as users run it (Engine.step: embedding, 30 layers, LM head, token_stats, readback): the model-level half of the
// weight-read benchmark (bench/weights.ts). Random weights: F32 from src/model/random_weights.ts, quantized ones as
// random blocks of the type (test/ref/quant_random.ts), with llama-quantize's per-tensor fallback where a row is not
// whole blocks (Q4_K -> Q5_0 for the 576-wide rows, as in bench/common/weights_cases.ts), and the mix of a real
// llama-quantize Q4_K_M file (`q4kmType`: at this shape a Q8_0 head and embedding, Q8_0 attn_v and Q6_K ffn_down in
// 14 of the 30 layers, Q5_0 and Q4_K elsewhere).
import type { Gpu } from '../../src/gpu/device.js';
import { Engine } from '../../src/engine.js';
import { asModelWeights } from '../../src/model/from_llama.js';
import type { ModelActivations } from '../../src/model/gpu_model.js';
import { randomWeights as randomModel, SMOLLM2_135M } from '../../src/model/random_weights.js';
import type { LayerWeights, ModelWeights } from '../../src/model/spec.js';
import type { StoredMatrix, WeightMatrix } from '../../src/weights/stored_matrix.js';
import { kernelBlock, type StorageType } from '../../src/weights/types.js';
import { randomWeights } from '../../test/ref/quant_random.js';
import { mulberry32 } from '../../test/ref/random.js';
import { profileStep, type StepProfile } from '../step_profile.js';
import { median, round4, type TimingOptions } from './timing.js';

export interface ModelCase {
  label: string;
  type: StorageType;
  /** llama-quantize's Q4_K_M recipe (per-tensor types, see `q4kmType`) instead of `type` everywhere. */
  mix?: 'Q4_K_M';
  activations?: ModelActivations;
}
export const MODEL_CASES: ModelCase[] = [
  { label: 'F32', type: 'F32' },
  { label: 'Q4_K (8-bit x: the model)', type: 'Q4_K' },
  { label: 'Q4_K (activations: f32)', type: 'Q4_K', activations: 'f32' },
  { label: 'Q4_K_M (llama-quantize mix, 8-bit x)', type: 'Q4_K', mix: 'Q4_K_M' },
];

/** llama-quantize's per-tensor fallback when a row is not whole blocks of the type (llama-quant.cpp). */
function fallback(type: StorageType, K: number): StorageType {
  if (K % kernelBlock(type) === 0) return type;
  return ({ Q4_K: 'Q5_0', Q5_K: 'Q5_1', Q6_K: 'Q8_0' } as Record<string, StorageType>)[type] ?? 'F16';
}

/** llama-quant.cpp's use_more_bits: the first and last eighth of the layers and every third one between. */
function useMoreBits(i: number, n: number): boolean {
  const e = Math.floor(n / 8);
  return i < e || i >= Math.floor((7 * n) / 8) || (i - e) % 3 === 2;
}

/**
 * The type llama-quantize gives a tensor of a Q4_K_M file before the per-tensor fallback (llama-quant.cpp
 * llama_tensor_get_type): the output head (or, tied, the embedding) Q6_K; attn_v and ffn_down Q6_K in the layers
 * use_more_bits picks, Q4_K elsewhere; every other matrix Q4_K. The fixture llama256-Q4_K_M.gguf (2 layers) holds
 * exactly this: Q6_K embedding, layer 1's attn_v and ffn_down Q6_K, the rest Q4_K.
 */
export function q4kmType(tensor: 'embed' | 'head' | 'wv' | 'wDown' | 'other', layer: number, layers: number): StorageType {
  // The output (also the embedding when tied) gets Q6_K; an untied token_embd keeps the file type's default.
  if (tensor === 'head') return 'Q6_K';
  if ((tensor === 'wv' || tensor === 'wDown') && useMoreBits(layer, layers)) return 'Q6_K';
  return 'Q4_K';
}

/**
 * `w` with every matrix replaced by random blocks of `type` (or of the `mix` recipe's type per tensor; per-tensor
 * fallback), the same shapes.
 */
export function quantized(w: ModelWeights, type: StorageType, mix?: 'Q4_K_M'): ModelWeights {
  let seed = 1;
  const n = w.layers.length;
  const q = (m: WeightMatrix | null, rows: number, cols: number, tensor: Parameters<typeof q4kmType>[0] = 'other', layer = 0): StoredMatrix | null => {
    if (!m) return null;
    const t = fallback(mix ? q4kmType(tensor, layer, n) : type, cols);
    const bytes = randomWeights(t, rows, cols, mulberry32(seed++));
    return { type: t, rows, cols, bytes: () => bytes };
  };
  const s = w.spec;
  const D = s.dim;
  const F = s.mlp.hiddenDim;
  const qDim = s.attention.nHeads * s.attention.headDim;
  const kvDim = s.attention.nKvHeads * s.attention.headDim;
  const embed = q(w.embed, s.vocabSize, D, w.lmHead === w.embed ? 'head' : 'embed')!;
  const layers = w.layers.map((l, i): LayerWeights => ({
    ...l,
    wq: q(l.wq, qDim, D)!,
    wk: q(l.wk, kvDim, D)!,
    wv: q(l.wv, kvDim, D, 'wv', i)!,
    wo: q(l.wo, D, qDim)!,
    wGate: q(l.wGate, F, D),
    wUp: q(l.wUp, F, D)!,
    wDown: q(l.wDown, D, F, 'wDown', i)!,
  }));
  return { ...w, embed, layers, lmHead: w.lmHead === w.embed ? embed : q(w.lmHead, s.vocabSize, D, 'head')! };
}

export interface ModelStepResult {
  label: string;
  types: string[];
  msPerToken: number;
  minMsPerToken: number;
  cpuMsPerToken?: number;
  minCpuMsPerToken?: number;
  samples: number;
  /** Median ms per token of each round (same order for every case: round r of two cases ran back to back). */
  roundMs: number[];
  /** With `profile`: where one decode step's GPU time goes (bench/step_profile.ts, fastest samples, ms). */
  profile?: StepProfile;
}

/**
 * Decode steps of one path per case, interleaved: per round, `steps` steps of each case, so every case sees the same
 * load (and `roundMs` pairs the cases round by round, for ratios that drift with the load less than overall medians). `cpuMs` (Node) adds this process's CPU time per step. Each engine prefills an 8-token prompt first (and
 * one warm-up step). `profile` then times each case's step by category (matmuls with their quantize dispatches, LM
 * head, attention, token_stats, other) after the timed steps.
 */
export async function timeModelDecode(gpu: Gpu, rounds: number, steps: number, cpuMs?: () => number, profile?: TimingOptions): Promise<ModelStepResult[]> {
  const f32 = asModelWeights(randomModel(SMOLLM2_135M, 135));
  const engines: Engine[] = [];
  const paths: number[] = [];
  try {
    for (const c of MODEL_CASES) {
      const w = c.type === 'F32' ? f32 : quantized(f32, c.type, c.mix);
      const e = await Engine.fromWeights(w, null, { gpu, maxRows: 16, maxSamples: 4, kvPages: 64, activations: c.activations });
      paths.push(e.createPath([1, 2, 3, 4, 5, 6, 7, 8], { temperature: 1, seed: 1 }));
      await e.step();
      await e.step();
      engines.push(e);
    }
    const wall: number[][] = engines.map(() => []);
    const roundMs: number[][] = engines.map(() => []);
    const cpu: number[][] = engines.map(() => []);
    for (let r = 0; r < rounds; r++) {
      for (const [i, e] of engines.entries()) {
        const round: number[] = [];
        for (let s = 0; s < steps; s++) {
          const c0 = cpuMs?.() ?? 0;
          const t0 = performance.now();
          await e.step();
          round.push(performance.now() - t0);
          if (cpuMs) cpu[i].push(cpuMs() - c0);
        }
        wall[i].push(...round);
        roundMs[i].push(round4(median(round)));
      }
    }
    const profiles: (StepProfile | undefined)[] = [];
    for (const [i, e] of engines.entries()) profiles.push(profile ? await profileStep(e.model, 1, 1, e.pages(paths[i]).length, profile) : undefined);
    return MODEL_CASES.map((c, i) => {
      const types = new Set(engines[i].model.weights.layers.flatMap((l) => [l.wqkv, l.wo, l.wGateUp, l.wDown].flatMap((m) => m.parts.map((p) => p.type))));
      types.add(engines[i].model.weights.lmHead.parts[0].type);
      return {
        label: c.label,
        types: [...types],
        msPerToken: round4(median(wall[i])),
        minMsPerToken: round4(Math.min(...wall[i])),
        ...(cpuMs ? { cpuMsPerToken: round4(median(cpu[i])), minCpuMsPerToken: round4(Math.min(...cpu[i])) } : {}),
        samples: wall[i].length,
        roundMs: roundMs[i],
        ...(profiles[i] ? { profile: profiles[i] } : {}),
      };
    });
  } finally {
    for (const e of engines) e.destroy();
  }
}
