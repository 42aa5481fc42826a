// Activation quantization for the 8-bit matmul (shaders/quantize_x8.wgsl): rows of x (M, K) f32, through the matmul's
// x prologue (kernels/x_prologue.ts), to, per 32-value block, q = round(x / dx) in [-127, 127] with dx = max|x| / 127
// and sx = dx * sum(q), as llama.cpp's Q8_1 (ggml-quants.c quantize_row_q8_1_ref). The q are stored as 32 words of
// paired 16-bit lanes per block (the layouts qmatmul_q8.wgsl multiplies; see the shader's header); `decodeQuantizedX`
// reads them back for tests.
import type { Gpu } from '../gpu/device.js';
import { createStorage } from '../gpu/buffers.js';
import { defineUniform } from '../gpu/uniform.js';
import { InvalidArgumentError } from '../errors.js';
import { BoundKernel, groupsFor } from './kernel.js';
import { WGSL } from './wgsl.gen.js';
import { PLAIN, prologueKey, xPrologueSource, type XPrologue } from './x_prologue.js';

export const QuantizeX8Params = defineUniform('Params', [
  ['m', 'u32'], // rows of x
  ['k', 'u32'], // columns of x (of the prologue's output), a multiple of 32
] as const);
const WG = 64;
/** Values per activation block (one scale each). */
export const X8_BLOCK = 32;

/** Bytes of the quantized words and of the (dx, sx) scales for `rows` rows of K values. */
export function quantizedXBytes(rows: number, K: number): { words: number; scales: number } {
  return { words: rows * K * 4, scales: rows * (K / X8_BLOCK) * 8 };
}

/** x on 8 bits: scratch that 8-bit matmuls encoded one after another may share (each quantizes its x first). */
export interface QuantizedX {
  xq: GPUBuffer; // (rows, K/32, 32) u32: paired 16-bit lanes
  xs: GPUBuffer; // (rows, K/32) (dx, sx) f32
}

/** Scratch for `rows` rows of up to K values. */
export function createQuantizedX(gpu: Gpu, rows: number, K: number, label: string): QuantizedX {
  const bytes = quantizedXBytes(rows, K);
  return {
    xq: createStorage(gpu.device, bytes.words, `${label}:xq (${rows}, ${K / X8_BLOCK}, 32) u32`),
    xs: createStorage(gpu.device, bytes.scales, `${label}:xs (${rows}, ${K / X8_BLOCK}) vec2<f32>`),
  };
}

export class BoundQuantizeX8 {
  private readonly kernel: BoundKernel<'m' | 'k'>;

  constructor(
    gpu: Gpu,
    x: GPUBuffer, // (rows, K) f32; (rows, 2K) gate | up for a gated act prologue
    readonly out: QuantizedX,
    readonly K: number,
    prologue: XPrologue,
    norm: GPUBuffer | null, // (K) f32 the norm weight of an rms prologue
    label: string,
  ) {
    if (K % X8_BLOCK !== 0) throw new InvalidArgumentError(`${label}: K=${K} is not a multiple of ${X8_BLOCK}, the activation block.`);
    const key = { op: 'quantize_x8', variant: `block32${prologue.kind === 'plain' ? '' : `:${prologueKey(prologue)}`}`, constants: { WG } };
    const pipeline = gpu.pipelines.get(key, () => [QuantizeX8Params.wgsl, WGSL.quantize_x8, WGSL.xq8_block, WGSL.xq8_store, xPrologueSource(prologue, { v4: { x: 'x', g: 4 } })].join('\n'));
    this.kernel = new BoundKernel(gpu, pipeline, QuantizeX8Params, [x, out.xq, out.xs, norm], `${label}:quantize_x8`);
  }

  /** Quantizes rows [0, M) of x (M <= the scratch's rows). */
  encode(pass: GPUComputePassEncoder, M: number): void {
    const need = quantizedXBytes(M, this.K);
    if (need.words > this.out.xq.size || need.scales > this.out.xs.size) {
      throw new InvalidArgumentError(`quantize_x8: M=${M} rows of K=${this.K} need more than the scratch holds (${this.out.xq.size} bytes of words).`);
    }
    this.kernel.encode(pass, { m: M, k: this.K }, [groupsFor(this.K / X8_BLOCK, WG), M]);
  }

  destroy(): void {
    this.kernel.destroy();
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
