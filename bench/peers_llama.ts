// llama.cpp beside forklm in the peers benchmark: the server (../shared/bin/llama-server, its README) for the
// many-samples job as one request with n = 16 (the prompt computed once and copied to 16 slots, decoded as a batch)
// and for single-stream decode as it reports it, and node-llama-cpp (the same llama.cpp, in process) for
// single-stream decode. Every server run gets its own prompt (the story with a different second token), so no prompt
// comes from the server's cache.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { log, modelsDir } from './bench_models.js';
import { round4 } from './common/timing.js';
import { peersDir } from './peers_install.js';

export interface Job {
  samples: number;
  maxNew: number;
  prompt: number;
  repeats: number;
}

const GGUF = () => join(modelsDir(), 'stories260K/gguf/stories260K.gguf');

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

async function startServer(threads: number, slots: number, gguf: string): Promise<{ url: string; stop: () => Promise<void> }> {
  const bin = process.env.FORKLM_LLAMA_SERVER ?? join(modelsDir(), '../bin/llama-server');
  const port = await freePort();
  const args = ['-m', gguf, '--host', '127.0.0.1', '--port', String(port), '-t', String(threads), '-c', String(slots * 512), '-np', String(slots), '--no-warmup'];
  const child = spawn(bin, args, { stdio: 'ignore' });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${url}/health`)).ok) break;
    } catch {
      // not listening yet
    }
    if (i > 300 || child.exitCode !== null) {
      child.kill('SIGTERM');
      throw new Error(`llama-server at ${bin} did not start`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

interface Timings {
  prompt_n: number;
  predicted_n: number;
  predicted_per_second: number;
}

async function complete(url: string, body: object): Promise<{ ms: number; out: { timings: Timings }[] }> {
  const t0 = performance.now();
  const res = await fetch(`${url}/completion`, { method: 'POST', body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`llama-server answered ${res.status}: ${await res.text()}`);
  const json = (await res.json()) as { timings: Timings } | { timings: Timings }[];
  return { ms: performance.now() - t0, out: Array.isArray(json) ? json : [json] };
}

/** An engine of the peers job, open for its timed rounds (bench/peers.ts runs the engines' rounds interleaved). */
export interface OpenPeer {
  /** Runs the job's round r and records it, unless `timed` is false (a warm-up round, recorded nowhere). */
  round(r: number, timed?: boolean): Promise<void>;
  /** What comes after the rounds (decode rates and the like), frees the engine, returns its record. */
  finish(): Promise<object>;
}

/**
 * llama-server with `threads` threads on stories260K's GGUF or `opts.gguf`, started and warmed up, for the job's
 * rounds; finish() measures single-stream decode (unless `opts.decode` is false) and, with `opts.greedy`, the first
 * `opts.greedy.length` greedy tokens after `opts.greedy.prompt` (the peers bench compares them with forklm's to show
 * both run the same weights), then stops the server.
 */
export async function openLlamaServer(
  base: number[],
  threads: number,
  job: Job,
  opts: { gguf?: string; decode?: boolean; greedy?: { prompt: number[]; length: number } } = {},
): Promise<OpenPeer> {
  const server = await startServer(threads, job.samples, opts.gguf ?? GGUF());
  const promptFor = (r: number) => [base[0], 300 + r, ...base.slice(2)];
  try {
    await complete(server.url, { prompt: promptFor(99), n_predict: 4, n_cmpl: job.samples });
  } catch (e) {
    await server.stop();
    throw e;
  }
  const jobMs: number[] = [];
  let generated = 0;
  let promptComputed = 0;
  return {
    async round(r, timed = true) {
      const { ms, out } = await complete(server.url, {
        prompt: promptFor(r),
        n_predict: job.maxNew,
        n_cmpl: job.samples,
        seed: 11 + r,
        temperature: 1,
        top_p: 1,
        samplers: ['temperature', 'top_p'],
      });
      if (!timed) return;
      jobMs.push(round4(ms));
      generated = out.reduce((a, x) => a + x.timings.predicted_n, 0);
      promptComputed = out.reduce((a, x) => a + x.timings.prompt_n, 0);
      log(`llama-server -t ${threads}: job ${ms.toFixed(0)} ms`);
    },
    async finish() {
      try {
        let greedy: number[] | undefined;
        if (opts.greedy) {
          const res = await fetch(`${server.url}/completion`, {
            method: 'POST',
            body: JSON.stringify({ prompt: opts.greedy.prompt, n_predict: opts.greedy.length, temperature: 0, ignore_eos: true, return_tokens: true }),
          });
          greedy = ((await res.json()) as { tokens: number[] }).tokens;
        }
        // Single stream: one greedy completion of maxNew tokens; the server's own decode rate, and the wall clock.
        const rates: number[] = [];
        for (let r = 0; r < (opts.decode === false ? 0 : job.repeats); r++) {
          const { out } = await complete(server.url, { prompt: promptFor(50 + r), n_predict: job.maxNew, temperature: 0, ignore_eos: true });
          rates.push(out[0].timings.predicted_per_second);
        }
        return {
          threads,
          job_ms: jobMs,
          job_generated: generated,
          prompt_tokens_computed: promptComputed,
          ...(rates.length ? { decode_tok_s_runs: rates.map(round4), decode_tok_s: round4(Math.max(...rates)) } : {}),
          ...(greedy ? { greedy_tokens: greedy } : {}),
        };
      } finally {
        await server.stop();
      }
    },
  };
}

/** `repeats` timed rounds of one open engine alone, then its record (finish(), also when a round throws). */
export async function roundsAlone(peer: OpenPeer, repeats: number): Promise<object> {
  try {
    for (let r = 0; r < repeats; r++) await peer.round(r);
  } catch (e) {
    await peer.finish().catch(() => undefined);
    throw e;
  }
  return peer.finish();
}

/** The job's `job.repeats` rounds on llama-server alone, then finish() (openLlamaServer). */
export async function llamaServer(
  base: number[],
  threads: number,
  job: Job,
  opts: { gguf?: string; decode?: boolean; greedy?: { prompt: number[]; length: number } } = {},
): Promise<object> {
  return roundsAlone(await openLlamaServer(base, threads, job, opts), job.repeats);
}

interface NodeLlamaCpp {
  getLlama(o: object): Promise<{
    loadModel(o: { modelPath: string }): Promise<{
      createContext(o: object): Promise<{ getSequence(): { evaluate(t: number[], o: object): AsyncIterable<number> }; dispose(): Promise<void> }>;
      dispose(): Promise<void>;
    }>;
    dispose(): Promise<void>;
  }>;
}

/** Single-stream greedy decode of maxNew tokens after the prompt, in process, 1 thread: tokens per second. */
export async function nodeLlamaCpp(prompt: number[], job: Job): Promise<object> {
  const mod = (await import(join(peersDir(), 'node_modules/node-llama-cpp/dist/index.js'))) as NodeLlamaCpp;
  const llama = await mod.getLlama({ gpu: false, build: 'never', skipDownload: true, logLevel: 'error' });
  const model = await llama.loadModel({ modelPath: GGUF() });
  try {
    const rates: number[] = [];
    for (let r = 0; r < job.repeats; r++) {
      const ctx = await model.createContext({ contextSize: 1024, threads: 1, batchSize: 512 });
      const seq = ctx.getSequence();
      let n = 0;
      let first = 0;
      for await (const _ of seq.evaluate([prompt[0], 300 + r, ...prompt.slice(2)], { temperature: 0 })) {
        if (n === 0) first = performance.now();
        if (++n > job.maxNew) break;
      }
      rates.push((job.maxNew / (performance.now() - first)) * 1000);
      await ctx.dispose();
    }
    return { threads: 1, decode_tok_s_runs: rates.map(round4), decode_tok_s: round4(Math.max(...rates)) };
  } finally {
    await model.dispose();
    await llama.dispose();
  }
}
