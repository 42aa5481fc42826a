// RoPE inverse frequencies on the host, in float64, from a RopeSpec: the table a RoPE kernel uploads and the float64
// reference reads. Formulas follow transformers' modeling_rope_utils.py (_compute_*_parameters) and, for a file's own
// frequency factors, llama.cpp's ggml_rope (theta / freq_factor).
import type { RopeSpec } from './spec.js';

/** theta^(-2i / d) for i < d/2 (float64). */
function baseInvFreq(theta: number, d: number): Float64Array {
  const out = new Float64Array(d / 2);
  for (let i = 0; i < d / 2; i++) out[i] = 1 / Math.pow(theta, (2 * i) / d);
  return out;
}

/**
 * Inverse frequencies (rotaryDim/2, float64, radians per position) of `r`. `seqLen` (tokens in the sequence) only
 * matters for 'dynamic' and 'longrope', which change with the length past originalMaxPositions, as transformers
 * recomputes them; omitted, the short-context table is returned.
 */
export function ropeInvFreq(r: RopeSpec, seqLen = 0): Float64Array {
  const d = r.rotaryDim;
  if (r.freqFactors) {
    const inv = baseInvFreq(r.theta, d);
    for (let i = 0; i < inv.length; i++) inv[i] /= r.freqFactors[i];
    return inv;
  }
  const s = r.scaling;
  switch (s.type) {
    case 'default':
      return baseInvFreq(r.theta, d);
    case 'linear':
      return baseInvFreq(r.theta, d).map((f) => f / s.factor);
    case 'dynamic': {
      if (seqLen <= s.originalMaxPositions) return baseInvFreq(r.theta, d);
      const base = r.theta * Math.pow((s.factor * seqLen) / s.originalMaxPositions - (s.factor - 1), d / (d - 2));
      return baseInvFreq(base, d);
    }
    case 'llama3': {
      const lowWavelen = s.originalMaxPositions / s.lowFreqFactor;
      const highWavelen = s.originalMaxPositions / s.highFreqFactor;
      return baseInvFreq(r.theta, d).map((f) => {
        const wavelen = (2 * Math.PI) / f;
        if (wavelen < highWavelen) return f;
        if (wavelen > lowWavelen) return f / s.factor;
        const smooth = (s.originalMaxPositions / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
        return (1 - smooth) * (f / s.factor) + smooth * f;
      });
    }
    case 'yarn': {
      const correctionDim = (rotations: number) =>
        (d * Math.log(s.originalMaxPositions / (rotations * 2 * Math.PI))) / (2 * Math.log(r.theta));
      let low = correctionDim(s.betaFast);
      let high = correctionDim(s.betaSlow);
      if (s.truncate) (low = Math.floor(low), (high = Math.ceil(high)));
      low = Math.max(low, 0);
      high = Math.min(high, d - 1);
      if (low === high) high += 0.001;
      return baseInvFreq(r.theta, d).map((f, i) => {
        const ramp = Math.min(1, Math.max(0, (i - low) / (high - low)));
        const extrapolation = 1 - ramp;
        return (f / s.factor) * (1 - extrapolation) + f * extrapolation;
      });
    }
    case 'longrope': {
      const factors = seqLen > s.originalMaxPositions ? s.longFactor : s.shortFactor;
      return baseInvFreq(r.theta, d).map((f, i) => f / factors[i]);
    }
  }
}

/** YaRN's default attention factor (mscale): 0.1 ln(factor) + 1 for factor > 1 (transformers get_mscale). */
export function yarnMscale(factor: number, mscale = 1): number {
  return factor <= 1 ? 1 : 0.1 * mscale * Math.log(factor) + 1;
}

/** LongRoPE's default attention factor: sqrt(1 + ln(factor) / ln(originalMaxPositions)) for factor > 1. */
export function longRopeAttentionFactor(factor: number, originalMaxPositions: number): number {
  return factor <= 1 ? 1 : Math.sqrt(1 + Math.log(factor) / Math.log(originalMaxPositions));
}
