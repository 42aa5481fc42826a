// Embedding lookup from a table in its storage type: out[r] = table[ids[r]] from a (V, dim) WeightTensor, dequantized
// in registers (shaders/qembedding.wgsl composed with the type's weight-loading snippet), one dispatch per chunk of
// the table. Ids >= V give zero rows, never an out-of-bounds read. dim must be a whole number of the type's blocks.
import type { Gpu } from '../gpu/device.js';
import { InvalidArgumentError } from '../errors.js';
import { defineUniform } from '../gpu/uniform.js';
import type { WeightTensor } from '../weights/gpu_tensor.js';
import { kernelBlock, type StorageType } from '../weights/types.js';
import { BoundKernel, checkFloats, grid2d, groupsFor } from './kernel.js';
import { weightPipeline } from './weight_shader.js';
import type { EmbeddingBindOptions } from './embedding.js';

export const QEmbeddingParams = defineUniform('Params', [
  ['rows', 'u32'],
  ['dim', 'u32'],
  ['rowStart', 'u32'],
  ['chunkRows', 'u32'],
  ['totalRows', 'u32'],
  ['rowBytes', 'u32'],
  ['scale', 'f32'], // multiplies the gathered row (Gemma's sqrt(D), Granite's embedding_multiplier); 1 otherwise
  ['accumulate', 'u32'], // 1: out += scale * row (GPT-2's learned positions onto the token embeddings)
] as const);
type QEmbeddingField = (typeof QEmbeddingParams.fields)[number][0];
const WG = 256;

export interface QEmbeddingBuffers {
  table: WeightTensor; // (V, dim) in the QEmbedding's storage type, chunks of whole rows
  ids: GPUBuffer; // (rows) u32
  out: GPUBuffer; // (rows, dim) f32
}

export class QEmbedding {
  private readonly pipeline: GPUComputePipeline;

  constructor(
    private readonly gpu: Gpu,
    readonly type: StorageType,
    readonly dim: number,
  ) {
    if (!Number.isInteger(dim) || dim < 1 || dim % kernelBlock(type) !== 0) {
      throw new InvalidArgumentError(`QEmbedding: dim must be a positive multiple of ${kernelBlock(type)} for ${type}, got ${dim}.`);
    }
    this.pipeline = weightPipeline(gpu, { op: 'qembedding', type, config: 'gather', constants: { WG } }, QEmbeddingParams);
  }

  /** `o` as kernels/embedding.ts: out = scale * row (default 1), or out += with accumulate. */
  bind(b: QEmbeddingBuffers, label = 'embedding', o: EmbeddingBindOptions = {}): BoundQEmbedding {
    const { table } = b;
    const scale = o.scale ?? 1;
    if (!Number.isFinite(scale)) throw new InvalidArgumentError(`${label}: scale must be a finite number, got ${scale}`);
    if (table.type !== this.type) throw new InvalidArgumentError(`${label}: the table is ${table.type}, the QEmbedding reads ${this.type}.`);
    if (table.cols !== this.dim) throw new InvalidArgumentError(`${label}: the table has ${table.cols} columns, the QEmbedding was made for dim ${this.dim}.`);
    if (table.chunks.length === 0 || table.chunks[0].rowStart !== 0) {
      throw new InvalidArgumentError(`${label}: the table's first chunk must start at row 0 (build it with uploadWeights).`);
    }
    if (table.chunks.some((c) => c.buffer === b.out)) throw new InvalidArgumentError(`${label}: out must not be a buffer of the table.`);
    const parts = table.chunks.map(
      (c, i) => new BoundKernel(this.gpu, this.pipeline, QEmbeddingParams, [c.buffer, c.buffer, b.ids, b.out], `${label}[chunk ${i}]`),
    );
    return new BoundQEmbedding(parts, this.gpu, b, this.dim, label, scale, o.accumulate ? 1 : 0);
  }
}

export class BoundQEmbedding {
  constructor(
    private readonly parts: readonly BoundKernel<QEmbeddingField>[],
    private readonly gpu: Gpu,
    private readonly b: QEmbeddingBuffers,
    private readonly dim: number,
    private readonly label: string,
    private readonly scale = 1,
    private readonly accumulate = 0,
  ) {}

  /** Gathers `rows` rows, one dispatch per chunk of the table. */
  encode(pass: GPUComputePassEncoder, rows: number): void {
    const { dim } = this;
    checkFloats(this.label, 'ids', this.b.ids, rows);
    checkFloats(this.label, 'out', this.b.out, rows * dim);
    const groups = grid2d(this.gpu, groupsFor((rows * dim) / 4, WG));
    const t = this.b.table;
    t.chunks.forEach((c, i) => {
      this.parts[i].encode(pass, { rows, dim, rowStart: c.rowStart, chunkRows: c.rows, totalRows: t.rows, rowBytes: t.rowBytes, scale: this.scale, accumulate: this.accumulate }, groups);
    });
  }

  destroy(): void {
    for (const p of this.parts) p.destroy();
  }
}
