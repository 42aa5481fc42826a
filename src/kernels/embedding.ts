// Embedding lookup: out[r] = table[ids[r]] from a row-split (V, dim) table, one dispatch per chunk. The same kernel
// gathers rows of an activation buffer (wrap it with `wholeTensor`). Ids >= V give zero rows, never an
// out-of-bounds read.
import type { Gpu } from '../gpu/device.js';
import { InvalidArgumentError } from '../errors.js';
import type { SplitTensor } from '../gpu/split_tensor.js';
import { defineUniform } from '../gpu/uniform.js';
import { BoundKernel, checkFloats, grid2d, groupsFor, pipelineFor } from './kernel.js';

export const EmbeddingParams = defineUniform('Params', [
  ['rows', 'u32'],
  ['dim', 'u32'],
  ['rowStart', 'u32'],
  ['chunkRows', 'u32'],
  ['totalRows', 'u32'],
  ['scale', 'f32'], // multiplies the gathered row (Gemma's sqrt(D), Granite's embedding_multiplier); 1 otherwise
  ['accumulate', 'u32'], // 1: out += scale * row (GPT-2's learned positions onto the token embeddings)
] as const);
type EmbeddingField = (typeof EmbeddingParams.fields)[number][0];
const WG = 256;

export interface EmbeddingOptions {
  dim: number; // columns of the table and of out
}

/** What a bind does with the gathered rows. */
export interface EmbeddingBindOptions {
  /** out = scale * table[id]. Default 1 (a plain copy). */
  scale?: number;
  /** out += scale * table[id] instead of =; ids >= V then leave their row unchanged. Default false. */
  accumulate?: boolean;
}

export interface EmbeddingBuffers {
  table: SplitTensor; // (V, dim) f32 in row chunks
  ids: GPUBuffer; // (rows) u32
  out: GPUBuffer; // (rows, dim) f32
}

export class Embedding {
  private readonly pipeline: GPUComputePipeline;

  constructor(
    private readonly gpu: Gpu,
    readonly opts: EmbeddingOptions,
  ) {
    if (!Number.isInteger(opts.dim) || opts.dim < 1) throw new InvalidArgumentError(`Embedding: dim must be a positive integer, got ${opts.dim}`);
    this.pipeline = pipelineFor(gpu, { op: 'embedding', variant: 'chunk_gather', constants: { WG } }, 'embedding', EmbeddingParams);
  }

  bind(b: EmbeddingBuffers, label = 'embedding', o: EmbeddingBindOptions = {}): BoundEmbedding {
    const { table } = b;
    const scale = o.scale ?? 1;
    if (!Number.isFinite(scale)) throw new InvalidArgumentError(`${label}: scale must be a finite number, got ${scale}`);
    if (table.cols !== this.opts.dim) {
      throw new InvalidArgumentError(`${label}: the table has ${table.cols} columns, the Embedding was made for dim ${this.opts.dim}`);
    }
    if (table.chunks.length === 0 || table.chunks[0].rowStart !== 0) {
      throw new InvalidArgumentError(`${label}: the table's first chunk must start at row 0 (build it with uploadSplit or wholeTensor)`);
    }
    for (const c of table.chunks) {
      if (c.buffer === b.out) throw new InvalidArgumentError(`${label}: out must not be a buffer of the table`);
      checkFloats(label, `table rows [${c.rowStart}, ${c.rowStart + c.rows})`, c.buffer, c.rows * table.cols);
    }
    // One bound kernel per chunk: each has its own buffer and its own rowStart in its uniform.
    const parts = table.chunks.map(
      (c, i) => new BoundKernel(this.gpu, this.pipeline, EmbeddingParams, [c.buffer, b.ids, b.out], `${label}[chunk ${i}]`),
    );
    return new BoundEmbedding(parts, this.gpu, b, this.opts.dim, label, scale, o.accumulate ? 1 : 0);
  }
}

export class BoundEmbedding {
  constructor(
    private readonly parts: readonly BoundKernel<EmbeddingField>[],
    private readonly gpu: Gpu,
    private readonly b: EmbeddingBuffers,
    private readonly dim: number,
    private readonly label: string,
    private readonly scale: number,
    private readonly accumulate: number,
  ) {}

  /** Gathers `rows` rows, one dispatch per chunk of the table. */
  encode(pass: GPUComputePassEncoder, rows: number): void {
    const { dim } = this;
    checkFloats(this.label, 'ids', this.b.ids, rows);
    checkFloats(this.label, 'out', this.b.out, rows * dim);
    const groups = grid2d(this.gpu, groupsFor(rows * dim, WG));
    const totalRows = this.b.table.rows;
    this.b.table.chunks.forEach((c, i) => {
      const params = { rows, dim, rowStart: c.rowStart, chunkRows: c.rows, totalRows, scale: this.scale, accumulate: this.accumulate };
      this.parts[i].encode(pass, params, groups);
    });
  }

  destroy(): void {
    for (const p of this.parts) p.destroy();
  }
}
