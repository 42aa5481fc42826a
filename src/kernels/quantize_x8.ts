// Activation quantization for the 8-bit decode matmul (shaders/quantize_x8.wgsl): rows of x (M, K) f32 to, per
// 32-value block, q = round(x / dx) in [-127, 127] with dx = max|x| / 127 and sx = dx * sum(q), as llama.cpp's Q8_1
// (ggml-quants.c quantize_row_q8_1). The q are stored as 32 words of paired 16-bit lanes per block (the layouts
// qmatmul_idecode.wgsl multiplies; see the shader's header); `decodeQuantizedX` reads them back for tests.
import type { Gpu } from '../gpu/device.js';
import { createStorage } from '../gpu/buffers.js';
import { defineUniform } from '../gpu/uniform.js';
import { InvalidArgumentError } from '../errors.js';
import { BoundKernel, groupsFor, pipelineFor } from './kernel.js';

export const QuantizeX8Params = defineUniform('Params', [
  ['m', 'u32'], // rows of x
  ['k', 'u32'], // columns of x, a multiple of 32
] as const);
const WG = 64;
/** Values per activation block (one scale each). */
export const X8_BLOCK = 32;

/** Bytes of the quantized words and of the (dx, sx) scales for `rows` rows of K values. */
export function quantizedXBytes(rows: number, K: number): { words: number; scales: number } {
  return { words: rows * K * 4, scales: rows * (K / X8_BLOCK) * 8 };
}

/** Scratch of one bound matmul: the quantized row(s) of x. */
export interface QuantizedX {
  xq: GPUBuffer; // (rows, K/32, 32) u32: paired 16-bit lanes
  xs: GPUBuffer; // (rows, K/32) (dx, sx) f32
}

export class BoundQuantizeX8 {
  private readonly kernel: BoundKernel<'m' | 'k'>;
  readonly out: QuantizedX;

  constructor(
    gpu: Gpu,
    x: GPUBuffer, // (rows, K) f32
    readonly rows: number,
    readonly K: number,
    label: string,
  ) {
    if (K % X8_BLOCK !== 0) throw new InvalidArgumentError(`${label}: K=${K} is not a multiple of ${X8_BLOCK}, the activation block.`);
    const bytes = quantizedXBytes(rows, K);
    this.out = {
      xq: createStorage(gpu.device, bytes.words, `${label}:xq (${rows}, ${K / X8_BLOCK}, 32) u32`),
      xs: createStorage(gpu.device, bytes.scales, `${label}:xs (${rows}, ${K / X8_BLOCK}) vec2<f32>`),
    };
    const pipeline = pipelineFor(gpu, { op: 'quantize_x8', variant: 'block32', constants: { WG } }, 'quantize_x8', QuantizeX8Params);
    this.kernel = new BoundKernel(gpu, pipeline, QuantizeX8Params, [x, this.out.xq, this.out.xs], `${label}:quantize_x8`);
  }

  /** Quantizes rows [0, M) of x (M <= rows). */
  encode(pass: GPUComputePassEncoder, M: number): void {
    if (M > this.rows) throw new InvalidArgumentError(`quantize_x8: M=${M} rows but the scratch holds ${this.rows}.`);
    this.kernel.encode(pass, { m: M, k: this.K }, [groupsFor(this.K / X8_BLOCK, WG), M]);
  }

  destroy(): void {
    this.kernel.destroy();
    this.out.xq.destroy();
    this.out.xs.destroy();
  }
}

/**
 * The q values (row-major, (rows, K)) and (dx, sx) per block from the read-back words and scales of quantize_x8
 * (tests: the A words give every value; the B words are checked against them).
 */
export function decodeQuantizedX(words: Uint32Array, scales: Float32Array, rows: number, K: number): { q: Int32Array; dx: Float32Array; sx: Float32Array; bWordsAgree: boolean } {
  const blocks = (rows * K) / X8_BLOCK;
  const q = new Int32Array(rows * K);
  const lanes = (w: number): [number, number] => [(w << 16) >> 16, (w | 0) - ((w << 16) >> 16) >> 16];
  let bWordsAgree = true;
  for (let b = 0; b < blocks; b++) {
    const base = b * 32;
    for (let g = 0; g < 8; g++) {
      const [q2, q0] = lanes(words[base + 2 * g]);
      const [q3, q1] = lanes(words[base + 2 * g + 1]);
      q.set([q0, q1, q2, q3], b * 32 + 4 * g);
    }
    for (let t = 0; t < 16; t++) {
      const [qHigh, qLow] = lanes(words[base + 16 + t]); // (q[t + 16], q[t])
      if (qHigh !== q[b * 32 + t + 16] || qLow !== q[b * 32 + t]) bWordsAgree = false;
    }
  }
  const dx = new Float32Array(blocks);
  const sx = new Float32Array(blocks);
  for (let b = 0; b < blocks; b++) {
    dx[b] = scales[2 * b];
    sx[b] = scales[2 * b + 1];
  }
  return { q, dx, sx, bWordsAgree };
}
