// The step scheduler: turns every live path into one StepPlan per forward pass. Pure data over KvCache.
//
// How an engine drives it (one plan in flight at a time):
//
//   const kv = new KvCache({ numPages, pageSize });
//   const sched = new Scheduler(kv, { maxRowsPerStep: 256 });
//   const p = sched.addRequest(promptTokenIds);          // reuses cached prefix pages (p.reusedTokens)
//   for (;;) {
//     const plan = sched.plan();                        // may throw PagePoolExhaustedError, with nothing changed:
//     if (!plan) break;                                 //   prune or finish paths (sched.free) and call plan() again
//     gpu: run plan.copies in order, then forward(plan), then sample one token per sampling path
//     sched.commit(plan, sampled);                      // sampled[s] is the token of path plan.pathIds[plan.samplePath[s]]
//     branch controller: sched.fork(id, { atLength, nextTokens }) / sched.finish(id) / sched.free(id)
//   }
//
// What a plan holds (src/sched/step_plan.ts):
// - path slots: decoding paths first (ascending id), then prefilling paths (ascending id, i.e. arrival order); rows of
//   a path are contiguous, in ascending positions.
// - a decoding path has exactly one row: it feeds the path's newest token (its nextToken) at position `computed`,
//   writing that token's K/V, and its logits sample the token after it. Every decoding path gets its row, whatever
//   the budget, so decodes are never starved: R <= max(maxRowsPerStep, decoding paths).
// - prefilling paths share what is left of maxRowsPerStep after the decode rows, first come first served; a prompt
//   longer than what is left continues next step (chunked prefill). A prefilling path samples only in the step that
//   holds its last prompt row; then sampleRow is that row. While decoding paths alone fill the budget, prompts wait:
//   keep the number of live paths below maxRowsPerStep for new requests to start.
// - slots come from KvCache.append (one page-table append per path), seqLen is the path's cached length after the
//   step, pageTable is (P, maxPages) with maxPages the widest table in the step, copies are those of every fork made
//   since the previous plan (run them before the forward).
//
// Between plan() and commit() the plan is "in flight": plan() refuses to run, and so does fork() of a path in that plan
// (its tail page is being written); finish() and free() may (commit then skips those paths). Paths left out of a plan
// (`include`: the engine steps only the sessions that are waiting) may be forked, added or freed while it is in
// flight: their pages are not written by it, and the copies they queue run before the next plan's forward. Every plan
// built must be run: its rows' pages are already registered for prefix reuse.
//
// Pipelined steps (engine option `pipeline`): planAhead(plan) builds, while `plan` is still in flight, the next plan on
// the assumption that every path of it continues with the token `plan` samples: one decode row per path, its token
// written by the GPU (the plan's tokenIds there are placeholders) and its pages kept out of the prefix cache until its
// token is known. commit(plan) fills in the tokens, and the speculative plan is the one in flight. A decision that
// contradicts it is undone row by row before it is applied: unplan(id) gives back the row's slot and any page it
// took, and the token is pending again; cancel() undoes every row and ends the plan. A speculative plan's rows are
// counted when it is committed, its undone rows never.

import { InvalidArgumentError, PagePoolExhaustedError } from '../errors.js';
import { type KvCache, assertTokenIds } from '../kv/kv_cache.js';
import { type Path, PathRecord } from './path.js';
import { aheadPlan } from './plan_ahead.js';
import type { StepPlan } from './step_plan.js';

export interface SchedulerOptions {
  /** Row budget per step; decode rows always fit, prefill chunks fill what is left (default 256). */
  maxRowsPerStep?: number;
}

export interface ForkOptions {
  /** KV length the child keeps, in [0, parent.computed] (default parent.computed). */
  atLength?: number;
  /**
   * Tokens the child feeds after the kept prefix (default: the parent's token at atLength). One token: the child
   * decodes next step. Several: the child prefills them first, then samples after the last one.
   */
  nextTokens?: readonly number[];
}

export interface PlanOptions {
  /** Only paths for which this returns true take part (default: every path). */
  include?: (id: number) => boolean;
}

export interface SchedulerStats {
  steps: number;
  rows: number;
  decodeRows: number;
  prefillRows: number;
  /** Prompt tokens of every request added. */
  promptTokens: number;
  /** Of those, tokens taken from the prefix cache instead of being computed. */
  reusedPromptTokens: number;
  forks: number;
}

interface SpecInfo {
  plan: StepPlan;
  /** Path id -> position of its row. */
  rows: Map<number, number>;
  undone: Set<number>;
}

interface Entry {
  rec: PathRecord;
  rows: number;
  samples: boolean;
}

export class Scheduler {
  readonly kv: KvCache;
  readonly maxRowsPerStep: number;
  private readonly records = new Map<number, PathRecord>();
  private nextId = 0;
  private flight: StepPlan | null = null;
  /** Set when the plan in flight is speculative (planAhead): its rows per path (position) and those undone. */
  private flightSpec: SpecInfo | null = null;
  /** A speculative plan planned while `flight` is still in flight; it becomes `flight` when that is committed. */
  private aheadSpec: SpecInfo | null = null;
  private readonly counters: SchedulerStats = {
    steps: 0,
    rows: 0,
    decodeRows: 0,
    prefillRows: 0,
    promptTokens: 0,
    reusedPromptTokens: 0,
    forks: 0,
  };

  constructor(kv: KvCache, options: SchedulerOptions = {}) {
    const maxRows = options.maxRowsPerStep ?? 256;
    if (!Number.isSafeInteger(maxRows) || maxRows < 1) {
      throw new InvalidArgumentError(`maxRowsPerStep must be a positive integer, got ${maxRows}.`);
    }
    this.kv = kv;
    this.maxRowsPerStep = maxRows;
  }

  get stats(): Readonly<SchedulerStats> {
    return { ...this.counters };
  }

  /** Whether a plan awaits commit(). */
  get inFlight(): boolean {
    return this.flight !== null;
  }

  path(id: number): Path {
    return this.get(id);
  }

  /** Every path not freed (finished ones included), ascending id. */
  paths(): Path[] {
    return [...this.records.values()].sort((a, b) => a.id - b.id);
  }

  /** A new prefilling path for `prompt`, reusing the longest cached prefix. Allocates no page. */
  addRequest(prompt: readonly number[]): Path {
    if (prompt.length === 0) {
      throw new InvalidArgumentError('A request needs at least one prompt token (add the BOS token for an empty prompt).');
    }
    assertTokenIds(prompt);
    const { path: kvPath, reusedTokens } = this.kv.createPathWithPrefix(prompt);
    const rec = new PathRecord({
      id: this.nextId++,
      kvPath,
      state: 'prefill',
      tokens: [...prompt],
      computed: reusedTokens,
      promptLength: prompt.length,
      reusedTokens,
    });
    this.records.set(rec.id, rec);
    this.counters.promptTokens += prompt.length;
    this.counters.reusedPromptTokens += reusedTokens;
    return rec;
  }

  /**
   * A child of path `id` keeping its first `atLength` cached tokens (shared pages, one tail copy at most) and feeding
   * `nextTokens` after them. Throws PagePoolExhaustedError with nothing changed when no page is left for the tail.
   */
  fork(id: number, options: ForkOptions = {}): Path {
    const parent = this.get(id);
    if (this.flight?.pathIds.includes(id) && this.rowKept(id))
      throw new InvalidArgumentError(`fork(${id}) while a plan that computes it is in flight: commit(plan, sampled) first.`);
    const at = options.atLength ?? parent.computed;
    if (!Number.isInteger(at) || at < 0 || at > parent.computed) {
      throw new InvalidArgumentError(`fork: atLength must be an integer in [0, ${parent.computed}], got ${at}.`);
    }
    let next: number[];
    if (options.nextTokens !== undefined) next = [...options.nextTokens];
    else if (at < parent.tokens.length) next = [parent.tokens[at]];
    else throw new InvalidArgumentError(`fork at ${at}: path ${id} has no token there yet; pass nextTokens.`);
    if (next.length === 0) throw new InvalidArgumentError('fork: nextTokens must hold at least one token.');
    assertTokenIds(next);
    const { child: kvPath } = this.kv.fork(parent.kvPath, at);
    const tokens = parent.tokens.slice(0, at).concat(next);
    const rec = new PathRecord({
      id: this.nextId++,
      kvPath,
      state: next.length === 1 ? 'decode' : 'prefill',
      tokens,
      computed: at,
      promptLength: Math.min(parent.promptLength, tokens.length),
      parentId: parent.id,
      forkedAt: at,
    });
    this.records.set(rec.id, rec);
    this.counters.forks++;
    return rec;
  }

  /** Stops a path: no more rows. Its KV pages stay (later forks may start from it) until free(). */
  finish(id: number): void {
    this.get(id).state = 'finished';
  }

  /** Drops a path and releases its KV pages. */
  free(id: number): void {
    const rec = this.get(id);
    for (const spec of [this.flightSpec, this.aheadSpec]) if (spec?.rows.has(id)) spec.undone.add(id);
    this.kv.free(rec.kvPath);
    this.records.delete(id);
  }

  /**
   * The next step's plan, or null when no path has anything to compute. Appends the planned rows' tokens to the KV
   * cache. Throws PagePoolExhaustedError, with no state changed, when the pool cannot hold the step's new pages.
   */
  plan(options: PlanOptions = {}): StepPlan | null {
    if (this.flight) throw new InvalidArgumentError('plan() while a plan is in flight: commit(plan, sampled) first.');
    const entries = this.chooseRows(options.include);
    if (entries.length === 0) return null;

    const needed = this.pagesFor(entries);
    if (needed > this.kv.freeCount) throw new PagePoolExhaustedError(needed, this.kv.freeCount);

    const P = entries.length;
    let R = 0;
    let S = 0;
    for (const e of entries) {
      R += e.rows;
      if (e.samples) S++;
    }
    const tokenIds = new Uint32Array(R); // (R)
    const positions = new Uint32Array(R); // (R)
    const rowPath = new Uint32Array(R); // (R)
    const slots = new Uint32Array(R); // (R)
    const seqLen = new Uint32Array(P); // (P)
    const sampleRow = new Uint32Array(S); // (S)
    const samplePath = new Uint32Array(S); // (S)
    const pathIds: number[] = [];
    let row = 0;
    let s = 0;
    let maxPages = 0;
    for (let p = 0; p < P; p++) {
      const { rec, rows, samples } = entries[p];
      const start = rec.computed;
      const { slots: got } = this.kv.append(rec.kvPath, rec.tokens.slice(start, start + rows));
      for (let j = 0; j < rows; j++, row++) {
        tokenIds[row] = rec.tokens[start + j];
        positions[row] = start + j;
        rowPath[row] = p;
        slots[row] = got[j];
      }
      rec.computed += rows;
      seqLen[p] = rec.computed;
      if (samples) {
        sampleRow[s] = row - 1;
        samplePath[s] = p;
        s++;
      }
      pathIds.push(rec.id);
      maxPages = Math.max(maxPages, this.kv.pages(rec.kvPath).length);
      if (rec.state === 'decode') this.counters.decodeRows += rows;
      else this.counters.prefillRows += rows;
    }
    const pageTable = new Uint32Array(P * maxPages); // (P, maxPages), unused entries 0
    for (let p = 0; p < P; p++) pageTable.set(this.kv.pages(entries[p].rec.kvPath), p * maxPages);

    const plan: StepPlan = {
      rows: R,
      paths: P,
      samples: S,
      maxPages,
      tokenIds,
      positions,
      rowPath,
      slots,
      pageTable,
      seqLen,
      sampleRow,
      samplePath,
      pathIds,
      copies: this.kv.drainCopies(),
    };
    this.flight = plan;
    this.counters.steps++;
    this.counters.rows += R;
    return plan;
  }

  /**
   * Ends the plan in flight: sampled[s] is the token sampled for path slot plan.samplePath[s]. Each sampling path
   * gets it as its nextToken and decodes next step (a prefill that just ended becomes 'decode'). Paths finished or
   * freed since plan() are skipped.
   */
  commit(plan: StepPlan, sampled: ArrayLike<number>): void {
    if (plan !== this.flight) throw new InvalidArgumentError('commit: this plan is not the one in flight (from plan()).');
    if (sampled.length !== plan.samples) {
      throw new InvalidArgumentError(`commit: plan samples ${plan.samples} path(s), got ${sampled.length} token(s).`);
    }
    const tokens = Array.from(sampled);
    assertTokenIds(tokens);
    const spec = this.flightSpec;
    if (spec) {
      // The speculative plan ends: its rows that were not undone are real now; count them, enter their pages.
      let rows = 0;
      for (const [id, pos] of spec.rows) {
        const rec = this.records.get(id);
        if (spec.undone.has(id) || !rec) continue;
        rows++;
        // Up to this row's token: a row planned ahead of it (placeholder) is not known yet.
        this.kv.registerFull(rec.kvPath, pos + 1);
      }
      this.counters.steps++;
      this.counters.rows += rows;
      this.counters.decodeRows += rows;
    }
    const ahead = this.aheadSpec;
    for (let s = 0; s < plan.samples; s++) {
      const rec = this.records.get(plan.pathIds[plan.samplePath[s]]);
      if (!rec || rec.state === 'finished' || spec?.undone.has(rec.id)) continue;
      if (ahead?.rows.has(rec.id) && !ahead.undone.has(rec.id)) this.kv.setToken(rec.kvPath, rec.tokens.length, tokens[s]);
      rec.tokens.push(tokens[s]);
      rec.state = 'decode';
    }
    this.flight = ahead ? ahead.plan : null;
    this.flightSpec = ahead;
    this.aheadSpec = null;
  }

  /**
   * The speculative next plan while `prev` is in flight: one decode row per sampling path of `prev`, in ascending id
   * (the order plan() would give them), at the position of the token `prev` samples. Its tokenIds are placeholders
   * (0): the row of plan slot r feeds the first token drawn for prev's sampling row feed[r], which the GPU copies
   * there. Null, with nothing changed, when prev has a path that does not sample (a prompt chunk continues), a path
   * would pass `maxLength` tokens, the pool cannot hold the new pages, or one of them holds a prefix-cache entry.
   */
  planAhead(prev: StepPlan, maxLength: number): { plan: StepPlan; feed: Uint32Array } | null {
    if (prev !== this.flight || this.aheadSpec) throw new InvalidArgumentError('planAhead: give the plan in flight, once.');
    if (prev.samples !== prev.paths) return null;
    const order: { rec: PathRecord; s: number }[] = [];
    for (let s = 0; s < prev.samples; s++) {
      const rec = this.records.get(prev.pathIds[prev.samplePath[s]]);
      // Finished or freed since prev was planned: a synchronous plan would not have it either.
      if (!rec || rec.state === 'finished' || !this.rowKept(rec.id)) continue;
      if (rec.computed !== rec.tokens.length || rec.tokens.length + 1 > maxLength) return null;
      order.push({ rec, s });
    }
    if (order.length === 0) return null;
    order.sort((a, b) => a.rec.id - b.rec.id);
    let needed = 0;
    for (const { rec } of order) needed += this.kv.pagesNeeded(rec.kvPath, 1);
    // A page holding a cached prefix is not taken on speculation: undoing the row would lose that prefix-cache entry
    // (a later prompt with that prefix would be prefilled again), which a synchronous step never does.
    if (needed > this.kv.freeCount || this.kv.nextAllocEvicts(needed)) return null;
    const { plan, feed, rows } = aheadPlan(this.kv, order);
    this.aheadSpec = { plan, rows, undone: new Set() };
    return { plan, feed };
  }

  /** Whether path `id` holds a row, not undone, in the newest speculative plan (ahead, else in flight). */
  specHas(id: number): boolean {
    const spec = this.aheadSpec ?? this.flightSpec;
    return spec !== null && spec.rows.has(id) && !spec.undone.has(id);
  }

  /** Whether the plan in flight is speculative and nothing is planned after it: unplan() and cancel() may run. */
  get specInFlight(): boolean {
    return this.flightSpec !== null && this.aheadSpec === null;
  }

  /** Whether path `id`'s rows in the plan in flight still count (not undone by unplan or free). */
  rowKept(id: number): boolean {
    return !this.flightSpec || (this.flightSpec.rows.has(id) && !this.flightSpec.undone.has(id));
  }

  /**
   * Undoes path `id`'s row of the speculative plan in flight: its slot and any page it took are given back (undo
   * several in reverse plan order to give the pool back its order) and its token is pending again.
   */
  unplan(id: number): void {
    const spec = this.flightSpec;
    if (!this.specInFlight || !spec || !this.specHas(id))
      throw new InvalidArgumentError(`unplan(${id}): the path has no speculative row in flight.`);
    const rec = this.get(id);
    const pos = spec.rows.get(id)!;
    rec.computed = pos;
    this.kv.truncate(rec.kvPath, pos);
    spec.undone.add(id);
  }

  /** Undoes every row of the speculative plan in flight (last first) and ends it: plan() may run again. */
  cancel(): void {
    const spec = this.flightSpec;
    if (!this.specInFlight || !spec) throw new InvalidArgumentError('cancel: no speculative plan is in flight.');
    for (const id of [...spec.plan.pathIds].reverse()) if (this.specHas(id)) this.unplan(id);
    this.flightSpec = null;
    this.flight = null;
  }

  /** New KV pages the plan of the included paths would allocate (plan() throws when more than kv.freeCount). */
  pagesNeeded(options: PlanOptions = {}): number {
    return this.pagesFor(this.chooseRows(options.include));
  }

  private pagesFor(entries: Entry[]): number {
    let needed = 0;
    for (const e of entries) needed += this.kv.pagesNeeded(e.rec.kvPath, e.rows);
    return needed;
  }

  /** Decode paths one row each; prefill paths in arrival order under the remaining budget. */
  private chooseRows(include?: (id: number) => boolean): Entry[] {
    const live = [...this.records.values()].filter((r) => !include || include(r.id)).sort((a, b) => a.id - b.id);
    const entries: Entry[] = [];
    for (const rec of live) {
      if (rec.state !== 'decode') continue;
      // Rows of a speculative plan are already planned, their pages taken.
      if (this.flightSpec?.rows.has(rec.id) && this.rowKept(rec.id)) continue;
      if (this.aheadSpec?.rows.has(rec.id) && !this.aheadSpec.undone.has(rec.id)) continue;
      if (rec.pendingCount !== 1) {
        throw new Error(`Scheduler: decoding path ${rec.id} has ${rec.pendingCount} pending tokens (internal invariant broken).`);
      }
      entries.push({ rec, rows: 1, samples: true });
    }
    let budget = Math.max(0, this.maxRowsPerStep - entries.length);
    for (const rec of live) {
      if (budget === 0) break;
      if (rec.state !== 'prefill') continue;
      const rows = Math.min(rec.pendingCount, budget);
      budget -= rows;
      entries.push({ rec, rows, samples: rows === rec.pendingCount });
    }
    return entries;
  }

  private get(id: number): PathRecord {
    const rec = this.records.get(id);
    if (!rec) throw new InvalidArgumentError(`Unknown path ${id}: it was never created or has been freed.`);
    return rec;
  }
}
