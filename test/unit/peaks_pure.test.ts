// Confidence-peak branching without a GPU: DeepConf's confidence measures against direct float64 definitions, the
// peak finder against its specification, parameter validation, the accounting identities, and the controller driven
// over the real Scheduler + KvCache by a deterministic fake model (so page lifetimes and row counts are exact).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  bottomGroupConfidence,
  findPeaks,
  groupConfidences,
  lowestGroupConfidence,
  percentile,
  SlidingMean,
  stoppingBar,
  tailConfidence,
  tokenConfidence,
  type PeakOptions,
} from '../../src/branch/confidence.js';
import { peakOptions, peaksAccounting, runPeaks, type PeaksEvent, type PeaksOptions, type PeaksResult } from '../../src/branch/peaks.js';
import { PEAKS_DEFAULTS, peaksParams } from '../../src/branch/peaks_params.js';
import type { BranchEngine, CreatePathOptions, EngineInfo, SessionCounters, StepResult } from '../../src/branch/engine_api.js';
import { CancelledError, InvalidArgumentError } from '../../src/errors.js';
import { KvCache } from '../../src/kv/kv_cache.js';
import type { TokenStatsRecord } from '../../src/sample/stats_record.js';
import type { SamplingParams } from '../../src/sample/params.js';
import { childKey, rootKey, type StreamKey } from '../../src/sample/rng.js';
import { Scheduler } from '../../src/sched/scheduler.js';
import { mulberry32, testSeed } from '../ref/random.js';

const seed = testSeed();
const rand = mulberry32(seed);
const randomConfs = (n: number) => Array.from({ length: n }, () => 3 + 10 * rand());

/** Direct definition: mean over the window ending at each index >= w - 1 (summed afresh, no running sum). */
function groupsRef(c: number[], w: number): number[] {
  if (c.length === 0) return [];
  if (c.length < w) return [c.reduce((a, b) => a + b, 0) / c.length];
  const out: number[] = [];
  for (let i = w - 1; i < c.length; i++) out.push(c.slice(i - w + 1, i + 1).reduce((a, b) => a + b, 0) / w);
  return out;
}

describe(`DeepConf confidence (seed ${seed})`, () => {
  it('token confidence is -mean of the top-k log-probs of a real distribution; uniform gives ln V', () => {
    const V = 37;
    const logits = Array.from({ length: V }, () => 4 * rand());
    const lse = Math.log(logits.reduce((a, x) => a + Math.exp(x), 0));
    const lp = logits.map((x) => x - lse).sort((a, b) => b - a);
    const want = -lp.slice(0, 20).reduce((a, b) => a + b, 0) / 20;
    // Same float64 sums in the same order: only the last ulp can differ.
    expect(Math.abs(tokenConfidence(lp) - want)).toBeLessThan(1e-12);
    expect(tokenConfidence(lp, 5)).toBeCloseTo(-lp.slice(0, 5).reduce((a, b) => a + b, 0) / 5, 12);
    // A vocabulary smaller than k: all of it (k = V).
    expect(tokenConfidence(lp.slice(0, 7))).toBeCloseTo(-lp.slice(0, 7).reduce((a, b) => a + b, 0) / 7, 12);
    expect(tokenConfidence(Array(512).fill(-Math.log(512)))).toBeCloseTo(Math.log(512), 12);
    expect(() => tokenConfidence([])).toThrow(InvalidArgumentError);
  });

  it('group confidences, lowest group, tail and bottom-10% equal their direct definitions', () => {
    for (const [n, w] of [[50, 8], [7, 8], [8, 8], [1, 1], [33, 1], [100, 16]]) {
      const c = randomConfs(n);
      const g = groupConfidences(c, w);
      const ref = groupsRef(c, w);
      expect(g.length, `n=${n} w=${w}`).toBe(ref.length);
      // A running sum over <= 100 values in [3, 13]: drift is a few ulps of ~1000, far below 1e-9.
      g.forEach((x, i) => expect(Math.abs(x - ref[i])).toBeLessThan(1e-9));
      expect(lowestGroupConfidence(c, w)).toBeCloseTo(Math.min(...ref), 9);
      expect(tailConfidence(c, 10)).toBeCloseTo(c.slice(-10).reduce((a, b) => a + b, 0) / Math.min(10, n), 12);
      const sorted = [...ref].sort((a, b) => a - b);
      const k = Math.max(1, Math.ceil(sorted.length * 0.1));
      expect(bottomGroupConfidence(c, w)).toBeCloseTo(sorted.slice(0, k).reduce((a, b) => a + b, 0) / k, 9);
    }
    expect(groupConfidences([], 4)).toEqual([]);
    expect(lowestGroupConfidence([], 4)).toBeNaN();
  });

  it('percentile interpolates like numpy; the stopping bar is the (100 - eta)-th percentile', () => {
    expect(percentile([1, 2, 3, 4], 25)).toBeCloseTo(1.75, 12);
    expect(percentile([4, 1, 3, 2], 50)).toBeCloseTo(2.5, 12);
    expect(percentile([5], 90)).toBe(5);
    expect(percentile([10, 0], 90)).toBeCloseTo(9, 12);
    expect(stoppingBar([1, 2, 3, 4, 5], 10)).toBeCloseTo(4.6, 12); // DeepConf-low: 90th percentile
    expect(stoppingBar([1, 2, 3, 4, 5], 90)).toBeCloseTo(1.4, 12); // DeepConf-high: 10th percentile
    expect(() => stoppingBar([1], 0)).toThrow(InvalidArgumentError);
    expect(() => percentile([], 50)).toThrow(InvalidArgumentError);
  });

  it('the online sliding mean follows the offline groups token by token, and a clone is independent', () => {
    const c = randomConfs(40);
    const s = new SlidingMean(6);
    const ref = groupsRef(c, 6);
    c.forEach((x, i) => {
      s.push(x);
      expect(s.full).toBe(i >= 5);
      if (s.full) expect(Math.abs(s.value - ref[i - 5])).toBeLessThan(1e-9);
    });
    expect(s.lowestGroup).toBeCloseTo(Math.min(...ref), 9);
    const copy = s.clone();
    copy.push(1000);
    expect(copy.value).not.toBeCloseTo(s.value, 3);
    expect(s.value).toBeCloseTo(ref[ref.length - 1], 9);
  });
});

describe(`findPeaks (seed ${seed})`, () => {
  it('finds a hand-made peak at the token after its window, and respects threshold and region', () => {
    //            0  1  2  3  4  5  6  7  8  9
    const confs = [4, 4, 4, 9, 9, 9, 4, 4, 4, 4];
    const o: PeakOptions = { window: 3, threshold: 8, minDistance: 0, minBranchPoint: 1, maxBranchPoint: 9 };
    // Group j = mean(confs[j..j+2]); the all-9 group is j = 3, so the branch point is 6 (the first token after it).
    expect(findPeaks(confs, o)).toEqual([{ branchPoint: 6, confidence: 9 }]);
    expect(findPeaks(confs, { ...o, threshold: 9.01 })).toEqual([]);
    expect(findPeaks(confs, { ...o, maxBranchPoint: 5 })).toEqual([]);
    expect(findPeaks(confs, { ...o, minBranchPoint: 7 })).toEqual([]);
    // A plateau counts once, at its right end.
    expect(findPeaks([4, 9, 9, 9, 9, 4, 4], { ...o, window: 1 })).toEqual([{ branchPoint: 5, confidence: 9 }]);
    expect(findPeaks([9, 9], { ...o, window: 3 })).toEqual([]);
  });

  it('satisfies its specification on random signals: eligible local maxima, spaced, maximal, highest first', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 30, max: 130 }), { minLength: 0, maxLength: 80 }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 40, max: 110 }),
        fc.integer({ min: 0, max: 10 }),
        fc.integer({ min: 0, max: 40 }),
        fc.integer({ min: 0, max: 80 }),
        (raw, window, thr, minDistance, lo, hi) => {
          const confs = raw.map((x) => x / 10);
          const o: PeakOptions = { window, threshold: thr / 10, minDistance, minBranchPoint: lo, maxBranchPoint: hi };
          const got = findPeaks(confs, o);
          const g = groupsRef(confs, window);
          // A group mean equal to a neighbour (or the threshold) in exact arithmetic may come out a rounding error above
          // or below it (the finder slides a running sum): such a near-tie may go either way, so a peak found must
          // qualify with ties allowed (tie -1e-9), and a peak left out must not qualify even without them (+1e-9).
          const qualifies = (b: number, tie: number): boolean => {
            const j = b - window;
            if (confs.length < window || j < 0 || j >= g.length || b < lo || b > hi) return false;
            const left = j === 0 ? -Infinity : g[j - 1];
            const right = j === g.length - 1 ? -Infinity : g[j + 1];
            return g[j] >= o.threshold + tie && g[j] >= left + tie && g[j] > right + tie;
          };
          for (const p of got) {
            expect(qualifies(p.branchPoint, -1e-9)).toBe(true);
            expect(p.confidence).toBeCloseTo(g[p.branchPoint - window], 9);
          }
          for (let i = 1; i < got.length; i++) expect(got[i - 1].confidence).toBeGreaterThanOrEqual(got[i].confidence);
          for (const a of got) for (const b of got) if (a !== b) expect(Math.abs(a.branchPoint - b.branchPoint)).toBeGreaterThanOrEqual(minDistance);
          // Maximal: a qualifying peak left out is too close to a taken one at least as high.
          for (let b = 0; b <= confs.length; b++) {
            if (!qualifies(b, 1e-9) || got.some((p) => p.branchPoint === b)) continue;
            const blocker = got.find((p) => Math.abs(p.branchPoint - b) < minDistance && p.confidence >= g[b - window] - 1e-9);
            expect(blocker, `peak at ${b} left out without reason`).toBeDefined();
          }
        },
      ),
      { seed, numRuns: 300 },
    );
  });
});

describe('peaks parameters', () => {
  it('defaults validate; unknown keys and each out-of-range value are rejected with the name', () => {
    expect(peaksParams({})).toEqual(PEAKS_DEFAULTS);
    expect(peaksParams({ confidence_threshold: 3, max_depth: undefined }).max_depth).toBe(PEAKS_DEFAULTS.max_depth);
    expect(() => peaksParams({ confidence: 3 } as never)).toThrow(/unknown peaks parameter 'confidence'/);
    expect(peaksParams({ temperature: 0, max_depth: 0 }).temperature).toBe(0);
    const bad: [string, Record<string, unknown>, { maxLivePaths: number }?][] = [
      ['initial_traces', { initial_traces: 0 }],
      ['initial_traces', { initial_traces: 9 }, { maxLivePaths: 8 }],
      ['max_traces', { initial_traces: 4, max_traces: 3 }],
      ['max_new_tokens', { max_new_tokens: 1 }],
      ['temperature', { temperature: -1 }],
      ['temperature 0', { temperature: 0 }],
      ['top_p', { top_p: 0 }],
      ['confidence_threshold', { confidence_threshold: NaN }],
      ['peak_window', { peak_window: 0 }],
      ['min_peak_distance', { min_peak_distance: -1 }],
      ['max_branch_fraction', { min_branch_fraction: 0.6, max_branch_fraction: 0.5 }],
      ['min_branch_fraction', { min_branch_fraction: 1.5 }],
      ['branches_per_peak', { branches_per_peak: 0 }],
      ['max_depth', { max_depth: 1.5 }],
      ['schedule', { schedule: 'soon' }],
      ['early_stop', { early_stop: 'yes' }],
      ['warmup_traces', { initial_traces: 2, warmup_traces: 3 }],
      ['keep_percent', { keep_percent: 0 }],
      ['group_window', { group_window: 0 }],
    ];
    for (const [name, partial, limits] of bad) expect(() => peaksParams(partial as never, limits), name).toThrow(new RegExp(name));
  });

  it('the eligible region: fractions of the trace, never the first or last token, after a branch its own point', () => {
    const p = peaksParams({ min_branch_fraction: 0.25, max_branch_fraction: 0.75, max_new_tokens: 100 });
    const root = peakOptions({ tokens: Array(40).fill(5), branchPoint: 0, prefixLength: 0 }, p);
    expect([root.minBranchPoint, root.maxBranchPoint]).toEqual([10, 30]);
    const branch = peakOptions({ tokens: Array(40).fill(5), branchPoint: 20, prefixLength: 20 }, p);
    expect([branch.minBranchPoint, branch.maxBranchPoint]).toEqual([21, 30]);
    const wide = peakOptions({ tokens: Array(40).fill(5), branchPoint: 0, prefixLength: 0 }, peaksParams({ min_branch_fraction: 0, max_branch_fraction: 1 }));
    expect([wide.minBranchPoint, wide.maxBranchPoint]).toEqual([1, 39]);
  });
});

describe('accounting', () => {
  it("reproduces the seed's walkthrough: 2 traces of 2000 tokens, branches at 600 and 450", () => {
    const traces = [
      { num_tokens: 2000, new_tokens: 2000, prefix_length: 0 },
      { num_tokens: 2000, new_tokens: 2000, prefix_length: 0 },
      { num_tokens: 2000, new_tokens: 1400, prefix_length: 600 },
      { num_tokens: 2000, new_tokens: 1550, prefix_length: 450 },
    ];
    // With a 10-token prompt, prefix branching computes each root's 10 + 1999 rows and each branch's new tokens.
    const computed = 2 * (10 + 1999) + 1400 + 1550;
    const a = peaksAccounting(traces, 10, computed);
    expect(a.generated_tokens).toBe(8000); // the seed's "without prefix caching"
    expect(a.new_tokens).toBe(6950); // the seed's "with prefix caching"
    expect(a.tokens_reencode).toBe(4 * (10 + 1999));
    expect(a.tokens_independent).toBe(a.tokens_reencode);
    expect(a.tokens_saved).toBe(10 + 600 - 1 + 10 + 450 - 1);
    expect(a.savings_vs_reencode).toBeCloseTo(1 - computed / 8036, 12);
    expect(peaksAccounting([], 10, 0).savings_vs_reencode).toBe(0);
  });
});

// ---- the controller over the real Scheduler + KvCache, with a deterministic fake model ----

function hash(...xs: number[]): number {
  let h = 0x811c9dc5;
  for (const x of xs) {
    h ^= x >>> 0;
    h = Math.imul(h, 0x01000193) >>> 0;
    h ^= h >>> 13;
  }
  return h >>> 0;
}

const V = 64;
const EOS = 2;

/**
 * The Engine surface peaks.ts uses, over the real Scheduler and KvCache. The "model" is a pure function of the
 * context (so a branch recomputing its last kept token sees its parent's distribution exactly), the draw a function
 * of context and the path's stream key, derived from its lineage as the real engine does (sample/rng.ts). Confidence runs in [3, 13]; EOS comes with probability about 1/80 per token.
 */
/** A one-session engine: session() hands out itself (counters restart at each session). */
class FakeEngine implements BranchEngine {
  readonly kv: KvCache;
  readonly sched: Scheduler;
  readonly config = { eosTokenIds: [EOS], vocabSize: V, maxSeqLen: 4096 };
  readonly tokenizer = null;
  private readonly keys = new Map<number, StreamKey>();
  private readonly count = { rows: 0, steps: 0, pagesPeak: 0 };
  /** Per step: the finished paths whose pages are still held when the step runs. */
  readonly heldFinished: number[][] = [];

  /** The step count when each path was created: it first takes part in the step after. */
  readonly createdAt = new Map<number, number>();
  /** Sampling results per step. */
  readonly batch: number[] = [];

  constructor(
    numPages: number,
    readonly maxLivePaths = 16,
    maxRowsPerStep = 64,
  ) {
    this.kv = new KvCache({ numPages, pageSize: 4 });
    this.sched = new Scheduler(this.kv, { maxRowsPerStep });
  }
  get stats() {
    return { ...this.count, pageCopies: this.kv.copiesMade, forks: this.sched.stats.forks };
  }
  get info(): EngineInfo {
    return { vocabSize: V, maxSeqLen: 4096, eosTokenIds: [EOS], maxBranch: 1, maxLivePaths: this.maxLivePaths, topK: 0, pageSize: 4 };
  }
  private base = { rows: 0, steps: 0, pageCopies: 0, forks: 0 };
  session(): BranchEngine {
    this.base = { rows: this.count.rows, steps: this.count.steps, pageCopies: this.kv.copiesMade, forks: this.sched.stats.forks };
    this.resetPeak();
    return this;
  }
  counters(): SessionCounters {
    const s = this.stats;
    return {
      steps: s.steps - this.base.steps,
      rows: s.rows - this.base.rows,
      reusedPromptTokens: 0,
      forks: s.forks - this.base.forks,
      pageCopies: s.pageCopies - this.base.pageCopies,
      pagesPeak: s.pagesPeak,
    };
  }
  liveCount(): number {
    return this.livePaths().length;
  }
  setDraws(): void {}
  close(): void {
    for (const p of this.sched.paths()) this.free(p.id);
  }
  get pagesInUse(): number {
    return this.kv.usedCount;
  }
  resetPeak(): void {
    this.count.pagesPeak = this.kv.usedCount;
  }
  createPath(prompt: readonly number[], sampling: Partial<SamplingParams>, o: CreatePathOptions = {}): number {
    if (this.livePaths().length >= this.maxLivePaths) throw new InvalidArgumentError('no room');
    const p = this.sched.addRequest(prompt);
    this.keys.set(p.id, rootKey(sampling.seed ?? 0, o.root ?? 0));
    this.createdAt.set(p.id, this.count.steps);
    return p.id;
  }
  fork(id: number, o: { keep: number; sibling?: number }): number {
    if (this.livePaths().length >= this.maxLivePaths) throw new InvalidArgumentError('no room');
    const parent = this.sched.path(id);
    const at = Math.min(o.keep - 1, parent.computed);
    const child = this.sched.fork(id, { atLength: at, nextTokens: parent.tokens.slice(at, o.keep) });
    this.keys.set(child.id, childKey(this.keys.get(id)!, 'keep', o.keep, o.sibling ?? 0));
    this.createdAt.set(child.id, this.count.steps);
    return child.id;
  }
  path(id: number) {
    return this.sched.path(id);
  }
  finish(id: number): void {
    this.sched.finish(id);
  }
  release(id: number): void {
    if (this.sched.paths().some((p) => p.id === id)) this.free(id);
  }

  free(id: number): void {
    this.sched.free(id);
    this.keys.delete(id);
  }
  livePaths() {
    return this.sched.paths().filter((p) => p.state !== 'finished');
  }
  static confidence(context: readonly number[]): number {
    return 3 + (hash(...context, 7) % 1000) / 100;
  }
  async step(): Promise<{ results: StepResult[] } | null> {
    const plan = this.sched.plan();
    if (!plan) return null;
    this.count.rows += plan.rows;
    this.count.steps++;
    this.count.pagesPeak = Math.max(this.count.pagesPeak, this.kv.usedCount);
    this.heldFinished.push(this.sched.paths().filter((p) => p.state === 'finished').map((p) => p.id));
    const tokens: number[] = [];
    const stats: TokenStatsRecord[] = [];
    for (let s = 0; s < plan.samples; s++) {
      const path = this.sched.path(plan.pathIds[plan.samplePath[s]]);
      const context = path.tokens.slice(0, path.computed);
      const h = hash(...context, ...this.keys.get(path.id)!);
      const token = h % 80 === 0 ? EOS : 3 + (h % (V - 3));
      tokens.push(token);
      const lp = -((h >>> 8) % 400) / 100;
      stats.push({
        maxLogit: 0, logSumExp: 0, entropy: 0, normEntropy: 0, samplingEntropy: 0, samplingNormEntropy: 0,
        confidence: FakeEngine.confidence(context),
        topIds: [], topLogprobs: [],
        sampledIds: [token], sampledLogprobs: [lp], sampledProposalLogprobs: [lp * 0.9], sampledKeys: [0], threshold: NaN,
        nucleusSize: V, greedy: false,
      });
    }
    this.sched.commit(plan, tokens);
    this.batch.push(plan.samples);
    const results = stats.map((st, s) => {
      const pathId = plan.pathIds[plan.samplePath[s]];
      return { pathId, stats: st, token: tokens[s], position: this.sched.path(pathId).tokens.length - 1 };
    });
    return { results };
  }
}

const PROMPT = [1, 17, 23, 29, 31, 37];

async function runFake(engine: FakeEngine, o: PeaksOptions, events?: PeaksEvent[]): Promise<PeaksResult> {
  return runPeaks(engine, PROMPT, o, (e) => events?.push(e));
}

/** The seed's checks and the accounting identities, for any run. */
function checkRun(r: PeaksResult, engine: FakeEngine, prefix = true): void {
  const byId = new Map(r.traces.map((t) => [t.trace_id, t]));
  for (const t of r.traces) {
    expect(t.num_tokens).toBe(t.token_ids.length);
    expect(t.confs.length).toBe(t.num_tokens);
    expect(t.token_logprobs.length).toBe(t.num_tokens);
    expect(t.new_tokens).toBe(t.num_tokens - t.prefix_length);
    expect(t.num_tokens).toBeLessThanOrEqual(r.params.max_new_tokens);
    expect(t.branch_history.length).toBe(t.depth);
    expect(['eos', 'length', 'low_confidence', 'pool']).toContain(t.stop_reason);
    if (t.stop_reason === 'eos') expect(t.token_ids[t.num_tokens - 1]).toBe(EOS);
    if (t.stop_reason === 'length') expect(t.num_tokens).toBe(r.params.max_new_tokens);
    if (t.parent_id === null) {
      expect([t.depth, t.branch_point, t.prefix_length]).toEqual([0, 0, 0]);
      continue;
    }
    const p = byId.get(t.parent_id)!;
    expect(p.children).toContain(t.trace_id);
    expect(t.depth).toBe(p.depth + 1);
    expect(t.branch_point).toBeGreaterThan(0);
    expect(t.branch_point).toBeLessThan(p.num_tokens);
    expect(t.branch_history.at(-1)).toMatchObject({ step: t.branch_point, parent_trace: p.trace_id });
    expect(t.branch_history.slice(0, -1)).toEqual(p.branch_history);
    if (!prefix) continue;
    expect(t.prefix_length).toBe(t.branch_point);
    expect(t.token_ids.slice(0, t.branch_point)).toEqual(p.token_ids.slice(0, t.branch_point));
    expect(t.confs.slice(0, t.branch_point)).toEqual(p.confs.slice(0, t.branch_point));
    // The recomputed distribution at the branch point is the parent's: the same context reached the model.
    expect(t.confs[t.branch_point]).toBe(p.confs[t.branch_point]);
    expect(t.new_tokens).toBeGreaterThan(0);
  }
  // Exact accounting: the engine's row counter equals the rows attributed to each trace plus the discarded ones.
  expect(r.traces.reduce((a, t) => a + t.tokens_computed, 0) + r.stats.rows_discarded).toBe(r.stats.tokens_computed);
  expect(r.stats.tokens_reencode).toBe(r.traces.reduce((a, t) => a + PROMPT.length + t.num_tokens - 1, 0));
  if (prefix && r.stats.branch_traces > 0) expect(r.stats.tokens_computed).toBeLessThan(r.stats.tokens_reencode);
  expect(r.stats.tokens_saved).toBe(r.stats.tokens_reencode - r.stats.tokens_computed);
  expect(engine.pagesInUse).toBe(0);
  expect(engine.livePaths()).toEqual([]);
}

describe('the peaks controller over the real scheduler and page tables', () => {
  const base: PeaksOptions = { initial_traces: 3, max_traces: 12, max_new_tokens: 40, confidence_threshold: 8.5, peak_window: 3, min_peak_distance: 4 };

  it.each(['online', 'rounds'] as const)('%s: branches at peaks, to depth 2, within the budget, and releases every page', async (schedule) => {
    const engine = new FakeEngine(256);
    const events: PeaksEvent[] = [];
    const r = await runFake(engine, { ...base, schedule }, events);
    checkRun(r, engine);
    expect(r.stats.branch_traces).toBeGreaterThan(0);
    expect(r.stats.max_depth_reached).toBe(2);
    expect(r.traces.length).toBe(12);
    expect(r.stats.forks).toBe(r.stats.branch_traces);
    for (const t of r.traces.filter((x) => x.depth > 0)) expect(t.branch_history.at(-1)!.confidence).toBeGreaterThanOrEqual(8.5);
    // Each chosen peak got branches_per_peak children, siblings share the branch point and differ in sibling index.
    const sibs = new Map<string, typeof r.traces>();
    for (const t of r.traces.filter((x) => x.depth > 0)) {
      const k = `${t.parent_id}@${t.branch_point}`;
      sibs.set(k, [...(sibs.get(k) ?? []), t]);
    }
    for (const group of sibs.values()) {
      expect(group.length).toBeLessThanOrEqual(r.params.branches_per_peak);
      expect(new Set(group.map((t) => t.sibling)).size).toBe(group.length);
    }
    if (schedule === 'online') return;
    // Rounds: no depth-2 branch starts before every depth-1 trace has finished.
    const firstDepth2 = events.findIndex((e) => e.type === 'branch' && e.depth === 2);
    let lastDepth1Finish = -1;
    events.forEach((e, i) => {
      if (e.type === 'finish' && r.traces.find((t) => t.trace_id === e.trace)!.depth === 1) lastDepth1Finish = i;
    });
    expect(firstDepth2).toBeGreaterThan(0);
    expect(firstDepth2).toBeGreaterThan(lastDepth1Finish);
  });

  it.each([
    ['rounds', 16],
    ['online', 4],
  ] as const)('%s (room %i): a finished trace keeps its pages only while a branch from it is still to come', async (schedule, room) => {
    const engine = new FakeEngine(512, room);
    // A budget that never binds: every chosen peak is branched, so every held parent must get a child later.
    const r = await runPeaks(engine, PROMPT, { ...base, max_traces: 500, max_new_tokens: 30, schedule });
    checkRun(r, engine);
    const byPath = new Map(r.traces.map((t) => [t.path_id, t]));
    const byId = new Map(r.traces.map((t) => [t.trace_id, t]));
    let checked = 0;
    // heldFinished[i]: paths held when step i + 1 ran; a child forked after it has createdAt >= i + 1.
    engine.heldFinished.forEach((held, i) => {
      for (const id of held) {
        const trace = byPath.get(id)!;
        const later = trace.children.some((c) => engine.createdAt.get(byId.get(c)!.path_id)! >= i + 1);
        expect(later, `${trace.trace_id} held at step ${i + 1} with no branch to come`).toBe(true);
        checked++;
      }
    });
    expect(checked).toBeGreaterThan(0);
  });

  it('max_depth 0 is plain sampling; budget, peaks_per_trace and branches_per_peak bound the tree', async () => {
    const plain = new FakeEngine(256);
    const r0 = await runFake(plain, { ...base, max_depth: 0 });
    checkRun(r0, plain);
    expect(r0.traces.length).toBe(3);
    expect(r0.stats.tokens_computed).toBe(r0.stats.tokens_reencode);

    const engine = new FakeEngine(256);
    const r = await runFake(engine, { ...base, max_traces: 30, peaks_per_trace: 2, branches_per_peak: 3, max_depth: 1, schedule: 'online' });
    checkRun(r, engine);
    for (const t of r.traces) {
      expect(t.depth).toBeLessThanOrEqual(1);
      expect(t.children.length).toBeLessThanOrEqual(6);
    }
    expect(r.traces.length).toBeLessThanOrEqual(30);
  });

  it('replays exactly: the same seed gives the same traces', async () => {
    const a = await runFake(new FakeEngine(256), base);
    const b = await runFake(new FakeEngine(256), base);
    expect(b.traces.map((t) => t.token_ids)).toEqual(a.traces.map((t) => t.token_ids));
    const c = await runFake(new FakeEngine(256), { ...base, seed: 5 });
    expect(c.traces.map((t) => t.token_ids)).not.toEqual(a.traces.map((t) => t.token_ids));
  });

  it('simulated branching regenerates from the prompt and computes every row again', async () => {
    const engine = new FakeEngine(256);
    const r = await runFake(engine, { ...base, regenerate: true });
    checkRun(r, engine, false);
    expect(r.stats.branching).toBe('regenerate');
    expect(r.stats.branch_traces).toBeGreaterThan(0);
    for (const t of r.traces) expect(t.prefix_length).toBe(0);
    // Regenerated branches start from the prompt, whose full pages (one of 4 tokens here) the prefix cache serves.
    expect(r.stats.reused_prompt_tokens).toBe(4 * r.stats.branch_traces);
    expect(r.stats.tokens_computed + r.stats.reused_prompt_tokens).toBe(r.stats.tokens_reencode);
    expect(r.stats.forks).toBe(0);
  });

  it('early stopping (rounds): the bar is the warm-up percentile, stopped traces fell below it and are never parents', async () => {
    const engine = new FakeEngine(256);
    const events: PeaksEvent[] = [];
    const r = await runFake(engine, { ...base, max_traces: 16, early_stop: true, keep_percent: 10, group_window: 4, schedule: 'rounds' }, events);
    checkRun(r, engine);
    const warm = r.traces.filter((t) => t.depth === 0);
    expect(r.stats.early_stop_bar).toBeCloseTo(stoppingBar(warm.map((t) => t.lowest_group_confidence), 10), 9);
    expect(events.some((e) => e.type === 'bar')).toBe(true);
    const stopped = r.traces.filter((t) => t.stop_reason === 'low_confidence');
    expect(stopped.length).toBe(r.stats.early_stopped);
    expect(stopped.length).toBeGreaterThan(0);
    for (const t of stopped) {
      expect(t.depth).toBeGreaterThan(0); // warm-ups are never stopped
      const last = t.confs.slice(-4).reduce((a, b) => a + b, 0) / 4;
      expect(last).toBeLessThan(r.stats.early_stop_bar!);
      expect(t.children).toEqual([]);
    }
  });

  it('a small page pool: stops or drops work instead of failing, and still releases every page', async () => {
    // 4 traces of 6 + 40 tokens need 4 * 12 = 48 pages of 4 tokens: 40 cannot hold the first round.
    const engine = new FakeEngine(40);
    const r = await runFake(engine, { ...base, initial_traces: 4, max_traces: 20, max_new_tokens: 40 });
    checkRun(r, engine);
    expect(r.traces.filter((t) => t.stop_reason === 'pool').length).toBeGreaterThan(0);
    expect(r.stats.pages_peak).toBeLessThanOrEqual(40);
    expect(r.stats.branch_traces).toBeGreaterThan(0);
  });

  it('the engine room limits live traces; cancellation frees everything', async () => {
    const narrow = new FakeEngine(256, 4);
    const r = await runFake(narrow, { ...base, initial_traces: 3, max_traces: 12 });
    checkRun(r, narrow);
    expect(r.stats.branch_traces).toBeGreaterThan(0);

    const engine = new FakeEngine(256);
    const ctl = new AbortController();
    let tokens = 0;
    await expect(
      runPeaks(engine, PROMPT, { ...base, signal: ctl.signal }, (e) => {
        if (e.type === 'token' && ++tokens === 50) ctl.abort();
      }),
    ).rejects.toBeInstanceOf(CancelledError);
    expect(engine.pagesInUse).toBe(0);
  });
});


describe('the online schedule: no rounds, and a result that does not depend on scheduling', () => {
  const base: PeaksOptions = { initial_traces: 3, max_traces: 12, max_new_tokens: 40, confidence_threshold: 8.5, peak_window: 3, min_peak_distance: 4 };
  /** Everything of a result that the schedule must not change (path ids and prefix-cache hits may differ). */
  const view = (r: PeaksResult) => ({
    traces: r.traces.map((t) => ({ ...t, path_id: undefined, tokens_computed: undefined })),
    found: [r.stats.peaks_found, r.stats.peaks_branched, r.stats.early_stop_bar],
  });

  /** Runs on an engine with `room` live paths and `rows` rows per step; records the step of every drawn token. */
  async function runOn(room: number, rows: number, o: PeaksOptions) {
    const engine = new FakeEngine(512, room, rows);
    const events: PeaksEvent[] = [];
    const stepsOf = new Map<number, number[]>();
    let step = 0;
    const r = await runPeaks(engine, PROMPT, { ...o, onStep: ({ results }) => {
      step++;
      for (const x of results) stepsOf.set(x.pathId, [...(stepsOf.get(x.pathId) ?? []), step]);
    } }, (e) => events.push(e));
    checkRun(r, engine, !o.regenerate);
    return { r, engine, events, stepsOf };
  }

  it.each([
    ['a binding budget', base],
    ['early stopping', { ...base, seed: 5, max_traces: 16, early_stop: true, keep_percent: 10, group_window: 4, warmup_traces: 1, initial_traces: 4 }],
    ['more peaks per trace', { ...base, max_traces: 20, peaks_per_trace: 2, branches_per_peak: 3 }],
    ['simulated branching', { ...base, regenerate: true }],
  ] as [string, PeaksOptions][])('%s: the same traces and events with any room and any prefill chunking', async (_, o) => {
    const wide = await runOn(16, 64, o);
    expect(wide.r.stats.branch_traces).toBeGreaterThan(0);
    expect(wide.r.stats.rows_discarded).toBe(0); // with room for every trace nothing runs ahead of its decisions
    for (const [room, rows] of [[4, 64], [5, 3], [o.initial_traces!, 2]]) {
      const narrow = await runOn(room, rows, o);
      expect(view(narrow.r), `room ${room}, ${rows} rows per step`).toEqual(view(wide.r));
      expect(narrow.events).toEqual(wide.events);
      expect(Math.max(...narrow.engine.batch)).toBeLessThanOrEqual(room);
    }
    if (o.early_stop) {
      const r = wide.r;
      expect(r.stats.early_stop_bar).toBeCloseTo(stoppingBar([r.traces[0].lowest_group_confidence], 10), 9);
      const stopped = r.traces.filter((t) => t.stop_reason === 'low_confidence');
      expect(stopped.length).toBeGreaterThan(0);
      for (const t of stopped) {
        expect(t.trace_id).not.toBe('trace_0'); // the one warm-up trace is never stopped
        expect(t.confs.slice(-4).reduce((a, b) => a + b, 0) / 4).toBeLessThan(r.stats.early_stop_bar!);
        // A peak counts only when passed before the stop: a branch point is at most the token before it.
        for (const c of t.children) expect(r.traces.find((x) => x.trace_id === c)!.branch_point).toBeLessThan(t.num_tokens - 1);
      }
    }
  });

  it('with room for every trace, a branch starts the step after its parent passed the peak: no rounds', async () => {
    const o: PeaksOptions = { ...base, max_traces: 40 };
    const { r, stepsOf } = await runOn(64, 64, o);
    const rounds = await runOn(64, 64, { ...o, schedule: 'rounds' });
    expect(r.stats.max_depth_reached).toBe(2);
    const byId = new Map(r.traces.map((t) => [t.trace_id, t]));
    for (const t of r.traces.filter((x) => x.depth > 0)) {
      const p = byId.get(t.parent_id!)!;
      const passed = stepsOf.get(p.path_id)![t.branch_point - p.prefix_length];
      expect(stepsOf.get(t.path_id)![0], t.trace_id).toBe(passed + 1);
    }
    // Token k of a depth-d trace is drawn in step k + d + 1 (one prefill step): the run takes at most
    // max_new_tokens + max_depth steps, where rounds wait for their stragglers at every depth.
    expect(r.stats.steps).toBeLessThanOrEqual(40 + 2);
    expect(rounds.r.stats.steps).toBeGreaterThan(40 + 2);
    // Streams follow lineage: the roots are the same in both schedules.
    expect(r.traces.filter((t) => t.depth === 0).map((t) => t.token_ids)).toEqual(rounds.r.traces.filter((t) => t.depth === 0).map((t) => t.token_ids));
  });

  it('with little room, every step is full while a known branch waits', async () => {
    const room = 4;
    const { r, engine, stepsOf } = await runOn(room, 64, { ...base, max_traces: 24, peaks_per_trace: 2 });
    expect(r.stats.branch_traces).toBeGreaterThan(room);
    const byId = new Map(r.traces.map((t) => [t.trace_id, t]));
    let waited = 0;
    for (const t of r.traces.filter((x) => x.depth > 0)) {
      const p = byId.get(t.parent_id!)!;
      const passed = stepsOf.get(p.path_id)![t.branch_point - p.prefix_length];
      const started = stepsOf.get(t.path_id)![0];
      // Steps are numbered from 1; batch[s - 1] is step s's batch.
      for (let s = passed + 1; s < started; s++) expect(engine.batch[s - 1], `${t.trace_id} waited in step ${s}`).toBe(room);
      waited += started - passed - 1;
    }
    expect(waited).toBeGreaterThan(0); // the room did bind
    const rounds = await runOn(room, 64, { ...base, max_traces: 24, peaks_per_trace: 2, schedule: 'rounds' });
    expect(r.stats.steps).toBeLessThan(rounds.r.stats.steps);
  });
});
