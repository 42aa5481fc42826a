// The x-operand prologue of every matmul shader (kernels/matmul.ts, kernels/qmatmul.ts): the body reads x only through
// the WGSL functions generated here, so each matmul kernel gets the fusions below once, the way wload_<type>.wgsl plugs
// the weight type in. What the prologue makes of the bound `x` buffer:
//   plain:  x itself, (M, K).
//   rms:    RMSNorm(x) * g, x (M, K) the residual stream, g (K) the norm weight (weight offset already applied at
//           upload): the norm before qkv, gate_up and the LM head, folded into the matmul that consumes it. Since
//           y[m, n] = r[m] * sum_k (x[m, k] g[k]) W[n, k] with r[m] = 1 / sqrt(mean_k x[m, k]^2 + eps), the body
//           dots x * g with W and accumulates sum x^2 of the same loads on the side (no extra pass over x, no
//           barrier); r[m] multiplies the finished sums in the epilogue (x_scale). Each invocation owns whole rows of x
//           over all of K, so its own sums give r exactly (the tiled shader, whose threads stage parts of rows, gets
//           r per row of its tile in workgroup memory first: x_tile_prep).
//   act:    act(gate) * up (gated) or act(x) (plain MLP), x (M, 2K) gate | up or (M, K): the MLP activation folded
//           into the down projection. The decode shaders recompute it per invocation (the x chunk an invocation loads
//           serves its NR columns); the tiled shader once per staged element.
// The generated functions, by the view of x a body declares:
//   vec4 view (x as array<vec4<f32>>, K % 4 == 0): x_row4(m) -> base, x_at4(i, base, k4) -> x[m, 4 k4 .. 4 k4 + 3]
//   scalar view (x as array<f32>):                x_row1(m) -> base, x_at1(i, base, k)  -> x[m, k]
//   both: x_scale(i) -> the factor of row slot i's finished sums (r[m] for rms, 1 otherwise). i < X_SLOTS is the
//   invocation's row slot (its rows are 0..MR-1), whose sum of squares x_at* accumulates; X_RMS: whether it is rms;
//   x_ss_set(i, s) sets that sum (quantize_x8.wgsl sums it in an order of its own; nothing without rms).
//   tile view (matmul_tiled.wgsl): x_tile_prep(mBase, li) before a barrier, x_tile(r, m, k) for tile row r = m - mBase.
import { InvalidArgumentError } from '../errors.js';
import { ACT_CODE, type Activation } from './mlp_act.js';
import { WGSL } from './wgsl.gen.js';

export type XPrologue =
  | { kind: 'plain' }
  /** RMSNorm of x by the norm weight bound as `norm`, eps added to the mean square. */
  | { kind: 'rms'; eps: number }
  /** act(gate) * up over (M, 2K) gate | up when gated, act(x) over (M, K) otherwise. */
  | { kind: 'act'; act: Activation; gated: boolean };

export const PLAIN: XPrologue = { kind: 'plain' };

/** Where a body declares x and the binding numbers the prologue may take for the norm weight. */
export interface XViews {
  /** The vec4 view of x and the binding for the norm weight as array<vec4<f32>>. */
  v4?: { x: string; g: number };
  /** The scalar view of x and the binding for the norm weight as array<f32>. */
  v1?: { x: string; g: number };
  /** The tiled shader: scalar x, the norm weight at binding g, row scales in workgroup memory for `rows` rows. */
  tile?: { x: string; g: number; rows: number };
}

/** A string that tells prologues apart in pipeline keys. */
export function prologueKey(p: XPrologue): string {
  if (p.kind === 'rms') return `rms${p.eps}`;
  if (p.kind === 'act') return `act-${p.act}${p.gated ? '-gated' : ''}`;
  return 'plain';
}

/** Columns of one row of the bound x per column of K the matmul reduces over: 2 for gate | up. */
export function xWidth(p: XPrologue): number {
  return p.kind === 'act' && p.gated ? 2 : 1;
}

/** Checks a prologue's parameters; returns it. */
export function checkPrologue(op: string, p: XPrologue, K: number, vec4: boolean): XPrologue {
  if (p.kind === 'rms' && !(Number.isFinite(p.eps) && p.eps >= 0)) {
    throw new InvalidArgumentError(`${op}: the rms prologue's eps must be a finite number >= 0, got ${p.eps}.`);
  }
  if (p.kind === 'act' && !(p.act in ACT_CODE)) {
    throw new InvalidArgumentError(`${op}: unknown activation ${p.act}; use one of ${Object.keys(ACT_CODE).join(', ')}.`);
  }
  if (vec4 && K % 4 !== 0) throw new InvalidArgumentError(`${op}: a vec4 view of x needs K % 4 == 0, got K=${K}.`);
  return p;
}

/** WGSL float literal of v (an abstract float, exact for every f32); the x hand-off's reader writes eps with it too. */
export function wgslFloat(v: number): string {
  return v.toExponential();
}

/** Rows of x one invocation may own (the largest MR of every matmul body). */
const X_SLOTS = 8;

/** The prologue's WGSL for a body with these views of x. */
export function xPrologueSource(p: XPrologue, views: XViews): string {
  const out: string[] = [`// x prologue: ${prologueKey(p)} (kernels/x_prologue.ts)`];
  const rms = p.kind === 'rms';
  const act = p.kind === 'act';
  if (act) out.push(`const ACT: u32 = ${ACT_CODE[p.act]}u;`, WGSL.activation);
  if (rms) out.push(`const X_EPS: f32 = ${wgslFloat(p.eps)};`);
  if (views.v4 || views.v1) {
    out.push(`const X_RMS: bool = ${rms};`);
    if (rms) {
      out.push(
        `var<private> x_ss: array<f32, ${X_SLOTS}>; // sum of x^2 of each row slot's loads so far`,
        'fn x_scale(i: u32) -> f32 { return 1.0 / sqrt(x_ss[i] / f32(params.k) + X_EPS); }',
        'fn x_ss_set(i: u32, s: f32) { x_ss[i] = s; }',
      );
    } else out.push('fn x_scale(i: u32) -> f32 { return 1.0; }', 'fn x_ss_set(i: u32, s: f32) {}');
  }
  // Row stride of the bound x in elements: 2K for gate | up.
  const stride = act && p.gated ? '2u * params.k' : 'params.k';
  if (views.v4) {
    const { x, g } = views.v4;
    out.push(`fn x_row4(m: u32) -> u32 { return m * ((${stride}) / 4u); }`);
    if (rms) {
      out.push(
        `@group(0) @binding(${g}) var<storage, read> x_g4: array<vec4<f32>>; // (K/4) vec4 the norm weight`,
        `fn x_at4(i: u32, base: u32, k4: u32) -> vec4<f32> { let v = ${x}[base + k4]; x_ss[i] += dot(v, v); return v * x_g4[k4]; }`,
      );
    } else if (act) {
      const up = p.gated ? ` * ${x}[base + params.k / 4u + k4]` : '';
      out.push(`fn x_at4(i: u32, base: u32, k4: u32) -> vec4<f32> { return act4(${x}[base + k4])${up}; }`);
    } else out.push(`fn x_at4(i: u32, base: u32, k4: u32) -> vec4<f32> { return ${x}[base + k4]; }`);
  }
  if (views.v1) {
    const { x, g } = views.v1;
    out.push(`fn x_row1(m: u32) -> u32 { return m * (${stride}); }`);
    if (rms) {
      out.push(
        `@group(0) @binding(${g}) var<storage, read> x_g1: array<f32>; // (K) f32 the norm weight`,
        `fn x_at1(i: u32, base: u32, k: u32) -> f32 { let v = ${x}[base + k]; x_ss[i] += v * v; return v * x_g1[k]; }`,
      );
    } else if (act) {
      const up = p.gated ? ` * ${x}[base + params.k + k]` : '';
      out.push(`fn x_at1(i: u32, base: u32, k: u32) -> f32 { return act(${x}[base + k])${up}; }`);
    } else out.push(`fn x_at1(i: u32, base: u32, k: u32) -> f32 { return ${x}[base + k]; }`);
  }
  if (views.tile) {
    const { x, g, rows } = views.tile;
    if (rms) {
      // One invocation per tile row sums its squares over K: a GPU-only kernel (CPU adapters take the register-blocked
      // shaders), where K loads per row once per workgroup are small beside the tile loop's K * TILE / THREADS.
      out.push(
        `@group(0) @binding(${g}) var<storage, read> x_g1: array<f32>; // (K) f32 the norm weight`,
        `var<workgroup> x_rs: array<f32, ${rows}>; // r of each row of the tile`,
        'fn x_tile_prep(mBase: u32, li: u32) {',
        `  if (li >= ${rows}u || mBase + li >= params.m) { return; }`,
        '  let base = (mBase + li) * params.k;',
        '  var s = 0.0;',
        `  for (var k = 0u; k < params.k; k++) { let v = ${x}[base + k]; s += v * v; }`,
        '  x_rs[li] = 1.0 / sqrt(s / f32(params.k) + X_EPS);',
        '}',
        `fn x_tile(r: u32, m: u32, k: u32) -> f32 { return ${x}[m * params.k + k] * x_rs[r] * x_g1[k]; }`,
      );
    } else {
      out.push('fn x_tile_prep(mBase: u32, li: u32) {}');
      if (act) {
        const up = p.gated ? ` * ${x}[m * ${stride} + params.k + k]` : '';
        out.push(`fn x_tile(r: u32, m: u32, k: u32) -> f32 { return act(${x}[m * (${stride}) + k])${up}; }`);
      } else out.push(`fn x_tile(r: u32, m: u32, k: u32) -> f32 { return ${x}[m * params.k + k]; }`);
    }
  }
  return out.join('\n');
}
