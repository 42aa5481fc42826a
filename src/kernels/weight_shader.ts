// Kernels that read weights in their storage type are a body shader (shaders/qmatmul.wgsl, qembedding.wgsl) composed
// with shaders/wload_common.wgsl and the type's weight-loading snippet, shaders/wload_<type>.wgsl. Their pipelines are
// keyed by op, storage type and blocking, so every (op, type, blocking) compiles once per device.
import type { Gpu } from '../gpu/device.js';
import type { UniformLayout } from '../gpu/uniform.js';
import type { StorageType } from '../weights/types.js';
import { tileRows } from '../weights/tiles.js';
import { WGSL } from './wgsl.gen.js';
import { prologueKey, xPrologueSource, PLAIN, type XPrologue } from './x_prologue.js';
import { oneRowHooksSource } from './act_q8_epilogue.js';
import { epilogueKey, NO_EPILOGUE, yEpilogueSource, type YEpilogue } from './y_epilogue.js';
import { xsSource, yNextSource } from './x8_handoff.js';

export type WeightOp = 'qmatmul' | 'qmatmul_decode' | 'qmatmul_q8' | 'qembedding';

/** The typed key of a weight-reading pipeline; its string form goes to the pipeline cache. */
export interface WeightKernelKey {
  op: WeightOp;
  type: StorageType;
  /** The blocking or variant name (decode1x2, prefill8x4, gather...) */
  config: string;
  constants: Record<string, number>;
  /** The matmul bodies' x prologue (kernels/x_prologue.ts); default plain. */
  prologue?: XPrologue;
  /** The matmul bodies' y epilogue (kernels/y_epilogue.ts); default none. */
  epilogue?: YEpilogue;
  /**
   * The 8-bit bodies' x hand-off (kernels/x8_handoff.ts): `readEps` reads x as a writer left it (the RMS prologue's
   * eps), `write` writes one in the epilogue (qmatmul_q8.wgsl at one row in 8-invocation workgroups). Default neither.
   */
  handoff?: Handoff;
}

/** See WeightKernelKey.handoff. */
export interface Handoff {
  readEps?: number;
  write?: boolean;
}

function part(name: string): string {
  const s = WGSL[name];
  if (s === undefined) throw new Error(`shaders/${name}.wgsl is missing (run scripts/gen-shaders.mjs)`);
  return s;
}

/**
 * Whether the decode body (qmatmul_decode.wgsl) reads `type` with rows of K values: the type has a dot step
 * (shaders/wdot_<type>.wgsl), and for F16 and BF16, whose step is one 16-byte load of 8 values, K % 8 == 0.
 */
export function hasDotStep(type: StorageType, K: number): boolean {
  if ((type === 'F16' || type === 'BF16') && K % 8 !== 0) return false;
  return WGSL[`wdot_${type.toLowerCase()}`] !== undefined;
}

/**
 * Whether the 8-bit-activation bodies read `type`: qmatmul_q8.wgsl for the types with an integer dot step
 * (shaders/idot_<type>.wgsl: Q8_0, Q4_0, Q4_1, Q5_1, Q4_K, Q6_K), qmatmul_q8_t8.wgsl for Q5_0 in 8-row tiles
 * (src/weights/tiles.ts).
 */
export function hasIntDot(type: StorageType): boolean {
  return tileRows(type) > 1 || WGSL[`idot_${type.toLowerCase()}`] !== undefined;
}

/**
 * The WGSL of `op` for weights of `type`: uniform struct, shared helpers, the type's snippet, the body, and for the
 * matmul bodies that read x in f32 the x prologue (x as a vec4 view at binding 1, the norm weight at binding 6) and the
 * y epilogue (bindings 7-10); the 8-bit body reads quantize_x8's words (1) and scales (6) and has the y epilogue.
 */
export function weightShaderSource(
  op: WeightOp,
  type: StorageType,
  layout: UniformLayout<string>,
  prologue: XPrologue = PLAIN,
  epilogue: YEpilogue = NO_EPILOGUE,
  handoff: Handoff = {},
): string {
  const t = type.toLowerCase();
  // The decode body reads W through the type's dot step (wdot_<type>.wgsl) on top of its block layout (wload_<type>),
  // the 8-bit body through its integer step (idot_<type>.wgsl) and the in-register quantization of x (xq8.wgsl). A
  // type held in 8-row tiles has an 8-bit body of its own, which does its own steps.
  const int8 = op === 'qmatmul_q8';
  const tiled = int8 && tileRows(type) > 1;
  const dot = op === 'qmatmul_decode' ? [part(`wdot_${t}`)] : int8 && !tiled ? [part(`idot_${t}`), part('xq8')] : int8 ? [part('xq8')] : [];
  const body = tiled ? part('qmatmul_q8_t8') : part(op);
  // The 8-bit body reads x as quantize_x8.wgsl left it (its prologue ran there): the y epilogue only, its one-row
  // hook (kernels/act_q8_epilogue.ts: act_q8's buffers at bindings 7, 8, stubs otherwise), its x scales and the x
  // hand-off's writer hook (kernels/x8_handoff.ts: bindings 11-13).
  const q8 = [yEpilogueSource(epilogue, 7, false), oneRowHooksSource(epilogue, 7), xsSource(handoff.readEps ?? null), yNextSource(handoff.write ?? false)];
  const x = op === 'qembedding' ? [] : int8 ? q8 : [xPrologueSource(prologue, { v4: { x: 'x', g: 6 } }), yEpilogueSource(epilogue, 7, false)];
  return [layout.wgsl, part('wload_common'), part(`wload_${t}`), ...dot, body, ...x].join('\n');
}

export function weightPipeline(gpu: Gpu, key: WeightKernelKey, layout: UniformLayout<string>): GPUComputePipeline {
  // The 8-bit body never sees the prologue (quantize_x8 applies it): one pipeline for all of them.
  const p = key.op === 'qmatmul_q8' ? PLAIN : (key.prologue ?? PLAIN);
  const e = key.epilogue ?? NO_EPILOGUE;
  const h = key.handoff ?? {};
  const hk = `${h.readEps === undefined ? '' : `:handoff-in${h.readEps}`}${h.write ? ':handoff-out' : ''}`;
  const variant = `${key.type}:${key.config}${p.kind === 'plain' ? '' : `:${prologueKey(p)}`}${e.kind === 'none' ? '' : `:${epilogueKey(e)}`}${hk}`;
  return gpu.pipelines.get({ op: key.op, variant, constants: key.constants }, () => weightShaderSource(key.op, key.type, layout, p, e, h));
}
