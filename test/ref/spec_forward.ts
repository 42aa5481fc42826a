// A plain float64 forward over a ModelSpec and its canonical ModelWeights: the yardstick for every family. Written for
// clarity, one token at a time with a float64 KV cache; each switch of the spec is one visible branch below, with the
// math of transformers' modeling files (RMSNorm/LayerNorm with weight offset, rotate-half partial RoPE with the host
// inverse frequencies, q/k norms, GQA with query scale, soft-cap and sliding window, gated/plain MLP, the four
// residual layouts, embedding/residual/logit multipliers, final soft-cap).
import { ropeInvFreq } from '../../src/model/rope_freq.js';
import { specSizes } from '../../src/model/spec.js';
import type { Activation, ModelSpec, ModelWeights, NormSpec, NormWeights, RopeSpec } from '../../src/model/spec.js';
import { widenWeights, type F32Weights } from '../../src/model/widen.js';

/** out = W x (+ b), W (rows, cols) row-major. */
function matVec(w: Float32Array, x: Float64Array, rows: number, cols: number, bias: Float32Array | null): Float64Array {
  const out = new Float64Array(rows);
  for (let i = 0; i < rows; i++) {
    let s = bias ? bias[i] : 0;
    const base = i * cols;
    for (let j = 0; j < cols; j++) s += w[base + j] * x[j];
    out[i] = s;
  }
  return out;
}

/** Normalizes x[off, off+n) in place with weight w (length n) as `spec` says; bias only for LayerNorm with bias. */
function normInPlace(x: Float64Array, off: number, n: number, spec: NormSpec, w: Float32Array, b: Float32Array | null): void {
  let mean = 0;
  if (spec.kind === 'layer') {
    for (let i = 0; i < n; i++) mean += x[off + i];
    mean /= n;
  }
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (x[off + i] - mean) ** 2;
  const inv = 1 / Math.sqrt(ss / n + spec.eps);
  for (let i = 0; i < n; i++) x[off + i] = (x[off + i] - mean) * inv * (w[i] + spec.weightOffset) + (b ? b[i] : 0);
}

function norm(x: Float64Array, spec: NormSpec, w: NormWeights): Float64Array {
  const y = Float64Array.from(x);
  normInPlace(y, 0, y.length, spec, w.weight, w.bias);
  return y;
}

/** erf to ~1e-15: Maclaurin series below 3, the erfc continued fraction above (Abramowitz & Stegun 7.1.5, 7.1.14). */
export function erf(x: number): number {
  const a = Math.abs(x);
  let r: number;
  if (a < 3) {
    let term = a;
    let sum = a;
    for (let n = 1; n < 200 && Math.abs(term) > 1e-17 * Math.abs(sum); n++) {
      term *= (-a * a) / n;
      sum += term / (2 * n + 1);
    }
    r = (2 / Math.sqrt(Math.PI)) * sum;
  } else {
    let f = a;
    for (let k = 60; k >= 1; k--) f = a + k / 2 / f;
    r = 1 - Math.exp(-a * a) / Math.sqrt(Math.PI) / f;
  }
  return x < 0 ? -r : r;
}

export function activate(kind: Activation, x: number): number {
  switch (kind) {
    case 'silu':
      return x / (1 + Math.exp(-x));
    case 'gelu_tanh':
      // x / (1 + exp(-2u)) is 0.5 x (1 + tanh u) without cancellation for negative x (see test/ref/elementwise.ts).
      return x / (1 + Math.exp(-2 * Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
    case 'gelu_erf':
      return 0.5 * x * (1 + erf(x / Math.SQRT2));
  }
}

/** Rotate-half RoPE over the first rotaryDim dims of each of `heads` head vectors of x, in place. */
function rope(x: Float64Array, heads: number, headDim: number, r: RopeSpec, inv: Float64Array, pos: number): void {
  const half = r.rotaryDim / 2;
  for (let i = 0; i < half; i++) {
    const c = Math.cos(pos * inv[i]) * r.attentionFactor;
    const s = Math.sin(pos * inv[i]) * r.attentionFactor;
    for (let h = 0; h < heads; h++) {
      const a = h * headDim + i;
      const b = a + half;
      const x0 = x[a];
      const x1 = x[b];
      x[a] = x0 * c - x1 * s;
      x[b] = x1 * c + x0 * s;
    }
  }
}

/** One sequence, token by token; the float64 K/V of every layer stays in the session. */
export class SpecRefSession {
  private readonly keys: number[][] = []; // per layer: (pos, kvDim) flattened
  private readonly values: number[][] = [];
  private pos = 0;
  readonly spec: ModelSpec;

  private readonly w: F32Weights;

  constructor(weights: ModelWeights) {
    this.w = widenWeights(weights);
    this.spec = weights.spec;
    for (let l = 0; l < this.spec.nLayers; l++) (this.keys.push([]), this.values.push([]));
  }

  get position(): number {
    return this.pos;
  }

  /** Feeds `token` at the next position; returns the logits (V) predicting the token after it. */
  step(token: number): Float64Array {
    const s = this.spec;
    const w = this.w;
    const { dim: D, vocabSize: V } = s;
    const { nHeads: Hq, nKvHeads: Hkv, headDim: hd } = s.attention;
    const { qDim, kvDim, kvGroup } = specSizes(s);
    if (!Number.isInteger(token) || token < 0 || token >= V) throw new RangeError(`token ${token} outside [0, ${V})`);
    if (this.pos >= s.maxSeqLen) throw new RangeError(`position ${this.pos} is past the context of ${s.maxSeqLen}`);
    const pos = this.pos;
    let x = new Float64Array(D);
    for (let i = 0; i < D; i++) x[i] = w.embed[token * D + i] * s.embedScale + (w.posEmbed ? w.posEmbed[pos * D + i] : 0);

    for (let l = 0; l < s.nLayers; l++) {
      const L = w.layers[l];
      const spec = s.layers[l];
      const attnIn = L.attnNorm ? norm(x, s.norm, L.attnNorm) : x;
      const q = matVec(L.wq, attnIn, qDim, D, L.bq); // (Hq*hd)
      const k = matVec(L.wk, attnIn, kvDim, D, L.bk); // (Hkv*hd)
      const v = matVec(L.wv, attnIn, kvDim, D, L.bv); // (Hkv*hd)
      if (s.attention.qkNorm === 'projection') {
        normInPlace(q, 0, qDim, s.norm, L.qNorm!, null);
        normInPlace(k, 0, kvDim, s.norm, L.kNorm!, null);
      } else if (s.attention.qkNorm === 'head') {
        for (let h = 0; h < Hq; h++) normInPlace(q, h * hd, hd, s.norm, L.qNorm!, null);
        for (let h = 0; h < Hkv; h++) normInPlace(k, h * hd, hd, s.norm, L.kNorm!, null);
      }
      if (spec.rope) {
        const inv = ropeInvFreq(spec.rope, pos + 1);
        rope(q, Hq, hd, spec.rope, inv, pos);
        rope(k, Hkv, hd, spec.rope, inv, pos);
      }
      const ks = this.keys[l];
      const vs = this.values[l];
      for (let i = 0; i < kvDim; i++) (ks.push(k[i]), vs.push(v[i]));
      // Keys j with pos - window < j <= pos for a sliding layer, all j <= pos for a global one.
      const first = spec.attention === 'sliding' ? Math.max(0, pos - spec.window! + 1) : 0;
      const att = new Float64Array(qDim);
      for (let h = 0; h < Hq; h++) {
        const kvOff = Math.floor(h / kvGroup) * hd;
        const scores: number[] = [];
        for (let j = first; j <= pos; j++) {
          let dot = 0;
          for (let i = 0; i < hd; i++) dot += q[h * hd + i] * ks[j * kvDim + kvOff + i];
          let sc = dot * s.attention.queryScale;
          if (s.attention.softCap !== null) sc = s.attention.softCap * Math.tanh(sc / s.attention.softCap);
          scores.push(sc);
        }
        const m = Math.max(...scores);
        const e = scores.map((x) => Math.exp(x - m));
        const z = e.reduce((a, b) => a + b, 0);
        for (let j = first; j <= pos; j++) {
          const p = e[j - first] / z;
          for (let i = 0; i < hd; i++) att[h * hd + i] += p * vs[j * kvDim + kvOff + i];
        }
      }
      let a = matVec(L.wo, att, D, qDim, L.bo);
      if (L.attnPostNorm) a = norm(a, s.norm, L.attnPostNorm);
      const scale = s.residual.scale;
      if (s.residual.layout === 'parallel') {
        const m = this.mlp(l, norm(x, s.norm, L.mlpNorm ?? L.attnNorm!));
        x = x.map((xi, i) => xi + scale * (a[i] + m[i]));
      } else {
        x = x.map((xi, i) => xi + scale * a[i]);
        let m = this.mlp(l, L.mlpNorm ? norm(x, s.norm, L.mlpNorm) : x);
        if (L.mlpPostNorm) m = norm(m, s.norm, L.mlpPostNorm);
        x = x.map((xi, i) => xi + scale * m[i]);
      }
    }
    this.pos++;
    const logits = matVec(w.lmHead, norm(x, s.norm, w.finalNorm), V, D, null);
    return logits.map((z) => {
      const y = z * s.logitScale;
      return s.finalSoftCap === null ? y : s.finalSoftCap * Math.tanh(y / s.finalSoftCap);
    });
  }

  private mlp(l: number, x: Float64Array): Float64Array {
    const s = this.spec;
    const L = this.w.layers[l];
    const F = s.mlp.hiddenDim;
    const up = matVec(L.wUp, x, F, s.dim, L.bUp);
    const act = s.mlp.gated ? matVec(L.wGate!, x, F, s.dim, L.bGate) : up;
    const h = act.map((g, i) => activate(s.mlp.activation, g) * (s.mlp.gated ? up[i] : 1));
    return matVec(L.wDown, h, s.dim, F, L.bDown);
  }
}

/** The logits (V) at every position of `tokens` (teacher forcing), computed from scratch. */
export function specRefForward(weights: ModelWeights, tokens: readonly number[]): Float64Array[] {
  const s = new SpecRefSession(weights);
  return tokens.map((t) => s.step(t));
}
