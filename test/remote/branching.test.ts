// EAB and confidence-peak branching through the remote engine on a real llama-server (stories260K): the controllers'
// code unchanged, the tree and metadata checks of the local runs (test/model/eab.test.ts, peaks.test.ts), replay from a
// seed, and accounting from the server's counters beside forklm's count of what a naive run costs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findPeaks } from '../../src/branch/confidence.js';
import { runEab, type EabResult } from '../../src/branch/eab.js';
import { peakOptions, runPeaks, type PeaksResult } from '../../src/branch/peaks.js';
import { generate } from '../../src/generate.js';
import { RemoteEngine, type RemoteSession } from '../../src/remote/index.js';
import { loadStories, tokenizerFor } from '../model/models.js';
import { startLlamaServer, type RunningServer } from './llama_server.js';

let server: RunningServer;
let remote: RemoteEngine;
/** The sessions the controllers open, so a test can read their server counters after the run. */
const opened: RemoteSession[] = [];
const source = { session: () => { const s = remote.session(); opened.push(s); return s; } };

beforeAll(async () => {
  server = await startLlamaServer({ slots: 8 });
  // The model's own tokenizer, so the controllers decode their samples' text as on the local engine.
  remote = await RemoteEngine.connect(server.url, { tokenizer: tokenizerFor(await loadStories('gguf')) });
});
afterAll(async () => {
  await server?.stop();
});

const EAB = { max_new_tokens: 40, entropy_threshold: 0.35, branch_factor: 3, max_paths: 10, temperature: 1, top_p: 1 };
const PEAKS = {
  initial_traces: 2, max_traces: 8, max_new_tokens: 64, temperature: 0.9, confidence_threshold: 6.5, peak_window: 6,
  min_peak_distance: 6, peaks_per_trace: 1, branches_per_peak: 2, max_depth: 2, seed: 3,
} as const;

async function prompt(text = 'Once upon a time, there was a little dog'): Promise<number[]> {
  return remote.tokenize(text);
}

describe('EAB through the remote engine', () => {
  it('replays from a seed; keeps the tree consistent and the log-probabilities summed; counts from the server', async () => {
    const p = await prompt();
    const a = await runEab(source, p, { ...EAB, seed: 3 });
    const sa = opened.at(-1)!.remoteCounters();
    const b = await runEab(source, p, { ...EAB, seed: 3 });
    const c = await runEab(source, p, { ...EAB, seed: 4 });
    const strip = (r: EabResult) => JSON.stringify({ samples: r.samples.map((s) => s.tokens), tree: r.tree });
    expect(strip(a)).toBe(strip(b));
    expect(strip(a)).not.toBe(strip(c));
    const r = a;
    expect(r.stats.forks).toBeGreaterThan(0);
    const byId = new Map(r.tree.map((n) => [n.path, n]));
    const full = new Map(r.samples.map((s) => [s.path, s.tokens]));
    for (const s of r.samples) {
      for (let i = 1; i < s.lineage.length; i++) {
        const node = byId.get(s.lineage[i])!;
        expect(node.parent).toBe(s.lineage[i - 1]);
        const parentTokens = full.get(node.parent!) ?? null;
        if (parentTokens) expect(s.tokens.slice(0, node.fork_position)).toEqual(parentTokens.slice(0, node.fork_position));
      }
      expect(s.token_logprobs.length).toBe(s.tokens.length);
      expect(s.log_probability).toBeCloseTo(s.token_logprobs.reduce((x, y) => x + y, 0), 9);
      expect(s.branch_points.length).toBeGreaterThanOrEqual(s.lineage.length - 1);
      s.branch_points.forEach((bp, i) => {
        expect(bp.entropy).toBeGreaterThan(EAB.entropy_threshold);
        expect(bp.siblings).toBeGreaterThanOrEqual(2);
        if (i > 0) expect(bp.position).toBeGreaterThan(s.branch_points[i - 1].position);
      });
      // Siblings are distinct tokens at their branch point (drawn without replacement).
    }
    for (const n of r.tree) {
      const kids = n.children.map((k) => byId.get(k)!);
      const atPos = new Map<number, number[]>();
      for (const k of kids) atPos.set(k.fork_position, [...(atPos.get(k.fork_position) ?? []), k.tokens[0]]);
      for (const firsts of atPos.values()) expect(new Set(firsts).size).toBe(firsts.length);
    }
    // Accounting: token_steps are the server's rows (prompt computed + generated); every token a path took is one the
    // server generated; naive is forklm's own count.
    expect(r.stats.token_steps).toBe(sa.promptComputed + sa.generated);
    // Every token in the tree came from the server, except each fork's first token (drawn here from the top k).
    expect(sa.generatedUsed + r.stats.forks).toBe(r.tree.reduce((x, n) => x + n.tokens.length, 0));
    // The server served most prompt tokens from its cache (branch prefixes from idle slots and its host cache).
    expect(sa.promptCached).toBeGreaterThan(sa.promptComputed);
    expect(sa.generated).toBeGreaterThanOrEqual(sa.generatedUsed);
    expect(r.stats.naive_token_steps).toBe(r.samples.reduce((x, s) => x + p.length + s.tokens.length, 0));
    // The remote engine has no pages a client can see: no page figures, rather than a division by its pageSize 0.
    expect(r.stats.naive_pages).toBe(0);
    expect(remote.session().liveCount()).toBe(0);
  });

  it('threshold 1 never branches and equals generate() with the same seed; exact-N returns N samples', async () => {
    const p = await prompt();
    const r = await runEab(source, p, { ...EAB, entropy_threshold: 1, seed: 5 });
    expect(r.stats.forks).toBe(0);
    const g = await generate(source, p, { maxNewTokens: EAB.max_new_tokens, temperature: 1, seed: 5 });
    expect(r.samples[0].tokens).toEqual(g.tokens);
    const n = await runEab(source, p, { ...EAB, num_samples: 6, seed: 9 });
    expect(n.samples.length).toBe(6);
  });
});

describe('confidence-peak branching through the remote engine', () => {
  it('keeps the seed\'s metadata; branches continue their parent; prefixes are served from the server cache', async () => {
    const p = await prompt('Once upon a time');
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
    const branches = r.traces.filter((t) => t.depth > 0);
    expect(branches.length).toBeGreaterThan(0);
    for (const root of r.traces.filter((t) => t.depth === 0)) {
      const peaks = findPeaks(root.confs, peakOptions({ tokens: root.token_ids, branchPoint: 0, prefixLength: 0 }, r.params));
      expect(root.children.length > 0).toBe(peaks.length > 0);
    }
    // The server computed the prompt once (the roots share one n_cmpl request) and served most branch prefixes from
    // its cache or copied them (n_cmpl): far fewer prompt tokens computed than re-encoding every branch's prefix.
    const prefixTokens = branches.reduce((x, t) => x + p.length + t.branch_point, 0);
    expect(counters.promptComputed).toBeLessThan(p.length + prefixTokens / 2);
    expect(counters.promptCached + counters.promptCopied).toBeGreaterThan(prefixTokens / 2);
    expect(r.stats.forks).toBe(branches.length);
  });
});
