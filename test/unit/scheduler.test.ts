import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, PagePoolExhaustedError } from '../../src/errors.js';
import { KvCache } from '../../src/kv/kv_cache.js';
import { Scheduler } from '../../src/sched/scheduler.js';
import type { StepPlan } from '../../src/sched/step_plan.js';

const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);

function setup(numPages = 32, maxRowsPerStep = 256, pageSize = 4) {
  const kv = new KvCache({ numPages, pageSize });
  return { kv, sched: new Scheduler(kv, { maxRowsPerStep }) };
}

/** The plan as plain arrays, for exact comparison. */
function plain(plan: StepPlan) {
  return {
    rows: plan.rows,
    paths: plan.paths,
    samples: plan.samples,
    maxPages: plan.maxPages,
    tokenIds: Array.from(plan.tokenIds),
    positions: Array.from(plan.positions),
    rowPath: Array.from(plan.rowPath),
    slots: Array.from(plan.slots),
    pageTable: Array.from(plan.pageTable),
    seqLen: Array.from(plan.seqLen),
    sampleRow: Array.from(plan.sampleRow),
    samplePath: Array.from(plan.samplePath),
    pathIds: plan.pathIds,
    copies: plan.copies,
  };
}

describe('Scheduler: one request', () => {
  it('prefills the whole prompt in one step, samples at its last row, then decodes one row per step', () => {
    const { sched } = setup();
    const p = sched.addRequest([10, 11, 12, 13, 14, 15]);
    expect(p.state).toBe('prefill');
    const plan = sched.plan()!;
    expect(plain(plan)).toEqual({
      rows: 6,
      paths: 1,
      samples: 1,
      maxPages: 2,
      tokenIds: [10, 11, 12, 13, 14, 15],
      positions: [0, 1, 2, 3, 4, 5],
      rowPath: [0, 0, 0, 0, 0, 0],
      slots: [0, 1, 2, 3, 4, 5],
      pageTable: [0, 1],
      seqLen: [6],
      sampleRow: [5],
      samplePath: [0],
      pathIds: [p.id],
      copies: [],
    });
    expect(() => sched.plan()).toThrow(InvalidArgumentError); // one plan in flight
    sched.commit(plan, [42]);
    expect(sched.path(p.id).state).toBe('decode');
    expect(sched.path(p.id).nextToken).toBe(42);
    expect(sched.path(p.id).tokens).toEqual([10, 11, 12, 13, 14, 15, 42]);
    // A decode row feeds the newest token at position length-1 of the path's tokens; its logits pick the next one.
    const d = sched.plan()!;
    expect(plain(d)).toMatchObject({
      rows: 1,
      tokenIds: [42],
      positions: [6],
      slots: [6],
      seqLen: [7],
      sampleRow: [0],
      samplePath: [0],
      pageTable: [0, 1],
    });
    sched.commit(d, [43]);
    expect(sched.path(p.id).generated).toBe(2);
    sched.finish(p.id);
    expect(sched.plan()).toBeNull();
  });

  it('chunks a prompt longer than the budget over several steps and samples only in the last one', () => {
    const { sched } = setup(32, 4);
    const p = sched.addRequest(range(10, 100));
    const chunks: number[][] = [];
    const samples: number[] = [];
    for (let i = 0; i < 3; i++) {
      const plan = sched.plan()!;
      chunks.push(Array.from(plan.positions));
      samples.push(plan.samples);
      expect(Array.from(plan.tokenIds)).toEqual(Array.from(plan.positions, (x) => 100 + x));
      sched.commit(plan, plan.samples ? [7] : []);
    }
    expect(chunks).toEqual([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]);
    expect(samples).toEqual([0, 0, 1]);
    expect(sched.path(p.id).state).toBe('decode');
    expect(sched.path(p.id).tokens.at(-1)).toBe(7);
  });
});

describe('Scheduler: several paths', () => {
  it('places decode rows first, then prefill chunks under what is left of the budget', () => {
    const { sched } = setup(32, 4);
    const a = sched.addRequest([1, 2, 3]);
    sched.commit(sched.plan()!, [50]); // a decodes from now on
    const b = sched.addRequest(range(9, 20));
    const p1 = sched.plan()!;
    expect(plain(p1)).toMatchObject({
      rows: 4,
      paths: 2,
      samples: 1,
      pathIds: [a.id, b.id],
      tokenIds: [50, 20, 21, 22],
      positions: [3, 0, 1, 2],
      rowPath: [0, 1, 1, 1],
      sampleRow: [0],
      samplePath: [0],
      seqLen: [4, 3],
      maxPages: 1,
      pageTable: [0, 1],
    });
    sched.commit(p1, [51]);
    const p2 = sched.plan()!;
    expect(Array.from(p2.positions)).toEqual([4, 3, 4, 5]);
    sched.commit(p2, [52]);
    const p3 = sched.plan()!;
    // b's last three prompt rows fit: it samples at its last row.
    expect(plain(p3)).toMatchObject({
      rows: 4,
      tokenIds: [52, 26, 27, 28],
      positions: [5, 6, 7, 8],
      samples: 2,
      sampleRow: [0, 3],
      samplePath: [0, 1],
      seqLen: [6, 9],
      maxPages: 3,
    });
    // a holds pages [0, 2] (page 1 went to b at the first mixed step), b [1, 3, 4]; row widths differ, padded with 0.
    expect(Array.from(p3.pageTable)).toEqual([0, 2, 0, 1, 3, 4]);
    expect(Array.from(p3.slots)).toEqual([2 * 4 + 1, 3 * 4 + 2, 3 * 4 + 3, 4 * 4 + 0]);
    sched.commit(p3, [53, 60]);
    expect(sched.path(b.id).tokens.at(-1)).toBe(60);
    const p4 = sched.plan()!;
    expect(Array.from(p4.tokenIds)).toEqual([53, 60]);
    expect(Array.from(p4.positions)).toEqual([6, 9]);
  });

  it('never starves decodes: every decoding path gets its row even past the budget', () => {
    const { sched } = setup(32, 2);
    const a = sched.addRequest([1, 2]);
    sched.commit(sched.plan()!, [3]);
    const forks = [sched.fork(a.id, { nextTokens: [4] }), sched.fork(a.id, { nextTokens: [5] })];
    const late = sched.addRequest([6, 6]);
    const plan = sched.plan()!;
    expect(plan.rows).toBe(3);
    expect(plan.pathIds).toEqual([a.id, ...forks.map((f) => f.id)]);
    expect(Array.from(plan.tokenIds)).toEqual([3, 4, 5]);
    // The waiting prompt gets rows once decodes leave room in the budget.
    sched.commit(plan, [7, 8, 9]);
    expect(sched.path(late.id).computed).toBe(0);
    sched.finish(forks[0].id);
    sched.finish(forks[1].id);
    const next = sched.plan()!;
    expect(next.pathIds).toEqual([a.id, late.id]);
    expect(Array.from(next.positions)).toEqual([3, 0]);
    expect(next.samples).toBe(1);
  });

  it('prefills in arrival order: a later prompt gets rows only after earlier ones are fully scheduled', () => {
    const { sched } = setup(32, 5);
    const a = sched.addRequest(range(3));
    const b = sched.addRequest(range(4));
    const c = sched.addRequest(range(2));
    const p1 = sched.plan()!;
    expect(p1.pathIds).toEqual([a.id, b.id]);
    expect(Array.from(p1.rowPath)).toEqual([0, 0, 0, 1, 1]);
    expect(Array.from(p1.samplePath)).toEqual([0]);
    sched.commit(p1, [9]);
    const p2 = sched.plan()!;
    expect(p2.pathIds).toEqual([a.id, b.id, c.id]);
    expect(Array.from(p2.positions)).toEqual([3, 2, 3, 0, 1]);
    expect(Array.from(p2.sampleRow)).toEqual([0, 2, 4]);
  });
});

describe('Scheduler: forks', () => {
  it('a fork at the tail decodes with its own next token; the tail copy rides with the next plan', () => {
    const { sched, kv } = setup();
    const a = sched.addRequest(range(6, 30));
    sched.commit(sched.plan()!, [40]);
    const child = sched.fork(a.id, { nextTokens: [41] });
    expect(child).toMatchObject({ state: 'decode', computed: 6, parentId: a.id, forkedAt: 6, nextToken: 41 });
    expect(kv.pages(child.kvPath)).toEqual([0, 2]);
    const plan = sched.plan()!;
    expect(plan.copies).toEqual([{ src: 1, dst: 2 }]);
    expect(plain(plan)).toMatchObject({
      rows: 2,
      tokenIds: [40, 41],
      positions: [6, 6],
      slots: [1 * 4 + 2, 2 * 4 + 2],
      pageTable: [0, 1, 0, 2],
      seqLen: [7, 7],
      sampleRow: [0, 1],
    });
    sched.commit(plan, [1, 2]);
    expect(sched.plan()!.copies).toEqual([]);
  });

  it('a fork at an earlier position re-feeds the parent token there by default (a fresh sample after it)', () => {
    const { sched, kv } = setup();
    const a = sched.addRequest(range(10, 30));
    sched.commit(sched.plan()!, [40]);
    sched.finish(a.id);
    const child = sched.fork(a.id, { atLength: 5 });
    expect(child.tokens).toEqual(range(6, 30));
    expect(child.nextToken).toBe(35);
    expect(kv.length(child.kvPath)).toBe(5);
    const plan = sched.plan()!;
    expect(plan.pathIds).toEqual([child.id]);
    expect(Array.from(plan.positions)).toEqual([5]);
    expect(Array.from(plan.tokenIds)).toEqual([35]);
    expect(plan.copies).toEqual([{ src: 1, dst: 3 }]);
  });

  it('a fork with several forced tokens prefills them, then samples after the last', () => {
    const { sched } = setup();
    const a = sched.addRequest(range(4, 30));
    sched.commit(sched.plan()!, [40]);
    const child = sched.fork(a.id, { atLength: 4, nextTokens: [7, 8, 9] });
    expect(child.state).toBe('prefill');
    const plan = sched.plan()!;
    expect(plan.pathIds).toEqual([a.id, child.id]);
    expect(Array.from(plan.tokenIds)).toEqual([40, 7, 8, 9]);
    expect(Array.from(plan.sampleRow)).toEqual([0, 3]);
    expect(plan.copies).toEqual([]); // fork at a page boundary shares everything
    expect(() => sched.fork(a.id)).toThrow(InvalidArgumentError); // plan in flight
    sched.commit(plan, [1, 2]);
    expect(sched.path(child.id).tokens).toEqual([...range(4, 30), 7, 8, 9, 2]);
  });

  it('plans only the included paths; paths outside the plan in flight may fork, and their copies run next plan', () => {
    const { sched, kv } = setup(32, 256, 4);
    const a = sched.addRequest(range(6, 10));
    const b = sched.addRequest(range(3, 50));
    const first = sched.plan({ include: (id) => id === b.id })!;
    expect(first.pathIds).toEqual([b.id]);
    expect(sched.pagesNeeded({ include: (id) => id === a.id })).toBe(2);
    sched.commit(first, [60]);
    const second = sched.plan({ include: (id) => id === a.id })!;
    expect(second.pathIds).toEqual([a.id]);
    expect(() => sched.fork(a.id)).toThrow(InvalidArgumentError); // a is being computed
    const child = sched.fork(b.id); // b is not: its partial tail page is copied before the next plan's forward
    expect(second.copies).toEqual([]);
    sched.commit(second, [70]);
    const third = sched.plan()!;
    expect(third.copies.length).toBe(1);
    expect(third.pathIds).toEqual([a.id, b.id, child.id]);
    sched.commit(third, [1, 2, 3]);
    for (const p of sched.paths()) sched.free(p.id);
    expect(kv.usedCount).toBe(0);
  });

  it('a fork past the known tokens needs nextTokens', () => {
    const { sched } = setup();
    const a = sched.addRequest([1, 2]);
    expect(() => sched.fork(a.id, { atLength: 1 })).toThrow(InvalidArgumentError); // nothing computed yet
    sched.commit(sched.plan()!, [3]);
    expect(sched.fork(a.id).nextToken).toBe(3); // a clone of the parent
    expect(() => sched.fork(a.id, { nextTokens: [] })).toThrow(InvalidArgumentError);
  });
});

describe('Scheduler: pool exhaustion, finish, free', () => {
  it('throws PagePoolExhaustedError with no state change; after a prune the same step goes through', () => {
    const { sched, kv } = setup(3, 256, 4);
    const a = sched.addRequest(range(8));
    const b = sched.addRequest(range(5, 50));
    const kvBefore = kv.snapshot();
    const pathsBefore = JSON.stringify(sched.paths());
    expect(() => sched.plan()).toThrow(PagePoolExhaustedError); // needs 2 + 2 pages of 3
    expect(kv.snapshot()).toEqual(kvBefore);
    expect(JSON.stringify(sched.paths())).toBe(pathsBefore);
    expect(sched.inFlight).toBe(false);
    sched.free(b.id);
    const plan = sched.plan()!;
    expect(plan.pathIds).toEqual([a.id]);
  });

  it('commit skips paths finished or freed while the plan was in flight', () => {
    const { sched, kv } = setup();
    const a = sched.addRequest([1, 2, 3]);
    const b = sched.addRequest([4, 5]);
    const c = sched.addRequest([6]);
    const plan = sched.plan()!;
    sched.finish(a.id);
    sched.free(b.id);
    sched.commit(plan, [7, 8, 9]);
    expect(sched.path(a.id).tokens).toEqual([1, 2, 3]);
    expect(sched.path(c.id).tokens).toEqual([6, 9]);
    expect(sched.paths().map((p) => p.id)).toEqual([a.id, c.id]);
    expect(kv.has(b.kvPath)).toBe(false);
    // A finished path keeps its pages until freed.
    expect(kv.pages(sched.path(a.id).kvPath)).toEqual([0]);
    sched.free(a.id);
    expect(kv.usedCount).toBe(1);
  });

  it('rejects a stale plan, a wrong token count and an empty prompt', () => {
    const { sched } = setup();
    sched.addRequest([1]);
    const plan = sched.plan()!;
    expect(() => sched.commit(plan, [])).toThrow(InvalidArgumentError);
    expect(() => sched.commit(plan, [-3])).toThrow(InvalidArgumentError);
    sched.commit(plan, [2]);
    expect(() => sched.commit(plan, [2])).toThrow(InvalidArgumentError);
    expect(() => sched.addRequest([])).toThrow(InvalidArgumentError);
    expect(() => new Scheduler(new KvCache({ numPages: 1 }), { maxRowsPerStep: 0 })).toThrow(InvalidArgumentError);
  });
});

describe('Scheduler: prefix reuse', () => {
  it('a repeated prompt starts after the reused pages and counts them', () => {
    const { sched, kv } = setup(32, 256, 4);
    const prompt = range(11, 100);
    const a = sched.addRequest(prompt);
    sched.commit(sched.plan()!, [1]);
    const b = sched.addRequest(prompt);
    expect(b.reusedTokens).toBe(8);
    expect(b.computed).toBe(8);
    const plan = sched.plan()!;
    expect(plan.pathIds).toEqual([a.id, b.id]);
    expect(Array.from(plan.positions)).toEqual([11, 8, 9, 10]);
    expect(Array.from(plan.pageTable)).toEqual([0, 1, 2, 0, 1, 3]);
    expect(sched.stats).toMatchObject({ promptTokens: 22, reusedPromptTokens: 8, steps: 2, rows: 15 });
    expect(kv.prefixHitPages).toBe(2);
  });
});

describe('Scheduler properties', () => {
  it('plans are well formed for random add / step / fork / finish / free sequences', () => {
    type Op = { kind: 'add'; len: number } | { kind: 'step' } | { kind: 'fork'; at: number; pos: number } | { kind: 'end'; at: number; free: boolean };
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ kind: fc.constant('add' as const), len: fc.integer({ min: 1, max: 14 }) }),
      { weight: 3, arbitrary: fc.constant({ kind: 'step' as const }) },
      fc.record({ kind: fc.constant('fork' as const), at: fc.nat(), pos: fc.nat() }),
      fc.record({ kind: fc.constant('end' as const), at: fc.nat(), free: fc.boolean() }),
    );
    let plans = 0;
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 4, max: 24 }), fc.array(op, { maxLength: 40, size: 'medium' }), (maxRows, pages, ops) => {
        const kv = new KvCache({ numPages: pages, pageSize: 3 });
        const sched = new Scheduler(kv, { maxRowsPerStep: maxRows });
        for (const o of ops) {
          const live = sched.paths().filter((p) => p.state !== 'finished');
          if (o.kind === 'add') sched.addRequest(range(o.len, 7 * o.len));
          else if (o.kind === 'fork' && live.length) {
            const p = live[o.at % live.length];
            try {
              sched.fork(p.id, { atLength: o.pos % (p.computed + 1), nextTokens: [o.pos % 50] });
            } catch (e) {
              if (!(e instanceof PagePoolExhaustedError)) throw e;
            }
          } else if (o.kind === 'end' && live.length) {
            const p = live[o.at % live.length];
            if (o.free) sched.free(p.id);
            else sched.finish(p.id);
          } else if (o.kind === 'step') {
            const before = new Map(sched.paths().map((p) => [p.id, { ...p, tokens: [...p.tokens], computed: p.computed }]));
            let plan: StepPlan | null;
            try {
              plan = sched.plan();
            } catch (e) {
              if (!(e instanceof PagePoolExhaustedError)) throw e;
              continue;
            }
            if (!plan) continue;
            plans++;
            checkPlan(plan, before, kv, maxRows);
            sched.commit(plan, Array.from({ length: plan.samples }, (_, s) => s));
          }
        }
      }),
      { numRuns: 500 },
    );
    expect(plans).toBeGreaterThan(1000);
  });
});

type Snapshot = { id: number; kvPath: number; state: string; tokens: number[]; computed: number };

function checkPlan(plan: StepPlan, before: Map<number, Snapshot>, kv: KvCache, maxRows: number): void {
  const ps = kv.pageSize;
  let decodes = 0;
  let prefillSeenPartial = false;
  let row = 0;
  let s = 0;
  for (let p = 0; p < plan.paths; p++) {
    const path = before.get(plan.pathIds[p])!;
    const start = row;
    while (row < plan.rows && plan.rowPath[row] === p) row++;
    const n = row - start;
    expect(n).toBeGreaterThan(0);
    if (path.state === 'decode') {
      expect(n).toBe(1);
      expect(prefillSeenPartial || p > decodes).toBe(false); // decode slots come first
      decodes++;
    } else {
      expect(path.state).toBe('prefill');
      expect(prefillSeenPartial).toBe(false); // only the last prefill in a plan may be cut short
      if (path.computed + n < path.tokens.length) prefillSeenPartial = true;
    }
    expect(plan.seqLen[p]).toBe(path.computed + n);
    const pages = kv.pages(path.kvPath);
    for (let j = 0; j < n; j++) {
      const r = start + j;
      const pos = path.computed + j;
      expect(plan.positions[r]).toBe(pos);
      expect(plan.tokenIds[r]).toBe(path.tokens[pos]);
      expect(plan.pageTable[p * plan.maxPages + Math.floor(pos / ps)]).toBe(pages[Math.floor(pos / ps)]);
      expect(plan.slots[r]).toBe(pages[Math.floor(pos / ps)] * ps + (pos % ps));
    }
    const samples = path.computed + n === path.tokens.length;
    if (samples) {
      expect(plan.samplePath[s]).toBe(p);
      expect(plan.sampleRow[s]).toBe(row - 1);
      s++;
    }
  }
  expect(row).toBe(plan.rows);
  expect(s).toBe(plan.samples);
  expect(plan.rows).toBeLessThanOrEqual(Math.max(maxRows, decodes));
  // Prefill rows fill the budget unless every prefill is done: the budget is not left idle.
  const waiting = [...before.values()].some((p) => p.state === 'prefill' && !plan.pathIds.includes(p.id));
  if (waiting) expect(plan.rows).toBeGreaterThanOrEqual(maxRows);
}
