// `forklm generate --server URL` against a real llama-server (stories260K): eab and peaks print the local runs'
// JSON documents, whose trees, metadata and texts pass the local runs' checks, plus the server's counters; greedy
// gives the local CLI's tokens and text; a server lacking a feature, nothing listening, a server that never answers
// and a cancelled run (ctx.signal, and a real Ctrl-C to a forklm process) end in typed errors, with the server's slots
// freed.
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectEabLineage } from '../ref/eab_tree.js';
import { findPeaks } from '../../src/branch/confidence.js';
import { peakOptions, type PeaksResult } from '../../src/branch/peaks.js';
import type { EabResult } from '../../src/branch/eab.js';
import { main } from '../../src/cli/main.js';
import type { Tokenizer } from '../../src/tokenizer/types.js';
import { decodeContinuation } from '../../src/tokenizer/stream_decoder.js';
import { freePort } from '../../scripts/llama_server.js';
import { loadStories, STORIES_FORMATS, tokenizerFor } from '../model/models.js';
import { startLlamaServer, type RunningServer } from './llama_server.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
let server: RunningServer;
let tok: Tokenizer;
const fakes: Server[] = [];

beforeAll(async () => {
  // f32 KV cache, no flash attention: greedy is compared with the local engine below, and llama.cpp's f16 rounding
  // (log-probs off by up to 6e-3, measured) could flip a near-tie (see llama_server.test.ts).
  server = await startLlamaServer({ slots: 8, extra: ['-ctk', 'f32', '-ctv', 'f32', '-fa', 'off'] });
  tok = tokenizerFor(await loadStories('gguf'))!;
});
afterAll(async () => {
  await server?.stop();
  await Promise.all(fakes.map((s) => new Promise<void>((r) => { s.closeAllConnections(); s.close(() => r()); })));
});

interface Run {
  code: number;
  out: string;
  err: string;
}

async function cli(args: string[], signal?: AbortSignal): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(['generate', ...args], { stdout: (t) => void out.push(t), stderr: (t) => void err.push(t), env: {}, signal });
  return { code, out: out.join(''), err: err.join('') };
}

function json<T>(r: Run): T {
  expect(r.code, r.err + r.out).toBe(0);
  return JSON.parse(r.out) as T;
}

/** The CLI's adapter comes from the process environment: llvmpipe, as the other model tests use. */
async function local(args: string[]): Promise<Run> {
  const before = process.env.FORKLM_ADAPTER;
  process.env.FORKLM_ADAPTER = 'llvmpipe';
  try {
    return await cli(['--model', STORIES_FORMATS.gguf(), ...args]);
  } finally {
    if (before === undefined) delete process.env.FORKLM_ADAPTER;
    else process.env.FORKLM_ADAPTER = before;
  }
}

interface Counters {
  requests: number;
  promptComputed: number;
  promptCached: number;
  promptCopied: number;
  generated: number;
  generatedUsed: number;
  maxEntropyGap: number;
}
type ServerInfo = { server: { url: string; kind: string; counters: Counters } };

const EAB_PROMPT = 'Once upon a time, there was a little dog';
const EAB = ['--mode', 'eab', '--max-new-tokens', '40', '--entropy-threshold', '0.35', '--branch-factor', '3', '--max-paths', '10', '--seed', '3', '--json'];
// A confidence threshold most windows pass on stories260K (its windowed confidences are 5.5-8 here), so the roots do
// branch; whether each root branches is checked against its own peaks below.
const PEAKS = ['--mode', 'peaks', '--initial-traces', '3', '--max-traces', '9', '--max-new-tokens', '48', '--temperature', '0.9'];
PEAKS.push('--confidence-threshold', '5', '--peak-window', '6', '--min-peak-distance', '6', '--peaks-per-trace', '1', '--branches-per-peak', '2', '--max-depth', '2', '--seed', '3', '--json');

describe('forklm generate --server (llama-server)', () => {
  it('eab: the local document, tree checks, texts as forklm decodes them, accounting from the server', async () => {
    const r = json<EabResult & ServerInfo>(await cli(['--server', server.url, '--prompt', EAB_PROMPT, ...EAB]));
    const l = json<EabResult>(await local(['--prompt', EAB_PROMPT, ...EAB]));
    // The local run's document, key for key, plus `server`.
    expect(Object.keys(r).sort()).toEqual([...Object.keys(l), 'server'].sort());
    expect(Object.keys(r.samples[0]).sort()).toEqual(Object.keys(l.samples[0]).sort());
    expect(Object.keys(r.tree[0]).sort()).toEqual(Object.keys(l.tree[0]).sort());
    expect(Object.keys(r.stats).sort()).toEqual(Object.keys(l.stats).sort());
    expect(r.server.url).toBe(server.url);
    expect(r.server.kind).toBe('llama.cpp');

    const prompt = tok.encode(EAB_PROMPT);
    expect(r.stats.forks).toBeGreaterThan(0);
    const byId = new Map(r.tree.map((n) => [n.path, n]));
    expectEabLineage(r, 0.35);
    for (const s of r.samples) {
      // The server tokenized the prompt and decoded the text as forklm's own GGUF tokenizer does.
      const textTokens = s.tokens.at(-1) === 2 ? s.tokens.slice(0, -1) : s.tokens;
      expect(s.text).toBe(decodeContinuation(tok, prompt, textTokens));
      expect((s as unknown as { token_texts: string[] }).token_texts.length).toBe(s.tokens.length);
    }
    // Siblings at one branch point are distinct tokens (drawn without replacement from the top log-probs).
    for (const n of r.tree) {
      const at = new Map<number, number[]>();
      for (const k of n.children.map((c) => byId.get(c)!)) at.set(k.fork_position, [...(at.get(k.fork_position) ?? []), k.tokens[0]]);
      for (const firsts of at.values()) expect(new Set(firsts).size).toBe(firsts.length);
    }
    // Accounting: the rows are the server's (prompt computed + generated); every tree token but each fork's first
    // (drawn by forklm from the top log-probs) is one the server generated; naive is forklm's own count.
    const c = r.server.counters;
    expect(r.stats.token_steps).toBe(c.promptComputed + c.generated);
    expect(c.generatedUsed + r.stats.forks).toBe(r.tree.reduce((a, n) => a + n.tokens.length, 0));
    expect(c.generated).toBeGreaterThanOrEqual(c.generatedUsed);
    expect(r.stats.naive_token_steps).toBe(r.samples.reduce((a, s) => a + prompt.length + s.tokens.length, 0));
    expect(r.stats.naive_pages).toBe(0);
    // The bound on the entropy that 20 top log-probs give is reported, and is a fraction of ln V.
    expect(c.maxEntropyGap).toBeGreaterThan(0);
    expect(c.maxEntropyGap).toBeLessThan(1);
  });

  it('peaks: the local metadata checks; the roots share one request, the prompt copied to two of them', async () => {
    const text = 'Once upon a time';
    const r = json<PeaksResult & ServerInfo>(await cli(['--server', server.url, '--prompt', text, ...PEAKS]));
    const l = json<PeaksResult>(await local(['--prompt', text, ...PEAKS]));
    expect(Object.keys(r).sort()).toEqual([...Object.keys(l), 'server'].sort());
    expect(Object.keys(r.traces[0]).sort()).toEqual(Object.keys(l.traces[0]).sort());
    expect(Object.keys(r.stats).sort()).toEqual(Object.keys(l.stats).sort());
    const prompt = tok.encode(text);
    const byId = new Map(r.traces.map((t) => [t.trace_id, t]));
    for (const t of r.traces) {
      expect(t.num_tokens).toBe(t.token_ids.length);
      expect(t.confs.length).toBe(t.num_tokens);
      expect(t.new_tokens).toBe(t.num_tokens - t.prefix_length);
      expect(t.branch_history.length).toBe(t.depth);
      const textTokens = t.token_ids.at(-1) === 2 ? t.token_ids.slice(0, -1) : t.token_ids;
      expect(t.text).toBe(tok.decode(textTokens));
      if (t.parent_id === null) continue;
      const parent = byId.get(t.parent_id)!;
      expect(t.depth).toBe(parent.depth + 1);
      expect(t.prefix_length).toBe(t.branch_point);
      expect(t.token_ids.slice(0, t.branch_point)).toEqual(parent.token_ids.slice(0, t.branch_point));
      expect(t.branch_history.at(-1)!.confidence).toBeGreaterThanOrEqual(5);
    }
    const roots = r.traces.filter((t) => t.depth === 0);
    expect(roots.length).toBe(3);
    for (const root of roots) {
      const peaks = findPeaks(root.confs, peakOptions({ tokens: root.token_ids, branchPoint: 0, prefixLength: 0 }, r.params));
      expect(root.children.length > 0).toBe(peaks.length > 0);
    }
    const branches = r.traces.filter((t) => t.depth > 0);
    expect(branches.length).toBeGreaterThan(0);
    expect(r.stats.forks).toBe(branches.length);
    // The three roots went out as one n_cmpl request: completion 0 computed the prompt (or found it cached), and
    // llama.cpp copied it to the two others (their counts are `promptCopied`, not computed); each peak's two branches
    // share a request the same way.
    const c = r.server.counters;
    expect(c.promptCopied).toBeGreaterThanOrEqual(2 * prompt.length);
  });

  it('greedy: the local CLI\'s tokens and text; special-token text stays text unless --parse-special, as locally', async () => {
    for (const extra of [[], ['--parse-special']]) {
      const args = ['--mode', 'greedy', '--prompt', 'Lily said </s> and she', '--max-new-tokens', '32', '--json', ...extra];
      const r = json<{ tokens: number[]; text: string; token_texts: string[]; server: object }>(await cli(['--server', server.url, ...args]));
      const l = json<{ tokens: number[]; text: string; token_texts: string[] }>(await local(args));
      expect(r.tokens).toEqual(l.tokens);
      expect(r.text).toBe(l.text);
      expect(r.token_texts).toEqual(l.token_texts);
      expect(Object.keys(r).sort()).toEqual([...Object.keys(l), 'server'].sort());
    }
  });

  it('--server-kind openai: the same document through /v1/completions, texts decoded as forklm does', async () => {
    const r = json<EabResult & ServerInfo>(await cli(['--server', `${server.url}/v1`, '--server-kind', 'openai', '--prompt', EAB_PROMPT, ...EAB, '--max-new-tokens', '24']));
    expect(r.server.kind).toBe('openai');
    expect(r.stats.forks).toBeGreaterThan(0);
    const prompt = tok.encode(EAB_PROMPT);
    for (const s of r.samples) expect(s.text).toBe(decodeContinuation(tok, prompt, s.tokens.at(-1) === 2 ? s.tokens.slice(0, -1) : s.tokens));
    expect(r.stats.token_steps).toBe(r.server.counters.promptComputed + r.server.counters.generated);
  });

  it('refuses with typed errors: --model beside --server, --timeout without it, a server without log-probs, nothing listening, no answer', async () => {
    const both = await cli(['--server', server.url, '--model', 'stories260K']);
    expect(both.code).toBe(2);
    expect(both.err).toMatch(/either --model or --server/);
    expect((await cli(['--timeout', '5'])).code).toBe(2);
    expect((await cli(['--server', 'ftp://127.0.0.1:1'])).code).toBe(2); // only http(s) servers
    const weights = await cli(['--server', server.url, '--weights', 'f16']); // the server holds the weights
    expect(weights.code).toBe(2);
    expect(weights.err).toMatch(/--weights applies to local runs only/);

    const noProbs = await fake((res) => {
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.end(`data: ${JSON.stringify({ index: 0, tokens: [5], stop: true })}\n\n`);
    });
    const a = await cli(['--server', noProbs, '--mode', 'eab', '--json']);
    expect(a.code).toBe(1);
    expect(JSON.parse(a.out).error.code).toBe('REMOTE_FEATURE');

    const port = await freePort();
    const t0 = Date.now();
    const b = await cli(['--server', `http://127.0.0.1:${port}`, '--json']);
    expect(b.code).toBe(1);
    expect(JSON.parse(b.out).error).toMatchObject({ code: 'REMOTE_SERVER' });
    expect(JSON.parse(b.out).error.message).toMatch(/Could not reach/);
    // Three retries with backoff 200, 400, 800 ms (+ up to 50% jitter): about 2 s, not a hang.
    expect(Date.now() - t0).toBeLessThan(10_000);

    const silent = await fake(() => undefined);
    const t1 = Date.now();
    const c = await cli(['--server', silent, '--timeout', '0.2']);
    expect(c.code).toBe(1);
    expect(c.err).toMatch(/sent no response within 200 ms/);
    // Four attempts of 0.2 s plus the backoff (0.2 + 0.4 + 0.8 s, + jitter): well under 10 s.
    expect(Date.now() - t1).toBeLessThan(10_000);

    // A web server that is no inference server: the 404's HTML is not echoed; the message points at the URL and kind.
    const web = createServer((req, res) => void (req.resume(), res.writeHead(404, { 'Content-Type': 'text/html' }).end('<!DOCTYPE HTML><html><body>Error 404</body></html>')));
    fakes.push(web);
    await new Promise<void>((r) => web.listen(0, '127.0.0.1', () => r()));
    const d = await cli(['--server', `http://127.0.0.1:${(web.address() as { port: number }).port}`, '--json']);
    expect(d.code).toBe(1);
    expect(JSON.parse(d.out).error.message).toMatch(/HTTP 404: \(an HTML page\)\. .*--server-kind/);
  });

  // Both runs branch at every step (threshold 0) and generate up to 480 tokens per path: seconds of work, cancelled
  // at its first fork (the '.' the terminal output prints), so the cancel comes mid-run however fast the machine.
  const LONG = ['--mode', 'eab', '--max-new-tokens', '480', '--entropy-threshold', '0', '--max-paths', '8'];

  it('a cancelled run (ctx.signal) ends with CANCELLED and exit 130, and the server\'s slots go idle', async () => {
    const abort = new AbortController();
    const out: string[] = [];
    const err: string[] = [];
    const io = { stdout: (t: string) => void out.push(t), stderr: (t: string) => (err.push(t), t.includes('.') && abort.abort()), env: {}, signal: abort.signal };
    const code = await main(['generate', '--server', server.url, ...LONG], io);
    expect(code, err.join('')).toBe(130);
    expect(abort.signal.aborted).toBe(true);
    expect(err.join('')).toMatch(/forklm: Cancelled: the in-flight requests to the server were aborted/);
    expect(out.join('')).toBe('');
    await waitFor(async () => (await slots()).every((s) => !s.is_processing), 5000);
  });

  it('Ctrl-C: SIGINT to a running forklm process aborts its requests and exits 130', async () => {
    const script = `const { main } = await import(${JSON.stringify(resolve(repoRoot, 'src/cli/main.ts'))}); process.exit(await main(process.argv.slice(1)));`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, 'generate', '--server', server.url, ...LONG], {
      cwd: repoRoot,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr!.on('data', (d) => {
      if (err === '' && String(d).includes('.')) child.kill('SIGINT');
      err += d;
    });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      expect(await exited, err).toBe(130);
      expect(err).toMatch(/cancelling the requests to the server/);
      await waitFor(async () => (await slots()).every((s) => !s.is_processing), 5000);
    } finally {
      child.kill('SIGKILL');
    }
  });
});

async function slots(): Promise<{ is_processing: boolean }[]> {
  return (await (await fetch(`${server.url}/slots`)).json()) as { is_processing: boolean }[];
}

/** Polls `cond` every 20 ms; fails the test when it is still false after `ms`. */
async function waitFor(cond: () => Promise<boolean>, ms: number): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > ms) throw new Error(`condition still false after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A stand-in llama.cpp server: model info, and `completion` for POST /completion. */
async function fake(completion: (res: import('node:http').ServerResponse) => void): Promise<string> {
  const srv = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const reply = (v: unknown) => res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(v));
      if (req.url === '/v1/models') return reply({ data: [{ id: 'fake', meta: { n_vocab: 32, n_ctx: 64 } }] });
      if (req.url === '/props') return reply({ default_generation_settings: { n_ctx: 64 }, eos_token: '</s>' });
      if (req.url === '/tokenize') return reply({ tokens: [2] });
      if (req.url === '/completion') return completion(res);
      res.writeHead(404).end();
    });
  });
  fakes.push(srv);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  return `http://127.0.0.1:${(srv.address() as { port: number }).port}`;
}
