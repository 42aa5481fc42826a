// The Llama-family model on the GPU: weights, the paged KV pool, activation buffers sized for the largest step, and
// every kernel bound once. `forward.ts` runs a StepPlan through it.
import type { Gpu } from '../gpu/device.js';
import { createStorage } from '../gpu/buffers.js';
import { Readback } from '../gpu/readback.js';
import { wholeTensor } from '../gpu/split_tensor.js';
import { Embedding } from '../kernels/embedding.js';
import { KvWrite } from '../kernels/kv_write.js';
import { Matmul } from '../kernels/matmul.js';
import { PagedAttention } from '../kernels/paged_attention.js';
import { RmsNorm } from '../kernels/rmsnorm.js';
import { Rope } from '../kernels/rope.js';
import { MlpAct } from '../kernels/mlp_act.js';
import { TokenStats } from '../kernels/token_stats.js';
import { tokenStatsLayout, type TokenStatsLayout } from '../sample/stats_record.js';
import { InvalidArgumentError } from '../errors.js';
import type { ModelConfig } from './config.js';
import { destroyWeights, uploadWeights, type GpuWeights } from './gpu_weights.js';
import type { LlamaWeights } from './weights.js';

export interface ModelOptions {
  /** Rows one step may compute (prompt-chunk rows + decode rows). Default 256. */
  maxRows?: number;
  /** Paths that may sample in one step. Default 64. */
  maxSamples?: number;
  /** KV tokens per page. Default 16. */
  pageSize?: number;
  /** KV pages in the pool; default: as many as fit kvBudgetBytes. */
  kvPages?: number;
  /** Bytes for the KV pool across layers when kvPages is not given. Default 256 MiB. */
  kvBudgetBytes?: number;
  /** top-k kept by token_stats (DeepConf uses 20). Default 20. */
  topK?: number;
  /** Most tokens drawn without replacement for one path in one step (the largest branch factor). Default 8. */
  maxBranch?: number;
}

type BoundOf<T extends { bind: (...a: never[]) => unknown }> = ReturnType<T['bind']>;

interface LayerKernels {
  attnNorm: BoundOf<RmsNorm>;
  qkv: BoundOf<Matmul>;
  rope: BoundOf<Rope>;
  kvWrite: BoundOf<KvWrite>;
  attention: BoundOf<PagedAttention>;
  /** hidden += attnOut wo^T: accumulates into the residual stream (no separate residual add). */
  outProj: BoundOf<Matmul>;
  mlpNorm: BoundOf<RmsNorm>;
  gateUp: BoundOf<Matmul>;
  swiglu: BoundOf<MlpAct>;
  /** hidden += act w_down^T, likewise. */
  down: BoundOf<Matmul>;
}

export class LlamaModel {
  readonly config: ModelConfig;
  readonly maxRows: number;
  readonly maxSamples: number;
  readonly pageSize: number;
  readonly kvPages: number;
  /** Widest page table a path can have: ceil(maxSeqLen / pageSize). */
  readonly maxPagesPerPath: number;
  readonly statsLayout: TokenStatsLayout;
  readonly maxBranch: number;
  /** Bytes of one page in one layer: 2 * Hkv * pageSize * headDim * 4. */
  readonly pageBytes: number;

  readonly weights: GpuWeights;
  // Step inputs, rewritten each step.
  readonly tokenIds: GPUBuffer; // (maxRows) u32
  readonly positions: GPUBuffer; // (maxRows) u32
  readonly rowPath: GPUBuffer; // (maxRows) u32
  readonly slots: GPUBuffer; // (maxRows) u32
  readonly pageTable: GPUBuffer; // (maxRows, maxPagesPerPath) u32: at most one path per row
  readonly sampleRow: GPUBuffer; // (maxSamples) u32
  readonly sampling: GPUBuffer; // (maxSamples, 4) [temperature f32, topP f32, randomBits u32, nSamples u32]
  // Activations.
  readonly hidden: GPUBuffer; // (maxRows, D) f32 residual stream
  readonly normed: GPUBuffer; // (maxRows, D) f32
  readonly qkv: GPUBuffer; // (maxRows, qkvDim) f32
  readonly attnOut: GPUBuffer; // (maxRows, qDim) f32
  readonly gateUp: GPUBuffer; // (maxRows, 2F) f32
  readonly act: GPUBuffer; // (maxRows, F) f32
  readonly sampleHidden: GPUBuffer; // (maxSamples, D) f32 rows gathered by sampleRow
  readonly sampleNormed: GPUBuffer; // (maxSamples, D) f32
  readonly logits: GPUBuffer; // (maxSamples, V) f32
  readonly stats: GPUBuffer; // (maxSamples, statsStride) f32/u32
  /** One buffer per layer: (kvPages, 2, Hkv, pageSize, headDim) f32. */
  readonly kv: GPUBuffer[];
  /** One page of one layer, the middle stop of a page copy (WebGPU forbids copying a buffer onto itself). */
  readonly pageScratch: GPUBuffer;
  readonly statsReadback: Readback;

  /** Owns the RoPE frequency table buffer. */
  private ropeKernel!: Rope;

  readonly kernels: {
    embed: BoundOf<Embedding>;
    layers: LayerKernels[];
    gather: BoundOf<Embedding>;
    finalNorm: BoundOf<RmsNorm>;
    lmHead: BoundOf<Matmul>;
    tokenStats: BoundOf<TokenStats>;
  };

  constructor(
    readonly gpu: Gpu,
    weights: LlamaWeights,
    options: ModelOptions = {},
  ) {
    const c = (this.config = weights.config);
    const dev = gpu.device;
    this.maxRows = options.maxRows ?? 256;
    this.maxSamples = Math.min(options.maxSamples ?? 64, this.maxRows);
    this.pageSize = options.pageSize ?? 16;
    const topK = Math.min(options.topK ?? 20, c.vocabSize);
    this.maxBranch = options.maxBranch ?? 8;
    if (this.maxRows < 1 || this.pageSize < 1 || this.maxSamples < 1)
      throw new InvalidArgumentError('maxRows, maxSamples and pageSize must be positive integers.');
    this.maxPagesPerPath = Math.ceil(c.maxSeqLen / this.pageSize);
    this.pageBytes = 2 * c.nKvHeads * this.pageSize * c.headDim * 4;
    const perBinding = Math.floor(gpu.limits.maxStorageBufferBindingSize / this.pageBytes);
    const budget = options.kvBudgetBytes ?? 256 * 1024 * 1024;
    this.kvPages = options.kvPages ?? Math.max(this.maxPagesPerPath, Math.floor(budget / (this.pageBytes * c.nLayers)));
    if (this.kvPages > perBinding)
      throw new InvalidArgumentError(
        `kvPages=${this.kvPages} needs ${this.kvPages * this.pageBytes} bytes per layer, above this adapter's ` +
          `maxStorageBufferBindingSize (${gpu.limits.maxStorageBufferBindingSize}); use at most ${perBinding} pages.`,
      );

    this.weights = uploadWeights(gpu, weights);
    const R = this.maxRows;
    const S = this.maxSamples;
    const D = c.dim;
    const F = c.hiddenDim;
    const u32 = (n: number, label: string) => createStorage(dev, n * 4, label);
    this.tokenIds = u32(R, 'tokenIds (R) u32');
    this.positions = u32(R, 'positions (R) u32');
    this.rowPath = u32(R, 'rowPath (R) u32');
    this.slots = u32(R, 'slots (R) u32');
    this.pageTable = u32(R * this.maxPagesPerPath, 'pageTable (P, maxPages) u32');
    this.sampleRow = u32(S, 'sampleRow (S) u32');
    this.sampling = u32(S * 4, 'sampling (S, 4)');
    this.hidden = u32(R * D, 'hidden (R, D) f32');
    this.normed = u32(R * D, 'normed (R, D) f32');
    this.qkv = u32(R * c.qkvDim, 'qkv (R, qkvDim) f32');
    this.attnOut = u32(R * c.qDim, 'attnOut (R, qDim) f32');
    this.gateUp = u32(R * 2 * F, 'gateUp (R, 2F) f32');
    this.act = u32(R * F, 'act (R, F) f32');
    this.sampleHidden = u32(S * D, 'sampleHidden (S, D) f32');
    this.sampleNormed = u32(S * D, 'sampleNormed (S, D) f32');
    this.logits = u32(S * c.vocabSize, 'logits (S, V) f32');
    this.statsLayout = tokenStatsLayout(topK, this.maxBranch);
    this.stats = u32(S * this.statsLayout.stride, 'stats (S, stride)');
    this.kv = Array.from({ length: c.nLayers }, (_, l) =>
      createStorage(dev, this.kvPages * this.pageBytes, `kv[${l}] (pages, 2, Hkv, pageSize, hd) f32`),
    );
    this.pageScratch = createStorage(dev, this.pageBytes, 'page scratch (2, Hkv, pageSize, hd) f32');
    this.statsReadback = new Readback(gpu, S * this.statsLayout.stride * 4, 'stats readback');
    this.kernels = this.bindKernels(topK);
  }

  private bindKernels(topK: number): LlamaModel['kernels'] {
    const gpu = this.gpu;
    const c = this.config;
    const w = this.weights;
    const D = c.dim;
    const F = c.hiddenDim;
    const rms = new RmsNorm(gpu, { dim: D, eps: c.normEps });
    const qkvMm = new Matmul(gpu, { K: D, N: c.qkvDim, bias: c.qkvBias });
    // The out- and down-projections add into `hidden` themselves: two dispatches fewer per layer, which is what a
    // decode step on a CPU adapter pays for (about 0.02-0.05 ms per dispatch, bench/RESULTS.md). Their inputs
    // (attnOut, act) are other buffers, as a matmul's y must be.
    const oMm = new Matmul(gpu, { K: c.qDim, N: D, bias: false, accumulate: true });
    const guMm = new Matmul(gpu, { K: D, N: 2 * F, bias: false });
    const downMm = new Matmul(gpu, { K: F, N: D, bias: false, accumulate: true });
    // q and k heads are adjacent at the start of each qkv row: one rope dispatch rotates both.
    const rope = (this.ropeKernel = new Rope(gpu, { headDim: c.headDim, nHeads: c.nHeads + c.nKvHeads, rowStride: c.qkvDim, theta: c.ropeTheta }));
    const kvWrite = new KvWrite(gpu, {
      kvHeads: c.nKvHeads,
      headDim: c.headDim,
      pageSize: this.pageSize,
      qkvStride: c.qkvDim,
      kOffset: c.qDim,
      vOffset: c.qDim + c.kvDim,
    });
    // llvmpipe silently stops an invocation's loops after 65,535 iterations in total. The per-head attention variant
    // (CPU adapters) loops ~headDim/2 times per key, so long contexts take the split-keys variant, which spreads the
    // keys of one head over a workgroup.
    const perHeadIterations = c.maxSeqLen * (c.headDim / 2 + 2);
    const attn = new PagedAttention(gpu, {
      nHeads: c.nHeads,
      kvHeads: c.nKvHeads,
      headDim: c.headDim,
      pageSize: this.pageSize,
      qStride: c.qkvDim,
      variant: gpu.isCpu && perHeadIterations <= 60_000 ? 'per-head' : 'split-keys',
    });
    const swiglu = new MlpAct(gpu, { hidden: F });
    const embed = new Embedding(gpu, { dim: D });
    const layers = w.layers.map((lw, l): LayerKernels => ({
      attnNorm: rms.bind({ x: this.hidden, weight: lw.attnNorm, y: this.normed }),
      qkv: qkvMm.bind({ x: this.normed, w: lw.wqkv, ...(lw.bqkv ? { bias: lw.bqkv } : {}), y: this.qkv }, `l${l}.qkv`),
      rope: rope.bind({ x: this.qkv, positions: this.positions }),
      kvWrite: kvWrite.bind({ qkv: this.qkv, slots: this.slots, kv: this.kv[l] }),
      attention: attn.bind({
        q: this.qkv,
        kv: this.kv[l],
        rowPath: this.rowPath,
        positions: this.positions,
        pageTable: this.pageTable,
        out: this.attnOut,
      }),
      outProj: oMm.bind({ x: this.attnOut, w: lw.wo, y: this.hidden }, `l${l}.o`),
      mlpNorm: rms.bind({ x: this.hidden, weight: lw.mlpNorm, y: this.normed }),
      gateUp: guMm.bind({ x: this.normed, w: lw.wGateUp, y: this.gateUp }, `l${l}.gate_up`),
      swiglu: swiglu.bind({ input: this.gateUp, out: this.act }),
      down: downMm.bind({ x: this.act, w: lw.wDown, y: this.hidden }, `l${l}.down`),
    }));
    return {
      embed: embed.bind({ table: w.embed, ids: this.tokenIds, out: this.hidden }),
      layers,
      gather: embed.bind({ table: wholeTensor(this.hidden, this.maxRows, D), ids: this.sampleRow, out: this.sampleHidden }),
      finalNorm: rms.bind({ x: this.sampleHidden, weight: w.finalNorm, y: this.sampleNormed }),
      lmHead: new Matmul(gpu, { K: D, N: c.vocabSize, bias: false }).bind(
        { x: this.sampleNormed, w: w.lmHead, y: this.logits },
        'lm_head',
      ),
      tokenStats: new TokenStats(gpu, { vocab: c.vocabSize, topK, maxSamples: this.maxBranch }).bind({
        logits: this.logits,
        sampling: this.sampling,
        stats: this.stats,
      }),
    };
  }

  destroy(): void {
    destroyWeights(this.weights);
    this.ropeKernel.destroy();
    for (const b of [
      this.tokenIds, this.positions, this.rowPath, this.slots, this.pageTable, this.sampleRow, this.sampling,
      this.hidden, this.normed, this.qkv, this.attnOut, this.gateUp, this.act, this.sampleHidden,
      this.sampleNormed, this.logits, this.stats, this.pageScratch, ...this.kv,
    ])
      b.destroy();
    this.statsReadback.destroy();
  }
}
