// Float64 reference for the matmul kernel, with the error bound an f32 kernel must meet.

export interface MatmulRef {
  /** (M, N) y[m, n] = (y0[m, n] +) sum_k x[m, k] * w[n, k] (+ bias[n]), in float64 from the f32 inputs. */
  y: Float64Array;
  /**
   * (M, N) (|y0[m, n]| +) sum_k |x[m, k] * w[n, k]| (+ |bias[n]|): the scale that rounding error in the f32 sum is
   * relative to.
   */
  absSum: Float64Array;
}

/** x (M, K), w (N, K), bias (N) or null, y0 (M, N) the initial y of an accumulating matmul, or null. */
export function matmulRef(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  bias: ArrayLike<number> | null,
  M: number,
  K: number,
  N: number,
  y0: ArrayLike<number> | null = null,
): MatmulRef {
  const y = new Float64Array(M * N);
  const absSum = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      const init = y0 ? y0[m * N + n] : 0;
      let s = (bias ? bias[n] : 0) + init;
      let a = (bias ? Math.abs(bias[n]) : 0) + Math.abs(init);
      for (let k = 0; k < K; k++) {
        const p = x[m * K + k] * w[n * K + k];
        s += p;
        a += Math.abs(p);
      }
      y[m * N + n] = s;
      absSum[m * N + n] = a;
    }
  }
  return { y, absSum };
}

/**
 * The worst |got - want| / absSum over all outputs, with where it is. An f32 dot product of n terms, with the
 * additions in any order (sequential, four vec4 lanes then combined, trees) and products rounded or fused, satisfies
 * |fl(sum) - sum| <= gamma(n) * sum |terms|, gamma(n) = n u / (1 - n u), u = 2^-24 (Higham, Accuracy and Stability
 * of Numerical Algorithms, 3.1). Dividing by absSum rather than |y| keeps the check meaningful when the terms cancel
 * (random signs make |y| ~ sqrt(K) times smaller than absSum, and sometimes near zero).
 */
export function maxMatmulError(got: ArrayLike<number>, ref: MatmulRef): { err: number; at: number } {
  let err = 0;
  let at = -1;
  for (let i = 0; i < ref.y.length; i++) {
    const e = Math.abs(got[i] - ref.y[i]) / Math.max(ref.absSum[i], Number.MIN_VALUE);
    if (!(e <= err)) {
      err = e;
      at = i;
    }
  }
  return { err, at };
}

/** gamma(n) for f32: the worst-case error of an n-term dot product, relative to sum |terms|. */
export function gammaF32(n: number): number {
  const u = 2 ** -24;
  return (n * u) / (1 - n * u);
}
