// The model on the GPU, for every family the spec describes: weights, the paged KV pool, activation buffers sized for
// the largest step, and every kernel bound once, per layer, in the order the spec's residual layout runs them.
// `forward.ts` runs a StepPlan through `kernels`; nothing here is per family (DESIGN.md, "One forward for every family").
import type { Gpu } from '../gpu/device.js';
import { createStorage, createStorageFrom } from '../gpu/buffers.js';
import { Readback } from '../gpu/readback.js';
import { wholeTensor } from '../gpu/split_tensor.js';
import { Embedding } from '../kernels/embedding.js';
import { QEmbedding } from '../kernels/qembedding.js';
import { LayerNorm } from '../kernels/layernorm.js';
import { LogitCap } from '../kernels/logit_cap.js';
import { RmsNorm, type BoundRowNorm } from '../kernels/rmsnorm.js';
import { ModelAttention, perHeadKeyLimit } from './attention_ops.js';
import { handoffPairs, Projections } from './projections.js';
import { mlpBlockFor, mlpBlockOp } from './mlp_block_op.js';
import { hasIntDot } from '../kernels/weight_shader.js';
import type { BoundDecodeFused } from '../kernels/decode_fused.js';
import { buildDecodeFused, decodeFusedPlan } from './decode_fused.js';
import type { DecodeFusedMeasure } from './decode_fused_choice.js';
import { checkDecodeFused, decodeFusedMode } from './decode_fused_rule.js';
import { RopeKv } from '../kernels/rope_kv.js';
import { TokenStats } from '../kernels/token_stats.js';
import type { XPrologue } from '../kernels/x_prologue.js';
import { ROPE_EPILOGUE_STORAGE_BUFFERS, type YEpilogue } from '../kernels/y_epilogue.js';
import { splitFrequencies } from '../kernels/rope_kv.js';
import { tokenStatsLayout, type TokenStatsLayout } from '../sample/stats_record.js';
import { InvalidArgumentError } from '../errors.js';
import type { LlamaWeights } from './weights.js';
import { asModelWeights } from './from_llama.js';
import { destroyWeights, uploadWeights, type GpuLayerWeights, type GpuNorm, type GpuWeights } from './gpu_weights.js';
import { ropeInvFreq } from './rope_freq.js';
import { specSizes, type ModelSpec, type ModelWeights, type SpecSizes } from './spec.js';

export type { ModelActivations, ModelOptions, NamedOp, StepOp } from './model_options.js';
import type { ModelActivations, ModelOptions, NamedOp, StepOp } from './model_options.js';

export class GpuModel {
  readonly spec: ModelSpec;
  readonly sizes: SpecSizes;
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
  /**
   * RoPE and the KV write run in the q|k|v matmul (no q/k norm, and an adapter allowing 12 storage buffers per shader
   * stage); otherwise in their own rope_kv dispatch.
   */
  readonly ropeInQkv: boolean;
  /** How quantized projections take their input (ModelOptions.activations). */
  readonly activations: ModelActivations;

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
  readonly normed: GPUBuffer; // (maxRows, D) f32 a LayerNorm's output, the next projection's input (RMS norms are folded into it)
  readonly normed2: GPUBuffer; // (maxRows, D) f32 the MLP's LayerNorm output (parallel layout: computed before attention adds)
  readonly proj: GPUBuffer; // (maxRows, D) f32 a branch's output before its post-norm (sandwich, post-norm)
  readonly qkv: GPUBuffer; // (maxRows, qkvDim) f32
  readonly attnOut: GPUBuffer; // (maxRows, qDim) f32
  readonly gateUp: GPUBuffer; // (maxRows, 2F) f32 (F for a plain MLP); the down projection applies the activation
  /** (maxRows, F) f32 act(gate) * up for the register-blocked down projection of wide steps (CPU adapters); else null. */
  readonly mlpOut: GPUBuffer | null;
  readonly sampleHidden: GPUBuffer; // (maxSamples, D) f32 rows gathered by sampleRow
  readonly sampleNormed: GPUBuffer; // (maxSamples, D) f32 the final LayerNorm's output (an RMS final norm is folded into lm_head)
  readonly logits: GPUBuffer; // (maxSamples, V) f32
  readonly stats: GPUBuffer; // (maxSamples, statsStride) f32/u32
  /** One buffer per layer: (kvPages, 2, Hkv, pageSize, headDim) f32. */
  readonly kv: GPUBuffer[];
  /** One page of one layer, the middle stop of a page copy (WebGPU forbids copying a buffer onto itself). */
  readonly pageScratch: GPUBuffer;
  readonly statsReadback: Readback;
  /** The second stats staging buffer: pipelined steps alternate between the two (model/forward.ts submitStep). */
  readonly statsReadbackAlt: Readback;
  /** (D) f32 zeros: the bias of a LayerNorm that has none. */
  private readonly zeros: GPUBuffer;
  private readonly owners: { destroy(): void }[] = [];

  /** Every layer of a decode step in one dispatch, when this model may (decodeFused option), else null. */
  get decodeFused(): BoundDecodeFused | null {
    return this.fused.kept;
  }
  /** Why decodeFused is null (a sentence), or null when it is not. */
  get decodeFusedRefusal(): string | null {
    return this.fused.refusal;
  }
  /**
   * The fused step built but not yet used, waiting for measureDecodeFused (decode_fused_choice.ts) to time it against
   * the layered forward (mode 'measure'); null otherwise.
   */
  get decodeFusedPending(): BoundDecodeFused | null {
    return this.fused.pending?.op ?? null;
  }
  /** The load-time measurement that decided decodeFused (decode_fused_choice.ts), or null when none ran. */
  decodeFusedMeasured: DecodeFusedMeasure | null = null;
  private fused: { kept: BoundDecodeFused | null; pending: { op: BoundDecodeFused; weights: GPUBuffer } | null; refusal: string | null };

  /**
   * The most tokens a sampling row of the step being encoded draws (its StepSampling.nSamples): model/forward.ts
   * uploadPlan sets it, and token_stats takes its single-draw pipeline when it is 1. Until a plan sets it, maxBranch.
   */
  stepDraws: number;

  /** The attention of every layer: its variant (one per model), shared-prefix attention (`cascade`). */
  readonly attention: ModelAttention;

  /** Every op of one step in order: embedding, per layer the spec's ops, then the sampling rows' head. */
  readonly kernels: {
    embed: NamedOp[];
    layers: NamedOp[][];
    /** Encoded with the number of sampling rows. */
    head: NamedOp[];
    /** The same head reading rows 0..S-1 of the residual stream in place: for steps whose sampling rows are those. */
    headInPlace: NamedOp[];
  };

  constructor(
    readonly gpu: Gpu,
    weights: ModelWeights | LlamaWeights,
    options: ModelOptions = {},
  ) {
    const w = asModelWeights(weights);
    const s = (this.spec = w.spec);
    const z = (this.sizes = specSizes(s));
    const dev = gpu.device;
    this.maxRows = options.maxRows ?? 256;
    this.maxSamples = Math.min(options.maxSamples ?? 64, this.maxRows);
    this.pageSize = options.pageSize ?? 16;
    const topK = Math.min(options.topK ?? 20, s.vocabSize);
    this.maxBranch = options.maxBranch ?? 8;
    this.stepDraws = this.maxBranch;
    if (this.maxRows < 1 || this.pageSize < 1 || this.maxSamples < 1)
      throw new InvalidArgumentError('maxRows, maxSamples and pageSize must be positive integers.');
    this.activations = options.activations ?? 'q8';
    if (this.activations !== 'q8' && this.activations !== 'f32') {
      throw new InvalidArgumentError(`activations must be 'q8' or 'f32', got ${String(options.activations)}.`);
    }
    const fusedMode = decodeFusedMode(checkDecodeFused(options.decodeFused), gpu);
    const hd = s.attention.headDim;
    const Hkv = s.attention.nKvHeads;
    this.maxPagesPerPath = Math.ceil(s.maxSeqLen / this.pageSize);
    this.pageBytes = 2 * Hkv * this.pageSize * hd * 4;
    const perBinding = Math.floor(gpu.limits.maxStorageBufferBindingSize / this.pageBytes);
    const budget = options.kvBudgetBytes ?? 256 * 1024 * 1024;
    this.kvPages = options.kvPages ?? Math.max(this.maxPagesPerPath, Math.floor(budget / (this.pageBytes * s.nLayers)));
    if (this.kvPages > perBinding)
      throw new InvalidArgumentError(
        `kvPages=${this.kvPages} needs ${this.kvPages * this.pageBytes} bytes per layer, above this adapter's ` +
          `maxStorageBufferBindingSize (${gpu.limits.maxStorageBufferBindingSize}); use at most ${perBinding} pages.`,
      );

    // Without a q/k norm, RoPE and the KV write run in the q|k|v matmul's epilogue, which needs q and k rows uploaded
    // pair-adjacent; a q/k norm needs whole heads, which the rope_kv dispatch has and a matmul invocation has not; and
    // the fused kernel binds up to 12 storage buffers, more than some adapters allow per shader stage.
    this.ropeInQkv = s.attention.qkNorm === null && gpu.limits.maxStorageBuffersPerShaderStage >= ROPE_EPILOGUE_STORAGE_BUFFERS;
    this.weights = uploadWeights(gpu, w, { mode: options.weights, onProgress: options.onUpload, ropePairs: this.ropeInQkv });
    const R = this.maxRows;
    const S = this.maxSamples;
    const D = s.dim;
    const F = s.mlp.hiddenDim;
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
    const parallelMlpNorm = s.residual.layout === 'parallel' && !s.residual.sharedNorm && s.norm.kind === 'layer';
    const post = s.residual.layout === 'sandwich' || s.residual.layout === 'post-norm';
    this.normed2 = parallelMlpNorm ? u32(R * D, 'normed2 (R, D) f32') : this.normed;
    this.proj = post ? u32(R * D, 'proj (R, D) f32') : this.normed;
    this.qkv = u32(R * z.qkvDim, 'qkv (R, qkvDim) f32');
    this.attnOut = u32(R * z.qDim, 'attnOut (R, qDim) f32');
    this.gateUp = u32(R * (s.mlp.gated ? 2 : 1) * F, 'gateUp (R, 2F) f32');
    this.mlpOut = gpu.isCpu ? u32(R * F, 'mlpOut (R, F) f32') : null;
    this.sampleHidden = u32(S * D, 'sampleHidden (S, D) f32');
    this.sampleNormed = u32(S * D, 'sampleNormed (S, D) f32');
    this.logits = u32(S * s.vocabSize, 'logits (S, V) f32');
    this.statsLayout = tokenStatsLayout(topK, this.maxBranch);
    this.stats = u32(S * this.statsLayout.stride, 'stats (S, stride)');
    this.kv = Array.from({ length: s.nLayers }, (_, l) =>
      createStorage(dev, this.kvPages * this.pageBytes, `kv[${l}] (pages, 2, Hkv, pageSize, hd) f32`),
    );
    this.pageScratch = createStorage(dev, this.pageBytes, 'page scratch (2, Hkv, pageSize, hd) f32');
    this.statsReadback = new Readback(gpu, S * this.statsLayout.stride * 4, 'stats readback');
    this.statsReadbackAlt = new Readback(gpu, S * this.statsLayout.stride * 4, 'stats readback 2');
    this.zeros = createStorageFrom(dev, new Float32Array(D), 'zeros (D) f32');
    const a = s.attention;
    const longestKeys = Math.max(...s.layers.map((l) => Math.min(s.maxSeqLen, l.window ?? s.maxSeqLen)));
    const fusedBase = {
      spec: s, weights: this.weights, pageSize: this.pageSize, kvPages: this.kvPages, ropeInQkv: this.ropeInQkv,
      cascade: options.cascade ?? false, adapterRefusal: fusedMode.why,
    };
    // The fused step mirrors per-head attention. Adapters not known to be CPU ones default to split-keys, so where the
    // fused step is asked for there ('measure', 'any-adapter') and may run, attention is per-head (within its key
    // limit) unless the options force a variant: the layered forward must compute what the fused one does.
    const perHeadForFused =
      options.attentionVariant === undefined && fusedMode.mode !== 'off' && !gpu.isCpu && longestKeys <= perHeadKeyLimit(a.headDim, this.pageSize) &&
      'shape' in decodeFusedPlan(gpu, { ...fusedBase, attentionVariant: 'per-head' });
    this.attention = new ModelAttention(
      gpu,
      { nHeads: a.nHeads, kvHeads: a.nKvHeads, headDim: a.headDim, pageSize: this.pageSize, qStride: z.qkvDim, maxRows: R },
      { q: this.qkv, positions: this.positions, rowPath: this.rowPath, pageTable: this.pageTable, out: this.attnOut },
      {
        cascade: options.cascade ?? false, variant: perHeadForFused ? 'per-head' : options.attentionVariant, longestKeys,
        // Every out-projection on 8-bit x: the attention writes its output on 8 bits too (where its variant can), so the
        // out-projection needs no quantize dispatch (Projections xqReady).
        quantizeOut: this.activations === 'q8' && this.weights.layers.every((l) => l.wo.parts.every((p) => hasIntDot(p.type))),
      },
    );
    this.owners.push(this.attention);
    this.kernels = this.bindKernels(topK);
    const fusedContext = { ...fusedBase, attentionVariant: this.attention.variant };
    const plan = options.decodeFused === false ? { refusal: 'turned off (decodeFused: false)' } : decodeFusedPlan(gpu, fusedContext);
    if ('shape' in plan) {
      const f = buildDecodeFused(gpu, fusedContext, plan.shape, {
        tokenIds: this.tokenIds, positions: this.positions, slots: this.slots, rowPath: this.rowPath, pageTable: this.pageTable, hidden: this.hidden, kv: this.kv,
      });
      this.owners.push(f.op, f.weights);
      this.fused =
        fusedMode.mode === 'measure'
          ? { kept: null, pending: f, refusal: 'not measured yet (decodeFused: measure; Engine.fromWeights measures it at load)' }
          : { kept: f.op, pending: null, refusal: null };
    } else {
      this.fused = { kept: null, pending: null, refusal: plan.refusal };
    }
  }

  /**
   * Ends a measurement (decode_fused_choice.ts): keeps the pending fused step, or frees it and its packed weights and
   * records `why` as the refusal.
   */
  settleDecodeFused(keep: boolean, why: string, measured: DecodeFusedMeasure): void {
    const p = this.fused.pending;
    if (!p) throw new InvalidArgumentError('settleDecodeFused: no fused decode step is waiting for a measurement.');
    this.decodeFusedMeasured = measured;
    if (keep) this.fused = { kept: p.op, pending: null, refusal: null };
    else {
      for (const o of [p.op, p.weights]) this.owners.splice(this.owners.indexOf(o), 1);
      p.op.destroy();
      p.weights.destroy();
      this.fused = { kept: null, pending: null, refusal: why };
    }
  }

  /** The spec, under the name the engine and controllers read (maxSeqLen, vocabSize, eosTokenIds, nLayers). */
  get config(): ModelSpec {
    return this.spec;
  }

  private bindKernels(topK: number): GpuModel['kernels'] {
    const gpu = this.gpu;
    const s = this.spec;
    const z = this.sizes;
    const a = s.attention;
    const w = this.weights;
    const D = s.dim;
    const F = s.mlp.hiddenDim;
    const layout = s.residual.layout;
    const op = (name: string, k: object, run: StepOp, kind: NamedOp['kind'] = 'other'): NamedOp => ({
      name,
      kind,
      run,
      destroy: () => (k as { destroy?(): void }).destroy?.(),
    });

    // Norm kernels are made on first use: a model whose norms are all folded into matmuls compiles none.
    const norms = new Map<boolean, RmsNorm | LayerNorm>();
    const normKernel = (accumulate: boolean) => {
      let k = norms.get(accumulate);
      if (!k) {
        const o = { dim: D, eps: s.norm.eps, accumulate };
        k = s.norm.kind === 'rms' ? new RmsNorm(gpu, o) : new LayerNorm(gpu, o);
        norms.set(accumulate, k);
      }
      return k;
    };
    /** A norm of x into y (y += with accumulate), of the spec's kind. */
    const norm = (n: GpuNorm, x: GPUBuffer, y: GPUBuffer, accumulate: boolean, label: string): BoundRowNorm => {
      const k = normKernel(accumulate);
      return k instanceof RmsNorm ? k.bind({ x, weight: n.weight, y }, label) : k.bind({ x, weight: n.weight, bias: n.bias ?? this.zeros, y }, label);
    };
    const normOp = (n: GpuNorm, x: GPUBuffer, y: GPUBuffer, accumulate: boolean, label: string): NamedOp => {
      const k = norm(n, x, y, accumulate, label);
      return op(label, k, (pass, R) => k.encode(pass, R));
    };

    const projections = new Projections(gpu, s, {
      activations: this.activations,
      maxRows: this.maxRows,
      xWidth: Math.max(D, z.qDim, F),
      gateUp: this.gateUp,
      mlpOut: this.mlpOut,
    });
    this.owners.push(projections);
    const mm = projections.matmul.bind(projections);
    // RMS norms before a projection are folded into it (each matmul invocation normalises the rows of x it reads);
    // LayerNorm (mean, variance and bias) keeps its own dispatch into `normed`.
    const fold = s.norm.kind === 'rms';
    const rmsOf = (n: GpuNorm) => ({ prologue: { kind: 'rms', eps: s.norm.eps } as XPrologue, norm: n.weight });

    const ropeKv = this.ropeInQkv
      ? null
      : new RopeKv(gpu, {
          nHeads: a.nHeads,
          kvHeads: a.nKvHeads,
          headDim: a.headDim,
          pageSize: this.pageSize,
          qkvStride: z.qkvDim,
          qkNorm: a.qkNorm ?? 'none',
          eps: s.norm.eps,
        });
    if (ropeKv) this.owners.push(ropeKv);
    const gateUpN = (s.mlp.gated ? 2 : 1) * F;
    const only = (m: GpuLayerWeights['wo']) => m.parts[0].chunks[0].buffer;
    const post = layout === 'sandwich' || layout === 'post-norm';
    type Input = { x: GPUBuffer; pro?: { prologue: XPrologue; norm: GPUBuffer } };

    // Wide steps of small pre-norm models on llvmpipe: o, gate|up and down in one dispatch (model/mlp_block_op.ts).
    const mlpBlock = mlpBlockFor(gpu, s, w.layers);
    // One-row steps of 8-bit models on llvmpipe: o and down hand the residual stream over to gate|up and the next
    // q|k|v on 8 bits, which skip their quantize dispatch (kernels/x8_handoff.ts; F32 matrices, which mlp_block
    // needs, never hand over).
    const handoff = handoffPairs(gpu, s, w.layers, this.activations);
    const layers = w.layers.map((lw, l): NamedOp[] => {
      const ls = s.layers[l];
      const ops: NamedOp[] = [];
      const p = `l${l}.`;
      /** A projection's input: n(h) folded into it (RMS), n(h) in `into` by a norm dispatch (LayerNorm), or h itself. */
      const normed = (n: GpuNorm | null, into: GPUBuffer, label: string): Input => {
        if (!n) return { x: this.hidden };
        if (fold) return { x: this.hidden, pro: rmsOf(n) };
        ops.push(normOp(n, this.hidden, into, false, label));
        return { x: into };
      };
      const attnIn = normed(lw.attnNorm, this.normed, `${p}attn_norm`);
      // Parallel: the MLP reads h before attention adds to it. Its LayerNorm runs now (or is the attention's, shared);
      // with an RMS norm its folded gate|up projection runs right after q|k|v, before the out-projection adds.
      let mlpIn: Input | null = null;
      if (layout === 'parallel') {
        if (fold) mlpIn = { x: this.hidden, pro: rmsOf((lw.mlpNorm ?? lw.attnNorm)!) };
        else if (lw.mlpNorm) mlpIn = normed(lw.mlpNorm, this.normed2, `${p}mlp_norm`);
        else mlpIn = attnIn;
      }
      // On llvmpipe's one-row 8-bit body gate|up also writes down's x on 8 bits (Projections.actEpilogueFor).
      const actQ8 = projections.actEpilogueFor(lw.wGateUp, lw.wDown);
      const gateUp = (i: Input, handoffIn = false) =>
        mm(`${p}gate_up`, D, gateUpN, lw.wGateUp, lw.bGateUp, i.x, this.gateUp, false, { ...i.pro, ...(actQ8 ? { epilogue: actQ8 } : {}), handoffIn });
      // x handed over by the previous layer's down projection (handoffPairs: only where its rms prologue folds in).
      const qkvHandoff = l > 0 && handoff[l - 1].down && attnIn.pro !== undefined;
      const invFreq = ls.rope ? ropeInvFreq(ls.rope) : [];
      const ropeScale = ls.rope?.attentionFactor ?? 1;
      if (ropeKv) {
        ops.push(mm(`${p}qkv`, D, z.qkvDim, lw.wqkv, lw.bqkv, attnIn.x, this.qkv, false, { ...attnIn.pro, handoffIn: qkvHandoff }));
        if (layout === 'parallel' && fold) ops.push(gateUp(mlpIn!));
        const rk = ropeKv.bind(
          { qkv: this.qkv, positions: this.positions, slots: this.slots, kv: this.kv[l], ...(lw.qNorm && lw.kNorm ? { qNorm: lw.qNorm, kNorm: lw.kNorm } : {}) },
          { invFreq, scale: ropeScale },
          `${p}rope_kv`,
        );
        ops.push(op(`${p}rope_kv`, rk, (pass, R) => rk.encode(pass, R)));
      } else {
        // RoPE and the KV write in the q|k|v epilogue (kernels/y_epilogue.ts), on the pair-ordered q and k rows.
        const freq = createStorageFrom(gpu.device, splitFrequencies(invFreq), `${p}rope freq (pairs, 4) f32`);
        this.owners.push(freq);
        const epilogue: YEpilogue = {
          kind: 'rope_kv', qDim: z.qDim, kvDim: (z.qkvDim - z.qDim) / 2, headDim: a.headDim, rotaryHalf: invFreq.length,
          pageSize: this.pageSize, pages: this.kvPages, scale: ropeScale,
        };
        const rope = { positions: this.positions, slots: this.slots, freq, kv: this.kv[l] };
        ops.push(mm(`${p}qkv`, D, z.qkvDim, lw.wqkv, lw.bqkv, attnIn.x, this.qkv, false, { ...attnIn.pro, epilogue, rope, handoffIn: qkvHandoff }));
        if (layout === 'parallel' && fold) ops.push(gateUp(mlpIn!));
      }
      const xq = this.attention.quantizesOut ? projections.x8Scratch() : undefined;
      ops.push(this.attention.bind(this.kv[l], { window: ls.window ?? 0, scale: a.queryScale, softcap: a.softCap ?? 0 }, `${p}attention`, xq));
      // Out-projection: straight into the residual stream, or into `proj` for the post-norm to add. Its x is on 8 bits
      // in the shared scratch already when the attention wrote it there.
      const oHandoff = handoff[l].o && !post && lw.mlpNorm ? lw.mlpNorm.weight : undefined;
      const oExtras = { xqReady: xq !== undefined, ...(oHandoff ? { handoffOut: oHandoff } : {}) };
      if (post && lw.attnPostNorm) {
        ops.push(mm(`${p}o`, z.qDim, D, lw.wo, lw.bo, this.attnOut, this.proj, false, oExtras));
        ops.push(normOp(lw.attnPostNorm, this.proj, this.hidden, true, `${p}attn_post_norm`));
      } else {
        ops.push(mm(`${p}o`, z.qDim, D, lw.wo, lw.bo, this.attnOut, this.hidden, true, oExtras));
      }
      if (layout !== 'parallel') ops.push(gateUp(normed(lw.mlpNorm, this.normed, `${p}mlp_norm`), oHandoff !== undefined));
      else if (!fold) ops.push(gateUp(mlpIn!));
      const next = w.layers[l + 1];
      const downHandoff = handoff[l].down && !post && next?.attnNorm ? next.attnNorm.weight : undefined;
      const down = (y: GPUBuffer, accumulate: boolean) => projections.down(`${p}down`, lw.wDown, lw.bDown, y, accumulate, actQ8 !== null, downHandoff);
      if (post && lw.mlpPostNorm) {
        ops.push(down(this.proj, false));
        ops.push(normOp(lw.mlpPostNorm, this.proj, this.hidden, true, `${p}mlp_post_norm`));
      } else {
        ops.push(down(this.hidden, true));
      }
      const tail = ops.slice(-3).map((o) => o.name.slice(p.length)).join();
      if (mlpBlock && tail === 'o,gate_up,down') {
        // The last three ops are o, gate_up and down (no post-norms, sequential layout: mlpBlockFor).
        const layered = ops.splice(ops.length - 3, 3);
        const bound = mlpBlock.bind(
          { attnOut: this.attnOut, wo: only(lw.wo), hidden: this.hidden, norm: lw.mlpNorm!.weight, wGateUp: only(lw.wGateUp), gateUp: this.gateUp, wDown: only(lw.wDown) },
          `${p}mlp_block`,
        );
        ops.push(mlpBlockOp(`${p}o+mlp`, bound, layered, s));
      }
      return ops;
    });

    // Token (and learned position) embeddings gathered from their tables in the stored type.
    const embedding = new Embedding(gpu, { dim: D });
    const embed: NamedOp[] = [];
    const tokenTable = new QEmbedding(gpu, w.embed.type, D);
    const ek = tokenTable.bind({ table: w.embed, ids: this.tokenIds, out: this.hidden }, 'embed', { scale: s.embedScale });
    embed.push(op('embed', ek, (pass, R) => ek.encode(pass, R)));
    if (w.posEmbed) {
      const pk = new QEmbedding(gpu, w.posEmbed.type, D).bind({ table: w.posEmbed, ids: this.positions, out: this.hidden }, 'pos_embed', { accumulate: true });
      embed.push(op('pos_embed', pk, (pass, R) => pk.encode(pass, R)));
    }

    // The head over the sampling rows gathered into sampleHidden, or (headInPlace) read where they are when they are
    // the step's first rows in order (decode steps): the same rows and kernels, one dispatch fewer.
    const gk = embedding.bind({ table: wholeTensor(this.hidden, this.maxRows, D), ids: this.sampleRow, out: this.sampleHidden }, 'gather');
    const logitsOf = (x: GPUBuffer, suffix: string): NamedOp[] =>
      fold
        ? [mm(`lm_head${suffix}`, D, s.vocabSize, w.lmHead, null, x, this.logits, false, rmsOf(w.finalNorm))]
        : [normOp(w.finalNorm, x, this.sampleNormed, false, `final_norm${suffix}`), mm(`lm_head${suffix}`, D, s.vocabSize, w.lmHead, null, this.sampleNormed, this.logits, false)];
    const after: NamedOp[] = [];
    if (s.logitScale !== 1 || s.finalSoftCap !== null) {
      const ck = new LogitCap(gpu, { scale: s.logitScale, cap: s.finalSoftCap }).bind(this.logits, 'logit_cap');
      after.push(op('logit_cap', ck, (pass, S) => ck.encode(pass, S * s.vocabSize)));
    }
    const tk = new TokenStats(gpu, { vocab: s.vocabSize, topK, maxSamples: this.maxBranch }).bind({
      logits: this.logits,
      sampling: this.sampling,
      stats: this.stats,
    });
    after.push(op('token_stats', tk, (pass, S) => tk.encode(pass, S, this.stepDraws), 'token_stats'));
    const head = [op('gather', gk, (pass, S) => gk.encode(pass, S)), ...logitsOf(this.sampleHidden, ''), ...after];
    const inPlace = logitsOf(this.hidden, ':in_place');
    this.owners.push(...inPlace);
    const headInPlace = [...inPlace, ...after];
    return { embed, layers, head, headInPlace };
  }

  destroy(): void {
    destroyWeights(this.weights);
    for (const o of [...this.kernels.embed, ...this.kernels.layers.flat(), ...this.kernels.head, ...this.owners]) o.destroy();
    const shared = new Set([this.normed]);
    for (const b of [
      this.tokenIds, this.positions, this.rowPath, this.slots, this.pageTable, this.sampleRow, this.sampling,
      this.hidden, this.normed, this.normed2, this.proj, this.qkv, this.attnOut, this.gateUp, this.sampleHidden,
      this.sampleNormed, this.logits, this.stats, this.pageScratch, this.zeros, ...this.kv, ...(this.mlpOut ? [this.mlpOut] : []),
    ]) {
      if (b === this.normed && !shared.delete(b)) continue; // normed2 / proj alias it when unused
      b.destroy();
    }
    this.statsReadback.destroy();
    this.statsReadbackAlt.destroy();
  }
}
