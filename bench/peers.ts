// `npm run bench -- peers`: issue 15's comparison in one run. The many-samples job (stories260K, 16 samples of 64
// tokens after the same 256-token prompt, temperature 1) and single-stream decode, with
//   forklm      Node on llvmpipe: EAB exact-N (num_samples 16, threshold 0.4) and fork-at-0; greedy decode of one path
//               (llvmpipe's thread count as Engine.fromWeights picks it for the model: gpu/cpu_threads.ts);
//               the same on SwiftShader
//   llama.cpp   ../shared/bin/llama-server, one request with n = 16, 1 and 2 threads; its decode rate for one stream;
//               node-llama-cpp (the same llama.cpp in process) for single-stream decode
//   page        headless Chromium on llvmpipe's GL route: forklm (EAB, fork-at-0, decode) and wllama (llama.cpp in
//               WebAssembly, on the CPU: see peers_browser.ts) in the same page; 16 requests, as it returns one
//               choice per request, one after another (prompt reused) or all at once in 16 slots; 1 and 2 threads
//   shape       the same job on the SmolLM2-135M shape (random weights) with forklm on llvmpipe and llama-server on
//               the same weights as an F32 GGUF (peers_shape.ts), one timed run each, in a process of its own (the
//               llvmpipe thread count is per process, and each model gets the count Engine.fromWeights would pick)
//   transformers  needs torch and transformers from PyPI, which this machine's package mirror does not serve (npm and
//               Debian only): recorded as unavailable, with the reason
// Best of `repeats` per engine (the median beside it); forklm on llvmpipe and llama-server on 1 and 2 threads run their
// rounds interleaved after one untimed round each (round r runs each once), so the machine's drifts in speed fall on
// all three alike. Ratios and
// issue 15's targets are in the JSON; the chart is bench/results/peers.svg (peers_chart.ts). Peers come from a
// bench-only install (peers_install.ts).
// FORKLM_BENCH_QUICK=1 runs tiny counts; FORKLM_BENCH_PEERS_SKIP (comma list of node, swiftshader, server,
// node-llama-cpp, page, shape) leaves parts out.
import os from 'node:os';
import { autoCpuThreads } from '../src/gpu/cpu_threads.js';
import { createGpu } from '../src/gpu/device.js';
import type { Engine } from '../src/engine.js';
import { specFromLlamaConfig } from '../src/model/from_llama.js';
import { benchModel, engineFor, errorText, log, machine, promptTokens, QUICK } from './bench_models.js';
import { promptRun } from './common/decode.js';
import { eab, forkAtZero } from './common/eab.js';
import { round4 } from './common/timing.js';
import { startLoadMeter } from './harness.js';
import { inPage } from './peers_browser.js';
import { installPeers } from './peers_install.js';
import { nodeLlamaCpp, openLlamaServer, roundsAlone, type OpenPeer } from './peers_llama.js';
import { shapeJobInChild } from './peers_shape.js';
import type { AdapterChoice } from '../src/gpu/adapter_choice.js';

const JOB = QUICK ? { samples: 4, maxNew: 8, prompt: 32, repeats: 1, threshold: 0.4 } : { samples: 16, maxNew: 64, prompt: 256, repeats: 3, threshold: 0.4 };
const SKIP = new Set((process.env.FORKLM_BENCH_PEERS_SKIP ?? '').split(',').map((s) => s.trim()));

const best = (xs: number[] | undefined): number | null => (xs && xs.length ? Math.min(...xs) : null);
const median = (xs: number[] | undefined): number | null => {
  if (!xs || !xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const ratio = (a: number | null | undefined, b: number | null | undefined): number | null => (a && b ? round4(a / b) : null);

async function part<T>(name: string, f: () => Promise<T>): Promise<T | { error: string } | { skipped: true }> {
  if (SKIP.has(name)) return { skipped: true };
  try {
    return await f();
  } catch (e) {
    log(`peers: ${name} failed: ${errorText(e)}`);
    return { error: errorText(e) };
  }
}

/** forklm in Node on `adapter`, its engine built and every kernel compiled, for the job's rounds (OpenPeer). */
async function openForklmNode(prompt: number[], adapter: AdapterChoice): Promise<OpenPeer> {
  const model = await benchModel('stories260K');
  // As Engine.fromWeights picks when not told (gpu/cpu_threads.ts): for stories260K, llvmpipe's kernels on the
  // submitting thread. The first llvmpipe device of a process decides, hence the shape job's own process.
  const cpuThreads = adapter === 'llvmpipe' ? autoCpuThreads(specFromLlamaConfig(model.weights)) : undefined;
  const gpu = await createGpu({ adapter, cpuThreads });
  let base: Engine;
  try {
    base = await engineFor(model, gpu, { kvPages: 512, maxSamples: 64 });
    await eab(base, prompt, JOB.samples, 8, JOB.threshold);
    await forkAtZero(base, prompt, JOB.samples, 4);
  } catch (e) {
    gpu.destroy();
    throw e;
  }
  const eabMs: number[] = [];
  const f0Ms: number[] = [];
  let generated = 0;
  return {
    async round(r, timed = true) {
      const e = await eab(base, prompt, JOB.samples, JOB.maxNew, JOB.threshold);
      if (!timed) {
        await forkAtZero(base, prompt, JOB.samples, JOB.maxNew);
        return;
      }
      eabMs.push(round4(e.mode.ms));
      generated = e.mode.generated;
      f0Ms.push(round4((await forkAtZero(base, prompt, JOB.samples, JOB.maxNew)).ms));
      log(`forklm node (${adapter}): eab ${eabMs[r]} ms, fork-at-0 ${f0Ms[r]} ms`);
    },
    async finish() {
      try {
        const d = await promptRun(base, prompt, JOB.maxNew);
        base.destroy();
        const ms = median(d.decode)!;
        return { adapter: gpu.name, cpu_threads: gpu.cpuThreads, eab_ms: eabMs, eab_generated: generated, fork_at_0_ms: f0Ms, decode_ms_per_token_median: round4(ms), decode_tok_s: round4(1000 / ms) };
      } finally {
        gpu.destroy();
      }
    },
  };
}

/**
 * The job's rounds of several engines interleaved: every engine is opened first and runs one untimed round (so the
 * first timed round of none of them follows the others' start-up), then round r runs each engine once, starting one
 * engine later each round, so that the machine's drifts in speed (1.5x within minutes here) fall on every engine
 * alike. An engine that fails (to open or in a round) is recorded with its error and the rounds it had finished (or
 * skipped by FORKLM_BENCH_PEERS_SKIP), and the others go on. Returns each engine's record, in the order given.
 */
async function interleaved(engines: [string, () => Promise<OpenPeer>][]): Promise<(Rec | { skipped: true })[]> {
  const open: (OpenPeer | Rec | { skipped: true })[] = [];
  for (const [name, f] of engines) {
    if (SKIP.has(name)) open.push({ skipped: true });
    else open.push(await f().catch((e: unknown) => (log(`peers: ${name} failed: ${errorText(e)}`), { error: errorText(e) })));
  }
  const isOpen = (p: OpenPeer | Rec | { skipped: true }): p is OpenPeer => typeof (p as OpenPeer).round === 'function';
  const run = async (i: number, r: number, timed: boolean) => {
    const p = open[i];
    if (!isOpen(p)) return;
    try {
      await p.round(r, timed);
    } catch (e) {
      log(`peers: ${engines[i][0]} failed: ${errorText(e)}`);
      open[i] = { ...((await p.finish().catch(() => ({}))) as Rec), error: errorText(e) };
    }
  };
  for (let i = 0; i < engines.length; i++) await run(i, JOB.repeats, false);
  for (let r = 0; r < JOB.repeats; r++) {
    for (let k = 0; k < engines.length; k++) await run((r + k) % engines.length, r, true);
  }
  const out: (Rec | { skipped: true })[] = [];
  for (let i = 0; i < engines.length; i++) {
    const p = open[i];
    if (!isOpen(p)) out.push(p as Rec | { skipped: true });
    else out.push((await p.finish().catch((e: unknown) => ({ error: errorText(e) }))) as Rec);
  }
  return out;
}

type Rec = Record<string, unknown> & { error?: string };

/** The figures a run's JSON leads with (best and median wall clocks, decode rates, ratios, issue 15's targets). */
export function derive(node: Rec, server1: Rec, server2: Rec, nlc: Rec, page: Rec, loadBefore: number | null = null, swift: Rec = {}, shape: Rec = {}): object {
  const ms = (r: Rec | undefined, k: string) => best(r?.[k] as number[] | undefined);
  const shapeServers = (shape.llama_server as Rec[] | undefined) ?? [];
  const pf = page.forklm as Rec | undefined;
  // A wllama run counts when it finished every repeat (no error, within its time budget).
  const wl = ((page.wllama as Rec[] | undefined) ?? []).filter((w) => !w.error && !w.over_budget_s && (w.job_ms as number[] | undefined)?.length);
  const wlBest = wl.length ? Math.min(...wl.map((w) => best(w.job_ms as number[])!)) : null;
  const wlRates = wl.map((w) => w.decode_tok_s).filter((x): x is number => typeof x === 'number');
  const wlDecode = wlRates.length ? Math.max(...wlRates) : null;
  const best_ms = {
    forklm_node_eab: ms(node, 'eab_ms'),
    forklm_node_fork_at_0: ms(node, 'fork_at_0_ms'),
    llama_server_1_thread: ms(server1, 'job_ms'),
    llama_server_2_threads: ms(server2, 'job_ms'),
    forklm_page_eab: ms(pf, 'eab_ms'),
    forklm_page_fork_at_0: ms(pf, 'fork_at_0_ms'),
    wllama_page: wlBest,
    forklm_swiftshader_eab: ms(swift, 'eab_ms'),
    forklm_swiftshader_fork_at_0: ms(swift, 'fork_at_0_ms'),
    shape_forklm_eab: ms(shape.forklm_node as Rec | undefined, 'eab_ms'),
    shape_forklm_fork_at_0: ms(shape.forklm_node as Rec | undefined, 'fork_at_0_ms'),
    shape_llama_server_1_thread: ms(shapeServers[0], 'job_ms'),
    shape_llama_server_2_threads: ms(shapeServers[1], 'job_ms'),
  };
  const decode_tok_s = {
    forklm_node: (node.decode_tok_s as number) ?? null,
    forklm_page: (pf?.decode_tok_s as number) ?? null,
    llama_server_1_thread: (server1.decode_tok_s as number) ?? null,
    llama_server_2_threads: (server2.decode_tok_s as number) ?? null,
    node_llama_cpp_1_thread: (nlc.decode_tok_s as number) ?? null,
    wllama_page: wlDecode,
    forklm_swiftshader: (swift.decode_tok_s as number) ?? null,
  };
  const ratios = {
    job_forklm_eab_over_llama_1_thread: ratio(best_ms.forklm_node_eab, best_ms.llama_server_1_thread),
    job_forklm_eab_over_llama_2_threads: ratio(best_ms.forklm_node_eab, best_ms.llama_server_2_threads),
    job_forklm_fork_at_0_over_llama_1_thread: ratio(best_ms.forklm_node_fork_at_0, best_ms.llama_server_1_thread),
    page_forklm_eab_over_wllama: ratio(best_ms.forklm_page_eab, best_ms.wllama_page),
    page_decode_forklm_over_wllama_tok_s: ratio(decode_tok_s.forklm_page, decode_tok_s.wllama_page),
    page_forklm_eab_over_node_forklm_eab: ratio(best_ms.forklm_page_eab, best_ms.forklm_node_eab),
    page_decode_ms_over_node_decode_ms: ratio(decode_tok_s.forklm_node, decode_tok_s.forklm_page),
    decode_forklm_node_share_of_llama_1_thread: ratio(decode_tok_s.forklm_node, decode_tok_s.llama_server_1_thread),
    decode_forklm_node_share_of_node_llama_cpp: ratio(decode_tok_s.forklm_node, decode_tok_s.node_llama_cpp_1_thread),
    job_forklm_swiftshader_eab_over_llama_1_thread: ratio(best_ms.forklm_swiftshader_eab, best_ms.llama_server_1_thread),
    job_forklm_swiftshader_eab_over_llvmpipe_eab: ratio(best_ms.forklm_swiftshader_eab, best_ms.forklm_node_eab),
    decode_forklm_swiftshader_share_of_llama_1_thread: ratio(decode_tok_s.forklm_swiftshader, decode_tok_s.llama_server_1_thread),
    shape_forklm_eab_over_llama_1_thread: ratio(best_ms.shape_forklm_eab, best_ms.shape_llama_server_1_thread),
    shape_forklm_eab_over_llama_2_threads: ratio(best_ms.shape_forklm_eab, best_ms.shape_llama_server_2_threads),
    shape_forklm_fork_at_0_over_llama_1_thread: ratio(best_ms.shape_forklm_fork_at_0, best_ms.shape_llama_server_1_thread),
  };
  // A run that starts with more runnable work than cores shares them with strangers: its ratios mix forklm's and the
  // peers' waits, so `met` is withheld (null) there and the value stays for what it is (issue 15's targets need one
  // quiet run). The bench's own children (llama-server, Chromium) come after this reading.
  const quiet = loadBefore === null || loadBefore < os.cpus().length;
  const target = (value: number | null, goal: number, better: 'lower' | 'higher') => ({
    value,
    goal,
    met: value === null || !quiet ? null : better === 'lower' ? value <= goal : value >= goal,
    ...(quiet ? {} : { withheld: `load average ${loadBefore} at the start on ${os.cpus().length} cores: rerun on a quiet machine` }),
  });
  const targets = {
    'job: forklm EAB <= llama.cpp n = 16, 1 thread': target(ratios.job_forklm_eab_over_llama_1_thread, 1, 'lower'),
    'job: forklm EAB <= llama.cpp n = 16, 2 threads': target(ratios.job_forklm_eab_over_llama_2_threads, 1, 'lower'),
    'page: forklm EAB <= wllama (its best mode and thread count)': target(ratios.page_forklm_eab_over_wllama, 1, 'lower'),
    'single-stream decode >= 35% of llama.cpp 1 thread': target(ratios.decode_forklm_node_share_of_llama_1_thread, 0.35, 'higher'),
  };
  return {
    best_ms,
    median_ms: {
      forklm_node_eab: median(node.eab_ms as number[]),
      llama_server_1_thread: median(server1.job_ms as number[]),
      llama_server_2_threads: median(server2.job_ms as number[]),
      forklm_page_eab: median(pf?.eab_ms as number[]),
      wllama_page: wl.length ? Math.min(...wl.map((w) => median(w.job_ms as number[])!)) : null,
    },
    decode_tok_s,
    ratios,
    targets,
  };
}

export async function run(): Promise<object> {
  const load = await startLoadMeter();
  const loadBefore = round4(os.loadavg()[0]);
  const model = await benchModel('stories260K');
  const prompt = promptTokens(model, JOB.prompt);
  const promptText = model.tokenizer!.decode(prompt.slice(1));
  let installed: object;
  try {
    installed = installPeers();
  } catch (e) {
    installed = { error: errorText(e) };
  }
  const [node, server1, server2] = (await interleaved([
    ['node', () => openForklmNode(prompt, 'llvmpipe')],
    ['server', () => openLlamaServer(prompt, 1, JOB)],
    ['server', () => openLlamaServer(prompt, 2, JOB)],
  ])) as Rec[];
  // SwiftShader's forklm alone, not interleaved: seconds a round, and not a target.
  const swift = (await part('swiftshader', async () => roundsAlone(await openForklmNode(prompt, 'swiftshader'), JOB.repeats))) as Rec;
  const nlc = (await part('node-llama-cpp', () => nodeLlamaCpp(prompt, JOB))) as Rec;
  const page = (await part('page', () => inPage(JOB, promptText, [1, 2].flatMap((threads) => [{ threads, mode: 'sequential' as const }, { threads, mode: 'concurrent' as const }])))) as Rec;

  const shape = (await part('shape', async () => shapeJobInChild(JOB))) as Rec;

  const derived = derive(node, server1, server2, nlc, page, loadBefore, swift, shape);
  return {
    date: new Date().toISOString(),
    machine: machine(),
    quick: QUICK,
    job: `${JOB.samples} samples of ${JOB.maxNew} tokens after a ${JOB.prompt}-token prompt, stories260K, temperature 1; best of ${JOB.repeats}, forklm Node and llama-server's rounds interleaved after an untimed round each`,
    peers_installed: installed,
    ...derived,
    forklm_node: node,
    forklm_node_swiftshader: swift,
    llama_server: [server1, server2],
    node_llama_cpp: nlc,
    page,
    smollm2_135m_shape: shape,
    transformers: {
      available: false,
      reason: "needs Python packages torch and transformers from PyPI; this machine's package registries are npm and Debian only, so they cannot be installed here",
    },
    load_average_1m: [loadBefore, round4(os.loadavg()[0])],
    other_load: await load(),
  };
}
