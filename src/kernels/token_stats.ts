// token_stats: per row of logits, the statistics the branch controller decides on (max, logsumexp, entropy,
// normalised entropy, top-k, DeepConf confidence) and the row's sampled tokens (temperature, top-p, Gumbel-top-k
// without replacement), written as one small fixed-stride record per row (src/sample/stats_record.ts). Reading back
// these records is the only per-step readback. See shaders/token_stats.wgsl for the algorithm.
//
// Bindings: 1 logits (rows, vocab) f32; 2 sampling (rows, 4) [T f32, topP f32, randomBits u32, nSamples u32];
// 3 stats (rows, stride) f32/u32.
import { onLlvmpipe } from '../gpu/adapters.js';
import type { Gpu } from '../gpu/device.js';
import { InvalidArgumentError, LimitError } from '../errors.js';
import { defineUniform } from '../gpu/uniform.js';
import { LIST_CAP, SAMPLING_ROW_WORDS, tokenStatsLayout, type TokenStatsLayout } from '../sample/stats_record.js';
import { BoundKernel, pipelineFor } from './kernel.js';

export { tokenStatsLayout } from '../sample/stats_record.js';

export const TokenStatsParams = defineUniform('Params', [
  ['rows', 'u32'],
  ['vocab', 'u32'],
] as const);

export interface TokenStatsOptions {
  vocab: number;
  /** Top-k list length and DeepConf's k, 1..20. */
  topK: number;
  /** Most tokens drawn per row, 1..20; each row asks for 0..maxSamples in its sampling entry. */
  maxSamples: number;
  /** Threads per row (power of two); defaults to tokenStatsWorkgroupSize(gpu, vocab, topK, maxSamples). */
  workgroupSize?: number;
  /**
   * Also build a pipeline for steps whose rows draw at most one token each (no path forks), whose pass C keeps 2 keys
   * instead of maxSamples + 1 (same records: singleDrawDefault). Default: singleDrawDefault(gpu); only when maxSamples > 1.
   */
  singleDraw?: boolean;
  /**
   * How the per-thread top-k and draw lists are merged: `tree`, a workgroup argmax per winner (log2(WG) + 2 barriers
   * each), or `rank`, every thread ranking its entries among copies of all lists (two barriers per merge; at most
   * RANK_MERGE_MAX_WG threads). Same records either way. Default: rankMergeDefault(gpu) (and WG within the limit).
   */
  merge?: 'tree' | 'rank';
  /**
   * Entries each thread keeps in its top-k list while it reads the row, 1..topK; fewer than topK needs the rank
   * merge, which detects when a thread may have dropped a winner and then reads the row again with full lists. Same
   * records either way. Default: min(topK, RANK_LANE_TOPK) with the rank merge, else topK.
   */
  laneTopK?: number;
}

/**
 * Whether a TokenStats builds the single-draw pipeline by default: on llvmpipe (gpu/adapters.ts onLlvmpipe: in Node
 * and on Chromium's GL route), where pass C's insertion sweep runs for every logit (its length is the list's, a
 * constant) and the 2-key list took 16 x 512 logits from 0.48 to 0.41 ms of CPU in Node (scratch timing, 2026-12-01,
 * bench/RESULTS.md "Peers"; in the page: RESULTS, "Node-only gates in the page"). Elsewhere unmeasured, and on
 * SwiftShader a pipeline more costs compile time at load.
 */
export function singleDrawDefault(gpu: Gpu): boolean {
  return onLlvmpipe(gpu);
}

/**
 * Whether a TokenStats merges its lists by rank, with lists of RANK_LANE_TOPK, by default: where llvmpipe runs
 * kernels on the submitting thread (Gpu.cpuThreads 0, gpu/cpu_threads.ts). There pass A's insertion sweep of a
 * 20-entry list is most of the kernel (16 stories260K rows, V = 512: ~300 us with topK 20, ~90 us with topK 1), and
 * shorter lists need the rank merge's overflow check. Scratch timings, 2026-12-01, alternated in one process, load
 * 3-3.8: 16 rows of the EAB job's step took 269-279 us (median 276) against 380-412 (390) with the tree and full
 * lists, 0.71x; the rank merge with full lists alone 361-372 against 382-405 (barriers cost little on one thread);
 * in the whole 16-row step (each op timed alone) token_stats 286 against 384 us. Elsewhere (Mesa's worker threads,
 * other adapters, GPUs) the tree and full lists, unmeasured with this.
 */
export function rankMergeDefault(gpu: Gpu): boolean {
  return gpu.cpuThreads === 0;
}

/**
 * The most threads per row the rank merge takes: the widths its tests run (8 and 16). Its merge loops run WG x list
 * length iterations per invocation, and wider rows (large vocabularies on llvmpipe) would bring those near llvmpipe's
 * silent loop cap (LOOP_BUDGET) unless Mesa unrolls the inner loop, which is not tested; they take the tree. Its
 * copies of the lists hold WG x 21 x 8 bytes of workgroup memory.
 */
export const RANK_MERGE_MAX_WG = 16;

/**
 * Pass A's list length per thread with the rank merge. At topK 20 and 8 threads a thread holds 2.5 of the winners on
 * average; the overflow (and second read of the row) needs one holding 8 or more, about 1 row in 70 of random logits.
 * Same scratch timings (us, 16 rows): lists of 4 508 (overflows on most rows), 6 276, 8 276, 10 303, 12 327, 20 390.
 */
export const RANK_LANE_TOPK = 8;

/**
 * llvmpipe (Mesa's gallivm) silently ends every loop of a shader invocation once that invocation has run 65,535 loop
 * iterations in total, over all its loops (LP_MAX_TGSI_LOOP_ITERATIONS; measured here: a 70,000-step loop stops at
 * 65,535, and later loops then run once). A thread walks its share of the row, ceil(V / WG) logits, in pass A and
 * pass C, and in at most 32 bisection passes that take four logits per iteration; this counts those and the merge
 * rounds, with margin. The list insertion is a constant-length sweep that the compiler unrolls, so it adds no
 * iterations (the test on ascending logits, where every logit is inserted, checks that).
 */
export const LOOP_BUDGET = 60_000;

export function loopIterationsPerThread(vocab: number, wg: number, topK: number, maxSamples: number, rank = false): number {
  const share = Math.ceil(vocab / wg);
  const passes = 2 * share + 32 * Math.ceil(share / 4);
  // Merge rounds: top-k, then the draws and the key after them (the threshold). By rank: up to three merges (pass A,
  // its second read on an overflow, pass C) of WG x CAP published entries, and the second read's pass.
  const rounds = rank ? 3 * (wg * (LIST_CAP + 1) + 3 * (LIST_CAP + 1)) + share : (topK + maxSamples + 1) * (Math.log2(wg) + 2);
  return passes + 41 + rounds + 4 * LIST_CAP + 3 * Math.log2(wg);
}

/** Adapters that cap loop iterations per invocation (llvmpipe): any software adapter that is not SwiftShader. */
function capsLoops(gpu: Gpu): boolean {
  return gpu.isCpu && !/swiftshader/i.test(gpu.name);
}

/**
 * Threads per row. A software adapter runs a workgroup's threads as loops on one core and pays for every barrier
 * (the top-k merge costs log2(WG) + 2 barriers per round, each a switch through all of the workgroup's SIMD
 * batches): 64 there; on llvmpipe 8 (one batch of its 8 lanes: at V = 512 a row then costs ~40 us instead of
 * ~120 us, bench/RESULTS.md "Single-stream decode"), raised until a thread's loop iterations fit LOOP_BUDGET. A GPU
 * hides the V-long loop best with a full 256-thread workgroup.
 */
export function tokenStatsWorkgroupSize(gpu: Gpu, vocab: number, topK: number, maxSamples: number): number {
  const max = Math.min(gpu.limits.maxComputeInvocationsPerWorkgroup, gpu.limits.maxComputeWorkgroupSizeX);
  let wg = 1;
  while (wg * 2 <= Math.min(capsLoops(gpu) ? 8 : gpu.isCpu ? 64 : 256, max)) wg *= 2;
  if (capsLoops(gpu)) {
    const rank = rankMergeDefault(gpu);
    while (loopIterationsPerThread(vocab, wg, topK, maxSamples, rank && wg <= RANK_MERGE_MAX_WG) > LOOP_BUDGET && wg * 2 <= max) wg *= 2;
  }
  return wg;
}

export interface TokenStatsBuffers {
  logits: GPUBuffer; // (S, vocab) f32
  sampling: GPUBuffer; // (S, 4) f32/u32: temperature, topP, randomBits, nSamples
  stats: GPUBuffer; // (S, layout.stride) f32/u32 records
}

export class TokenStats {
  readonly layout: TokenStatsLayout;
  readonly vocab: number;
  readonly workgroupSize: number;
  readonly maxSamples: number;
  /** How the lists are merged (TokenStatsOptions.merge). */
  readonly merge: 'tree' | 'rank';
  /** Entries each thread keeps in pass A's top-k list (TokenStatsOptions.laneTopK). */
  readonly laneTopK: number;
  private readonly pipeline: GPUComputePipeline;
  /** The pipeline for rows drawing at most one token (DRAW_LIST = 2), or null. */
  private readonly singleDrawPipeline: GPUComputePipeline | null;

  constructor(
    private readonly gpu: Gpu,
    opts: TokenStatsOptions,
  ) {
    const { vocab, topK, maxSamples } = opts;
    if (!Number.isInteger(vocab) || vocab < 1 || vocab >= 2 ** 31) {
      throw new InvalidArgumentError(`token_stats: vocab must be a positive integer below 2^31, got ${vocab}`);
    }
    this.layout = tokenStatsLayout(topK, maxSamples);
    this.vocab = vocab;
    const wg = opts.workgroupSize ?? tokenStatsWorkgroupSize(gpu, vocab, topK, maxSamples);
    if (!Number.isInteger(wg) || wg < 1 || (wg & (wg - 1)) !== 0 || wg > gpu.limits.maxComputeInvocationsPerWorkgroup) {
      throw new InvalidArgumentError(
        `token_stats: workgroupSize must be a power of two up to ${gpu.limits.maxComputeInvocationsPerWorkgroup}, got ${wg}`,
      );
    }
    if (opts.merge !== undefined && opts.merge !== 'tree' && opts.merge !== 'rank') {
      throw new InvalidArgumentError(`token_stats: merge must be tree or rank, got ${String(opts.merge)}`);
    }
    const rank = opts.merge === undefined ? rankMergeDefault(gpu) && wg <= RANK_MERGE_MAX_WG : opts.merge === 'rank';
    if (rank && wg > RANK_MERGE_MAX_WG) {
      throw new InvalidArgumentError(`token_stats: the rank merge takes at most ${RANK_MERGE_MAX_WG} threads per row (got ${wg}); use merge: 'tree'.`);
    }
    const laneTopK = opts.laneTopK ?? (rank ? Math.min(topK, RANK_LANE_TOPK) : topK);
    if (!Number.isInteger(laneTopK) || laneTopK < 1 || laneTopK > topK || (laneTopK < topK && !rank)) {
      throw new InvalidArgumentError(`token_stats: laneTopK must be an integer in 1..topK (${topK}), below topK only with merge: 'rank'; got ${laneTopK}`);
    }
    if (capsLoops(gpu) && loopIterationsPerThread(vocab, wg, topK, maxSamples, rank) > LOOP_BUDGET) {
      throw new LimitError(
        `token_stats: a vocabulary of ${vocab} needs more loop iterations per thread than llvmpipe runs ` +
          `(${LOOP_BUDGET}) at ${wg} threads per row; use a larger workgroupSize or another adapter (FORKLM_ADAPTER=swiftshader).`,
      );
    }
    this.workgroupSize = wg;
    this.maxSamples = maxSamples;
    this.merge = rank ? 'rank' : 'tree';
    this.laneTopK = laneTopK;
    const o = this.layout.offsets;
    const constants = {
      WG: wg,
      TOPK: topK,
      TOPK_LANE: laneTopK,
      MAX_SAMPLES: maxSamples,
      DRAW_LIST: maxSamples + 1,
      RANK_MERGE: rank ? 1 : 0,
      MERGE_T: rank ? wg : 1,
      STRIDE: this.layout.stride,
      OFF_MAX: o.maxLogit,
      OFF_LSE: o.logSumExp,
      OFF_H: o.entropy,
      OFF_HNORM: o.normEntropy,
      OFF_CONF: o.confidence,
      OFF_COUNT: o.sampledCount,
      OFF_NUCLEUS: o.nucleusSize,
      OFF_TEMP: o.temperature,
      OFF_QH: o.samplingEntropy,
      OFF_QHNORM: o.samplingNormEntropy,
      OFF_THRESH: o.threshold,
      OFF_TOP_IDS: o.topIds,
      OFF_TOP_LP: o.topLogprobs,
      OFF_S_IDS: o.sampledIds,
      OFF_S_LP: o.sampledLogprobs,
      OFF_S_Q: o.sampledProposalLogprobs,
      OFF_S_KEY: o.sampledKeys,
    };
    this.pipeline = pipelineFor(gpu, { op: 'token_stats', variant: 'row', constants }, 'token_stats', TokenStatsParams);
    const single = maxSamples > 1 && (opts.singleDraw ?? singleDrawDefault(gpu));
    this.singleDrawPipeline = single
      ? pipelineFor(gpu, { op: 'token_stats', variant: 'row', constants: { ...constants, DRAW_LIST: 2 } }, 'token_stats', TokenStatsParams)
      : null;
  }

  bind(b: TokenStatsBuffers, label = 'token_stats'): BoundTokenStats {
    const buffers = [b.logits, b.sampling, b.stats];
    const k = new BoundKernel(this.gpu, this.pipeline, TokenStatsParams, buffers, label);
    const one = this.singleDrawPipeline ? new BoundKernel(this.gpu, this.singleDrawPipeline, TokenStatsParams, buffers, `${label}:single-draw`) : null;
    return new BoundTokenStats(k, one, this.gpu, this, b, label);
  }
}

export class BoundTokenStats {
  constructor(
    private readonly k: BoundKernel<'rows' | 'vocab'>,
    /** The single-draw pipeline's kernel, or null. */
    private readonly one: BoundKernel<'rows' | 'vocab'> | null,
    private readonly gpu: Gpu,
    private readonly op: TokenStats,
    private readonly b: TokenStatsBuffers,
    private readonly label: string,
  ) {}

  /**
   * One workgroup per row for rows 0..S-1. `maxDraws`: the most tokens any of these rows draws (its sampling entry's
   * nSamples, default maxSamples); at most 1 takes the single-draw pipeline where there is one. A row drawing more than
   * maxDraws would draw only maxDraws tokens there.
   */
  encode(pass: GPUComputePassEncoder, S: number, maxDraws = this.op.maxSamples): void {
    const { vocab, layout } = this.op;
    if (!Number.isInteger(S) || S < 0) throw new InvalidArgumentError(`${this.label}: rows must be an integer >= 0, got ${S}`);
    if (S > this.gpu.limits.maxComputeWorkgroupsPerDimension) {
      throw new LimitError(
        `${this.label}: ${S} rows exceed maxComputeWorkgroupsPerDimension (${this.gpu.limits.maxComputeWorkgroupsPerDimension}); ` +
          'run the rows in several dispatches.',
      );
    }
    const need: [string, GPUBuffer, number][] = [
      ['logits', this.b.logits, S * vocab * 4],
      ['sampling', this.b.sampling, S * SAMPLING_ROW_WORDS * 4],
      ['stats', this.b.stats, S * layout.byteStride],
    ];
    for (const [name, buf, bytes] of need) {
      if (buf.size < bytes) {
        throw new InvalidArgumentError(`${this.label}: ${name} buffer holds ${buf.size} bytes, ${S} rows need ${bytes}`);
      }
    }
    (maxDraws <= 1 && this.one ? this.one : this.k).encode(pass, { rows: S, vocab }, [S]);
  }

  destroy(): void {
    this.k.destroy();
    this.one?.destroy();
  }
}
