// Host side of the 8-bit activations of the quantized matmul (shaders/xq8.wgsl): per 32-value block of a row,
// dx = max|x| / 127 and q = round(x / dx), as llama.cpp's quantize_row_q8_1_ref (ggml-quants.c).

/** Values per activation block (one scale each). */
export const X8_BLOCK = 32;

/**
 * Rows of x whose 8-bit quantization is unambiguous: per block a step t, integers q in [-126, 126] plus offsets
 * u in [-3/8, 3/8] (x = t (q + u)), and one value exactly 127 t (in f32) that sets max|x|. The kernel's dx = max|x| / 127
 * is t up to a few ulp of its division, and x / dx is q + u up to a few ulp of 127, far from a rounding boundary
 * (|u| <= 3/8), so the kernel's q are these q whatever its rounding. Returns x (M, K) f32 and xHat = t q (float64), the
 * values the kernel multiplies.
 */
export function x8Exact(rand: () => number, M: number, K: number): { x: Float32Array; xHat: Float64Array } {
  const x = new Float32Array(M * K);
  const xHat = new Float64Array(M * K);
  for (let b = 0; b < (M * K) / X8_BLOCK; b++) {
    // Steps from 2^-9 to ~2^-6: |x| up to ~2, blocks of different sizes.
    const t = Math.fround((0.25 + rand()) / 256);
    const top = b * X8_BLOCK + Math.floor(rand() * X8_BLOCK);
    for (let k = b * X8_BLOCK; k < (b + 1) * X8_BLOCK; k++) {
      const q = k === top ? (rand() < 0.5 ? -127 : 127) : Math.floor(rand() * 253) - 126;
      const u = k === top ? 0 : (rand() - 0.5) * 0.75;
      x[k] = Math.fround(t * (q + u));
      xHat[k] = t * q;
    }
  }
  return { x, xHat };
}

/** max|v| / 127 over each 32-value block of v (length a multiple of 32): the 8-bit step of each block. */
export function x8Steps(v: ArrayLike<number>): Float64Array {
  const out = new Float64Array(v.length / X8_BLOCK);
  for (let b = 0; b < out.length; b++) {
    let amax = 0;
    for (let k = b * X8_BLOCK; k < (b + 1) * X8_BLOCK; k++) amax = Math.max(amax, Math.abs(v[k]));
    out[b] = amax / 127;
  }
  return out;
}

/**
 * Per output (M, N): sum_k |w[n, k]| dx(m, k) (1/2 + 2^-10), what rounding x (M, K) to its 8-bit grid can move
 * y = x W^T by: round to nearest moves each x by at most half its block's step dx (plus a few ulp of the f32
 * evaluation of x / dx, and of the prologue's f32 values against the float64 ones: far below the 2^-10 step margin).
 * `magnitude` (N, K) bounds |w|.
 */
export function x8Bound(x: ArrayLike<number>, magnitude: ArrayLike<number>, M: number, K: number, N: number): Float64Array {
  const steps = x8Steps(x);
  const out = new Float64Array(M * N);
  const kb = K / X8_BLOCK;
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += magnitude[n * K + k] * steps[m * kb + Math.floor(k / X8_BLOCK)];
      out[m * N + n] = s * (0.5 + 2 ** -10);
    }
  }
  return out;
}
