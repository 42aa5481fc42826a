// The act epilogue of a one-row gate|up matmul on 8-bit activations (kernels/qmatmul.ts, 'act_q8'): it writes the
// down projection's x, act(gate) * up on 8 bits, so the down projection needs no quantize_x8 dispatch of its own
// (QMatmul xqReady; one dispatch fewer per gated layer of a decode step on llvmpipe, bench/RESULTS.md "Weights").
//
// Only in the one-row body with 8-invocation workgroups (QMatmul's narrow one-row configuration, llvmpipe): each
// workgroup computes 64 columns, and here they are the gate AND the up columns of the same 32 features (a column
// order inside the dispatch, no repacking of W, y stays gate | up): invocations 0..3 of workgroup w take gate rows
// 32 w + 8 l .. + 7, invocations 4..7 the up rows F + 32 w + 8 (l - 4) .. (y_col0). After its loop (before its stores)
// each invocation puts its 8 finished values (with bias, as it stores them) in workgroup memory; after one barrier
// invocation 0 computes act(gate) * up of the 32 features as quantize_x8's act prologue does (act4(gate) * up, the
// same WGSL: shaders/activation.wgsl) and quantizes the block with shaders/xq8_block.wgsl: block w of down's x, the
// same bits quantize_x8 writes (test/kernels/qmatmul_act_q8.test.ts). Every other row count and body keeps today's
// path (the matmul writes gate | up; down quantizes it): the epilogue's pipeline is only the one-row one.
// The 8-bit bodies call y_col0(gid.x) for their first column and y_epi_row(gid.x, n0, acc) at one row; every other
// epilogue gets the plain stubs (oneRowHooksSource).
import { InvalidArgumentError } from '../errors.js';
import { ACT_CODE, type Activation } from './mlp_act.js';
import { WGSL } from './wgsl.gen.js';

export interface ActQ8Epilogue {
  kind: 'act_q8';
  act: Activation;
  features: number; // F: the matmul's N is 2F, gate | up; a multiple of 32 (one x block per workgroup)
}

/** Invocations per workgroup (8 columns each) the epilogue's column order assumes: 32 gate + 32 up columns. */
export const ACT_Q8_WG = 8;

export function actQ8Key(e: ActQ8Epilogue): string {
  return `act_q8-${e.act},${e.features}`;
}

/** Checks the epilogue against the projection it ends: N = 2F columns gate | up, F whole 32-value blocks. */
export function checkActQ8(op: string, e: ActQ8Epilogue, N: number): ActQ8Epilogue {
  if (!(e.act in ACT_CODE)) throw new InvalidArgumentError(`${op}: unknown activation ${e.act}; use one of ${Object.keys(ACT_CODE).join(', ')}.`);
  if (!Number.isInteger(e.features) || e.features < 32 || e.features % 32 !== 0) {
    throw new InvalidArgumentError(`${op}: the act_q8 epilogue needs F a positive multiple of 32 (one 8-bit block per workgroup), got ${e.features}.`);
  }
  if (N !== 2 * e.features) throw new InvalidArgumentError(`${op}: act_q8 ends a gate|up projection of 2F = ${2 * e.features} columns, not N=${N}.`);
  return e;
}

const STUBS = `fn y_col0(g: u32) -> u32 { return g * 8u; }
fn y_epi_row(g: u32, n0: u32, a: array<f32, 8>) {}`;

/** The 8-bit bodies' column order and one-row hook: act_q8's (buffers at bindings first, first + 1) or the stubs. */
export function oneRowHooksSource(e: { kind: string }, first: number): string {
  if (e.kind !== 'act_q8') return STUBS;
  const a = e as ActQ8Epilogue;
  return [
    `// one-row epilogue: ${actQ8Key(a)} (kernels/act_q8_epilogue.ts)`,
    `const ACT: u32 = ${ACT_CODE[a.act]}u;`,
    WGSL.activation,
    WGSL.xq8_block,
    `const E_F: u32 = ${a.features}u;`,
    `@group(0) @binding(${first}) var<storage, read_write> e_xq: array<vec4<u32>>; // (1, F/32, 8) vec4: down's x on 8 bits`,
    `@group(0) @binding(${first + 1}) var<storage, read_write> e_xs: array<vec2<f32>>; // (1, F/32): (dx, sx) per block`,
    `var<workgroup> e_gu: array<vec4<f32>, 16>; // the workgroup's 32 gate values (vec4s 0..7), then its 32 up values`,
    `
/** Invocation g's first column: gate rows 32 w + 8 l (l < 4) or up rows F + 32 w + 8 (l - 4) of workgroup w. */
fn y_col0(g: u32) -> u32 {
  let l = g % 8u;
  return select(E_F, 0u, l < 4u) + 32u * (g / 8u) + 8u * (l % 4u);
}

/** After invocation g's loop (one row, uniform control flow): its values a, as stored, then block g / 8 of down's x. */
fn y_epi_row(g: u32, n0: u32, a: array<f32, 8>) {
  var v0 = vec4<f32>(a[0], a[1], a[2], a[3]);
  var v1 = vec4<f32>(a[4], a[5], a[6], a[7]);
  if (params.hasBias != 0u) {
    let o = params.nOffset + n0;
    v0 += vec4<f32>(bias[o], bias[o + 1u], bias[o + 2u], bias[o + 3u]);
    v1 += vec4<f32>(bias[o + 4u], bias[o + 5u], bias[o + 6u], bias[o + 7u]);
  }
  let l = g % 8u;
  e_gu[2u * l] = v0;
  e_gu[2u * l + 1u] = v1;
  workgroupBarrier();
  if (l != 0u) { return; }
  // quantize_x8's act prologue: x_at4 = act4(gate) * up, 8 vec4s per block.
  let q = xq_block8(
    act4(e_gu[0]) * e_gu[8], act4(e_gu[1]) * e_gu[9], act4(e_gu[2]) * e_gu[10], act4(e_gu[3]) * e_gu[11],
    act4(e_gu[4]) * e_gu[12], act4(e_gu[5]) * e_gu[13], act4(e_gu[6]) * e_gu[14], act4(e_gu[7]) * e_gu[15],
  );
  // xq8_store.wgsl's xq_store (rs = 1), into this epilogue's buffers.
  let o = (g / 8u) * 8u;
  e_xq[o] = q.a0;
  e_xq[o + 1u] = q.a1;
  e_xq[o + 2u] = q.a2;
  e_xq[o + 3u] = q.a3;
  e_xq[o + 4u] = q.b0;
  e_xq[o + 5u] = q.b1;
  e_xq[o + 6u] = q.b2;
  e_xq[o + 7u] = q.b3;
  let dx = 1.0 * q.s.x;
  e_xs[g / 8u] = vec2<f32>(dx, dx * q.s.y);
}`,
  ].join('\n');
}
