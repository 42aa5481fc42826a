// The 'rounds' schedule of confidence-peak branching, the seed's way (../shared/seeds/prefix-branching.md): a trace's
// peaks are found once it has finished (its highest peaks_per_trace, over the eligible region of its whole length),
// and branches of depth d + 1 start only once every trace of depth d has finished, so candidates are ranked over the
// whole round. Steps thin out at the end of every round (the stragglers run alone); peaks_online.ts has no rounds.
//
// Page lifetime: a finished trace that still has peaks waiting to be branched is engine.finish()ed (its pages stay);
// it is released as soon as its last waiting peak has been branched or dropped.
import { CancelledError, PagePoolExhaustedError } from '../errors.js';
import { findPeaks, type Peak } from './confidence.js';
import { peakOptions } from './peak_rules.js';
import { traceName, type PeaksRun, type Trace } from './peaks_run.js';
import type { PeaksEvent, PeaksStopReason } from './peaks_types.js';
import type { StepResult } from './engine_api.js';

interface Candidate {
  parent: Trace;
  peak: Peak;
  /** Branches still to start from this peak. */
  remaining: number;
}

export async function* roundsLoop(run: PeaksRun, signal: AbortSignal | undefined, stepOptions: { logits: boolean }, onStep?: (s: { results: StepResult[]; logits?: Float32Array }) => void): AsyncGenerator<PeaksEvent, void> {
  const { engine, params, prompt, regenerate } = run;
  const live = new Set<Trace>();
  const pool: Candidate[] = [];

  const start = (t: Trace): Trace => {
    run.commit(t);
    live.add(t);
    return t;
  };

  /** Ends a live trace; a natural end may leave peaks to branch (pages kept), anything else frees it now. */
  const end = (t: Trace, reason: PeaksStopReason): void => {
    t.stop = reason;
    live.delete(t);
    run.pending.push({ type: 'finish', trace: traceName(t), reason, num_tokens: t.tokens.length });
    const natural = reason === 'eos' || reason === 'length';
    if (natural && t.depth < params.max_depth && run.traces.length < params.max_traces) {
      const peaks = findPeaks(t.confs, peakOptions(t, params));
      run.peaksFound += peaks.length;
      for (const peak of peaks.slice(0, params.peaks_per_trace)) pool.push({ parent: t, peak, remaining: params.branches_per_peak });
      t.waiting = Math.min(peaks.length, params.peaks_per_trace);
    }
    // Regenerated branches start from the prompt: only a prefix branch needs the parent's pages.
    if (t.waiting > 0 && !regenerate) engine.finish(t.pathId);
    else run.release(t);
    if (t.warmup) run.maybeSetBar();
  };

  const drop = (c: Candidate): void => {
    c.remaining = 0;
    if (--c.parent.waiting === 0) run.release(c.parent);
  };

  const rank = (a: Candidate, b: Candidate): number =>
    a.parent.depth - b.parent.depth ||
    b.peak.confidence - a.peak.confidence ||
    a.parent.index - b.parent.index ||
    a.peak.branchPoint - b.peak.branchPoint;

  /** Branch number `sibling` of candidate `c`. Streams follow the lineage, so a run replays on any engine. */
  const branch = (c: Candidate, sibling: number): Trace => {
    const p = c.parent;
    const b = c.peak.branchPoint;
    // A regenerated branch is a new root: its root index is its index in the run (unique, and the same on replay).
    const root = run.traces.length;
    const pathId = regenerate
      ? engine.createPath(prompt, run.sampling, { reserve: params.max_new_tokens, root })
      : engine.fork(p.pathId, { keep: prompt.length + b, sibling });
    return start(
      run.create({
        pathId,
        parent: p,
        depth: p.depth + 1,
        branchPoint: b,
        prefixLength: regenerate ? 0 : b,
        history: [...p.history, { step: b, confidence: c.peak.confidence, parent_trace: traceName(p) }],
        sibling: regenerate ? root : sibling,
        fromPrompt: regenerate,
        start: 0,
      }),
    );
  };

  /** Starts branches from the best waiting peaks once their round is over, while budget and room allow. */
  const spawn = (): void => {
    pool.sort(rank);
    while (pool.length > 0 && run.traces.length < params.max_traces) {
      const c = pool[0];
      if ([...live].some((t) => t.depth <= c.parent.depth)) break;
      const room = engine.info.maxLivePaths - engine.liveCount();
      if (room <= 0) break;
      const n = Math.min(c.remaining, params.max_traces - run.traces.length, room);
      const children: Trace[] = [];
      let noPage = false;
      try {
        for (let i = 0; i < n; i++) children.push(branch(c, params.branches_per_peak - c.remaining + i));
      } catch (err) {
        if (!(err instanceof PagePoolExhaustedError)) throw err;
        noPage = true; // no page for the tail copy: this peak keeps the branches it has
      }
      if (children.length > 0) {
        if (c.remaining === params.branches_per_peak) run.peaksBranched++;
        c.remaining -= children.length;
        run.pending.push({
          type: 'branch',
          parent: traceName(c.parent),
          children: children.map(traceName),
          branch_point: c.peak.branchPoint,
          confidence: c.peak.confidence,
          depth: c.parent.depth + 1,
        });
      }
      if (noPage || c.remaining === 0) {
        pool.shift();
        drop(c);
      }
    }
    if (run.traces.length >= params.max_traces) while (pool.length > 0) drop(pool.shift()!);
  };

  const accept = (r: StepResult): void => {
    const t = run.byPath.get(r.pathId);
    if (!t || !live.has(t)) return;
    run.push(t, r);
    const k = t.tokens.length - 1;
    run.pending.push({ type: 'token', trace: traceName(t), token: r.token, position: k, confidence: t.confs[k] });
    const natural = run.naturalEnd(t);
    if (natural) end(t, natural);
    else if (t.window.full && run.belowBar(t, k)) end(t, 'low_confidence');
  };

  try {
    for (let i = 0; i < params.initial_traces; i++) {
      const pathId = engine.createPath(prompt, run.sampling, { reserve: params.max_new_tokens, root: i });
      start(run.create({ pathId, parent: null, depth: 0, branchPoint: 0, prefixLength: 0, history: [], sibling: i, fromPrompt: true, start: 0 }));
    }
    for (;;) {
      if (signal?.aborted) throw new CancelledError();
      spawn();
      yield* run.pending.splice(0);
      if (live.size === 0) {
        // Waiting peaks but nothing live and nothing started (no room or budget): they can never start.
        while (pool.length > 0) drop(pool.shift()!);
        break;
      }
      let step;
      try {
        step = await engine.step(stepOptions);
      } catch (err) {
        if (!(err instanceof PagePoolExhaustedError)) throw err;
        // No room for this step (nothing changed): pages held for waiting peaks go first, then the least confident
        // live trace.
        if (pool.length > 0) while (pool.length > 0) drop(pool.shift()!);
        else if (live.size > 1) end([...live].sort((a, b) => a.window.value - b.window.value || b.index - a.index)[0], 'pool');
        else throw err;
        yield* run.pending.splice(0);
        continue;
      }
      if (!step) break;
      onStep?.(step);
      for (const r of step.results) accept(r);
      yield* run.pending.splice(0);
    }
  } finally {
    live.clear();
    pool.length = 0;
  }
}
