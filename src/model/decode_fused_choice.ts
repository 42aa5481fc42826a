// The measured choice of the fused decode step (decodeFused 'measure', and the default on an adapter that does not
// name itself: model/decode_fused_rule.ts): a one-row decode step timed fused and layered, alternating, and the faster
// kept. One workgroup per row wins on CPU adapters, where each dispatch costs tens of microseconds; a GPU runs the
// layered kernels' thousands of invocations faster than one workgroup walking every layer.
import type { StepPlan } from '../sched/step_plan.js';
import { encodeForward, uploadPlan } from './forward.js';
import type { GpuModel } from './gpu_model.js';

/** What a measurement found, in ms per one-row decode forward (fastest round of each). */
export interface DecodeFusedMeasure {
  fusedMs: number;
  layeredMs: number;
  kept: boolean;
  /** Wall clock of the whole measurement, compiles included. */
  totalMs: number;
}

/** Rounds (each times both forms) and forwards per submit (so a submit's round trip weighs on both alike). */
const ROUNDS = 3;
const PER_SUBMIT = 4;
/** Context of the timed step: attention over this many keys, about what a short prompt and its answer hold. */
const KEYS = 256;

/** A one-row decode step of one path at position KEYS - 1 (or the model's last), over pages 0, 1, ... */
function decodePlan(model: GpuModel): StepPlan {
  const pos = Math.min(KEYS, model.config.maxSeqLen, model.kvPages * model.pageSize) - 1;
  const maxPages = Math.floor(pos / model.pageSize) + 1;
  return {
    rows: 1,
    paths: 1,
    samples: 1,
    maxPages,
    tokenIds: Uint32Array.of(model.config.bosTokenId ?? 1),
    positions: Uint32Array.of(pos),
    rowPath: Uint32Array.of(0),
    slots: Uint32Array.of(pos),
    pageTable: Uint32Array.from({ length: maxPages }, (_, i) => i),
    seqLen: Uint32Array.of(pos + 1),
    sampleRow: Uint32Array.of(0),
    samplePath: Uint32Array.of(0),
    pathIds: [0],
    copies: [],
  };
}

/**
 * Times the pending fused step (GpuModel.decodeFusedPending) against the layered forward and keeps the faster
 * (GpuModel.settleDecodeFused). Returns null when nothing is pending. Call it before any path exists: it writes one
 * row's K/V into the first pages of the pool, which a later path overwrites before it reads. The first round compiles
 * the fused kernel, as its first decode step would (on llvmpipe through ANGLE that took 18 s with Mesa's shader cache
 * off, bench/RESULTS.md, "Peers").
 */
export async function measureDecodeFused(model: GpuModel): Promise<DecodeFusedMeasure | null> {
  const fused = model.decodeFusedPending;
  if (!fused) return null;
  const t0 = performance.now();
  const dev = model.gpu.device;
  const plan = decodePlan(model);
  uploadPlan(model, plan, [{ temperature: 0, topP: 1, randomBits: 0, nSamples: 1 }]);
  const forms = {
    // The fused step's dispatch and the head reading row 0 in place, as model/forward.ts encodes a fused step.
    fused: (p: GPUComputePassEncoder) => {
      fused.encode(p, 1, plan.maxPages);
      for (const op of model.kernels.headInPlace) op.run(p, 1, plan.maxPages);
    },
    layered: (p: GPUComputePassEncoder) => encodeForward(model, p, plan),
  };
  const time = async (encode: (p: GPUComputePassEncoder) => void, n: number) => {
    const t = performance.now();
    const enc = dev.createCommandEncoder({ label: 'decode_fused measure' });
    const pass = enc.beginComputePass();
    for (let i = 0; i < n; i++) encode(pass);
    pass.end();
    dev.queue.submit([enc.finish()]);
    await dev.queue.onSubmittedWorkDone();
    return (performance.now() - t) / n;
  };
  // Untimed: compiles both forms' pipelines.
  for (const f of Object.values(forms)) await time(f, 1);
  model.gpu.checkLost();
  const best = { fused: Infinity, layered: Infinity };
  for (let r = 0; r < ROUNDS; r++)
    for (const k of ['fused', 'layered'] as const) best[k] = Math.min(best[k], await time(forms[k], PER_SUBMIT));
  // A device lost during the timed rounds leaves timings of nothing: fail rather than settle on them.
  model.gpu.checkLost();
  const m: DecodeFusedMeasure = { fusedMs: best.fused, layeredMs: best.layered, kept: best.fused < best.layered, totalMs: performance.now() - t0 };
  const why = `measured slower than the layered forward on this adapter (${m.fusedMs.toFixed(3)} against ${m.layeredMs.toFixed(3)} ms per one-row step)`;
  model.settleDecodeFused(m.kept, why, m);
  return m;
}
