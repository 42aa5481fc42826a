// One caller's paths on a remote server, behind the BranchEngine surface the controllers drive.
//
// A path is its token sequence, held here. Each path is fed by streamed completion requests whose prompt is every
// token the path has; the server generates up to `lookahead` tokens ahead and they queue here, so step() hands out one
// token per live path while the requests run concurrently (the server batches them). When a path's queue runs low
// its next request goes out at once (its prefix is in the slot that just finished it); a path that ends early leaves
// at most `lookahead` generated tokens unused. A fork is a new request:
// its prompt is the parent's tokens up to the fork plus the branch token (EAB sibling) or the kept prefix (prefix
// branch), so the server's prefix cache serves the shared part. The parent's request keeps running: a branch point it
// has already passed costs it nothing. Roots created together with one prompt go out as one llama.cpp request with
// n_cmpl (the prompt is processed once and copied to the child slots).
//
// Random streams (DESIGN.md convention 9): a path's server seed and its client-side sibling draws depend only on its
// request's seed and its lineage (root index; parent + fork position + sibling index), so a run replays on any server
// state: the client's draws use the local engine's stream keys (sample/rng.ts). Completion i of an n_cmpl request is
// seeded seed + i by the server, hence root r's server seed is H(seed) + r and sibling i's of a prefix branch
// H(parent, position) + i: paths created together from one token sequence with
// consecutive seeds (the roots of a run, the branches of one peak) go out as one n_cmpl request, and the same paths
// sent one by one get the same seeds.
//
// Accounting comes from the server's own counters (prompt tokens computed, served from cache, generated), summed over
// requests; tokens a request generated beyond what its path used (a path ended first) are counted, not hidden.
import type { BranchEngine, CreatePathOptions, EngineInfo, ForkOptions, PathView, SessionCounters } from '../branch/engine_api.js';
import { CancelledError, ContextOverflowError, ForkLMError, InvalidArgumentError, RemoteServerError } from '../errors.js';
import { samplingParams, type SamplingParams } from '../sample/params.js';
import { childKey, murmur3Words, PathRng, rootKey } from '../sample/rng.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { isTransient, streamEvents } from './http.js';
import type { ServerEvent } from './protocol.js';
import { remoteTokenStats } from './token_stats.js';
import { type Feed, groupable, known, type RemoteCounters, type RemotePath, type RemoteStepResult, seed31, type SessionConfig, usageTotals } from './session_state.js';

export type { RemoteCounters, RemoteStepResult, SessionConfig } from './session_state.js';

export class RemoteSession implements BranchEngine {
  readonly info: EngineInfo;
  readonly tokenizer: Tokenizer | null;
  private readonly paths = new Map<number, RemotePath>();
  private nextId = 0;
  private nextFeed = 0;
  private readonly feeds = new Set<Feed>();
  private readonly done: Feed[] = [];
  private failure: ForkLMError | null = null;
  private closed = false;
  private wake: (() => void) | null = null;
  private readonly c = { steps: 0, forks: 0, requests: 0, retries: 0, used: 0, gapMax: 0, gapSum: 0, gapN: 0 };

  constructor(private readonly cfg: SessionConfig) {
    this.info = cfg.info;
    this.tokenizer = cfg.tokenizer;
    const signal = cfg.http.signal;
    if (signal?.aborted) this.failure = new CancelledError();
    else signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  /** The engine's signal fired: every request of the session is aborted and the waiting step rejects. */
  private readonly onAbort = (): void => {
    this.failure ??= new CancelledError('Cancelled: the in-flight requests to the server were aborted and the paths freed.');
    for (const f of this.feeds) f.abort.abort();
    this.notify();
  };

  createPath(prompt: readonly number[], sampling: Partial<SamplingParams> = {}, options: CreatePathOptions = {}): number {
    this.checkUsable();
    const reserve = options.reserve ?? 0;
    const max = this.info.maxSeqLen;
    if (prompt.length === 0) throw new InvalidArgumentError('The prompt is empty: give at least one token (e.g. BOS).');
    if (prompt.length + reserve > max)
      throw new ContextOverflowError(
        `The prompt has ${prompt.length} tokens${reserve ? ` and ${reserve} new tokens were asked for` : ''}; the server's context per ` +
          `request is ${max}. Shorten the prompt or lower max_new_tokens.`,
      );
    for (const t of prompt) this.checkToken(t);
    const params = samplingParams(sampling);
    this.checkRoom();
    const root = options.root ?? 0;
    if (!Number.isInteger(root) || root < 0) throw new InvalidArgumentError(`root must be an integer >= 0, got ${root}.`);
    return this.add({
      tokens: [...prompt],
      promptLength: prompt.length,
      sampling: params,
      key: rootKey(params.seed, root),
      seed: seed31(rootKey(params.seed, 0)) + root,
      maxLength: reserve > 0 ? prompt.length + reserve : max,
    });
  }

  fork(id: number, options: ForkOptions): number {
    this.checkUsable();
    const parent = this.get(id);
    let tokens: number[];
    let kind: 'keep' | 'next';
    if (options.keep !== undefined) {
      const t = options.keep;
      if (!Number.isInteger(t) || t < 1 || t > parent.tokens.length)
        throw new InvalidArgumentError(`fork keep=${t}: keep between 1 and ${parent.tokens.length} tokens.`);
      tokens = parent.tokens.slice(0, t);
      kind = 'keep';
    } else {
      if (options.nextToken === undefined) throw new InvalidArgumentError('fork: give nextToken or keep.');
      this.checkToken(options.nextToken);
      // As on the local engine, the child shares what the parent has computed and feeds nextToken instead of the
      // parent's last sampled token (which no forward has read yet): an EAB sibling at the same position.
      const computed = parent.state === 'prefill' ? parent.tokens.length : parent.tokens.length - 1;
      tokens = [...parent.tokens.slice(0, computed), options.nextToken];
      kind = 'next';
    }
    this.checkRoom();
    const sibling = options.sibling ?? 0;
    if (!Number.isInteger(sibling) || sibling < 0 || sibling > 0xffff)
      throw new InvalidArgumentError(`fork sibling=${sibling}: give the child's index among its siblings, an integer in 0..65535.`);
    if (options.sampling?.seed !== undefined && options.sampling.seed !== parent.sampling.seed)
      throw new InvalidArgumentError("fork: a child keeps its parent's seed (its stream follows from its lineage); tell siblings apart with `sibling`.");
    const sampling = options.sampling ? samplingParams({ ...parent.sampling, ...options.sampling }) : parent.sampling;
    // The position where the child first may differ: its nextToken's, or `keep`.
    const at = options.keep ?? tokens.length - 1;
    const key = childKey(parent.key, kind, at, sibling);
    this.c.forks++;
    return this.add({
      tokens,
      promptLength: Math.min(parent.promptLength, tokens.length),
      sampling,
      key,
      // Prefix branches of one position are seeded consecutively (one n_cmpl request); an EAB sibling has its own.
      seed: kind === 'keep' ? seed31(childKey(parent.key, kind, at, 0)) + sibling : seed31(key),
      maxLength: parent.maxLength,
    });
  }

  setDraws(id: number, n: number): void {
    if (!Number.isInteger(n) || n < 1 || n > this.info.maxBranch)
      throw new InvalidArgumentError(`draws=${n}: between 1 and ${this.info.maxBranch} (the remote engine's maxBranch: its top log-probs).`);
    this.get(id).draws = n;
  }

  finish(id: number): void {
    const p = this.get(id);
    p.state = 'finished';
    this.detach(p);
  }

  free(id: number): void {
    const p = this.get(id);
    this.detach(p);
    this.paths.delete(id);
  }

  release(id: number): void {
    if (this.paths.has(id)) this.free(id);
  }

  path(id: number): PathView {
    const p = this.get(id);
    return { id, state: p.state, tokens: p.tokens, promptLength: p.promptLength, reusedTokens: p.reusedTokens };
  }

  liveCount(): number {
    let n = 0;
    for (const p of this.paths.values()) if (p.state !== 'finished') n++;
    return n;
  }

  counters(): SessionCounters {
    const r = this.remoteCounters();
    return { steps: this.c.steps, rows: r.promptComputed + r.generated, reusedPromptTokens: r.promptCached, forks: this.c.forks, pageCopies: 0, pagesPeak: 0 };
  }

  /** The server's counters summed over this session's requests, and the entropy bounds seen. */
  remoteCounters(): RemoteCounters {
    const u = usageTotals([...this.done, ...this.feeds]);
    return {
      requests: this.c.requests,
      retries: this.c.retries,
      ...u,
      generatedUsed: this.c.used,
      maxEntropyGap: this.c.gapMax,
      meanEntropyGap: this.c.gapN > 0 ? this.c.gapSum / this.c.gapN : 0,
    };
  }

  close(): void {
    for (const id of [...this.paths.keys()]) this.free(id);
    this.closed = true;
    this.cfg.http.signal?.removeEventListener('abort', this.onAbort);
  }

  /**
   * Advances every live path by one token: sends the requests that paths without one need, waits until each live
   * path has a token queued, and hands out one per path. A server that fails (after the retries) rejects the step
   * with a RemoteServerError and frees every path of the session.
   */
  async step(): Promise<{ results: RemoteStepResult[] } | null> {
    this.checkUsable();
    const live = [...this.paths.values()].filter((p) => p.state !== 'finished');
    if (live.length === 0) return null;
    for (const p of live)
      if (p.tokens.length >= p.maxLength)
        throw new ContextOverflowError(`Path ${p.id} has ${p.tokens.length} tokens, its budget: finish or free it.`);
    try {
      for (;;) {
        if (this.failure) throw this.failure;
        // Paths whose request ended (its lookahead, a stop the server chose, a broken stream) continue with a new one.
        this.launch(live);
        if (live.every((p) => p.queue.length > 0)) break;
        await new Promise<void>((resolve) => (this.wake = resolve));
      }
    } catch (err) {
      this.fail(err);
    }
    const results: RemoteStepResult[] = [];
    for (const p of live) {
      const ev = p.queue.shift()!;
      const { stats, entropyBounds } = remoteTokenStats(ev, {
        temperature: p.sampling.temperature,
        topP: p.sampling.topP,
        draws: p.draws,
        vocabSize: this.info.vocabSize,
        topK: this.info.topK,
        uniform: () => p.rng.nextFloat(),
      });
      const gap = (entropyBounds.upper - entropyBounds.lower) / Math.log(this.info.vocabSize);
      this.c.gapMax = Math.max(this.c.gapMax, gap);
      this.c.gapSum += gap;
      this.c.gapN++;
      this.c.used++;
      p.draws = 1;
      p.retries = 0;
      p.tokens.push(ev.id);
      p.state = 'decode';
      results.push({ pathId: p.id, stats, token: ev.id, position: p.tokens.length - 1, entropyBounds });
    }
    this.c.steps++;
    // The next requests go out now, while the caller works on this step's results.
    this.launch(live);
    return { results };
  }

  private add(init: Pick<RemotePath, 'tokens' | 'promptLength' | 'sampling' | 'key' | 'seed' | 'maxLength'>): number {
    const id = this.nextId++;
    this.paths.set(id, {
      ...init,
      id,
      reusedTokens: 0,
      state: 'prefill',
      rng: new PathRng(init.key),
      draws: 1,
      fresh: true,
      queue: [],
      feed: null,
      drained: false,
      retries: 0,
    });
    return id;
  }

  /** Sends requests for the live paths whose request has ended and whose queue runs low. */
  private launch(paths: RemotePath[]): void {
    const low = Number.isFinite(this.cfg.lookahead) ? Math.floor(this.cfg.lookahead / 2) : 0;
    const need = paths.filter(
      (p) => p.state !== 'finished' && this.paths.has(p.id) && (p.feed === null || p.drained) && p.queue.length <= low && known(p) < p.maxLength,
    );
    const groups: RemotePath[][] = [];
    for (const p of need) {
      const g = this.cfg.groupRoots ? groups.find((g) => groupable(g[g.length - 1], p)) : undefined;
      if (g) g.push(p);
      else groups.push([p]);
    }
    for (const g of groups) this.send(g);
  }

  private send(group: RemotePath[]): void {
    const first = group[0];
    // The prompt: every token the path has, used or queued. A continuation gets its own seed from the lineage and the
    // position (where its request ended: the lookahead, a stop, or a break), so it does not replay its earlier draws.
    const prompt = [...first.tokens, ...first.queue.map((e) => e.id)];
    const seed = first.fresh ? first.seed : murmur3Words([...first.key, prompt.length], 0) & 0x7fffffff;
    const feed: Feed = { id: this.nextFeed++, abort: new AbortController(), paths: group.map((p) => p.id), usage: new Map(), promptLength: prompt.length };
    for (const p of group) {
      p.feed = feed;
      p.drained = false;
      p.fresh = false;
    }
    this.feeds.add(feed);
    this.c.requests++;
    const body = this.cfg.dialect.body({
      prompt,
      maxTokens: Math.min(this.cfg.lookahead, first.maxLength - prompt.length),
      n: group.length,
      temperature: first.sampling.temperature,
      topP: first.sampling.topP,
      seed,
      topLogprobs: this.cfg.topLogprobs,
      model: this.cfg.model,
    });
    void this.pump(feed, body);
  }

  private async pump(feed: Feed, body: unknown): Promise<void> {
    const url = this.cfg.baseUrl + this.cfg.dialect.path;
    let error: unknown = null;
    try {
      const http = { ...this.cfg.http, signal: feed.abort.signal };
      for await (const chunk of streamEvents(url, body, http, () => this.c.retries++)) {
        // A chunk read just before the abort is dropped too: the counters stop at the abort, where callers read them.
        if (feed.abort.signal.aborted) break;
        for (const ev of this.cfg.dialect.parse(chunk)) this.deliver(feed, ev);
        this.notify();
      }
    } catch (err) {
      if (!feed.abort.signal.aborted) error = err;
    }
    this.feeds.delete(feed);
    this.done.push(feed);
    const mine = feed.paths.map((id) => (id === null ? undefined : this.paths.get(id))).filter((p): p is RemotePath => p?.feed === feed);
    for (const p of mine) p.drained = true;
    if (error) {
      // A stream that broke (server restarted, connection reset, a wait past the timeout) resumes from the tokens its
      // paths have: step() sends drained paths a new request. Past the retries, or on any other error, the session fails.
      const live = mine.filter((p) => p.state !== 'finished');
      if (isTransient(error) && live.every((p) => ++p.retries <= this.cfg.http.retries)) this.c.retries++;
      else if (live.length > 0)
        this.failure ??= error instanceof ForkLMError ? error : new RemoteServerError('protocol', `The server stream failed: ${String(error)}`, { cause: error });
    }
    this.notify();
  }

  private deliver(feed: Feed, ev: ServerEvent): void {
    if (ev.type === 'usage') {
      feed.usage.set(ev.index, ev);
      const id = ev.index >= 0 ? feed.paths[ev.index] : null;
      const p = id === null || id === undefined ? undefined : this.paths.get(id);
      if (p && p.feed === feed && p.state === 'prefill' && ev.promptCached !== null) p.reusedTokens = ev.promptCached;
      return;
    }
    const id = feed.paths[ev.index];
    const p = id === null || id === undefined ? undefined : this.paths.get(id);
    if (!p || p.feed !== feed || p.state === 'finished') return;
    if (ev.type === 'token') p.queue.push(ev);
    else p.drained = true;
  }

  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  /** Lets a path go: its queued tokens are dropped and its request aborted once no other path reads it. */
  private detach(p: RemotePath): void {
    p.queue = [];
    const f = p.feed;
    p.feed = null;
    if (!f) return;
    f.paths = f.paths.map((id) => (id === p.id ? null : id));
    if (f.paths.every((id) => id === null)) f.abort.abort();
  }

  private fail(err: unknown): never {
    const e = err instanceof ForkLMError ? err : new RemoteServerError('protocol', `A step failed: ${String(err)}`, { cause: err });
    this.failure = e;
    for (const id of [...this.paths.keys()]) this.free(id);
    throw e;
  }

  private checkUsable(): void {
    if (this.closed) throw new InvalidArgumentError('This session is closed: open a new one with engine.session().');
    if (this.failure) throw this.failure;
  }

  private checkRoom(): void {
    if (this.liveCount() >= this.info.maxLivePaths)
      throw new InvalidArgumentError(
        `${this.info.maxLivePaths} paths are live, the most this remote engine runs at once (maxLivePaths). Finish or free paths first.`,
      );
  }

  private checkToken(t: number): void {
    if (!Number.isInteger(t) || t < 0 || t >= this.info.vocabSize)
      throw new InvalidArgumentError(`token id ${t} is outside the vocabulary (0..${this.info.vocabSize - 1}).`);
  }

  private get(id: number): RemotePath {
    const p = this.paths.get(id);
    if (!p) throw new InvalidArgumentError(`Unknown path ${id}: it was never created or has been freed.`);
    return p;
  }
}
