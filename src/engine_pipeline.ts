// Pipelined steps (EngineOptions.pipeline): while step t runs, step t+1 is planned and submitted on the assumption
// that every sampling path continues with its first draw, which the GPU copies into step t+1's input. This file owns
// that speculative step: planning and submitting it, confirming it as the next step when it is exactly the step a
// synchronous engine would run, and undoing it (row by row for a finished or freed path, whole otherwise). The engine
// (engine.ts) owns the paths and asks this at the points where its decisions may contradict the speculation.
import type { KvCache } from './kv/kv_cache.js';
import { submitStep, type StepSampling, type SubmittedStep } from './model/forward.js';
import type { GpuModel } from './model/gpu_model.js';
import type { SamplingParams } from './sample/params.js';
import type { PathRng } from './sample/rng.js';
import type { Scheduler } from './sched/scheduler.js';
import type { StepPlan } from './sched/step_plan.js';

/** A submitted step whose stats have not been read yet. */
export interface InFlight {
  plan: StepPlan;
  sampling: StepSampling[];
  submitted: SubmittedStep;
  startMs: number;
  submitMs: number;
  /** A speculative step: pages its row took per path (not in use until the step is the one that runs). */
  fresh: Map<number, number> | null;
}

/** A path's sampling state, as the engine keeps it. */
export interface PathState {
  sampling: SamplingParams;
  rng: PathRng;
  /** Tokens to draw without replacement next step (1, or a branch factor). */
  draws: number;
}

/** What the pipeline reads of its engine. */
export interface PipelineHost {
  readonly sched: Scheduler;
  readonly kv: KvCache;
  readonly model: GpuModel;
  /** The model's context length: a speculative row never passes it. */
  readonly maxSeqLen: number;
  /** Whether steps carry GPU timestamps (Engine.timestampSteps). */
  readonly timestamps: boolean;
  /** The state of a live path (throws for an unknown one). */
  state(id: number): PathState;
  /** Whether the path is live (not freed). */
  has(id: number): boolean;
}

/** Speculative steps so far (Engine.pipelineStats). */
export interface PipelineStats {
  speculated: number;
  confirmed: number;
  abandoned: number;
  undoneRows: number;
}

export class StepPipeline {
  /** The speculative next step, submitted before the last step's stats were read. */
  private ahead: InFlight | null = null;
  private readonly counts: PipelineStats = { speculated: 0, confirmed: 0, abandoned: 0, undoneRows: 0 };

  constructor(private readonly host: PipelineHost) {}

  get stats(): PipelineStats {
    return { ...this.counts };
  }

  /** New pages the speculative step took for the included paths whose rows it still holds. */
  pagesHeld(include: (id: number) => boolean = () => true): number {
    let n = 0;
    if (this.ahead?.fresh) for (const [id, pages] of this.ahead.fresh) if (this.host.sched.specHas(id) && include(id)) n += pages;
    return n;
  }

  /** Whether a speculative step is in flight (its predecessor read) and holds a row of path `id`. */
  holdsRow(id: number): boolean {
    const sched = this.host.sched;
    return this.ahead !== null && sched.specInFlight && sched.specHas(id);
  }

  /** Whether a speculative step is in flight with its predecessor read (its pages may be what the pool lacks). */
  get inFlight(): boolean {
    return this.ahead !== null && this.host.sched.specInFlight;
  }

  /**
   * Undoes the speculative rows of paths finished since it was planned (their tokens stay as a synchronous step
   * leaves them: the last one sampled, not computed). Only once the speculative step is the one in flight.
   */
  undoFinished(): void {
    const a = this.ahead;
    const { sched } = this.host;
    if (!a || !sched.specInFlight) return;
    for (const id of [...a.plan.pathIds].reverse()) {
      if (!sched.specHas(id) || sched.path(id).state !== 'finished') continue;
      sched.unplan(id);
      this.host.state(id).rng.unread();
      this.counts.undoneRows++;
    }
  }

  /** Undoes every row of the speculative step; its GPU work still runs, its stats are dropped. */
  abandon(): void {
    const a = this.ahead;
    if (!a) return;
    this.ahead = null;
    for (const id of a.plan.pathIds) if (this.host.sched.specHas(id)) this.host.state(id).rng.unread();
    this.host.sched.cancel();
    this.counts.abandoned++;
    a.submitted.stats.catch(() => undefined);
    a.submitted.gpuNs?.catch(() => undefined);
  }

  /**
   * The speculative step as the step to run now for `include`, when it is exactly the step a synchronous engine would
   * run (its pages are in use from here on); otherwise it is undone and the answer is null.
   */
  take(include: (id: number) => boolean, options: { logits?: boolean }): InFlight | null {
    const a = this.ahead;
    if (!a) return null;
    if (!this.fits(a, include, options)) {
      this.abandon();
      return null;
    }
    a.fresh = null;
    this.ahead = null;
    this.counts.confirmed++;
    return a;
  }

  /** Forgets the speculative step after a failed step (the engine releases every path). */
  reset(): void {
    this.ahead = null;
  }

  private fits(a: InFlight, include: (id: number) => boolean, options: { logits?: boolean }): boolean {
    const { sched } = this.host;
    if (options.logits) return false;
    for (const [i, id] of a.plan.pathIds.entries()) {
      // A row undone (its path finished or freed): the step ran more rows than a synchronous one would, and kernels
      // pick their variant by row count, which may round differently. Bit-for-bit replay needs the synchronous step.
      if (!sched.specHas(id)) return false;
      if (!include(id) || this.host.state(id).draws !== a.sampling[i].nSamples) return false;
    }
    return sched.paths().every((p) => !include(p.id) || p.state === 'finished' || sched.specHas(p.id));
  }

  /**
   * Plans and submits the step after `cur` while `cur` runs, assuming each of its sampling paths continues with its
   * first draw (fed on the GPU) and draws as many tokens as in `cur`. Null when that step would not be exactly the
   * next synchronous one (another included path waits, a prompt chunk continues, the context or the pool is full, or
   * a page it would take holds a cached prefix).
   */
  async speculate(cur: InFlight, include: (id: number) => boolean): Promise<InFlight | null> {
    const { sched, kv } = this.host;
    const ids = new Set(
      Array.from(cur.plan.samplePath, (s) => cur.plan.pathIds[s]).filter(
        (id) => this.host.has(id) && sched.path(id).state !== 'finished' && sched.rowKept(id),
      ),
    );
    if (sched.paths().some((p) => include(p.id) && p.state !== 'finished' && !ids.has(p.id))) return null;
    const fresh = new Map<number, number>();
    for (const id of ids) fresh.set(id, kv.pagesNeeded(sched.path(id).kvPath, 1));
    const spec = sched.planAhead(cur.plan, this.host.maxSeqLen);
    if (!spec) return null;
    const draws = new Map<number, number>();
    cur.sampling.forEach((s, i) => draws.set(cur.plan.pathIds[cur.plan.samplePath[i]], s.nSamples));
    const sampling = spec.plan.pathIds.map((id): StepSampling => {
      const st = this.host.state(id);
      return { temperature: st.sampling.temperature, topP: st.sampling.topP, randomBits: st.rng.nextU32(), nSamples: draws.get(id)! };
    });
    const t: InFlight = { plan: spec.plan, sampling, fresh, startMs: performance.now(), submitMs: 0, submitted: null as unknown as SubmittedStep };
    this.ahead = t;
    this.counts.speculated++;
    t.submitted = await submitStep(this.host.model, spec.plan, sampling, {
      feed: spec.feed,
      onSubmit: () => (t.submitMs = performance.now()),
      timestamps: this.host.timestamps,
    });
    return t;
  }
}
