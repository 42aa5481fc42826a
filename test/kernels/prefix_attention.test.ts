import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, UnsupportedModelError } from '../../src/errors.js';
import { createStorage, createStorageFrom } from '../../src/gpu/buffers.js';
import type { Gpu } from '../../src/gpu/device.js';
import { readF32, readU32 } from '../../src/gpu/readback.js';
import { submitPass } from '../../src/kernels/kernel.js';
import { PagedAttention, type PagedAttentionVariant } from '../../src/kernels/paged_attention.js';
import type { RegisterBlocks } from '../../src/gpu/register_blocks.js';
import { PrefixAttention } from '../../src/kernels/prefix_attention.js';
import { BoundQuantizeX8, createQuantizedX } from '../../src/kernels/quantize_x8.js';
import { PLAIN } from '../../src/kernels/x_prologue.js';
import { packCascade, prefixTree } from '../../src/sched/cascade.js';
import { expectClose } from '../ref/compare.js';
import {
  attendHead,
  type AttentionSwitches,
  firstVisible,
  pagedAttentionRef,
  type PagedAttentionRefArgs,
  pagedScoreMagnitude,
  type PagedShape,
  poolIndex,
} from '../ref/attention.js';
import { mulberry32, randomF32, randomNormal, testSeed } from '../ref/random.js';
import { gpuFor, testAdapterChoices } from './adapters.js';

interface Tree {
  rows: number;
  paths: number;
  maxPages: number;
  pages: number;
  rowPath: Uint32Array; // (rows)
  positions: Uint32Array; // (rows)
  pageTable: Uint32Array; // (P, maxPages)
}

/**
 * A random tree of forks, as the KV cache makes it: a root prompt, then paths forked from random earlier paths at
 * random lengths (the whole pages before the fork point shared, the partial tail page copied, i.e. private), each
 * grown by a random number of tokens, so page counts are uneven. Every path decodes one row at its last position,
 * except one path that prefills a chunk of rows (it must take no part in the cascade). Page ids are shuffled.
 */
function randomTree(rand: () => number, pageSize: number, paths: number): Tree {
  const lens: number[] = [];
  const tables: number[][] = [];
  let nextPage = 0;
  const grow = (table: number[], from: number, to: number) => {
    for (let i = Math.ceil(from / pageSize); i < Math.ceil(to / pageSize); i++) table.push(nextPage++);
  };
  const root: number[] = [];
  lens.push(pageSize * (3 + Math.floor(rand() * 4)) + Math.floor(rand() * pageSize));
  grow(root, 0, lens[0]);
  tables.push(root);
  for (let p = 1; p < paths; p++) {
    // Path 1 forks from the root within its last page and grows by under half a page, so the tree shares whole pages
    // that both paths' rows see (even through a 2.5-page window) whatever the other draws give.
    const first = p === 1;
    const parent = first ? 0 : Math.floor(rand() * p);
    const at = first ? lens[0] - Math.floor(rand() * (lens[0] % pageSize)) : 1 + Math.floor(rand() * lens[parent]);
    const shared = Math.floor(at / pageSize);
    const table = tables[parent].slice(0, shared);
    const len = at + 1 + Math.floor(rand() * (first ? pageSize / 2 : 3 * pageSize));
    grow(table, shared * pageSize, len);
    tables.push(table);
    lens.push(len);
  }
  const ids = Array.from({ length: nextPage + 2 }, (_, i) => i);
  for (let i = ids.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [ids[i], ids[j]] = [ids[j], ids[i]];
  }
  const maxPages = Math.max(...tables.map((t) => t.length));
  const pageTable = new Uint32Array(paths * maxPages);
  tables.forEach((t, p) => pageTable.set(t.map((x) => ids[x]), p * maxPages));
  const prefill = paths - 1;
  const chunk = Math.min(lens[prefill], 5);
  const rowPath: number[] = [];
  const positions: number[] = [];
  for (let p = 0; p < paths; p++) {
    const n = p === prefill ? chunk : 1;
    for (let j = 0; j < n; j++) {
      rowPath.push(p);
      positions.push(lens[p] - n + j);
    }
  }
  return {
    rows: rowPath.length,
    paths,
    maxPages,
    pages: nextPage + 2,
    rowPath: Uint32Array.from(rowPath),
    positions: Uint32Array.from(positions),
    pageTable,
  };
}

/** Float64 attention of each row over its keys from max(ownStart(r), its window's first) only. */
function ownKeysRef(s: PagedShape, a: PagedAttentionRefArgs, sw: AttentionSwitches, ownStart: (r: number) => number): Float64Array {
  const group = s.nHeads / s.kvHeads;
  const out = new Float64Array(a.rows * s.nHeads * s.headDim);
  for (let r = 0; r < a.rows; r++) {
    const table = a.rowPath[r] * a.maxPages;
    const at = (which: number, h: number) => (j: number) => poolIndex(s, a.pageTable[table + Math.floor(j / s.pageSize)], which, h, j % s.pageSize);
    const first = Math.max(ownStart(r), firstVisible(a.positions[r], sw.window));
    for (let h = 0; h < s.nHeads; h++) {
      const kvh = Math.floor(h / group);
      attendHead(a.q, r * a.qStride + h * s.headDim, a.kv, at(0, kvh), a.kv, at(1, kvh), a.positions[r] + 1, s.headDim, out, (r * s.nHeads + h) * s.headDim, {
        ...sw,
        first,
      });
    }
  }
  return out;
}

/** Random queries and pages over a random fork tree, the cascade's task lists for it, and their buffers. */
function cascadeCase(gpu: Gpu, s: PagedShape, queriesPerItem: number, seed: number) {
  const rand = mulberry32(seed);
  const tree = randomTree(rand, s.pageSize, 7 + Math.floor(rand() * 6));
  const qStride = s.nHeads * s.headDim + 4; // a wider row, as in the fused qkv buffer
  const q = randomNormal(rand, tree.rows * qStride, 1.5);
  const kvLen = tree.pages * 2 * s.kvHeads * s.pageSize * s.headDim;
  const kv = new Float32Array(kvLen);
  for (let i = 0; i < kvLen; i += 2 * s.kvHeads * s.pageSize * s.headDim) {
    const half = s.kvHeads * s.pageSize * s.headDim;
    kv.set(randomNormal(rand, half, 1.5), i);
    kv.set(randomF32(rand, half, 1), i + half);
  }
  const prefix = new PrefixAttention(gpu, { ...s, qStride, queriesPerItem });
  // Small chunks and slot caps, so that runs are split into several tasks and some subtrees are cut short.
  const chunkPages = 1 + Math.floor(rand() * 3);
  const maxSlotsPerRow = 2 + Math.floor(rand() * 5);
  const nodes = prefixTree(tree, s.pageSize);
  const lists = packCascade(tree, nodes, {
    pageSize: s.pageSize,
    kvHeads: s.kvHeads,
    group: s.nHeads / s.kvHeads,
    queriesPerItem: prefix.queriesPerItem,
    chunkPages,
    maxSlotsPerRow,
  });
  const d = gpu.device;
  const b = {
    q: createStorageFrom(d, q, 'q'),
    kv: createStorageFrom(d, kv, 'kv'),
    positions: createStorageFrom(d, tree.positions, 'positions'),
    pageTable: createStorageFrom(d, tree.pageTable, 'pageTable'),
    rowPath: createStorageFrom(d, tree.rowPath, 'rowPath'),
    meta: createStorageFrom(d, lists.meta, 'meta'),
    // NaN everywhere first: a partial slot the prefix kernel failed to write would poison its row.
    partials: createStorageFrom(d, new Float32Array(prefix.partialBytes(lists.slots) / 4).fill(NaN), 'partials'),
  };
  return { tree, qStride, q, kv, prefix, chunkPages, maxSlotsPerRow, lists, b };
}

/** The paged kernel's forms: per-head with private arrays, per-head written out (where it fits), split-keys. */
const VARIANTS: { variant: PagedAttentionVariant; registerBlocks?: RegisterBlocks }[] = [
  { variant: 'per-head', registerBlocks: 'loops' },
  { variant: 'per-head', registerBlocks: 'unrolled' },
  { variant: 'split-keys' },
];
// Head dims up to 32: llvmpipe compiles the query blocks unrolled, and 4 queries at head dim 64 take minutes there.
// queriesPerItem 1 is what models with larger heads run.
const SHAPES: (PagedShape & { queriesPerItem: number })[] = [
  { nHeads: 9, kvHeads: 3, headDim: 16, pageSize: 4, queriesPerItem: 4 },
  { nHeads: 4, kvHeads: 4, headDim: 8, pageSize: 5, queriesPerItem: 3 },
  { nHeads: 8, kvHeads: 2, headDim: 32, pageSize: 16, queriesPerItem: 4 },
  { nHeads: 6, kvHeads: 2, headDim: 24, pageSize: 16, queriesPerItem: 1 },
];
/** A window of 2.5 pages: it cuts into every path's shared pages, and still reaches back into some of them. */
const SWITCHES: ((pageSize: number) => AttentionSwitches)[] = [() => ({}), (ps) => ({ window: Math.ceil(2.5 * ps) }), () => ({ softcap: 1.5, scale: 0.2 })];

describe.each(testAdapterChoices())('prefix_attention + paged_attention (cascade) on %s', (choice) => {
  describe.each(VARIANTS)('%o', (form) => {
    it.each(SHAPES.flatMap((s) => SWITCHES.map((sw) => ({ ...s, sw: sw(s.pageSize) }))))('equals float64 per-path attention on a random fork tree: %o', async ({ sw, queriesPerItem, ...s }) => {
      const gpu = await gpuFor(choice);
      const seed = testSeed();
      const { tree, qStride, q, kv, prefix, chunkPages, maxSlotsPerRow, lists, b } = cascadeCase(gpu, s, queriesPerItem, seed);
      // The tree really shares pages: some task covers several rows.
      const taskRows = Array.from({ length: lists.tasks }, (_, t) => lists.meta[lists.taskOff + 5 * t + 4]);
      expect(Math.max(...taskRows), `seed ${seed}`).toBeGreaterThan(1);
      const d = gpu.device;
      const out = createStorage(d, tree.rows * s.nHeads * s.headDim * 4, 'out');
      const pre = prefix.bind(b, 'prefix', sw);
      const paged = new PagedAttention(gpu, { ...s, qStride, ...form });
      const att = paged.bind({ ...b, out }, 'paged', sw);
      submitPass(gpu, (pass) => {
        pre.encode(pass, { ...lists, maxPages: tree.maxPages });
        att.encode(pass, { rows: tree.rows, maxPages: tree.maxPages, cascade: true });
      });
      const got = await readF32(gpu, out, tree.rows * s.nHeads * s.headDim);
      const args = { ...tree, q, qStride, kv };
      const want = pagedAttentionRef(s, args, sw);
      // The bound of paged_attention.test.ts (f32 scores: (hd + 4) 2^-24 times the largest |q||k| sum, doubled through
      // the softmax weights), plus the merge: each of at most 8 rescalings by exp2 of a difference of f32 maxima adds
      // a few ulps relative to the output, under 1e-6; tanh's own rounding adds a few ulps of the cap.
      const tol = 2 * (s.headDim + 4) * 2 ** -24 * pagedScoreMagnitude(s, args, sw.scale) + 2e-5 + (sw.softcap ?? 0) * 1e-6;
      expectClose(got, want, { rel: tol, floor: 1 }, `seed ${seed} chunkPages ${chunkPages} slots ${maxSlotsPerRow}`);
      // The partials carry real weight: attention over each row's own keys alone (after its cascade start) differs,
      // wherever a row's window reaches back before its own start (without a window: every row with partials).
      const reaches = Array.from({ length: tree.rows }, (_, r) => firstVisible(tree.positions[r], sw.window) < lists.meta[3 * r]);
      if (!sw.window) expect(reaches.some(Boolean), `seed ${seed}`).toBe(true);
      if (reaches.some(Boolean)) {
        const alone = ownKeysRef(s, args, sw, (r) => lists.meta[3 * r]);
        expect(got.some((v, i) => Math.abs(v - alone[i]) > 100 * tol), `seed ${seed}`).toBe(true);
      }
      pre.destroy();
      att.destroy();
      paged.destroy();
    });
  });

  // The out-projection on 8-bit activations reads the attention's own 8-bit words (quantizeOut) in place of a
  // quantize_x8 dispatch over `out`: after the cascade merge too they must be exactly what that dispatch makes of out.
  it.each([{}, { window: 40 }])('per-head with quantizeOut after the cascade merge writes what quantize_x8 makes of its output: %o', async (sw: AttentionSwitches) => {
    const gpu = await gpuFor(choice);
    const seed = testSeed();
    const s = { nHeads: 8, kvHeads: 2, headDim: 32, pageSize: 16 };
    const { tree, qStride, prefix, lists, b } = cascadeCase(gpu, s, 4, seed);
    const d = gpu.device;
    const qDim = s.nHeads * s.headDim;
    const outs = [createStorage(d, tree.rows * qDim * 4, 'out (plain)'), createStorage(d, tree.rows * qDim * 4, 'out')];
    const xq = createQuantizedX(gpu, tree.rows, qDim, 'attention out');
    const ref = createQuantizedX(gpu, tree.rows, qDim, 'quantize_x8 of out');
    const pre = prefix.bind(b, 'prefix', sw);
    const plain = new PagedAttention(gpu, { ...s, qStride, variant: 'per-head', registerBlocks: 'loops' }).bind({ ...b, out: outs[0] }, 'plain', sw);
    const att = new PagedAttention(gpu, { ...s, qStride, variant: 'per-head', registerBlocks: 'loops', quantizeOut: true }).bind({ ...b, out: outs[1], xq }, 'paged', sw);
    const quant = new BoundQuantizeX8(gpu, outs[1], ref, qDim, PLAIN, null, 'ref');
    submitPass(gpu, (pass) => {
      pre.encode(pass, { ...lists, maxPages: tree.maxPages });
      plain.encode(pass, { rows: tree.rows, maxPages: tree.maxPages, cascade: true });
      att.encode(pass, { rows: tree.rows, maxPages: tree.maxPages, cascade: true });
      quant.encode(pass, tree.rows);
    });
    const what = `seed ${seed} ${JSON.stringify(sw)}`;
    expect(Array.from(await readF32(gpu, outs[1], tree.rows * qDim)), `${what}: out as without quantizeOut`).toEqual(Array.from(await readF32(gpu, outs[0], tree.rows * qDim)));
    const words = tree.rows * qDim;
    const scales = words / 16; // two f32 per 32-value block
    const got = await readU32(gpu, xq.xq, words);
    expect(Array.from(got), `${what}: words`).toEqual(Array.from(await readU32(gpu, ref.xq, words)));
    expect(Array.from(await readU32(gpu, xq.xs, scales)), `${what}: scales`).toEqual(Array.from(await readU32(gpu, ref.xs, scales)));
    expect(new Set(got).size, 'the output spans many 8-bit steps').toBeGreaterThan(words / 4);
    for (const buf of [...outs, xq.xq, xq.xs, ref.xq, ref.xs]) buf.destroy();
    for (const k of [pre, plain, att, quant]) k.destroy();
  });

  it('rejects shapes and bindings it cannot run, with typed errors', async () => {
    const gpu = await gpuFor(choice);
    const ok = { nHeads: 8, kvHeads: 4, headDim: 16, pageSize: 16, qStride: 128 };
    expect(() => new PrefixAttention(gpu, { ...ok, kvHeads: 3 })).toThrow(InvalidArgumentError);
    expect(() => new PrefixAttention(gpu, { ...ok, headDim: 18, qStride: 144 })).toThrow(UnsupportedModelError);
    expect(() => new PrefixAttention(gpu, { ...ok, queriesPerItem: 0 })).toThrow(InvalidArgumentError);
    const small = createStorage(gpu.device, 64, 'small');
    const op = new PrefixAttention(gpu, ok);
    expect(() => op.bind({ q: small, kv: small, positions: small, pageTable: small, meta: small, partials: small })).toThrow(/no whole page/);
    const kv = createStorage(gpu.device, 4 * 16 * 16 * 8, 'kv');
    const bound = op.bind({ q: kv, kv, positions: kv, pageTable: kv, meta: small, partials: small });
    expect(() => submitPass(gpu, (pass) => bound.encode(pass, { items: 100, slots: 1, taskOff: 0, taskRowOff: 0, itemOff: 0, maxPages: 1 }))).toThrow(
      InvalidArgumentError,
    );
    const paged = new PagedAttention(gpu, ok).bind({ q: kv, kv, rowPath: kv, positions: kv, pageTable: kv, out: kv });
    expect(() => submitPass(gpu, (pass) => paged.encode(pass, { rows: 1, maxPages: 1, cascade: true }))).toThrow(/cascade needs/);
  });
});
