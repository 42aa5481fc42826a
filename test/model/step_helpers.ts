// Drives GpuModel directly through the Scheduler for tests that need logits at EVERY row of a step (the engine only
// computes logits for rows that sample): the plan's sampling fields are widened to all rows before the forward.
import { expect } from 'vitest';
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

/**
 * Whether two computations of the same position (their logits already held within `tol` of the row scale by rowError)
 * sampled the same greedy token. Where they round differently (another kernel variant or summation order) they can
 * differ at a near-tie: the two largest logits closer than the rounding difference (~1e-6 of the row scale). On the
 * random-weight fixtures 6% of positions have a top-2 gap under 1e-2 of the row's largest logit, so about 1 such
 * comparison in 10^5 meets one, and hundreds of greedy steps on fresh random prompts would fail now and then on correct
 * code. (Today batched, alone, forked and recomputed stories260K logits are bit-identical on llvmpipe and SwiftShader,
 * so there tokens always agree; the tests' tolerances allow rounding differences, and so does this.) Different tokens
 * are accepted only as such a near-tie: each token's logit within 2 tol (row scale) of the other's, in both rows; a
 * wrong token (a stale page, a key too many) misses by far more and fails here. Returns false then: the paths now hold
 * different tokens, so their later steps cannot be compared.
 */
export function sameGreedyToken(a: ArrayLike<number>, tokenA: number, b: ArrayLike<number>, tokenB: number, tol: number, what: string): boolean {
  if (tokenA === tokenB) return true;
  let scale = 1e-6;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]));
  const gapA = a[tokenA] - a[tokenB];
  const gapB = b[tokenB] - b[tokenA];
  expect(
    Math.max(Math.abs(gapA), Math.abs(gapB)),
    `${what}: greedy tokens ${tokenA} and ${tokenB} differ, top-2 gaps ${gapA.toExponential(2)} and ${gapB.toExponential(2)} (row scale ${scale.toExponential(2)}): not a near-tie`,
  ).toBeLessThanOrEqual(2 * tol * scale);
  return false;
}
