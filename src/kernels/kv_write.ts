// KV write: each row's k and v heads (already RoPE-rotated k) go from the fused qkv projection output into the layer's
// paged KV pool at the row's slot. The attention dispatch after it in the same pass reads them (WebGPU orders
// dispatches), which is how a prefill chunk's rows see each other.
import { InvalidArgumentError } from '../errors.js';
import type { Gpu } from '../gpu/device.js';
import { defineUniform } from '../gpu/uniform.js';
import { BoundKernel, grid2d, groupsFor, pipelineFor } from './kernel.js';

export const KvWriteParams = defineUniform('Params', [
  ['n', 'u32'], // rows * 2 * kvHeads * headDim: elements copied
  ['headDim', 'u32'],
  ['kvHeads', 'u32'],
  ['pageSize', 'u32'],
  ['qkvStride', 'u32'],
  ['kOffset', 'u32'],
  ['vOffset', 'u32'],
  ['pages', 'u32'], // pages in the pool: slots beyond it are dropped, never written out of place
] as const);
type Field = (typeof KvWriteParams.fields)[number][0];

const WG = 256;

export interface KvWriteShape {
  kvHeads: number; // Hkv
  headDim: number; // hd
  pageSize: number; // tokens per page
  qkvStride: number; // f32 per qkv row: Hq*hd + 2*Hkv*hd for the fused projection
  kOffset: number; // where the k heads start in a qkv row (Hq*hd)
  vOffset: number; // where the v heads start in a qkv row (Hq*hd + Hkv*hd)
}

export interface KvWriteBuffers {
  qkv: GPUBuffer; // (rows, qkvStride) f32
  slots: GPUBuffer; // (rows) u32, page * pageSize + offset
  kv: GPUBuffer; // (pages, 2, kvHeads, pageSize, headDim) f32, K at index 0 and V at 1
}

function positiveInt(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) throw new InvalidArgumentError(`kv_write: ${name} must be a positive integer, got ${v}`);
}

export class KvWrite {
  private readonly pipeline: GPUComputePipeline;
  constructor(
    private readonly gpu: Gpu,
    readonly shape: KvWriteShape,
  ) {
    const { kvHeads, headDim, pageSize, qkvStride, kOffset, vOffset } = shape;
    for (const [k, v] of Object.entries({ kvHeads, headDim, pageSize, qkvStride })) positiveInt(k, v);
    const kvDim = kvHeads * headDim;
    for (const [k, v] of Object.entries({ kOffset, vOffset })) {
      if (!Number.isInteger(v) || v < 0 || v + kvDim > qkvStride) {
        throw new InvalidArgumentError(
          `kv_write: ${k}=${v} puts ${kvHeads} heads of ${headDim} outside a qkv row of ${qkvStride} f32; ` +
            `pass the offsets of the fused q|k|v layout (kOffset = Hq*hd, vOffset = Hq*hd + Hkv*hd).`,
        );
      }
    }
    this.pipeline = pipelineFor(gpu, { op: 'kv_write', variant: 'flat', constants: { WG } }, 'kv_write', KvWriteParams);
  }

  /** Bytes of one page of one layer: K and V of every kv head. */
  get pageBytes(): number {
    return 2 * this.shape.kvHeads * this.shape.pageSize * this.shape.headDim * 4;
  }

  bind(b: KvWriteBuffers, label = 'kv_write'): BoundKvWrite {
    const pages = Math.floor(b.kv.size / this.pageBytes);
    if (pages < 1) {
      throw new InvalidArgumentError(`kv_write: the KV buffer (${b.kv.size} bytes) holds no whole page of ${this.pageBytes} bytes`);
    }
    const k = new BoundKernel<Field>(this.gpu, this.pipeline, KvWriteParams, [b.qkv, b.slots, b.kv], label);
    return new BoundKvWrite(k, this.gpu, this.shape, b, pages);
  }
}

export class BoundKvWrite {
  constructor(
    private readonly k: BoundKernel<Field>,
    private readonly gpu: Gpu,
    private readonly shape: KvWriteShape,
    private readonly b: KvWriteBuffers,
    private readonly pages: number,
  ) {}

  /** Copies the k and v heads of rows 0..rows-1 to their slots. */
  encode(pass: GPUComputePassEncoder, rows: number): void {
    const s = this.shape;
    if (!Number.isInteger(rows) || rows < 0) throw new InvalidArgumentError(`kv_write: rows must be a count, got ${rows}`);
    if (rows * s.qkvStride * 4 > this.b.qkv.size || rows * 4 > this.b.slots.size) {
      throw new InvalidArgumentError(
        `kv_write: ${rows} rows exceed the bound qkv (${this.b.qkv.size} bytes) or slots (${this.b.slots.size} bytes) buffer`,
      );
    }
    const n = rows * 2 * s.kvHeads * s.headDim;
    const params = { n, ...s, pages: this.pages };
    this.k.encode(pass, params, grid2d(this.gpu, groupsFor(n, WG)));
  }

  destroy(): void {
    this.k.destroy();
  }
}
