// Confidence-peak prefix branching (forklm's `peaks` mode): sample `initial_traces` traces from the prompt, find where
// each one was confidently on track (peaks of DeepConf's token confidence, smoothed over a window), and continue new
// traces from those points. A branch is a page-table fork of its parent at an earlier position:
//
//   engine.fork(parent, { keep: promptLength + branch_point, sibling })
//
// keeps the parent's first branch_point generated tokens (full pages shared, one tail page copied) and recomputes only
// the last kept token, whose logits draw the branch's first new token afresh. Branches run batched with every other
// live trace, may branch again (max_depth), share one trace budget (max_traces), and may be stopped early by
// DeepConf's online rule (early_stop).
//
// Two schedules decide when a peak becomes a branch: 'online' (the default, peaks_online.ts) as soon as the trace has
// passed it, while the others still run; 'rounds' (peaks_rounds.ts, the seed's way) once the whole round of its
// depth has finished. Either way the result depends only on the prompt, the parameters and the seed (DESIGN.md,
// convention 9), never on the engine's room, other sessions' paths in the same steps, or timing.
//
// What differs from the seed (../shared/seeds/prefix-branching.md): no decode / re-tokenize of the prefix (token ids
// are kept exactly, the prompt stays in the prefix), one batched forward per step for all traces, branches start
// while other traces still run, and accounting from the engine's own row counter rather than estimates.
//
// The engine holds exactly the pages it held before the run once the run ends, however it ends.
import type { BranchEngine, SessionSource } from './engine_api.js';
import { peaksParams } from './peaks_params.js';
import { onlineLoop } from './peaks_online.js';
import { roundsLoop } from './peaks_rounds.js';
import { PeaksRun } from './peaks_run.js';
import type { PeaksEvent, PeaksOptions, PeaksResult } from './peaks_types.js';

export { peaksAccounting, type PeaksAccounting } from './peaks_accounting.js';
export { confirmedPeak, onlinePeaks, onlineRegion, peakOptions } from './peak_rules.js';
export type { BranchHistoryEntry, PeaksEvent, PeaksOptions, PeaksResult, PeaksStats, PeaksStopReason, PeaksTrace } from './peaks_types.js';

/** Streams the events of a peaks run; the generator's return value is the result. */
export async function* streamPeaks(source: SessionSource, prompt: readonly number[], options: PeaksOptions = {}): AsyncGenerator<PeaksEvent, PeaksResult> {
  const engine = source.session();
  try {
    return yield* peaksIn(engine, prompt, options);
  } finally {
    engine.close();
  }
}

async function* peaksIn(engine: BranchEngine, prompt: readonly number[], options: PeaksOptions): AsyncGenerator<PeaksEvent, PeaksResult> {
  const { signal, regenerate = false, logits = false, onStep, ...partial } = options;
  const params = peaksParams(partial, { maxLivePaths: engine.info.maxLivePaths });
  const run = new PeaksRun(engine, prompt, params, regenerate);
  const loop = params.schedule === 'rounds' ? roundsLoop : onlineLoop;
  try {
    yield* loop(run, signal, { logits }, onStep);
  } finally {
    // Every exit: the end, an error, a cancel, a consumer that stops iterating early.
    run.releaseAll();
  }
  return run.result();
}

/** Runs a peaks run to the end; `onEvent` sees every event as it happens. */
export async function runPeaks(
  engine: SessionSource,
  prompt: readonly number[],
  options: PeaksOptions = {},
  onEvent?: (e: PeaksEvent) => void,
): Promise<PeaksResult> {
  const gen = streamPeaks(engine, prompt, options);
  for (;;) {
    const r = await gen.next();
    if (r.done) return r.value;
    onEvent?.(r.value);
  }
}
