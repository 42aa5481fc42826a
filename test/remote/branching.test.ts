// EAB and confidence-peak branching through the remote engine on a real llama-server (stories260K): the controllers'
// code unchanged, the tree and metadata checks of the local runs (test/model/eab.test.ts, peaks.test.ts), accounting
// from the server's counters beside forklm's count of what a naive run costs, and replay from a seed.
//
// Replay: a live rerun of one seed is not asserted equal, because llama.cpp is not: its log-probs for one request
// change with the KV cells its slot holds and the batch it is decoded in (README, "On a server engine"). Whatever the
// server's numbers, forklm's part is deterministic: the same seed and the same replies give the same tree, whatever
// order and timing the replies arrive in. A recording proxy (replay_proxy.ts) feeds a rerun the first run's replies,
// chunk by chunk at random delays, and the tree must come out equal; a request that the first run did not make stays
// unanswered, so a client that needed one would fail by its timeout (one it lets go, as the first run let go of a
// request before it reached the proxy, it aborts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectEabLineage } from '../ref/eab_tree.js';
import { findPeaks } from '../../src/branch/confidence.js';
import { runEab, type EabResult } from '../../src/branch/eab.js';
import { peakOptions, runPeaks, type PeaksResult } from '../../src/branch/peaks.js';
import { generate } from '../../src/generate.js';
import { RemoteEngine, type RemoteSession } from '../../src/remote/index.js';
import { loadStories, tokenizerFor } from '../model/models.js';
import { startLlamaServer, type RunningServer } from './llama_server.js';
import { startReplayProxy, type ReplayProxy } from './replay_proxy.js';

let server: RunningServer;
let proxy: ReplayProxy;
let remote: RemoteEngine;
/** The sessions the controllers open, so a test can read their server counters after the run. */
const opened: RemoteSession[] = [];
const source = {
  session: () => {
    const s = remote.session();
    opened.push(s);
    return s;
  },
};

beforeAll(async () => {
  // llama.cpp's defaults (f16 KV cache, flash attention on the CPU): what a user runs.
  server = await startLlamaServer({ slots: 8 });
  proxy = await startReplayProxy(server.url);
  // The model's own tokenizer, so the controllers decode their samples' text as on the local engine. A reply (live: a
  // request of at most 16 tokens, queued behind at most 8 others; replayed: at most a few seconds of delays) starts
  // well within 20 s, so a request the proxy holds unanswered fails in 20 s and once more after one retry, not 120.
  remote = await RemoteEngine.connect(proxy.url, { tokenizer: tokenizerFor(await loadStories('gguf')), timeoutMs: 20_000, retries: 1 });
});
afterAll(async () => {
  await proxy?.close();
  await server?.stop();
});

const EAB = { max_new_tokens: 40, entropy_threshold: 0.35, branch_factor: 3, max_paths: 10, temperature: 1, top_p: 1 };
const PEAKS = {
  initial_traces: 3, max_traces: 9, max_new_tokens: 48, temperature: 0.9, confidence_threshold: 5, peak_window: 6,
  min_peak_distance: 6, peaks_per_trace: 1, branches_per_peak: 2, max_depth: 2, seed: 3,
} as const;

const prompt = (text = 'Once upon a time, there was a little dog'): Promise<number[]> => remote.tokenize(text);
const eabShape = (r: EabResult) => JSON.stringify({ samples: r.samples.map((s) => [s.tokens, s.token_logprobs, s.branch_points]), tree: r.tree });
const peaksShape = (r: PeaksResult) => JSON.stringify(r.traces.map((t) => [t.trace_id, t.parent_id, t.branch_point, t.token_ids, t.confs]));

/** Reruns `run` on the recorded replies, with chunks delayed by up to `jitterMs` each. A failure names the requests
 * the rerun made that the first run had not. */
async function replayed<T>(run: () => Promise<T>, jitterMs: number): Promise<T> {
  proxy.mode = 'replay';
  proxy.jitterMs = jitterMs;
  try {
    return await run();
  } catch (err) {
    const brief = (k: string) => {
      const b = JSON.parse(k.slice(k.indexOf(' ') + 1)) as { prompt: number[]; n_cmpl: number; n_predict: number; seed: number };
      return `prompt of ${b.prompt.length} ending ${b.prompt.slice(-3)}, n_cmpl ${b.n_cmpl}, n_predict ${b.n_predict}, seed ${b.seed}`;
    };
    throw new Error(`replay failed (${String(err)}); requests not recorded: ${proxy.unrecordedBodies().map(brief).join('; ')}; recorded: ${proxy.recordedBodies().map(brief).join('; ')}`);
  } finally {
    proxy.mode = 'record';
  }
}

describe('EAB through the remote engine', () => {
  it('keeps the tree consistent and the log-probabilities summed; counts from the server; replays from the same replies', async () => {
    const p = await prompt();
    proxy.clear();
    const r = await runEab(source, p, { ...EAB, seed: 3 });
    const sa = opened.at(-1)!.remoteCounters();
    expect(r.stats.forks).toBeGreaterThan(0);
    const byId = new Map(r.tree.map((n) => [n.path, n]));
    expectEabLineage(r, EAB.entropy_threshold);
    for (const s of r.samples) {
      expect(s.text.length).toBeGreaterThan(0);
    }
    // Siblings at one branch point are distinct tokens (drawn without replacement).
    for (const n of r.tree) {
      const atPos = new Map<number, number[]>();
      for (const k of n.children.map((c) => byId.get(c)!)) atPos.set(k.fork_position, [...(atPos.get(k.fork_position) ?? []), k.tokens[0]]);
      for (const firsts of atPos.values()) expect(new Set(firsts).size).toBe(firsts.length);
    }
    // Accounting: token_steps are the server's rows (prompt computed + generated); every token in the tree came from
    // the server except each fork's first (drawn by forklm from the top k); naive is forklm's own count. Every prompt
    // token sent was computed or served from the cache, and the cache served some (continuations from their slot).
    expect(r.stats.token_steps).toBe(sa.promptComputed + sa.generated);
    expect(sa.generatedUsed + r.stats.forks).toBe(r.tree.reduce((x, n) => x + n.tokens.length, 0));
    expect(sa.generated).toBeGreaterThanOrEqual(sa.generatedUsed);
    expect(sa.promptComputed + sa.promptCached).toBe(sa.promptSent);
    expect(sa.promptCached).toBeGreaterThan(0);
    expect(r.stats.naive_token_steps).toBe(r.samples.reduce((x, s) => x + p.length + s.tokens.length, 0));
    // The remote engine has no pages a client can see: no page figures, rather than a division by its pageSize 0.
    expect(r.stats.naive_pages).toBe(0);

    // Replay: the same seed on the same replies, delivered in other orders and at other times, gives the same tree.
    // (A request aborted right after it was sent may not have reached the proxy: recorded <= requests.)
    expect(proxy.recorded()).toBeGreaterThan(0);
    expect(proxy.recorded()).toBeLessThanOrEqual(sa.requests);
    for (const jitter of [0, 3, 10]) {
      const b = await replayed(() => runEab(source, p, { ...EAB, seed: 3 }), jitter);
      expect(eabShape(b)).toBe(eabShape(r));
    }
    // Another seed makes other requests (the replay proxy has none of them recorded: it is live here).
    const c = await runEab(source, p, { ...EAB, seed: 4 });
    expect(eabShape(c)).not.toBe(eabShape(r));
  });

  it('threshold 1 never branches and makes exactly the requests of generate() with the same seed; exact-N gives N', async () => {
    const p = await prompt();
    proxy.clear();
    const g = await generate(source, p, { maxNewTokens: EAB.max_new_tokens, temperature: 1, seed: 5 });
    // EAB on generate's replies: it asks for nothing else, and takes the same tokens.
    const r = await replayed(() => runEab(source, p, { ...EAB, entropy_threshold: 1, seed: 5 }), 3);
    expect(r.stats.forks).toBe(0);
    expect(r.samples[0].tokens).toEqual(g.tokens);
    const n = await runEab(source, p, { ...EAB, num_samples: 6, seed: 9 });
    expect(n.samples.length).toBe(6);
  });
});

describe('confidence-peak branching through the remote engine', () => {
  it("keeps the seed's metadata; branches continue their parent; the prompt computed once; replays from the same replies", async () => {
    const p = await prompt('Once upon a time');
    proxy.clear();
    const r: PeaksResult = await runPeaks(source, p, PEAKS);
    const counters = opened.at(-1)!.remoteCounters();
    const byId = new Map(r.traces.map((t) => [t.trace_id, t]));
    for (const t of r.traces) {
      expect(t.num_tokens).toBe(t.token_ids.length);
      expect(t.confs.length).toBe(t.num_tokens);
      expect(t.new_tokens).toBe(t.num_tokens - t.prefix_length);
      expect(t.branch_history.length).toBe(t.depth);
      expect(t.text.length).toBeGreaterThan(0);
      if (t.parent_id === null) continue;
      const parent = byId.get(t.parent_id)!;
      expect(t.depth).toBe(parent.depth + 1);
      expect(t.prefix_length).toBe(t.branch_point);
      expect(t.token_ids.slice(0, t.branch_point)).toEqual(parent.token_ids.slice(0, t.branch_point));
      expect(t.branch_history.at(-1)!.confidence).toBeGreaterThanOrEqual(PEAKS.confidence_threshold);
    }
    const roots = r.traces.filter((t) => t.depth === 0);
    expect(roots.length).toBe(PEAKS.initial_traces);
    for (const root of roots) {
      const peaks = findPeaks(root.confs, peakOptions({ tokens: root.token_ids, branchPoint: 0, prefixLength: 0 }, r.params));
      expect(root.children.length > 0).toBe(peaks.length > 0);
    }
    const branches = r.traces.filter((t) => t.depth > 0);
    expect(branches.length).toBeGreaterThan(0);
    expect(r.stats.forks).toBe(branches.length);
    // The roots went out as one n_cmpl request: its completion 0 computed the prompt (less what a slot had cached),
    // llama.cpp copied it to the other two; each peak's branches share one request the same way, so at least one
    // prefix per peak is copied, never recomputed. Every prompt token sent was computed or served from the cache.
    const peaksBranched = new Set(branches.map((t) => `${t.parent_id}@${t.branch_point}`)).size;
    expect(counters.promptCopied).toBeGreaterThanOrEqual((PEAKS.initial_traces - 1) * p.length + (branches.length - peaksBranched) * p.length);
    expect(counters.promptComputed + counters.promptCached).toBe(counters.promptSent);
    expect(counters.promptCached).toBeGreaterThan(0);

    for (const jitter of [0, 10]) {
      const b = await replayed(() => runPeaks(source, p, PEAKS), jitter);
      expect(peaksShape(b)).toBe(peaksShape(r));
    }
  });
});
