// llvmpipe silently stops an invocation's loops after 65,535 iterations in total, and paged attention's per-head
// variant runs one head's every key in one invocation. The model takes per-head only up to perHeadKeyLimit(headDim)
// keys (src/model/attention_ops.ts; up to head dim 128 Mesa unrolls the per-key loops, so ~56k keys). This runs
// per-head at exactly that many keys in the worst case for its loop count: scores that rise at every key, so the running max grows and the accumulator is rescaled at every key (the
// loop an earlier estimate left out: at head dim 256 it returned zeros in the last dimensions).
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/errors.js';
import { createStorage, createStorageFrom } from '../../src/gpu/buffers.js';
import { readF32 } from '../../src/gpu/readback.js';
import { submitPass } from '../../src/kernels/kernel.js';
import { PagedAttention } from '../../src/kernels/paged_attention.js';
import { blockKeyLimit, ModelAttention, perHeadKeyLimit } from '../../src/model/attention_ops.js';
import { mulberry32 } from '../ref/random.js';
import { gpuFor, testAdapterChoices } from './adapters.js';

const PAGE = 16;
const SLOPE = 0.002; // k = SLOPE * j in every dimension, q = 1: the score grows by sqrt(headDim) * SLOPE per key

describe.each(testAdapterChoices())('paged attention per-head at the model\'s key limit on %s', (adapter) => {
  // [head dim, query heads sharing the kv head]: three heads take one per-head invocation at head dim 64 (their
  // per-key loops must stay unrolled for the limit to hold).
  it.each([
    [64, 1],
    [128, 1],
    [256, 1],
    [64, 3],
  ])('head dim %d, %d query heads, rising scores, equals float64', async (hd, heads) => {
    const gpu = await gpuFor(adapter);
    const pages = Math.floor(perHeadKeyLimit(hd, PAGE) / PAGE);
    const n = pages * PAGE;
    // kv: [pages][K | V][PAGE][hd] f32 (one KV head)
    const kv = new Float32Array(pages * 2 * PAGE * hd);
    const v = new Float64Array(n);
    for (let j = 0; j < n; j++) {
      const pg = Math.floor(j / PAGE);
      const o = j % PAGE;
      kv.fill(Math.fround(SLOPE * j), (pg * 2 * PAGE + o) * hd, (pg * 2 * PAGE + o + 1) * hd);
      v[j] = Math.fround(Math.sin(j / 50 + hd));
      kv.fill(v[j], ((pg * 2 + 1) * PAGE + o) * hd, ((pg * 2 + 1) * PAGE + o + 1) * hd);
    }
    // float64 softmax(q.k / sqrt(hd)) . v, the same in every output dimension
    let num = 0;
    let den = 0;
    for (let j = 0; j < n; j++) {
      const w = Math.exp((hd * Math.fround(SLOPE * j) - hd * Math.fround(SLOPE * (n - 1))) / Math.sqrt(hd));
      num += w * v[j];
      den += w;
    }
    const want = num / den;
    const d = gpu.device;
    const out = createStorage(d, heads * hd * 4, 'out (1, heads * hd) f32');
    const op = new PagedAttention(gpu, { nHeads: heads, kvHeads: 1, headDim: hd, pageSize: PAGE, qStride: heads * hd, variant: 'per-head' });
    expect(op.headsPerInvocation).toBe(heads);
    const att = op.bind({
      q: createStorageFrom(d, new Float32Array(heads * hd).fill(1), 'q (1, heads * hd) f32'),
      kv: createStorageFrom(d, kv, 'kv'),
      rowPath: createStorageFrom(d, Uint32Array.from([0]), 'rowPath'),
      positions: createStorageFrom(d, Uint32Array.from([n - 1]), 'positions'),
      pageTable: createStorageFrom(d, Uint32Array.from({ length: pages }, (_, i) => i), 'pageTable'),
      out,
    });
    submitPass(gpu, (pass) => att.encode(pass, { rows: 1, maxPages: pages }));
    const got = await readF32(gpu, out, heads * hd);
    // The weights fall by e^-(sqrt(hd) * SLOPE) per key from the last, so the last ~1 / (sqrt(hd) * SLOPE) <= 80 keys
    // carry the mean. Each score is an f32 dot product of size up to hd * SLOPE * n (~1.4e4 at head dim 128, 56k keys),
    // off by ~1e-3 absolute, which moves a weight by ~1e-4 relative, smoothly from key to key; v moves < 2 over those
    // keys. Measured: 1.3e-5 at most (head dim 128), so 2e-4 leaves 15x room, while a cut-off loop (a missing rescale or
    // missing keys) moves the mean by > 1e-2 (head dim 256 at 56k keys, past its limit: off by 1.4).
    for (let i = 0; i < heads * hd; i++) expect(Math.abs(got[i] - want), `dim ${i} of ${heads} x ${hd}, ${n} keys`).toBeLessThan(2e-4);
  });
});

describe.each(testAdapterChoices())('the model\'s attention variant on %s', (adapter) => {
  // SmolLM2-135M's attention (9 query heads, 3 kv heads, head dim 64, 8,192-token context) takes per-head on CPU
  // adapters; at head dim 256 (Gemma's) the same context needs split-keys; real GPUs always take split-keys.
  it.each([
    [64, 8192],
    [256, 8192],
    [256, 256],
  ])('head dim %d, %d keys', async (hd, keys) => {
    const gpu = await gpuFor(adapter);
    const d = gpu.device;
    const buf = (label: string) => createStorage(d, 64, label);
    const shape = { nHeads: 9, kvHeads: 3, headDim: hd, pageSize: PAGE, qStride: 15 * hd, maxRows: 4 };
    const buffers = { q: buf('q'), positions: buf('positions'), rowPath: buf('rowPath'), pageTable: buf('pageTable'), out: buf('out') };
    const att = new ModelAttention(gpu, shape, buffers, { cascade: false, longestKeys: keys });
    const perHead = gpu.isCpu && keys <= perHeadKeyLimit(hd, PAGE);
    expect(att.variant).toBe(perHead ? 'per-head' : 'split-keys');
    if (gpu.isCpu) expect(att.variant).toBe(hd === 64 || keys === 256 ? 'per-head' : 'split-keys');
    att.destroy();
    // Forced variants (benchmarks): split-keys anywhere; per-head only within its key limit, else a typed error.
    const forced = new ModelAttention(gpu, shape, buffers, { cascade: false, longestKeys: keys, variant: 'split-keys' });
    expect(forced.variant).toBe('split-keys');
    forced.destroy();
    const perHeadForced = () => new ModelAttention(gpu, shape, buffers, { cascade: false, longestKeys: keys, variant: 'per-head' });
    if (keys > perHeadKeyLimit(hd, PAGE)) expect(perHeadForced).toThrow(InvalidArgumentError);
    else {
      const ok = perHeadForced();
      expect(ok.variant).toBe('per-head');
      ok.destroy();
    }
  });

  // A block of r rows per per-head invocation (small heads: kernels/paged_attention.ts) walks all r rows' keys in one
  // invocation when they share no page: taken only where blockKeyLimit(r) says that fits the loop limit.
  it('takes blocks of r rows per invocation only where they fit the loop limit', async () => {
    const gpu = await gpuFor(adapter);
    if (!gpu.isCpu) return;
    const d = gpu.device;
    const buf = (label: string) => createStorage(d, 64, label);
    const shape = { nHeads: 8, kvHeads: 4, headDim: 8, pageSize: PAGE, qStride: 128, maxRows: 4 };
    const buffers = { q: buf('q'), positions: buf('positions'), rowPath: buf('rowPath'), pageTable: buf('pageTable'), out: buf('out') };
    const limit = perHeadKeyLimit(8, PAGE);
    const [four, two] = [blockKeyLimit(4, 8, PAGE), blockKeyLimit(2, 8, PAGE)];
    // The page-table comparisons cost iterations too: a block's limit is below limit / r.
    expect(four).toBeLessThan(limit / 4);
    expect(two).toBeLessThan(limit / 2);
    const cases = [[512, 4], [four, 4], [four + 1, 2], [two, 2], [two + 1, 1], [limit, 1]];
    for (const [keys, rows] of cases) {
      const att = new ModelAttention(gpu, shape, buffers, { cascade: false, longestKeys: keys });
      expect(att.variant).toBe('per-head');
      // Blocks are llvmpipe's default only (kernels/paged_attention.ts); SwiftShader keeps one row per invocation.
      expect(att.rowsPerInvocation, `${keys} keys`).toBe(/swiftshader/i.test(gpu.name) ? 1 : rows);
      att.destroy();
    }
  });
});

// The worst case for a block's loop counter (found by review: the rule once left out the page-table comparisons and
// the shared walk): llvmpipe counts a SIMD batch's loop iterations, each loop as long as its longest lane, so blocks
// alternate between rows that all read one path's pages (a full shared walk) and rows 0..r-2 on that path with the
// last row on another (sharedKeys walks every page for each pair with row 0 but the last, then every own walk is
// full). At blockKeyLimit(r) keys every row must still see every key: equal to float64 and, bit for bit, to one row
// per invocation. llvmpipe only: the limit is llvmpipe's (test/kernels/paged_attention.test.ts checks the blocks'
// bits on both adapters).
describe('per-head row blocks at their key limit, worst sharing, on llvmpipe', () => {
  const H = 8;
  const KVH = 4;
  const HD = 8; // stories260K's heads: the shape that takes row blocks
  it.each([
    [4, 16],
    [4, 5],
    [4, 1],
    [2, 1],
    [1, 1],
  ])('%d rows per invocation, pages of %d keys', async (r, P) => {
    const gpu = await gpuFor('llvmpipe');
    const d = gpu.device;
    const n = blockKeyLimit(r, HD, P);
    const pagesPer = Math.ceil(n / P);
    const rand = mulberry32(1000 * r + P);
    // kv: [2 * pagesPer pages][K | V][KVH][P][HD] f32; path 0 holds pages [0, pagesPer), path 1 the rest
    const kv = Float32Array.from({ length: 2 * pagesPer * 2 * KVH * P * HD }, () => rand() * 2 - 1);
    const rows = 33; // enough blocks to take r rows per invocation (rowsFor), and a short last one
    const qStride = 3 * H * HD;
    const q = Float32Array.from({ length: rows * qStride }, () => rand() * 2 - 1);
    const rowPath = Uint32Array.from({ length: rows }, (_, i) => (Math.floor(i / r) % 2 === 1 && i % r === r - 1 ? 1 : 0));
    const pageTable = Uint32Array.from({ length: 2 * pagesPer }, (_, i) => i);
    const outs: Float32Array[] = [];
    for (const rpi of [1, r]) {
      const out = createStorage(d, rows * H * HD * 4, 'out (rows, H * HD) f32');
      const op = new PagedAttention(gpu, { nHeads: H, kvHeads: KVH, headDim: HD, pageSize: P, qStride, variant: 'per-head', rowsPerInvocation: rpi });
      expect(op.rowsFor(rows)).toBe(rpi);
      const att = op.bind({
        q: createStorageFrom(d, q, 'q'),
        kv: createStorageFrom(d, kv, 'kv'),
        rowPath: createStorageFrom(d, rowPath, 'rowPath'),
        positions: createStorageFrom(d, new Uint32Array(rows).fill(n - 1), 'positions'),
        pageTable: createStorageFrom(d, pageTable, 'pageTable'),
        out,
      });
      submitPass(gpu, (pass) => att.encode(pass, { rows, maxPages: pagesPer }));
      outs.push(await readF32(gpu, out, rows * H * HD));
    }
    const [single, block] = outs;
    let differing = 0;
    for (let i = 0; i < single.length; i++) if (single[i] !== block[i]) differing++;
    expect(differing, `${n} keys: values where ${r} rows per invocation differ from 1`).toBe(0);
    // float64 softmax(q.k / sqrt(HD)) . v of each row and head. Scores are dot products of 8 values in [-1, 1] (|s| <
    // 3); the f32 online softmax over n <= 30k keys is off by ~1e-6 of the mean; a row that misses the last keys
    // (the loop cut off) moved by ~2e-3 in the review's probe, so 1e-4 separates them.
    for (let row = 0; row < rows; row++) {
      for (let h = 0; h < H; h++) {
        const kvh = Math.floor(h / (H / KVH));
        const score = new Float64Array(n);
        let max = -Infinity;
        for (let j = 0; j < n; j++) {
          const k0 = (((pageTable[rowPath[row] * pagesPer + Math.floor(j / P)] * 2) * KVH + kvh) * P + (j % P)) * HD;
          let s = 0;
          for (let e = 0; e < HD; e++) s += q[row * qStride + h * HD + e] * kv[k0 + e];
          score[j] = s / Math.sqrt(HD);
          max = Math.max(max, score[j]);
        }
        const o = new Float64Array(HD);
        let den = 0;
        for (let j = 0; j < n; j++) {
          const w = Math.exp(score[j] - max);
          const v0 = (((pageTable[rowPath[row] * pagesPer + Math.floor(j / P)] * 2 + 1) * KVH + kvh) * P + (j % P)) * HD;
          for (let e = 0; e < HD; e++) o[e] += w * kv[v0 + e];
          den += w;
        }
        for (let e = 0; e < HD; e++) expect(Math.abs(block[(row * H + h) * HD + e] - o[e] / den), `row ${row} head ${h} dim ${e}, ${n} keys`).toBeLessThan(1e-4);
      }
    }
  });
});
