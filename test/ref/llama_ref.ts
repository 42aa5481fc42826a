// A plain float64 Llama forward pass over LlamaWeights: the yardstick the GPU model is compared against. Written for
// clarity, not speed: one token at a time with a float64 KV cache, the same math as Hugging Face's LlamaForCausalLM
// (RMSNorm, rotate-half RoPE, grouped-query attention, optional q/k/v bias, SwiGLU MLP, tied or untied LM head).
import type { LlamaWeights } from '../../src/model/weights.js';
import { attendHead } from './attention.js';

/** out = W x (+ b), W (rows, cols) row-major. */
function matVec(w: Float32Array, x: Float64Array, rows: number, cols: number, bias?: Float32Array): Float64Array {
  const out = new Float64Array(rows);
  for (let i = 0; i < rows; i++) {
    let s = bias ? bias[i] : 0;
    const base = i * cols;
    for (let j = 0; j < cols; j++) s += w[base + j] * x[j];
    out[i] = s;
  }
  return out;
}

function rmsNorm(x: Float64Array, w: Float32Array, eps: number): Float64Array {
  let ss = 0;
  for (let i = 0; i < x.length; i++) ss += x[i] * x[i];
  const inv = 1 / Math.sqrt(ss / x.length + eps);
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i] * inv * w[i];
  return out;
}

/**
 * Hugging Face rotate-half RoPE, in place on `heads` consecutive head vectors of `x`: dimension i pairs with
 * i + hd/2 and turns by pos * theta^(-2i/hd).
 */
export function ropeRotateHalf(x: Float64Array, heads: number, headDim: number, pos: number, theta: number): void {
  const half = headDim / 2;
  for (let i = 0; i < half; i++) {
    const angle = pos * Math.pow(theta, (-2 * i) / headDim);
    const c = Math.cos(angle);
    const s = Math.sin(angle);
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

/** One sequence decoded token by token; the float64 K/V of every layer and position stays in the session. */
export class RefSession {
  private readonly keys: number[][] = []; // per layer: (pos, Hkv*hd) flattened, grown one position per step
  private readonly values: number[][] = [];
  private pos = 0;

  constructor(private readonly w: LlamaWeights) {
    for (let l = 0; l < w.config.nLayers; l++) {
      this.keys.push([]);
      this.values.push([]);
    }
  }

  /** Tokens consumed so far: the position the next `step` computes. */
  get position(): number {
    return this.pos;
  }

  /** Feeds `token` at the next position and returns the logits (V) that predict the token after it. */
  step(token: number): Float64Array {
    const c = this.w.config;
    const { dim: D, hiddenDim: F, nHeads: Hq, nKvHeads: Hkv, headDim: hd, qDim, kvDim, vocabSize: V } = c;
    if (!Number.isInteger(token) || token < 0 || token >= V) throw new RangeError(`token ${token} outside [0, ${V})`);
    if (this.pos >= c.maxSeqLen) throw new RangeError(`position ${this.pos} is past the context of ${c.maxSeqLen}`);
    const pos = this.pos;
    const x = new Float64Array(D);
    for (let i = 0; i < D; i++) x[i] = this.w.embed[token * D + i];

    for (let l = 0; l < c.nLayers; l++) {
      const L = this.w.layers[l];
      const h = rmsNorm(x, L.attnNorm, c.normEps);
      const q = matVec(L.wq, h, qDim, D, L.bq); // (Hq*hd)
      const k = matVec(L.wk, h, kvDim, D, L.bk); // (Hkv*hd)
      const v = matVec(L.wv, h, kvDim, D, L.bv); // (Hkv*hd)
      ropeRotateHalf(q, Hq, hd, pos, c.ropeTheta);
      ropeRotateHalf(k, Hkv, hd, pos, c.ropeTheta);
      const ks = this.keys[l];
      const vs = this.values[l];
      for (let i = 0; i < kvDim; i++) {
        ks.push(k[i]);
        vs.push(v[i]);
      }
      const att = new Float64Array(qDim); // (Hq*hd)
      const group = Hq / Hkv;
      for (let head = 0; head < Hq; head++) {
        const kvOff = Math.floor(head / group) * hd;
        const at = (j: number) => j * kvDim + kvOff;
        attendHead(q, head * hd, ks, at, vs, at, pos + 1, hd, att, head * hd);
      }
      const o = matVec(L.wo, att, D, qDim);
      for (let i = 0; i < D; i++) x[i] += o[i];

      const h2 = rmsNorm(x, L.mlpNorm, c.normEps);
      const gate = matVec(L.wGate, h2, F, D);
      const up = matVec(L.wUp, h2, F, D);
      for (let i = 0; i < F; i++) gate[i] = (gate[i] / (1 + Math.exp(-gate[i]))) * up[i]; // SwiGLU: silu(gate) * up
      const down = matVec(L.wDown, gate, D, F);
      for (let i = 0; i < D; i++) x[i] += down[i];
    }
    this.pos++;
    return matVec(this.w.lmHead, rmsNorm(x, this.w.finalNorm, c.normEps), V, D);
  }
}

/** The logits (V) at every position of `tokens`, computed from scratch. */
export function refForward(weights: LlamaWeights, tokens: number[]): Float64Array[] {
  const s = new RefSession(weights);
  return tokens.map((t) => s.step(t));
}

/** Index of the largest logit (the first one on ties, like llama2.c's argmax). */
export function argmax(logits: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  return best;
}
