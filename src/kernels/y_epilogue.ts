// The y epilogue of the matmul shaders (kernels/matmul.ts, kernels/qmatmul.ts): what a q|k|v projection does with its
// finished outputs before attention reads them, so RoPE and the KV write need no dispatch of their own.
//   none:     nothing (every other projection).
//   rope_kv:  RoPE on the q and k columns and the write of the k and v columns into the layer's paged KV pool at the
//             row's slot (what kernels/rope_kv.ts does without a q/k norm). RoPE rotates pairs of one head's dims; the
//             q and k rows of W are uploaded pair-adjacent (model/gpu_weights.ts, `ropePairOrder`): within each head,
//             dims 2i and 2i + 1 hold Hugging Face's i and i + rotaryDim/2, the non-rotated dims follow in place. A
//             permutation of head dims applied to q and k alike leaves every q.k, so attention reads them unchanged
//             (and the pool holds k in that order). Each invocation writes whole pairs (its columns start even and
//             come in even numbers: NR even, W chunks of even rows), so after its own stores it rotates its pairs in
//             place (y_epi_block) with nothing shared between invocations.
//   act_q8:   a one-row gate|up projection on 8-bit activations writes act(gate) * up on 8 bits for the down projection
//             (kernels/act_q8_epilogue.ts; only QMatmul's one-row llvmpipe body has it, the others none).
// The body calls y_epi_block(m, n0, nr) after storing columns nOffset + n0 .. + nr of row m (its own), or, in the
// tiled shader, y_epi_tile after a storage barrier.
import { InvalidArgumentError } from '../errors.js';
import { actQ8Key, checkActQ8, type ActQ8Epilogue } from './act_q8_epilogue.js';
import { WGSL } from './wgsl.gen.js';

export type YEpilogue =
  | { kind: 'none' }
  | {
      kind: 'rope_kv';
      qDim: number; // Hq * hd: q columns first
      kvDim: number; // Hkv * hd: then k, then v columns
      headDim: number;
      rotaryHalf: number; // rotated pairs per head; 0 = no RoPE (the KV write only)
      pageSize: number;
      pages: number; // pages in the pool: a slot beyond it is dropped, never written out of place
      scale: number; // multiplies cos and sin (yarn's attention factor), 1 otherwise
    }
  | ActQ8Epilogue;

export const NO_EPILOGUE: YEpilogue = { kind: 'none' };

/**
 * Storage buffers the widest matmul body binds with the RMS prologue and the rope_kv epilogue: matmul_decode's x, W and
 * norm weight in two views each, bias, y, then positions, slots, frequencies and the pool. An adapter that allows fewer
 * per shader stage (Chromium's SwiftShader allows 10; WebGPU guarantees 8) runs rope_kv as its own dispatch.
 */
export const ROPE_EPILOGUE_STORAGE_BUFFERS = 12;

export function epilogueKey(e: YEpilogue): string {
  if (e.kind === 'none') return '';
  if (e.kind === 'act_q8') return actQ8Key(e);
  return `rope_kv${e.qDim},${e.kvDim},${e.headDim},${e.rotaryHalf},${e.pageSize},${e.pages},${e.scale}`;
}

/** Checks an epilogue against the projection it ends: N columns = q | k | v. */
export function checkEpilogue(op: string, e: YEpilogue, N: number): YEpilogue {
  if (e.kind === 'none') return e;
  if (e.kind === 'act_q8') return checkActQ8(op, e, N);
  const ints = [e.qDim, e.kvDim, e.headDim, e.pageSize, e.pages];
  if (ints.some((v) => !Number.isInteger(v) || v < 1) || !Number.isInteger(e.rotaryHalf) || e.rotaryHalf < 0) {
    throw new InvalidArgumentError(`${op}: the rope_kv epilogue needs positive integer shapes, got ${JSON.stringify(e)}.`);
  }
  if (e.headDim % 2 !== 0 || 2 * e.rotaryHalf > e.headDim) {
    throw new InvalidArgumentError(`${op}: rope_kv needs an even head dim and at most headDim / 2 rotated pairs (hd ${e.headDim}, pairs ${e.rotaryHalf}).`);
  }
  if (N !== e.qDim + 2 * e.kvDim) throw new InvalidArgumentError(`${op}: rope_kv ends a q|k|v projection of ${e.qDim + 2 * e.kvDim} columns, not N=${N}.`);
  if (!Number.isFinite(e.scale)) throw new InvalidArgumentError(`${op}: rope_kv scale must be finite, got ${e.scale}.`);
  return e;
}

/** The epilogue's WGSL; its four buffers take bindings first..first+3 (positions, slots, frequencies, the pool). */
export function yEpilogueSource(e: YEpilogue, first: number, tile: boolean): string {
  // act_q8 does its work in the 8-bit bodies' one-row hook (kernels/act_q8_epilogue.ts oneRowHooksSource).
  if (e.kind === 'none' || e.kind === 'act_q8') {
    return tile ? 'const Y_EPI: bool = false;\nfn y_epi_tile(mBase: u32, nBase: u32, li: u32) {}' : 'fn y_epi_block(m: u32, n0: u32, nr: u32) {}';
  }
  const u = (v: number) => `${v}u`;
  const lines = [
    `// y epilogue: ${epilogueKey(e)} (kernels/y_epilogue.ts)`,
    `const E_QDIM: u32 = ${u(e.qDim)};`,
    `const E_KVDIM: u32 = ${u(e.kvDim)};`,
    `const E_HD: u32 = ${u(e.headDim)};`,
    `const E_KVH: u32 = ${u(e.kvDim / e.headDim)};`,
    `const E_HALF: u32 = ${u(e.rotaryHalf)};`,
    `const E_PAGE: u32 = ${u(e.pageSize)};`,
    `const E_PAGES: u32 = ${u(e.pages)};`,
    `const E_SCALE: f32 = ${e.scale.toExponential()};`,
    `@group(0) @binding(${first}) var<storage, read> e_pos: array<u32>;          // (M) u32 positions`,
    `@group(0) @binding(${first + 1}) var<storage, read> e_slots: array<u32>;        // (M) u32 page * pageSize + offset`,
    `@group(0) @binding(${first + 2}) var<storage, read> e_freq: array<vec4<f32>>;   // (max(rotaryHalf, 1)) turns per position, a + b + c + d`,
    `@group(0) @binding(${first + 3}) var<storage, read_write> e_kv: array<f32>;    // (pages, 2, Hkv, pageSize, hd) f32 the layer's pool`,
    WGSL.rope_turns,
    `
/** (sin, cos) * E_SCALE of position p times frequency i (shaders/rope_turns.wgsl for the precision argument). */
fn e_rotation(p: f32, i: u32) -> vec2<f32> {
  return rotationTurns(p, e_freq[i]) * E_SCALE;
}

/** Columns c, c + 1 (c even) of row m, both stored by this invocation: RoPE on a q or k pair, then the K/V write. */
fn y_epi(m: u32, c: u32) {
  let at = m * params.ldy + c;
  var v0 = y[at];
  var v1 = y[at + 1u];
  let d = c % E_HD;
  if (c < E_QDIM + E_KVDIM && d < 2u * E_HALF) {
    let sc = e_rotation(f32(e_pos[m]), d / 2u);
    let r0 = v0 * sc.y - v1 * sc.x;
    let r1 = v1 * sc.y + v0 * sc.x;
    v0 = r0;
    v1 = r1;
    y[at] = v0;
    y[at + 1u] = v1;
  }
  if (c < E_QDIM) { return; }
  let kv = c - E_QDIM;
  let which = kv / E_KVDIM; // 0: K, 1: V
  let h = (kv % E_KVDIM) / E_HD;
  let slot = e_slots[m];
  let page = slot / E_PAGE;
  // A slot outside the pool is a scheduler bug; dropping the write keeps every other page intact.
  if (page >= E_PAGES) { return; }
  let dst = (((page * 2u + which) * E_KVH + h) * E_PAGE + slot % E_PAGE) * E_HD + d;
  e_kv[dst] = v0;
  e_kv[dst + 1u] = v1;
}`,
  ];
  if (tile) {
    lines.push(`
const Y_EPI: bool = true;
/** After a storage barrier: the tile's outputs, (64 rows, 64 columns) from (mBase, nBase), in pairs over 256 threads. */
fn y_epi_tile(mBase: u32, nBase: u32, li: u32) {
  for (var t = li; t < 64u * 32u; t += 256u) {
    let m = mBase + t / 32u;
    let n = nBase + 2u * (t % 32u);
    if (m < params.m && n < params.n) { y_epi(m, params.nOffset + n); }
  }
}`);
  } else {
    lines.push(`
/** After this invocation stored columns nOffset + n0 .. + nr of row m (n0 and nr even). */
fn y_epi_block(m: u32, n0: u32, nr: u32) {
  for (var j = 0u; j < nr; j += 2u) {
    if (n0 + j < params.n) { y_epi(m, params.nOffset + n0 + j); }
  }
}`);
  }
  return lines.join('\n');
}

/** What a rope_kv epilogue reads and writes besides y. */
export interface RopeBuffers {
  positions: GPUBuffer; // (M) u32
  slots: GPUBuffer; // (M) u32 page * pageSize + offset
  freq: GPUBuffer; // (max(rotaryHalf, 1), 4) f32: kernels/rope_kv.ts splitFrequencies of the layer's inverse frequencies
  kv: GPUBuffer; // (pages, 2, Hkv, pageSize, hd) f32 the layer's pool
}

/**
 * Checks a bind against its epilogue: the rope buffers exactly when rope_kv, the pool not y, and W in chunks of an
 * even number of rows from even rows (an invocation's column pairs must lie in one chunk).
 */
export function checkRopeBinding(label: string, e: YEpilogue, rope: RopeBuffers | undefined, y: GPUBuffer, chunks: readonly { rowStart: number; rows: number }[]): void {
  if ((e.kind === 'rope_kv') !== (rope !== undefined)) {
    throw new InvalidArgumentError(`${label}: ${e.kind === 'rope_kv' ? 'the rope_kv epilogue needs positions, slots, freq and kv' : 'rope buffers given without a rope_kv epilogue'}.`);
  }
  if (!rope) return;
  if (rope.kv === y) throw new InvalidArgumentError(`${label}: the KV pool must be a buffer of its own, not y.`);
  if (chunks.some((c) => c.rowStart % 2 !== 0 || c.rows % 2 !== 0)) {
    throw new InvalidArgumentError(`${label}: the rope_kv epilogue needs W in chunks of an even number of rows from even rows; upload q|k|v with even chunks.`);
  }
}
