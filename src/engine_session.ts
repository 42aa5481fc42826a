// Sessions: many callers on one engine, sharing its forward passes (continuous batching).
//
// Each caller (a runEab, a generate, one HTTP request) opens engine.session(): a BranchEngine with its own path ids
// (numbered from 0 in the session, so a run's tree and ids do not depend on what else runs), its own counters, and a
// step() that resolves with the results of its own paths only. The hub runs one forward pass as soon as every session
// that has live paths is waiting in step(), over all of their paths, and hands each session its results. A session
// that keeps live paths without stepping (a consumer that paused) does not stall the others for long: after
// `batchWaitMs` the waiting sessions step without it. Results do not depend on who shares a step: a path's random
// stream depends only on its request's seed and lineage (DESIGN.md convention 9) and batching changes only the
// summation order of the matmuls (test/model/batch_fork.test.ts).
//
// Limits per step: at most engine.maxLivePaths sampling paths (the model's maxSamples) and the free KV pages. Waiting
// sessions are taken in arrival order, whole (a session's paths all advance together); one that does not fit waits
// for the next step, and one that does not fit even alone gets PagePoolExhaustedError with nothing changed, as when it
// runs alone.
import type { BranchEngine, CreatePathOptions, EngineInfo, ForkOptions, PathView, SessionCounters, StepResult } from './branch/engine_api.js';
import { ContextOverflowError, ForkLMError, InvalidArgumentError, PagePoolExhaustedError } from './errors.js';
import type { SamplingParams } from './sample/params.js';
import type { Tokenizer } from './tokenizer/types.js';

export type StepOutput = { results: StepResult[]; logits?: Float32Array };

/** What the hub needs from the engine (engine.ts implements it). */
export interface SessionHost {
  readonly info: EngineInfo;
  readonly tokenizer: Tokenizer | null;
  /** Pages in use and free now. */
  readonly pagesInUse: number;
  readonly pagesFree: number;
  hostCreatePath(prompt: readonly number[], sampling: Partial<SamplingParams>, options: CreatePathOptions): number;
  hostFork(id: number, options: ForkOptions): number;
  /** Page copies queued by forks so far (engine-wide). */
  readonly copiesMade: number;
  setDraws(id: number, n: number): void;
  finish(id: number): void;
  free(id: number): void;
  hasPath(id: number): boolean;
  path(id: number): PathView;
  /** New KV pages a step of exactly these paths would allocate. */
  pagesNeeded(include: (id: number) => boolean): number;
  /** The first of these paths that cannot grow by one token within the context, as an error; null when all can. */
  contextError(ids: readonly number[]): ContextOverflowError | null;
  /** One forward pass over the included paths; rows computed per path id come back with the results. */
  stepIncluded(include: (id: number) => boolean, options: { logits?: boolean }): Promise<(StepOutput & { rows: Map<number, number> }) | null>;
}

interface Waiter {
  session: EngineSession;
  logits: boolean;
  resolve: (out: StepOutput | null) => void;
  reject: (err: unknown) => void;
}

/** Opens sessions on one engine and runs their shared steps. One per engine. */
export class SessionHub {
  private readonly sessions = new Set<EngineSession>();
  /** Session that owns each engine path id. */
  readonly owner = new Map<number, EngineSession>();
  private waiting: Waiter[] = [];
  private running = false;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    readonly host: SessionHost,
    /** How long waiting sessions wait for a session that has live paths but is not stepping, in ms. */
    readonly batchWaitMs = 20,
  ) {}

  open(): EngineSession {
    const s = new EngineSession(this);
    this.sessions.add(s);
    return s;
  }

  /** @internal */
  closed(s: EngineSession): void {
    this.sessions.delete(s);
    this.kick();
  }

  /** Forgets every path (the engine freed them all after a failed step). */
  forgetAll(): void {
    this.owner.clear();
  }

  /** @internal A session's step(): resolves after the shared step that includes it. */
  request(session: EngineSession, logits: boolean): Promise<StepOutput | null> {
    if (this.waiting.some((w) => w.session === session))
      return Promise.reject(new InvalidArgumentError('step() called again before the previous step() of this session resolved.'));
    if (session.liveCount() === 0) return Promise.resolve(null);
    return new Promise((resolve, reject) => {
      this.waiting.push({ session, logits, resolve, reject });
      this.kick();
    });
  }

  /**
   * Starts a step when every session with live paths waits; otherwise arms the timer that steps without laggards.
   * The check runs in a microtask, so that callers started in the same tick (Promise.all of two runs) join the first
   * step.
   */
  private kick(): void {
    if (this.running || this.waiting.length === 0 || this.checkQueued) return;
    this.checkQueued = true;
    queueMicrotask(() => {
      this.checkQueued = false;
      this.check();
    });
  }

  private checkQueued = false;

  private check(): void {
    if (this.running || this.waiting.length === 0) return;
    const waitingSet = new Set(this.waiting.map((w) => w.session));
    const ready = [...this.sessions].every((s) => waitingSet.has(s) || s.liveCount() === 0);
    if (ready) {
      this.clearTimer();
      void this.run();
    } else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = null;
        void this.run();
      }, this.batchWaitMs);
    }
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private async run(): Promise<void> {
    if (this.running || this.waiting.length === 0) return;
    this.running = true;
    let chosen: Waiter[] = [];
    try {
      chosen = this.choose();
      if (chosen.length === 0) return;
      const ids = new Set<number>();
      for (const w of chosen) for (const id of w.session.engineIds()) ids.add(id);
      this.waiting = this.waiting.filter((w) => !chosen.includes(w));
      let out;
      try {
        out = await this.host.stepIncluded((id) => ids.has(id), { logits: chosen.some((w) => w.logits) });
      } catch (err) {
        for (const w of chosen) w.reject(err);
        return;
      }
      this.deliver(chosen, out);
    } finally {
      this.running = false;
      this.kick();
    }
  }

  /** Waiting sessions that go into this step, in arrival order; rejects those that can never run as they are. */
  private choose(): Waiter[] {
    const { host } = this;
    const chosen: Waiter[] = [];
    const ids = new Set<number>();
    let samples = 0;
    for (const w of [...this.waiting]) {
      const own = w.session.engineIds();
      const live = w.session.liveCount();
      const overflow = host.contextError(own);
      if (live === 0 || overflow) {
        this.waiting.splice(this.waiting.indexOf(w), 1);
        if (overflow) w.reject(overflow);
        else w.resolve(null);
        continue;
      }
      if (samples + live > host.info.maxLivePaths) continue;
      const trial = new Set([...ids, ...own]);
      const needed = host.pagesNeeded((id) => trial.has(id));
      if (needed > host.pagesFree) {
        if (chosen.length === 0) {
          // Alone it does not fit either: its controller must free pages (prune) before it can go on.
          this.waiting.splice(this.waiting.indexOf(w), 1);
          w.reject(new PagePoolExhaustedError(needed, host.pagesFree));
        }
        continue;
      }
      chosen.push(w);
      for (const id of own) ids.add(id);
      samples += live;
    }
    return chosen;
  }

  private deliver(chosen: Waiter[], out: (StepOutput & { rows: Map<number, number> }) | null): void {
    const used = this.host.pagesInUse;
    const V = this.host.info.vocabSize;
    for (const w of chosen) {
      const s = w.session;
      if (!out) {
        w.resolve(null);
        continue;
      }
      const results: StepResult[] = [];
      const rowsOfLogits: number[] = [];
      out.results.forEach((r, i) => {
        if (this.owner.get(r.pathId) !== s) return;
        results.push({ ...r, pathId: s.localId(r.pathId) });
        rowsOfLogits.push(i);
      });
      let rows = 0;
      for (const id of s.engineIds()) rows += out.rows.get(id) ?? 0;
      s.noteStep(rows, used);
      if (w.logits && out.logits) {
        const logits = new Float32Array(rowsOfLogits.length * V); // (S_session, V)
        rowsOfLogits.forEach((i, j) => logits.set(out.logits!.subarray(i * V, (i + 1) * V), j * V));
        w.resolve({ results, logits });
      } else w.resolve({ results });
    }
  }
}

/** One caller's view of the engine: its own paths (ids from 0), steps shared with the other sessions. */
export class EngineSession implements BranchEngine {
  private readonly toEngine = new Map<number, number>();
  private readonly toLocal = new Map<number, number>();
  private nextLocal = 0;
  private open = true;
  private readonly stats: SessionCounters = { steps: 0, rows: 0, reusedPromptTokens: 0, forks: 0, pageCopies: 0, pagesPeak: 0 };

  constructor(private readonly hub: SessionHub) {
    this.stats.pagesPeak = hub.host.pagesInUse;
  }

  get info(): EngineInfo {
    return this.hub.host.info;
  }

  get tokenizer(): Tokenizer | null {
    return this.hub.host.tokenizer;
  }

  createPath(prompt: readonly number[], sampling: Partial<SamplingParams> = {}, options: CreatePathOptions = {}): number {
    this.checkRoom();
    const eid = this.hub.host.hostCreatePath(prompt, sampling, options);
    this.stats.reusedPromptTokens += this.hub.host.path(eid).reusedTokens;
    return this.adopt(eid);
  }

  fork(id: number, options: ForkOptions): number {
    const parent = this.engineId(id);
    this.checkRoom();
    const copies0 = this.hub.host.copiesMade;
    const eid = this.hub.host.hostFork(parent, options);
    this.stats.forks++;
    this.stats.pageCopies += this.hub.host.copiesMade - copies0;
    return this.adopt(eid);
  }

  setDraws(id: number, n: number): void {
    this.hub.host.setDraws(this.engineId(id), n);
  }

  step(options: { logits?: boolean } = {}): Promise<StepOutput | null> {
    if (!this.open) return Promise.reject(new InvalidArgumentError('This session is closed: open a new one with engine.session().'));
    return this.hub.request(this, options.logits === true);
  }

  finish(id: number): void {
    this.hub.host.finish(this.engineId(id));
  }

  free(id: number): void {
    const eid = this.engineId(id);
    this.hub.host.free(eid);
    this.forget(id, eid);
  }

  release(id: number): void {
    const eid = this.toEngine.get(id);
    if (eid === undefined) return;
    if (this.hub.host.hasPath(eid)) this.hub.host.free(eid);
    this.forget(id, eid);
  }

  path(id: number): PathView {
    const p = this.hub.host.path(this.engineId(id));
    return { id, state: p.state, tokens: p.tokens, promptLength: p.promptLength, reusedTokens: p.reusedTokens };
  }

  liveCount(): number {
    let n = 0;
    for (const eid of this.toEngine.values()) if (this.hub.host.hasPath(eid) && this.hub.host.path(eid).state !== 'finished') n++;
    return n;
  }

  counters(): SessionCounters {
    return { ...this.stats };
  }

  close(): void {
    if (!this.open) return;
    for (const id of [...this.toEngine.keys()]) this.release(id);
    this.open = false;
    this.hub.closed(this);
  }

  /** @internal Engine ids of this session's paths that still exist. */
  engineIds(): number[] {
    return [...this.toEngine.values()].filter((eid) => this.hub.host.hasPath(eid));
  }

  /** @internal */
  localId(eid: number): number {
    const id = this.toLocal.get(eid);
    if (id === undefined) throw new ForkLMError('INTERNAL', `engine path ${eid} does not belong to this session.`);
    return id;
  }

  /** @internal Counts a step this session took part in. */
  noteStep(rows: number, pagesInUse: number): void {
    this.stats.steps++;
    this.stats.rows += rows;
    this.stats.pagesPeak = Math.max(this.stats.pagesPeak, pagesInUse);
  }

  private adopt(eid: number): number {
    const id = this.nextLocal++;
    this.toEngine.set(id, eid);
    this.toLocal.set(eid, id);
    this.hub.owner.set(eid, this);
    this.stats.pagesPeak = Math.max(this.stats.pagesPeak, this.hub.host.pagesInUse);
    return id;
  }

  private forget(id: number, eid: number): void {
    this.toEngine.delete(id);
    this.toLocal.delete(eid);
    if (this.hub.owner.get(eid) === this) this.hub.owner.delete(eid);
  }

  private engineId(id: number): number {
    if (!this.open) throw new InvalidArgumentError('This session is closed: open a new one with engine.session().');
    const eid = this.toEngine.get(id);
    if (eid === undefined || !this.hub.host.hasPath(eid))
      throw new InvalidArgumentError(`Unknown path ${id}: it was never created in this session or has been freed.`);
    return eid;
  }

  private checkRoom(): void {
    if (!this.open) throw new InvalidArgumentError('This session is closed: open a new one with engine.session().');
    const max = this.info.maxLivePaths;
    if (this.liveCount() >= max)
      throw new InvalidArgumentError(
        `${max} paths of this session are live, the most one step samples (maxSamples). Finish or free paths first, ` +
          'or create the engine with a larger maxSamples.',
      );
  }
}
