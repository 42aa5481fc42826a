// A model's projections bound to their kernels: y (+)= f(x) W^T (+ b) for each part of W in its storage type, and the
// MLP's down projection with its activation. One kernel per distinct (type, K, N, bias, accumulate, prologue,
// epilogue), shared by every layer; one 8-bit x scratch shared by every 8-bit projection (they run one after another,
// each quantizing its own x first), a second one row long that a one-row gate|up projection with the act_q8
// epilogue writes the down projection's x into (actEpilogueFor), and the x hand-off (kernels/x8_handoff.ts) through
// which a one-row o or down projection passes the next norm's quantized x to the matmul after it (handoffPairs).
// model/gpu_model.ts binds a model's ops through this.
import type { Gpu } from '../gpu/device.js';
import { Matmul, type MatmulVariant } from '../kernels/matmul.js';
import { MlpAct } from '../kernels/mlp_act.js';
import { actQ8Runs, canReadHandoff, canWriteHandoff, QMatmul } from '../kernels/qmatmul.js';
import { createQuantizedX, type QuantizedX } from '../kernels/quantize_x8.js';
import { createX8Handoff, type X8Handoff } from '../kernels/x8_handoff.js';
import { hasIntDot } from '../kernels/weight_shader.js';
import { PLAIN, prologueKey, type XPrologue } from '../kernels/x_prologue.js';
import { epilogueKey, NO_EPILOGUE, type RopeBuffers, type YEpilogue } from '../kernels/y_epilogue.js';
import type { GpuLayerWeights, GpuMatrix } from './gpu_weights.js';
import type { ModelActivations, NamedOp } from './model_options.js';
import type { ModelSpec } from './spec.js';

/**
 * Multiply-adds (M * K * N) of a register-blocked down projection from which it reads act(gate) * up from an mlp_act
 * dispatch rather than applying the activation as it loads gate and up (Projections.down). The fused form loads x
 * twice per row block, about M * K * N / 32 extra vec4 loads; the split costs a dispatch (~30 us on llvmpipe) and a
 * pass over gate|up. Measured on llvmpipe (scratch timings, 2026-11-30, load average ~5, CPU time per layer):
 * stories260K's down projection (K = 172, N = 64) fused 127 against split 153 us at M = 16, 83 against 115 at M = 8,
 * even at M = 64 (0.7M: 368 against 372); SmolLM2-135M's (K = 1536, N = 576: 14M at M = 16) split 3.6-3.8 against
 * fused 5.0-5.6 ms.
 */
export const DOWN_SPLIT_MIN_WORK = 2 ** 19;

/** Whether a wide down projection of M rows, K = hidden, N = dim takes the mlp_act split (DOWN_SPLIT_MIN_WORK). */
export function downSplits(M: number, hidden: number, dim: number): boolean {
  return M * hidden * dim >= DOWN_SPLIT_MIN_WORK;
}

/**
 * Which residual writes of a pre-norm RMS model hand x over to the matmul after them at one-row steps
 * (kernels/x8_handoff.ts): per layer, o -> gate|up (the MLP norm's input) and down -> the next layer's q|k|v (its
 * attention norm's input). A writer needs one 8-bit part in one chunk writing the residual stream, a reader an RMS norm
 * folded in and some 8-bit part (canWriteHandoff, canReadHandoff: llvmpipe). The last down projection writes none:
 * the LM head (model/gpu_model.ts logitsOf) folds the final norm into its own x prologue over the sampling rows. On a
 * decode step it reads those rows in place, so it could read the last down's hand-off instead and save its quantize
 * dispatch (one per step); not done.
 */
export function handoffPairs(gpu: Gpu, spec: ModelSpec, layers: readonly GpuLayerWeights[], activations: ModelActivations): { o: boolean; down: boolean }[] {
  const on = activations === 'q8' && spec.norm.kind === 'rms' && spec.residual.layout === 'sequential' && spec.dim % 32 === 0;
  const writes = (m: GpuMatrix) => m.parts.length === 1 && m.parts[0].chunks.length === 1 && canWriteHandoff(gpu, m.parts[0].type);
  const reads = (m: GpuMatrix) => m.parts.some((p) => canReadHandoff(gpu, p.type));
  return layers.map((l, i) => {
    const next = layers[i + 1];
    return {
      o: on && l.mlpNorm !== null && writes(l.wo) && reads(l.wGateUp),
      down: on && next !== undefined && next.attnNorm !== null && writes(l.wDown) && reads(next.wqkv),
    };
  });
}

/** What a projection may do around its matmul: an x prologue (with an RMS norm's weight), a y epilogue (RoPE + KV). */
export interface ProjectionExtras {
  prologue?: XPrologue;
  norm?: GPUBuffer;
  epilogue?: YEpilogue;
  rope?: RopeBuffers;
  /** Only the prefill (register-blocked) variant is compiled: for a matmul encoded only for wide steps. */
  prefillOnly?: boolean;
  /**
   * x is on 8 bits in x8Scratch() already when this projection runs (the attention wrote it there for the
   * out-projection): its 8-bit parts skip the quantize dispatch (QMatmul xqReady).
   */
  xqReady?: boolean;
  /** The 8-bit x scratch this projection's 8-bit parts read (default x8Scratch()). */
  xq?: QuantizedX;
  /**
   * At one row the 8-bit parts read x (RMSNorm of the residual stream, the rms prologue) as the matmul before
   * handed it over in handoff() instead of quantizing it (kernels/x8_handoff.ts; the model pairs writer and reader).
   */
  handoffIn?: boolean;
  /**
   * At one row this matmul (one 8-bit part in one chunk, y the residual stream) hands y over in handoff(), quantized
   * through the next matmul's RMS norm weight given here.
   */
  handoffOut?: GPUBuffer;
}

export class Projections {
  private readonly matmuls = new Map<string, Matmul | QMatmul>();
  private xq: QuantizedX | null = null;
  private actX: QuantizedX | null = null;
  private hand: X8Handoff | null = null;
  private readonly mlpAct: MlpAct | null;

  constructor(
    private readonly gpu: Gpu,
    private readonly spec: ModelSpec,
    private readonly o: {
      activations: ModelActivations;
      maxRows: number;
      /** The widest x an 8-bit projection quantizes (max of D, qDim, F). */
      xWidth: number;
      gateUp: GPUBuffer; // (maxRows, 2F) f32 gate|up, the down projection's input
      /** (maxRows, F) f32 act(gate) * up for wide steps on CPU adapters (see down()); null elsewhere. */
      mlpOut: GPUBuffer | null;
    },
  ) {
    const m = spec.mlp;
    this.mlpAct = o.mlpOut ? new MlpAct(gpu, { hidden: m.hiddenDim, act: m.activation, gated: m.gated }) : null;
  }

  /** The 8-bit x scratch every 8-bit projection shares ((maxRows, xWidth) values, kernels/quantize_x8.ts). */
  x8Scratch(): QuantizedX {
    return this.scratch();
  }

  private scratch(): QuantizedX {
    this.xq ??= createQuantizedX(this.gpu, this.o.maxRows, this.o.xWidth, 'x on 8 bits');
    return this.xq;
  }

  /** The residual stream's x hand-off (dim values, one row), shared by every writer and reader pair. */
  handoff(): X8Handoff {
    this.hand ??= createX8Handoff(this.gpu, this.spec.dim, 'x hand-off');
    return this.hand;
  }

  /** Down's x on 8 bits as a one-row act_q8 gate|up projection writes it: (1, F) values. */
  private actScratch(): QuantizedX {
    this.actX ??= createQuantizedX(this.gpu, 1, this.spec.mlp.hiddenDim, "down's x on 8 bits (act_q8)");
    return this.actX;
  }

  /**
   * The act_q8 epilogue for a layer's gate|up projection, or null where it keeps today's path: a gated MLP on 8-bit
   * activations whose gate|up is one part in one chunk of a type the one-row llvmpipe body runs with it (qmatmul.ts
   * actQ8Runs), F whole 32-value blocks, and a down projection on 8-bit x in every part. With it a one-row step's
   * gate|up writes down's x on 8 bits (kernels/act_q8_epilogue.ts), and down (made with actX: true) skips its
   * quantize_x8 dispatch at one row: the same bits (test/kernels/qmatmul_act_q8.test.ts).
   */
  actEpilogueFor(wGateUp: GpuMatrix, wDown: GpuMatrix): YEpilogue | null {
    const m = this.spec.mlp;
    if (!m.gated || m.hiddenDim % 32 !== 0 || this.o.activations !== 'q8') return null;
    if (wGateUp.parts.length !== 1 || wGateUp.parts[0].chunks.length !== 1 || !actQ8Runs(this.gpu, wGateUp.parts[0].type)) return null;
    if (!wDown.parts.every((p) => hasIntDot(p.type))) return null;
    return { kind: 'act_q8', act: m.activation, features: m.hiddenDim };
  }

  private kernelFor(key: string, make: () => Matmul | QMatmul): Matmul | QMatmul {
    let m = this.matmuls.get(key);
    if (!m) {
      m = make();
      this.matmuls.set(key, m);
    }
    return m;
  }

  /**
   * y (+)= f(x) W^T (+ b), one matmul per part of W (its storage type; F32 parts on kernels/matmul.ts, whose vec4 loads
   * read f32 fastest for M > 1 and at M = 1 keep a path's bits independent of its batch (the stored-type dot step,
   * faster at M = 1 in bench/RESULTS.md "Weights", rounds differently and broke test/model/seeds.test.ts); every
   * other type on the stored-type kernel). The parts write disjoint columns of y, each with its own bias entries, so
   * splitting changes no value. f is the x prologue (kernels/x_prologue.ts): an RMS norm folded in (its weight as
   * `norm`), the MLP activation, or nothing. x (M, K), y (M, N) f32.
   */
  matmul(name: string, K: number, N: number, W: GpuMatrix, bias: GPUBuffer | null, x: GPUBuffer, y: GPUBuffer, accumulate: boolean, extras: ProjectionExtras = {}): NamedOp {
    const { prologue = PLAIN, norm, epilogue = NO_EPILOGUE, rope, prefillOnly = false, xqReady = false, handoffIn = false, handoffOut } = extras;
    const actOut = epilogue.kind === 'act_q8' ? { actOut: this.actScratch() } : {};
    // Parts of one matrix read the same x through the same prologue: on 8-bit x the first quantizes it for all.
    let quantized = xqReady;
    const bound = W.parts.map((part, i) => {
      const key = `${part.type},${K},${N},${bias !== null},${accumulate},${prologueKey(prologue)},${epilogueKey(epilogue)}${prefillOnly ? ',prefill' : ''}`;
      const o = { K, N, bias: bias !== null, accumulate, prologue, epilogue, ...(prefillOnly ? { variants: ['prefill' as const] } : {}) };
      const label = W.parts.length > 1 ? `${name}[${part.type} ${i}]` : name;
      const b = { x, w: part, ...(bias ? { bias } : {}), y, ...(norm ? { norm } : {}), ...(rope ? { rope } : {}) };
      // One body at every M, so a path's logits do not depend on its batch, as the engine promises: 8-bit x for the
      // types with an integer step (kernels/qmatmul.ts), else f32 x through the register-blocked body (the
      // dot-step kernel at M = 1 only rounds differently).
      if (part.type !== 'F32') {
        const q8 = this.o.activations === 'q8' && hasIntDot(part.type);
        // x hand-offs (kernels/x8_handoff.ts) on the 8-bit parts only: the others read the f32 x through their prologue.
        const h = { handoffIn: q8 && handoffIn, handoffOut: q8 && handoffOut !== undefined };
        const k = this.kernelFor(`${key},${q8},${h.handoffIn},${h.handoffOut}`, () => new QMatmul(this.gpu, { type: part.type, ...o, activations: q8 ? 'q8' : 'f32-blocked', ...h })) as QMatmul;
        const handoffs = { ...(h.handoffIn ? { handoffIn: this.handoff() } : {}), ...(h.handoffOut && handoffOut ? { handoffOut: { to: this.handoff(), norm: handoffOut } } : {}) };
        const bq = k.bind(q8 ? { ...b, ...actOut, xq: extras.xq ?? this.scratch(), xqReady: quantized, ...handoffs } : { ...b, ...actOut }, label);
        // The down projection made with actX trusts this: a one-row step writes its x.
        if (epilogue.kind === 'act_q8' && !bq.writesActX(1)) throw new Error(`${label}: the act_q8 epilogue does not run at one row.`);
        quantized ||= q8;
        return bq;
      }
      return (this.kernelFor(key, () => new Matmul(this.gpu, o)) as Matmul).bind(b, label);
    });
    return {
      name,
      kind: 'matmul',
      run: (pass, R) => bound.forEach((k) => k.encode(pass, R)),
      destroy: () => bound.forEach((k) => k.destroy()),
      variantFor: (M: number) => bound[0].variantFor(M),
    };
  }

  /**
   * The down projection y (+)= act(gate) * up W^T (+ b), reading gate|up (M, 2F) and writing y (M, D).
   * It applies the activation as it reads gate|up (one dispatch fewer per layer), except in the register-blocked
   * variant of CPU adapters (wide steps: prompt chunks, many paths), where each invocation would load gate and up for
   * each of its 8 rows, twice the x loads of a plain x: there one mlp_act dispatch writes act(gate) * up to mlpOut
   * first and the down projection reads it plainly (at 16 rows on llvmpipe, SmolLM2-135M's down projection 5.0-5.6 ->
   * 3.6-3.8 ms of CPU per layer). Both compute act with the same WGSL (shaders/activation.wgsl), so a path's bits do
   * not depend on which one its step took. A down projection on 8-bit activations keeps the fused form at every M
   * (its quantize_x8 pass reads each gate and up once), and so does a small one: below DOWN_SPLIT_MIN_WORK the split's
   * extra dispatch costs more than the fused form's extra loads (downSplits).
   */
  down(name: string, W: GpuMatrix, bias: GPUBuffer | null, y: GPUBuffer, accumulate: boolean, actX = false, handoffOut?: GPUBuffer): NamedOp {
    const m = this.spec.mlp;
    const [F, D] = [m.hiddenDim, this.spec.dim];
    const actPrologue: XPrologue = { kind: 'act', act: m.activation, gated: m.gated };
    // handoffOut (ProjectionExtras): on the matmul that runs the one-row steps.
    const hand = handoffOut ? { handoffOut } : {};
    const fused = this.matmul(name, F, D, W, bias, this.o.gateUp, y, accumulate, { prologue: actPrologue, ...(actX ? {} : hand) });
    if (actX) {
      // One-row steps read the x the gate|up projection's act_q8 epilogue wrote (actEpilogueFor); wider ones quantize.
      const ready = this.matmul(name, F, D, W, bias, this.o.gateUp, y, accumulate, { prologue: actPrologue, xq: this.actScratch(), xqReady: true, ...hand });
      return {
        name,
        kind: 'matmul',
        run: (pass, R, maxPages) => (R === 1 ? ready : fused).run(pass, R, maxPages),
        destroy: () => {
          fused.destroy();
          ready.destroy();
        },
        variantFor: fused.variantFor,
      };
    }
    const int8 = this.o.activations === 'q8' && W.parts.every((p) => hasIntDot(p.type));
    if (!this.mlpAct || !this.o.mlpOut || int8) return fused;
    const act = this.mlpAct.bind({ input: this.o.gateUp, out: this.o.mlpOut }, `${name}:act`);
    const plain = this.matmul(name, F, D, W, bias, this.o.mlpOut, y, accumulate, { prefillOnly: true });
    const split = (M: number) => fused.variantFor?.(M) === ('prefill' satisfies MatmulVariant) && downSplits(M, F, D);
    return {
      name,
      kind: 'matmul',
      run: (pass, R, maxPages) => {
        if (!split(R)) return fused.run(pass, R, maxPages);
        act.encode(pass, R);
        plain.run(pass, R, maxPages);
      },
      destroy: () => {
        fused.destroy();
        act.destroy();
        plain.destroy();
      },
      variantFor: fused.variantFor,
    };
  }

  /** The kernels and the 8-bit scratch (the bound ops are destroyed by their owners). */
  destroy(): void {
    for (const m of this.matmuls.values()) m.destroy();
    for (const s of [this.xq, this.actX, this.hand]) {
      s?.xq.destroy();
      s?.xs.destroy();
    }
  }
}
