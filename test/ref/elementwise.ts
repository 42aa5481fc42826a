// Float64 references for elementwise kernels.
export function residualAddRef(x: ArrayLike<number>, y: ArrayLike<number>): Float64Array {
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i] + y[i];
  return out;
}

/** RMSNorm (Llama) over (rows, dim): y = x / sqrt(mean(x^2) + eps) * weight. */
export function rmsNormRef(x: ArrayLike<number>, weight: ArrayLike<number>, rows: number, dim: number, eps: number): Float64Array {
  const y = new Float64Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let c = 0; c < dim; c++) ss += x[r * dim + c] ** 2;
    const scale = 1 / Math.sqrt(ss / dim + eps);
    for (let c = 0; c < dim; c++) y[r * dim + c] = x[r * dim + c] * scale * weight[c];
  }
  return y;
}

/** LayerNorm (GPT-2) over (rows, dim), biased variance: y = (x - mean) / sqrt(var + eps) * weight + bias. */
export function layerNormRef(
  x: ArrayLike<number>,
  weight: ArrayLike<number>,
  bias: ArrayLike<number>,
  rows: number,
  dim: number,
  eps: number,
): Float64Array {
  const y = new Float64Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < dim; c++) s += x[r * dim + c];
    const mean = s / dim;
    let q = 0;
    for (let c = 0; c < dim; c++) q += (x[r * dim + c] - mean) ** 2;
    const rstd = 1 / Math.sqrt(q / dim + eps);
    for (let c = 0; c < dim; c++) y[r * dim + c] = (x[r * dim + c] - mean) * rstd * weight[c] + bias[c];
  }
  return y;
}

/**
 * RoPE, Hugging Face rotate-half layout, on a copy of (rows, rowStride) x: the first nHeads heads of each row rotate
 * by angle pos * theta^(-2i/headDim) for pair (i, i + headDim/2); other columns are copied unchanged.
 */
export function ropeRef(
  x: ArrayLike<number>,
  positions: ArrayLike<number>,
  o: { rows: number; rowStride: number; nHeads: number; headDim: number; theta: number },
): Float64Array {
  const y = Float64Array.from(x);
  const half = o.headDim / 2;
  for (let r = 0; r < o.rows; r++) {
    for (let h = 0; h < o.nHeads; h++) {
      const base = r * o.rowStride + h * o.headDim;
      for (let i = 0; i < half; i++) {
        const a = positions[r] * o.theta ** ((-2 * i) / o.headDim);
        const x0 = x[base + i];
        const x1 = x[base + i + half];
        y[base + i] = x0 * Math.cos(a) - x1 * Math.sin(a);
        y[base + i + half] = x1 * Math.cos(a) + x0 * Math.sin(a);
      }
    }
  }
  return y;
}

/** silu(a) = a / (1 + exp(-a)). */
export function siluRef(a: number): number {
  return a / (1 + Math.exp(-a));
}

/** SwiGLU over (rows, 2 * hidden) gate|up rows: out[r, c] = silu(gate[r, c]) * up[r, c]. */
export function swiGluRef(gateUp: ArrayLike<number>, rows: number, hidden: number): Float64Array {
  const out = new Float64Array(rows * hidden);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < hidden; c++) out[r * hidden + c] = siluRef(gateUp[r * 2 * hidden + c]) * gateUp[r * 2 * hidden + hidden + c];
  }
  return out;
}

/**
 * GELU, tanh form: 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3), elementwise. Evaluated as the identical
 * x / (1 + exp(-2u)): in float64 too, 1 + tanh(u) cancels for x below about -6 (it is 1e-18 at x = -8, below
 * float64's resolution near 1), while the exp form keeps full relative precision and gives -0, never NaN, at the ends.
 */
export function geluRef(x: ArrayLike<number>): Float64Array {
  const y = new Float64Array(x.length);
  const k = Math.sqrt(2 / Math.PI);
  for (let i = 0; i < x.length; i++) y[i] = x[i] / (1 + Math.exp(-2 * k * (x[i] + 0.044715 * x[i] ** 3)));
  return y;
}

/** The textbook 0.5 x (1 + tanh(u)) form, to check geluRef where both are accurate. */
export function geluTanhRef(x: number): number {
  return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
}

/** Embedding lookup from a (V, dim) table: out[r] = table[ids[r]], a zero row for ids >= V. */
export function embeddingRef(table: ArrayLike<number>, vocab: number, dim: number, ids: ArrayLike<number>): Float64Array {
  const out = new Float64Array(ids.length * dim);
  for (let r = 0; r < ids.length; r++) {
    if (ids[r] >= vocab) continue;
    for (let c = 0; c < dim; c++) out[r * dim + c] = table[ids[r] * dim + c];
  }
  return out;
}

/** The attention prologue the rope_kv kernel runs, per layer. */
export interface RopeKvRefShape {
  nHeads: number;
  kvHeads: number;
  headDim: number;
  qkvStride: number;
  qkNorm: 'none' | 'head' | 'projection';
  eps: number;
  /** radians per position of pair (i, i + invFreq.length) of each head; empty = no RoPE */
  invFreq: ArrayLike<number>;
  /** multiplies cos and sin (yarn's attention factor) */
  ropeScale: number;
}

/**
 * On a float64 copy of (rows, qkvStride) qkv: RMSNorm of q and k (each head with an (hd) weight, or the whole
 * projection with an (H*hd) weight), then rotate-half RoPE on the first 2 * invFreq.length dims of every q and k head,
 * angle pos * invFreq[i], cos and sin times ropeScale. v is untouched.
 */
export function ropeKvRef(
  qkv: ArrayLike<number>,
  positions: ArrayLike<number>,
  s: RopeKvRefShape,
  qNorm?: ArrayLike<number>,
  kNorm?: ArrayLike<number>,
): Float64Array {
  const y = Float64Array.from(qkv);
  const hd = s.headDim;
  const rows = positions.length;
  const half = s.invFreq.length;
  for (let r = 0; r < rows; r++) {
    for (const [offset, heads, w] of [
      [0, s.nHeads, qNorm],
      [s.nHeads * hd, s.kvHeads, kNorm],
    ] as const) {
      const start = r * s.qkvStride + offset;
      if (s.qkNorm !== 'none' && w) {
        const group = s.qkNorm === 'head' ? hd : heads * hd;
        for (let g = 0; g < heads * hd; g += group) {
          let ss = 0;
          for (let i = 0; i < group; i++) ss += y[start + g + i] ** 2;
          const scale = 1 / Math.sqrt(ss / group + s.eps);
          for (let i = 0; i < group; i++) y[start + g + i] *= scale * w[i];
        }
      }
      for (let h = 0; h < heads; h++) {
        const base = start + h * hd;
        for (let i = 0; i < half; i++) {
          const a = positions[r] * s.invFreq[i];
          const c = Math.cos(a) * s.ropeScale;
          const sn = Math.sin(a) * s.ropeScale;
          const x0 = y[base + i];
          const x1 = y[base + i + half];
          y[base + i] = x0 * c - x1 * sn;
          y[base + i + half] = x1 * c + x0 * sn;
        }
      }
    }
  }
  return y;
}

/**
 * erfc(x) in float64: the Maclaurin series of erf for |x| < 3 (terms peak near e^(x^2) < 1e4, so ~1e-12 absolute is
 * kept), the Laplace continued fraction beyond (80 terms, converged far below 1e-15 relative there).
 */
export function erfcRef(x: number): number {
  if (Math.abs(x) < 3) {
    let term = x;
    let sum = x;
    for (let n = 1; n < 200; n++) {
      term *= (-x * x) / n;
      sum += term / (2 * n + 1);
      if (Math.abs(term) < 1e-17 * Math.abs(sum)) break;
    }
    return 1 - (2 / Math.sqrt(Math.PI)) * sum;
  }
  const a = Math.abs(x);
  let f = a;
  for (let k = 80; k >= 1; k--) f = a + k / 2 / f;
  const tail = Math.exp(-a * a) / Math.sqrt(Math.PI) / f;
  return x > 0 ? tail : 2 - tail;
}

/** The activations MlpAct computes, in float64. */
export function activationRef(act: 'silu' | 'gelu_tanh' | 'gelu_erf', x: number): number {
  if (act === 'silu') return siluRef(x);
  if (act === 'gelu_tanh') return geluRef([x])[0];
  return 0.5 * x * erfcRef(-x / Math.SQRT2);
}

/** act(gate) * up over (rows, 2 * hidden) rows when gated, act(x) over (rows, hidden) otherwise. */
export function mlpActRef(
  input: ArrayLike<number>,
  rows: number,
  hidden: number,
  act: 'silu' | 'gelu_tanh' | 'gelu_erf',
  gated: boolean,
): Float64Array {
  const out = new Float64Array(rows * hidden);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < hidden; c++) {
      out[r * hidden + c] = gated
        ? activationRef(act, input[r * 2 * hidden + c]) * input[r * 2 * hidden + hidden + c]
        : activationRef(act, input[r * hidden + c]);
    }
  }
  return out;
}
