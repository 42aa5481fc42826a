// The model spec's pure helpers: derived sizes, layer-kind grouping, consistency checks, RoPE inverse frequencies.
import { describe, expect, it } from 'vitest';
import { ModelFormatError } from '../../src/errors.js';
import { ropeInvFreq } from '../../src/model/rope_freq.js';
import { layerKinds, layerNormSlots, specSizes, validateSpec } from '../../src/model/spec.js';
import type { LayerSpec, ModelSpec, RopeSpec } from '../../src/model/spec.js';

const rope = (theta: number, rotaryDim = 32): RopeSpec => ({ theta, rotaryDim, scaling: { type: 'default' }, attentionFactor: 1, freqFactors: null });

/** Gemma-3-shaped: head size 32 while D / Hq = 16, local layers with their own theta. */
function gemma3Like(): ModelSpec {
  const local: LayerSpec = { attention: 'sliding', window: 16, rope: rope(10000) };
  const global: LayerSpec = { attention: 'global', window: null, rope: rope(1e6) };
  return {
    family: 'gemma3',
    sourceArchitecture: 'gemma3_text',
    dim: 64,
    vocabSize: 512,
    nLayers: 3,
    maxSeqLen: 512,
    norm: { kind: 'rms', eps: 1e-6, weightOffset: 1, bias: false },
    attention: { nHeads: 4, nKvHeads: 2, headDim: 32, bias: { q: false, k: false, v: false, o: false }, qkNorm: 'head', queryScale: 32 ** -0.5, softCap: null },
    mlp: { hiddenDim: 96, activation: 'gelu_tanh', gated: true, bias: { gate: false, up: false, down: false } },
    residual: { layout: 'sandwich', sharedNorm: false, scale: 1 },
    positions: 'rope',
    layers: [local, { ...local }, global],
    embedScale: 8,
    logitScale: 1,
    finalSoftCap: null,
    tiedEmbeddings: true,
    bosTokenId: 2,
    eosTokenIds: [1, 106],
  };
}

describe('model spec', () => {
  it('derives sizes from the explicit head size, not D / heads', () => {
    expect(specSizes(gemma3Like())).toEqual({ qDim: 128, kvDim: 64, qkvDim: 256, kvGroup: 2, maxWindow: 16 });
  });

  it('groups layers by attention kind and RoPE', () => {
    const kinds = layerKinds(gemma3Like());
    expect(kinds.map((k) => k.layers)).toEqual([[0, 1], [2]]);
    expect(kinds[0].label).toBe('sliding window 16; rope theta 10000, rotary 32 dims');
    expect(kinds[1].label).toBe('global; rope theta 1000000, rotary 32 dims');
  });

  it('names the norm slots of each residual layout', () => {
    expect(layerNormSlots({ layout: 'post-norm', sharedNorm: false, scale: 1 })).toEqual({ attnNorm: false, mlpNorm: false, attnPostNorm: true, mlpPostNorm: true });
    expect(layerNormSlots({ layout: 'parallel', sharedNorm: true, scale: 1 }).mlpNorm).toBe(false);
  });

  it('accepts a consistent spec and refuses inconsistent ones by field', () => {
    expect(validateSpec(gemma3Like(), 't')).toBeTruthy();
    const cases: [string, (s: ModelSpec) => void, RegExp][] = [
      ['odd rotary', (s) => (s.layers[2].rope!.rotaryDim = 31), /RoPE over 31 dimensions/],
      ['rotary wider than the head', (s) => (s.layers[0].rope!.rotaryDim = 34), /RoPE over 34 dimensions/],
      ['GQA remainder', (s) => (s.attention.nKvHeads = 3), /not a multiple of the 3 key\/value heads/],
      ['window missing', (s) => (s.layers[0].window = null), /layer 0 slides with window null/],
      ['eos outside the vocabulary', (s) => (s.eosTokenIds = [512]), /token id 512/],
      ['no eos', (s) => (s.eosTokenIds = []), /no eos_token_id/],
      ['layer count', (s) => s.layers.pop(), /2 layer entries for 3 layers/],
      ['rope with learned positions', (s) => (s.positions = 'learned'), /RoPE although positions are learned/],
    ];
    for (const [what, change, message] of cases) {
      const s = gemma3Like();
      s.layers = s.layers.map((l) => ({ ...l, rope: l.rope && { ...l.rope } }));
      change(s);
      expect(() => validateSpec(s, 'cfg'), what).toThrow(ModelFormatError);
      expect(() => validateSpec(s, 'cfg'), what).toThrow(message);
    }
  });

  it('allows a null BOS', () => {
    expect(validateSpec({ ...gemma3Like(), bosTokenId: null }, 't').bosTokenId).toBeNull();
  });
});

describe('RoPE inverse frequencies', () => {
  it('default is theta^(-2i/d), computed independently here', () => {
    const inv = ropeInvFreq(rope(10000, 8));
    expect([...inv]).toEqual([1, 10000 ** -0.25, 10000 ** -0.5, 10000 ** -0.75]);
  });

  it('llama3 keeps high frequencies, divides low ones by the factor and ramps between', () => {
    const base = ropeInvFreq(rope(500000, 16));
    const r: RopeSpec = { ...rope(500000, 16), scaling: { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 64 } };
    const inv = ropeInvFreq(r);
    for (let i = 0; i < base.length; i++) {
      const wavelen = (2 * Math.PI) / base[i];
      if (wavelen < 64 / 4) expect(inv[i]).toBe(base[i]);
      else if (wavelen > 64) expect(inv[i]).toBeCloseTo(base[i] / 32, 15);
      else {
        expect(inv[i]).toBeLessThan(base[i]);
        expect(inv[i]).toBeGreaterThan(base[i] / 32);
      }
    }
    // Some index of each kind exists at these sizes, so each branch above was taken.
    const kinds = [...base].map((f) => ((2 * Math.PI) / f < 16 ? 'high' : (2 * Math.PI) / f > 64 ? 'low' : 'mid'));
    expect(new Set(kinds)).toEqual(new Set(['high', 'mid', 'low']));
  });

  it('linear divides, file factors divide per frequency, longrope switches past the original context', () => {
    const base = ropeInvFreq(rope(10000, 8));
    expect([...ropeInvFreq({ ...rope(10000, 8), scaling: { type: 'linear', factor: 4 } })]).toEqual([...base].map((f) => f / 4));
    const ff = new Float32Array([1, 2, 4, 8]);
    expect([...ropeInvFreq({ ...rope(10000, 8), freqFactors: ff })]).toEqual([...base].map((f, i) => f / ff[i]));
    const lr: RopeSpec = { ...rope(10000, 8), scaling: { type: 'longrope', shortFactor: [1, 1, 1, 1], longFactor: [1, 2, 3, 4], originalMaxPositions: 100 } };
    expect([...ropeInvFreq(lr, 50)]).toEqual([...base]);
    expect([...ropeInvFreq(lr, 101)]).toEqual([...base].map((f, i) => f / (i + 1)));
  });

  it('yarn extrapolates the fastest frequencies and interpolates the slowest', () => {
    const base = ropeInvFreq(rope(10000, 64));
    const inv = ropeInvFreq({ ...rope(10000, 64), scaling: { type: 'yarn', factor: 4, originalMaxPositions: 2048, betaFast: 32, betaSlow: 1, truncate: true } });
    expect(inv[0]).toBe(base[0]);
    expect(inv[31]).toBeCloseTo(base[31] / 4, 18);
  });

  it('dynamic NTK leaves short sequences alone and raises theta past the original context', () => {
    const r: RopeSpec = { ...rope(10000, 8), scaling: { type: 'dynamic', factor: 2, originalMaxPositions: 100 } };
    expect([...ropeInvFreq(r, 100)]).toEqual([...ropeInvFreq(rope(10000, 8))]);
    const theta = 10000 * (2 * 200 / 100 - 1) ** (8 / 6);
    expect(ropeInvFreq(r, 200)[1]).toBeCloseTo(theta ** -0.25, 15);
  });
});
