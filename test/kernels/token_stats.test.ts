import { describe, expect, it } from 'vitest';
import { createStorage, createStorageFrom } from '../../src/gpu/buffers.js';
import type { Gpu } from '../../src/gpu/device.js';
import { readBuffer } from '../../src/gpu/readback.js';
import { submitPass } from '../../src/kernels/kernel.js';
import { TokenStats, loopIterationsPerThread, LOOP_BUDGET, singleDrawDefault } from '../../src/kernels/token_stats.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { decodeTokenStats, proposalLogProb, writeSamplingRow, type TokenStatsRecord } from '../../src/sample/stats_record.js';
import { mulberry32, randomNormal, testSeed } from '../ref/random.js';
import {
  drawFrom,
  gumbelRef,
  largestKeyOutside,
  nucleusEntropy,
  nucleusSizeFor,
  sampleKeys,
  tokenStatsRef,
  unitFromHash,
  xxh32Word,
  type SamplingRow,
  type TokenStatsRef,
} from '../ref/token_stats.js';
import { gpuFor, testAdapterChoices } from './adapters.js';

const EPS = 2 ** -24; // f32 unit roundoff
const ULP = 2 ** -23; // one f32 ulp, relative, at worst

async function compile(gpu: Gpu, opts: ConstructorParameters<typeof TokenStats>[1]): Promise<TokenStats> {
  gpu.device.pushErrorScope('validation');
  const op = new TokenStats(gpu, opts);
  const err = await gpu.device.popErrorScope();
  expect(err, `token_stats ${JSON.stringify(opts)} failed to compile: ${err?.message}`).toBeNull();
  return op;
}

async function runStats(gpu: Gpu, op: TokenStats, logits: Float32Array, rows: SamplingRow[], maxDraws?: number): Promise<TokenStatsRecord[]> {
  const S = rows.length;
  const samp = new ArrayBuffer(S * 16);
  rows.forEach((r, i) => writeSamplingRow(samp, i, r));
  const lb = createStorageFrom(gpu.device, logits, `logits (${S}, ${op.vocab}) f32`);
  const sb = createStorageFrom(gpu.device, new Uint8Array(samp), `sampling (${S}, 4)`);
  const ob = createStorage(gpu.device, S * op.layout.byteStride, `stats (${S}, ${op.layout.stride})`);
  const bound = op.bind({ logits: lb, sampling: sb, stats: ob });
  submitPass(gpu, (pass) => bound.encode(pass, S, maxDraws));
  const recs = decodeTokenStats(await readBuffer(gpu, ob, S * op.layout.byteStride), S, op.layout);
  lb.destroy();
  sb.destroy();
  ob.destroy();
  bound.destroy();
  return recs;
}

/**
 * Error bounds of the f32 kernel against float64, from its arithmetic:
 * - s = sum exp(x - m): a thread adds ceil(V/WG) positive terms in sequence, then a log2(WG) tree: recursive
 *   summation of positive terms errs by at most (terms) * eps relative. Each exp term errs by a few ulp (WGSL allows
 *   3 + 2|x| ulp; the terms that carry the mass have |x| around meanGap = E_p[m - x]), and each change of the running
 *   max rescales by one more exp: 6 ulp + 2 * meanGap ulp covers both.
 * - log: WGSL allows 2^-21 absolute near 1, else 3 ulp relative.
 * - a log-prob (x - m) - log s: one rounding of x - m, one of the difference, plus log s's error.
 * - entropy log s + (-u / s): both terms non-negative, so relative errors do not amplify; u's terms carry one more
 *   product and difference rounding each (2 eps).
 */
function bounds(ref: TokenStatsRef, V: number, wg: number) {
  const terms = Math.ceil(V / wg) + Math.log2(wg);
  const ds = terms * EPS + (6 + 2 * ref.meanGap) * ULP;
  const logErr = (v: number) => Math.max(2 ** -21, 3 * ULP * Math.abs(v));
  const lsErr = ds + logErr(ref.logS);
  return {
    lse: EPS * Math.abs(ref.lse) + lsErr,
    entropy: lsErr + ref.meanGap * (2 * ds + 4 * EPS) + EPS * ref.entropy,
    logprob: (x: number) => EPS * (Math.abs(x - ref.maxLogit) + Math.abs(x - ref.maxLogit - ref.logS)) + lsErr,
    sumRel: ds,
  };
}

/** Error of a Gumbel key (x - m) / T + g in f32: the division and two roundings, plus g = -log(-log u) (see bounds). */
function keyErr(x: number, m: number, T: number, g: number): number {
  const a = Math.abs(x - m) / T;
  return 3 * EPS * a + EPS * Math.abs(a + g) + 2 ** -21 + 3 * ULP * Math.abs(g) + 4 * EPS;
}

function near(got: number, want: number, tol: number, what: string): void {
  if (want === -Infinity || want === Infinity) {
    expect(got, what).toBe(want);
    return;
  }
  expect(Math.abs(got - want), `${what}: got ${got}, want ${want}, tolerance ${tol.toExponential(2)}`).toBeLessThanOrEqual(tol);
}

/** Checks one GPU record against the float64 reference; returns whether the draw equals the reference's exactly. */
function checkRow(rec: TokenStatsRecord, logits: Float32Array, row: SamplingRow, topK: number, maxSamples: number, wg: number, what: string): boolean {
  const V = logits.length;
  const ref = tokenStatsRef(logits, topK, row, maxSamples);
  const b = bounds(ref, V, wg);
  for (const [k, v] of Object.entries(rec)) {
    const vals = Array.isArray(v) ? v : [v];
    expect(vals.some((x) => Number.isNaN(x)), `${what}: NaN in ${k}`).toBe(false);
  }
  // The max is one of the inputs, picked by comparisons: exact.
  expect(rec.maxLogit, `${what}: max`).toBe(ref.maxLogit);
  near(rec.logSumExp, ref.lse, b.lse, `${what}: logsumexp`);
  near(rec.entropy, ref.entropy, b.entropy, `${what}: entropy`);
  near(rec.normEntropy, ref.normEntropy, b.entropy / Math.log(V) + EPS, `${what}: normalised entropy`);
  // Top-k is chosen by exact comparisons of the f32 inputs (ties to the lower id): ids must match exactly.
  expect(rec.topIds, `${what}: top-k ids`).toEqual(ref.topIds);
  let lpTol = 0;
  rec.topLogprobs.forEach((lp, j) => {
    const t = b.logprob(logits[ref.topIds[j]]);
    lpTol = Math.max(lpTol, t);
    near(lp, ref.topLogprobs[j], t, `${what}: top-k log-prob ${j}`);
  });
  // A mean of log-probs errs no more than its worst term, plus the summation (k terms).
  near(rec.confidence, ref.confidence, lpTol + topK * EPS * Math.abs(ref.confidence), `${what}: confidence`);

  expect(rec.greedy, `${what}: greedy flag`).toBe(ref.greedy);
  if (ref.greedy) {
    // Temperature 0 samples a point mass on the largest logit (exact comparisons, ties to the lower id): one token
    // whatever nSamples asks, proposal log-prob log 1 = 0, sampling entropy 0.
    expect(rec.nucleusSize, `${what}: greedy candidates`).toBe(ref.nucleusSize);
    expect(rec.sampledIds, `${what}: greedy ids`).toEqual(ref.sampledIds);
    expect(rec.sampledIds.length, `${what}: greedy draws`).toBeLessThanOrEqual(1);
    expect(rec.sampledProposalLogprobs.every((q) => q === 0), `${what}: greedy proposal log-probs`).toBe(true);
    expect([rec.samplingEntropy, rec.samplingNormEntropy], `${what}: greedy sampling entropy`).toEqual([0, 0]);
    // The point mass is the only drawable token and it was drawn: threshold -inf, inclusion probability 1.
    expect(rec.threshold, `${what}: greedy threshold`).toBe(-Infinity);
    expect(rec.sampledKeys.every((k) => k === 0), `${what}: greedy keys`).toBe(true);
    rec.sampledLogprobs.forEach((lp, j) => near(lp, ref.sampledLogprobs[j], b.logprob(logits[ref.sampledIds[j]]), `${what}: greedy log-prob ${j}`));
    return true;
  }
  // The nucleus cut compares two f32 mass sums: any cut whose float64 cumulative mass is within their error of topP
  // is as right as the reference's (on a wide distribution that is a range of sizes), if it does not split a tie.
  const topP = Math.fround(row.topP);
  const massTol = 2 * b.sumRel + 4 * EPS;
  const n = rec.nucleusSize;
  if (n !== ref.nucleusSize) {
    const lo = nucleusSizeFor(logits, ref.order, ref.cumMass, topP - massTol);
    const hi = nucleusSizeFor(logits, ref.order, ref.cumMass, topP + massTol);
    const whole = n === ref.order.length || logits[ref.order[n]] !== logits[ref.order[n - 1]];
    expect(topP < 1 && lo <= n && n <= hi && whole, `${what}: nucleus size ${n}, reference ${ref.nucleusSize}, accepted ${lo}..${hi}`).toBe(true);
  }
  expect(rec.sampledIds.length, `${what}: samples drawn`).toBe(Math.min(ref.nSamples, n));
  expect(new Set(rec.sampledIds).size, `${what}: samples distinct`).toBe(rec.sampledIds.length);
  // Each pick must be the largest remaining key of the nucleus, or within the two keys' f32 error of it.
  const keys = sampleKeys(logits, ref, n, row);
  const T = Math.fround(row.temperature);
  const err = (id: number) => keyErr(logits[id], ref.maxLogit, T, gumbelRef(row.randomBits >>> 0, id));
  const left = new Map(keys);
  for (const [j, id] of rec.sampledIds.entries()) {
    expect(left.has(id), `${what}: pick ${j} (${id}) outside the nucleus or repeated`).toBe(true);
    const best = drawFrom(left, 1)[0];
    const gap = left.get(best)! - left.get(id)!;
    expect(gap, `${what}: pick ${j} is ${id}, key ${left.get(id)}; best remaining ${best}, key ${left.get(best)}`).toBeLessThanOrEqual(err(id) + err(best));
    left.delete(id);
  }
  const zNuc = ref.cumMass[n - 1] * ref.temperedZ;
  // log z_nucleus as the proposal log-probs carry it: a mass sum's relative error, then log's.
  const logZTol = massTol + 2 ** -21 + 3 * ULP * Math.abs(Math.log(zNuc));
  rec.sampledIds.forEach((id, j) => {
    const x = logits[id];
    near(rec.sampledLogprobs[j], x - ref.maxLogit - ref.logS, b.logprob(x), `${what}: sample log-prob ${j}`);
    const q = (x - ref.maxLogit) / T - Math.log(zNuc);
    near(rec.sampledProposalLogprobs[j], q, 3 * EPS * Math.abs(q) + massTol + 2 ** -21, `${what}: proposal log-prob ${j}`);
    // The key in log-q units: the f32 key's error (keyErr), the subtraction of log z, and log z's error.
    const key = keys.get(id)! - Math.log(zNuc);
    near(rec.sampledKeys[j], key, err(id) + logZTol + EPS * Math.abs(key), `${what}: key of draw ${j}`);
  });
  // The threshold is the largest key of the tokens left after the draw (within the f32 error of the keys near the top:
  // the kernel may rank two keys closer than their error either way), -inf exactly when nothing is left.
  if (left.size === 0) expect(rec.threshold, `${what}: threshold with the nucleus exhausted`).toBe(-Infinity);
  else {
    const top = largestKeyOutside(keys, rec.sampledIds);
    const bestErr = err(drawFrom(left, 1)[0]);
    // Keys far below the top cannot be the kernel's pick: only those within a few key errors need their error.
    let tol = bestErr;
    for (const [id, k] of left) if (top - k <= 4 * bestErr + 1e-5) tol = Math.max(tol, err(id));
    const want = top - Math.log(zNuc);
    near(rec.threshold, want, 2 * tol + logZTol + EPS * Math.abs(want), `${what}: threshold`);
    // Every draw's key is at least the threshold: kappa separates the drawn from the rest.
    expect(Math.min(...rec.sampledKeys), `${what}: keys above the threshold`).toBeGreaterThanOrEqual(rec.threshold);
  }
  expect(Number.isFinite(proposalLogProb(rec)), `${what}: proposal log-prob of the draw`).toBe(true);
  // The sampling entropy on the kernel's nucleus (a prefix of the reference order). zq and wq are sums of at most
  // ceil(V / WG) terms per thread and a log2(WG) tree (recursive summation: terms * eps relative), each term off by its
  // exp's error (termUlp, see nucleusEntropy); log zq adds log's error; wq / zq errs by both sums' relative errors and
  // one division; the final difference one rounding.
  if (ref.nSamples > 0) {
    const h = nucleusEntropy(logits, ref.order, n, ref.maxLogit, T);
    const terms = Math.ceil(V / wg) + Math.log2(wg);
    const relZ = terms * EPS + h.termUlpZ * ULP;
    const relW = terms * EPS + h.termUlpW * ULP;
    const tol = relZ + Math.max(2 ** -21, 3 * ULP * Math.log(h.zq)) + h.meanGap * (relZ + relW + EPS) + EPS * h.entropy;
    near(rec.samplingEntropy, h.entropy, tol, `${what}: sampling entropy`);
    near(rec.samplingNormEntropy, h.entropy / Math.log(V), tol / Math.log(V) + EPS, `${what}: normalised sampling entropy`);
  }
  return rec.sampledIds.join() === drawFrom(keys, ref.nSamples).join();
}

const CONFIGS: Omit<SamplingRow, 'randomBits'>[] = [
  { temperature: 1, topP: 1, nSamples: 8 },
  { temperature: 0.7, topP: 0.9, nSamples: 3 },
  { temperature: 0, topP: 1, nSamples: 8 },
  { temperature: 1.5, topP: 0.5, nSamples: 1 },
  { temperature: 1, topP: 0.99, nSamples: 8 },
  { temperature: 0.3, topP: 1, nSamples: 2 },
];

function samplingRows(rand: () => number, S: number, offset = 0): SamplingRow[] {
  return Array.from({ length: S }, (_, r) => ({ ...CONFIGS[(r + offset) % CONFIGS.length], randomBits: Math.floor(rand() * 2 ** 32) }));
}

describe('token_stats reference hash', () => {
  it('is XXH32 of a 4-byte word (xxHash sanity vectors)', () => {
    // The 4-byte vectors of xxHash's sanity test: the buffer bytes are (PRIME32 * PRIME64^i mod 2^64) >> 56.
    let gen = 2654435761n;
    let word = 0;
    for (let i = 0; i < 4; i++) {
      word |= Number(gen >> 56n) << (8 * i);
      gen = (gen * 11400714785074694797n) & 0xffffffffffffffffn;
    }
    expect(xxh32Word(0, word >>> 0)).toBe(0xa9de7ce9);
    expect(xxh32Word(0x9e3779b1, word >>> 0)).toBe(0x2baafe83);
    expect(unitFromHash(0)).toBe(2 ** -24);
    expect(unitFromHash(0xffffffff)).toBe(1 - 2 ** -24);
  });
});

describe.each(testAdapterChoices())('token_stats on %s', (choice) => {
  const TOPK = 20;
  const MAXS = 8;
  const main = async (V: number) => {
    const gpu = await gpuFor(choice);
    return { gpu, op: await compile(gpu, { vocab: V, topK: TOPK, maxSamples: MAXS }) };
  };
  const check = async (V: number, S: number, logits: Float32Array, rows: SamplingRow[], what: string) => {
    const { gpu, op } = await main(V);
    const recs = await runStats(gpu, op, logits, rows);
    let exact = 0;
    for (let r = 0; r < S; r++) {
      if (checkRow(recs[r], logits.subarray(r * V, (r + 1) * V), rows[r], TOPK, MAXS, op.workgroupSize, `${what} row ${r}`)) exact++;
    }
    return { recs, exact };
  };

  it.each([
    [5, 17],
    [63, 3],
    [63, 1],
    [1000, 17],
    [32000, 3],
    [151936, 1],
  ])('matches float64 on random logits, V=%i S=%i', async (V, S) => {
    const seed = testSeed();
    const rand = mulberry32(seed);
    const logits = randomNormal(rand, S * V, 3);
    const { exact } = await check(V, S, logits, samplingRows(rand, S, V), `seed ${seed}`);
    // A draw that differs from float64 needs two keys within f32 error: at most one such row in a few dozen.
    expect(exact, `seed ${seed}: draws equal to float64`).toBeGreaterThanOrEqual(S - 1);
  });

  it.each([
    [5, 7],
    [63, 17],
    [512, 16],
    [32000, 3],
  ])('the single-draw pipeline gives the general one\'s records for rows drawing 0 or 1 tokens, V=%i S=%i', async (V, S) => {
    const gpu = await gpuFor(choice);
    const single = await compile(gpu, { vocab: V, topK: TOPK, maxSamples: MAXS, singleDraw: true });
    const seed = testSeed();
    const rand = mulberry32(seed);
    const logits = randomNormal(rand, S * V, 3);
    // Every sampling config (greedy, top-p < 1 with and without a bisection, low and high temperature) at 0 or 1 draws.
    const rows = samplingRows(rand, S, V).map((r, i) => ({ ...r, nSamples: i % 5 === 4 ? 0 : 1 }));
    const general = await runStats(gpu, single, logits, rows);
    const one = await runStats(gpu, single, logits, rows, 1);
    // The first ns + 1 keys of a sorted list do not depend on its length: the same records, bit for bit.
    expect(one, `seed ${seed}`).toEqual(general);
    for (let r = 0; r < S; r++) checkRow(one[r], logits.subarray(r * V, (r + 1) * V), rows[r], TOPK, MAXS, single.workgroupSize, `seed ${seed} row ${r}`);
    // The default: built on llvmpipe (Node and Chromium's GL route, the browser-gl project), not on SwiftShader.
    expect(singleDrawDefault(gpu)).toBe(choice === 'llvmpipe');
  });

  it.each([
    [1000, 3],
    [32000, 2],
  ])('peaked logits (one +20), V=%i S=%i', async (V, S) => {
    const seed = testSeed();
    const rand = mulberry32(seed);
    const logits = randomNormal(rand, S * V, 1);
    // The peak stands 20 above the row's largest other logit (not 20 above its own draw, whose low tail, 1 row in ~3e5,
    // left it under -0.01 at V = 32000).
    for (let r = 0; r < S; r++) {
      const row = logits.subarray(r * V, (r + 1) * V);
      row[Math.floor(rand() * V)] = row.reduce((a, b) => Math.max(a, b), -Infinity) + 20;
    }
    const { recs } = await check(V, S, logits, samplingRows(rand, S), `seed ${seed}`);
    // The peak holds nearly all the mass: the entropy is small (not zero) and the top token's log-prob near 0 (the
    // others hold at most V e^-20 < 1e-4 of it).
    for (const rec of recs) expect(rec.topLogprobs[0]).toBeGreaterThan(-0.01);
  });

  it.each([5, 1000, 151936])('flat logits: H = ln V, Hnorm = 1, ties by id, V=%i', async (V) => {
    const rows: SamplingRow[] = [
      { temperature: 1, topP: 0.5, randomBits: 7, nSamples: 3 },
      { temperature: 0, topP: 1, randomBits: 0, nSamples: 4 },
    ];
    const logits = new Float32Array(rows.length * V).fill(1.25);
    const { recs } = await check(V, rows.length, logits, rows, `flat V=${V}`);
    for (const rec of recs) {
      // Every exp(0) term is 1 and sums of ones are exact below 2^24: only log's 3 ulp remain.
      near(rec.entropy, Math.log(V), 3 * ULP * Math.log(V), 'flat entropy');
      near(rec.normEntropy, 1, 4 * ULP, 'flat normalised entropy');
      expect(rec.topIds).toEqual(Array.from({ length: Math.min(TOPK, V) }, (_, i) => i));
    }
    // A tie at the nucleus cut keeps the whole tie: with all logits equal the nucleus is the vocabulary, and the
    // sampling distribution is uniform on it (entropy ln V).
    expect(recs[0].nucleusSize).toBe(V);
    near(recs[0].samplingEntropy, Math.log(V), 3 * ULP * Math.log(V) + Math.ceil(V / 64) * EPS, 'flat sampling entropy');
    // Temperature 0: the point mass on the lowest id among the tied largest logits, one token for nSamples 4.
    expect(recs[1].sampledIds).toEqual([0]);
    expect(recs[1].samplingEntropy).toBe(0);
  });

  it.each([
    ['-inf', -Infinity],
    ['-1e30', -1e30],
  ])('one-hot logits (%s elsewhere): H = 0, no NaN', async (_name, low) => {
    const V = 1000;
    const hot = 617;
    const rows: SamplingRow[] = [
      { temperature: 1, topP: 1, randomBits: 99, nSamples: 8 },
      { temperature: 0, topP: 1, randomBits: 0, nSamples: 3 },
      { temperature: 0.5, topP: 0.3, randomBits: 5, nSamples: 2 },
    ];
    const logits = new Float32Array(rows.length * V).fill(low);
    for (let r = 0; r < rows.length; r++) logits[r * V + hot] = 3;
    const { recs } = await check(V, rows.length, logits, rows, `one-hot ${low}`);
    for (const rec of recs) {
      expect(rec.entropy).toBe(0);
      expect(rec.logSumExp).toBe(3);
      expect(rec.topIds.slice(0, 3)).toEqual([hot, 0, 1]);
      expect(rec.topLogprobs[0]).toBe(0);
    }
    // Tokens at -1e30 are below the tempered cut (and -inf ones masked): only the hot token can be drawn.
    expect(recs[0].sampledIds).toEqual([hot]);
    expect(recs[0].sampledProposalLogprobs).toEqual([0]);
    // Greedy is the point mass on the highest logit: one token, whatever the rest holds.
    expect(recs[1].sampledIds).toEqual([hot]);
    for (const rec of recs) expect(rec.samplingEntropy).toBe(0);
  });

  it('a fully masked row gives no NaN and draws nothing', async () => {
    const V = 63;
    const rows: SamplingRow[] = [{ temperature: 1, topP: 0.9, randomBits: 3, nSamples: 4 }];
    const { gpu, op } = await main(V);
    const [rec] = await runStats(gpu, op, new Float32Array(V).fill(-Infinity), rows);
    expect(rec.logSumExp).toBe(-Infinity);
    expect(rec.entropy).toBe(0);
    expect(rec.confidence).toBe(Infinity);
    expect(rec.sampledIds).toEqual([]);
    expect(rec.topLogprobs.every((v) => v === -Infinity)).toBe(true);
  });

  it('top-k and greedy order ties by lower id', async () => {
    const V = 300;
    const S = 3;
    const seed = testSeed();
    const rand = mulberry32(seed);
    // Logits from {0, 1, 2, 3}: many ties everywhere, also at the top.
    const logits = new Float32Array(S * V).map(() => Math.floor(rand() * 4));
    // Row 2: the goal is reached inside the top-k list, but the tie at the cut runs past the list's end.
    const rows = [0, 1, 2].map((r) => ({ temperature: [0, 1, 0.8][r], topP: [1, 1, 0.1][r], randomBits: r * 7919, nSamples: 8 }));
    const { recs } = await check(V, S, logits, rows, `ties seed ${seed}`);
    const threes = (r: number) => [...logits.subarray(r * V, (r + 1) * V).keys()].filter((i) => logits[r * V + i] === 3);
    expect(recs[0].sampledIds).toEqual(threes(0).slice(0, 1));
    // A tie at the nucleus cut is kept whole.
    expect(recs[2].nucleusSize).toBe(threes(2).length);
  });

  it('issue 10.2: temperature 0 is a point mass (one token, q = 0, entropy 0) for any nSamples; at T = 1, top-p 1 the sampling entropy is the model entropy', async () => {
    const V = 1000;
    const seed = testSeed();
    const rand = mulberry32(seed);
    const logits = randomNormal(rand, 4 * V, 2);
    const rows: SamplingRow[] = [1, 3, 8].map((n) => ({ temperature: 0, topP: 1, randomBits: Math.floor(rand() * 2 ** 32), nSamples: n }));
    rows.push({ temperature: 1, topP: 1, randomBits: 11, nSamples: 8 });
    const { recs } = await check(V, rows.length, logits, rows, `T=0 seed ${seed}`);
    for (const rec of recs.slice(0, 3)) {
      expect(rec.sampledIds).toEqual([rec.topIds[0]]);
      expect(rec.nucleusSize).toBe(1);
      expect(proposalLogProb(rec)).toBe(0);
      expect(rec.samplingNormEntropy).toBe(0);
      // The model distribution itself is not a point mass. Gaussian logits (sd 2) over 1000 ids give a heavy-tailed
      // normalised entropy: over 20,000 seeds its median was 0.74, its 1% quantile 0.52 (so the old bound 0.5 failed
      // about 1 run in 30 with 3 rows) and its minimum 0.149; 0.05 cannot fail by chance and still separates from 0.
      expect(rec.normEntropy).toBeGreaterThan(0.05);
    }
    // T = 1, top-p 1: the sampling distribution is the model's, up to the -80 cut (< V e^-80 of mass).
    const t1 = recs[3];
    expect(t1.sampledIds.length).toBe(8);
    expect(Math.abs(t1.samplingEntropy - t1.entropy)).toBeLessThanOrEqual(1e-5 * t1.entropy);
  });

  it('topP small: only the top token can be drawn', async () => {
    const V = 1000;
    const S = 4;
    const seed = testSeed();
    const rand = mulberry32(seed);
    const logits = randomNormal(rand, S * V, 1);
    const rows = Array.from({ length: S }, (_, r) => ({ temperature: 0.5 + r, topP: 1e-4, randomBits: Math.floor(rand() * 2 ** 32), nSamples: 5 }));
    const { recs } = await check(V, S, logits, rows, `topP small seed ${seed}`);
    recs.forEach((rec) => {
      expect(rec.nucleusSize).toBe(1);
      expect(rec.sampledIds).toEqual([rec.topIds[0]]);
      expect(Math.abs(rec.sampledProposalLogprobs[0])).toBeLessThanOrEqual(1e-6); // log 1 from f32 mass sums
      expect(Math.abs(proposalLogProb(rec))).toBeLessThanOrEqual(1e-6);
      // A one-token nucleus is a point mass too: entropy log(zq) - wq / zq with zq = 1, wq = 0 exactly.
      expect(rec.samplingEntropy).toBe(0);
    });
  });

  it('ascending logits at V=151936 (every logit inserted; llvmpipe loop budget)', async () => {
    const V = 151936;
    const seed = testSeed();
    const rand = mulberry32(seed);
    const logits = randomNormal(rand, 2 * V, 3);
    logits.subarray(0, V).sort();
    logits.subarray(V).sort();
    const rows: SamplingRow[] = [
      { temperature: 0, topP: 1, randomBits: 0, nSamples: 8 },
      { temperature: 0.9, topP: 0.8, randomBits: Math.floor(rand() * 2 ** 32), nSamples: 8 },
    ];
    const { recs } = await check(V, 2, logits, rows, `ascending seed ${seed}`);
    expect(recs[0].sampledIds).toEqual([V - 1]);
    const { op } = await main(V);
    expect(loopIterationsPerThread(V, op.workgroupSize, TOPK, MAXS)).toBeLessThanOrEqual(LOOP_BUDGET);
  });

  // Upper 1e-6 tail of the chi-square distribution (scipy.stats.chi2.ppf(1 - 1e-6, df)). The draws come from a fixed
  // seed, so the statistic is a fixed number for a correct kernel; a wrong temperature, nucleus or a draw with
  // replacement moves it into the hundreds.
  const CHI2_1E6: Record<number, number> = { 2: 27.63, 4: 33.38, 5: 35.89, 19: 63.68 };
  it.each([
    [0.8, 1],
    [1.2, 0.7],
  ])('ordered pairs of draws follow Plackett-Luce on softmax(logits/T), T=%f topP=%f', async (T, topP) => {
    const V = 5;
    const N = 4000;
    const row = Float32Array.from([1.0, 0.5, 0, -0.5, -1.5]);
    const gpu = await gpuFor(choice);
    // Eight threads cover V = 5: fewer barriers per row for the 4000 rows.
    const op = await compile(gpu, { vocab: V, topK: 1, maxSamples: 2, workgroupSize: 8 });
    const rand = mulberry32(0x5eed);
    const logits = new Float32Array(N * V);
    for (let r = 0; r < N; r++) logits.set(row, r * V);
    const rows = Array.from({ length: N }, () => ({ temperature: T, topP, randomBits: Math.floor(rand() * 2 ** 32), nSamples: 2 }));
    const recs = await runStats(gpu, op, logits, rows);
    // Every field of the first rows against float64; then the draws of all rows (keys of V = 5 tokens are near-tied
    // within f32 error about once in 10^5 rows).
    for (let r = 0; r < 40; r++) checkRow(recs[r], row, rows[r], 1, 2, op.workgroupSize, `chi-square row ${r}`);
    const ref = tokenStatsRef(row, 1, rows[0], 2);
    const differ = recs.filter((rec, r) => {
      const want = drawFrom(sampleKeys(row, ref, ref.nucleusSize, rows[r]), 2);
      return rec.sampledIds.join() !== want.join() || rec.nucleusSize !== ref.nucleusSize;
    }).length;
    expect(differ, 'draws that differ from float64').toBeLessThanOrEqual(2);
    // Float64 nucleus and probabilities.
    const w = Array.from(row, (x) => Math.exp(x / T));
    const z = w.reduce((a, b) => a + b, 0);
    let n = 0;
    for (let c = 0; c < topP - 1e-12 && n < V; n++) c += w[n] / z; // logits are sorted descending
    if (topP >= 1) n = V;
    const zn = w.slice(0, n).reduce((a, b) => a + b, 0);
    const q = w.slice(0, n).map((x) => x / zn);
    const pairs = new Map<string, number>();
    const first = new Array<number>(n).fill(0);
    for (const rec of recs) {
      expect(rec.sampledIds.length).toBe(2);
      expect(rec.sampledIds.every((id) => id < n), `draw ${rec.sampledIds} outside the nucleus of ${n}`).toBe(true);
      const key = rec.sampledIds.join();
      pairs.set(key, (pairs.get(key) ?? 0) + 1);
      first[rec.sampledIds[0]]++;
    }
    let chiPairs = 0;
    for (let a = 0; a < n; a++) {
      for (let b = 0; b < n; b++) {
        if (a === b) continue;
        const e = N * q[a] * (q[b] / (1 - q[a]));
        chiPairs += ((pairs.get(`${a},${b}`) ?? 0) - e) ** 2 / e;
      }
    }
    const chiFirst = first.reduce((acc, o, a) => acc + (o - N * q[a]) ** 2 / (N * q[a]), 0);
    expect(chiPairs, `pairs chi-square, ${n * (n - 1) - 1} dof`).toBeLessThan(CHI2_1E6[n * (n - 1) - 1]);
    expect(chiFirst, `first draw chi-square, ${n - 1} dof`).toBeLessThan(CHI2_1E6[n - 1]);
  });

  // The smallest variant (topK 1, 2 samples, 8 threads) is the chi-square test's; this is the largest.
  it.each([{ topK: 20, maxSamples: 20, workgroupSize: 256 }])('variant %o compiles and matches float64', async (opts) => {
    const V = 300;
    const S = 3;
    const gpu = await gpuFor(choice);
    const wg = Math.min(opts.workgroupSize, gpu.limits.maxComputeInvocationsPerWorkgroup);
    const op = await compile(gpu, { vocab: V, ...opts, workgroupSize: wg });
    const seed = testSeed();
    const rand = mulberry32(seed);
    const logits = randomNormal(rand, S * V, 2);
    const rows = samplingRows(rand, S).map((r) => ({ ...r, nSamples: opts.maxSamples }));
    const recs = await runStats(gpu, op, logits, rows);
    recs.forEach((rec, r) =>
      checkRow(rec, logits.subarray(r * V, (r + 1) * V), rows[r], opts.topK, opts.maxSamples, wg, `seed ${seed} row ${r}`),
    );
  });

  // The rank merge (kernels/token_stats.ts rankMergeDefault: llvmpipe with kernels on the submitting thread) takes the
  // same winners as the tree: a merge of exact per-thread lists is exact whatever its order. Short lists are exact only
  // through the overflow check and the second read of the row: laneTopK 1 overflows on nearly every row (any thread
  // holding two of the top 20), so a check that missed an overflow would give wrong top-k lists there.
  it.each([
    [5, 7],
    [63, 17],
    [512, 16],
    [1000, 6],
  ])('the rank merge with short lists gives the tree\'s records bit for bit, V=%i S=%i', async (V, S) => {
    const gpu = await gpuFor(choice);
    const seed = testSeed();
    const rand = mulberry32(seed);
    const logits = randomNormal(rand, S * V, 3);
    // Row 1: every 8th id holds the 20 largest logits, all in one thread's share at 8 threads (the overflow); row 2:
    // masked logits and ties; the other rows random.
    for (let j = 0; j < Math.min(TOPK, Math.ceil(V / 8)); j++) logits[V + 8 * j] = 12 + 0.125 * j;
    for (let i = 0; i < V; i++) if (i % 3 === 0) logits[2 * V + i] = i % 2 ? -Infinity : 2.5;
    const rows = samplingRows(rand, S, V);
    const single = rows.map((r) => ({ ...r, nSamples: Math.min(r.nSamples, 1) }));
    // The sums' order depends on the threads per row: each rank form against the tree at its own width.
    for (const [wg, laneTopKs] of [[8, [undefined, 1]], [16, [3]]] as const) {
      const tree = await compile(gpu, { vocab: V, topK: TOPK, maxSamples: MAXS, workgroupSize: wg, merge: 'tree' });
      expect(tree.laneTopK).toBe(TOPK);
      const want = await runStats(gpu, tree, logits, rows);
      const wantOne = await runStats(gpu, tree, logits, single, 1);
      for (const laneTopK of laneTopKs) {
        const rank = await compile(gpu, { vocab: V, topK: TOPK, maxSamples: MAXS, workgroupSize: wg, merge: 'rank', laneTopK });
        expect(rank.laneTopK).toBe(laneTopK ?? 8);
        const what = `seed ${seed}, ${wg} threads, lists of ${rank.laneTopK}`;
        expect(await runStats(gpu, rank, logits, rows), what).toEqual(want);
        expect(await runStats(gpu, rank, logits, single, 1), `${what}, single draw`).toEqual(wantOne);
      }
      for (let r = 0; r < S; r++) checkRow(want[r], logits.subarray(r * V, (r + 1) * V), rows[r], TOPK, MAXS, wg, `seed ${seed} row ${r}`);
    }
  });

  it('takes the rank merge with lists of 8 where llvmpipe runs kernels on the submitting thread, else the tree', async () => {
    const gpu = await gpuFor(choice);
    // 8 threads per row, llvmpipe's default (SwiftShader's would be 64, past the rank merge's 16).
    const opts = { vocab: 512, topK: TOPK, maxSamples: MAXS, workgroupSize: 8 };
    const inline = await compile({ ...gpu, cpuThreads: 0 }, opts);
    expect([inline.merge, inline.laneTopK]).toEqual(['rank', 8]);
    const pooled = await compile({ ...gpu, cpuThreads: 2 }, opts);
    expect([pooled.merge, pooled.laneTopK]).toEqual(['tree', TOPK]);
    expect(() => new TokenStats(gpu, { ...opts, merge: 'tree', laneTopK: 8 })).toThrow(InvalidArgumentError);
    expect(() => new TokenStats(gpu, { ...opts, merge: 'rank', laneTopK: 21 })).toThrow(InvalidArgumentError);
    expect(() => new TokenStats(gpu, { ...opts, merge: 'rank', workgroupSize: 32 })).toThrow(InvalidArgumentError);
    // A vocabulary that needs more than 16 threads per row under llvmpipe's loop cap takes the tree even inline.
    const wide = await compile({ ...gpu, cpuThreads: 0 }, { ...opts, vocab: 151936, workgroupSize: 32 });
    expect([wide.merge, wide.laneTopK]).toEqual(['tree', TOPK]);
  });

  it('rejects buffers too small for the rows', async () => {
    const { gpu, op } = await main(63);
    const small = createStorage(gpu.device, 63 * 4, 'logits (1, 63)');
    const samp = createStorage(gpu.device, 2 * 16, 'sampling (2, 4)');
    const stats = createStorage(gpu.device, 2 * op.layout.byteStride, 'stats');
    const k = op.bind({ logits: small, sampling: samp, stats });
    const enc = gpu.device.createCommandEncoder();
    const pass = enc.beginComputePass();
    expect(() => k.encode(pass, 2)).toThrow(InvalidArgumentError);
    pass.end();
    enc.finish();
  });
});
