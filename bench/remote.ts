// The many-samples job of issue 15 (16 samples of 64 tokens after one 256-token prompt, stories260K) through the
// remote engine on llama-server (../shared/bin, 16 slots), beside the server driven directly and forklm
// local on llvmpipe (fork-at-0: the prompt once, 16 paths batched). Every mode of every round gets its own prompt (the
// story with a different second token), so no server cache carries a prompt from one run to the next; modes are
// interleaved over the rounds and the best wall clock is kept, as issue 15 measured.
//
//   server        one POST /completion with n_cmpl 16, n_predict 64, no log-probs, not streamed: llama.cpp alone
//   remote        forklm's RemoteEngine: 16 roots of one prompt (one streamed n_cmpl request with 20 top log-probs per
//                 token), stepped until each has 64 tokens: what a branching controller pays for its token stats
//   local         forklm on llvmpipe, fork-at-0 (bench/common/eab.ts)
import os from 'node:os';
import { join } from 'node:path';
import { startLlamaServer } from '../scripts/llama_server.js';
import { createGpu } from '../src/gpu/device.js';
import { RemoteEngine } from '../src/remote/index.js';
import { forkAtZero } from './common/eab.js';
import { benchModel, engineFor, log, machine, modelsDir, promptTokens } from './bench_models.js';
import { round4 } from './common/timing.js';

const N = 16;
const MAX_NEW = 64;
const PROMPT = 256;
const ROUNDS = 3;
/** llama.cpp threads spin at their barriers: on a loaded 2-core machine 2 threads ran the job 7x slower than 1 (29 s vs
 * 3.8 s at load average 17), so 1 unless FORKLM_BENCH_SERVER_THREADS says otherwise. */
const THREADS = Number(process.env.FORKLM_BENCH_SERVER_THREADS ?? 1);

async function serverAlone(url: string, prompt: number[]): Promise<object> {
  const t0 = performance.now();
  const res = await fetch(`${url}/completion`, {
    method: 'POST',
    body: JSON.stringify({ prompt, n_predict: MAX_NEW, n_cmpl: N, seed: 11, temperature: 1, samplers: ['temperature', 'top_p'], top_p: 1, ignore_eos: false }),
  });
  const out = (await res.json()) as { timings: { prompt_n: number; cache_n: number; predicted_n: number } }[];
  const ms = performance.now() - t0;
  return { ms: round4(ms), generated: out.reduce((a, x) => a + x.timings.predicted_n, 0), prompt_computed: out[0].timings.prompt_n };
}

async function viaRemote(remote: RemoteEngine, prompt: number[]): Promise<object> {
  const t0 = performance.now();
  const s = remote.session();
  for (let root = 0; root < N; root++) s.createPath(prompt, { temperature: 1, topP: 1, seed: 11 }, { reserve: MAX_NEW, root });
  const counts = new Map<number, number>();
  for (;;) {
    const r = await s.step();
    if (!r) break;
    for (const x of r.results) {
      const n = (counts.get(x.pathId) ?? 0) + 1;
      counts.set(x.pathId, n);
      if (n >= MAX_NEW || remote.info.eosTokenIds.includes(x.token)) s.finish(x.pathId);
    }
  }
  const ms = performance.now() - t0;
  const c = s.remoteCounters();
  s.close();
  return {
    ms: round4(ms),
    generated: c.generatedUsed,
    requests: c.requests,
    prompt_computed: c.promptComputed,
    prompt_cached: c.promptCached,
    prompt_copied: c.promptCopied,
    server_generated: c.generated,
  };
}

export async function run(): Promise<object> {
  const model = await benchModel('stories260K');
  const base = promptTokens(model, PROMPT);
  // Round r, mode m: the story with token 1 replaced, so no two runs share more than BOS.
  const promptFor = (r: number, m: number) => [base[0], 300 + r * 3 + m, ...base.slice(2)];
  const loadBefore = round4(os.loadavg()[0]);
  const server = await startLlamaServer({ model: join(modelsDir(), 'stories260K/gguf/stories260K.gguf'), slots: N, slotCtx: 512, threads: THREADS });
  const gpu = await createGpu({ adapter: 'llvmpipe' });
  try {
    // Every path runs its whole 64 tokens: no lookahead limit needed (one request for the job, as the server alone).
    const remote = await RemoteEngine.connect(server.url, { lookahead: Infinity });
    const engine = await engineFor(model, gpu, { kvPages: 512, maxSamples: 64 });
    const rows: Record<string, object[]> = { server: [], remote: [], local: [] };
    for (let r = 0; r < ROUNDS; r++) {
      rows.server.push(await serverAlone(server.url, promptFor(r, 0)));
      rows.remote.push(await viaRemote(remote, promptFor(r, 1)));
      const l = await forkAtZero(engine, promptFor(r, 2), N, MAX_NEW);
      rows.local.push({ ms: round4(l.ms), generated: l.generated, token_steps: l.tokenSteps });
      log(`remote round ${r}: server ${JSON.stringify(rows.server[r])} remote ${JSON.stringify(rows.remote[r])} local ${JSON.stringify(rows.local[r])}`);
    }
    const best = (xs: object[]) => Math.min(...xs.map((x) => (x as { ms: number }).ms));
    return {
      job: `${N} samples of ${MAX_NEW} tokens after a ${PROMPT}-token prompt, stories260K, temperature 1; best of ${ROUNDS} interleaved rounds`,
      server: `llama-server (../shared/bin, llama.cpp v0.5.0) -t ${THREADS} -np ${N} -c ${N * 512}, f16 KV cache (its default)`,
      machine: machine(),
      load_average_1m: [loadBefore, round4(os.loadavg()[0])],
      best_ms: { server: best(rows.server), remote: best(rows.remote), local_llvmpipe: best(rows.local) },
      rounds: rows,
    };
  } finally {
    gpu.destroy();
    await server.stop();
  }
}
