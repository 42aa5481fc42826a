import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, UnsupportedModelError } from '../../src/errors.js';
import type { Gpu } from '../../src/gpu/device.js';
import { createStorage, createStorageFrom } from '../../src/gpu/buffers.js';
import { readF32, readU32 } from '../../src/gpu/readback.js';
import { submitPass } from '../../src/kernels/kernel.js';
import { RopeKv } from '../../src/kernels/rope_kv.js';
import { headsPerInvocation, PagedAttention, type PagedAttentionVariant } from '../../src/kernels/paged_attention.js';
import { BoundQuantizeX8, createQuantizedX } from '../../src/kernels/quantize_x8.js';
import { PLAIN } from '../../src/kernels/x_prologue.js';
import { expectClose } from '../ref/compare.js';
import {
  type AttentionSwitches,
  kvWriteRef,
  pagedAttentionRef,
  pagedScoreMagnitude,
  type PagedAttentionRefArgs,
  type PagedShape,
} from '../ref/attention.js';
import { mulberry32, randomF32, randomNormal, testSeed } from '../ref/random.js';
import { gpuFor, testAdapterChoices } from './adapters.js';
import { isNode } from '../../src/gpu/adapters.js';
import type { RegisterBlocks } from '../../src/gpu/register_blocks.js';
import { writtenOutFits } from '../../src/kernels/paged_attention_written_out.js';

/** Fisher-Yates shuffle of 0..n-1. */
function permutation(rand: () => number, n: number): number[] {
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}

interface Scenario {
  rows: number;
  maxPages: number;
  pages: number;
  qkvStride: number;
  qkv: Float32Array; // (rows, qkvStride): q | k | v heads of each row
  kv: Float32Array; // (pages, 2, Hkv, pageSize, hd): every slot random, the step rows' slots included
  rowPath: Uint32Array; // (rows)
  positions: Uint32Array; // (rows)
  slots: Uint32Array; // (rows) where each row's own K/V belongs
  pageTable: Uint32Array; // (P, maxPages)
}

/**
 * Five paths in one step, like a scheduler would build after forks: 0 decodes; 1 is a fork of 0 sharing its first two
 * full pages; 2 shares 0's first page and prefills a chunk of 9 rows across a page boundary; 3 decodes its very first
 * token (one key); 4 prefills its first 5 tokens. Page ids are a random permutation (non-contiguous), and the
 * rows come in shuffled order. Shared pages lie before every row's position, so a row's own slot is in a page only
 * its path holds (copy-on-write).
 */
function buildScenario(rand: () => number, s: PagedShape, qScale: number): Scenario {
  const ps = s.pageSize;
  const seqLen = [2 * ps + 3, 2 * ps + 5, 3 * ps + 4, 1, 5];
  const chunk = [1, 1, 9, 1, 5]; // rows of each path this step, ending at seqLen - 1
  const shared: [number, number, number][] = [[1, 0, 2], [2, 0, 1]]; // [path, fromPath, pages shared]
  const pagesOf = seqLen.map((n) => Math.ceil(n / ps));
  const maxPages = Math.max(...pagesOf);
  const pages = pagesOf.reduce((a, b) => a + b, 0) + 3; // a few pages no path uses
  const ids = permutation(rand, pages);
  const pageTable = new Uint32Array(seqLen.length * maxPages);
  let next = 0;
  seqLen.forEach((_, p) => {
    for (let i = 0; i < pagesOf[p]; i++) {
      const share = shared.find(([path, , k]) => path === p && i < k);
      pageTable[p * maxPages + i] = share ? pageTable[share[1] * maxPages + i] : ids[next++];
    }
  });
  const rowList: [number, number][] = [];
  seqLen.forEach((n, p) => {
    for (let pos = n - chunk[p]; pos < n; pos++) rowList.push([p, pos]);
  });
  const order = permutation(rand, rowList.length);
  const rows = rowList.length;
  const rowPath = Uint32Array.from(order, (i) => rowList[i][0]);
  const positions = Uint32Array.from(order, (i) => rowList[i][1]);
  const slots = Uint32Array.from(order, (i) => {
    const [p, pos] = rowList[i];
    return pageTable[p * maxPages + Math.floor(pos / ps)] * ps + (pos % ps);
  });
  const qDim = s.nHeads * s.headDim;
  const kvDim = s.kvHeads * s.headDim;
  const qkvStride = qDim + 2 * kvDim;
  // q and k normal with scale 1.5: scores q.k/sqrt(hd) have a standard deviation near 2.25, so softmax weights range
  // widely and the running max moves often; v uniform in [-1, 1).
  const qkv = new Float32Array(rows * qkvStride);
  for (let r = 0; r < rows; r++) {
    qkv.set(randomNormal(rand, qDim, 1.5 * qScale), r * qkvStride);
    qkv.set(randomNormal(rand, kvDim, 1.5), r * qkvStride + qDim);
    qkv.set(randomF32(rand, kvDim, 1), r * qkvStride + qDim + kvDim);
  }
  const kv = new Float32Array(pages * 2 * kvDim * ps);
  const pageLen = kvDim * ps;
  for (let pg = 0; pg < pages; pg++) {
    kv.set(randomNormal(rand, pageLen, 1.5), 2 * pg * pageLen);
    kv.set(randomF32(rand, pageLen, 1), (2 * pg + 1) * pageLen);
  }
  return { rows, maxPages, pages, qkvStride, qkv, kv, rowPath, positions, slots, pageTable };
}

function upload(gpu: Gpu, sc: Scenario) {
  const d = gpu.device;
  return {
    qkv: createStorageFrom(d, sc.qkv, 'qkv'),
    kv: createStorageFrom(d, sc.kv, 'kv'),
    rowPath: createStorageFrom(d, sc.rowPath, 'rowPath'),
    positions: createStorageFrom(d, sc.positions, 'positions'),
    pageTable: createStorageFrom(d, sc.pageTable, 'pageTable'),
    slots: createStorageFrom(d, sc.slots, 'slots'),
  };
}

const HEADS = [
  [8, 4],
  [9, 3],
  [4, 4],
] as const;
const CASES = [8, 64].flatMap((headDim) =>
  HEADS.flatMap(([nHeads, kvHeads]) => [16, 7].map((pageSize) => ({ nHeads, kvHeads, headDim, pageSize }))),
);
/**
 * Each kernel form: per-head with private arrays (loops), per-head written out (the form of Chromium's GL route, taken
 * where the shape fits writtenOutFits, else the loops), split-keys.
 */
const FORMS: { variant: PagedAttentionVariant; registerBlocks?: RegisterBlocks }[] = [
  { variant: 'per-head', registerBlocks: 'loops' },
  { variant: 'per-head', registerBlocks: 'unrolled' },
  { variant: 'split-keys' },
];

/**
 * Error bound of the f32 kernel against float64, as an absolute error on outputs that are convex combinations of
 * values in [-1, 1). A score's f32 dot product errs by at most about (hd + 4) * 2^-24 * sum_i |q_i k_i| / sqrt(hd) (the
 * +4 covers rounding the scale, log2(e) and the product with them); each softmax weight then errs relatively by at most
 * twice the worst score error (its own score and the normaliser's), and exp2's few-ulp error plus the f32 sums over
 * at most ~60 keys add under 1e-5.
 */
function tolerance(s: PagedShape, a: PagedAttentionRefArgs, scale?: number): number {
  return 2 * (s.headDim + 4) * 2 ** -24 * pagedScoreMagnitude(s, a, scale) + 1e-5;
}

/**
 * Per-layer switches: windows shorter than a page, equal to one, straddling pages, of one key; an explicit scale;
 * soft-caps of 2 and 0.7, below the scores' spread (sd ~2.25 * scale / hd^-0.5), so tanh bends most scores.
 */
const LAYER_CASES: AttentionSwitches[] = [
  { window: 5 },
  { window: 7, softcap: 2 },
  { window: 16, scale: 0.3 },
  { window: 1 },
  { softcap: 0.7, scale: 0.05 },
];

describe.each(testAdapterChoices())('paged_attention on %s', (choice) => {
  describe.each(FORMS)('%o', (form) => {
    const { variant } = form;
    it.each(CASES)('matches float64 after the KV write in the same pass: %o', async (s) => {
      const gpu = await gpuFor(choice);
      const seed = testSeed();
      const sc = buildScenario(mulberry32(seed), s, 1);
      const b = upload(gpu, sc);
      const qDim = s.nHeads * s.headDim;
      const kvDim = s.kvHeads * s.headDim;
      const out = createStorage(gpu.device, sc.rows * qDim * 4, 'out');
      // rope_kv without a norm or rotation is the plain KV write of the rows' k and v.
      const writer = new RopeKv(gpu, { ...s, qkvStride: sc.qkvStride, qkNorm: 'none' });
      const write = writer.bind(b, { invFreq: [] });
      const op = new PagedAttention(gpu, { ...s, qStride: sc.qkvStride, ...form });
      expect(op.variant).toBe(variant);
      // The written-out form runs where asked and the shape fits (every shape here).
      expect(op.writtenOut).toBe(form.registerBlocks === 'unrolled' && writtenOutFits(s.headDim, op.headsPerInvocation, 1));
      const att = op.bind({ ...b, q: b.qkv, out });
      submitPass(gpu, (pass) => {
        write.encode(pass, sc.rows);
        att.encode(pass, { rows: sc.rows, maxPages: sc.maxPages });
      });
      const got = await readF32(gpu, out, sc.rows * qDim);
      const pool = kvWriteRef({ ...s, qkvStride: sc.qkvStride, kOffset: qDim, vOffset: qDim + kvDim }, sc.qkv, sc.slots, sc.kv);
      const args = { ...sc, q: sc.qkv, qStride: sc.qkvStride, kv: pool };
      const want = pagedAttentionRef(s, args);
      const tol = tolerance(s, args);
      // Absolute error (floor 1 = the bound on |v|), bound derived in `tolerance`.
      expectClose(got, want, { rel: tol, floor: 1 }, `seed ${seed}`);
      // The rows' own K/V matter: attention over the pool before the write gives a clearly different answer.
      const stale = pagedAttentionRef(s, { ...args, kv: sc.kv });
      expect(got.some((v, i) => Math.abs(v - stale[i]) > 100 * tol), `seed ${seed}`).toBe(true);
      writer.destroy();
      att.destroy();
    });

    it.each(LAYER_CASES)('matches float64 with a sliding window, scale and soft-cap per layer: %o', async (sw) => {
      const gpu = await gpuFor(choice);
      const seed = testSeed();
      const s = { nHeads: 9, kvHeads: 3, headDim: 16, pageSize: 7 };
      const sc = buildScenario(mulberry32(seed), s, 1);
      const b = upload(gpu, sc);
      const qDim = s.nHeads * s.headDim;
      const out = createStorage(gpu.device, sc.rows * qDim * 4, 'out');
      const att = new PagedAttention(gpu, { ...s, qStride: sc.qkvStride, ...form }).bind({ ...b, q: b.qkv, out }, 'att', sw);
      submitPass(gpu, (pass) => att.encode(pass, { rows: sc.rows, maxPages: sc.maxPages }));
      const got = await readF32(gpu, out, sc.rows * qDim);
      const args = { ...sc, q: sc.qkv, qStride: sc.qkvStride, kv: sc.kv };
      // The bound of `tolerance` with the layer's scale; tanh has slope <= 1, so a soft-cap never enlarges a score's
      // error, and its own f32 evaluation (exp and a division, |tanh| <= 1) adds a few ulps of the cap, under 1e-6.
      const tol = tolerance(s, args, sw.scale) + (sw.softcap ?? 0) * 1e-6;
      expectClose(got, pagedAttentionRef(s, args, sw), { rel: tol, floor: 1 }, `seed ${seed}`);
      // The switch matters: plain causal attention over the same keys differs clearly.
      const plain = pagedAttentionRef(s, args);
      expect(got.some((v, i) => Math.abs(v - plain[i]) > 100 * tol), `seed ${seed}`).toBe(true);
      att.destroy();
    });

    it('stays finite and accurate with scores in the hundreds (online max)', async () => {
      const gpu = await gpuFor(choice);
      const seed = testSeed();
      const s = { nHeads: 9, kvHeads: 3, headDim: 64, pageSize: 7 };
      const sc = buildScenario(mulberry32(seed), s, 40); // scores ~ 90 sd: exp would overflow f32 without the max
      const b = upload(gpu, sc);
      const qDim = s.nHeads * s.headDim;
      const out = createStorage(gpu.device, sc.rows * qDim * 4, 'out');
      const att = new PagedAttention(gpu, { ...s, qStride: sc.qkvStride, ...form }).bind({ ...b, q: b.qkv, out });
      submitPass(gpu, (pass) => att.encode(pass, { rows: sc.rows, maxPages: sc.maxPages }));
      const got = await readF32(gpu, out, sc.rows * qDim);
      const args = { ...sc, q: sc.qkv, qStride: sc.qkvStride, kv: sc.kv };
      const want = pagedAttentionRef(s, args);
      expect(got.every(Number.isFinite), `seed ${seed}`).toBe(true);
      // Same bound as above; it grows with the scores (about 6e-3 here, observed errors ~1e-5): f32 dot products.
      expectClose(got, want, { rel: tolerance(s, args), floor: 1 }, `seed ${seed}`);
      att.destroy();
    });

    it('leaves out the keys of a page id beyond the pool instead of reading out of place', async () => {
      const gpu = await gpuFor(choice);
      const seed = testSeed();
      const rand = mulberry32(seed);
      const s = { nHeads: 4, kvHeads: 2, headDim: 8, pageSize: 7 };
      const pages = 3;
      const qStride = 4 * 8 + 2 * 2 * 8;
      const q = randomNormal(rand, 2 * qStride, 1.5); // (2, qStride)
      const kv = randomF32(rand, pages * 2 * 2 * 7 * 8, 1);
      const pageTable = Uint32Array.from([2, pages + 5]); // one path; its second page id points past the pool
      const positions = Uint32Array.from([10, 4]); // row 0 reaches into the bad page, row 1 does not
      const rowPath = Uint32Array.from([0, 0]);
      const d = gpu.device;
      const out = createStorage(d, 2 * 32 * 4, 'out');
      const att = new PagedAttention(gpu, { ...s, qStride, ...form }).bind({
        q: createStorageFrom(d, q, 'q'),
        kv: createStorageFrom(d, kv, 'kv'),
        rowPath: createStorageFrom(d, rowPath, 'rowPath'),
        positions: createStorageFrom(d, positions, 'positions'),
        pageTable: createStorageFrom(d, pageTable, 'pageTable'),
        out,
      });
      submitPass(gpu, (pass) => att.encode(pass, { rows: 2, maxPages: 2 }));
      const got = await readF32(gpu, out, 2 * 32);
      // Row 0 then attends over the 7 keys of its first page only, as if it stood at position 6.
      const args = { q, qStride, kv, rowPath, positions: [6, 4], pageTable, maxPages: 2, rows: 2 };
      expectClose(got, pagedAttentionRef(s, args), { rel: tolerance(s, args), floor: 1 }, `seed ${seed}`);
      att.destroy();
    });
  });

  it('gives the same bits whatever the number of query heads per per-head invocation', async () => {
    // The per-head variant attends for up to three heads of a GQA group per invocation (one K/V load for all);
    // each head's arithmetic is the same in the same order, so a model's outputs do not depend on the grouping.
    const gpu = await gpuFor(choice);
    const seed = testSeed();
    const s = { nHeads: 12, kvHeads: 2, headDim: 64, pageSize: 7 }; // group 6: 1, 2 and 3 heads per invocation
    const sc = buildScenario(mulberry32(seed), s, 1);
    const b = upload(gpu, sc);
    const qDim = s.nHeads * s.headDim;
    const outs: Float32Array[] = [];
    // Both forms: loops, then written out.
    for (const registerBlocks of ['loops', 'unrolled'] as const) {
      for (const headsPerInvocation of [1, 2, 3]) {
        const out = createStorage(gpu.device, sc.rows * qDim * 4, 'out');
        const op = new PagedAttention(gpu, { ...s, qStride: sc.qkvStride, variant: 'per-head', headsPerInvocation, registerBlocks });
        expect(op.headsPerInvocation).toBe(headsPerInvocation);
        const att = op.bind({ ...b, q: b.qkv, out });
        submitPass(gpu, (pass) => att.encode(pass, { rows: sc.rows, maxPages: sc.maxPages }));
        outs.push(await readF32(gpu, out, sc.rows * qDim));
        att.destroy();
      }
    }
    const args = { ...sc, q: sc.qkv, qStride: sc.qkvStride, kv: sc.kv };
    expectClose(outs[0], pagedAttentionRef(s, args), { rel: tolerance(s, args), floor: 1 }, `seed ${seed}`);
    for (const o of outs.slice(1)) expect(Array.from(o), `seed ${seed}`).toEqual(Array.from(outs[0]));
    const dflt = new PagedAttention(gpu, { ...s, qStride: sc.qkvStride, variant: 'per-head' });
    expect(dflt.headsPerInvocation).toBe(3);
    expect(() => new PagedAttention(gpu, { ...s, qStride: sc.qkvStride, variant: 'per-head', headsPerInvocation: 4 })).toThrow(InvalidArgumentError);
    expect(() => new PagedAttention(gpu, { ...s, qStride: sc.qkvStride, variant: 'per-head', headsPerInvocation: 5 })).toThrow(InvalidArgumentError);
    expect(() => new PagedAttention(gpu, { ...s, qStride: sc.qkvStride, variant: 'split-keys', headsPerInvocation: 2 })).toThrow(InvalidArgumentError);
  });

  it('gives the same bits with one, two or four rows per per-head invocation, in any row order', async () => {
    // A block of rows walks the whole pages all of them hold once (each K/V load feeding every row's heads), then each
    // row's own keys; every head sees the same operations in the same order, so the output bits do not depend on the
    // grouping. Rows shuffled (blocks of different paths, some sharing pages) and in path order (prompt-chunk rows
    // together); the scenario's 17 rows twice (34), so the last block is short.
    const gpu = await gpuFor(choice);
    const seed = testSeed();
    for (const s of [{ nHeads: 8, kvHeads: 4, headDim: 8, pageSize: 4 }, { nHeads: 6, kvHeads: 2, headDim: 8, pageSize: 5 }, { nHeads: 4, kvHeads: 4, headDim: 16, pageSize: 7 }]) {
      for (const sorted of [false, true]) {
        const one = buildScenario(mulberry32(seed), s, 1);
        const twice = (a: Uint32Array) => Uint32Array.from([...a, ...a]);
        const qkv2 = new Float32Array(2 * one.qkv.length);
        qkv2.set(one.qkv);
        qkv2.set(one.qkv.map((x) => -x), one.qkv.length); // the second copy's rows ask other queries of the same keys
        const sc: Scenario = { ...one, rows: 2 * one.rows, qkv: qkv2, rowPath: twice(one.rowPath), positions: twice(one.positions), slots: twice(one.slots) };
        if (sorted) {
          const order = Array.from({ length: sc.rows }, (_, i) => i).sort((x, y) => sc.rowPath[x] - sc.rowPath[y] || sc.positions[x] - sc.positions[y]);
          const qkv = new Float32Array(sc.qkv.length);
          order.forEach((r, i) => qkv.set(sc.qkv.subarray(r * sc.qkvStride, (r + 1) * sc.qkvStride), i * sc.qkvStride));
          Object.assign(sc, { qkv, rowPath: Uint32Array.from(order, (r) => sc.rowPath[r]), positions: Uint32Array.from(order, (r) => sc.positions[r]), slots: Uint32Array.from(order, (r) => sc.slots[r]) });
        }
        const b = upload(gpu, sc);
        const qDim = s.nHeads * s.headDim;
        const outs: Float32Array[] = [];
        // Loops, then written out.
        for (const [registerBlocks, rowsPerInvocation] of (['loops', 'unrolled'] as const).flatMap((f) => [1, 2, 4].map((r) => [f, r] as const))) {
          const out = createStorage(gpu.device, sc.rows * qDim * 4, 'out');
          const op = new PagedAttention(gpu, { ...s, qStride: sc.qkvStride, variant: 'per-head', rowsPerInvocation, registerBlocks });
          // 34 rows fill four workgroups of 8 in blocks of 4 with 4 invocations per row, not with 2 (6 heads, GQ 3).
          expect(op.rowsFor(sc.rows), `${sc.rows} rows`).toBe(rowsPerInvocation === 4 && s.nHeads / op.headsPerInvocation < 4 ? 2 : rowsPerInvocation);
          const att = op.bind({ ...b, q: b.qkv, out });
          submitPass(gpu, (pass) => att.encode(pass, { rows: sc.rows, maxPages: sc.maxPages }));
          outs.push(await readF32(gpu, out, sc.rows * qDim));
          att.destroy();
        }
        const args = { ...sc, q: sc.qkv, qStride: sc.qkvStride, kv: sc.kv };
        const what = `seed ${seed}, ${JSON.stringify(s)}, ${sorted ? 'path order' : 'shuffled'}`;
        expectClose(outs[2], pagedAttentionRef(s, args), { rel: tolerance(s, args), floor: 1 }, what);
        outs.slice(1).forEach((o, i) => expect(Array.from(o), `${what}, form ${i + 1}`).toEqual(Array.from(outs[0])));
        // Kernels on the submitting thread (cpuThreads 0) group rows from 2 up: odd row counts end in a short block.
        const inline = new PagedAttention({ ...gpu, cpuThreads: 0 }, { ...s, qStride: sc.qkvStride, variant: 'per-head', rowsPerInvocation: 4 });
        for (const rows of [2, 3, 5, 7]) {
          expect(inline.rowsFor(rows)).toBe(rows >= 4 ? 4 : 2);
          const out = createStorage(gpu.device, rows * qDim * 4, 'out');
          const att = inline.bind({ ...b, q: b.qkv, out });
          submitPass(gpu, (pass) => att.encode(pass, { rows, maxPages: sc.maxPages }));
          const got = await readF32(gpu, out, rows * qDim);
          expect(Array.from(got), `${what}, inline, ${rows} rows`).toEqual(Array.from(outs[0].subarray(0, rows * qDim)));
          att.destroy();
        }
      }
    }
    // stories260K's shape, 4 invocations per row: blocks of 4 from 29 rows, pairs from 7 (llvmpipe's default; explicit
    // elsewhere).
    const blocks = new PagedAttention(gpu, { nHeads: 8, kvHeads: 4, headDim: 8, pageSize: 16, qStride: 128, variant: 'per-head', rowsPerInvocation: 4 });
    expect([3, 7, 8, 16, 28, 29, 256].map((r) => blocks.rowsFor(r))).toEqual([1, 2, 2, 2, 2, 4, 4]);
    // With llvmpipe's kernels on the submitting thread (cpuThreads 0) no workgroup count is kept: the widest grouping.
    const inline = new PagedAttention({ ...gpu, cpuThreads: 0 }, { nHeads: 8, kvHeads: 4, headDim: 8, pageSize: 16, qStride: 128, variant: 'per-head', rowsPerInvocation: 4 });
    expect([1, 3, 4, 16, 256].map((r) => inline.rowsFor(r))).toEqual([1, 2, 4, 4, 4]);
    const dflt = new PagedAttention(gpu, { nHeads: 8, kvHeads: 4, headDim: 8, pageSize: 16, qStride: 128, variant: 'per-head' });
    // Blocks by default on llvmpipe only: in Node by name, in the page on the GL route (browser-gl), not on SwiftShader.
    const llvmpipe = isNode ? /llvmpipe/i.test(gpu.name) : choice === 'llvmpipe';
    expect(dflt.rowsPerInvocation).toBe(llvmpipe ? 4 : 1);
    expect(new PagedAttention(gpu, { nHeads: 9, kvHeads: 3, headDim: 64, pageSize: 16, qStride: 960, variant: 'per-head' }).rowsPerInvocation).toBe(1);
    expect(() => new PagedAttention(gpu, { nHeads: 8, kvHeads: 4, headDim: 8, pageSize: 16, qStride: 128, variant: 'per-head', rowsPerInvocation: 3 })).toThrow(InvalidArgumentError);
    // 18 pipelines, half of them written out, which llvmpipe and SwiftShader take long to compile: 176 s on llvmpipe
    // and past 120 s on SwiftShader in a clean-clone CI at load average 8-12 (2026-12-01 05:00 UTC).
  }, 360_000);

  it('writes its output on 8 bits as quantize_x8 would (quantizeOut), bit for bit, for 1-3 heads and 1-4 rows per invocation', async () => {
    // The out-projection on 8-bit activations reads these words in place of a quantize_x8 dispatch over `out`
    // (model/gpu_model.ts): they must be exactly what that dispatch makes of `out` (shaders/xq8_block.wgsl in both).
    // Head dims of one and two 32-value blocks; 34 rows (a short last block of 4); GQA groups of 1, 2 and 3.
    const gpu = await gpuFor(choice);
    const seed = testSeed();
    for (const s of [{ nHeads: 4, kvHeads: 4, headDim: 32, pageSize: 7 }, { nHeads: 4, kvHeads: 2, headDim: 32, pageSize: 4 }, { nHeads: 9, kvHeads: 3, headDim: 64, pageSize: 16 }]) {
      // The scenario's 17 rows twice (the copy asks the negated queries): 34 rows, enough for blocks of 4 (rowsFor).
      const one = buildScenario(mulberry32(seed), s, 1);
      const twice = (x: Uint32Array) => Uint32Array.from([...x, ...x]);
      const qkv2 = new Float32Array(2 * one.qkv.length);
      qkv2.set(one.qkv);
      qkv2.set(one.qkv.map((x) => -x), one.qkv.length);
      const sc: Scenario = { ...one, rows: 2 * one.rows, qkv: qkv2, rowPath: twice(one.rowPath), positions: twice(one.positions), slots: twice(one.slots) };
      const b = upload(gpu, sc);
      const qDim = s.nHeads * s.headDim;
      const plainOut = createStorage(gpu.device, sc.rows * qDim * 4, 'out (plain)');
      const plain = new PagedAttention(gpu, { ...s, qStride: sc.qkvStride, variant: 'per-head', registerBlocks: 'loops' }).bind({ ...b, q: b.qkv, out: plainOut });
      submitPass(gpu, (pass) => plain.encode(pass, { rows: sc.rows, maxPages: sc.maxPages }));
      const want = await readF32(gpu, plainOut, sc.rows * qDim);
      // Blocks of rows only where a row's heads per invocation hold at most 32 values (defaultRowsPerInvocation's rule:
      // larger blocks take minutes to compile on llvmpipe).
      for (const rowsPerInvocation of s.headDim * headsPerInvocation(s.nHeads, s.kvHeads, s.headDim) <= 32 ? [1, 2, 4] : [1]) {
        const what = `seed ${seed}, ${JSON.stringify(s)}, ${rowsPerInvocation} rows per invocation`;
        const out = createStorage(gpu.device, sc.rows * qDim * 4, 'out');
        const xq = createQuantizedX(gpu, sc.rows, qDim, 'attention out');
        const ref = createQuantizedX(gpu, sc.rows, qDim, 'quantize_x8 of out');
        const op = new PagedAttention(gpu, { ...s, qStride: sc.qkvStride, variant: 'per-head', registerBlocks: 'loops', rowsPerInvocation, quantizeOut: true });
        if (s.nHeads / op.headsPerInvocation === 4) expect(op.rowsFor(sc.rows), what).toBe(rowsPerInvocation);
        const att = op.bind({ ...b, q: b.qkv, out, xq });
        const quant = new BoundQuantizeX8(gpu, out, ref, qDim, PLAIN, null, 'ref');
        submitPass(gpu, (pass) => {
          att.encode(pass, { rows: sc.rows, maxPages: sc.maxPages });
          quant.encode(pass, sc.rows);
        });
        const got = await readF32(gpu, out, sc.rows * qDim);
        expect(Array.from(got), `${what}: out as without quantizeOut`).toEqual(Array.from(want));
        const words = sc.rows * qDim;
        const scales = (sc.rows * qDim) / 16; // two f32 per 32-value block
        expect(Array.from(await readU32(gpu, xq.xq, words)), `${what}: words`).toEqual(Array.from(await readU32(gpu, ref.xq, words)));
        expect(Array.from(await readU32(gpu, xq.xs, scales)), `${what}: scales`).toEqual(Array.from(await readU32(gpu, ref.xs, scales)));
        // Not trivially: the output spans many 8-bit steps.
        expect(new Set(await readU32(gpu, xq.xq, words)).size).toBeGreaterThan(words / 4);
        for (const buf of [out, xq.xq, xq.xs, ref.xq, ref.xs]) buf.destroy();
        att.destroy();
        quant.destroy();
      }
      plain.destroy();
      plainOut.destroy();
    }
    const ok = { nHeads: 4, kvHeads: 2, headDim: 32, pageSize: 4, qStride: 256 };
    expect(() => new PagedAttention(gpu, { ...ok, headDim: 8, qStride: 64, variant: 'per-head', registerBlocks: 'loops', quantizeOut: true })).toThrow(InvalidArgumentError);
    expect(() => new PagedAttention(gpu, { ...ok, variant: 'split-keys', quantizeOut: true })).toThrow(InvalidArgumentError);
    expect(() => new PagedAttention(gpu, { ...ok, variant: 'per-head', registerBlocks: 'unrolled', quantizeOut: true })).toThrow(InvalidArgumentError);
  });

  it('picks its variant from the adapter unless told', async () => {
    const gpu = await gpuFor(choice);
    const op = new PagedAttention(gpu, { nHeads: 2, kvHeads: 1, headDim: 8, pageSize: 4, qStride: 32 });
    expect(op.variant).toBe(gpu.isCpu ? 'per-head' : 'split-keys');
  });

  it('rejects shapes it cannot run, with typed errors', async () => {
    const gpu = await gpuFor(choice);
    const ok = { nHeads: 8, kvHeads: 4, headDim: 16, pageSize: 16, qStride: 256 };
    expect(() => new PagedAttention(gpu, { ...ok, kvHeads: 3 })).toThrow(InvalidArgumentError);
    expect(() => new PagedAttention(gpu, { ...ok, headDim: 18, qStride: 288 })).toThrow(UnsupportedModelError);
    expect(() => new PagedAttention(gpu, { ...ok, headDim: 512, qStride: 8192 })).toThrow(UnsupportedModelError);
    expect(() => new PagedAttention(gpu, { ...ok, qStride: 100 })).toThrow(InvalidArgumentError);
    const kv = createStorage(gpu.device, 4 * 16 * 16 * 8, 'kv');
    const op = new PagedAttention(gpu, ok);
    const bufs = { q: kv, kv, rowPath: kv, positions: kv, pageTable: kv, out: kv };
    expect(() => op.bind(bufs, 'a', { window: 2.5 })).toThrow(InvalidArgumentError);
    expect(() => op.bind(bufs, 'a', { scale: 0 })).toThrow(InvalidArgumentError);
    expect(() => op.bind(bufs, 'a', { softcap: -1 })).toThrow(InvalidArgumentError);
    const small = createStorage(gpu.device, 64, 'small');
    const att = new PagedAttention(gpu, ok);
    expect(() => att.bind({ q: small, kv: small, rowPath: small, positions: small, pageTable: small, out: small })).toThrow(
      /no whole page/,
    );
  });
});
