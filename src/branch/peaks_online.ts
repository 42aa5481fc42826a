// The 'online' schedule of confidence-peak branching: a trace's peak becomes a branch as soon as the trace has passed
// it (peak_rules.ts, confirmedPeak), while every other trace keeps running, so no step waits for a round to end.
//
// The result must not depend on scheduling (DESIGN.md, convention 9): which traces exist, their names and tokens
// depend only on the prompt, the parameters and the seed, never on the engine's room (max live paths), on other
// sessions in the same steps, or on prefill chunking. So every decision that involves more than one trace (the trace
// budget, the early-stopping bar) is taken in virtual time, not in steps:
//
//   tick     token k of a trace is drawn at tick start + k - prefix_length; roots start at tick 0, and a branch from a
//            peak confirmed at tick c starts at c + 1. With unlimited room a step is a tick.
//   frontier F = the smallest tick a running (or waiting) committed trace has still to draw. Every tick below F is
//            decided in order: its tokens are emitted (or cut by the early-stop bar, set at the tick the last warm-up
//            ended and applied to later ticks), then its confirmed peaks take the remaining budget, highest confidence
//            first (ties: parent index, branch point). A peak that gets budget commits its branches: they get the next
//            trace indices and are forked as soon as there is room.
//
// When room is short, a trace can draw ahead of the frontier; a peak it passes there cannot be committed yet, but
// it may be started speculatively (forked into spare room) so the step stays full. A speculative branch becomes a
// trace when its peak commits, and is cancelled (its rows counted in rows_discarded) when the peak misses the budget.
// Tokens drawn past an early stop decided late are discarded the same way.
//
// Page lifetime: a trace whose path ended keeps its pages (engine.finish) while a peak of it is undecided or a
// committed branch of it waits for room; it is released when the last of them is resolved.
import { CancelledError, PagePoolExhaustedError } from '../errors.js';
import type { Peak } from './confidence.js';
import type { StepResult } from './engine_api.js';
import { confirmedPeak } from './peak_rules.js';
import { traceName, type PeaksRun, type Trace } from './peaks_run.js';
import type { PeaksEvent, PeaksStopReason } from './peaks_types.js';

interface Candidate {
  parent: Trace;
  peak: Peak;
  /** The tick at which the parent drew the token that confirmed the peak. */
  tick: number;
  /** Speculative branch per sibling index, or null. */
  spec: (Trace | null)[];
  resolved: boolean;
  /** Whether the candidate counts in parent.waiting (it may still fork from the parent's pages). */
  holding: boolean;
}

const tickOf = (t: Trace, k: number): number => t.start + k - t.prefixLength;
const nextTick = (t: Trace): number => tickOf(t, t.tokens.length);

export async function* onlineLoop(
  run: PeaksRun,
  signal: AbortSignal | undefined,
  stepOptions: { logits: boolean },
  onStep?: (s: { results: StepResult[]; logits?: Float32Array }) => void,
): AsyncGenerator<PeaksEvent, void> {
  const { engine, params, prompt, regenerate } = run;
  /** Traces with a path that takes part in steps (committed or speculative). */
  const live = new Set<Trace>();
  /** Committed branches waiting for room, in index order. */
  const queue: Trace[] = [];
  const cands: Candidate[] = [];
  const taken = new Map<Trace, number[]>();
  /** How a trace's path ended (its last token), before the end is decided in tick order. */
  const ended = new Map<Trace, PeaksStopReason>();
  const speculative = new Set<Trace>();
  let swept = 0;
  let barTick = Infinity;
  let noSpec = false;

  /** Releases a trace's pages once its path has ended and nothing still needs them. */
  const settle = (t: Trace): void => {
    if (!live.has(t) && t.pathId >= 0 && (t.waiting === 0 || regenerate)) run.release(t);
  };

  /** Ends a trace's path (its last token is drawn, or it is cut or stopped); pages stay while branches need them. */
  const endPath = (t: Trace): void => {
    if (!live.delete(t)) return;
    if (t.waiting > 0 && !regenerate) engine.finish(t.pathId);
    else run.release(t);
  };

  /** Whether the candidate stops needing its parent's pages. */
  const unhold = (c: Candidate): void => {
    if (!c.holding) return;
    c.holding = false;
    c.parent.waiting--;
    settle(c.parent);
  };

  const resolve = (c: Candidate): void => {
    if (c.resolved) return;
    c.resolved = true;
    unhold(c);
  };

  const cancel = (s: Trace): void => {
    speculative.delete(s);
    live.delete(s);
    run.rowsDiscarded += s.tokens.length - s.prefixLength;
    run.release(s);
    for (const c of cands) {
      if (c.parent === s) c.resolved = true;
      const i = c.spec.indexOf(s);
      if (i < 0) continue;
      c.spec[i] = null;
      if (c.resolved || c.holding) continue;
      // The peak may need its parent's pages again: hold them, or drop the peak if they are gone (pool relief only).
      if (c.parent.freed) c.resolved = true;
      else {
        c.holding = true;
        c.parent.waiting++;
      }
    }
  };

  /** Appends a step's token; a peak it confirms becomes a candidate, a natural end ends the path. */
  const accept = (r: StepResult): void => {
    const t = run.byPath.get(r.pathId);
    if (!t || !live.has(t)) return;
    run.push(t, r);
    const k = t.tokens.length - 1;
    // Once the bar is known, a token drawn after it is checked at once (the sweep would cut it there anyway).
    if (tickOf(t, k) > barTick && run.belowBar(t, k)) {
      ended.set(t, 'low_confidence');
      endPath(t);
      return;
    }
    if (t.depth < params.max_depth && run.traces.length < params.max_traces) {
      const mine = taken.get(t) ?? [];
      const peak = confirmedPeak(t, mine, params);
      if (peak) {
        taken.set(t, [...mine, peak.branchPoint]);
        cands.push({ parent: t, peak, tick: tickOf(t, peak.branchPoint), spec: Array(params.branches_per_peak).fill(null), resolved: false, holding: true });
        t.waiting++;
      }
    }
    const natural = run.naturalEnd(t);
    if (natural) {
      ended.set(t, natural);
      endPath(t);
    }
  };

  /** Cuts a committed trace at token k (the early-stop bar): later tokens and peaks are discarded. */
  const cut = (t: Trace, k: number): void => {
    run.rowsDiscarded += t.tokens.length - (k + 1);
    for (const a of [t.tokens, t.logprobs, t.proposal, t.confs, t.groups]) a.length = k + 1;
    for (const c of cands)
      if (c.parent === t && !c.resolved && c.peak.branchPoint >= k) {
        for (const s of c.spec) if (s) cancel(s);
        resolve(c);
      }
    ended.set(t, 'low_confidence');
    endPath(t);
  };

  const newBranch = (c: Candidate, sibling: number, pathId?: number): Trace => {
    const p = c.parent;
    const b = c.peak.branchPoint;
    return run.create({
      pathId,
      parent: p,
      depth: p.depth + 1,
      branchPoint: b,
      prefixLength: regenerate ? 0 : b,
      history: [...p.history, { step: b, confidence: c.peak.confidence, parent_trace: traceName(p) }],
      sibling,
      fromPrompt: regenerate,
      start: c.tick + 1,
    });
  };

  /** Gives the budget to the peaks confirmed at tick tau, best first. */
  const commitPeaks = (tau: number): void => {
    const now = cands
      .filter((c) => !c.resolved && c.tick === tau && c.parent.index >= 0)
      .sort((a, b) => b.peak.confidence - a.peak.confidence || a.parent.index - b.parent.index || a.peak.branchPoint - b.peak.branchPoint);
    for (const c of now) {
      // Counted only while the budget lasts: a trace that ran ahead of the frontier finds peaks that a schedule with
      // more room never looks for.
      if (run.traces.length < params.max_traces) run.peaksFound++;
      const children: Trace[] = [];
      for (let i = 0; i < params.branches_per_peak; i++) {
        const s = c.spec[i];
        if (run.traces.length >= params.max_traces) {
          if (s) cancel(s);
          continue;
        }
        if (s) {
          speculative.delete(s);
          run.commit(s);
          children.push(s);
          continue;
        }
        const t = newBranch(c, i);
        run.commit(t);
        if (regenerate) t.sibling = t.index; // a regenerated branch is a new root: its root index is its trace index
        c.parent.waiting++;
        queue.push(t);
        children.push(t);
      }
      if (children.length > 0) {
        run.peaksBranched++;
        run.pending.push({
          type: 'branch',
          parent: traceName(c.parent),
          children: children.map(traceName),
          branch_point: c.peak.branchPoint,
          confidence: c.peak.confidence,
          depth: c.parent.depth + 1,
        });
      }
      resolve(c);
    }
  };

  /** The smallest tick a committed trace has still to draw (Infinity when none), and the last tick drawn. */
  const frontier = (): [number, number] => {
    let f = Infinity;
    let last = -1;
    for (const t of run.traces) {
      if (t.stop === null && !ended.has(t)) f = Math.min(f, nextTick(t));
      last = Math.max(last, nextTick(t) - 1);
    }
    return [f, last];
  };

  /** Decides every tick below the frontier, in order (a commit may add a trace that starts at the next tick). */
  const sweep = (): void => {
    for (let [f, last] = frontier(); swept < f && swept <= last; [f, last] = frontier()) {
      const tau = swept++;
      for (const t of run.traces) {
        const k = t.prefixLength + tau - t.start;
        if (t.stop !== null || k < t.prefixLength || k >= t.tokens.length) continue;
        if (tau > barTick && run.belowBar(t, k)) cut(t, k);
        run.pending.push({ type: 'token', trace: traceName(t), token: t.tokens[k], position: k, confidence: t.confs[k] });
        const reason = ended.get(t);
        if (reason && k === t.tokens.length - 1) {
          t.stop = reason;
          run.pending.push({ type: 'finish', trace: traceName(t), reason, num_tokens: t.tokens.length });
        }
      }
      if (run.maybeSetBar()) barTick = tau;
      commitPeaks(tau);
    }
  };

  /** A committed branch that can never be forked (no page, nothing left to free one) ends with no new token. */
  const abandon = (t: Trace): void => {
    queue.splice(queue.indexOf(t), 1);
    t.stop = 'pool';
    run.pending.push({ type: 'finish', trace: traceName(t), reason: 'pool', num_tokens: t.tokens.length });
    t.parent!.waiting--;
    settle(t.parent!);
  };

  const fork = (c: { parent: Trace; b: number; sibling: number; root: number }): number =>
    regenerate
      ? engine.createPath(prompt, run.sampling, { reserve: params.max_new_tokens, root: c.root })
      : engine.fork(c.parent.pathId, { keep: prompt.length + c.b, sibling: c.sibling });

  /** Forks waiting branches into free room, then fills what is left with speculative branches. */
  const fill = (): void => {
    let room = engine.info.maxLivePaths - engine.liveCount();
    while (room > 0 && queue.length > 0) {
      const t = queue[0];
      let pathId: number;
      try {
        pathId = fork({ parent: t.parent!, b: t.branchPoint, sibling: t.sibling, root: t.index });
      } catch (err) {
        if (!(err instanceof PagePoolExhaustedError)) throw err;
        if (relieve()) continue;
        if (live.size > 0) return; // a running trace will free pages when it ends
        abandon(t);
        continue;
      }
      queue.shift();
      run.attach(t, pathId);
      live.add(t);
      room--;
      t.parent!.waiting--;
      settle(t.parent!);
    }
    // A regenerated branch's root index is its trace index, known only at commit: no speculation there.
    if (regenerate) return;
    const open = cands
      .filter((c) => !c.resolved && c.parent.index >= 0)
      .sort((a, b) => a.tick - b.tick || b.peak.confidence - a.peak.confidence || a.parent.index - b.parent.index);
    for (const c of open) {
      for (let i = 0; i < c.spec.length; i++) {
        if (room <= 0 || noSpec || run.traces.length + speculative.size >= params.max_traces) return;
        if (c.spec[i]) continue;
        let pathId: number;
        try {
          pathId = fork({ parent: c.parent, b: c.peak.branchPoint, sibling: i, root: -1 });
        } catch (err) {
          if (!(err instanceof PagePoolExhaustedError)) throw err;
          return;
        }
        const s = newBranch(c, i, pathId);
        c.spec[i] = s;
        speculative.add(s);
        live.add(s);
        room--;
      }
      // Every branch of the peak exists: a commit adopts them and forks nothing from the parent.
      if (c.spec.every((x) => x !== null)) unhold(c);
    }
  };

  /**
   * Frees pages when the pool runs out: speculative branches first, then pages held only for undecided peaks, then
   * the least confident running trace (stop reason 'pool'). Only this path makes a result depend on resources.
   */
  const relieve = (): boolean => {
    noSpec = true; // speculation would only take the freed pages again
    if (speculative.size > 0) {
      for (const s of [...speculative]) cancel(s);
      return true;
    }
    let freed = false;
    for (const c of cands)
      if (!c.resolved && !live.has(c.parent)) {
        resolve(c);
        freed ||= c.parent.freed;
      }
    if (freed) return true;
    const victims = [...live].filter((t) => t.index >= 0 && !queue.some((q) => q.parent === t));
    if (live.size <= 1 || victims.length === 0) return false;
    const v = victims.sort((a, b) => a.window.value - b.window.value || b.index - a.index)[0];
    for (const c of cands) if (c.parent === v) resolve(c);
    ended.set(v, 'pool');
    endPath(v);
    return true;
  };

  try {
    for (let i = 0; i < params.initial_traces; i++) {
      const pathId = engine.createPath(prompt, run.sampling, { reserve: params.max_new_tokens, root: i });
      const t = run.create({ pathId, parent: null, depth: 0, branchPoint: 0, prefixLength: 0, history: [], sibling: i, fromPrompt: true, start: 0 });
      run.commit(t);
      live.add(t);
    }
    for (;;) {
      if (signal?.aborted) throw new CancelledError();
      sweep();
      fill();
      yield* run.pending.splice(0);
      if (live.size === 0) break;
      let step;
      try {
        step = await engine.step(stepOptions);
      } catch (err) {
        if (!(err instanceof PagePoolExhaustedError) || !relieve()) throw err;
        continue;
      }
      if (!step) break;
      onStep?.(step);
      for (const r of step.results) accept(r);
    }
    sweep();
    yield* run.pending.splice(0);
  } finally {
    // Committed traces are released by the caller; speculative ones are not part of the run.
    for (const s of speculative) run.release(s);
  }
}
