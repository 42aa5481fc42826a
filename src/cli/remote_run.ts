// `forklm generate --server URL`: the same runs on an existing server engine. The prompt is tokenized and the results'
// texts are decoded by the server (/tokenize, /detokenize), so no local model file is needed; the sessions the runs
// open are recorded so the output can show the server's own counters.
import type { BranchEngine, SessionSource } from '../branch/engine_api.js';
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

/** Decodes many token lists through the server, each list once. */
export async function serverTexts(remote: RemoteEngine, lists: readonly (readonly number[])[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const unique = [...new Map(lists.map((l) => [l.join(','), l])).values()];
  await Promise.all(unique.map(async (l) => out.set(l.join(','), l.length === 0 ? '' : await remote.detokenize(l))));
  return out;
}

/** One line about what the server counted, for the terminal. */
export function describeCounters(c: RemoteCounters): string {
  return (
    `server: ${c.requests} requests, prompt tokens computed ${c.promptComputed}, from cache ${c.promptCached}, ` +
    `copied ${c.promptCopied}; generated ${c.generated} (${c.generatedUsed} used); entropy bound width up to ` +
    `${c.maxEntropyGap.toFixed(4)} of ln V`
  );
}
