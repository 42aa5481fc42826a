// How the remote engine fails: a real llama-server killed mid-run gives a typed error and no hang; servers lacking a
// feature, answering 503, breaking a stream or never answering (small stand-ins on node:http) give typed errors,
// retries with backoff, a resumed stream, or a timeout.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { CancelledError, RemoteFeatureError, RemoteServerError } from '../../src/errors.js';
import { RemoteEngine } from '../../src/remote/index.js';
import { startLlamaServer } from './llama_server.js';

type Handler = (req: IncomingMessage, body: Record<string, unknown>, res: ServerResponse) => void;

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((r) => { s.closeAllConnections(); s.close(() => r()); })));
});

/** A stand-in server: model info as llama.cpp reports it, and `completion` for POST /completion. */
async function fakeServer(completion: Handler): Promise<string> {
  const srv = createServer((req, res) => {
    let raw = '';
    req.on('data', (d) => (raw += d));
    req.on('end', () => {
      const json = (v: unknown) => res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(v));
      if (req.url === '/v1/models') return json({ data: [{ id: 'fake', meta: { n_vocab: 32, n_ctx: 64 } }] });
      if (req.url === '/props') return json({ default_generation_settings: { n_ctx: 64 }, eos_token: '</s>' });
      if (req.url === '/tokenize') return json({ tokens: [2] });
      if (req.url === '/completion') return completion(req, raw ? JSON.parse(raw) : {}, res);
      res.writeHead(404).end();
    });
  });
  servers.push(srv);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  return `http://127.0.0.1:${(srv.address() as { port: number }).port}`;
}

/** One llama.cpp-shaped streamed token chunk. */
function chunk(id: number, withProbs = true): string {
  const probs = { id, logprob: -0.5, top_logprobs: [{ id, logprob: -0.5 }, { id: (id + 1) % 32, logprob: -1.5 }] };
  return `data: ${JSON.stringify({ index: 0, tokens: [id], stop: false, ...(withProbs ? { completion_probabilities: [probs] } : {}) })}\n\n`;
}

function sse(res: ServerResponse): ServerResponse {
  return res.writeHead(200, { 'Content-Type': 'text/event-stream' });
}

describe('remote engine failures', () => {
  it('gives a typed error, and does not hang, when the server dies mid-run', async () => {
    const server = await startLlamaServer({ slots: 4 });
    try {
      const remote = await RemoteEngine.connect(server.url, { retries: 2, backoffMs: 50, timeoutMs: 5000 });
      const s = remote.session();
      for (let root = 0; root < 3; root++) s.createPath([1, 403, 407], { temperature: 1, seed: 9 }, { reserve: 500, root });
      for (let i = 0; i < 5; i++) expect((await s.step())!.results.length).toBe(3);
      await server.kill();
      const t0 = Date.now();
      let err: unknown = null;
      try {
        // The tokens already received are handed out; the step that needs more fails.
        for (let i = 0; i < 500; i++) await s.step();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(RemoteServerError);
      expect((err as RemoteServerError).reason).toBe('unreachable');
      // Three open attempts per resume, two resumes, backoff 50-150 ms: well under 5 s.
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(s.liveCount()).toBe(0);
      await expect(s.step()).rejects.toBe(err);
    } finally {
      await server.stop();
    }
  });

  it('refuses at connect a server without log-probs, or without token-id prompts', async () => {
    const noProbs = await fakeServer((_, __, res) => sse(res).end(chunk(5, false)));
    await expect(RemoteEngine.connect(noProbs)).rejects.toThrow(RemoteFeatureError);
    await expect(RemoteEngine.connect(noProbs)).rejects.toMatchObject({ feature: 'logprobs' });
    const noTokens = await fakeServer((_, body, res) => {
      if (Array.isArray(body.prompt)) return res.writeHead(400).end('{"error":{"message":"prompt must be a string"}}');
      sse(res).end(chunk(5));
    });
    await expect(RemoteEngine.connect(noTokens)).rejects.toMatchObject({ feature: 'token_prompts' });
  });

  it('retries 503 with backoff, and resumes a stream that broke after some tokens', async () => {
    let calls = 0;
    const prompts: number[][] = [];
    const url = await fakeServer((_, body, res) => {
      calls++;
      prompts.push(body.prompt as number[]);
      if (calls === 2 || calls === 3) return res.writeHead(503).end('busy');
      const n = body.n_predict as number;
      const start = (body.prompt as number[]).length;
      res = sse(res);
      // The first run request breaks off after two tokens (connection reset).
      if (calls === 4) {
        res.write(chunk(10));
        res.write(chunk(11));
        setTimeout(() => res.socket?.destroy(), 20);
        return;
      }
      for (let i = 0; i < n; i++) res.write(chunk((start + i) % 32));
      res.end(`data: ${JSON.stringify({ index: 0, stop: true, stop_type: 'limit', timings: { prompt_n: 1, cache_n: start - 1, predicted_n: n } })}\n\n`);
    });
    const remote = await RemoteEngine.connect(url, { retries: 3, backoffMs: 20 });
    const s = remote.session();
    const t0 = Date.now();
    s.createPath([1, 2, 3], { temperature: 0 }, { reserve: 6 });
    const got: number[] = [];
    for (let i = 0; i < 6; i++) got.push((await s.step())!.results[0].token);
    // Two 503s (backoff 20-30 ms then 40-60 ms), then tokens 10, 11, the break, and a new request from 5 tokens on.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(60);
    expect(got).toEqual([10, 11, 5, 6, 7, 8]);
    expect(prompts[prompts.length - 1]).toEqual([1, 2, 3, 10, 11]);
    expect(s.remoteCounters().retries).toBe(3);
    s.close();
  });

  it('times out a server that never answers, or stalls mid-stream', async () => {
    let calls = 0;
    const url = await fakeServer((_, __, res) => {
      calls++;
      if (calls === 1) return sse(res).end(chunk(5));
      // The first run request never answers; the second sends one token and stalls.
      if (calls === 3) sse(res).write(chunk(6));
    });
    const remote = await RemoteEngine.connect(url, { retries: 0, timeoutMs: 300 });
    const s = remote.session();
    s.createPath([1, 2], { temperature: 0 }, { reserve: 4 });
    const t0 = Date.now();
    await expect(s.step()).rejects.toMatchObject({ reason: 'timeout' });
    expect(Date.now() - t0).toBeLessThan(3000);
    const s2 = remote.session();
    s2.createPath([1, 2], { temperature: 0 }, { reserve: 4 });
    expect((await s2.step())!.results[0].token).toBe(6);
    await expect(s2.step()).rejects.toMatchObject({ reason: 'timeout' });
  });

  it('aborting the engine\'s signal aborts every in-flight request and rejects the waiting step with CancelledError', async () => {
    let open = 0;
    let closed = 0;
    const url = await fakeServer((req, body, res) => {
      // The probe at connect gets its token; every run request one token, then nothing, its stream held open.
      if (body.n_predict === 1) return sse(res).end(chunk(5));
      open++;
      sse(res).write(chunk(6));
      res.on('close', () => closed++);
    });
    const abort = new AbortController();
    const remote = await RemoteEngine.connect(url, { signal: abort.signal, timeoutMs: 60_000 });
    const s = remote.session();
    // Three prompts, so three requests (one prompt's roots would share one n_cmpl request).
    for (let i = 0; i < 3; i++) s.createPath([1, 2 + i], { temperature: 1, seed: 1 }, { reserve: 10 });
    expect((await s.step())!.results.map((r) => r.token)).toEqual([6, 6, 6]);
    const waiting = s.step();
    setTimeout(() => abort.abort(), 50);
    const t0 = Date.now();
    await expect(waiting).rejects.toBeInstanceOf(CancelledError);
    // Well inside the 60 s timeout: the abort, not a timeout, ended the wait.
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(open).toBe(3);
    for (let i = 0; i < 100 && closed < 3; i++) await new Promise((r) => setTimeout(r, 20));
    expect(closed).toBe(3);
    expect(s.liveCount()).toBe(0);
    await expect(s.step()).rejects.toBeInstanceOf(CancelledError);
  });
});
