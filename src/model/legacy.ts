// The bridge from the model spec to the Llama-only GPU model (model/llama.ts), which reads ModelConfig and
// LlamaWeights. It accepts exactly the specs that model computes correctly and refuses the rest by name, until the
// spec-driven GPU forward replaces it.
import { UnsupportedModelError } from '../errors.js';
import type { Architecture, ModelConfig } from './config.js';
import { deriveConfig } from './config.js';
import { specSizes } from './spec.js';
import type { ModelSpec, ModelWeights } from './spec.js';
import type { LlamaWeights } from './weights.js';
import { widenWeights } from './widen.js';

/** Why the Llama-only GPU model cannot run `s`, or null when it can. */
export function legacyBlocker(s: ModelSpec): string | null {
  const a = s.attention;
  const rope0 = s.layers[0]?.rope ?? null;
  const checks: [boolean, string][] = [
    [s.family === 'llama' || s.family === 'mistral' || s.family === 'qwen2', `family ${s.family}`],
    [s.norm.kind === 'rms' && s.norm.weightOffset === 0, 'this norm'],
    [s.mlp.activation === 'silu' && s.mlp.gated && !s.mlp.bias.up && !s.mlp.bias.down, 'this MLP'],
    [!a.bias.o && a.bias.q === a.bias.k && a.bias.k === a.bias.v, 'these projection biases'],
    [a.qkNorm === null && a.headDim * a.nHeads === s.dim && a.queryScale === Math.pow(a.headDim, -0.5) && a.softCap === null, 'this attention'],
    [s.residual.layout === 'sequential' && s.residual.scale === 1, 'this residual layout'],
    [s.embedScale === 1 && s.logitScale === 1 && s.finalSoftCap === null && s.positions === 'rope', 'these multipliers'],
    [s.bosTokenId !== null, 'a model without BOS'],
    [s.layers.every((l) => l.rope !== null && l.rope.rotaryDim === a.headDim && l.rope.scaling.type === 'default' && l.rope.freqFactors === null && l.rope.attentionFactor === 1 && l.rope.theta === rope0?.theta), 'this RoPE'],
    [s.layers.every((l) => l.window === s.layers[0].window), 'mixed sliding/global layers'],
  ];
  const failed = checks.find(([ok]) => !ok);
  return failed ? failed[1] : null;
}

/** ModelConfig of a spec the Llama GPU model runs. A sliding window caps the context there (its old limit). */
export function legacyConfig(s: ModelSpec): ModelConfig {
  const why = legacyBlocker(s);
  if (why !== null) {
    throw new UnsupportedModelError(`${s.sourceArchitecture}: forklm's GPU forward does not run ${why} yet (the model spec and loaders read it; the GPU side is in progress).`);
  }
  const window = specSizes(s).maxWindow;
  return deriveConfig({
    architecture: s.family as Architecture,
    dim: s.dim,
    hiddenDim: s.mlp.hiddenDim,
    nLayers: s.nLayers,
    nHeads: s.attention.nHeads,
    nKvHeads: s.attention.nKvHeads,
    vocabSize: s.vocabSize,
    maxSeqLen: window !== null ? Math.min(window, s.maxSeqLen) : s.maxSeqLen,
    normEps: s.norm.eps,
    ropeTheta: s.layers[0].rope!.theta,
    tiedEmbeddings: s.tiedEmbeddings,
    qkvBias: s.attention.bias.q,
    bosTokenId: s.bosTokenId!,
    eosTokenIds: [...s.eosTokenIds],
  });
}

/** LlamaWeights over the same vectors, with the matrices as f32 (stored ones widened: a host-side view for tests). */
export function legacyWeights(stored: ModelWeights): LlamaWeights {
  const config = legacyConfig(stored.spec);
  const w = widenWeights(stored);
  return {
    config,
    embed: w.embed,
    finalNorm: w.finalNorm.weight,
    lmHead: w.lmHead,
    layers: w.layers.map((l) => ({
      attnNorm: l.attnNorm!.weight,
      wq: l.wq,
      wk: l.wk,
      wv: l.wv,
      ...(l.bq && l.bk && l.bv ? { bq: l.bq, bk: l.bk, bv: l.bv } : {}),
      wo: l.wo,
      mlpNorm: l.mlpNorm!.weight,
      wGate: l.wGate!,
      wUp: l.wUp,
      wDown: l.wDown,
    })),
  };
}
