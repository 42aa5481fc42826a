// The one object users hold: a model on a GPU, its paged KV cache and the scheduler, driven path by path.
// Branching controllers (branch/eab.ts, branch/peaks.ts) use exactly this surface:
//
//   const engine = await loadEngine('stories260K');                       // engine_load.ts
//   const p = engine.createPath(engine.tokenizer.encode('Once upon a time'), { temperature: 0.8, topP: 0.95, seed: 1 });
//   let results = await engine.step();          // every live path advances in ONE forward pass
//   // results: per sampling path, its token_stats record; the first sampled token was appended to the path
//   const child = engine.fork(p, { nextToken: results[0].stats.sampledIds[1], sibling: 1 }); // a sibling: the 2nd draw
//   engine.finish(p); engine.free(child);
//
// Token accounting (rows computed, page copies, pages peak) is counted here, not estimated.
import { ContextOverflowError, ForkLMError, InvalidArgumentError, PagePoolExhaustedError } from './errors.js';
import { autoCpuThreads, warnIfInlineForLargeModel } from './gpu/cpu_threads.js';
import { createGpu, type Gpu, type GpuOptions } from './gpu/device.js';
import { readF32 } from './gpu/readback.js';
import { KvCache } from './kv/kv_cache.js';
import { measureDecodeFused } from './model/decode_fused_choice.js';
import { specFromLlamaConfig } from './model/from_llama.js';
import { GpuModel, type ModelOptions } from './model/gpu_model.js';
import { submitStep, type StepSampling, type SubmittedStep } from './model/forward.js';
import { StepPipeline, type InFlight, type PathState, type PipelineStats } from './engine_pipeline.js';
import type { ModelSpec } from './model/spec.js';
import type { LlamaWeights } from './model/weights.js';
import type { ModelWeights } from './model/spec.js';
import { samplingParams, type SamplingParams } from './sample/params.js';
import { childKey, PathRng, rootKey } from './sample/rng.js';
import type { TokenStatsRecord } from './sample/stats_record.js';
import { Scheduler } from './sched/scheduler.js';
import type { Path } from './sched/path.js';
import type { StepPlan } from './sched/step_plan.js';
import type { Tokenizer } from './tokenizer/types.js';
import type { BranchEngine, CreatePathOptions, EngineInfo, ForkOptions, SessionSource, StepResult } from './branch/engine_api.js';
import { SessionHub, type SessionHost } from './engine_session.js';
import { ChatCompletions, Completions } from './api/completions.js';
import type { ApiHost, ChatTemplateInfo } from './api/host.js';

export type { StepResult };

export interface EngineOptions extends ModelOptions, GpuOptions {
  /** An existing GPU (several engines may share one device). */
  gpu?: Gpu;
  /**
   * How long sessions waiting in step() wait for another session that has live paths but is not stepping, in ms,
   * before they step without it (engine_session.ts). Default 20.
   */
  batchWaitMs?: number;
  /** The name OpenAI-style responses carry in `model` (loadEngine: the name or path it was given). */
  modelName?: string;
  /** The chat template for engine.chat.completions (loadEngine: from the model's files). */
  chatTemplate?: ChatTemplateInfo;
  /**
   * Pipelined steps (default false): while step t runs, step t+1 is planned and submitted on the assumption that every
   * sampling path continues with its first draw, which the GPU feeds into step t+1 itself; step t's stats are read
   * back meanwhile. A decision about step t that contradicts it (a finish, free or fork of a path in it, other draws,
   * a new path, a step of other paths, logits) undoes the speculative step (a finish or free at once, for that path's
   * pages) and runs that step synchronously. Tokens, counters and random streams are those of synchronous steps.
   */
  pipeline?: boolean;
}

export interface PathSampling extends SamplingParams {}

export interface EngineCounters {
  /** Forward steps run. */
  steps: number;
  /** Rows computed by the GPU (= token positions whose K/V and hidden states were computed), all steps. */
  rows: number;
  /** Page copies made for forks, and their bytes over all layers. */
  pageCopies: number;
  bytesCopied: number;
  /** Most KV pages in use at once. */
  pagesPeak: number;
  forks: number;
}

/** What an observer (benchmarks, engine.onStep) learns of each forward step, after its stats are read back. */
export interface StepTrace {
  plan: StepPlan;
  sampling: readonly StepSampling[];
  /** performance.now() when the step began planning, when it was submitted, and when its stats were back. */
  startMs: number;
  submitMs: number;
  endMs: number;
  /** With engine.timestampSteps on a device with `timestamp-query`: the forward pass's GPU start and end (ns). */
  gpuNs?: [number, number];
}

export class Engine implements SessionSource, ApiHost {
  readonly kv: KvCache;
  readonly sched: Scheduler;
  private readonly states = new Map<number, PathState>();
  private readonly counters = { steps: 0, rows: 0, bytesCopied: 0, pageCopies: 0, pagesPeak: 0 };
  private readonly hub: SessionHub;
  /** Called after every forward step with its plan and timestamps (instrumentation: bench/idle.ts). */
  onStep: ((trace: StepTrace) => void) | null = null;
  /** Write GPU timestamps around each step's forward pass into its trace (needs Gpu.timestamps; instrumentation). */
  timestampSteps = false;
  /** Pipelined steps (EngineOptions.pipeline). */
  readonly pipeline: boolean;
  /** The speculative next step and its undoing (engine_pipeline.ts). */
  private readonly pipe: StepPipeline;
  /** The step running now (hub or direct): steps run one at a time, in order. */
  private stepChain: Promise<unknown> = Promise.resolve();

  constructor(
    readonly gpu: Gpu,
    readonly model: GpuModel,
    readonly tokenizer: Tokenizer | null,
    options: Pick<EngineOptions, 'batchWaitMs' | 'modelName' | 'chatTemplate' | 'pipeline'> = {},
  ) {
    this.pipeline = options.pipeline ?? false;
    this.kv = new KvCache({ numPages: model.kvPages, pageSize: model.pageSize });
    this.sched = new Scheduler(this.kv, { maxRowsPerStep: model.maxRows });
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const engine = this;
    this.pipe = new StepPipeline({
      sched: this.sched,
      kv: this.kv,
      model,
      maxSeqLen: model.config.maxSeqLen,
      get timestamps() {
        return engine.timestampSteps;
      },
      state: (id) => this.state(id),
      has: (id) => this.states.has(id),
    });
    this.hub = new SessionHub(this.sessionHost(), options.batchWaitMs);
    this.modelName = options.modelName ?? 'forklm';
    this.chatTemplate = options.chatTemplate ?? { template: null, bosToken: null, eosToken: null };
    this.completions = new Completions(this);
    this.chat = { completions: new ChatCompletions(this) };
  }

  /** The name OpenAI-style responses carry in `model`. */
  readonly modelName: string;
  /** The chat template engine.chat.completions renders messages with (template null: the model has none). */
  readonly chatTemplate: ChatTemplateInfo;
  /** OpenAI's completions: `await engine.completions.create({ prompt, n, max_tokens, logprobs, stop, stream })`. */
  readonly completions: Completions;
  /** OpenAI's chat completions: `await engine.chat.completions.create({ messages, n, stream, ... })`. */
  readonly chat: { readonly completions: ChatCompletions };

  /**
   * A new session: a BranchEngine with its own paths (ids from 0), counters and step(). Sessions used concurrently
   * share this engine's forward passes and each gets what it would get alone (engine_session.ts). Close it when done.
   */
  session(): BranchEngine {
    return this.hub.open();
  }

  /** What controllers read of the model and the engine's limits (branch/engine_api.ts). */
  get info(): EngineInfo {
    return {
      vocabSize: this.config.vocabSize,
      maxSeqLen: this.config.maxSeqLen,
      eosTokenIds: this.config.eosTokenIds,
      maxBranch: this.model.maxBranch,
      maxLivePaths: this.maxLivePaths,
      topK: this.model.statsLayout.topK,
      pageSize: this.model.pageSize,
    };
  }

  /** An engine over already-loaded weights (loading by name lives in model/resolve.ts and engine_load.ts). */
  static async fromWeights(weights: ModelWeights | LlamaWeights, tokenizer: Tokenizer | null, options: EngineOptions = {}): Promise<Engine> {
    // Not told how many llvmpipe workers to use: the model's size decides (gpu/cpu_threads.ts).
    const auto = autoCpuThreads('spec' in weights ? weights.spec : specFromLlamaConfig(weights));
    const gpu = options.gpu ?? (await createGpu({ ...options, cpuThreads: options.cpuThreads ?? auto }));
    if (!options.gpu && options.cpuThreads === undefined) warnIfInlineForLargeModel(auto, gpu);
    try {
      const model = new GpuModel(gpu, weights, options);
      // decodeFused 'measure' (and the default on an adapter that does not name itself): time it before any path.
      await measureDecodeFused(model).catch((e: unknown) => {
        model.destroy();
        throw e;
      });
      const engine = new Engine(gpu, model, tokenizer, options);
      engine.ownsGpu = !options.gpu;
      return engine;
    } catch (err) {
      if (!options.gpu) gpu.destroy();
      throw err;
    }
  }

  /** Whether destroy() also destroys the device (the engine created it). */
  private ownsGpu = false;

  get config(): ModelSpec {
    return this.model.config;
  }

  get stats(): EngineCounters {
    return {
      steps: this.counters.steps,
      rows: this.counters.rows,
      pageCopies: this.counters.pageCopies,
      bytesCopied: this.counters.bytesCopied,
      pagesPeak: this.counters.pagesPeak,
      forks: this.sched.stats.forks,
    };
  }

  /**
   * Pipelined steps so far: speculative steps submitted, those that ran as the next step (confirmed), those undone
   * whole (abandoned: the next step ran synchronously) and rows undone one by one (a finish or free of their path).
   */
  get pipelineStats(): PipelineStats {
    return this.pipe.stats;
  }

  /** Starts a new peak measurement of pages in use (a run's pages_peak). */
  resetPeak(): void {
    this.counters.pagesPeak = this.kv.usedCount;
  }

  private notePeak(): void {
    this.counters.pagesPeak = Math.max(this.counters.pagesPeak, this.pagesInUse);
  }

  /** Pages in use now (a speculative step's new pages are not, until that step is the one that runs). */
  get pagesInUse(): number {
    return this.kv.usedCount - this.pipe.pagesHeld();
  }

  /**
   * A new path that will prefill `prompt` (cached full pages of an identical prefix are reused) and then sample with
   * `sampling`. `reserve` new tokens must fit the context too: a prompt that cannot is a ContextOverflowError.
   * Its random stream is rootKey(sampling.seed, root) (sample/rng.ts): the same seed and root index give the same
   * tokens whatever else this engine runs, before, after or batched with it.
   */
  createPath(prompt: readonly number[], sampling: Partial<SamplingParams> = {}, options: CreatePathOptions = {}): number {
    this.checkRoom();
    return this.createPathCore(prompt, sampling, options);
  }

  private createPathCore(prompt: readonly number[], sampling: Partial<SamplingParams>, options: CreatePathOptions): number {
    const { reserve = 0, root = 0 } = options;
    if (!Number.isSafeInteger(reserve) || reserve < 0)
      throw new InvalidArgumentError(`reserve must be an integer >= 0 (new tokens the path may generate), got ${reserve}.`);
    if (!Number.isSafeInteger(root) || root < 0)
      throw new InvalidArgumentError(`root must be an integer >= 0 (the index of this root in its request), got ${root}.`);
    const max = this.config.maxSeqLen;
    if (prompt.length + reserve > max)
      throw new ContextOverflowError(
        `The prompt has ${prompt.length} tokens${reserve ? ` and ${reserve} new tokens were asked for` : ''}; ` +
          `the model's context is ${max}. Shorten the prompt or lower max_new_tokens.`,
      );
    const params = samplingParams(sampling);
    this.checkUsable();
    for (const t of prompt)
      if (!Number.isInteger(t) || t < 0 || t >= this.config.vocabSize)
        throw new InvalidArgumentError(`token id ${t} is outside the vocabulary (0..${this.config.vocabSize - 1}).`);
    const path = this.sched.addRequest(prompt);
    this.states.set(path.id, { sampling: params, rng: new PathRng(rootKey(params.seed, root)), draws: 1 });
    return path.id;
  }

  path(id: number): Path {
    return this.sched.path(id);
  }

  /** KV pages held by a path's page table. */
  pages(id: number): readonly number[] {
    return this.kv.pages(this.sched.path(id).kvPath);
  }

  /**
   * A child of `id`. By default it keeps all of the parent's computed tokens and feeds `nextToken` next (an EAB
   * sibling). With `keep` = t it keeps the parent's first t tokens instead, recomputing token t-1 so its logits pick
   * token t afresh (a prefix branch at an earlier position). Full pages are shared; at most one page is copied.
   * Its random stream is childKey(parent's key, kind, position, sibling) (sample/rng.ts), position being where the
   * child first may differ (its nextToken's position, or `keep`): children of one parent at one position need
   * distinct `sibling` indices, or they draw the same randomness. `sampling` may change temperature and topP; the seed
   * is the parent's (a child's stream follows from its lineage).
   */
  fork(id: number, options: ForkOptions): number {
    this.checkRoom();
    return this.forkCore(id, options);
  }

  private forkCore(id: number, options: ForkOptions): number {
    // A fork applies at the position the controller saw: the parent's speculative row is undone first.
    if (this.pipe.holdsRow(id)) this.pipe.abandon();
    try {
      return this.forkAt(id, options);
    } catch (err) {
      // The speculative step's pages may be what the pool lacks: a synchronous step would not hold them.
      if (!(err instanceof PagePoolExhaustedError) || !this.pipe.inFlight) throw err;
      this.pipe.abandon();
      return this.forkAt(id, options);
    }
  }

  private forkAt(id: number, options: ForkOptions): number {
    const parent = this.sched.path(id);
    const parentState = this.state(id);
    const sibling = options.sibling ?? 0;
    if (!Number.isSafeInteger(sibling) || sibling < 0)
      throw new InvalidArgumentError(`fork sibling=${sibling}: give the child's index among its siblings, an integer >= 0.`);
    if (options.sampling?.seed !== undefined && options.sampling.seed !== parentState.sampling.seed)
      throw new InvalidArgumentError(
        'fork: a child keeps its parent\'s seed (its stream follows from its lineage); tell siblings apart with `sibling`.',
      );
    this.checkUsable();
    let child: Path;
    if (options.keep !== undefined) {
      const t = options.keep;
      if (!Number.isInteger(t) || t < 1 || t > parent.tokens.length)
        throw new InvalidArgumentError(`fork keep=${t}: keep between 1 and ${parent.tokens.length} tokens.`);
      const at = Math.min(t - 1, parent.computed);
      child = this.sched.fork(id, { atLength: at, nextTokens: parent.tokens.slice(at, t) });
    } else {
      const t = options.nextToken;
      if (t === undefined) throw new InvalidArgumentError('fork: give nextToken or keep.');
      if (!Number.isInteger(t) || t < 0 || t >= this.config.vocabSize)
        throw new InvalidArgumentError(`fork nextToken=${t} is outside the vocabulary (0..${this.config.vocabSize - 1}).`);
      child = this.sched.fork(id, { atLength: parent.computed, nextTokens: [t] });
    }
    this.notePeak();
    const params = options.sampling ? samplingParams({ ...parentState.sampling, ...options.sampling }) : parentState.sampling;
    const key =
      options.keep !== undefined
        ? childKey(parentState.rng.key, 'keep', options.keep, sibling)
        : childKey(parentState.rng.key, 'next', parent.computed, sibling);
    this.states.set(child.id, { sampling: params, rng: new PathRng(key), draws: 1 });
    return child.id;
  }

  /** Asks for `n` tokens drawn without replacement for path `id` at its next sampling step (a branch). */
  setDraws(id: number, n: number): void {
    if (!Number.isInteger(n) || n < 1 || n > this.model.maxBranch)
      throw new InvalidArgumentError(`draws=${n}: between 1 and ${this.model.maxBranch} (the engine's maxBranch).`);
    this.state(id).draws = n;
  }

  /** Stops a path; its pages stay (for later prefix branches) until free(). */
  finish(id: number): void {
    this.sched.finish(id);
    this.pipe.undoFinished();
  }

  /** Releases a path and its pages. */
  free(id: number): void {
    this.sched.free(id);
    this.states.delete(id);
  }

  /** free() for clean-up code: a path already gone (e.g. released by a failed step) is not an error. */
  release(id: number): void {
    if (this.states.has(id)) this.free(id);
  }

  /** Paths that will take part in the next step. */
  livePaths(): Path[] {
    return this.sched.paths().filter((p) => p.state !== 'finished');
  }

  /**
   * Advances every live path by one forward pass. Returns one result per path that sampled. Throws
   * PagePoolExhaustedError with nothing changed when the pool cannot hold the step: free or finish paths and retry.
   */
  async step(options: { logits?: boolean } = {}): Promise<{ results: StepResult[]; logits?: Float32Array } | null> {
    const direct = (id: number) => !this.hub.owner.has(id);
    const out = await this.stepIncluded(direct, options);
    if (!out) return null;
    return out.logits ? { results: out.results, logits: out.logits } : { results: out.results };
  }

  /** One forward pass over the included paths, after any step already running. */
  private stepIncluded(
    include: (id: number) => boolean,
    options: { logits?: boolean },
  ): Promise<{ results: StepResult[]; logits?: Float32Array; rows: Map<number, number> } | null> {
    const run = this.stepChain.then(() => this.runIncluded(include, options));
    this.stepChain = run.catch(() => undefined);
    return run;
  }

  private contextError(ids: readonly number[]): ContextOverflowError | null {
    for (const id of ids) {
      const p = this.sched.path(id);
      if (p.state !== 'finished' && p.tokens.length > this.config.maxSeqLen)
        return new ContextOverflowError(
          `Path ${id} has ${p.tokens.length} tokens, beyond the model's context of ${this.config.maxSeqLen}: finish or free it.`,
        );
    }
    return null;
  }

  private async runIncluded(
    include: (id: number) => boolean,
    options: { logits?: boolean },
  ): Promise<{ results: StepResult[]; logits?: Float32Array; rows: Map<number, number> } | null> {
    this.checkUsable();
    const startMs = performance.now();
    // The speculative step when it is exactly this step (its pages are in use from here on); else it is undone.
    let cur: InFlight | null = this.pipe.take(include, options);
    if (!cur) {
      // A path that would grow past the context is refused here, before any state changes (controllers reserve their
      // lengths at createPath, so this guards direct users of the engine).
      const overflow = this.contextError(this.sched.paths().filter((p) => include(p.id)).map((p) => p.id));
      if (overflow) throw overflow;
      const plan = this.sched.plan({ include });
      if (!plan) return null;
      const sampling: StepSampling[] = [];
      for (let s = 0; s < plan.samples; s++) {
        const st = this.state(plan.pathIds[plan.samplePath[s]]);
        sampling.push({
          temperature: st.sampling.temperature,
          topP: st.sampling.topP,
          randomBits: st.rng.nextU32(),
          nSamples: st.draws,
        });
      }
      const c: InFlight = { plan, sampling, startMs, submitMs: 0, fresh: null, submitted: null as unknown as SubmittedStep };
      cur = c;
      try {
        c.submitted = await submitStep(this.model, plan, sampling, {
          onSubmit: () => (c.submitMs = performance.now()),
          timestamps: this.timestampSteps,
        });
      } catch (err) {
        throw this.fail(c, err);
      }
    }
    this.notePeak();
    let stats;
    let logits: Float32Array | undefined;
    try {
      if (this.pipeline && !options.logits) await this.pipe.speculate(cur, include);
      stats = await cur.submitted.stats;
      if (options.logits && cur.plan.samples > 0) logits = await readF32(this.gpu, this.model.logits, cur.plan.samples * this.config.vocabSize);
    } catch (err) {
      throw this.fail(cur, err);
    }
    const plan = cur.plan;
    if (this.onStep) {
      const endMs = performance.now();
      const gpuNs = cur.submitted.gpuNs ? await cur.submitted.gpuNs : undefined;
      this.onStep({ plan, sampling: cur.sampling, startMs: cur.startMs, submitMs: cur.submitMs, endMs, ...(gpuNs ? { gpuNs } : {}) });
    }
    // Rows of paths finished or freed while a speculative step was in flight were undone: not counted, no result.
    const kept = (id: number) => this.sched.rowKept(id);
    let rowsRun = 0;
    const rows = new Map<number, number>();
    for (let r = 0; r < plan.rows; r++) {
      const id = plan.pathIds[plan.rowPath[r]];
      if (!kept(id)) continue;
      rowsRun++;
      rows.set(id, (rows.get(id) ?? 0) + 1);
    }
    this.counters.steps++;
    this.counters.rows += rowsRun;
    this.counters.bytesCopied += cur.submitted.bytesCopied;
    this.counters.pageCopies += plan.copies.length;
    const tokens = stats.map((r) => r.sampledIds[0]);
    this.sched.commit(plan, tokens);
    // A path finished while this step was in flight must not keep the speculative row planned after it.
    this.pipe.undoFinished();
    const results: StepResult[] = [];
    stats.forEach((st, s) => {
      const pathId = plan.pathIds[plan.samplePath[s]];
      const state = this.states.get(pathId);
      // A path finished or freed while this step was in flight took no token (commit skipped it): no result for it.
      if (!state || this.sched.path(pathId).state === 'finished') return;
      state.draws = 1;
      results.push({ pathId, stats: st, token: tokens[s], position: this.sched.path(pathId).tokens.length - 1 });
    });
    return logits ? { results, logits, rows } : { results, rows };
  }

  /**
   * A step failed: the plan's rows are in the KV tables but were never computed, and the scheduler has no rollback:
   * every path of this engine is suspect from here on. Releases the plans, frees all paths, and refuses further work.
   */
  private fail(cur: InFlight, err: unknown): ForkLMError {
    if (this.sched.inFlight) this.sched.commit(cur.plan, cur.sampling.map(() => 0));
    if (this.sched.specInFlight) this.sched.cancel();
    this.pipe.reset();
    this.freeAll();
    this.hub.forgetAll();
    this.failure = err instanceof ForkLMError ? err : new ForkLMError('STEP_FAILED', `A step failed: ${String(err)}. Create a new engine.`, { cause: err });
    return this.failure;
  }

  /** Frees every path (a cancelled or finished request), returning all pages to the pool. */
  freeAll(): void {
    for (const p of this.sched.paths()) this.free(p.id);
  }

  destroy(): void {
    this.model.destroy();
    if (this.ownsGpu) this.gpu.destroy();
  }

  /** Most paths that may be live at once: every live path may sample in one step. */
  get maxLivePaths(): number {
    return this.model.maxSamples;
  }

  /** Set when a step failed (device lost, or a bug): the engine refuses further work with this error. */
  private failure: ForkLMError | null = null;

  private checkUsable(): void {
    this.gpu.checkLost();
    if (this.failure) throw this.failure;
  }

  /** The direct API's room: paths created through engine.createPath/fork (sessions count their own). */
  private checkRoom(): void {
    if (this.livePaths().filter((p) => !this.hub.owner.has(p.id)).length >= this.maxLivePaths)
      throw new InvalidArgumentError(
        `${this.maxLivePaths} paths are live, the most this engine batches (maxSamples). Finish or free paths first, ` +
          'or create the engine with a larger maxSamples.',
      );
  }

  private sessionHost(): SessionHost {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const engine = this;
    return {
      get info() {
        return engine.info;
      },
      get tokenizer() {
        return engine.tokenizer;
      },
      get pagesInUse() {
        return engine.pagesInUse;
      },
      // A speculative step's new pages count as free and as needed by its paths, as a synchronous engine sees them.
      get pagesFree() {
        return engine.kv.freeCount + engine.pipe.pagesHeld();
      },
      get copiesMade() {
        return engine.kv.copiesMade;
      },
      hostCreatePath: (prompt, sampling, o: CreatePathOptions) => this.createPathCore(prompt, sampling, o),
      hostFork: (id, o: ForkOptions) => this.forkCore(id, o),
      setDraws: (id, n) => this.setDraws(id, n),
      finish: (id) => this.finish(id),
      free: (id) => this.free(id),
      hasPath: (id) => this.states.has(id),
      path: (id) => this.sched.path(id),
      pagesNeeded: (include) => this.sched.pagesNeeded({ include }) + this.pipe.pagesHeld(include),
      contextError: (ids) => this.contextError(ids),
      stepIncluded: (include, o) => this.stepIncluded(include, o),
    };
  }

  private state(id: number): PathState {
    const s = this.states.get(id);
    if (!s) throw new InvalidArgumentError(`Unknown path ${id}: it was never created or has been freed.`);
    return s;
  }
}

export { PagePoolExhaustedError };
