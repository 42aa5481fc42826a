// Drives GpuModel directly through the Scheduler for tests that need logits at EVERY row of a step (the engine only
// computes logits for rows that sample): the plan's sampling fields are widened to all rows before the forward.
import type { GpuModel } from '../../src/model/gpu_model.js';
import { runStep, type StepSampling } from '../../src/model/forward.js';
import type { Scheduler } from '../../src/sched/scheduler.js';
import type { StepPlan } from '../../src/sched/step_plan.js';

const GREEDY: StepSampling = { temperature: 0, topP: 1, randomBits: 0, nSamples: 1 };

/** Runs the scheduler's next plan with every row sampling; returns (rows, V) logits and the plan. */
export async function stepAllRows(model: GpuModel, sched: Scheduler, commitTokens?: (plan: StepPlan) => number[]): Promise<{ plan: StepPlan; logits: Float32Array }> {
  const plan = sched.plan();
  if (!plan) throw new Error('nothing to step');
  const R = plan.rows;
  const wide: StepPlan = {
    ...plan,
    samples: R,
    sampleRow: Uint32Array.from({ length: R }, (_, i) => i),
    samplePath: plan.rowPath.slice(0, R),
  };
  const out = await runStep(model, wide, Array.from({ length: R }, () => GREEDY), { logits: true });
  const tokens = commitTokens ? commitTokens(plan) : Array.from(plan.sampleRow, (r) => out.stats[r].sampledIds[0]);
  sched.commit(plan, tokens);
  return { plan, logits: out.logits! };
}

/** Row r of a (rows, V) logits matrix. */
export function row(logits: Float32Array, r: number, V: number): Float32Array {
  return logits.subarray(r * V, (r + 1) * V);
}

/**
 * Worst error of `got` against float64 `want` relative to the row's largest |logit|: logits are a softmax's inputs, so
 * what matters is the error against the row's scale, not relative to logits near zero.
 */
export function rowError(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let scale = 1e-6;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
  let err = 0;
  for (let i = 0; i < want.length; i++) err = Math.max(err, Math.abs(got[i] - want[i]));
  return err / scale;
}
