// The act epilogue of a one-row gate|up matmul on 8-bit activations (kernels/qmatmul.ts, 'act_q8'): it writes the
// down projection's x, act(gate) * up on 8 bits, so the down projection needs no quantize_x8 dispatch of its own
// (QMatmul xqReady; one dispatch fewer per gated layer of a decode step on llvmpipe, bench/RESULTS.md "Weights").
//
// Its own one-row configuration (QMatmul's q8x1act, llvmpipe only): each invocation owns one 32-value block of down's
// x, features 32 g .. 32 g + 31, and computes their gate columns AND their up columns (64 columns, 8 at a time
// through the body's row8, the same arithmetic as the body's one-row path), stores them to y as the body would (with
// bias; y stays gate | up), and quantizes act(gate) * up exactly as quantize_x8's act prologue does (act4(gate) * up,
// the same WGSL: shaders/activation.wgsl, then shaders/xq8_block.wgsl): block g of down's x, the same bits
// (test/kernels/qmatmul_act_q8.test.ts). No invocation needs another's values, so there is no barrier and no
// workgroup memory: on llvmpipe either cost about 1 us per workgroup, as much as the dispatch this saves (measured;
// a first form with 8 invocations sharing a block through a barrier was no faster than the dispatch it replaced).
// Every other row count keeps today's path (the matmul writes gate | up; down quantizes it).
// The 8-bit bodies call act_q8_main(gid.x) instead of their own work when ACT_Q8; every other epilogue gets the stubs
// (oneRowHooksSource).
import { InvalidArgumentError } from '../errors.js';
import { ACT_CODE, type Activation } from './mlp_act.js';
import { WGSL } from './wgsl.gen.js';

export interface ActQ8Epilogue {
  kind: 'act_q8';
  act: Activation;
  features: number; // F: the matmul's N is 2F, gate | up; a multiple of 32 (one x block per invocation)
}

/** Invocations per workgroup of the epilogue's one-row configuration (one 32-value block, 64 columns, each). */
export const ACT_Q8_WG = 8;
/** Columns of y each invocation of that configuration computes: 32 gate + 32 up. */
export const ACT_Q8_COLUMNS = 64;

export function actQ8Key(e: ActQ8Epilogue): string {
  return `act_q8-${e.act},${e.features}`;
}

/** Checks the epilogue against the projection it ends: N = 2F columns gate | up, F whole 32-value blocks. */
export function checkActQ8(op: string, e: ActQ8Epilogue, N: number): ActQ8Epilogue {
  if (!(e.act in ACT_CODE)) throw new InvalidArgumentError(`${op}: unknown activation ${e.act}; use one of ${Object.keys(ACT_CODE).join(', ')}.`);
  if (!Number.isInteger(e.features) || e.features < 32 || e.features % 32 !== 0) {
    throw new InvalidArgumentError(`${op}: the act_q8 epilogue needs F a positive multiple of 32 (one 8-bit block per invocation), got ${e.features}.`);
  }
  if (N !== 2 * e.features) throw new InvalidArgumentError(`${op}: act_q8 ends a gate|up projection of 2F = ${2 * e.features} columns, not N=${N}.`);
  return e;
}

const STUBS = `const ACT_Q8: bool = false;
fn act_q8_main(g: u32) {}`;

/** The 8-bit bodies' one-row act_q8 form (buffers at bindings first, first + 1), or the stubs. */
export function oneRowHooksSource(e: { kind: string }, first: number): string {
  if (e.kind !== 'act_q8') return STUBS;
  const a = e as ActQ8Epilogue;
  return [
    `// one-row epilogue: ${actQ8Key(a)} (kernels/act_q8_epilogue.ts)`,
    `const ACT: u32 = ${ACT_CODE[a.act]}u;`,
    WGSL.activation,
    WGSL.xq8_block,
    `const ACT_Q8: bool = true;`,
    `const E_F: u32 = ${a.features}u;`,
    `@group(0) @binding(${first}) var<storage, read_write> e_xq: array<vec4<u32>>; // (1, F/32, 8) vec4: down's x on 8 bits`,
    `@group(0) @binding(${first + 1}) var<storage, read_write> e_xs: array<vec2<f32>>; // (1, F/32): (dx, sx) per block`,
    `
/** Columns n0 .. n0 + 7 of row 0 with bias, stored to y as the body stores them. */
fn e_cols(n0: u32) -> Row8 {
  let r = row8(n0, 0u);
  var a = r.a;
  var b = r.b;
  let o = params.nOffset + n0;
  if (params.hasBias != 0u) {
    a += vec4<f32>(bias[o], bias[o + 1u], bias[o + 2u], bias[o + 3u]);
    b += vec4<f32>(bias[o + 4u], bias[o + 5u], bias[o + 6u], bias[o + 7u]);
  }
  y[o] = a.x;
  y[o + 1u] = a.y;
  y[o + 2u] = a.z;
  y[o + 3u] = a.w;
  y[o + 4u] = b.x;
  y[o + 5u] = b.y;
  y[o + 6u] = b.z;
  y[o + 7u] = b.w;
  return Row8(a, b);
}

/** Invocation g: block g of down's x (features 32 g ..), and the 64 gate and up columns of y it needs. */
fn act_q8_main(g: u32) {
  if (g >= E_F / 32u) { return; }
  // Gate columns 32 g + 8 j, then the up ones, 8 at a time in a loop (one copy of row8: eight made the compile of
  // Q6_K's pipeline take minutes).
  var v: array<Row8, 8>;
  for (var j = 0u; j < 8u; j++) {
    v[j] = e_cols(select(E_F, 0u, j < 4u) + 32u * g + 8u * (j % 4u));
  }
  // quantize_x8's act prologue: x_at4 = act4(gate) * up.
  let q = xq_block8(
    act4(v[0].a) * v[4].a, act4(v[0].b) * v[4].b, act4(v[1].a) * v[5].a, act4(v[1].b) * v[5].b,
    act4(v[2].a) * v[6].a, act4(v[2].b) * v[6].b, act4(v[3].a) * v[7].a, act4(v[3].b) * v[7].b,
  );
  e_xq_store(g, q, 1.0);
}`,
    // xq8_store.wgsl's xq_store, storing into this epilogue's buffers (the body binds its own xq and xs read-only).
    WGSL.xq8_store.replace('fn xq_store(', 'fn e_xq_store(').replace(/\bxq\[/g, 'e_xq[').replace(/\bxs\[/g, 'e_xs['),
  ].join('\n');
}
