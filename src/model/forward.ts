// One forward step: upload the StepPlan, encode every kernel of every layer into one compute pass, compute logits
// only for the rows that sample, reduce them to token_stats on the GPU, and read back a few hundred bytes per path.
import { writeBuffer } from '../gpu/buffers.js';
import { readF32 } from '../gpu/readback.js';
import { InvalidArgumentError } from '../errors.js';
import type { StepPlan } from '../sched/step_plan.js';
import { decodeTokenStats, SAMPLING_ROW_WORDS, writeSamplingRow, type TokenStatsRecord } from '../sample/stats_record.js';
import type { GpuModel } from './gpu_model.js';
import { DECODE_FUSED_MAX_ROWS } from './decode_fused.js';

/** Sampling inputs of one sampling path for one step. */
export interface StepSampling {
  temperature: number;
  topP: number;
  /** One random u32 from the path's seeded stream: the GPU derives its Gumbel noise from it. */
  randomBits: number;
  /** Tokens to draw without replacement (1, or the branch factor when the path forks). */
  nSamples: number;
}

export interface StepOutput {
  /** One record per sampling path, in plan.samplePath order. */
  stats: TokenStatsRecord[];
  /** (S, V) logits of the sampling rows, only when asked for (tests, tools): costs a V-sized readback. */
  logits?: Float32Array;
  /** Page bytes copied for copy-on-write before this step (all layers). */
  bytesCopied: number;
}

function checkPlan(model: GpuModel, plan: StepPlan, sampling: readonly StepSampling[]): void {
  if (plan.rows > model.maxRows) throw new InvalidArgumentError(`step has ${plan.rows} rows; the model was built for ${model.maxRows}.`);
  if (plan.samples > model.maxSamples)
    throw new InvalidArgumentError(`step samples ${plan.samples} paths; the model was built for ${model.maxSamples}.`);
  if (plan.maxPages > model.maxPagesPerPath)
    throw new InvalidArgumentError(`a path needs ${plan.maxPages} pages, above the context's ${model.maxPagesPerPath}.`);
  if (sampling.length !== plan.samples) throw new InvalidArgumentError('one StepSampling per sampling path is required.');
  for (const s of sampling)
    if (s.nSamples < 1 || s.nSamples > model.maxBranch)
      throw new InvalidArgumentError(`nSamples=${s.nSamples}: draw between 1 and ${model.maxBranch} tokens per path.`);
}

/**
 * What uploadPlan last wrote into the step buffers whose contents mostly repeat from one decode step to the next (row
 * paths, page table, sample rows): a write of the same values is skipped (each queue write costs ~11 us of host time
 * in Node). uploadPlan is the only writer of these buffers, and writes are queue-ordered, so the buffer holds `last`.
 */
const lastUpload = new WeakMap<GpuModel, Map<GPUBuffer, Uint32Array>>();

function writeIfChanged(model: GpuModel, buf: GPUBuffer, data: Uint32Array): void {
  let seen = lastUpload.get(model);
  if (!seen) lastUpload.set(model, (seen = new Map()));
  const last = seen.get(buf);
  // The kernels read only the first data.length values: a prefix of what the buffer holds needs no write.
  if (last && data.length <= last.length) {
    let same = true;
    for (let i = 0; i < data.length && same; i++) same = data[i] === last[i];
    if (same) return;
  }
  writeBuffer(model.gpu.device, buf, data);
  seen.set(buf, data.slice());
}

/** Writes the plan's arrays and the sampling rows into the model's step buffers (queue-ordered writes). */
export function uploadPlan(model: GpuModel, plan: StepPlan, sampling: readonly StepSampling[]): void {
  const dev = model.gpu.device;
  const R = plan.rows;
  writeBuffer(dev, model.tokenIds, plan.tokenIds.subarray(0, R));
  writeBuffer(dev, model.positions, plan.positions.subarray(0, R));
  writeIfChanged(model, model.rowPath, plan.rowPath.subarray(0, R));
  writeBuffer(dev, model.slots, plan.slots.subarray(0, R));
  if (plan.paths * plan.maxPages > 0) writeIfChanged(model, model.pageTable, plan.pageTable.subarray(0, plan.paths * plan.maxPages));
  model.attention.prepare(plan); // shared-prefix task lists, when the model runs them
  if (plan.samples > 0) {
    let draws = 0;
    for (const s of sampling) draws = Math.max(draws, s.nSamples);
    model.stepDraws = draws;
    writeIfChanged(model, model.sampleRow, plan.sampleRow.subarray(0, plan.samples));
    const buf = new ArrayBuffer(plan.samples * SAMPLING_ROW_WORDS * 4);
    sampling.forEach((s, i) => writeSamplingRow(buf, i, s));
    writeBuffer(dev, model.sampling, buf);
  }
}

/** Encodes the copy-on-write page copies: each (src, dst) page in every layer, through the scratch page. */
function encodeCopies(model: GpuModel, encoder: GPUCommandEncoder, copies: StepPlan['copies']): number {
  const pb = model.pageBytes;
  for (const { src, dst } of copies) {
    for (const kv of model.kv) {
      encoder.copyBufferToBuffer(kv, src * pb, model.pageScratch, 0, pb);
      encoder.copyBufferToBuffer(model.pageScratch, 0, kv, dst * pb, pb);
    }
  }
  return copies.length * model.kv.length * pb;
}

/**
 * Whether a step runs its layers fused (kernels/decode_fused.ts): every row is the only row of its path (a path owns
 * at least one row of its step), so no row attends over K/V another row writes in the same step; and few rows, since
 * each row's workgroup runs on one core (model/decode_fused.ts DECODE_FUSED_MAX_ROWS). Same bits either way.
 */
export function fusedStep(plan: StepPlan): boolean {
  return plan.rows > 0 && plan.rows === plan.paths && plan.rows <= DECODE_FUSED_MAX_ROWS;
}

/** Whether the sampling rows are rows 0..S-1 in order (decode steps): the head then reads them without a gather. */
export function samplesInPlace(plan: StepPlan): boolean {
  for (let i = 0; i < plan.samples; i++) if (plan.sampleRow[i] !== i) return false;
  return true;
}

/** Encodes every dispatch of one forward over the uploaded plan: embedding, every layer, then the head for S rows. */
export function encodeForward(model: GpuModel, pass: GPUComputePassEncoder, plan: StepPlan): void {
  const k = model.kernels;
  const R = plan.rows;
  if (model.decodeFused && fusedStep(plan)) model.decodeFused.encode(pass, R, plan.maxPages);
  else {
    for (const op of k.embed) op.run(pass, R, plan.maxPages);
    // Each layer's ops in the order its residual layout runs them (GpuModel.bindKernels).
    for (const layer of k.layers) for (const op of layer) op.run(pass, R, plan.maxPages);
  }
  const S = plan.samples;
  if (S > 0) for (const op of samplesInPlace(plan) ? k.headInPlace : k.head) op.run(pass, S, plan.maxPages);
}

/** A submitted step: its stats arrive when the GPU has run it (the map is requested at submit). */
export interface SubmittedStep {
  stats: Promise<TokenStatsRecord[]>;
  bytesCopied: number;
  /** With `timestamps`: the forward pass's GPU start and end, in ns of the GPU's clock. */
  gpuNs?: Promise<[number, number]>;
}

/** A timestamp query pair for one step's forward pass, resolved and read back after it (instrumentation). */
function stepTimestamps(device: GPUDevice): { writes: GPUComputePassTimestampWrites; encode(e: GPUCommandEncoder): void; read(): Promise<[number, number]> } {
  const querySet = device.createQuerySet({ type: 'timestamp', count: 2 });
  const resolved = device.createBuffer({ size: 16, usage: 0x200 | 0x4 }); // QUERY_RESOLVE | COPY_SRC
  const staging = device.createBuffer({ size: 16, usage: 0x1 | 0x8 }); // MAP_READ | COPY_DST
  return {
    writes: { querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 },
    encode(e) {
      e.resolveQuerySet(querySet, 0, 2, resolved, 0);
      e.copyBufferToBuffer(resolved, 0, staging, 0, 16);
    },
    async read() {
      try {
        await staging.mapAsync(0x1);
        const t = new BigUint64Array(staging.getMappedRange().slice(0));
        staging.unmap();
        return [Number(t[0]), Number(t[1])];
      } finally {
        staging.destroy();
        resolved.destroy();
        querySet.destroy();
      }
    },
  };
}

/** Whether each of the model's two stats staging buffers has a map outstanding (a step read back later). */
const pendingReads = new WeakMap<GpuModel, [Promise<unknown>, Promise<unknown>]>();
const parity = new WeakMap<GpuModel, number>();

/**
 * Uploads and submits one step without waiting for it: pages of `plan.copies` are copied first, then, with `feed`,
 * row r's input token is copied from the first token the previous step drew for its sampling row feed[r] (still in
 * the stats buffer: the previous step's readback does not have to come back first), then the forward. Steps alternate
 * between two stats staging buffers, so step t+1 can be submitted while step t's stats are being mapped.
 */
export async function submitStep(
  model: GpuModel,
  plan: StepPlan,
  sampling: readonly StepSampling[],
  options: { feed?: Uint32Array; onSubmit?: () => void; timestamps?: boolean } = {},
): Promise<SubmittedStep> {
  model.gpu.checkLost();
  checkPlan(model, plan, sampling);
  if (options.feed && options.feed.length !== plan.rows) throw new InvalidArgumentError('feed: one previous sampling row per row.');
  const p = parity.get(model) ?? 0;
  parity.set(model, 1 - p);
  const reads = pendingReads.get(model) ?? [Promise.resolve(), Promise.resolve()];
  pendingReads.set(model, reads);
  // A staging buffer must be unmapped before a step copies into it again: wait for the read two steps back.
  await reads[p];
  const readback = p === 0 ? model.statsReadback : model.statsReadbackAlt;
  uploadPlan(model, plan, sampling);
  const dev = model.gpu.device;
  const encoder = dev.createCommandEncoder({ label: 'step' });
  const bytesCopied = encodeCopies(model, encoder, plan.copies);
  if (options.feed) {
    const o = model.statsLayout.offsets.sampledIds;
    const stride = model.statsLayout.stride;
    options.feed.forEach((s, r) => encoder.copyBufferToBuffer(model.stats, (s * stride + o) * 4, model.tokenIds, r * 4, 4));
  }
  const ts = options.timestamps && model.gpu.timestamps && plan.rows > 0 ? stepTimestamps(dev) : null;
  if (plan.rows > 0) {
    const pass = encoder.beginComputePass({ label: 'forward', ...(ts ? { timestampWrites: ts.writes } : {}) });
    encodeForward(model, pass, plan);
    pass.end();
  }
  const statsBytes = plan.samples * model.statsLayout.stride * 4;
  if (statsBytes > 0) readback.copyFrom(encoder, model.stats, statsBytes);
  ts?.encode(encoder);
  dev.queue.submit([encoder.finish()]);
  options.onSubmit?.();
  const stats = statsBytes > 0 ? readback.read(statsBytes).then((buf) => decodeTokenStats(buf, plan.samples, model.statsLayout)) : Promise.resolve([]);
  reads[p] = stats.catch(() => undefined);
  if (!ts) return { stats, bytesCopied };
  const gpuNs = ts.read();
  gpuNs.catch(() => undefined); // a step nobody reads (an abandoned speculative one) must not leave a rejection
  return { stats, bytesCopied, gpuNs };
}

/** Runs one step and waits for its stats. Pages of `plan.copies` are copied first, in the same command buffer. */
export async function runStep(
  model: GpuModel,
  plan: StepPlan,
  sampling: readonly StepSampling[],
  options: { logits?: boolean; onSubmit?: () => void } = {},
): Promise<StepOutput> {
  const submitted = await submitStep(model, plan, sampling, options);
  const stats = await submitted.stats;
  const out: StepOutput = { stats, bytesCopied: submitted.bytesCopied };
  if (options.logits && plan.samples > 0) out.logits = await readF32(model.gpu, model.logits, plan.samples * model.spec.vocabSize);
  return out;
}
