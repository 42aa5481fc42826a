// `forklm generate --server URL`: the same runs as on the local engine, on a server engine (llama.cpp server, vLLM,
// SGLang) through RemoteEngine. The server's model runs, so its tokenizer reads the prompt (/tokenize) and decodes the
// texts (/detokenize); the output adds the server's own counters. Ctrl-C aborts the in-flight requests (exit 130).
import { setMaxListeners } from 'node:events';
import type { BranchEngine, SessionSource } from '../branch/engine_api.js';
import { InvalidArgumentError } from '../errors.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { RemoteEngine, type RemoteCounters, type RemoteSession } from '../remote/index.js';
import type { ServerKind } from '../remote/protocol.js';
import type { CliContext } from './args.js';
import { printRun, promptFromIds, runMode, type RunFlags, type RunOutput } from './generate_run.js';

/** The flags a server run reads. */
export interface RemoteRunFlags extends RunFlags {
  prompt: string;
  promptIds?: string;
  parseSpecial: boolean;
  serverKind?: ServerKind;
  /** Seconds. */
  timeout?: number;
}

/**
 * Runs `forklm generate` against the server at `url`; returns the exit code. Errors: InvalidArgumentError (URL,
 * prompt), RemoteFeatureError (a server without token-id prompts or log-probs, found at connect), RemoteServerError
 * (unreachable, HTTP error after the retries, timeout), CancelledError (Ctrl-C or ctx.signal).
 */
export async function runRemote(url: string, f: RemoteRunFlags, ctx: CliContext): Promise<number> {
  const abort = new AbortController();
  // Every request listens on this signal while it runs, and a run has many at once: no listener limit.
  setMaxListeners(0, abort.signal);
  const onOuter = () => abort.abort();
  ctx.signal?.addEventListener('abort', onOuter, { once: true });
  // Ctrl-C aborts the requests (the server frees their slots) and the run ends with CancelledError; a second Ctrl-C
  // finds no listener left and ends the process at once.
  const onSigint = () => {
    ctx.stderr('\nforklm: cancelling the requests to the server...\n');
    abort.abort();
  };
  process.once('SIGINT', onSigint);
  try {
    const remote = await RemoteEngine.connect(url, {
      kind: f.serverKind ?? 'llama.cpp',
      timeoutMs: (f.timeout ?? 120) * 1000,
      maxLivePaths: Math.max(64, f.numSamples ?? 0, f.maxPaths),
      signal: abort.signal,
    });
    const prompt = f.promptIds !== undefined ? promptFromIds({ prompt: f.prompt, promptIds: f.promptIds }, remote.info.vocabSize) : await remote.tokenize(f.prompt, true, f.parseSpecial);
    if (prompt.length === 0) throw new InvalidArgumentError('The server tokenized the prompt to no tokens (its model adds no BOS); give a non-empty --prompt or --prompt-ids.');
    const source = new RecordingSource(remote);
    const out = await runMode(source, prompt, f, ctx, null);
    const ids = new Set(prompt);
    for (const list of tokenLists(out)) for (const id of list) ids.add(id);
    const tok = await serverTokenizer(remote, ids);
    const text = await serverTexts(remote, prompt, out);
    printRun(out, tok, prompt, f, ctx, { server: { url: remote.baseUrl, kind: remote.kind, counters: source.counters() } }, text);
    if (!f.json) ctx.stderr(describeCounters(source.counters()) + '\n');
    return 0;
  } finally {
    process.off('SIGINT', onSigint);
    ctx.signal?.removeEventListener('abort', onOuter);
  }
}

/** Every token list of a run (for the pieces its output shows). */
function tokenLists(out: RunOutput): number[][] {
  if (out.mode === 'single') return [out.result.tokens];
  if (out.mode === 'eab') return [...out.result.samples.map((s) => s.tokens), ...out.result.tree.map((n) => n.tokens)];
  return out.result.traces.map((t) => t.token_ids);
}

/**
 * Fills the texts of a run with the server's decoding of each sequence as a whole (so characters split over byte
 * tokens come out whole), as the controllers do with a local tokenizer: an EAB sample's text continues the prompt,
 * a peaks trace's is its tokens alone, a final EOS left out. Returns a single path's text.
 */
async function serverTexts(remote: RemoteEngine, prompt: readonly number[], out: RunOutput): Promise<string | undefined> {
  const eos = new Set(remote.info.eosTokenIds);
  const strip = (ids: readonly number[]) => (ids.length > 0 && eos.has(ids[ids.length - 1]) ? ids.slice(0, -1) : [...ids]);
  const head = await remote.detokenize(prompt);
  const continuation = async (ids: readonly number[]): Promise<string> => {
    const full = await remote.detokenize([...prompt, ...ids]);
    return full.startsWith(head) ? full.slice(head.length) : remote.detokenize(ids);
  };
  if (out.mode === 'single') return continuation(strip(out.result.tokens));
  if (out.mode === 'eab') for (const s of out.result.samples) s.text = await continuation(strip(s.tokens));
  else for (const t of out.result.traces) t.text = await remote.detokenize(strip(t.token_ids));
  return undefined;
}

/** A SessionSource over a RemoteEngine that keeps the sessions it opened. */
export class RecordingSource implements SessionSource {
  readonly sessions: RemoteSession[] = [];
  constructor(readonly remote: RemoteEngine) {}

  session(): BranchEngine {
    const s = this.remote.session();
    this.sessions.push(s);
    return s;
  }

  /** The server's counters summed over every session opened so far. */
  counters(): RemoteCounters {
    const out: RemoteCounters = {
      requests: 0,
      retries: 0,
      promptComputed: 0,
      promptCached: 0,
      promptSent: 0,
      promptCopied: 0,
      generated: 0,
      generatedUsed: 0,
      completionsReported: 0,
      maxEntropyGap: 0,
      meanEntropyGap: 0,
    };
    let steps = 0;
    for (const s of this.sessions) {
      const c = s.remoteCounters();
      const n = s.counters().steps;
      for (const k of ['requests', 'retries', 'promptComputed', 'promptCached', 'promptSent', 'promptCopied', 'generated', 'generatedUsed', 'completionsReported'] as const)
        out[k] += c[k];
      out.maxEntropyGap = Math.max(out.maxEntropyGap, c.maxEntropyGap);
      out.meanEntropyGap += c.meanEntropyGap * n;
      steps += n;
    }
    out.meanEntropyGap = steps > 0 ? out.meanEntropyGap / steps : 0;
    return out;
  }
}

export async function connectServer(url: string, kind: ServerKind): Promise<RecordingSource> {
  return new RecordingSource(await RemoteEngine.connect(url, { kind }));
}

/**
 * A decode-only tokenizer for the ids a run produced, from the server's own pieces (/detokenize of each id: llama.cpp
 * keeps a piece's leading space), so the CLI prints texts as with a local tokenizer. BOS and EOS decode to nothing.
 */
export async function serverTokenizer(remote: RemoteEngine, ids: Iterable<number>): Promise<Tokenizer> {
  const bos = (await remote.tokenize('', true))[0] ?? null;
  const unique = [...new Set(ids)];
  const pieces = new Map<number, string>();
  // A few requests at a time: the server answers each at once, and a long run has a few hundred distinct tokens.
  for (let i = 0; i < unique.length; i += 16)
    await Promise.all(unique.slice(i, i + 16).map(async (id) => pieces.set(id, await remote.detokenize([id]))));
  const special = new Set([...remote.info.eosTokenIds, ...(bos !== null ? [bos] : [])]);
  return {
    vocabSize: remote.info.vocabSize,
    bosTokenId: bos,
    eosTokenIds: remote.info.eosTokenIds,
    specialTokens: new Map(),
    encode(): number[] {
      throw new InvalidArgumentError('With --server the prompt is tokenized by the server (/tokenize).');
    },
    encodeParts(): number[] {
      throw new InvalidArgumentError('With --server the prompt is tokenized by the server (/tokenize).');
    },
    decode(list: readonly number[]): string {
      return list.map((id) => (special.has(id) ? '' : (pieces.get(id) ?? ''))).join('');
    },
  };
}

/** One line about what the server counted, for the terminal. */
export function describeCounters(c: RemoteCounters): string {
  return (
    `server: ${c.requests} requests, prompt tokens computed ${c.promptComputed}, from cache ${c.promptCached}, ` +
    `copied ${c.promptCopied}; generated ${c.generated} (${c.generatedUsed} used); entropy bound width up to ` +
    `${c.maxEntropyGap.toFixed(4)} of ln V`
  );
}
