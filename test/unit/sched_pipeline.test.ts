// Speculative plans (Scheduler.planAhead, for pipelined steps) against synchronous scheduling of the same decisions:
// a confirmed speculative plan is the plan plan() would have built (its tokens fed from the previous step's draws),
// rows undone for finished paths leave the state a synchronous scheduler has, and cancel() gives back every slot and
// page in the pool's order. Random prompts, page sizes, sampled tokens and finishes (fast-check).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KvCache } from '../../src/kv/kv_cache.js';
import { Scheduler } from '../../src/sched/scheduler.js';
import type { StepPlan } from '../../src/sched/step_plan.js';

function plain(plan: StepPlan, tokenIds: ArrayLike<number> = plan.tokenIds) {
  return {
    rows: plan.rows,
    samples: plan.samples,
    maxPages: plan.maxPages,
    tokenIds: Array.from(tokenIds),
    positions: Array.from(plan.positions),
    slots: Array.from(plan.slots),
    pageTable: Array.from(plan.pageTable),
    seqLen: Array.from(plan.seqLen),
    pathIds: plan.pathIds,
  };
}

const scenario = fc.record({
  pageSize: fc.integer({ min: 1, max: 5 }),
  prompts: fc.array(fc.array(fc.integer({ min: 0, max: 6 }), { minLength: 1, maxLength: 9 }), { minLength: 1, maxLength: 4 }),
  // steps of sampled tokens (one per path, extra ignored) and which paths finish after each step
  steps: fc.array(fc.record({ tokens: fc.array(fc.integer({ min: 0, max: 6 }), { minLength: 4, maxLength: 4 }), finish: fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }) }), { minLength: 1, maxLength: 12 }),
  cancelAt: fc.integer({ min: -1, max: 11 }),
});

describe('Scheduler.planAhead', () => {
  it('confirmed, partly undone or cancelled speculative plans leave the state synchronous scheduling leaves', () => {
    fc.assert(
      fc.property(scenario, ({ pageSize, prompts, steps, cancelAt }) => {
        const mk = () => {
          const kv = new KvCache({ numPages: 64, pageSize });
          const sched = new Scheduler(kv, { maxRowsPerStep: 256 });
          for (const p of prompts) sched.addRequest(p);
          return { kv, sched };
        };
        const sync = mk();
        const pipe = mk();
        let syncPlan = sync.sched.plan()!;
        let pipePlan = pipe.sched.plan()!;
        expect(plain(pipePlan)).toEqual(plain(syncPlan));
        let partialUndo = false;
        const drawn = (plan: StepPlan, tok: (id: number) => number) => Array.from(plan.samplePath, (s) => tok(plan.pathIds[s]));
        for (const [i, st] of steps.entries()) {
          const tok = (id: number) => st.tokens[id % 4];
          const ahead = pipe.sched.planAhead(pipePlan, 1000);
          sync.sched.commit(syncPlan, drawn(syncPlan, tok));
          pipe.sched.commit(pipePlan, drawn(pipePlan, tok));
          // the controller's decisions about this step: the same finishes on both
          const finishing = sync.sched.paths().filter((p) => st.finish[p.id % 4] && p.state !== 'finished' && p.id % 3 === i % 3);
          for (const p of finishing) {
            sync.sched.finish(p.id);
            pipe.sched.finish(p.id);
          }
          if (ahead) {
            for (const id of [...ahead.plan.pathIds].reverse())
              if (pipe.sched.specHas(id) && pipe.sched.path(id).state === 'finished') {
                pipe.sched.unplan(id);
                partialUndo = true;
              }
            if (i === cancelAt || ahead.plan.pathIds.every((id) => !pipe.sched.rowKept(id))) pipe.sched.cancel();
          }
          const next = sync.sched.plan();
          if (!next) {
            expect(pipe.sched.inFlight).toBe(false);
            break;
          }
          syncPlan = next;
          if (ahead && pipe.sched.specInFlight) {
            // The speculative plan minus its undone rows is the synchronous plan, tokens fed from the draws.
            const kept = ahead.plan.pathIds.map((id, r) => ({ id, r })).filter(({ id }) => pipe.sched.rowKept(id));
            expect(kept.map((k) => k.id)).toEqual(syncPlan.pathIds);
            expect(kept.map(({ r }) => tok(pipePlan.pathIds[pipePlan.samplePath[ahead.feed[r]]]))).toEqual(Array.from(syncPlan.tokenIds));
            expect(kept.map(({ r }) => ahead.plan.positions[r])).toEqual(Array.from(syncPlan.positions));
            if (!partialUndo) expect(kept.map(({ r }) => ahead.plan.slots[r])).toEqual(Array.from(syncPlan.slots));
            pipePlan = ahead.plan;
          } else {
            pipePlan = pipe.sched.plan()!;
            if (!partialUndo) expect(plain(pipePlan)).toEqual(plain(syncPlan));
          }
        }
        // commit the last plans and compare the whole KV state, prefix cache included
        if (sync.sched.inFlight) sync.sched.commit(syncPlan, drawn(syncPlan, () => 1));
        if (pipe.sched.inFlight) pipe.sched.commit(pipePlan, drawn(pipePlan, () => 1));
        const a = sync.kv.snapshot();
        const b = pipe.kv.snapshot();
        // Undoing one path's row while others keep theirs gives its page back to the head of the free list: page
        // ids may then differ from synchronous scheduling (never which tokens, pages per path or refCounts).
        if (!partialUndo) {
          expect(b.paths).toEqual(a.paths);
          expect(b.pool).toEqual(a.pool);
          expect(b.prefix).toEqual(a.prefix);
        } else {
          expect(b.paths.map((p) => [p.id, p.tokens, p.pages.length])).toEqual(a.paths.map((p) => [p.id, p.tokens, p.pages.length]));
          expect(b.pool.freeList.length).toBe(a.pool.freeList.length);
          const contents = (x: typeof a) => x.prefix!.entries.map((e) => JSON.stringify([e.parentCid, e.tokens])).sort();
          expect(contents(b).length).toBe(contents(a).length);
        }
        expect(pipe.sched.stats).toEqual(sync.sched.stats);
      }),
      { numRuns: 300 },
    );
  });
});

describe('Scheduler.planAhead and the prefix cache', () => {
  // Pool of 3 pages of 4 tokens. A prompt of 5 tokens takes pages 0 (full, cached) and 1, then is freed: the free list
  // is [2, 0, 1]. A second prompt of 4 tokens fills page 2; its first decode row needs a new page, and the next one
  // free is page 0, which still holds the first prompt's cached prefix.
  const setup = () => {
    const kv = new KvCache({ numPages: 3, pageSize: 4 });
    const sched = new Scheduler(kv, { maxRowsPerStep: 16 });
    const a = sched.addRequest([1, 2, 3, 4, 5]);
    sched.commit(sched.plan()!, [6]);
    sched.free(a.id);
    const b = sched.addRequest([1, 7, 7, 7]);
    return { kv, sched, b };
  };

  it('does not speculate onto a free page that holds a cached prefix, so no undo can lose it', () => {
    const { kv, sched } = setup();
    const plan = sched.plan()!;
    expect(kv.freeList()).toEqual([0, 1]);
    expect(kv.isCached(0)).toBe(true);
    expect(sched.planAhead(plan, 100)).toBeNull();
    expect(kv.isCached(0)).toBe(true);
    sched.commit(plan, [8]);
    const b2 = sched.paths()[0];
    sched.finish(b2.id);
    // The first prompt again: its cached page is reused, one row is computed (as without pipelining).
    const again = sched.addRequest([1, 2, 3, 4, 5]);
    expect(again.reusedTokens).toBe(4);
  });

  it('speculates onto an uncached free page', () => {
    const kv = new KvCache({ numPages: 4, pageSize: 4 });
    const sched = new Scheduler(kv, { maxRowsPerStep: 16 });
    sched.addRequest([1, 7, 7, 7]);
    const plan = sched.plan()!;
    expect(kv.isCached(kv.freeList()[0])).toBe(false);
    expect(sched.planAhead(plan, 100)).not.toBeNull();
  });
});
