// What `forklm generate --server URL` needs beyond the local path: a SessionSource over a RemoteEngine that records its
// sessions (so the output can show the server's own counters) and a decode-only tokenizer from the server's pieces
// (no local model file). The flag itself is wired once runEab, runPeaks and generate take a SessionSource.
import type { BranchEngine, SessionSource } from '../branch/engine_api.js';
import { InvalidArgumentError } from '../errors.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { RemoteEngine, type RemoteCounters, type RemoteSession } from '../remote/index.js';
import type { ServerKind } from '../remote/protocol.js';

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
      for (const k of ['requests', 'retries', 'promptComputed', 'promptCached', 'promptCopied', 'generated', 'generatedUsed', 'completionsReported'] as const) out[k] += c[k];
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
